//! A process-wide cache of the permission lookup ([`DirectoryStore::permission_facts`]).
//!
//! Every request of a caller whose directory roles count asks for the same facts (the user's
//! roles and the organizations of the token's spaces); the answer changes only when a role is
//! written. The cache keeps each answer for a bounded time, `ttl`:
//!
//! - a role written (or removed) through this process clears the cache as the write commits, so
//!   this replica never answers from a fact older than its own writes;
//! - another replica's write is seen here at the latest `ttl` after it committed (the stated
//!   bound, `auth.permission_cache_ms`);
//! - an answer read from the database while a write committed is never kept: each read carries
//!   the cache's generation from before it, and is stored only if no invalidation came between.
//!
//! A `ttl` of zero turns caching off. The cache holds at most [`CAPACITY`] users; when full it
//! drops what has expired, and everything if that is not enough (a bounded, simple policy: a
//! burst of distinct users costs one database read each, as without a cache).
//!
//! [`DirectoryStore::permission_facts`]: berth_domain::ports::DirectoryStore::permission_facts

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_domain::ids::SpaceGuid;
use berth_domain::roles::PermissionFacts;

/// The most users the cache holds.
pub const CAPACITY: usize = 10_000;

/// See the module's documentation.
#[derive(Debug)]
pub struct PermissionCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every invalidation.
    generation: u64,
    /// Per user, one answer per set of token spaces (usually one).
    users: HashMap<String, Vec<Cached>>,
}

#[derive(Debug)]
struct Cached {
    spaces: Vec<SpaceGuid>,
    facts: PermissionFacts,
    expires: Instant,
}

/// What a lookup found: the facts, or the generation a database read must carry to
/// [`PermissionCache::store`].
pub(crate) enum Lookup {
    Hit(PermissionFacts),
    Miss(u64),
}

impl PermissionCache {
    /// A cache keeping each answer for `ttl` (zero: no caching).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    /// No caching: every lookup reads the database.
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO)
    }

    /// How long an answer is kept: the bound on seeing another replica's role change.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain map: a panic elsewhere cannot leave it half-changed.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn lookup(&self, user: &str, spaces: &[SpaceGuid]) -> Lookup {
        let state = self.state();
        if self.ttl.is_zero() {
            return Lookup::Miss(state.generation);
        }
        let now = Instant::now();
        state
            .users
            .get(user)
            .and_then(|answers| {
                answers
                    .iter()
                    .find(|cached| cached.spaces == spaces && cached.expires > now)
            })
            .map_or(Lookup::Miss(state.generation), |cached| {
                Lookup::Hit(cached.facts.clone())
            })
    }

    /// Keeps `facts`, read from the database after a lookup answered `Miss(generation)`, unless
    /// the cache was invalidated since.
    pub(crate) fn store(
        &self,
        generation: u64,
        user: &str,
        spaces: &[SpaceGuid],
        facts: &PermissionFacts,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        let now = Instant::now();
        if state.users.len() >= CAPACITY && !state.users.contains_key(user) {
            state
                .users
                .retain(|_, answers| answers.iter().any(|cached| cached.expires > now));
            if state.users.len() >= CAPACITY {
                state.users.clear();
            }
        }
        let answers = state.users.entry(user.to_owned()).or_default();
        answers.retain(|cached| cached.spaces != spaces && cached.expires > now);
        answers.push(Cached {
            spaces: spaces.to_vec(),
            facts: facts.clone(),
            expires: now + self.ttl,
        });
    }

    /// Forgets every answer (a role or the directory changed).
    pub(crate) fn invalidate(&self) {
        let mut state = self.state();
        state.generation = state.generation.wrapping_add(1);
        state.users.clear();
    }
}

impl Default for PermissionCache {
    fn default() -> Self {
        Self::disabled()
    }
}

#[cfg(test)]
mod tests {
    use berth_domain::ids::OrganizationGuid;

    use super::*;

    fn facts(organization: u128) -> PermissionFacts {
        let mut facts = PermissionFacts::default();
        facts.space_organizations.push((
            SpaceGuid::from_uuid(uuid::Uuid::from_u128(1)),
            OrganizationGuid::from_uuid(uuid::Uuid::from_u128(organization)),
        ));
        facts
    }

    fn hit(lookup: Lookup) -> Option<PermissionFacts> {
        match lookup {
            Lookup::Hit(facts) => Some(facts),
            Lookup::Miss(_) => None,
        }
    }

    fn generation(lookup: Lookup) -> u64 {
        match lookup {
            Lookup::Hit(_) => panic!("expected a miss"),
            Lookup::Miss(generation) => generation,
        }
    }

    #[test]
    fn an_answer_is_kept_per_user_and_spaces_until_it_expires() {
        let cache = PermissionCache::new(Duration::from_millis(200));
        let spaces = [SpaceGuid::from_uuid(uuid::Uuid::from_u128(1))];
        let read = generation(cache.lookup("ann", &spaces));
        cache.store(read, "ann", &spaces, &facts(7));
        assert_eq!(hit(cache.lookup("ann", &spaces)), Some(facts(7)));
        assert_eq!(hit(cache.lookup("ann", &[])), None, "other token spaces");
        assert_eq!(hit(cache.lookup("bob", &spaces)), None, "another user");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(hit(cache.lookup("ann", &spaces)), None, "expired");
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let cache = PermissionCache::new(Duration::from_secs(60));
        let read = generation(cache.lookup("ann", &[]));
        cache.invalidate();
        cache.store(read, "ann", &[], &facts(7));
        assert_eq!(hit(cache.lookup("ann", &[])), None);
        let read = generation(cache.lookup("ann", &[]));
        cache.store(read, "ann", &[], &facts(8));
        assert_eq!(hit(cache.lookup("ann", &[])), Some(facts(8)));
        cache.invalidate();
        assert_eq!(hit(cache.lookup("ann", &[])), None);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = PermissionCache::disabled();
        let read = generation(cache.lookup("ann", &[]));
        cache.store(read, "ann", &[], &facts(7));
        assert_eq!(hit(cache.lookup("ann", &[])), None);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = PermissionCache::new(Duration::from_secs(60));
        for user in 0..CAPACITY + 10 {
            let user = format!("user-{user}");
            let read = generation(cache.lookup(&user, &[]));
            cache.store(read, &user, &[], &facts(7));
            assert!(cache.state().users.len() <= CAPACITY);
        }
        let last = format!("user-{}", CAPACITY + 9);
        assert_eq!(hit(cache.lookup(&last, &[])), Some(facts(7)));
    }
}

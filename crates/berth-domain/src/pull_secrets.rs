//! Pull-secret resolution (SPEC section 7.1), pure: which stored credential an image (or a
//! registry host) is pulled with, and the `.dockerconfigjson` that carries them.
//!
//! 1. **Candidates**, most specific first ([`PullSubject::candidates`]): the whole repository
//!    (`host[:port]/p1/.../pn`), each shorter path on `/` boundaries, the bare `host[:port]`,
//!    then, only for a host without a port that is neither an IP literal nor `localhost`, each
//!    parent domain down to the registrable domain of the Public Suffix List (`psl`, compiled
//!    in): `registry.example.co.uk` gives `example.co.uk`, never `co.uk`. Docker Hub's
//!    candidates are written in each of its three spellings, `docker.io` first, so a credential
//!    stored under `index.docker.io` matches too. A candidate no location could hold (longer
//!    than a location may be) is left out.
//! 2. **Precedence** ([`PullQuery::winners`]): app, then space, then organization, then
//!    foundation; the first level holding a credential for any candidate wins, and within it
//!    the most specific candidate. No match is not an error.
//! 3. **Keys** of the `.dockerconfigjson` ([`PullQuery::resolve`]): an image's `host[:port]`
//!    plus the matched location's path when it has one (`r.io/team`, a prefix the kubelet
//!    matches); a match without a path gives the bare `host[:port]`, and Docker Hub's bare key
//!    is `https://index.docker.io/v1/` (what `docker login` writes; the kubelet maps it to
//!    every Hub image). A Hub location with a path gives `docker.io/<path>`: the kubelet looks
//!    Hub images up by their normalised name `docker.io/...`, which that key prefixes. A
//!    registry entry's key is its `host[:port]` (Hub: the v1 URL).
//!
//!    **One key, one credential.** Two entries given the same key always won the same
//!    credential: the key is either a matched location path (the same location at the same
//!    level wins for both, as the first level holding it is the same for both) or the bare host,
//!    whose path-less candidates two images of one host share. Should two different credentials
//!    ever claim one key, each image entry among them takes the more specific key
//!    `host[:port]/<its whole repository path>` instead, which the kubelet also matches, and a
//!    key still claimed twice is left out rather than answered with a wrong credential.

use std::collections::{BTreeMap, BTreeSet};

use crate::credential::{Password, RequestedOwner, Scope, ScopeTarget, Username};
use crate::ids::CredentialGuid;
use crate::image_reference::{DOCKER_HUB, DOCKER_HUB_ALIASES, ImageReference, RegistryHost};
use crate::location::RegistryLocation;

/// Most entries (images and registries together) in one request.
pub const MAX_PULL_ENTRIES: usize = 100;
/// Most distinct candidate locations of one request: what one statement binds, well under the
/// bundled SQLite's limit of 32,766 bound values. Only absurd references (a hundred
/// 255-character paths of one-letter components) come near it.
pub const MAX_CANDIDATE_LOCATIONS: usize = 16_384;
/// Docker Hub's key in a `.dockerconfigjson`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What a pull secret is asked for: an image, or a registry host (all a credential helper knows).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullSubject {
    /// Image.
    Image(ImageReference),
    /// Registry.
    Registry(RegistryHost),
}

impl PullSubject {
    /// The registry.
    pub fn registry(&self) -> &RegistryHost {
        match self {
            Self::Image(image) => image.registry(),
            Self::Registry(registry) => registry,
        }
    }

    /// `docker.io/library/nginx` for an image, `docker.io` for a registry.
    pub fn normalized(&self) -> String {
        match self {
            Self::Image(image) => image.normalized_name(),
            Self::Registry(registry) => registry.to_string(),
        }
    }

    /// The locations a credential may be stored under for this subject, most specific first.
    pub fn candidates(&self) -> Vec<String> {
        let registry = self.registry();
        let authority = registry.to_string();
        let mut specific = Vec::new();
        if let Self::Image(image) = self {
            let path = image.path();
            specific.push(format!("{authority}/{path}"));
            specific.extend(
                path.rmatch_indices('/')
                    .map(|(index, _)| format!("{authority}/{}", &path[..index])),
            );
        }
        specific.push(authority);
        let mut candidates: Vec<String> = if registry.is_docker_hub() {
            specific
                .iter()
                .flat_map(|candidate| {
                    let rest = &candidate[DOCKER_HUB.len()..];
                    DOCKER_HUB_ALIASES.map(|alias| format!("{alias}{rest}"))
                })
                .collect()
        } else {
            specific
        };
        candidates.extend(parent_domains(registry));
        // A location is at most `MAX_LOCATION_LEN` long, with labels of 63: longer never matches.
        // Every candidate is the longest one cut at a `/`, a parent domain of its host or a
        // Docker Hub alias, so when the longest is a location all are: only then is one parse
        // enough (parsing each showed in the resolve benchmark's profile).
        let longest = candidates.iter().max_by_key(|candidate| candidate.len());
        if longest.is_none_or(|longest| RegistryLocation::parse(longest).is_err()) {
            candidates.retain(|candidate| RegistryLocation::parse(candidate).is_ok());
        }
        candidates
    }
}

/// Each parent domain of the host, down to its registrable domain (never a public suffix).
fn parent_domains(registry: &RegistryHost) -> Vec<String> {
    let host = registry.host();
    if registry.port().is_some() || registry.is_ip_literal() || host == "localhost" {
        return Vec::new();
    }
    let Some(registrable) = psl::domain_str(host) else {
        return Vec::new();
    };
    let mut parents = Vec::new();
    let mut rest = host;
    while rest.len() > registrable.len() {
        let Some((_, parent)) = rest.split_once('.') else {
            break;
        };
        parents.push(parent.to_owned());
        rest = parent;
    }
    parents
}

/// Why a pull request was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PullRequestError {
    /// Images and registries can't both be empty.
    #[error("Images and registries can't both be empty")]
    Empty,
    /// Images and registries together must have at most … entries.
    #[error("Images and registries together must have at most {MAX_PULL_ENTRIES} entries")]
    TooMany,
    #[error(
        "The images and registries name more than {MAX_CANDIDATE_LOCATIONS} candidate locations together; send fewer entries"
    )]
    /// Too many candidates.
    TooManyCandidates,
}

/// A validated request: its context (no relationship is the foundation) and 1..=100 subjects
/// whose candidates stay within [`MAX_CANDIDATE_LOCATIONS`].
#[derive(Debug, Clone)]
pub struct PullRequest {
    context: RequestedOwner,
    subjects: Vec<PullSubject>,
    candidates: Vec<Vec<String>>,
    locations: Vec<String>,
}

impl PullRequest {
    /// # Errors
    /// A [`PullRequestError`].
    pub fn new(
        context: RequestedOwner,
        subjects: Vec<PullSubject>,
    ) -> Result<Self, PullRequestError> {
        if subjects.is_empty() {
            return Err(PullRequestError::Empty);
        }
        if subjects.len() > MAX_PULL_ENTRIES {
            return Err(PullRequestError::TooMany);
        }
        let (candidates, locations) = candidates_of(&subjects);
        if locations.len() > MAX_CANDIDATE_LOCATIONS {
            return Err(PullRequestError::TooManyCandidates);
        }
        Ok(Self {
            context,
            subjects,
            candidates,
            locations,
        })
    }

    /// The level the request resolves from.
    pub fn context(&self) -> RequestedOwner {
        self.context
    }

    /// The subjects.
    pub fn subjects(&self) -> &[PullSubject] {
        &self.subjects
    }

    /// The query the store answers, with the candidates computed once, here.
    pub fn into_query(self) -> PullQuery {
        PullQuery {
            owner: self.context,
            subjects: self.subjects,
            candidates: self.candidates,
            locations: self.locations,
        }
    }
}

/// Each subject's candidates, and every candidate of them all once, sorted.
fn candidates_of(subjects: &[PullSubject]) -> (Vec<Vec<String>>, Vec<String>) {
    let candidates: Vec<Vec<String>> = subjects.iter().map(PullSubject::candidates).collect();
    let mut locations: Vec<String> = candidates.iter().flatten().cloned().collect();
    locations.sort_unstable();
    locations.dedup();
    (candidates, locations)
}

/// The levels a context's credentials come from, in precedence order: an app's are the app,
/// its space, its organization and the foundation.
pub fn levels(context: &ScopeTarget) -> Vec<ScopeTarget> {
    match *context {
        ScopeTarget::Foundation => vec![ScopeTarget::Foundation],
        ScopeTarget::Organization(organization) => {
            vec![
                ScopeTarget::Organization(organization),
                ScopeTarget::Foundation,
            ]
        }
        ScopeTarget::Space {
            organization,
            space,
        } => vec![
            ScopeTarget::Space {
                organization,
                space,
            },
            ScopeTarget::Organization(organization),
            ScopeTarget::Foundation,
        ],
        ScopeTarget::App {
            organization,
            space,
            app,
        } => vec![
            ScopeTarget::App {
                organization,
                space,
                app,
            },
            ScopeTarget::Space {
                organization,
                space,
            },
            ScopeTarget::Organization(organization),
            ScopeTarget::Foundation,
        ],
    }
}

/// A stored credential of the context's chain whose location is one of the candidates, as the
/// store's one statement finds it (without its password).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullMatch {
    /// Its guid.
    pub guid: CredentialGuid,
    /// Which level of the chain it belongs to: a chain has one owner per scope.
    pub scope: Scope,
    /// The registry location.
    pub location: RegistryLocation,
    /// The login name.
    pub username: Username,
}

impl PullMatch {
    /// A credential found for a pull query.
    pub fn new(
        guid: CredentialGuid,
        scope: Scope,
        location: RegistryLocation,
        username: Username,
    ) -> Self {
        Self {
            guid,
            scope,
            location,
            username,
        }
    }
}

/// What the store found for a [`PullQuery`]: the context with its parents (located in the same
/// statement), every match, and the opened passwords of the winners when they were asked for.
#[derive(Debug)]
#[non_exhaustive]
pub struct PullLookup {
    /// The requested context, with its parents.
    pub context: ScopeTarget,
    /// Every credential found.
    pub matches: Vec<PullMatch>,
    /// The opened passwords, by guid.
    pub passwords: Vec<(CredentialGuid, Password)>,
}

impl PullLookup {
    /// What a store found: the located context, the matches, and the opened passwords.
    pub fn new(
        context: ScopeTarget,
        matches: Vec<PullMatch>,
        passwords: Vec<(CredentialGuid, Password)>,
    ) -> Self {
        Self {
            context,
            matches,
            passwords,
        }
    }
}

/// Whether the store opens the winners' sealed passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveal {
    /// Only the winners' (resolve).
    Winners,
    /// None (explain).
    Nothing,
}

/// What the store is asked: the requested context (not yet located: the store finds its
/// parents in the same statement as the matches) and each subject's candidates.
#[derive(Debug, Clone)]
pub struct PullQuery {
    owner: RequestedOwner,
    subjects: Vec<PullSubject>,
    candidates: Vec<Vec<String>>,
    locations: Vec<String>,
}

impl PullQuery {
    /// A query of `owner`'s chain for `subjects` (the candidates computed here).
    pub fn new(owner: RequestedOwner, subjects: Vec<PullSubject>) -> Self {
        let (candidates, locations) = candidates_of(&subjects);
        Self {
            owner,
            subjects,
            candidates,
            locations,
        }
    }

    /// The context whose chain is searched.
    pub fn owner(&self) -> RequestedOwner {
        self.owner
    }

    /// Every candidate location of every subject, each once, sorted.
    pub fn locations(&self) -> &[String] {
        &self.locations
    }

    /// The subjects.
    pub fn subjects(&self) -> &[PullSubject] {
        &self.subjects
    }

    /// For each subject, the index in `matches` of the credential it is pulled with, if any,
    /// `context` being the located owner.
    pub fn winners(&self, context: &ScopeTarget, matches: &[PullMatch]) -> Vec<Option<usize>> {
        let levels = levels(context);
        // Ordered, not hashed: a request has a handful of matches, and SipHash over their
        // locations cost more than the comparisons.
        let mut found: BTreeMap<(Scope, &str), usize> = BTreeMap::new();
        for (index, found_match) in matches.iter().enumerate() {
            // The unique index allows one per owner and location; should it not, the first wins.
            found
                .entry((found_match.scope, found_match.location.as_str()))
                .or_insert(index);
        }
        self.candidates
            .iter()
            .map(|candidates| {
                levels.iter().find_map(|level| {
                    candidates.iter().find_map(|candidate| {
                        found.get(&(level.scope(), candidate.as_str())).copied()
                    })
                })
            })
            .collect()
    }

    /// The distinct credentials that win for at least one subject: whose passwords are opened.
    pub fn winning_guids(
        &self,
        context: &ScopeTarget,
        matches: &[PullMatch],
    ) -> BTreeSet<CredentialGuid> {
        self.winners(context, matches)
            .into_iter()
            .flatten()
            .map(|index| matches[index].guid)
            .collect()
    }

    /// Each subject's resolution, with its key in the `.dockerconfigjson`.
    pub fn resolve(self, context: &ScopeTarget, matches: &[PullMatch]) -> Vec<Resolution> {
        let levels = levels(context);
        let winners = self.winners(context, matches);
        let mut resolutions: Vec<Resolution> = self
            .subjects
            .into_iter()
            .zip(self.candidates)
            .zip(winners)
            .map(|((subject, candidates), winner)| {
                let winner = winner.map(|index| matches[index].clone());
                let tried = match &winner {
                    Some(winner) => levels
                        .iter()
                        .position(|level| level.scope() == winner.scope)
                        .map_or(levels.len(), |position| position + 1),
                    None => levels.len(),
                };
                let key = winner
                    .as_ref()
                    .map(|winner| key(&subject, &winner.location));
                Resolution {
                    subject,
                    candidates,
                    levels_tried: levels[..tried].to_vec(),
                    winner,
                    key,
                }
            })
            .collect();
        separate_keys(&mut resolutions);
        resolutions
    }
}

/// The key of a subject pulled with a credential stored under `location`.
fn key(subject: &PullSubject, location: &RegistryLocation) -> String {
    let registry = subject.registry();
    let location_path = location.as_str().split_once('/').map(|(_, path)| path);
    match (subject, location_path) {
        (PullSubject::Image(_), Some(path)) => format!("{registry}/{path}"),
        _ if registry.is_docker_hub() => DOCKER_HUB_KEY.to_owned(),
        _ => registry.to_string(),
    }
}

/// Gives the image entries of a key two credentials claim their whole repository as key; a
/// key still claimed by two credentials after that is dropped (never a wrong credential).
fn separate_keys(resolutions: &mut [Resolution]) {
    let claims = |resolutions: &[Resolution]| {
        let mut claims: BTreeMap<String, BTreeSet<CredentialGuid>> = BTreeMap::new();
        for resolution in resolutions {
            if let (Some(key), Some(winner)) = (&resolution.key, &resolution.winner) {
                claims.entry(key.clone()).or_default().insert(winner.guid);
            }
        }
        claims
    };
    let contested = |claims: &BTreeMap<String, BTreeSet<CredentialGuid>>, key: &Option<String>| {
        key.as_ref()
            .is_some_and(|key| claims.get(key).is_some_and(|guids| guids.len() > 1))
    };
    let first = claims(resolutions);
    for resolution in resolutions.iter_mut() {
        if let PullSubject::Image(image) = &resolution.subject
            && contested(&first, &resolution.key)
        {
            resolution.key = Some(format!("{}/{}", image.registry(), image.path()));
        }
    }
    let second = claims(resolutions);
    for resolution in resolutions.iter_mut() {
        if contested(&second, &resolution.key) {
            resolution.key = None;
        }
    }
}

/// How one subject was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resolution {
    /// The image or registry asked about.
    pub subject: PullSubject,
    /// Its candidate locations, most specific first: the same at every level.
    pub candidates: Vec<String>,
    /// The levels searched, in order, up to the winner's (all of them when none won).
    pub levels_tried: Vec<ScopeTarget>,
    /// The credential chosen, if any.
    pub winner: Option<PullMatch>,
    /// Its key in the `.dockerconfigjson`; `None` when nothing won.
    pub key: Option<String>,
}

/// The owner guid of a level, as text (`None` for the foundation).
pub fn owner_guid(level: &ScopeTarget) -> Option<String> {
    match *level {
        ScopeTarget::Foundation => None,
        ScopeTarget::Organization(organization) => Some(organization.to_string()),
        ScopeTarget::Space { space, .. } => Some(space.to_string()),
        ScopeTarget::App { app, .. } => Some(app.to_string()),
    }
}

/// One `auths` entry of a `.dockerconfigjson`.
#[derive(Debug)]
pub struct DockerAuth {
    /// The login name.
    pub username: Username,
    /// The password.
    pub password: Password,
}

/// Resolutions with the secrets they need: the answer of resolve.
#[derive(Debug)]
#[non_exhaustive]
pub struct PullSecrets {
    /// How each subject was resolved.
    pub resolutions: Vec<Resolution>,
    /// The `auths` of the `.dockerconfigjson`, by key.
    pub auths: BTreeMap<String, DockerAuth>,
}

impl PullSecrets {
    /// Pairs each key with its winner's username and opened password.
    ///
    /// # Errors
    /// The guid of a winner whose password is missing from `passwords` (the store opened fewer
    /// than the winners), so no partial `.dockerconfigjson` is ever answered.
    pub fn assemble(
        resolutions: Vec<Resolution>,
        passwords: Vec<(CredentialGuid, Password)>,
    ) -> Result<Self, CredentialGuid> {
        let passwords: BTreeMap<CredentialGuid, Password> = passwords.into_iter().collect();
        let mut auths = BTreeMap::new();
        for resolution in &resolutions {
            let (Some(key), Some(winner)) = (&resolution.key, &resolution.winner) else {
                continue;
            };
            let password = passwords.get(&winner.guid).ok_or(winner.guid)?;
            auths.entry(key.clone()).or_insert_with(|| DockerAuth {
                username: winner.username.clone(),
                password: password.clone(),
            });
        }
        Ok(Self { resolutions, auths })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AppGuid, OrganizationGuid, SpaceGuid};

    fn image(text: &str) -> PullSubject {
        PullSubject::Image(ImageReference::parse(text).unwrap())
    }

    fn registry(text: &str) -> PullSubject {
        PullSubject::Registry(RegistryHost::parse(text).unwrap())
    }

    #[test]
    fn candidates_run_from_the_repository_to_the_registrable_domain() {
        let long_label = format!("{}.example.com/app", "a".repeat(64));
        let cases: Vec<(PullSubject, Vec<&str>)> = vec![
            (
                image("registry.example.com/repo/image:tag"),
                vec![
                    "registry.example.com/repo/image",
                    "registry.example.com/repo",
                    "registry.example.com",
                    "example.com",
                ],
            ),
            (
                image("registry.example.co.uk/team/app"),
                vec![
                    "registry.example.co.uk/team/app",
                    "registry.example.co.uk/team",
                    "registry.example.co.uk",
                    "example.co.uk",
                ],
            ),
            (
                image("a.b.registry.example.com/app"),
                vec![
                    "a.b.registry.example.com/app",
                    "a.b.registry.example.com",
                    "b.registry.example.com",
                    "registry.example.com",
                    "example.com",
                ],
            ),
            (
                image("example.com/app"),
                vec!["example.com/app", "example.com"],
            ),
            // A public suffix with a private registry section: never `github.io` alone.
            (
                image("team.github.io/app"),
                vec!["team.github.io/app", "team.github.io"],
            ),
            (
                image(
                    "ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                ),
                vec!["ghcr.io/org/app", "ghcr.io/org", "ghcr.io"],
            ),
            (
                image("registry.example.com:5000/team/app"),
                vec![
                    "registry.example.com:5000/team/app",
                    "registry.example.com:5000/team",
                    "registry.example.com:5000",
                ],
            ),
            (
                image("r.example.com:443/app"),
                vec!["r.example.com:443/app", "r.example.com:443"],
            ),
            (image("localhost/app"), vec!["localhost/app", "localhost"]),
            (
                image("localhost:5000/a/b"),
                vec!["localhost:5000/a/b", "localhost:5000/a", "localhost:5000"],
            ),
            (image("10.0.0.1/app"), vec!["10.0.0.1/app", "10.0.0.1"]),
            (
                image("10.0.0.1:5000/app"),
                vec!["10.0.0.1:5000/app", "10.0.0.1:5000"],
            ),
            (
                image("[::1]:5000/app"),
                vec!["[::1]:5000/app", "[::1]:5000"],
            ),
            (image("[fe80::1]/app"), vec!["[fe80::1]/app", "[fe80::1]"]),
            (
                image("nginx"),
                vec![
                    "docker.io/library/nginx",
                    "index.docker.io/library/nginx",
                    "registry-1.docker.io/library/nginx",
                    "docker.io/library",
                    "index.docker.io/library",
                    "registry-1.docker.io/library",
                    "docker.io",
                    "index.docker.io",
                    "registry-1.docker.io",
                ],
            ),
            (
                image("registry-1.docker.io/team/app"),
                vec![
                    "docker.io/team/app",
                    "index.docker.io/team/app",
                    "registry-1.docker.io/team/app",
                    "docker.io/team",
                    "index.docker.io/team",
                    "registry-1.docker.io/team",
                    "docker.io",
                    "index.docker.io",
                    "registry-1.docker.io",
                ],
            ),
            // A host under an unlisted top-level domain: its last two labels are registrable.
            (
                image("registry.corp.internal/app"),
                vec![
                    "registry.corp.internal/app",
                    "registry.corp.internal",
                    "corp.internal",
                ],
            ),
            (
                image("Registry.Example.COM/app"),
                vec![
                    "registry.example.com/app",
                    "registry.example.com",
                    "example.com",
                ],
            ),
            // Labels over 63 characters fit no stored location: only the parents that do.
            (image(&long_label), vec!["example.com"]),
            (
                registry("registry.example.com"),
                vec!["registry.example.com", "example.com"],
            ),
            (
                registry("registry.example.com:5000"),
                vec!["registry.example.com:5000"],
            ),
            (
                registry("index.docker.io"),
                vec!["docker.io", "index.docker.io", "registry-1.docker.io"],
            ),
            (registry("example.co.uk"), vec!["example.co.uk"]),
            (registry("co.uk"), vec!["co.uk"]),
            (registry("localhost"), vec!["localhost"]),
        ];
        for (subject, expected) in cases {
            assert_eq!(subject.candidates(), expected, "{}", subject.normalized());
        }
    }

    fn org() -> OrganizationGuid {
        OrganizationGuid::from_uuid(uuid::Uuid::from_u128(1))
    }

    fn space() -> SpaceGuid {
        SpaceGuid::from_uuid(uuid::Uuid::from_u128(2))
    }

    fn app_target() -> ScopeTarget {
        ScopeTarget::App {
            organization: org(),
            space: space(),
            app: AppGuid::from_uuid(uuid::Uuid::from_u128(3)),
        }
    }

    fn found(id: u128, scope: Scope, location: &str) -> PullMatch {
        PullMatch {
            guid: CredentialGuid::from_uuid(uuid::Uuid::from_u128(100 + id)),
            scope,
            location: RegistryLocation::parse(location).unwrap(),
            username: Username::parse(&format!("user-{id}")).unwrap(),
        }
    }

    /// The winner's id (`None` for no match) for one image among stored matches.
    fn winner(context: &ScopeTarget, subject: &str, matches: &[PullMatch]) -> Option<u128> {
        let query = PullQuery::new(RequestedOwner::Foundation, vec![image(subject)]);
        query.winners(context, matches)[0]
            .map(|index| matches[index].guid.as_uuid().as_u128() - 100)
    }

    #[test]
    fn the_narrowest_level_wins_then_the_most_specific_location() {
        use Scope::{App, Foundation, Organization, Space};
        let app = app_target();
        let in_space = ScopeTarget::Space {
            organization: org(),
            space: space(),
        };
        let in_org = ScopeTarget::Organization(org());
        let cases: Vec<(&ScopeTarget, &str, Vec<PullMatch>, Option<u128>)> = vec![
            (&app, "r.example.com/team/app", vec![], None),
            (
                &app,
                "r.example.com/team/app",
                vec![found(1, Foundation, "r.example.com")],
                Some(1),
            ),
            (
                &app,
                "r.example.com/team/app",
                vec![
                    found(1, Foundation, "r.example.com"),
                    found(2, App, "example.com"),
                ],
                Some(2),
            ),
            (
                &app,
                "r.example.com/team/app",
                vec![
                    found(1, Organization, "r.example.com/team/app"),
                    found(2, Space, "example.com"),
                ],
                Some(2),
            ),
            (
                &app,
                "r.example.com/team/app",
                vec![
                    found(1, Organization, "r.example.com/team"),
                    found(2, Organization, "r.example.com"),
                ],
                Some(1),
            ),
            (
                &app,
                "r.example.com/team/app",
                vec![
                    found(1, App, "r.example.com"),
                    found(2, App, "r.example.com/team/app"),
                ],
                Some(2),
            ),
            (
                &app,
                "r.example.com/team/app",
                vec![
                    found(1, App, "example.com"),
                    found(2, Foundation, "r.example.com/team/app"),
                ],
                Some(1),
            ),
            // A location for another repository, or a prefix not on a `/` boundary, is no match.
            (
                &app,
                "r.example.com/team/app",
                vec![found(1, App, "r.example.com/tea")],
                None,
            ),
            (
                &app,
                "r.example.com/team/app",
                vec![found(1, App, "r.example.com/other")],
                None,
            ),
            // The port is part of the registry: no default-port equivalence.
            (
                &app,
                "r.example.com/app",
                vec![found(1, App, "r.example.com:443")],
                None,
            ),
            (
                &app,
                "r.example.com:443/app",
                vec![found(1, App, "r.example.com")],
                None,
            ),
            (
                &app,
                "r.example.com:443/app",
                vec![found(1, App, "r.example.com:443")],
                Some(1),
            ),
            // Never a public suffix.
            (
                &app,
                "registry.example.co.uk/app",
                vec![found(1, App, "co.uk")],
                None,
            ),
            (
                &app,
                "registry.example.co.uk/app",
                vec![found(1, App, "example.co.uk")],
                Some(1),
            ),
            // Parent domains only for a host without a port.
            (
                &app,
                "registry.example.com:5000/app",
                vec![found(1, App, "example.com")],
                None,
            ),
            // Hub aliases are one registry; `docker.io` is preferred at the same specificity.
            (
                &app,
                "nginx",
                vec![found(1, Foundation, "index.docker.io")],
                Some(1),
            ),
            (
                &app,
                "nginx",
                vec![
                    found(1, App, "registry-1.docker.io"),
                    found(2, App, "docker.io"),
                ],
                Some(2),
            ),
            (
                &app,
                "nginx",
                vec![
                    found(1, App, "docker.io"),
                    found(2, App, "index.docker.io/library"),
                ],
                Some(2),
            ),
            // Tag and digest play no part.
            (
                &app,
                "r.example.com/app:v1",
                vec![found(1, App, "r.example.com/app")],
                Some(1),
            ),
            // A context sees its own levels only: a space's context has no app level.
            (
                &in_space,
                "r.example.com/app",
                vec![
                    found(1, App, "r.example.com/app"),
                    found(2, Space, "r.example.com"),
                ],
                Some(2),
            ),
            (
                &in_org,
                "r.example.com/app",
                vec![
                    found(1, Space, "r.example.com/app"),
                    found(2, Foundation, "r.example.com"),
                ],
                Some(2),
            ),
            (
                &ScopeTarget::Foundation,
                "r.example.com/app",
                vec![found(1, Organization, "r.example.com/app")],
                None,
            ),
        ];
        for (context, subject, matches, expected) in cases {
            assert_eq!(
                winner(context, subject, &matches),
                expected,
                "{subject} {matches:?}"
            );
        }
    }

    #[test]
    fn levels_follow_the_context() {
        let app = app_target();
        assert_eq!(
            levels(&app)
                .iter()
                .map(ScopeTarget::scope)
                .collect::<Vec<_>>(),
            [
                Scope::App,
                Scope::Space,
                Scope::Organization,
                Scope::Foundation
            ]
        );
        assert_eq!(levels(&ScopeTarget::Foundation), [ScopeTarget::Foundation]);
        assert_eq!(
            owner_guid(&levels(&app)[1]).as_deref(),
            Some("00000000-0000-0000-0000-000000000002")
        );
    }

    #[test]
    fn keys_follow_the_matched_location() {
        let app = app_target();
        let cases: Vec<(PullSubject, PullMatch, &str)> = vec![
            (
                image("r.example.com/team/app"),
                found(1, Scope::App, "r.example.com/team"),
                "r.example.com/team",
            ),
            (
                image("r.example.com/team/app"),
                found(1, Scope::App, "r.example.com"),
                "r.example.com",
            ),
            (
                image("r.example.com/team/app"),
                found(1, Scope::App, "example.com"),
                "r.example.com",
            ),
            (
                image("r.example.com:5000/app"),
                found(1, Scope::App, "r.example.com:5000"),
                "r.example.com:5000",
            ),
            (
                image("nginx"),
                found(1, Scope::App, "docker.io"),
                DOCKER_HUB_KEY,
            ),
            (
                image("nginx"),
                found(1, Scope::App, "index.docker.io"),
                DOCKER_HUB_KEY,
            ),
            (
                image("team/app"),
                found(1, Scope::App, "docker.io/team"),
                "docker.io/team",
            ),
            (
                image("team/app"),
                found(1, Scope::App, "registry-1.docker.io/team"),
                "docker.io/team",
            ),
            (
                registry("r.example.com"),
                found(1, Scope::App, "example.com"),
                "r.example.com",
            ),
            (
                registry("registry-1.docker.io"),
                found(1, Scope::App, "docker.io"),
                DOCKER_HUB_KEY,
            ),
        ];
        for (subject, stored, key) in cases {
            let query = PullQuery::new(RequestedOwner::Foundation, vec![subject.clone()]);
            let resolutions = query.resolve(&app, std::slice::from_ref(&stored));
            assert_eq!(
                resolutions[0].key.as_deref(),
                Some(key),
                "{}",
                subject.normalized()
            );
        }
    }

    #[test]
    fn two_credentials_never_share_a_key() {
        let app = app_target();
        let query = PullQuery::new(
            RequestedOwner::Foundation,
            vec![
                image("r.example.com/a/x"),
                image("r.example.com/b/y"),
                registry("r.example.com"),
            ],
        );
        let mut resolutions = query.resolve(&app, &[]);
        // Built by hand: by the precedence rules two entries of one key always share a winner.
        let first = found(1, Scope::App, "r.example.com");
        let second = found(2, Scope::Foundation, "r.example.com");
        for (resolution, winner) in resolutions.iter_mut().zip([&first, &second, &second]) {
            resolution.winner = Some(winner.clone());
            resolution.key = Some("r.example.com".to_owned());
        }
        separate_keys(&mut resolutions);
        let keys: Vec<Option<&str>> = resolutions.iter().map(|r| r.key.as_deref()).collect();
        assert_eq!(
            keys,
            [
                Some("r.example.com/a/x"),
                Some("r.example.com/b/y"),
                Some("r.example.com")
            ]
        );

        // Two registry entries cannot move: the key is left out rather than shared.
        let mut resolutions = PullQuery::new(
            RequestedOwner::Foundation,
            vec![registry("r.example.com"), registry("r.example.com")],
        )
        .resolve(&app, &[]);
        for (resolution, winner) in resolutions.iter_mut().zip([&first, &second]) {
            resolution.winner = Some(winner.clone());
            resolution.key = Some("r.example.com".to_owned());
        }
        separate_keys(&mut resolutions);
        assert!(resolutions.iter().all(|r| r.key.is_none()));
    }

    #[test]
    fn one_key_per_credential_in_the_docker_config() {
        let app = app_target();
        let query = PullQuery::new(
            RequestedOwner::Foundation,
            vec![
                image("r.example.com/a"),
                image("r.example.com/b"),
                image("other.example.net/c"),
            ],
        );
        let stored = [found(1, Scope::Space, "r.example.com")];
        let resolutions = query.resolve(&app, &stored);
        assert!(resolutions[2].winner.is_none());
        assert_eq!(
            resolutions[2].levels_tried.len(),
            4,
            "no winner: every level was searched"
        );
        assert_eq!(
            resolutions[0].levels_tried.len(),
            2,
            "the search stops at the winner's level"
        );
        let password = Password::parse(secrecy::SecretString::from("pw")).unwrap();
        let secrets =
            PullSecrets::assemble(resolutions.clone(), vec![(stored[0].guid, password)]).unwrap();
        assert_eq!(secrets.auths.keys().collect::<Vec<_>>(), ["r.example.com"]);
        assert_eq!(secrets.auths["r.example.com"].username.as_str(), "user-1");
        // A winner whose password the store did not open is an error, not a partial config.
        assert_eq!(
            PullSecrets::assemble(resolutions, Vec::new()).err(),
            Some(stored[0].guid)
        );
    }

    #[test]
    fn requests_are_bounded() {
        let one = || vec![image("nginx")];
        assert!(PullRequest::new(RequestedOwner::Foundation, one()).is_ok());
        assert_eq!(
            PullRequest::new(RequestedOwner::Foundation, Vec::new()).err(),
            Some(PullRequestError::Empty)
        );
        let many = vec![image("nginx"); MAX_PULL_ENTRIES + 1];
        assert_eq!(
            PullRequest::new(RequestedOwner::Foundation, many).err(),
            Some(PullRequestError::TooMany)
        );
        assert!(
            PullRequest::new(
                RequestedOwner::Foundation,
                vec![image("nginx"); MAX_PULL_ENTRIES]
            )
            .is_ok()
        );
        // A hundred distinct Hub paths of 126 components, in three spellings each: over the bound.
        let deep: Vec<PullSubject> = (0..MAX_PULL_ENTRIES)
            .map(|i| image(&format!("u{i:02}/{}", vec!["a"; 125].join("/"))))
            .collect();
        assert_eq!(
            PullRequest::new(RequestedOwner::Foundation, deep).err(),
            Some(PullRequestError::TooManyCandidates)
        );
    }
}

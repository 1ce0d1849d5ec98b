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

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
pub enum PullSubject {
    Image(ImageReference),
    Registry(RegistryHost),
}

impl PullSubject {
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
        candidates.retain(|candidate| RegistryLocation::parse(candidate).is_ok());
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
pub enum PullRequestError {
    #[error("Images and registries can't both be empty")]
    Empty,
    #[error("Images and registries together must have at most {MAX_PULL_ENTRIES} entries")]
    TooMany,
    #[error(
        "The images and registries name more than {MAX_CANDIDATE_LOCATIONS} candidate locations together; send fewer entries"
    )]
    TooManyCandidates,
}

/// A validated request: its context (no relationship is the foundation) and 1..=100 subjects
/// whose candidates stay within [`MAX_CANDIDATE_LOCATIONS`].
#[derive(Debug, Clone)]
pub struct PullRequest {
    context: RequestedOwner,
    subjects: Vec<PullSubject>,
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
        let distinct: BTreeSet<String> =
            subjects.iter().flat_map(PullSubject::candidates).collect();
        if distinct.len() > MAX_CANDIDATE_LOCATIONS {
            return Err(PullRequestError::TooManyCandidates);
        }
        Ok(Self { context, subjects })
    }

    pub fn context(&self) -> RequestedOwner {
        self.context
    }

    pub fn subjects(&self) -> &[PullSubject] {
        &self.subjects
    }
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
pub struct PullMatch {
    pub guid: CredentialGuid,
    /// Which level of the chain it belongs to: a chain has one owner per scope.
    pub scope: Scope,
    pub location: RegistryLocation,
    pub username: Username,
}

/// What the store found for a [`PullQuery`]: every match, and the opened passwords of the
/// winners when they were asked for.
#[derive(Debug, Default)]
pub struct PullLookup {
    pub matches: Vec<PullMatch>,
    pub passwords: Vec<(CredentialGuid, Password)>,
}

/// Whether the store opens the winners' sealed passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reveal {
    /// Only the winners' (resolve).
    Winners,
    /// None (explain).
    Nothing,
}

/// A request with its context resolved: the chain of levels and each subject's candidates.
#[derive(Debug, Clone)]
pub struct PullQuery {
    levels: Vec<ScopeTarget>,
    subjects: Vec<PullSubject>,
    candidates: Vec<Vec<String>>,
    locations: Vec<String>,
}

impl PullQuery {
    pub fn new(context: &ScopeTarget, subjects: Vec<PullSubject>) -> Self {
        let candidates: Vec<Vec<String>> = subjects.iter().map(PullSubject::candidates).collect();
        let locations: BTreeSet<&String> = candidates.iter().flatten().collect();
        let locations = locations.into_iter().cloned().collect();
        Self {
            levels: levels(context),
            subjects,
            candidates,
            locations,
        }
    }

    /// The owners whose credentials may match, in precedence order.
    pub fn levels(&self) -> &[ScopeTarget] {
        &self.levels
    }

    /// Every candidate location of every subject, each once, sorted.
    pub fn locations(&self) -> &[String] {
        &self.locations
    }

    pub fn subjects(&self) -> &[PullSubject] {
        &self.subjects
    }

    /// For each subject, the index in `matches` of the credential it is pulled with, if any.
    pub fn winners(&self, matches: &[PullMatch]) -> Vec<Option<usize>> {
        let mut found: HashMap<(Scope, &str), usize> = HashMap::new();
        for (index, found_match) in matches.iter().enumerate() {
            // The unique index allows one per owner and location; should it not, the first wins.
            found
                .entry((found_match.scope, found_match.location.as_str()))
                .or_insert(index);
        }
        self.candidates
            .iter()
            .map(|candidates| {
                self.levels.iter().find_map(|level| {
                    candidates.iter().find_map(|candidate| {
                        found.get(&(level.scope(), candidate.as_str())).copied()
                    })
                })
            })
            .collect()
    }

    /// The distinct credentials that win for at least one subject: whose passwords are opened.
    pub fn winning_guids(&self, matches: &[PullMatch]) -> BTreeSet<CredentialGuid> {
        self.winners(matches)
            .into_iter()
            .flatten()
            .map(|index| matches[index].guid)
            .collect()
    }

    /// Each subject's resolution, with its key in the `.dockerconfigjson`.
    pub fn resolve(&self, matches: &[PullMatch]) -> Vec<Resolution> {
        let winners = self.winners(matches);
        let mut resolutions: Vec<Resolution> = self
            .subjects
            .iter()
            .zip(&self.candidates)
            .zip(winners)
            .map(|((subject, candidates), winner)| {
                let winner = winner.map(|index| matches[index].clone());
                let tried = match &winner {
                    Some(winner) => self
                        .levels
                        .iter()
                        .position(|level| level.scope() == winner.scope)
                        .map_or(self.levels.len(), |position| position + 1),
                    None => self.levels.len(),
                };
                let key = winner.as_ref().map(|winner| key(subject, &winner.location));
                Resolution {
                    subject: subject.clone(),
                    candidates: candidates.clone(),
                    levels_tried: self.levels[..tried].to_vec(),
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
pub struct Resolution {
    pub subject: PullSubject,
    /// Its candidate locations, most specific first: the same at every level.
    pub candidates: Vec<String>,
    /// The levels searched, in order, up to the winner's (all of them when none won).
    pub levels_tried: Vec<ScopeTarget>,
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
    pub username: Username,
    pub password: Password,
}

/// Resolutions with the secrets they need: the answer of resolve.
#[derive(Debug)]
pub struct PullSecrets {
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

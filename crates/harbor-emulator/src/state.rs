//! The emulated Harbor's data: projects, their quotas, and robots with hashed secrets.

use std::collections::BTreeMap;

use aws_lc_rs::digest::{SHA256, digest};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

pub(crate) struct Project {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) owner_name: String,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) creation_time: OffsetDateTime,
    pub(crate) update_time: OffsetDateTime,
    /// Repositories by their name inside the project (`team/app`).
    pub(crate) repositories: BTreeMap<String, Repository>,
    pub(crate) used_bytes: i64,
}

pub(crate) struct Repository {
    pub(crate) id: i64,
    pub(crate) creation_time: OffsetDateTime,
}

pub(crate) struct Quota {
    pub(crate) id: i64,
    pub(crate) project_id: i64,
    pub(crate) hard_bytes: i64,
    pub(crate) creation_time: OffsetDateTime,
    pub(crate) update_time: OffsetDateTime,
}

pub(crate) struct Robot {
    pub(crate) id: i64,
    /// As Harbor stores it: `<project>+<name>` for project robots.
    pub(crate) stored_name: String,
    pub(crate) project_id: i64,
    pub(crate) description: String,
    pub(crate) duration: i64,
    pub(crate) expires_at: i64,
    pub(crate) disable: bool,
    pub(crate) permissions: Value,
    pub(crate) salt: [u8; 16],
    pub(crate) secret_hash: Vec<u8>,
    pub(crate) creation_time: OffsetDateTime,
    pub(crate) update_time: OffsetDateTime,
}

#[derive(Default)]
pub(crate) struct State {
    next_id: i64,
    pub(crate) projects: BTreeMap<i64, Project>,
    pub(crate) quotas: BTreeMap<i64, Quota>,
    pub(crate) robots: BTreeMap<i64, Robot>,
    pub(crate) calls: Vec<String>,
    pub(crate) request_ids: Vec<String>,
    pub(crate) traceparents: Vec<String>,
    /// Registry tokens issued by `/service/token`, newest last, at most
    /// [`MAX_REGISTRY_TOKENS`].
    registry_tokens: std::collections::VecDeque<String>,
}

/// Registry tokens remembered; older ones stop working, as expired ones would.
const MAX_REGISTRY_TOKENS: usize = 1024;

pub(crate) fn hash_secret(salt: &[u8], secret: &str) -> Vec<u8> {
    let mut input = salt.to_vec();
    input.extend_from_slice(secret.as_bytes());
    digest(&SHA256, &input).as_ref().to_vec()
}

/// 32 random alphanumerics, like Harbor's generated robot secrets.
pub(crate) fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    let _ = getrandom::fill(&mut bytes);
    let mut secret: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    // Harbor's secrets always hold an upper, a lower and a digit; keep that promise.
    secret.replace_range(0..3, "Aa1");
    secret
}

impl State {
    pub(crate) fn issue_registry_token(&mut self) -> String {
        let token = random_secret();
        if self.registry_tokens.len() == MAX_REGISTRY_TOKENS {
            self.registry_tokens.pop_front();
        }
        self.registry_tokens.push_back(token.clone());
        token
    }

    pub(crate) fn registry_token_valid(&self, token: &str) -> bool {
        self.registry_tokens.iter().any(|issued| issued == token)
    }

    fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn project_by_name(&self, name: &str) -> Option<&Project> {
        self.projects.values().find(|project| project.name == name)
    }

    pub(crate) fn create_project(
        &mut self,
        name: &str,
        owner: &str,
        storage_limit: i64,
        metadata: BTreeMap<String, String>,
    ) -> i64 {
        let id = self.next_id();
        let now = OffsetDateTime::now_utc();
        self.projects.insert(
            id,
            Project {
                id,
                name: name.to_owned(),
                owner_name: owner.to_owned(),
                metadata,
                creation_time: now,
                update_time: now,
                repositories: BTreeMap::new(),
                used_bytes: 0,
            },
        );
        let quota_id = self.next_id();
        self.quotas.insert(
            quota_id,
            Quota {
                id: quota_id,
                project_id: id,
                hard_bytes: storage_limit,
                creation_time: now,
                update_time: now,
            },
        );
        id
    }

    /// Deletes a project with its quota and its project robots, as Harbor does.
    pub(crate) fn delete_project(&mut self, id: i64) {
        self.projects.remove(&id);
        self.quotas.retain(|_, quota| quota.project_id != id);
        self.robots.retain(|_, robot| robot.project_id != id);
    }

    pub(crate) fn create_robot(
        &mut self,
        stored_name: String,
        project_id: i64,
        description: String,
        duration: i64,
        disable: bool,
        permissions: Value,
    ) -> (i64, String, OffsetDateTime, i64) {
        let id = self.next_id();
        let now = OffsetDateTime::now_utc();
        let secret = random_secret();
        let mut salt = [0u8; 16];
        let _ = getrandom::fill(&mut salt);
        let expires_at = if duration == -1 {
            -1
        } else {
            now.unix_timestamp() + duration * 86_400
        };
        self.robots.insert(
            id,
            Robot {
                id,
                stored_name,
                project_id,
                description,
                duration,
                expires_at,
                disable,
                permissions,
                secret_hash: hash_secret(&salt, &secret),
                salt,
                creation_time: now,
                update_time: now,
            },
        );
        (id, secret, now, expires_at)
    }

    /// Adds `count` repositories named `team/app-<n>` (a `/` in each, as pushed images often
    /// have, so clients must encode names as Harbor requires).
    pub(crate) fn add_repositories(&mut self, project: &str, count: u32) -> bool {
        let Some(held) = self.project_by_name(project).map(|p| p.repositories.len()) else {
            return false;
        };
        let names: Vec<String> = (0..count as usize)
            .map(|n| format!("team/app-{}", held + n + 1))
            .collect();
        names.iter().all(|name| self.push_repository(project, name))
    }

    /// Creates repository `name` in `project` (nothing when it exists); `false` for an unknown
    /// project.
    pub(crate) fn push_repository(&mut self, project: &str, name: &str) -> bool {
        let id = self.next_id();
        match self.projects.values_mut().find(|p| p.name == project) {
            Some(project) => {
                project
                    .repositories
                    .entry(name.to_owned())
                    .or_insert(Repository {
                        id,
                        creation_time: OffsetDateTime::now_utc(),
                    });
                true
            }
            None => false,
        }
    }

    pub(crate) fn set_usage(&mut self, project: &str, bytes: i64) -> bool {
        match self.projects.values_mut().find(|p| p.name == project) {
            Some(project) => {
                project.used_bytes = bytes;
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub owner_name: String,
    pub repo_count: u32,
    /// The repositories' names inside the project.
    pub repositories: Vec<String>,
    pub used_bytes: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct QuotaView {
    pub id: i64,
    pub project_id: i64,
    pub hard_bytes: i64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RobotView {
    pub id: i64,
    pub stored_name: String,
    pub project_id: i64,
    pub expires_at: i64,
    pub disable: bool,
    pub permissions: Value,
}

/// A snapshot of the emulator, for tests.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StateView {
    pub projects: Vec<ProjectView>,
    pub quotas: Vec<QuotaView>,
    pub robots: Vec<RobotView>,
    /// Every API call seen, as `METHOD /route` (with ` <status> (injected)` for injected faults).
    pub calls: Vec<String>,
    /// Every `X-Request-Id` callers sent.
    pub request_ids: Vec<String>,
    /// Every W3C `traceparent` callers sent.
    pub traceparents: Vec<String>,
}

pub(crate) fn view(state: &State) -> StateView {
    StateView {
        projects: state
            .projects
            .values()
            .map(|p| ProjectView {
                id: p.id,
                name: p.name.clone(),
                owner_name: p.owner_name.clone(),
                repo_count: p.repositories.len() as u32,
                repositories: p.repositories.keys().cloned().collect(),
                used_bytes: p.used_bytes,
            })
            .collect(),
        quotas: state
            .quotas
            .values()
            .map(|q| QuotaView {
                id: q.id,
                project_id: q.project_id,
                hard_bytes: q.hard_bytes,
            })
            .collect(),
        robots: state
            .robots
            .values()
            .map(|r| RobotView {
                id: r.id,
                stored_name: r.stored_name.clone(),
                project_id: r.project_id,
                expires_at: r.expires_at,
                disable: r.disable,
                permissions: r.permissions.clone(),
            })
            .collect(),
        calls: state.calls.clone(),
        request_ids: state.request_ids.clone(),
        traceparents: state.traceparents.clone(),
    }
}

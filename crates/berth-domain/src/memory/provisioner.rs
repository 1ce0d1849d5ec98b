//! [`RegistryProvisioner`] in memory: a Harbor-like backend of projects, quotas, robots and
//! repositories.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::ambient::{Clock, SystemClock};
use crate::ports::{
    CreatedRobot, ProvisionError, ProvisionedProject, ProvisionedQuota, ProvisionedRobot,
    RegistryProvisioner,
};
use crate::registry::{
    ExpiresInDays, ProjectName, ProvisionedProjectId, ProvisionedQuotaId, ProvisionedRobotId,
    QuotaGb, RobotAccess, RobotName,
};

/// Harbor's default prefix of robot logins.
const ROBOT_PREFIX: &str = "robot$";

/// A Harbor-like registry backend in memory. Logins are `robot$<project>+<name>`, as Harbor
/// makes project robots'; secrets are `secret-<n>`, a new one on every refresh.
#[derive(Clone)]
pub struct MemoryProvisioner {
    endpoint: String,
    account: String,
    clock: Arc<dyn Clock>,
    backend: Arc<Mutex<Backend>>,
}

impl std::fmt::Debug for MemoryProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryProvisioner")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Backend {
    /// Ids count up across projects, quotas and robots, as no two need to be alike.
    last_id: i64,
    projects: BTreeMap<ProjectName, Project>,
    unavailable: bool,
}

struct Project {
    id: ProvisionedProjectId,
    owner: String,
    created: OffsetDateTime,
    quota: ProvisionedQuota,
    robots: Vec<Robot>,
    repositories: Vec<String>,
}

struct Robot {
    id: ProvisionedRobotId,
    name: RobotName,
    username: String,
    secret: String,
    expires_at: Option<OffsetDateTime>,
}

impl Robot {
    fn provisioned(&self) -> ProvisionedRobot {
        ProvisionedRobot {
            id: self.id,
            username: self.username.clone(),
            expires_at: self.expires_at,
        }
    }
}

impl Backend {
    fn next_id(&mut self) -> i64 {
        self.last_id += 1;
        self.last_id
    }

    fn robot(&mut self, id: ProvisionedRobotId) -> Result<&mut Robot, ProvisionError> {
        self.projects
            .values_mut()
            .flat_map(|project| project.robots.iter_mut())
            .find(|robot| robot.id == id)
            .ok_or(ProvisionError::NotFound)
    }
}

impl MemoryProvisioner {
    /// An empty backend serving pulls at `endpoint` (such as `harbor.example`), acting as
    /// `admin`, on the wall clock.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            account: "admin".to_owned(),
            clock: Arc::new(SystemClock),
            backend: Arc::default(),
        }
    }

    /// Reads robots' expiry and projects' creation time from `clock` (give it the services').
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a repository to a project, as a push would; `false` for an unknown project.
    pub fn push_repository(&self, project: &ProjectName, repository: &str) -> bool {
        let mut backend = self.backend();
        let Some(project) = backend.projects.get_mut(project) else {
            return false;
        };
        if !project.repositories.iter().any(|name| name == repository) {
            project.repositories.push(repository.to_owned());
        }
        true
    }

    /// Sets a project's used storage, as pushes would.
    pub fn set_used_bytes(&self, project: &ProjectName, used_bytes: i64) -> bool {
        let mut backend = self.backend();
        let Some(project) = backend.projects.get_mut(project) else {
            return false;
        };
        project.quota.used_bytes = used_bytes;
        true
    }

    /// Whether a robot of that login has that secret now, as a registry login would check.
    pub fn accepts(&self, username: &str, secret: &str) -> bool {
        self.backend()
            .projects
            .values()
            .flat_map(|project| project.robots.iter())
            .any(|robot| robot.username == username && robot.secret == secret)
    }

    /// The projects' names, in order.
    pub fn projects(&self) -> Vec<ProjectName> {
        self.backend().projects.keys().cloned().collect()
    }

    /// Makes every call fail with [`ProvisionError::Unavailable`] (`true`) or work again.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.backend().unavailable = unavailable;
    }

    fn backend(&self) -> MutexGuard<'_, Backend> {
        self.backend.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The backend, unless it is set unavailable.
    fn up(&self) -> Result<MutexGuard<'_, Backend>, ProvisionError> {
        let backend = self.backend();
        if backend.unavailable {
            return Err(ProvisionError::Unavailable(
                "the memory backend is set unavailable".to_owned(),
            ));
        }
        Ok(backend)
    }

    fn expiry(&self, days: Option<ExpiresInDays>) -> Option<OffsetDateTime> {
        days.map(|days| self.clock.now() + time::Duration::days(i64::from(days.get())))
    }
}

fn secret(id: i64, generation: i64) -> String {
    format!("secret-{id}-{generation}")
}

#[async_trait]
impl RegistryProvisioner for MemoryProvisioner {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn account(&self) -> String {
        self.account.clone()
    }

    async fn ping(&self) -> Result<(), ProvisionError> {
        self.up().map(drop)
    }

    async fn create_project(
        &self,
        name: &ProjectName,
        quota: QuotaGb,
    ) -> Result<ProvisionedProjectId, ProvisionError> {
        let now = self.clock.now();
        let mut backend = self.up()?;
        if backend.projects.contains_key(name) {
            return Err(ProvisionError::Conflict);
        }
        let id = ProvisionedProjectId::new(backend.next_id());
        let quota = ProvisionedQuota {
            id: ProvisionedQuotaId::new(backend.next_id()),
            hard_bytes: quota.bytes(),
            used_bytes: 0,
        };
        backend.projects.insert(
            name.clone(),
            Project {
                id,
                owner: self.account.clone(),
                created: now,
                quota,
                robots: Vec::new(),
                repositories: Vec::new(),
            },
        );
        Ok(id)
    }

    async fn find_project(
        &self,
        name: &ProjectName,
    ) -> Result<Option<ProvisionedProject>, ProvisionError> {
        Ok(self
            .up()?
            .projects
            .get(name)
            .map(|project| ProvisionedProject {
                id: project.id,
                owner_name: project.owner.clone(),
                creation_time: project.created,
                repo_count: project.repositories.len() as u64,
            }))
    }

    async fn delete_project(&self, id: ProvisionedProjectId) -> Result<(), ProvisionError> {
        let mut backend = self.up()?;
        let (name, project) = backend
            .projects
            .iter()
            .find(|(_, project)| project.id == id)
            .ok_or(ProvisionError::NotFound)?;
        if !project.repositories.is_empty() {
            return Err(ProvisionError::Precondition(
                "the project still holds repositories".to_owned(),
            ));
        }
        let name = name.clone();
        backend.projects.remove(&name);
        Ok(())
    }

    async fn project_quota(
        &self,
        project: ProvisionedProjectId,
    ) -> Result<ProvisionedQuota, ProvisionError> {
        self.up()?
            .projects
            .values()
            .find(|candidate| candidate.id == project)
            .map(|project| project.quota)
            .ok_or(ProvisionError::NotFound)
    }

    async fn set_quota(
        &self,
        id: ProvisionedQuotaId,
        quota: QuotaGb,
    ) -> Result<(), ProvisionError> {
        let mut backend = self.up()?;
        let project = backend
            .projects
            .values_mut()
            .find(|project| project.quota.id == id)
            .ok_or(ProvisionError::NotFound)?;
        project.quota.hard_bytes = quota.bytes();
        Ok(())
    }

    async fn create_robot(
        &self,
        project: &ProjectName,
        name: &RobotName,
        // Every robot here may do what it asks; only a real registry enforces access.
        _access: RobotAccess,
        expires_in_days: Option<ExpiresInDays>,
    ) -> Result<CreatedRobot, ProvisionError> {
        let expires_at = self.expiry(expires_in_days);
        let mut backend = self.up()?;
        let id = backend.next_id();
        let found = backend
            .projects
            .get_mut(project)
            .ok_or(ProvisionError::NotFound)?;
        if found.robots.iter().any(|robot| &robot.name == name) {
            return Err(ProvisionError::Conflict);
        }
        let robot = Robot {
            id: ProvisionedRobotId::new(id),
            name: name.clone(),
            username: format!("{ROBOT_PREFIX}{}+{}", project.as_str(), name.as_str()),
            secret: secret(id, 0),
            expires_at,
        };
        let created = CreatedRobot {
            robot: robot.provisioned(),
            secret: SecretString::from(robot.secret.clone()),
        };
        found.robots.push(robot);
        Ok(created)
    }

    async fn find_robot(
        &self,
        project_id: ProvisionedProjectId,
        project: &ProjectName,
        name: &RobotName,
    ) -> Result<Option<ProvisionedRobot>, ProvisionError> {
        Ok(self
            .up()?
            .projects
            .get(project)
            .filter(|found| found.id == project_id)
            .and_then(|found| found.robots.iter().find(|robot| &robot.name == name))
            .map(Robot::provisioned))
    }

    async fn refresh_robot_secret(
        &self,
        id: ProvisionedRobotId,
    ) -> Result<SecretString, ProvisionError> {
        let mut backend = self.up()?;
        let generation = backend.next_id();
        let robot = backend.robot(id)?;
        robot.secret = secret(id.get(), generation);
        Ok(SecretString::from(robot.secret.clone()))
    }

    async fn delete_robot(&self, id: ProvisionedRobotId) -> Result<(), ProvisionError> {
        let mut backend = self.up()?;
        for project in backend.projects.values_mut() {
            if let Some(index) = project.robots.iter().position(|robot| robot.id == id) {
                project.robots.remove(index);
                return Ok(());
            }
        }
        Err(ProvisionError::NotFound)
    }

    async fn renew_robot(
        &self,
        id: ProvisionedRobotId,
        expires_in_days: Option<ExpiresInDays>,
    ) -> Result<ProvisionedRobot, ProvisionError> {
        let expires_at = self.expiry(expires_in_days);
        let mut backend = self.up()?;
        let robot = backend.robot(id)?;
        robot.expires_at = expires_at;
        Ok(robot.provisioned())
    }

    async fn repositories(&self, project: &ProjectName) -> Result<Vec<String>, ProvisionError> {
        self.up()?
            .projects
            .get(project)
            .map(|found| found.repositories.iter().take(100).cloned().collect())
            .ok_or(ProvisionError::NotFound)
    }

    async fn delete_repository(
        &self,
        project: &ProjectName,
        repository: &str,
    ) -> Result<(), ProvisionError> {
        let mut backend = self.up()?;
        let found = backend
            .projects
            .get_mut(project)
            .ok_or(ProvisionError::NotFound)?;
        let index = found
            .repositories
            .iter()
            .position(|name| name == repository)
            .ok_or(ProvisionError::NotFound)?;
        found.repositories.remove(index);
        Ok(())
    }
}

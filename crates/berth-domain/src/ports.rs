//! Driven ports: what the use cases need from the outside world. Adapters implement them; only
//! the `berth` binary builds adapters.

use async_trait::async_trait;

use crate::audit::AuditEvent;

use crate::credential::{Password, RegistryCredential, Username};
use crate::directory::{App, Dependents, DirectoryEntry, Organization, Space};
use crate::idempotency::{Claim, ClaimOutcome, KeyOwner, StoredAnswer};
use crate::ids::{CredentialGuid, OrganizationGuid, SpaceGuid};
use crate::listing::{CredentialQuery, DirectoryQuery, Page};
use crate::location::RegistryLocation;
use crate::pull_secrets::{PullLookup, PullQuery, Reveal};
use crate::registry::{
    ExpiresInDays, ProjectName, ProvisionedProjectId, ProvisionedQuotaId, ProvisionedRobotId,
    QuotaGb, Registry, RegistryId, RobotAccess, RobotCredential, RobotId, RobotName,
};
use crate::roles::{PermissionFacts, RoleAssignment, RoleGuid, RoleQuery};
use crate::verification::Probe;

/// Any error an adapter wants to keep as the cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a store can answer besides success.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A row with the same unique key exists.
    #[error("a conflicting row exists")]
    Conflict,
    /// The row to change or delete does not exist.
    #[error("the row does not exist")]
    NotFound,
    /// A row this one refers to does not exist (any more).
    #[error("a referenced row does not exist")]
    MissingParent,
    /// Rows still refer to the one to delete.
    #[error("the row is still referred to")]
    InUse(Dependents),
    /// The database cannot be reached or refused the connection.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else; a bug or a broken invariant.
    #[error("the store failed")]
    Unexpected(#[source] BoxError),
}

/// Keeps registry credentials, their passwords sealed at rest.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Stores a new credential and seals its password, and writes `event` in the same
    /// transaction (neither is stored without the other).
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when a credential with the same scope target and
    /// location exists (enforced by the database, so concurrent inserts give one winner), and
    /// [`StoreError::MissingParent`] when its organization, space or app no longer exists.
    /// Otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn insert(
        &self,
        credential: &RegistryCredential,
        password: &Password,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;

    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get(&self, guid: CredentialGuid) -> Result<Option<RegistryCredential>, StoreError>;

    /// Reads a credential to change it, under a write lock: until the returned
    /// [`LockedCredential`] is written or dropped, no other writer can change that credential,
    /// so a read-merge-write never loses a concurrent write and never has to be retried.
    /// Dropping it changes nothing.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the lock could not be had in time (other writers kept it);
    /// otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn lock(
        &self,
        guid: CredentialGuid,
    ) -> Result<Option<Box<dyn LockedCredential>>, StoreError>;

    /// Deletes a credential and writes `event`, in one transaction.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the credential does not exist, and
    /// [`StoreError::Conflict`] when its lock could not be had in time.
    /// Otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn delete(&self, guid: CredentialGuid, event: &AuditEvent) -> Result<(), StoreError>;

    /// Filters, orders and pages in the store, so `total_results` counts every match.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn list(&self, query: &CredentialQuery) -> Result<Page<RegistryCredential>, StoreError>;

    /// Opens the sealed password of a credential.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] when the seal does not open (wrong key, tampered or moved
    /// ciphertext); otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn reveal_password(&self, guid: CredentialGuid) -> Result<Option<Password>, StoreError>;

    /// Locates the query's owner ([`PullQuery::owner`]) with its parents and finds every
    /// credential of its chain (the owner, its parents, the foundation) stored under one of the
    /// candidate locations ([`PullQuery::locations`]), all in ONE statement; then, with
    /// [`Reveal::Winners`], the passwords of the winners ([`PullQuery::winning_guids`]) and of
    /// no other credential are opened. `None` when the owner does not exist.
    ///
    /// # Errors
    /// MUST return [`StoreError::Unexpected`] naming the credential's guid when a winner's
    /// sealed password does not open (wrong key, tampered or moved ciphertext), never a partial
    /// answer; otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn pull_matches(
        &self,
        query: &PullQuery,
        reveal: Reveal,
    ) -> Result<Option<PullLookup>, StoreError>;
}

/// A credential read under a write lock, from [`CredentialStore::lock`].
#[async_trait]
pub trait LockedCredential: Send {
    /// The credential as stored when the lock was taken.
    fn current(&self) -> &RegistryCredential;

    /// Replaces username, metadata and `updated_at`, and the password when one is given; the
    /// stored revision goes up by one; `event` is written in the same transaction. Then
    /// releases the lock.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the database gave up the lock before the write ended;
    /// otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`]. Nothing is changed then.
    async fn write(
        self: Box<Self>,
        credential: &RegistryCredential,
        password: Option<&Password>,
        event: &AuditEvent,
    ) -> Result<(), StoreError>;
}

/// One kind of directory entry (organizations, spaces or apps) in the store.
#[async_trait]
pub trait DirectoryEntries<E: DirectoryEntry>: Send + Sync {
    /// Inserts the entry and writes `event`, in one transaction.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the guid exists and
    /// [`StoreError::MissingParent`] when its parent ([`DirectoryEntry::PARENT`]) does not.
    async fn insert(&self, entry: &E, event: &AuditEvent) -> Result<(), StoreError>;
    /// Replaces the name and `updated_at`, and writes `event`, in one transaction.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist.
    async fn update(&self, entry: &E, event: &AuditEvent) -> Result<(), StoreError>;
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get(&self, guid: E::Guid) -> Result<Option<E>, StoreError>;
    /// The page of entries the query's visibility and filters select, with the total.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn list(&self, query: &DirectoryQuery) -> Result<Page<E>, StoreError>;
    /// Deletes an entry that nothing refers to, and writes `event`, in one transaction; an
    /// app's credentials (and their labels) are deleted with it, in that transaction, as Cloud
    /// Controller does, each with its `audit.registry_credential.delete` event
    /// ([`AuditEvent::credential_deleted_with`]).
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist and
    /// [`StoreError::InUse`] when children, credentials, roles or a registry still refer to it
    /// (nothing is deleted).
    async fn delete(&self, guid: E::Guid, event: &AuditEvent) -> Result<(), StoreError>;
}

/// Keeps the directory of organizations, spaces and apps.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// The organizations.
    fn organizations(&self) -> &dyn DirectoryEntries<Organization>;
    /// The spaces.
    fn spaces(&self) -> &dyn DirectoryEntries<Space>;
    /// The apps.
    fn apps(&self) -> &dyn DirectoryEntries<App>;
    /// The roles, on the same database.
    fn roles(&self) -> &dyn RoleStore;
    /// The permission lookup of a caller whose directory roles count, in ONE indexed statement:
    /// the roles `user` holds in the directory, and the organization of each space of `spaces`
    /// (the token's space roles) and of each space the directory gives a role in. An adapter may
    /// keep an answer for a stated, bounded time, provided a role written through it counts from
    /// its next answer on.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn permission_facts(
        &self,
        user: &str,
        spaces: &[SpaceGuid],
    ) -> Result<PermissionFacts, StoreError>;
    /// The organization of each of `spaces` that exists.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn space_organizations(
        &self,
        spaces: &[SpaceGuid],
    ) -> Result<Vec<(SpaceGuid, OrganizationGuid)>, StoreError>;
}

/// What [`RoleStore::upsert`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoleUpsert {
    /// The role was stored.
    Created,
    /// A role is stored under the guid already (the same grant or not: the caller compares).
    Exists(RoleAssignment),
    /// The user already holds this role under another guid.
    GrantTaken,
    /// A space role for a user without any role in the space's organization.
    NoOrganizationRole,
}

/// What [`RoleStore::delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoleRemoval {
    /// The role was deleted and its event written.
    Deleted,
    /// Nothing was deleted: the role is the user's last in its organization and the user still
    /// holds this many roles in the organization's spaces.
    SpaceRolesRemain(u64),
}

/// Keeps the roles of the directory.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// Stores a role unless its guid is taken, and writes `event` when it does, in ONE
    /// transaction holding its organization's row, so a space role and the deletion of the
    /// user's last organization role never both succeed, and no role is stored without its
    /// event.
    ///
    /// # Errors
    /// MUST return [`StoreError::MissingParent`] when the organization or space does not exist,
    /// and [`StoreError::Conflict`] when the organization's lock could not be had in time.
    /// Otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`]. Concurrent upserts
    /// of one guid or one grant give exactly one [`RoleUpsert::Created`].
    async fn upsert(
        &self,
        role: &RoleAssignment,
        event: &AuditEvent,
    ) -> Result<RoleUpsert, StoreError>;

    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get(&self, guid: RoleGuid) -> Result<Option<RoleAssignment>, StoreError>;

    /// The page of roles the query's visibility and filters select, with the total.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn list(&self, query: &RoleQuery) -> Result<Page<RoleAssignment>, StoreError>;

    /// Deletes a role and writes `event` in ONE transaction holding its organization's row;
    /// the user's last organization role stays while the user holds roles in that
    /// organization's spaces (then nothing is written).
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] when the guid does not exist, and
    /// [`StoreError::Conflict`] when the organization's lock could not be had in time.
    /// Otherwise [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn delete(&self, guid: RoleGuid, event: &AuditEvent) -> Result<RoleRemoval, StoreError>;
}

/// Why Harbor (or another provisioner) did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// Unreachable, timed out, answered 5xx, or cut the connection: the call may or may not have
    /// taken effect.
    #[error("the registry backend is unavailable: {0}")]
    Unavailable(String),
    /// The backend refused Berth's own credential (401/403): an operator must fix the setting.
    #[error("the registry backend refused Berth's credential")]
    Misconfigured,
    /// Not found in the registry backend.
    #[error("not found in the registry backend")]
    NotFound,
    /// Already exists in the registry backend.
    #[error("already exists in the registry backend")]
    Conflict,
    /// A precondition failed, such as deleting a project that still holds repositories.
    #[error("precondition failed in the registry backend: {0}")]
    Precondition(String),
    /// The backend rejected the request as invalid (400/422): a bug on Berth's side.
    #[error("the registry backend rejected the request: {0}")]
    Rejected(String),
}

/// A project as the provisioner reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProvisionedProject {
    /// Its id.
    pub id: ProvisionedProjectId,
    /// The account that owns it.
    pub owner_name: String,
    /// When the backend created it.
    pub creation_time: time::OffsetDateTime,
    /// How many repositories it holds.
    pub repo_count: u64,
}

impl ProvisionedProject {
    /// A project as the backend reports it.
    pub fn new(
        id: ProvisionedProjectId,
        owner_name: String,
        creation_time: time::OffsetDateTime,
        repo_count: u64,
    ) -> Self {
        Self {
            id,
            owner_name,
            creation_time,
            repo_count,
        }
    }
}

/// A project's quota: its id (not the project's), the limit and the usage, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProvisionedQuota {
    /// Its id.
    pub id: ProvisionedQuotaId,
    /// The limit, in bytes.
    pub hard_bytes: i64,
    /// The usage, in bytes.
    pub used_bytes: i64,
}

impl ProvisionedQuota {
    /// A quota as the backend reports it.
    pub fn new(id: ProvisionedQuotaId, hard_bytes: i64, used_bytes: i64) -> Self {
        Self {
            id,
            hard_bytes,
            used_bytes,
        }
    }
}

/// A robot as the provisioner reports it (never with a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProvisionedRobot {
    /// Its id.
    pub id: ProvisionedRobotId,
    /// The full login name, as returned by the backend, never built by Berth.
    pub username: String,
    /// When it expires; `None`: never.
    pub expires_at: Option<time::OffsetDateTime>,
}

impl ProvisionedRobot {
    /// A robot as the backend reports it.
    pub fn new(
        id: ProvisionedRobotId,
        username: String,
        expires_at: Option<time::OffsetDateTime>,
    ) -> Self {
        Self {
            id,
            username,
            expires_at,
        }
    }
}

/// A robot just created, with its secret (shown once).
#[non_exhaustive]
pub struct CreatedRobot {
    /// The robot.
    pub robot: ProvisionedRobot,
    /// Its secret, shown once.
    pub secret: secrecy::SecretString,
}

impl CreatedRobot {
    /// A robot just created, with its secret.
    pub fn new(robot: ProvisionedRobot, secret: secrecy::SecretString) -> Self {
        Self { robot, secret }
    }
}

/// Provisions registries: projects, quotas and robot accounts (Harbor in production).
#[async_trait]
pub trait RegistryProvisioner: Send + Sync {
    /// The registry host clients pull from, such as `harbor.example.com`.
    fn endpoint(&self) -> String;

    /// The account Berth acts as: the owner of the projects it creates.
    fn account(&self) -> String;

    /// Checks the backend answers (for readiness probes).
    ///
    /// # Errors
    /// [`ProvisionError::Unavailable`] when it does not.
    async fn ping(&self) -> Result<(), ProvisionError>;

    /// Creates a project with a storage limit; returns its id.
    ///
    /// # Errors
    /// MUST return [`ProvisionError::Conflict`] when the name is taken; otherwise
    /// [`ProvisionError::Unavailable`], [`ProvisionError::Misconfigured`] or [`ProvisionError::Rejected`].
    async fn create_project(
        &self,
        name: &ProjectName,
        quota: QuotaGb,
    ) -> Result<ProvisionedProjectId, ProvisionError>;

    /// # Errors
    /// As [`RegistryProvisioner::create_project`], never `Conflict`.
    async fn find_project(
        &self,
        name: &ProjectName,
    ) -> Result<Option<ProvisionedProject>, ProvisionError>;

    /// # Errors
    /// MUST return [`ProvisionError::NotFound`] for an unknown id and
    /// [`ProvisionError::Precondition`] while repositories remain.
    async fn delete_project(&self, id: ProvisionedProjectId) -> Result<(), ProvisionError>;

    /// The quota of a project.
    ///
    /// # Errors
    /// [`ProvisionError::NotFound`] when the project has no quota.
    async fn project_quota(
        &self,
        project: ProvisionedProjectId,
    ) -> Result<ProvisionedQuota, ProvisionError>;

    /// Sets a quota's limit (idempotent).
    ///
    /// # Errors
    /// [`ProvisionError::NotFound`] for an unknown quota.
    async fn set_quota(&self, id: ProvisionedQuotaId, quota: QuotaGb)
    -> Result<(), ProvisionError>;

    /// Creates a project robot with `access` to that project only; it never expires without
    /// `expires_in_days`.
    ///
    /// # Errors
    /// MUST return [`ProvisionError::Conflict`] when the project has a robot of that name.
    async fn create_robot(
        &self,
        project: &ProjectName,
        name: &RobotName,
        access: RobotAccess,
        expires_in_days: Option<ExpiresInDays>,
    ) -> Result<CreatedRobot, ProvisionError>;

    /// A project's robot by short name.
    ///
    /// # Errors
    /// [`ProvisionError::Unavailable`] and the like.
    async fn find_robot(
        &self,
        project_id: ProvisionedProjectId,
        project: &ProjectName,
        name: &RobotName,
    ) -> Result<Option<ProvisionedRobot>, ProvisionError>;

    /// Gives a robot a new secret; the old one stops working at once.
    ///
    /// # Errors
    /// [`ProvisionError::NotFound`] for an unknown robot.
    async fn refresh_robot_secret(
        &self,
        id: ProvisionedRobotId,
    ) -> Result<secrecy::SecretString, ProvisionError>;

    /// # Errors
    /// MUST return [`ProvisionError::NotFound`] for an unknown robot.
    async fn delete_robot(&self, id: ProvisionedRobotId) -> Result<(), ProvisionError>;

    /// Renews a robot so that it expires `expires_in_days` whole days from now at the earliest
    /// (`None`: never), and returns it as the backend now reports it. Idempotent.
    ///
    /// # Errors
    /// MUST return [`ProvisionError::NotFound`] for an unknown robot; otherwise
    /// [`ProvisionError::Unavailable`], [`ProvisionError::Misconfigured`] or
    /// [`ProvisionError::Rejected`].
    async fn renew_robot(
        &self,
        id: ProvisionedRobotId,
        expires_in_days: Option<ExpiresInDays>,
    ) -> Result<ProvisionedRobot, ProvisionError>;

    /// The first page (at most 100) of a project's repositories, by their names inside the
    /// project (`team/app`, without the project): a purge deletes them and asks again until
    /// none is left.
    ///
    /// # Errors
    /// MUST return [`ProvisionError::NotFound`] for an unknown project; otherwise
    /// [`ProvisionError::Unavailable`] or [`ProvisionError::Misconfigured`].
    async fn repositories(&self, project: &ProjectName) -> Result<Vec<String>, ProvisionError>;

    /// Deletes a repository (with its artifacts) of a project.
    ///
    /// # Errors
    /// MUST return [`ProvisionError::NotFound`] when it is already gone and
    /// [`ProvisionError::Precondition`] when the backend keeps it (an immutable tag); otherwise
    /// [`ProvisionError::Unavailable`] or [`ProvisionError::Misconfigured`].
    async fn delete_repository(
        &self,
        project: &ProjectName,
        repository: &str,
    ) -> Result<(), ProvisionError>;
}

/// Who holds a registry's lease: one per attempt to change it, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseHolder(uuid::Uuid);

impl LeaseHolder {
    /// A new holder, unlike any other.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The holder of that id (from an [`IdSource`](crate::ambient::IdSource)).
    pub fn from_uuid(uuid: uuid::Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

/// A lease on a registry row: who works on it, until when. Only the holder changes the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Who holds the lease.
    pub holder: LeaseHolder,
    /// When the lease runs out.
    pub until: time::OffsetDateTime,
}

/// Keeps registries and their robot credentials.
#[async_trait]
pub trait RegistryStore: Send + Sync {
    /// Inserts a new registry row, leased to `lease.holder`.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the organization already has a registry row
    /// (enforced by the database) and [`StoreError::MissingParent`] for an unknown organization.
    async fn claim(&self, registry: &Registry, lease: Lease) -> Result<(), StoreError>;

    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get(&self, id: RegistryId) -> Result<Option<Registry>, StoreError>;

    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn get_by_organization(
        &self,
        organization: OrganizationGuid,
    ) -> Result<Option<Registry>, StoreError>;

    /// Takes the lease if it is free or expired (at `now`); `false` when someone else holds it.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn acquire(
        &self,
        id: RegistryId,
        lease: Lease,
        now: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Like [`Self::acquire`], but while someone else holds the lease, tries again for up to
    /// `wait` (a bounded wait, so a change queues behind another instead of failing at once).
    /// `lease.until` counts from the call.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn acquire_within(
        &self,
        id: RegistryId,
        lease: Lease,
        wait: time::Duration,
    ) -> Result<bool, StoreError>;

    /// Writes the registry's progress while holding the lease, and `events` (the changes this
    /// step completes) in the same transaction.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when `holder` no longer holds the lease (nothing
    /// written).
    async fn save(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError>;

    /// Writes the registry's final state and gives the lease up, in one write, with `events`
    /// in the same transaction.
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when `holder` no longer holds the lease.
    async fn save_and_release(
        &self,
        registry: &Registry,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError>;

    /// Gives the lease up.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn release(&self, id: RegistryId, holder: LeaseHolder) -> Result<(), StoreError>;

    /// Deletes a registry row, its robots and the credentials they manage, and writes `events`,
    /// in one transaction, while holding the lease.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when `holder` no longer holds the lease.
    async fn delete(
        &self,
        id: RegistryId,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError>;

    /// Registries provisioning or disabling whose lease is free or expired and that have not
    /// changed since `before`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn stalled(&self, before: time::OffsetDateTime) -> Result<Vec<Registry>, StoreError>;

    /// Records the last known usage (no lease needed: it is only a cache).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn record_usage(
        &self,
        id: RegistryId,
        used_bytes: i64,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// # Errors
    /// MUST return [`StoreError::Conflict`] when the registry has a robot of that name.
    async fn insert_robot(&self, robot: &RobotCredential) -> Result<(), StoreError>;

    /// Records a robot's progress, with `events` in the same transaction, only while `holder` holds its registry's lease (checked and
    /// written in one transaction), so a robot is never recorded by a change that lost the
    /// registry to another (such as a disable).
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when `holder` no longer holds the lease and
    /// [`StoreError::NotFound`] for an unknown robot.
    async fn update_robot(
        &self,
        robot: &RobotCredential,
        holder: LeaseHolder,
        events: &[AuditEvent],
    ) -> Result<(), StoreError>;

    /// Records the managed (platform pull) robot's progress and, in the same transaction, writes
    /// its login as the organization-scoped `credential`, the password sealed as every
    /// credential's is: a credential already at that scope and location is taken over (its guid
    /// kept, username, password and the managed label replaced), otherwise `credential` is
    /// inserted. The robot row records the credential's guid, which is returned. Only while
    /// `holder` holds the registry's lease, as [`Self::update_robot`].
    ///
    /// # Errors
    /// MUST return [`StoreError::Conflict`] when `holder` no longer holds the lease (or a
    /// concurrent writer took the location meanwhile: nothing is written, a retry settles it) and
    /// [`StoreError::NotFound`] for an unknown robot.
    async fn update_managed_robot(
        &self,
        robot: &RobotCredential,
        holder: LeaseHolder,
        credential: &RegistryCredential,
        password: &Password,
        events: &[AuditEvent],
    ) -> Result<CredentialGuid, StoreError>;

    /// Deletes a robot's row and, in the same transaction, the credential it manages, if any,
    /// and writes `events`.
    ///
    /// # Errors
    /// MUST return [`StoreError::NotFound`] for an unknown robot.
    async fn delete_robot(&self, id: RobotId, events: &[AuditEvent]) -> Result<(), StoreError>;

    /// Robots of a registry, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn robots(&self, registry: RegistryId) -> Result<Vec<RobotCredential>, StoreError>;

    /// Robots stuck in `Creating` since before `before`, for the reconciler.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn stalled_robots(
        &self,
        before: time::OffsetDateTime,
    ) -> Result<Vec<RobotCredential>, StoreError>;
}

/// Keeps idempotency keys' records: a claim while the request runs, then its answer, sealed
/// (it may carry a one-time secret), until the replay window ends.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims the key atomically: inserts the record, or takes over one whose replay window or
    /// claim has run out. Of concurrent claims of one key, across processes, exactly one is
    /// [`ClaimOutcome::Claimed`]; the others see the record as it is ([`ClaimOutcome::Held`]),
    /// its answer opened.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`] (a sealed value that does not
    /// open among them).
    async fn claim(&self, claim: &Claim) -> Result<ClaimOutcome, StoreError>;

    /// Seals and keeps the answer of a claimed key, until `expires_at`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the claim is gone; otherwise [`StoreError::Unavailable`] or
    /// [`StoreError::Unexpected`].
    async fn complete(
        &self,
        owner: &KeyOwner,
        answer: &StoredAnswer,
        expires_at: time::OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Deletes a claim that has no answer (the request failed), so a retry runs again.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn release(&self, owner: &KeyOwner) -> Result<(), StoreError>;

    /// Deletes at most `batch` records whose replay window ended before `now`, and whose claim
    /// (if unanswered) ran out too; returns how many. Safe to run on every replica at once.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] or [`StoreError::Unexpected`].
    async fn prune(&self, now: time::OffsetDateTime, batch: u32) -> Result<u64, StoreError>;
}

/// Checks a username and password against the registry at a location, as a pull client logs in
/// (the Registry v2 handshake), behind the deployment's network policy.
#[async_trait]
pub trait RegistryVerifier: Send + Sync {
    /// Never fails: every misbehaviour of the registry or the network is an outcome
    /// ([`VerificationOutcome::Unreachable`], [`VerificationOutcome::Unverified`],
    /// [`VerificationOutcome::Blocked`]). Implementations MUST bound the whole call by a deadline,
    /// MUST NOT contact a host the policy blocks, and MUST keep the password and any token out
    /// of the detail.
    ///
    /// [`VerificationOutcome::Unreachable`]: crate::verification::VerificationOutcome::Unreachable
    /// [`VerificationOutcome::Unverified`]: crate::verification::VerificationOutcome::Unverified
    /// [`VerificationOutcome::Blocked`]: crate::verification::VerificationOutcome::Blocked
    async fn verify(
        &self,
        location: &RegistryLocation,
        username: &Username,
        password: &Password,
    ) -> Probe;
}

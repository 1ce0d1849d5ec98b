//! Organization registries: a project in the registry backend (Harbor) with a storage quota,
//! and its robot credentials.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::{CredentialGuid, OrganizationGuid};

/// Bytes in one GB as Harbor's quotas count them (GiB).
pub const BYTES_PER_GB: i64 = 1024 * 1024 * 1024;
/// Harbor's largest storage limit, 1024 TB, in GB.
pub const MAX_QUOTA_GB: u64 = 1024 * 1024;
/// The short name of the robot every enabled registry has.
pub const DEFAULT_ROBOT_NAME: &str = "berth-default";
/// The short name of the platform pull robot every enabled registry has (SPEC 7.2).
pub const PULL_ROBOT_NAME: &str = "berth-pull";
/// The label that marks the registry credential holding the platform pull robot's login.
pub const MANAGED_BY_LABEL: &str = "berth.dev/managed-by";
/// [`MANAGED_BY_LABEL`]'s value on that credential.
pub const MANAGED_BY_REGISTRY: &str = "organization-registry";

/// A storage quota in whole GB, 1 to 1048576 (Harbor's 1024 TB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QuotaGb(u32);

/// A quota out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quota_gb must be a whole number from 1 to {MAX_QUOTA_GB}")]
pub struct QuotaError;

impl QuotaGb {
    /// # Errors
    /// [`QuotaError`] outside 1 to 1048576.
    pub fn new(gb: u64) -> Result<Self, QuotaError> {
        if (1..=MAX_QUOTA_GB).contains(&gb) {
            u32::try_from(gb).map(Self).map_err(|_| QuotaError)
        } else {
            Err(QuotaError)
        }
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The quota in bytes, the unit Harbor's `storage_limit` and `hard.storage` take.
    pub fn bytes(self) -> i64 {
        i64::from(self.0) * BYTES_PER_GB
    }
}

/// Used storage shown in GB: bytes divided by 1024³, rounded half up to three decimals.
pub fn used_gb(bytes: i64) -> f64 {
    let thousandths =
        (i128::from(bytes) * 1000 + i128::from(BYTES_PER_GB) / 2) / i128::from(BYTES_PER_GB);
    thousandths as f64 / 1000.0
}

/// Whether `text` follows the registry backend's name rules
/// (`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`) and is at most `max` bytes long.
fn follows_name_rules(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// The name of an organization's project in the registry backend: deterministic, and within
/// the backend's name rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a project name is 1 to 255 lowercase letters and digits, separated by single '.', '_' or '-'"
)]
/// Text that is not a project name.
pub struct ProjectNameError;

impl ProjectName {
    /// The project name of an organization.
    pub fn for_organization(organization: OrganizationGuid) -> Self {
        Self(format!("org-{organization}"))
    }

    /// A project name as stored or given by an operator.
    ///
    /// # Errors
    /// [`ProjectNameError`] when the name breaks the backend's rules.
    pub fn parse(text: &str) -> Result<Self, ProjectNameError> {
        if follows_name_rules(text, 255) {
            Ok(Self(text.to_owned()))
        } else {
            Err(ProjectNameError)
        }
    }

    /// Its text form, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares the id of an object in the registry backend: the backend's number, opaque to Berth.
macro_rules! provisioned_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            /// Builds one from its parts.
            pub fn new(id: i64) -> Self {
                Self(id)
            }

            /// The number.
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

provisioned_id!(
    /// A project's id in the registry backend.
    ProvisionedProjectId
);
provisioned_id!(
    /// A quota's id in the registry backend (not its project's).
    ProvisionedQuotaId
);
provisioned_id!(
    /// A robot account's id in the registry backend.
    ProvisionedRobotId
);

/// A robot's short name, by Harbor's rules: lowercase alphanumerics separated by single `.`,
/// `_` or `-`, at most 64 characters (Berth's bound, well inside Harbor's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RobotName(String);

/// The longest robot name Berth accepts.
pub const MAX_ROBOT_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "name must be 1 to {MAX_ROBOT_NAME_LEN} lowercase letters and digits, separated by single \
     '.', '_' or '-'"
)]
/// Text that is not a robot name.
pub struct RobotNameError;

impl RobotName {
    /// # Errors
    /// [`RobotNameError`] when the name breaks Harbor's rules.
    pub fn parse(text: &str) -> Result<Self, RobotNameError> {
        if follows_name_rules(text, MAX_ROBOT_NAME_LEN) {
            Ok(Self(text.to_owned()))
        } else {
            Err(RobotNameError)
        }
    }

    /// The default robot Berth creates with a registry.
    pub fn default_robot() -> Self {
        Self(DEFAULT_ROBOT_NAME.to_owned())
    }

    /// The platform pull robot.
    pub fn pull_robot() -> Self {
        Self(PULL_ROBOT_NAME.to_owned())
    }

    /// Names Berth keeps for its own robots, refused to callers.
    pub fn is_reserved(&self) -> bool {
        self.0 == DEFAULT_ROBOT_NAME || self.0 == PULL_ROBOT_NAME
    }

    /// Its text form, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RobotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a robot may do on its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RobotAccess {
    /// Pull.
    Pull,
    /// Push pull.
    PushPull,
}

impl RobotAccess {
    /// Its text form, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::PushPull => "push_pull",
        }
    }

    /// Parses its text form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pull" => Some(Self::Pull),
            "push_pull" => Some(Self::PushPull),
            _ => None,
        }
    }
}

/// The longest robot lifetime Berth accepts, in days (ten years).
pub const MAX_EXPIRES_IN_DAYS: u64 = 3650;

/// A robot's lifetime in days, 1 to [`MAX_EXPIRES_IN_DAYS`]; `None` where used means never
/// expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiresInDays(u32);

/// A robot lifetime out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expires_in_days must be a whole number from 1 to {MAX_EXPIRES_IN_DAYS}")]
pub struct ExpiresInDaysError;

impl ExpiresInDays {
    /// # Errors
    /// [`ExpiresInDaysError`] outside 1 to [`MAX_EXPIRES_IN_DAYS`].
    pub fn new(days: u64) -> Result<Self, ExpiresInDaysError> {
        if (1..=MAX_EXPIRES_IN_DAYS).contains(&days) {
            u32::try_from(days)
                .map(Self)
                .map_err(|_| ExpiresInDaysError)
        } else {
            Err(ExpiresInDaysError)
        }
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Where a registry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryState {
    /// Being enabled (or re-enabled): the saga runs, or stalled and awaits a retry or the reconciler.
    Provisioning,
    /// Ready.
    Ready,
    /// Being disabled: robots are being deleted.
    Disabling,
    /// Disabled.
    Disabled,
    /// Being purged: robots, repositories, the project and then the row itself are deleted.
    Purging,
}

impl RegistryState {
    /// Its text form, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Disabling => "disabling",
            Self::Disabled => "disabled",
            Self::Purging => "purging",
        }
    }

    /// Parses its text form.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Provisioning,
            Self::Ready,
            Self::Disabling,
            Self::Disabled,
            Self::Purging,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

crate::ids::guid_newtype!(
    /// The id of a registry.
    RegistryId
);
crate::ids::guid_newtype!(
    /// The id of a robot credential.
    RobotId
);

impl RegistryId {
    /// A new time-ordered id (UUIDv7).
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl RobotId {
    /// A new time-ordered id (UUIDv7).
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

/// An organization's registry and the saga's record of what exists in the registry backend.
/// Built new by [`Registry::claim`], rebuilt from storage by [`Registry::restore`]; the saga
/// changes it only through its named steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    id: RegistryId,
    organization: OrganizationGuid,
    project_name: ProjectName,
    project_id: Option<ProvisionedProjectId>,
    quota_id: Option<ProvisionedQuotaId>,
    project_requested_at: Option<OffsetDateTime>,
    endpoint: String,
    state: RegistryState,
    ever_enabled: bool,
    quota_gb: QuotaGb,
    used_bytes: Option<i64>,
    used_checked_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// A registry as a store keeps it: every field, for [`Registry::restore`] only.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryRecord {
    /// Its id.
    pub id: RegistryId,
    /// Its organization.
    pub organization: OrganizationGuid,
    /// Its project's name.
    pub project_name: ProjectName,
    /// Its project's id in the backend, once created.
    pub project_id: Option<ProvisionedProjectId>,
    /// Its quota's id in the backend, once read.
    pub quota_id: Option<ProvisionedQuotaId>,
    /// When the project was last asked for.
    pub project_requested_at: Option<OffsetDateTime>,
    /// The registry endpoint contacted.
    pub endpoint: String,
    /// Where it is in its life.
    pub state: RegistryState,
    /// Whether it was ever ready.
    pub ever_enabled: bool,
    /// Its storage limit, in GB.
    pub quota_gb: QuotaGb,
    /// The usage, in bytes.
    pub used_bytes: Option<i64>,
    /// When the usage was last read.
    pub used_checked_at: Option<OffsetDateTime>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

impl Registry {
    /// A first claim of an organization's registry, provisioning. The project request is
    /// recorded with the claim (at `at`): the claim is immediately followed by that request, so
    /// this saves a write, and the record is there before the backend is asked.
    pub fn claim(
        id: RegistryId,
        organization: OrganizationGuid,
        endpoint: String,
        quota_gb: QuotaGb,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            organization,
            project_name: ProjectName::for_organization(organization),
            project_id: None,
            quota_id: None,
            project_requested_at: Some(at),
            endpoint,
            state: RegistryState::Provisioning,
            ever_enabled: false,
            quota_gb,
            used_bytes: None,
            used_checked_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// A registry as it was stored.
    pub fn restore(record: RegistryRecord) -> Self {
        let RegistryRecord {
            id,
            organization,
            project_name,
            project_id,
            quota_id,
            project_requested_at,
            endpoint,
            state,
            ever_enabled,
            quota_gb,
            used_bytes,
            used_checked_at,
            created_at,
            updated_at,
        } = record;
        Self {
            id,
            organization,
            project_name,
            project_id,
            quota_id,
            project_requested_at,
            endpoint,
            state,
            ever_enabled,
            quota_gb,
            used_bytes,
            used_checked_at,
            created_at,
            updated_at,
        }
    }

    /// The id.
    pub fn id(&self) -> RegistryId {
        self.id
    }

    /// The organization.
    pub fn organization(&self) -> OrganizationGuid {
        self.organization
    }

    /// Its project's name in the backend.
    pub fn project_name(&self) -> &ProjectName {
        &self.project_name
    }

    /// Recorded once the backend created (or Berth adopted) the project.
    pub fn project_id(&self) -> Option<ProvisionedProjectId> {
        self.project_id
    }

    /// Its quota's id in the backend, once read.
    pub fn quota_id(&self) -> Option<ProvisionedQuotaId> {
        self.quota_id
    }

    /// When Berth first asked the backend to create the project: the proof of ownership a later
    /// 409 is checked against.
    pub fn project_requested_at(&self) -> Option<OffsetDateTime> {
        self.project_requested_at
    }

    /// The registry host clients pull from.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The state.
    pub fn state(&self) -> RegistryState {
        self.state
    }

    /// Whether this registry was ever ready: a stalled re-enable rolls back to `Disabled`, a
    /// stalled first enable removes everything.
    pub fn ever_enabled(&self) -> bool {
        self.ever_enabled
    }

    /// The storage limit, in GB.
    pub fn quota_gb(&self) -> QuotaGb {
        self.quota_gb
    }

    /// Last known used storage in bytes.
    pub fn used_bytes(&self) -> Option<i64> {
        self.used_bytes
    }

    /// When [`Self::used_bytes`] was read from the backend.
    pub fn used_checked_at(&self) -> Option<OffsetDateTime> {
        self.used_checked_at
    }

    /// When it was created.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When it last changed.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    /// Whether it is ready for pushes and pulls.
    pub fn enabled(&self) -> bool {
        self.state == RegistryState::Ready
    }

    /// Marks a change made at `at`.
    pub fn touch(&mut self, at: OffsetDateTime) {
        self.updated_at = at;
    }

    /// Records that Berth asks the backend for the project now (before it does).
    pub fn record_project_request(&mut self, at: OffsetDateTime) {
        self.project_requested_at = Some(at);
    }

    /// Records the project the backend made (or Berth adopted).
    pub fn record_project(&mut self, id: ProvisionedProjectId) {
        self.project_id = Some(id);
    }

    /// Records the project's quota and its usage read at `at`.
    pub fn record_quota(&mut self, id: ProvisionedQuotaId, used_bytes: i64, at: OffsetDateTime) {
        self.quota_id = Some(id);
        self.record_usage(used_bytes, at);
    }

    /// Records the usage read from the backend at `at`.
    pub fn record_usage(&mut self, used_bytes: i64, at: OffsetDateTime) {
        self.used_bytes = Some(used_bytes);
        self.used_checked_at = Some(at);
    }

    /// Changes the storage limit asked for.
    pub fn set_quota(&mut self, quota: QuotaGb) {
        self.quota_gb = quota;
    }

    /// A disabled registry being enabled again, with a new quota when one is given.
    pub fn start_reenabling(&mut self, quota: Option<QuotaGb>) {
        self.state = RegistryState::Provisioning;
        if let Some(quota) = quota {
            self.quota_gb = quota;
        }
    }

    /// The saga's last step.
    pub fn mark_ready(&mut self) {
        self.state = RegistryState::Ready;
        self.ever_enabled = true;
    }

    /// Starts disabling: its robots are deleted next.
    pub fn start_disabling(&mut self) {
        self.state = RegistryState::Disabling;
    }

    /// Records that it is disabled.
    pub fn mark_disabled(&mut self) {
        self.state = RegistryState::Disabled;
    }

    /// A purge's first step: from here the registry only goes away.
    pub fn start_purging(&mut self) {
        self.state = RegistryState::Purging;
    }

    /// Where clients pull the project's images from, `<endpoint>/<project>`: the location of
    /// the platform pull robot's credential.
    pub fn pull_location(&self) -> String {
        format!("{}/{}", self.endpoint, self.project_name)
    }

    /// A rolled-back first enablement whose project cannot be deleted (images were pushed into
    /// it): Berth keeps the project and its record of it, disabled.
    pub fn keep_project_disabled(&mut self, id: ProvisionedProjectId) {
        self.project_id = Some(id);
        self.ever_enabled = true;
        self.state = RegistryState::Disabled;
    }
}

/// Where a robot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RobotState {
    /// Recorded before Harbor is asked, so a crash never leaves an unknown robot.
    Creating,
    /// Active.
    Active,
    /// The platform pull robot, recorded before Harbor is asked for its new secret: until the
    /// new secret is stored, Harbor's and Berth's may differ, so a rotation cut short is
    /// finished (rotated again) by a retry or the reconciler.
    Rotating,
}

impl RobotState {
    /// Its text form, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Active => "active",
            Self::Rotating => "rotating",
        }
    }

    /// Parses its text form.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "creating" => Some(Self::Creating),
            "active" => Some(Self::Active),
            "rotating" => Some(Self::Rotating),
            _ => None,
        }
    }
}

/// Whether a robot's login still works, by its expiry against the domain's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RobotStatus {
    /// Active.
    Active,
    /// Expired.
    Expired,
}

impl RobotStatus {
    /// Its text form, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
        }
    }
}

/// A robot account of a registry, as Berth records it (never its secret). Built new by
/// [`RobotCredential::creating`], rebuilt from storage by [`RobotCredential::restore`].
#[derive(Debug, Clone, PartialEq)]
pub struct RobotCredential {
    id: RobotId,
    registry: RegistryId,
    name: RobotName,
    access: RobotAccess,
    is_default: bool,
    managed: bool,
    credential: Option<CredentialGuid>,
    expires_in_days: Option<ExpiresInDays>,
    provisioned_id: Option<ProvisionedRobotId>,
    username: Option<String>,
    expires_at: Option<OffsetDateTime>,
    state: RobotState,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

/// A robot credential as a store keeps it: every field, for [`RobotCredential::restore`] only.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotRecord {
    /// Its id.
    pub id: RobotId,
    /// The registry.
    pub registry: RegistryId,
    /// Its name.
    pub name: RobotName,
    /// What it may do.
    pub access: RobotAccess,
    /// Whether it is the registry's default robot.
    pub is_default: bool,
    /// Whether Berth manages it (the platform pull robot).
    pub managed: bool,
    /// The credential it writes its login to, if any.
    pub credential: Option<CredentialGuid>,
    /// Its lifetime in days; `None`: never expires.
    pub expires_in_days: Option<ExpiresInDays>,
    /// Its id in the backend, once created.
    pub provisioned_id: Option<ProvisionedRobotId>,
    /// The login name.
    pub username: Option<String>,
    /// When it expires; `None`: never.
    pub expires_at: Option<OffsetDateTime>,
    /// Where it is in its life.
    pub state: RobotState,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
}

/// What a new robot is to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotSpec {
    /// Its name.
    pub name: RobotName,
    /// What it may do.
    pub access: RobotAccess,
    /// Its lifetime in days; `None`: never expires.
    pub expires_in_days: Option<ExpiresInDays>,
    /// The registry's default robot, made by enabling.
    pub is_default: bool,
    /// The platform pull robot, made by enabling, whose login Berth keeps as a credential.
    pub managed: bool,
}

impl RobotSpec {
    /// The push-and-pull robot every enabled registry has, which never expires.
    pub fn default_robot() -> Self {
        Self {
            name: RobotName::default_robot(),
            access: RobotAccess::PushPull,
            expires_in_days: None,
            is_default: true,
            managed: false,
        }
    }

    /// The pull-only robot whose login Berth stores as the organization's registry credential;
    /// it never expires.
    pub fn pull_robot() -> Self {
        Self {
            name: RobotName::pull_robot(),
            access: RobotAccess::Pull,
            expires_in_days: None,
            is_default: false,
            managed: true,
        }
    }
}

impl RobotCredential {
    /// A robot recorded before the backend is asked for it, so a crash never leaves an unknown
    /// robot.
    pub fn creating(
        id: RobotId,
        registry: RegistryId,
        spec: RobotSpec,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            registry,
            name: spec.name,
            access: spec.access,
            is_default: spec.is_default,
            managed: spec.managed,
            credential: None,
            expires_in_days: spec.expires_in_days,
            provisioned_id: None,
            username: None,
            expires_at: None,
            state: RobotState::Creating,
            created_at: at,
            updated_at: at,
        }
    }

    /// A robot credential as it was stored.
    pub fn restore(record: RobotRecord) -> Self {
        let RobotRecord {
            id,
            registry,
            name,
            access,
            is_default,
            managed,
            credential,
            expires_in_days,
            provisioned_id,
            username,
            expires_at,
            state,
            created_at,
            updated_at,
        } = record;
        Self {
            id,
            registry,
            name,
            access,
            is_default,
            managed,
            credential,
            expires_in_days,
            provisioned_id,
            username,
            expires_at,
            state,
            created_at,
            updated_at,
        }
    }

    /// The id.
    pub fn id(&self) -> RobotId {
        self.id
    }

    /// The registry.
    pub fn registry(&self) -> RegistryId {
        self.registry
    }

    /// The name.
    pub fn name(&self) -> &RobotName {
        &self.name
    }

    /// The access.
    pub fn access(&self) -> RobotAccess {
        self.access
    }

    /// Whether it is the registry's default robot.
    pub fn is_default(&self) -> bool {
        self.is_default
    }

    /// The platform pull robot: the robot routes refuse to rotate, renew or delete it.
    pub fn managed(&self) -> bool {
        self.managed
    }

    /// The registry credential holding the managed robot's login, once recorded.
    pub fn credential(&self) -> Option<CredentialGuid> {
        self.credential
    }

    /// Its lifetime in days; `None`: never expires.
    pub fn expires_in_days(&self) -> Option<ExpiresInDays> {
        self.expires_in_days
    }

    /// Expired once its expiry is reached at `now` (Harbor refuses the login from then on).
    pub fn status(&self, now: OffsetDateTime) -> RobotStatus {
        match self.expires_at {
            Some(at) if at <= now => RobotStatus::Expired,
            _ => RobotStatus::Active,
        }
    }

    /// The robot's id in the backend, once it exists there.
    pub fn provisioned_id(&self) -> Option<ProvisionedRobotId> {
        self.provisioned_id
    }

    /// The full login name the backend returned, such as `robot$org-…+berth-default`.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// When it expires; `None`: never.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }

    /// The state.
    pub fn state(&self) -> RobotState {
        self.state
    }

    /// When it was created.
    pub fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// When it last changed.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }

    /// Marks a change made at `at`.
    pub fn touch(&mut self, at: OffsetDateTime) {
        self.updated_at = at;
    }

    /// Records the robot the backend made (or Berth recovered), which is now usable.
    pub fn activate(
        &mut self,
        id: ProvisionedRobotId,
        username: String,
        expires_at: Option<OffsetDateTime>,
        at: OffsetDateTime,
    ) {
        self.provisioned_id = Some(id);
        self.username = Some(username);
        self.expires_at = expires_at;
        self.state = RobotState::Active;
        self.updated_at = at;
    }

    /// Marks a rotation about to ask the backend for a new secret (see [`RobotState::Rotating`]).
    pub fn start_rotating(&mut self, at: OffsetDateTime) {
        self.state = RobotState::Rotating;
        self.updated_at = at;
    }

    /// Records the registry credential that holds the managed robot's login.
    pub fn record_credential(&mut self, credential: CredentialGuid) {
        self.credential = Some(credential);
    }

    /// Records a renewal: the new lifetime (`None` = never expires) and the expiry the backend
    /// computed for it.
    pub fn renew(
        &mut self,
        expires_in_days: Option<ExpiresInDays>,
        expires_at: Option<OffsetDateTime>,
        at: OffsetDateTime,
    ) {
        self.expires_in_days = expires_in_days;
        self.expires_at = expires_at;
        self.updated_at = at;
    }
}

/// A robot's login, shown once: at creation, enablement or rotation.
pub struct IssuedSecret {
    username: String,
    password: SecretString,
}

impl fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedSecret")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

impl IssuedSecret {
    /// `username` is the full login name the backend returned.
    pub fn new(username: String, password: SecretString) -> Self {
        Self { username, password }
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password, for the one place that must send it.
    pub fn expose_password(&self) -> &str {
        self.password.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_bounds_and_units() {
        assert!(QuotaGb::new(0).is_err());
        assert!(QuotaGb::new(MAX_QUOTA_GB + 1).is_err());
        assert_eq!(QuotaGb::new(10).unwrap().bytes(), 10_737_418_240);
        assert_eq!(
            QuotaGb::new(MAX_QUOTA_GB).unwrap().bytes(),
            1_125_899_906_842_624
        );
    }

    #[test]
    fn used_gb_rounds_half_up_to_three_decimals() {
        assert_eq!(used_gb(0), 0.0);
        assert_eq!(used_gb(52_428_800), 0.049);
        assert_eq!(used_gb(BYTES_PER_GB), 1.0);
        // 0.0005 GB is 536870.912 bytes: from 536871 bytes up, it shows as 0.001.
        assert_eq!(used_gb(536_871), 0.001);
        assert_eq!(used_gb(536_870), 0.0);
    }

    #[test]
    fn a_registry_changes_only_by_the_saga_s_steps() {
        let organization = OrganizationGuid::from_uuid(Uuid::from_u128(1));
        let at = crate::now();
        let quota = QuotaGb::new(10).unwrap();
        let mut registry = Registry::claim(
            RegistryId::generate(),
            organization,
            "r.example".into(),
            quota,
            at,
        );
        assert_eq!(registry.state(), RegistryState::Provisioning);
        assert_eq!(
            registry.project_requested_at(),
            Some(at),
            "asked with the claim"
        );
        assert_eq!(
            registry.project_name(),
            &ProjectName::for_organization(organization)
        );
        assert!(!registry.ever_enabled() && !registry.enabled());

        registry.record_project(ProvisionedProjectId::new(7));
        registry.record_quota(ProvisionedQuotaId::new(9), 512, at);
        registry.mark_ready();
        assert!(registry.enabled() && registry.ever_enabled());
        assert_eq!(registry.quota_id(), Some(ProvisionedQuotaId::new(9)));
        assert_eq!(registry.used_bytes(), Some(512));

        registry.start_disabling();
        registry.mark_disabled();
        registry.start_reenabling(Some(QuotaGb::new(20).unwrap()));
        assert_eq!(registry.state(), RegistryState::Provisioning);
        assert_eq!(registry.quota_gb().get(), 20);
        assert!(
            registry.ever_enabled(),
            "a re-enable rolls back to disabled"
        );

        let mut first = Registry::claim(
            RegistryId::generate(),
            organization,
            "r.example".into(),
            quota,
            at,
        );
        first.keep_project_disabled(ProvisionedProjectId::new(3));
        assert_eq!(first.state(), RegistryState::Disabled);
        assert!(
            first.ever_enabled(),
            "the kept project stays in Berth's record"
        );
        assert_eq!(first.project_id(), Some(ProvisionedProjectId::new(3)));
    }

    #[test]
    fn a_robot_is_recorded_before_it_exists_and_activated_after() {
        let registry = RegistryId::generate();
        let mut robot = RobotCredential::creating(
            RobotId::generate(),
            registry,
            RobotSpec::default_robot(),
            crate::now(),
        );
        assert_eq!(robot.state(), RobotState::Creating);
        assert_eq!((robot.provisioned_id(), robot.username()), (None, None));
        assert!(robot.is_default() && robot.access() == RobotAccess::PushPull);
        robot.activate(
            ProvisionedRobotId::new(5),
            "robot$org+berth-default".into(),
            None,
            crate::now(),
        );
        assert_eq!(robot.state(), RobotState::Active);
        assert_eq!(robot.username(), Some("robot$org+berth-default"));
        assert_eq!(RobotId::parse(&robot.id().to_string()), Ok(robot.id()));
    }

    #[test]
    fn a_robot_is_expired_from_its_expiry_on_and_a_renewal_records_the_new_one() {
        let at = crate::now();
        let mut robot = RobotCredential::creating(
            RobotId::generate(),
            RegistryId::generate(),
            RobotSpec::pull_robot(),
            at,
        );
        assert!(robot.managed() && robot.access() == RobotAccess::Pull && !robot.is_default());
        assert!(robot.name().is_reserved() && !RobotName::parse("ci").unwrap().is_reserved());
        let expiry = at + time::Duration::days(1);
        robot.activate(
            ProvisionedRobotId::new(1),
            "robot$p+berth-pull".into(),
            Some(expiry),
            at,
        );
        assert_eq!(robot.status(at), RobotStatus::Active);
        assert_eq!(
            robot.status(expiry),
            RobotStatus::Expired,
            "expired at its expiry"
        );
        robot.renew(None, None, at);
        assert_eq!(
            robot.status(expiry + time::Duration::days(9999)),
            RobotStatus::Active
        );
        assert_eq!(robot.expires_in_days(), None);
    }

    #[test]
    fn the_pull_location_is_the_endpoint_and_the_project() {
        let organization = OrganizationGuid::from_uuid(Uuid::from_u128(3));
        let mut registry = Registry::claim(
            RegistryId::generate(),
            organization,
            "harbor.example:5000".into(),
            QuotaGb::new(1).unwrap(),
            crate::now(),
        );
        assert_eq!(
            registry.pull_location(),
            format!("harbor.example:5000/{}", registry.project_name())
        );
        registry.start_purging();
        assert_eq!(RegistryState::parse("purging"), Some(registry.state()));
    }

    #[test]
    fn names_follow_harbor_rules() {
        let organization = OrganizationGuid::parse("2489E9AD-2EE2-8E00-8EC9-32D5F69181C0").unwrap();
        let project = ProjectName::for_organization(organization);
        assert_eq!(project.as_str(), "org-2489e9ad-2ee2-8e00-8ec9-32d5f69181c0");
        assert_eq!(ProjectName::parse(project.as_str()), Ok(project));
        for bad in ["", "Org-1", "org--1", "org/1", &"a".repeat(256)] {
            assert!(ProjectName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RobotName::parse("ci-push.1").is_ok());
        for bad in ["", "CI", "a--b", "-a", "a+b", "robot$x", &"a".repeat(65)] {
            assert!(RobotName::parse(bad).is_err(), "{bad:?}");
        }
        let secret = IssuedSecret::new("robot$x+y".into(), SecretString::from("hunter2"));
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}

//! Organization registries: a Harbor project with a storage quota, and its robot credentials.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::OrganizationGuid;

/// Bytes in one GB as Harbor's quotas count them (GiB).
pub const BYTES_PER_GB: i64 = 1024 * 1024 * 1024;
/// Harbor's largest storage limit, 1024 TB, in GB.
pub const MAX_QUOTA_GB: u64 = 1024 * 1024;
/// The short name of the robot every enabled registry has.
pub const DEFAULT_ROBOT_NAME: &str = "berth-default";

/// A storage quota in whole GB, 1 to 1048576 (Harbor's 1024 TB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QuotaGb(u32);

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

/// The Harbor project name of an organization: deterministic, and within Harbor's name rules
/// (`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`).
pub fn harbor_project_name(organization: OrganizationGuid) -> String {
    format!("org-{organization}")
}

/// A robot's short name, by Harbor's rules: lowercase alphanumerics separated by single `.`,
/// `_` or `-`, at most 64 characters (Berth's bound, well inside Harbor's).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RobotName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name must be 1 to 64 lowercase letters and digits, separated by single '.', '_' or '-'")]
pub struct RobotNameError;

impl RobotName {
    /// # Errors
    /// [`RobotNameError`] when the name breaks Harbor's rules.
    pub fn parse(text: &str) -> Result<Self, RobotNameError> {
        let valid = !text.is_empty()
            && text.len() <= 64
            && text.split(['.', '_', '-']).all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(RobotNameError)
        }
    }

    pub fn default_robot() -> Self {
        Self(DEFAULT_ROBOT_NAME.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a robot may do on its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotAccess {
    Pull,
    PushPull,
}

impl RobotAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::PushPull => "push_pull",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pull" => Some(Self::Pull),
            "push_pull" => Some(Self::PushPull),
            _ => None,
        }
    }
}

/// A robot's lifetime in days, 1 to 3650; `None` where used means never expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiresInDays(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expires_in_days must be a whole number from 1 to 3650")]
pub struct ExpiresInDaysError;

impl ExpiresInDays {
    /// # Errors
    /// [`ExpiresInDaysError`] outside 1 to 3650.
    pub fn new(days: u64) -> Result<Self, ExpiresInDaysError> {
        if (1..=3650).contains(&days) {
            u32::try_from(days)
                .map(Self)
                .map_err(|_| ExpiresInDaysError)
        } else {
            Err(ExpiresInDaysError)
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Where a registry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryState {
    /// Being enabled (or re-enabled): the saga runs, or stalled and awaits a retry or the reconciler.
    Provisioning,
    Ready,
    /// Being disabled: robots are being deleted.
    Disabling,
    Disabled,
}

impl RegistryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Disabling => "disabling",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Provisioning,
            Self::Ready,
            Self::Disabling,
            Self::Disabled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The id of a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegistryId(pub Uuid);

impl fmt::Display for RegistryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The id of a robot credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RobotId(pub Uuid);

impl fmt::Display for RobotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// An organization's registry and the saga's record of what exists in Harbor.
#[derive(Debug, Clone, PartialEq)]
pub struct Registry {
    pub id: RegistryId,
    pub organization: OrganizationGuid,
    pub harbor_project: String,
    /// Recorded once Harbor created (or Berth adopted) the project.
    pub harbor_project_id: Option<i64>,
    pub harbor_quota_id: Option<i64>,
    /// When Berth first asked Harbor to create the project: the proof of ownership a later 409
    /// is checked against.
    pub project_requested_at: Option<OffsetDateTime>,
    pub endpoint: String,
    pub state: RegistryState,
    /// Whether this registry was ever ready: a stalled re-enable rolls back to `Disabled`, a
    /// stalled first enable removes everything.
    pub ever_enabled: bool,
    pub quota_gb: QuotaGb,
    /// Last known used storage, and when it was read from Harbor.
    pub used_bytes: Option<i64>,
    pub used_checked_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Registry {
    pub fn enabled(&self) -> bool {
        self.state == RegistryState::Ready
    }
}

/// Where a robot is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RobotState {
    /// Recorded before Harbor is asked, so a crash never leaves an unknown robot.
    Creating,
    Active,
}

impl RobotState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Active => "active",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "creating" => Some(Self::Creating),
            "active" => Some(Self::Active),
            _ => None,
        }
    }
}

/// A Harbor robot account of a registry, as Berth records it (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct RobotCredential {
    pub id: RobotId,
    pub registry: RegistryId,
    pub name: RobotName,
    pub access: RobotAccess,
    pub is_default: bool,
    pub expires_in_days: Option<ExpiresInDays>,
    pub harbor_robot_id: Option<i64>,
    /// The full login name Harbor returned, such as `robot$org-…+berth-default`.
    pub username: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub state: RobotState,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A robot's login, shown once: at creation, enablement or rotation.
pub struct IssuedSecret {
    pub username: String,
    pub password: SecretString,
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
    fn names_follow_harbor_rules() {
        let organization = OrganizationGuid::parse("2489E9AD-2EE2-8E00-8EC9-32D5F69181C0").unwrap();
        assert_eq!(
            harbor_project_name(organization),
            "org-2489e9ad-2ee2-8e00-8ec9-32d5f69181c0"
        );
        assert!(RobotName::parse("ci-push.1").is_ok());
        for bad in ["", "CI", "a--b", "-a", "a+b", "robot$x", &"a".repeat(65)] {
            assert!(RobotName::parse(bad).is_err(), "{bad:?}");
        }
        let secret = IssuedSecret {
            username: "robot$x+y".into(),
            password: SecretString::from("hunter2"),
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}

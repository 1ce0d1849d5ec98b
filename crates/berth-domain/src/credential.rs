//! Registry credentials: a private registry's username and password, scoped to the foundation,
//! an organization, a space or an app.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::ids::{AppGuid, CredentialGuid, OrganizationGuid, SpaceGuid};
use crate::location::RegistryLocation;
use crate::metadata::{Metadata, MetadataPatch};

/// Longest username accepted.
pub const MAX_USERNAME_LEN: usize = 255;
/// Longest password accepted: large enough for a cloud provider's JSON key or access token.
pub const MAX_PASSWORD_LEN: usize = 16 * 1024;

/// The level a credential applies at, from the widest to the narrowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Foundation.
    Foundation,
    /// Organization.
    Organization,
    /// Space.
    Space,
    /// App.
    App,
}

impl Scope {
    /// Every scope, widest first.
    pub const ALL: [Scope; 4] = [
        Scope::Foundation,
        Scope::Organization,
        Scope::Space,
        Scope::App,
    ];

    /// Its text form, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Foundation => "foundation",
            Self::Organization => "organization",
            Self::Space => "space",
            Self::App => "app",
        }
    }

    /// Parses its text form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == text)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a credential belongs to, with every parent resolved from the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeTarget {
    /// Foundation.
    Foundation,
    /// Organization.
    Organization(OrganizationGuid),
    /// Space.
    Space {
        /// Its organization.
        organization: OrganizationGuid,
        /// Its space.
        space: SpaceGuid,
    },
    /// App.
    App {
        /// Its organization.
        organization: OrganizationGuid,
        /// Its space.
        space: SpaceGuid,
        /// Its app.
        app: AppGuid,
    },
}

impl ScopeTarget {
    /// The scope.
    pub fn scope(&self) -> Scope {
        match self {
            Self::Foundation => Scope::Foundation,
            Self::Organization(_) => Scope::Organization,
            Self::Space { .. } => Scope::Space,
            Self::App { .. } => Scope::App,
        }
    }

    /// The organization.
    pub fn organization(&self) -> Option<OrganizationGuid> {
        match *self {
            Self::Foundation => None,
            Self::Organization(organization)
            | Self::Space { organization, .. }
            | Self::App { organization, .. } => Some(organization),
        }
    }

    /// The space.
    pub fn space(&self) -> Option<SpaceGuid> {
        match *self {
            Self::Space { space, .. } | Self::App { space, .. } => Some(space),
            _ => None,
        }
    }

    /// The app.
    pub fn app(&self) -> Option<AppGuid> {
        match *self {
            Self::App { app, .. } => Some(app),
            _ => None,
        }
    }
}

/// The relationship a client asked for, before the directory resolves its parents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedOwner {
    /// Foundation.
    Foundation,
    /// Organization.
    Organization(OrganizationGuid),
    /// Space.
    Space(SpaceGuid),
    /// App.
    App(AppGuid),
}

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsernameError {
    /// Username can't be blank.
    #[error("Username can't be blank")]
    Blank,
    /// Username is too long (maximum is … characters).
    #[error("Username is too long (maximum is {MAX_USERNAME_LEN} characters)")]
    TooLong,
    /// Username must not contain control characters.
    #[error("Username must not contain control characters")]
    ControlCharacters,
}

/// A registry username: not blank, at most 255 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// # Errors
    /// A [`UsernameError`] naming the broken rule.
    pub fn parse(text: &str) -> Result<Self, UsernameError> {
        if text.trim().is_empty() {
            return Err(UsernameError::Blank);
        }
        if text.chars().count() > MAX_USERNAME_LEN {
            return Err(UsernameError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(UsernameError::ControlCharacters);
        }
        Ok(Self(text.to_owned()))
    }

    /// Its text form, as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a password was refused. The password itself is never part of the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Password can't be blank.
    #[error("Password can't be blank")]
    Blank,
    /// Password is too long (maximum is … bytes).
    #[error("Password is too long (maximum is {MAX_PASSWORD_LEN} bytes)")]
    TooLong,
}

/// A registry password. Write-only: its `Debug` is redacted and it has no `Display`.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// # Errors
    /// A [`PasswordError`]; the error never holds the password.
    pub fn parse(secret: SecretString) -> Result<Self, PasswordError> {
        let text = secret.expose_secret();
        if text.is_empty() {
            return Err(PasswordError::Blank);
        }
        if text.len() > MAX_PASSWORD_LEN {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(secret))
    }

    /// The password in clear, for the adapter that seals it and the deployer that uses it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

/// A stored registry credential, without its password (which only the store holds, sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryCredential {
    /// Its guid.
    pub guid: CredentialGuid,
    /// What it belongs to.
    pub target: ScopeTarget,
    /// The registry location.
    pub location: RegistryLocation,
    /// The login name.
    pub username: Username,
    /// Labels and annotations.
    pub metadata: Metadata,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// Counts changes: each write raises it by one.
    pub revision: i64,
}

impl RegistryCredential {
    /// The scope.
    pub fn scope(&self) -> Scope {
        self.target.scope()
    }

    /// Whether Berth manages this credential (the platform pull robot's login, SPEC 7.2): only
    /// the registry routes change or delete it. Callers can never set or remove the label that
    /// says so ([`crate::registry::MANAGED_BY_LABEL`]), so it cannot be forged.
    pub fn is_managed(&self) -> bool {
        self.metadata.label(crate::registry::MANAGED_BY_LABEL)
            == Some(crate::registry::MANAGED_BY_REGISTRY)
    }
}

/// A validated request to create a credential.
#[derive(Debug)]
pub struct CreateCredentialRequest {
    /// The owner asked for.
    pub owner: RequestedOwner,
    /// The registry location.
    pub location: RegistryLocation,
    /// The login name.
    pub username: Username,
    /// The password.
    pub password: Password,
    /// Labels and annotations.
    pub metadata: MetadataPatch,
}

/// A validated request to change a credential: absent fields stay as they are.
#[derive(Debug, Default)]
pub struct UpdateCredentialRequest {
    /// The login name.
    pub username: Option<Username>,
    /// The password.
    pub password: Option<Password>,
    /// Labels and annotations.
    pub metadata: MetadataPatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_debug_is_redacted() {
        let password = Password::parse(SecretString::from("canary-Zx81")).unwrap();
        assert_eq!(format!("{password:?}"), "Password([REDACTED])");
        let request = UpdateCredentialRequest {
            password: Some(password),
            ..Default::default()
        };
        assert!(!format!("{request:?}").contains("canary"));
    }

    #[test]
    fn password_and_username_rules() {
        assert_eq!(
            Password::parse(SecretString::from("")).err(),
            Some(PasswordError::Blank)
        );
        let long = "p".repeat(MAX_PASSWORD_LEN + 1);
        assert_eq!(
            Password::parse(SecretString::from(long)).err(),
            Some(PasswordError::TooLong)
        );
        assert_eq!(Username::parse(" "), Err(UsernameError::Blank));
        assert_eq!(
            Username::parse("a\nb"),
            Err(UsernameError::ControlCharacters)
        );
        assert_eq!(
            Username::parse(&"u".repeat(256)),
            Err(UsernameError::TooLong)
        );
        assert!(Username::parse("robot$team+ci").is_ok());
    }

    #[test]
    fn scope_target_names_its_parents() {
        let organization = OrganizationGuid::from_uuid(uuid::Uuid::from_u128(1));
        let space = SpaceGuid::from_uuid(uuid::Uuid::from_u128(2));
        let app = AppGuid::from_uuid(uuid::Uuid::from_u128(3));
        let target = ScopeTarget::App {
            organization,
            space,
            app,
        };
        assert_eq!(target.scope(), Scope::App);
        assert_eq!(target.organization(), Some(organization));
        assert_eq!(target.space(), Some(space));
        assert_eq!(ScopeTarget::Foundation.organization(), None);
        assert_eq!(Scope::parse("space"), Some(Scope::Space));
        assert_eq!(Scope::parse("global"), None);
    }
}

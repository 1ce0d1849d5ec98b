//! Typed guids, so an organization's guid can never be passed where a space's is expected.

use std::fmt;

use uuid::Uuid;

/// A guid that is not a UUID in its hyphenated form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid guid")]
pub struct InvalidGuid;

/// Parses the 36-character hyphenated form only: Cloud Foundry guids are always written that way,
/// and accepting braced or URN forms would give one resource several spellings in links.
pub fn parse_hyphenated_uuid(text: &str) -> Result<Uuid, InvalidGuid> {
    if text.len() != 36 {
        return Err(InvalidGuid);
    }
    Uuid::try_parse(text).map_err(|_| InvalidGuid)
}

/// What every typed guid offers, so code written once for organizations, spaces and apps can
/// parse, read and build their guids.
pub trait TypedGuid: Copy + Eq + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The guid of that UUID.
    fn from_uuid(uuid: Uuid) -> Self;
    /// # Errors
    /// [`InvalidGuid`] unless `text` is a hyphenated UUID.
    fn parse(text: &str) -> Result<Self, InvalidGuid>;
    /// The UUID.
    fn as_uuid(&self) -> Uuid;
}

/// Declares a guid newtype: private field, hyphenated parsing, [`TypedGuid`], `Display`.
macro_rules! guid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(::uuid::Uuid);

        impl $name {
            /// The guid of that UUID.
            pub fn from_uuid(uuid: ::uuid::Uuid) -> Self {
                Self(uuid)
            }

            /// # Errors
            /// [`InvalidGuid`]($crate::ids::InvalidGuid) unless `text` is a hyphenated UUID.
            pub fn parse(text: &str) -> Result<Self, $crate::ids::InvalidGuid> {
                $crate::ids::parse_hyphenated_uuid(text).map(Self)
            }

            /// The UUID.
            pub fn as_uuid(&self) -> ::uuid::Uuid {
                self.0
            }
        }

        impl $crate::ids::TypedGuid for $name {
            fn from_uuid(uuid: ::uuid::Uuid) -> Self {
                Self(uuid)
            }

            fn parse(text: &str) -> Result<Self, $crate::ids::InvalidGuid> {
                $crate::ids::parse_hyphenated_uuid(text).map(Self)
            }

            fn as_uuid(&self) -> ::uuid::Uuid {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
    };
}

pub(crate) use guid_newtype;

guid_newtype!(
    /// The guid of an organization in the directory.
    OrganizationGuid
);
guid_newtype!(
    /// The guid of a space in the directory.
    SpaceGuid
);
guid_newtype!(
    /// The guid of an app in the directory.
    AppGuid
);
guid_newtype!(
    /// The guid of a registry credential.
    CredentialGuid
);

impl CredentialGuid {
    /// A new time-ordered guid (UUIDv7), so guid order follows creation order.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyphenated_uuids_parse() {
        assert!(SpaceGuid::parse("6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11").is_ok());
        assert!(SpaceGuid::parse("6F1C4B1E-8A7E-4D4B-9A0E-0C6B8F3B9A11").is_ok());
        for bad in [
            "",
            "abc",
            "6f1c4b1e8a7e4d4b9a0e0c6b8f3b9a11",
            "{6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11}",
            "6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a1z",
        ] {
            assert_eq!(SpaceGuid::parse(bad), Err(InvalidGuid), "{bad:?}");
        }
        let upper = OrganizationGuid::parse("6F1C4B1E-8A7E-4D4B-9A0E-0C6B8F3B9A11").unwrap();
        assert_eq!(upper.to_string(), "6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11");
    }

    #[test]
    fn generated_guids_follow_creation_order() {
        let first = CredentialGuid::generate();
        let second = CredentialGuid::generate();
        assert!(first < second);
    }
}

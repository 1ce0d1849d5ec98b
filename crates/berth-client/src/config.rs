//! The binaries' settings, read from `BERTH_*` environment variables through a lookup function
//! (so they are tested without touching the process environment).

use secrecy::SecretString;
use uuid::Uuid;

use crate::client::BerthClient;
use crate::error::ClientError;
use crate::wire::Context;

pub const URL: &str = "BERTH_URL";
pub const TOKEN: &str = "BERTH_TOKEN";
pub const TOKEN_FILE: &str = "BERTH_TOKEN_FILE";
pub const APP_GUID: &str = "BERTH_APP_GUID";
pub const SPACE_GUID: &str = "BERTH_SPACE_GUID";
pub const ORGANIZATION_GUID: &str = "BERTH_ORGANIZATION_GUID";

/// A token file larger than this is not a token.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// A misconfiguration, in one line that names the variable to fix. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("BERTH_URL is not set (Berth's address, e.g. https://berth.example.com)")]
    MissingUrl,
    #[error("BERTH_URL is invalid: {0}")]
    InvalidUrl(String),
    #[error("set BERTH_TOKEN or BERTH_TOKEN_FILE (a token with the berth.pull_secrets scope)")]
    MissingToken,
    #[error("set only one of BERTH_TOKEN and BERTH_TOKEN_FILE, not both")]
    BothTokens,
    #[error("cannot read BERTH_TOKEN_FILE {path}: {reason}")]
    TokenFile { path: String, reason: String },
    #[error(
        "set at most one of BERTH_APP_GUID, BERTH_SPACE_GUID and BERTH_ORGANIZATION_GUID (found {0})"
    )]
    TwoContexts(String),
    #[error("{name} is not a guid (expected e.g. 6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11)")]
    BadGuid { name: &'static str },
}

/// What both binaries need: where Berth is, the token, and the context to resolve in.
#[derive(Clone)]
pub struct HelperConfig {
    pub url: String,
    pub token: SecretString,
    pub context: Context,
}

impl std::fmt::Debug for HelperConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HelperConfig")
            .field("url", &self.url)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl HelperConfig {
    /// Reads the settings through `lookup` (`std::env::var` in the binaries). An empty variable
    /// counts as unset, as orchestrators often write unset values that way.
    ///
    /// # Errors
    /// A [`ConfigError`] for each misconfiguration.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let url = get(URL).ok_or(ConfigError::MissingUrl)?;
        let token = match (get(TOKEN), get(TOKEN_FILE)) {
            (Some(_), Some(_)) => return Err(ConfigError::BothTokens),
            (None, None) => return Err(ConfigError::MissingToken),
            (Some(token), None) => token.trim().to_owned(),
            (None, Some(path)) => read_token_file(&path)?,
        };
        let mut contexts = Vec::new();
        for (name, build) in [
            (APP_GUID, Context::App as fn(Uuid) -> Context),
            (SPACE_GUID, Context::Space),
            (ORGANIZATION_GUID, Context::Organization),
        ] {
            if let Some(value) = get(name) {
                contexts.push((name, parse_guid(name, &value).map(build)));
            }
        }
        let context = match contexts.as_slice() {
            [] => Context::Foundation,
            [(_, context)] => context.clone()?,
            several => {
                let names: Vec<&str> = several.iter().map(|(name, _)| *name).collect();
                return Err(ConfigError::TwoContexts(names.join(", ")));
            }
        };
        crate::client::parse_base(&url)
            .map_err(|error| ConfigError::InvalidUrl(invalid_url_reason(error)))?;
        Ok(Self {
            url,
            token: SecretString::from(token),
            context,
        })
    }

    /// The client these settings describe.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] (already checked by [`HelperConfig::from_env`]).
    pub fn client(&self) -> Result<BerthClient, ClientError> {
        BerthClient::new(&self.url, self.token.clone())
    }

    /// The client and context both binaries start from, or the one line that says why not.
    ///
    /// # Errors
    /// The [`ConfigError`] or the client's refusal of the URL, as text for stderr.
    pub fn client_from_env(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(BerthClient, Context), String> {
        let config = Self::from_env(lookup).map_err(|error| error.to_string())?;
        let client = config.client().map_err(|error| error.to_string())?;
        Ok((client, config.context))
    }
}

fn invalid_url_reason(error: ClientError) -> String {
    match error {
        ClientError::InvalidUrl(reason) => reason,
        other => other.to_string(),
    }
}

/// A hyphenated UUID, as Berth's guids are.
fn parse_guid(name: &'static str, value: &str) -> Result<Uuid, ConfigError> {
    let value = value.trim();
    if value.len() != 36 {
        return Err(ConfigError::BadGuid { name });
    }
    Uuid::try_parse(value).map_err(|_| ConfigError::BadGuid { name })
}

fn read_token_file(path: &str) -> Result<String, ConfigError> {
    let failure = |reason: String| ConfigError::TokenFile {
        path: path.to_owned(),
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(|error| failure(error.to_string()))?;
    if metadata.len() > MAX_TOKEN_FILE_BYTES {
        return Err(failure(format!("larger than {MAX_TOKEN_FILE_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|error| failure(error.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(failure("the file is empty".into()));
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<HelperConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        HelperConfig::from_env(&|name| map.get(name).cloned())
    }

    const GUID: &str = "6f1c4b1e-8a7e-4d4b-9a0e-0c6b8f3b9a11";

    #[test]
    fn every_misconfiguration_is_named() {
        assert_eq!(
            config(&[(TOKEN, "t")]).unwrap_err(),
            ConfigError::MissingUrl
        );
        assert_eq!(
            config(&[(URL, "http://b")]).unwrap_err(),
            ConfigError::MissingToken
        );
        assert_eq!(
            config(&[(URL, "http://b"), (TOKEN, "t"), (TOKEN_FILE, "/x")]).unwrap_err(),
            ConfigError::BothTokens
        );
        assert_eq!(
            config(&[
                (URL, "http://b"),
                (TOKEN, "t"),
                (APP_GUID, GUID),
                (SPACE_GUID, GUID)
            ])
            .unwrap_err(),
            ConfigError::TwoContexts("BERTH_APP_GUID, BERTH_SPACE_GUID".into())
        );
        assert_eq!(
            config(&[
                (URL, "http://b"),
                (TOKEN, "t"),
                (ORGANIZATION_GUID, "not-a-guid")
            ])
            .unwrap_err(),
            ConfigError::BadGuid {
                name: ORGANIZATION_GUID
            }
        );
        assert!(matches!(
            config(&[(URL, "ftp://b"), (TOKEN, "t")]).unwrap_err(),
            ConfigError::InvalidUrl(_)
        ));
        let missing = std::env::temp_dir().join(format!("berth-no-token-{}", Uuid::new_v4()));
        let error =
            config(&[(URL, "http://b"), (TOKEN_FILE, missing.to_str().unwrap())]).unwrap_err();
        assert!(matches!(error, ConfigError::TokenFile { .. }), "{error}");
    }

    #[test]
    fn a_token_file_is_trimmed_and_a_context_is_parsed() {
        let path = std::env::temp_dir().join(format!("berth-token-{}", Uuid::new_v4()));
        std::fs::write(&path, "secret-token\n").unwrap();
        let config = config(&[
            (URL, "http://b"),
            (TOKEN_FILE, path.to_str().unwrap()),
            (SPACE_GUID, GUID),
            (APP_GUID, ""),
        ])
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(config.token.expose_secret(), "secret-token");
        assert_eq!(config.context, Context::Space(GUID.parse().unwrap()));
        assert!(!format!("{config:?}").contains("secret-token"));
    }
}

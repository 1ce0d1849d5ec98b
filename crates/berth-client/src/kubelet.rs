//! The kubelet's exec credential-provider protocol (KEP-2133,
//! `credentialprovider.kubelet.k8s.io/v1`), answered from Berth's resolution: the logic of
//! `berth-kubelet-credential-provider`, without a process.
//!
//! The kubelet writes a `CredentialProviderRequest` on stdin (`apiVersion`, `kind`, `image`;
//! newer kubelets add `serviceAccountToken` and `serviceAccountAnnotations`, which are ignored);
//! the answer is a `CredentialProviderResponse` in the request's apiVersion, its `auth` map
//! built from resolve's `docker_config` (empty when nothing matches: the image is pulled
//! anonymously).
//!
//! **Caching.** `cacheKeyType` is `Image` and `cacheDuration` [`CACHE_DURATION`] (five
//! minutes): a credential is chosen per image (a location may carry a path, so two images of one
//! registry can resolve differently, which `Registry` would blur), and a rotated or replaced
//! credential reaches every node within five minutes, at the cost of one resolve per image per
//! node every five minutes.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::Outcome;
use crate::config::HelperConfig;
use crate::wire::ResolveRequest;

/// The stable API version (Kubernetes 1.26 and later).
pub const API_VERSION_V1: &str = "credentialprovider.kubelet.k8s.io/v1";
/// The beta version, the same shape, still sent by kubelets configured for it.
pub const API_VERSION_V1BETA1: &str = "credentialprovider.kubelet.k8s.io/v1beta1";
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";
/// How long the kubelet may reuse an answer: how late a rotated credential can be seen.
pub const CACHE_DURATION: &str = "5m0s";
const PROGRAM: &str = "berth-kubelet-credential-provider";
const SUPPORTED: [&str; 2] = [API_VERSION_V1, API_VERSION_V1BETA1];

/// What the kubelet sends (the fields Berth reads; any other field is ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CredentialProviderRequest {
    api_version: Option<String>,
    kind: Option<String>,
    image: Option<String>,
}

/// `PluginCacheKeyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CacheKeyType {
    Image,
    Registry,
    Global,
}

/// `AuthConfig`: the password is exposed only while the answer is written.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub username: String,
    pub password: SecretString,
}

impl Serialize for AuthConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("username", &self.username)?;
        map.serialize_entry("password", self.password.expose_secret())?;
        map.end()
    }
}

/// The answer, with the field names of `k8s.io/kubelet/pkg/apis/credentialprovider/v1`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderResponse {
    pub api_version: String,
    pub kind: &'static str,
    pub cache_key_type: CacheKeyType,
    pub cache_duration: &'static str,
    pub auth: BTreeMap<String, AuthConfig>,
}

/// A request the provider cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("the request is not a JSON CredentialProviderRequest: {0}")]
    NotJson(String),
    #[error("unsupported apiVersion {0:?} (supported: {API_VERSION_V1}, {API_VERSION_V1BETA1})")]
    ApiVersion(String),
    #[error("unsupported kind {0:?} (expected {REQUEST_KIND})")]
    Kind(String),
    #[error("the request has no image")]
    NoImage,
}

/// Reads a request: its apiVersion (to answer in) and image.
///
/// # Errors
/// A [`RequestError`] for anything but a supported `CredentialProviderRequest` with an image.
pub fn parse_request(stdin: &str) -> Result<(String, String), RequestError> {
    let request: CredentialProviderRequest =
        serde_json::from_str(stdin).map_err(|error| RequestError::NotJson(error.to_string()))?;
    let api_version = request.api_version.unwrap_or_default();
    if !SUPPORTED.contains(&api_version.as_str()) {
        return Err(RequestError::ApiVersion(api_version));
    }
    let kind = request.kind.unwrap_or_default();
    if kind != REQUEST_KIND {
        return Err(RequestError::Kind(kind));
    }
    match request.image {
        Some(image) if !image.trim().is_empty() => Ok((api_version, image)),
        _ => Err(RequestError::NoImage),
    }
}

/// Answers one request: `stdin` what the kubelet wrote, `lookup` the environment.
pub async fn run(stdin: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Outcome {
    let (api_version, image) = match parse_request(stdin) {
        Ok(request) => request,
        Err(error) => return failure(&error.to_string()),
    };
    let (client, context) = match HelperConfig::client_from_env(lookup) {
        Ok(configured) => configured,
        Err(reason) => return failure(&reason),
    };
    let request = ResolveRequest {
        images: vec![image],
        context,
        ..ResolveRequest::default()
    };
    let resolved = match client.resolve(&request).await {
        Ok(resolved) => resolved,
        Err(error) => {
            let message = match error.api() {
                Some(api) => format!(
                    "Berth refused ({} {}): {}",
                    api.status, api.title, api.detail
                ),
                None => error.to_string(),
            };
            return failure(&message);
        }
    };
    let auth = resolved
        .docker_config
        .auths
        .into_iter()
        .map(|(key, entry)| {
            let config = AuthConfig {
                username: entry.username,
                password: entry.password,
            };
            (key, config)
        })
        .collect();
    let response = CredentialProviderResponse {
        api_version,
        kind: RESPONSE_KIND,
        cache_key_type: CacheKeyType::Image,
        cache_duration: CACHE_DURATION,
        auth,
    };
    match serde_json::to_string(&response) {
        Ok(json) => Outcome::success(format!("{json}\n")),
        Err(error) => failure(&format!("cannot write the answer: {error}")),
    }
}

fn failure(message: &str) -> Outcome {
    Outcome {
        stdout: String::new(),
        stderr: format!("{PROGRAM}: {}\n", message.replace(['\n', '\r'], " ")),
        code: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_as_the_kubelet_writes_them_are_read() {
        let request = r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1",
            "image":"registry.example.com/team/app:1","serviceAccountToken":"ey...",
            "serviceAccountAnnotations":{"a":"b"}}"#;
        assert_eq!(
            parse_request(request).unwrap(),
            (
                API_VERSION_V1.to_owned(),
                "registry.example.com/team/app:1".to_owned()
            )
        );
        let beta = r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","image":"x"}"#;
        assert_eq!(parse_request(beta).unwrap().0, API_VERSION_V1BETA1);
    }

    #[test]
    fn other_requests_are_refused_by_name() {
        let alpha = r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1","image":"x"}"#;
        assert!(
            matches!(parse_request(alpha), Err(RequestError::ApiVersion(v)) if v.ends_with("v1alpha1"))
        );
        let kind = r#"{"kind":"ExecCredential","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"x"}"#;
        assert!(matches!(parse_request(kind), Err(RequestError::Kind(k)) if k == "ExecCredential"));
        let no_image = r#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1"}"#;
        assert_eq!(parse_request(no_image), Err(RequestError::NoImage));
        assert!(matches!(
            parse_request("image: x"),
            Err(RequestError::NotJson(_))
        ));
    }

    #[tokio::test]
    async fn a_refused_request_is_one_line_on_stderr_and_nothing_on_stdout() {
        let outcome = run(
            r#"{"apiVersion":"v9","kind":"CredentialProviderRequest","image":"x"}"#,
            &|_| None,
        )
        .await;
        assert_eq!(outcome.code, 1);
        assert!(outcome.stdout.is_empty());
        assert_eq!(outcome.stderr.lines().count(), 1);
        assert!(
            outcome.stderr.contains("unsupported apiVersion \"v9\""),
            "{}",
            outcome.stderr
        );
    }
}

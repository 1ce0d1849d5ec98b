//! Docker's credential-helper protocol (docker/docker-credential-helpers), answered from
//! Berth's resolution: the logic of `docker-credential-berth`, without a process.
//!
//! - `get`: stdin is the server URL as the client knows it; Berth is asked to resolve that
//!   registry (`host[:port]`, the `registries` form: a helper never learns the image path) in the
//!   configured context. stdout `{"ServerURL","Username","Secret"}`, exit 0; no credential: the
//!   protocol's `credentials not found in native keychain`, exit 1 (clients then pull
//!   anonymously).
//! - `list`: `{serverURL: username}` for each registry host of the credentials the token can
//!   list, with the username `get` would answer for it in the context (hosts whose resolution
//!   finds nothing are left out).
//! - `store`, `erase`: refused (exit 1): the credentials are managed in Berth.
//! - `version`: the version.
//!
//! A failure prints one line on stdout (the protocol: clients show a helper's stdout) and the
//! same line on stderr, and exits 1. Neither ever carries the token or a password.

use std::collections::{BTreeMap, BTreeSet};

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::Outcome;
use crate::client::BerthClient;
use crate::config::HelperConfig;
use crate::error::ClientError;
use crate::wire::{Context, CredentialQuery, ResolveRequest};

/// The protocol's "no credentials" answer, matched by clients.
pub const NOT_FOUND: &str = "credentials not found in native keychain";
const PROGRAM: &str = "docker-credential-berth";
const USAGE: &str = "Usage: docker-credential-berth <get|list|store|erase|version>";
const MANAGED: &str = "the credentials are managed in Berth: create, change or delete them through \
Berth's API (/v3/registry_credentials), not through the credential helper";
/// Docker's name for Docker Hub, which is how clients ask for it.
const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";
/// `resolve` takes at most this many entries at once.
const MAX_RESOLVE_ENTRIES: usize = 100;
/// `list` reads at most this many pages of 5000 credentials.
const LIST_MAX_PAGES: u32 = 4;

/// `get`'s answer, in the protocol's field names.
#[derive(Serialize)]
struct Credentials<'a> {
    #[serde(rename = "ServerURL")]
    server_url: &'a str,
    #[serde(rename = "Username")]
    username: &'a str,
    #[serde(rename = "Secret")]
    secret: &'a str,
}

/// Runs one action: `args` are the arguments after the program name, `stdin` what the client
/// wrote, `lookup` the environment.
pub async fn run(args: &[String], stdin: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Outcome {
    let action = match args {
        [action] => action.as_str(),
        _ => return failure(USAGE),
    };
    match action {
        "version" => Outcome::success(format!(
            "{PROGRAM} (berth-client) {}\n",
            env!("CARGO_PKG_VERSION")
        )),
        "store" | "erase" => failure(MANAGED),
        "get" | "list" => {
            let (client, context) = match HelperConfig::client_from_env(lookup) {
                Ok(configured) => configured,
                Err(reason) => return failure(&reason),
            };
            if action == "get" {
                get(&client, context, stdin).await
            } else {
                list(&client, context).await
            }
        }
        _ => failure(USAGE),
    }
}

async fn get(client: &BerthClient, context: Context, stdin: &str) -> Outcome {
    let server_url = stdin.trim();
    let Some(registry) = registry_of(server_url) else {
        return Outcome {
            stdout: format!("{NOT_FOUND}\n"),
            stderr: format!("{PROGRAM}: {server_url:?} names no registry host\n"),
            code: 1,
        };
    };
    let request = ResolveRequest {
        registries: vec![registry],
        context,
        ..ResolveRequest::default()
    };
    let resolved = match client.resolve(&request).await {
        Ok(resolved) => resolved,
        Err(error) => return failure(&client_failure(&error)),
    };
    let chosen = resolved
        .resolutions
        .first()
        .and_then(|resolution| resolved.auth_of(resolution));
    match chosen {
        Some((_, auth)) => {
            let answer = Credentials {
                server_url,
                username: &auth.username,
                secret: auth.password.expose_secret(),
            };
            match serde_json::to_string(&answer) {
                Ok(json) => Outcome::success(format!("{json}\n")),
                Err(error) => failure(&format!("cannot write the answer: {error}")),
            }
        }
        None => Outcome {
            stdout: format!("{NOT_FOUND}\n"),
            stderr: String::new(),
            code: 1,
        },
    }
}

async fn list(client: &BerthClient, context: Context) -> Outcome {
    let query = CredentialQuery {
        per_page: Some(5000),
        ..CredentialQuery::default()
    };
    let credentials = match client.list_all_credentials(&query, LIST_MAX_PAGES).await {
        Ok(credentials) => credentials,
        Err(error) => return failure(&client_failure(&error)),
    };
    let hosts: BTreeSet<String> = credentials
        .iter()
        .filter_map(|credential| credential.location.split('/').next())
        .filter_map(registry_of)
        .collect();
    let hosts: Vec<String> = hosts.into_iter().collect();
    let mut answer = BTreeMap::new();
    for chunk in hosts.chunks(MAX_RESOLVE_ENTRIES) {
        let request = ResolveRequest {
            registries: chunk.to_vec(),
            context,
            ..ResolveRequest::default()
        };
        let resolved = match client.resolve(&request).await {
            Ok(resolved) => resolved,
            Err(error) => return failure(&client_failure(&error)),
        };
        for (host, resolution) in chunk.iter().zip(&resolved.resolutions) {
            if let Some((_, auth)) = resolved.auth_of(resolution) {
                answer.insert(server_url_of(host), auth.username.clone());
            }
        }
    }
    match serde_json::to_string(&answer) {
        Ok(json) => Outcome::success(format!("{json}\n")),
        Err(error) => failure(&format!("cannot write the answer: {error}")),
    }
}

/// The registry (`host[:port]`, host lowercased, Docker Hub's names as `docker.io`) a server URL
/// names: `registry.example.com`, `registry.example.com:5000`, `https://index.docker.io/v1/`,
/// `http://127.0.0.1:5000/v2/`. `None` when it names none.
pub fn registry_of(server_url: &str) -> Option<String> {
    let text = server_url.trim();
    let rest = text.split_once("://").map_or(text, |(_, rest)| rest);
    let host = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let valid = !host.is_empty()
        && !host.starts_with(':')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid {
        return None;
    }
    Some(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => host,
    })
}

/// The server URL clients use for a registry (Docker Hub's is Docker's legacy URL).
fn server_url_of(registry: &str) -> String {
    if registry == "docker.io" {
        DOCKER_HUB_SERVER_URL.to_owned()
    } else {
        registry.to_owned()
    }
}

fn client_failure(error: &ClientError) -> String {
    match error.api() {
        Some(api) => format!(
            "Berth refused ({} {}): {}",
            api.status, api.title, api.detail
        ),
        None => error.to_string(),
    }
}

fn failure(message: &str) -> Outcome {
    let line = message.replace(['\n', '\r'], " ");
    Outcome {
        stdout: format!("{line}\n"),
        stderr: format!("{PROGRAM}: {line}\n"),
        code: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_name_their_registry() {
        let cases = [
            ("registry.example.com", Some("registry.example.com")),
            (
                "Registry.Example.com:5000\n",
                Some("registry.example.com:5000"),
            ),
            ("https://index.docker.io/v1/", Some("docker.io")),
            ("registry-1.docker.io", Some("docker.io")),
            ("http://127.0.0.1:5000/v2/", Some("127.0.0.1:5000")),
            ("https://[::1]:5000", Some("[::1]:5000")),
            ("", None),
            ("https://", None),
            ("user@host", None),
            ("host name", None),
        ];
        for (input, expected) in cases {
            assert_eq!(registry_of(input).as_deref(), expected, "{input:?}");
        }
    }

    #[tokio::test]
    async fn store_erase_version_and_usage_need_no_berth() {
        let none = |_: &str| None;
        let outcome = run(
            &["store".into()],
            r#"{"ServerURL":"x","Username":"u","Secret":"s"}"#,
            &none,
        )
        .await;
        assert_eq!(outcome.code, 1);
        assert!(
            outcome.stdout.contains("managed in Berth"),
            "{}",
            outcome.stdout
        );
        assert!(
            outcome.stderr.contains("managed in Berth"),
            "{}",
            outcome.stderr
        );
        assert_eq!(run(&["erase".into()], "x", &none).await.code, 1);
        let version = run(&["version".into()], "", &none).await;
        assert_eq!(version.code, 0);
        assert!(
            version.stdout.starts_with("docker-credential-berth"),
            "{}",
            version.stdout
        );
        assert_eq!(run(&[], "", &none).await.code, 1);
        assert_eq!(run(&["fetch".into()], "", &none).await.code, 1);
    }

    #[tokio::test]
    async fn a_misconfiguration_is_one_line_on_stderr() {
        let outcome = run(&["get".into()], "registry.example.com", &|_| None).await;
        assert_eq!(outcome.code, 1);
        assert_eq!(outcome.stderr.lines().count(), 1);
        assert!(outcome.stderr.contains("BERTH_URL"), "{}", outcome.stderr);
    }
}

//! `berth-kubelet-credential-provider` run as the kubelet runs it: a `CredentialProviderRequest`
//! on stdin (JSON as KEP-2133's v1 types), the answer parsed back against the published types.

use std::collections::{BTreeMap, HashMap};

use berth_client::wire::Context;
use serde::Deserialize;
use serde_json::json;

use crate::helpers::{Berth, binary, run, text};

const PROVIDER: &str = env!("CARGO_BIN_EXE_berth-kubelet-credential-provider");

/// `k8s.io/kubelet/pkg/apis/credentialprovider/v1.CredentialProviderResponse`, field for field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialProviderResponse {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    #[serde(rename = "cacheKeyType")]
    cache_key_type: String,
    #[serde(rename = "cacheDuration")]
    cache_duration: Option<String>,
    auth: Option<BTreeMap<String, AuthConfig>>,
}

/// `...credentialprovider/v1.AuthConfig`.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct AuthConfig {
    username: String,
    password: String,
}

/// The request exactly as the kubelet marshals it (`TypeMeta` inline, then the fields).
fn request(api_version: &str, image: &str) -> String {
    json!({
        "kind": "CredentialProviderRequest",
        "apiVersion": api_version,
        "image": image,
        "serviceAccountToken": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        "serviceAccountAnnotations": {"berth.dev/app": "web"},
    })
    .to_string()
}

async fn provide(env: &HashMap<String, String>, body: &str) -> std::process::Output {
    run(binary(PROVIDER, env, &[]), body).await
}

fn answer(output: &std::process::Output) -> CredentialProviderResponse {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", text(&output.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_answers_kubelet_requests_in_their_api_version() {
    let berth = Berth::spawn().await;
    let (_, space, _) = berth.directory().await;
    berth
        .store(
            "registry.example.com/team",
            "team-robot",
            "team-pass",
            Context::Space(space),
        )
        .await;
    berth
        .store(
            "registry.example.com",
            "fallback",
            "fallback-pass",
            Context::Foundation,
        )
        .await;
    berth
        .store("docker.io", "hubuser", "hub-pass", Context::Foundation)
        .await;
    let mut env = berth.env();
    env.insert("BERTH_SPACE_GUID".into(), space.to_string());
    let v1 = "credentialprovider.kubelet.k8s.io/v1";

    let response = answer(
        &provide(
            &env,
            &request(
                v1,
                "registry.example.com/team/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
        )
        .await,
    );
    assert_eq!(response.api_version, v1);
    assert_eq!(response.kind, "CredentialProviderResponse");
    assert_eq!(response.cache_key_type, "Image");
    assert_eq!(response.cache_duration.as_deref(), Some("5m0s"));
    let auth = response.auth.unwrap();
    assert_eq!(
        auth,
        BTreeMap::from([(
            "registry.example.com/team".to_owned(),
            AuthConfig {
                username: "team-robot".into(),
                password: "team-pass".into()
            }
        )])
    );

    let response = answer(&provide(&env, &request(v1, "registry.example.com/other/app")).await);
    assert_eq!(
        response.auth.unwrap()["registry.example.com"].username,
        "fallback"
    );

    // Docker Hub's key is Docker's, which the kubelet's keyring maps to every Hub image.
    let response = answer(&provide(&env, &request(v1, "nginx:1.27")).await);
    assert_eq!(
        response.auth.unwrap()["https://index.docker.io/v1/"].username,
        "hubuser"
    );

    let beta = "credentialprovider.kubelet.k8s.io/v1beta1";
    let response = answer(&provide(&env, &request(beta, "ghcr.io/someone/tool:2")).await);
    assert_eq!(response.api_version, beta);
    assert_eq!(
        response.auth,
        Some(BTreeMap::new()),
        "no credential is an empty auth map"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_refuses_what_it_cannot_answer_in_one_line() {
    let berth = Berth::spawn().await;
    let env = berth.env();
    let cases = [
        (request("credentialprovider.kubelet.k8s.io/v1alpha1", "x.io/a"), "unsupported apiVersion"),
        (
            json!({"kind": "ExecCredential", "apiVersion": "credentialprovider.kubelet.k8s.io/v1", "image": "x.io/a"}).to_string(),
            "unsupported kind",
        ),
        ("not json".to_owned(), "not a JSON CredentialProviderRequest"),
        (request("credentialprovider.kubelet.k8s.io/v1", "registry.example.com/Team/App"), "422"),
    ];
    for (body, expected) in cases {
        let output = provide(&env, &body).await;
        let stderr = text(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{body}");
        assert!(output.stdout.is_empty(), "{body}: {}", text(&output.stdout));
        assert_eq!(stderr.lines().count(), 1, "{body}: {stderr}");
        assert!(stderr.contains(expected), "{body}: {stderr}");
        assert!(!stderr.contains(&berth.pull_token));
    }
    let output = provide(
        &HashMap::new(),
        &request("credentialprovider.kubelet.k8s.io/v1", "x.io/a"),
    )
    .await;
    assert!(
        text(&output.stderr).contains("BERTH_URL"),
        "{}",
        text(&output.stderr)
    );
}

//! `docker-credential-berth`: the protocol against a real Berth, the binary as clients run it,
//! and skopeo pulling from a real registry through it.

use std::collections::HashMap;

use berth_client::docker::{self, NOT_FOUND};
use berth_client::wire::{Context, CredentialUpdate};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{Berth, TempDir, binary, free_port, lookup, run, text, token};
use crate::registry::{Registry, Skopeo, write_oci_layout};

const HELPER: &str = env!("CARGO_BIN_EXE_docker-credential-berth");

fn args(action: &str) -> Vec<String> {
    vec![action.to_owned()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_list_answer_from_berths_resolution() {
    let berth = Berth::spawn().await;
    let (_, _, app) = berth.directory().await;
    berth
        .store(
            "127.0.0.1:5000",
            "deployer",
            "foundation-pass",
            Context::Foundation,
        )
        .await;
    berth
        .store("docker.io", "hubuser", "hub-pass", Context::Foundation)
        .await;
    berth
        .store("127.0.0.1:5000", "app-robot", "app-pass", Context::App(app))
        .await;
    let env = berth.env();

    let outcome = docker::run(&args("get"), "127.0.0.1:5000\n", &lookup(&env)).await;
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let answer: Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(
        answer,
        json!({"ServerURL": "127.0.0.1:5000", "Username": "deployer", "Secret": "foundation-pass"})
    );
    assert!(outcome.stderr.is_empty());

    let outcome = docker::run(&args("get"), "https://index.docker.io/v1/", &lookup(&env)).await;
    let answer: Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(
        answer,
        json!({"ServerURL": "https://index.docker.io/v1/", "Username": "hubuser", "Secret": "hub-pass"})
    );

    let outcome = docker::run(&args("get"), "unknown.example.com", &lookup(&env)).await;
    assert_eq!(
        (outcome.code, outcome.stdout.trim()),
        (1, NOT_FOUND),
        "{outcome:?}"
    );

    let mut in_app = env.clone();
    in_app.insert("BERTH_APP_GUID".into(), app.to_string());
    let outcome = docker::run(&args("get"), "http://127.0.0.1:5000/v2/", &lookup(&in_app)).await;
    let answer: Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(answer["Username"], "app-robot");
    assert_eq!(answer["Secret"], "app-pass");

    // The deployer lists only foundation credentials; each host's username is the one `get`
    // answers in the context.
    let outcome = docker::run(&args("list"), "", &lookup(&env)).await;
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let listed: Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(
        listed,
        json!({"127.0.0.1:5000": "deployer", "https://index.docker.io/v1/": "hubuser"})
    );
    let outcome = docker::run(&args("list"), "", &lookup(&in_app)).await;
    let listed: Value = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(listed["127.0.0.1:5000"], "app-robot");
}

/// `list` asks about more hosts than one resolve takes (100): it asks in chunks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_covers_more_hosts_than_one_resolve_takes() {
    let berth = Berth::spawn().await;
    for index in 0..105 {
        let location = format!("r{index}.example.com:5000");
        berth
            .store(
                &location,
                &format!("user{index}"),
                "pass",
                Context::Foundation,
            )
            .await;
    }
    // A path location adds no host of its own.
    berth
        .store(
            "r7.example.com:5000/team",
            "team",
            "pass",
            Context::Foundation,
        )
        .await;
    let outcome = docker::run(&args("list"), "", &lookup(&berth.env())).await;
    assert_eq!(outcome.code, 0, "{outcome:?}");
    let listed: HashMap<String, String> = serde_json::from_str(&outcome.stdout).unwrap();
    assert_eq!(listed.len(), 105);
    assert_eq!(listed["r104.example.com:5000"], "user104");
    assert_eq!(listed["r7.example.com:5000"], "user7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berths_refusals_are_one_line_with_the_detail_and_no_secret() {
    let berth = Berth::spawn().await;
    let no_scope = token(&[]);
    let env = HashMap::from([
        ("BERTH_URL".to_owned(), berth.address.clone()),
        ("BERTH_TOKEN".to_owned(), no_scope.clone()),
    ]);
    let outcome = docker::run(&args("get"), "registry.example.com", &lookup(&env)).await;
    assert_eq!(outcome.code, 1);
    assert_eq!(outcome.stderr.lines().count(), 1, "{outcome:?}");
    assert!(outcome.stderr.contains("403"), "{}", outcome.stderr);
    assert!(!outcome.stderr.contains(&no_scope));

    let mut missing_app = berth.env();
    missing_app.insert("BERTH_APP_GUID".into(), uuid::Uuid::new_v4().to_string());
    let outcome = docker::run(&args("get"), "registry.example.com", &lookup(&missing_app)).await;
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.contains("422"), "{}", outcome.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_speaks_the_protocol_and_names_each_misconfiguration() {
    let berth = Berth::spawn().await;
    berth
        .store(
            "registry.example.com:5000",
            "robot",
            "robot-pass",
            Context::Foundation,
        )
        .await;
    let env = berth.env();

    let output = run(
        binary(HELPER, &env, &["get"]),
        "registry.example.com:5000\n",
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["Username"], "robot");
    assert_eq!(answer["Secret"], "robot-pass");

    let output = run(binary(HELPER, &env, &["get"]), "other.example.com").await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout).trim(), NOT_FOUND);

    let store = r#"{"ServerURL":"registry.example.com","Username":"u","Secret":"typed-secret"}"#;
    let output = run(binary(HELPER, &env, &["store"]), store).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stdout).contains("managed in Berth"));
    assert!(!text(&output.stderr).contains("typed-secret"));
    let output = run(binary(HELPER, &env, &["erase"]), "registry.example.com").await;
    assert_eq!(output.status.code(), Some(1));
    let output = run(binary(HELPER, &env, &["version"]), "").await;
    assert!(output.status.success());
    assert!(text(&output.stdout).starts_with("docker-credential-berth"));

    let dir = TempDir::new("berth-helper");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &berth.pull_token).unwrap();
    let unreadable = dir.path().join("missing-token");
    let guid = uuid::Uuid::new_v4().to_string();
    let token_path = token_file.to_str().unwrap();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("BERTH_TOKEN", &berth.pull_token)], "BERTH_URL"),
        (vec![("BERTH_URL", &berth.address)], "BERTH_TOKEN"),
        (
            vec![
                ("BERTH_URL", &berth.address),
                ("BERTH_TOKEN", &berth.pull_token),
                ("BERTH_TOKEN_FILE", token_path),
            ],
            "only one of BERTH_TOKEN and BERTH_TOKEN_FILE",
        ),
        (
            vec![
                ("BERTH_URL", &berth.address),
                ("BERTH_TOKEN", &berth.pull_token),
                ("BERTH_SPACE_GUID", &guid),
                ("BERTH_ORGANIZATION_GUID", &guid),
            ],
            "at most one of",
        ),
        (
            vec![
                ("BERTH_URL", &berth.address),
                ("BERTH_TOKEN_FILE", unreadable.to_str().unwrap()),
            ],
            "cannot read BERTH_TOKEN_FILE",
        ),
        (
            vec![
                ("BERTH_URL", &berth.address),
                ("BERTH_TOKEN", &berth.pull_token),
                ("BERTH_APP_GUID", "web"),
            ],
            "BERTH_APP_GUID is not a guid",
        ),
        (
            vec![
                ("BERTH_URL", "berth.example.com"),
                ("BERTH_TOKEN", &berth.pull_token),
            ],
            "BERTH_URL is invalid",
        ),
    ];
    let closed = format!("http://127.0.0.1:{}", free_port());
    let cases = cases.into_iter().chain([(
        vec![
            ("BERTH_URL", closed.as_str()),
            ("BERTH_TOKEN_FILE", token_path),
        ],
        "cannot reach Berth",
    )]);
    for (vars, expected) in cases {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let output = run(binary(HELPER, &env, &["get"]), "registry.example.com:5000").await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{vars:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{vars:?}: {stderr}");
        assert!(stderr.contains(expected), "{vars:?}: {stderr}");
        assert!(
            !stderr.contains(&berth.pull_token),
            "{vars:?}: the token on stderr"
        );
    }

    // The token file form resolves like the variable.
    let env = HashMap::from([
        ("BERTH_URL".to_owned(), berth.address.clone()),
        ("BERTH_TOKEN_FILE".to_owned(), token_path.to_owned()),
    ]);
    let output = run(binary(HELPER, &env, &["get"]), "registry.example.com:5000").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
}

/// skopeo (containers/image) pushes an image into a real registry, then pulls it with
/// `credHelpers` naming `berth`: the credential comes from Berth through the helper on PATH.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pulls_through_docker_credential_berth_and_fails_with_a_wrong_password() {
    let registry = Registry::start("team-robot", "registry-pass").await;
    let berth = Berth::spawn().await;
    let work = TempDir::new("berth-skopeo");
    let skopeo = Skopeo::new(work.path());
    let layout = work.path().join("layout");
    write_oci_layout(&layout, "1");
    let image = format!("docker://{}/team/app:1", registry.host);

    let source = format!("oci:{}:1", layout.display());
    let output = run(
        skopeo.copy(&[
            "--dest-creds",
            "team-robot:registry-pass",
            "--dest-tls-verify=false",
            &source,
            &image,
        ]),
        "",
    )
    .await;
    assert!(output.status.success(), "push: {}", text(&output.stderr));

    // The helper on PATH, and an auth file that names it for this registry only.
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(HELPER, bin.join("docker-credential-berth")).unwrap();
    let auth_file = work.path().join("auth.json");
    std::fs::write(
        &auth_file,
        json!({"credHelpers": {registry.host.clone(): "berth"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pull = |target: &str| {
        let mut command = skopeo.copy(&[
            "--src-tls-verify=false",
            "--authfile",
            auth_file.to_str().unwrap(),
            &image,
            target,
        ]);
        command.env("PATH", &path).envs(berth.env());
        command
    };

    let credential = berth
        .store(
            &registry.host,
            "team-robot",
            "registry-pass",
            Context::Foundation,
        )
        .await;
    let first = work.path().join("pulled");
    let output = run(pull(&format!("oci:{}:1", first.display())), "").await;
    assert!(output.status.success(), "pull: {}", text(&output.stderr));
    let index: Value =
        serde_json::from_slice(&std::fs::read(first.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "1"
    );

    berth
        .admin()
        .update_credential(
            credential,
            &CredentialUpdate {
                password: Some(SecretString::from("wrong-pass")),
                ..CredentialUpdate::default()
            },
        )
        .await
        .unwrap();
    let second = work.path().join("refused");
    let output = run(pull(&format!("oci:{}:1", second.display())), "").await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "a wrong password still pulled");
    assert!(stderr.to_lowercase().contains("unauthorized"), "{stderr}");
}

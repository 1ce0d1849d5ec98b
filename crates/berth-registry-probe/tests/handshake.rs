//! The handshake against small registries played by actix-web servers on loopback, each name
//! pointed at them through an injected resolver.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Read as _;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use async_trait::async_trait;
use berth_domain::credential::{Password, Username};
use berth_domain::location::RegistryLocation;
use berth_domain::ports::RegistryVerifier;
use berth_domain::verification::{Probe, VerificationOutcome};
use berth_registry_probe::{HostResolver, NetworkPolicy, RegistryProbe};
use secrecy::SecretString;

const USER: &str = "robot$team+ci";
const PASSWORD: &str = "s3cret-Password";
const TOKEN: &str = "issued-token-value";
const BASIC: &str = "Basic cm9ib3QkdGVhbStjaTpzM2NyZXQtUGFzc3dvcmQ=";

/// Names to addresses, as a DNS zone would have them; other names do not resolve.
struct Table(HashMap<&'static str, Vec<IpAddr>>);

#[async_trait]
impl HostResolver for Table {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0.get(host).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))
        })
    }
}

fn loopback_table() -> Arc<Table> {
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    Arc::new(Table(HashMap::from([
        ("registry.test", vec![loopback]),
        ("evil.test", vec![loopback]),
        ("internal.test", vec!["10.0.0.5".parse().unwrap()]),
        (
            "mixed.test",
            vec!["8.8.8.8".parse().unwrap(), "10.0.0.5".parse().unwrap()],
        ),
    ])))
}

/// Loopback opened, every test name allowed over http.
fn lab_probe(deadline: Duration) -> RegistryProbe {
    let policy = NetworkPolicy::parse(
        &["127.0.0.0/8".into()],
        &[
            "registry.test".into(),
            "evil.test".into(),
            "127.0.0.1".into(),
        ],
    )
    .unwrap();
    RegistryProbe::with_resolver(policy, deadline, loopback_table()).unwrap()
}

async fn verify(probe: &RegistryProbe, location: &str, password: &str) -> Probe {
    let probe = probe
        .verify(
            &RegistryLocation::parse(location).unwrap(),
            &Username::parse(USER).unwrap(),
            &Password::parse(SecretString::from(password)).unwrap(),
        )
        .await;
    assert!(!probe.detail.contains(password), "{probe:?}");
    assert!(!probe.detail.contains(TOKEN), "{probe:?}");
    probe
}

/// Serves `configure` on a free loopback port; returns the port and a count of requests.
fn serve(
    configure: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        App::new()
            .wrap_fn(move |request, service| {
                counter.fetch_add(1, Ordering::SeqCst);
                actix_web::dev::Service::call(service, request)
            })
            .configure(configure.clone())
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (port, hits)
}

fn challenge(header: String) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", header))
        .finish()
}

fn authorization(request: &HttpRequest) -> &str {
    request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// A registry asking for Basic auth, as ECR and Artifactory do.
fn basic_registry(config: &mut web::ServiceConfig) {
    config.route(
        "/v2/",
        web::get().to(|request: HttpRequest| async move {
            if authorization(&request) == BASIC {
                HttpResponse::Ok().finish()
            } else {
                challenge(r#"Basic realm="Registry Realm""#.into())
            }
        }),
    );
}

/// A registry with a token service on `realm_host`, the challenge in `header_for(realm)`.
fn bearer_registry(
    realm_host: &'static str,
    header_for: fn(String) -> String,
) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    move |config: &mut web::ServiceConfig| {
        config
            .route(
                "/v2/",
                web::get().to(move |request: HttpRequest| async move {
                    if authorization(&request) == format!("Bearer {TOKEN}") {
                        return HttpResponse::Ok().finish();
                    }
                    let port = request
                        .connection_info()
                        .host()
                        .rsplit_once(':')
                        .unwrap()
                        .1
                        .to_owned();
                    challenge(header_for(format!("http://{realm_host}:{port}/token")))
                }),
            )
            .route(
                "/token",
                web::get().to(|request: HttpRequest| async move {
                    let query: Vec<(String, String)> =
                        serde_urlencoded::from_str(request.query_string()).unwrap();
                    let expected = [
                        ("service", "registry.test"),
                        ("scope", "repository:team/app:pull,push"),
                        ("scope", "registry:catalog:*"),
                        ("account", USER),
                    ];
                    let matches = query.len() == expected.len()
                        && query
                            .iter()
                            .zip(expected)
                            .all(|((k, v), (ek, ev))| k == ek && v == ev);
                    if !matches {
                        return HttpResponse::BadRequest().body(format!("{query:?}"));
                    }
                    if authorization(&request) != BASIC {
                        return HttpResponse::Unauthorized().finish();
                    }
                    HttpResponse::Ok()
                        .json(serde_json::json!({"access_token": TOKEN, "expires_in": 300}))
                }),
            );
    }
}

fn docker_hub_style(realm: String) -> String {
    format!(
        r#"Bearer realm="{realm}",service="registry.test",scope="repository:team/app:pull,push registry:catalog:*""#
    )
}

fn several_challenges(realm: String) -> String {
    format!(
        r#"Negotiate, Bearer realm="{realm}",service="registry.test",scope="repository:team/app:pull,push registry:catalog:*",Basic realm="x""#
    )
}

const DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test]
async fn basic_challenge_valid_and_invalid() {
    let (port, _) = serve(basic_registry);
    let probe = lab_probe(DEADLINE);
    let location = format!("registry.test:{port}/team/app");
    let valid = verify(&probe, &location, PASSWORD).await;
    assert_eq!(valid.outcome, VerificationOutcome::Valid, "{valid:?}");
    assert_eq!(valid.endpoint, format!("http://registry.test:{port}"));
    let invalid = verify(&probe, &location, "wrong-password").await;
    assert_eq!(invalid.outcome, VerificationOutcome::Invalid, "{invalid:?}");
    assert!(invalid.detail.contains("401"), "{invalid:?}");
}

#[tokio::test]
async fn bearer_challenge_with_quoted_scopes_and_several_challenges() {
    for header in [docker_hub_style as fn(String) -> String, several_challenges] {
        let (port, _) = serve(bearer_registry("registry.test", header));
        let probe = lab_probe(DEADLINE);
        let location = format!("registry.test:{port}");
        let valid = verify(&probe, &location, PASSWORD).await;
        assert_eq!(valid.outcome, VerificationOutcome::Valid, "{valid:?}");
        let invalid = verify(&probe, &location, "wrong-password").await;
        assert_eq!(invalid.outcome, VerificationOutcome::Invalid, "{invalid:?}");
        assert!(invalid.detail.contains("token service"), "{invalid:?}");
    }
}

#[tokio::test]
async fn the_token_may_come_as_token_or_access_token_and_must_come() {
    for (answer, outcome) in [
        (
            serde_json::json!({"token": TOKEN}),
            VerificationOutcome::Valid,
        ),
        (
            serde_json::json!({"access_token": TOKEN}),
            VerificationOutcome::Valid,
        ),
        (
            serde_json::json!({"expires_in": 60}),
            VerificationOutcome::Unverified,
        ),
        (
            serde_json::json!({"token": ""}),
            VerificationOutcome::Unverified,
        ),
    ] {
        let (port, _) = serve(move |config: &mut web::ServiceConfig| {
            let answer = answer.clone();
            config
                .route(
                    "/v2/",
                    web::get().to(|request: HttpRequest| async move {
                        if authorization(&request) == format!("Bearer {TOKEN}") {
                            return HttpResponse::Ok().finish();
                        }
                        let host = request.connection_info().host().to_owned();
                        challenge(format!(r#"Bearer realm="http://{host}/token""#))
                    }),
                )
                .route(
                    "/token",
                    web::get().to(move || {
                        let answer = answer.clone();
                        async move { HttpResponse::Ok().json(answer) }
                    }),
                );
        });
        let probe = verify(
            &lab_probe(DEADLINE),
            &format!("registry.test:{port}"),
            PASSWORD,
        )
        .await;
        assert_eq!(probe.outcome, outcome, "{probe:?}");
    }
}

#[tokio::test]
async fn answers_that_prove_nothing_or_are_no_registry() {
    for (status, header, outcome) in [
        (200, None, VerificationOutcome::Unverified),
        (401, None, VerificationOutcome::Unverified),
        (401, Some("Negotiate"), VerificationOutcome::Unverified),
        (
            401,
            Some(r#"Bearer service="x""#),
            VerificationOutcome::Unverified,
        ),
        (429, None, VerificationOutcome::Unverified),
        (404, None, VerificationOutcome::Unreachable),
        (500, None, VerificationOutcome::Unreachable),
        (503, None, VerificationOutcome::Unreachable),
        (418, None, VerificationOutcome::Unreachable),
    ] {
        let (port, _) = serve(move |config: &mut web::ServiceConfig| {
            config.route(
                "/v2/",
                web::get().to(move || async move {
                    let mut response =
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
                    if let Some(header) = header {
                        response.insert_header(("WWW-Authenticate", header));
                    }
                    response.finish()
                }),
            );
        });
        let probe = verify(
            &lab_probe(DEADLINE),
            &format!("registry.test:{port}"),
            PASSWORD,
        )
        .await;
        assert_eq!(probe.outcome, outcome, "{status} {header:?}: {probe:?}");
    }
}

#[tokio::test]
async fn a_realm_on_another_host_gets_no_credentials() {
    let (port, hits) = serve(bearer_registry("evil.test", docker_hub_style));
    let probe = verify(
        &lab_probe(DEADLINE),
        &format!("registry.test:{port}"),
        PASSWORD,
    )
    .await;
    assert_eq!(probe.outcome, VerificationOutcome::Blocked, "{probe:?}");
    assert!(
        probe.detail.contains("another host (evil.test)"),
        "{probe:?}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "only the ping reached the server"
    );
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let (evil_port, evil_hits) = serve(basic_registry);
    let (port, _) = serve(move |config: &mut web::ServiceConfig| {
        config
            .route(
                "/v2/",
                web::get().to(move || async move {
                    HttpResponse::Found()
                        .insert_header(("Location", format!("http://evil.test:{evil_port}/v2/")))
                        .finish()
                }),
            )
            .route(
                "/same/v2/",
                web::get().to(|| async {
                    HttpResponse::TemporaryRedirect()
                        .insert_header(("Location", "/v2/"))
                        .finish()
                }),
            );
    });
    let probe = verify(
        &lab_probe(DEADLINE),
        &format!("registry.test:{port}"),
        PASSWORD,
    )
    .await;
    assert_eq!(probe.outcome, VerificationOutcome::Blocked, "{probe:?}");
    assert!(
        probe.detail.contains("redirected to another host"),
        "{probe:?}"
    );
    assert_eq!(evil_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_redirect_on_the_same_host_is_followed() {
    let (port, _) = serve(|config: &mut web::ServiceConfig| {
        config
            .route(
                "/v2/",
                web::get().to(|request: HttpRequest| async move {
                    if authorization(&request).is_empty() {
                        challenge(r#"Basic realm="r""#.into())
                    } else {
                        HttpResponse::TemporaryRedirect()
                            .insert_header(("Location", "/real/v2/"))
                            .finish()
                    }
                }),
            )
            .route(
                "/real/v2/",
                web::get().to(|request: HttpRequest| async move {
                    if authorization(&request) == BASIC {
                        HttpResponse::Ok().finish()
                    } else {
                        HttpResponse::Unauthorized().finish()
                    }
                }),
            );
    });
    let probe = verify(
        &lab_probe(DEADLINE),
        &format!("registry.test:{port}"),
        PASSWORD,
    )
    .await;
    assert_eq!(probe.outcome, VerificationOutcome::Valid, "{probe:?}");
}

#[tokio::test]
async fn a_slow_registry_is_unreachable_at_the_deadline() {
    let (port, _) = serve(|config: &mut web::ServiceConfig| {
        config.route(
            "/v2/",
            web::get().to(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                HttpResponse::Ok().finish()
            }),
        );
    });
    let probe = verify(
        &lab_probe(Duration::from_millis(300)),
        &format!("registry.test:{port}"),
        PASSWORD,
    )
    .await;
    assert_eq!(probe.outcome, VerificationOutcome::Unreachable, "{probe:?}");
    assert!(probe.detail.contains("300 ms"), "{probe:?}");
}

#[tokio::test]
async fn an_oversized_token_answer_is_not_read() {
    for streamed in [false, true] {
        let (port, _) = serve(move |config: &mut web::ServiceConfig| {
            config
                .route(
                    "/v2/",
                    web::get().to(|request: HttpRequest| async move {
                        let host = request.connection_info().host().to_owned();
                        challenge(format!(r#"Bearer realm="http://{host}/token""#))
                    }),
                )
                .route(
                    "/token",
                    web::get().to(move || async move {
                        let huge = format!("{{\"token\":\"{}\"}}", "a".repeat(1 << 20));
                        if streamed {
                            let chunks = futures_chunks(huge.into_bytes());
                            HttpResponse::Ok().streaming(chunks)
                        } else {
                            HttpResponse::Ok().body(huge)
                        }
                    }),
                );
        });
        let probe = verify(
            &lab_probe(DEADLINE),
            &format!("registry.test:{port}"),
            PASSWORD,
        )
        .await;
        assert_eq!(probe.outcome, VerificationOutcome::Unverified, "{probe:?}");
        assert!(probe.detail.contains("more than 65536 bytes"), "{probe:?}");
    }
}

/// A body without a length, in 8 KiB chunks.
fn futures_chunks(
    bytes: Vec<u8>,
) -> impl futures_util::Stream<Item = Result<web::Bytes, std::io::Error>> {
    let chunks: Vec<Result<web::Bytes, std::io::Error>> = bytes
        .chunks(8192)
        .map(|chunk| Ok(web::Bytes::copy_from_slice(chunk)))
        .collect();
    futures_util::stream::iter(chunks)
}

#[tokio::test]
async fn names_resolving_to_blocked_addresses_are_never_contacted() {
    let probe = lab_probe(DEADLINE);
    for location in ["internal.test", "mixed.test:5000/x"] {
        let answer = verify(&probe, location, PASSWORD).await;
        assert_eq!(
            answer.outcome,
            VerificationOutcome::Blocked,
            "{location}: {answer:?}"
        );
        assert!(answer.detail.contains("10.0.0.5"), "{answer:?}");
    }
    // Every blocked range, reached through a name.
    for address in [
        "0.0.0.0",
        "10.1.1.1",
        "100.64.0.1",
        "127.0.0.1",
        "169.254.10.10",
        "172.16.0.1",
        "192.0.0.1",
        "192.0.2.1",
        "192.88.99.1",
        "192.168.0.1",
        "198.18.0.1",
        "198.51.100.1",
        "203.0.113.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b:1::1",
        "2002:a00:1::",
        "2001::1",
        "2001:db8::1",
        "fc00::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
    ] {
        let table = Arc::new(Table(HashMap::from([(
            "r.test",
            vec![address.parse().unwrap()],
        )])));
        let probe =
            RegistryProbe::with_resolver(NetworkPolicy::default(), DEADLINE, table).unwrap();
        let answer = verify(&probe, "r.test", PASSWORD).await;
        assert_eq!(
            answer.outcome,
            VerificationOutcome::Blocked,
            "{address}: {answer:?}"
        );
    }
}

#[tokio::test]
async fn ip_literals_in_any_spelling_are_checked() {
    let strict =
        RegistryProbe::with_resolver(NetworkPolicy::default(), DEADLINE, loopback_table()).unwrap();
    let everything = RegistryProbe::with_resolver(
        NetworkPolicy::parse(&["0.0.0.0/0".into(), "::/0".into()], &[]).unwrap(),
        DEADLINE,
        loopback_table(),
    )
    .unwrap();
    for location in [
        "127.0.0.1:5000",
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1:5000",
        "0.0.0.0",
        "0",
        "10.0.0.1",
        "[::]",
        "[::1]:5000",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[64:ff9b::7f00:1]",
        "[fe80::1]",
        "169.254.169.254",
        "metadata.google.internal",
        "[fd00:ec2::254]",
        "100.100.100.200",
    ] {
        let answer = verify(&strict, location, PASSWORD).await;
        assert_eq!(
            answer.outcome,
            VerificationOutcome::Blocked,
            "{location}: {answer:?}"
        );
    }
    for location in [
        "169.254.169.254",
        "2852039166",
        "[::ffff:169.254.169.254]",
        "metadata.google.internal",
        "METADATA.GOOGLE.INTERNAL",
        "[fd00:ec2::254]",
        "100.100.100.200",
    ] {
        let answer = verify(&everything, location, PASSWORD).await;
        assert_eq!(
            answer.outcome,
            VerificationOutcome::Blocked,
            "{location}: {answer:?}"
        );
        assert!(answer.detail.contains("metadata"), "{answer:?}");
    }
}

#[tokio::test]
async fn network_failures_are_unreachable() {
    let probe = lab_probe(DEADLINE);
    let answer = verify(&probe, "nowhere.test", PASSWORD).await;
    assert_eq!(
        answer.outcome,
        VerificationOutcome::Unreachable,
        "{answer:?}"
    );
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let answer = verify(&probe, &format!("registry.test:{closed}"), PASSWORD).await;
    assert_eq!(
        answer.outcome,
        VerificationOutcome::Unreachable,
        "{answer:?}"
    );
}

#[tokio::test]
async fn https_is_required_unless_the_registry_is_insecure() {
    let (port, hits) = serve(basic_registry);
    let policy =
        NetworkPolicy::parse(&["127.0.0.0/8".into()], &[format!("evil.test:{port}")]).unwrap();
    let probe = RegistryProbe::with_resolver(policy, DEADLINE, loopback_table()).unwrap();
    // Not listed: spoken to over https, which the plain server cannot answer.
    let answer = verify(&probe, &format!("registry.test:{port}"), PASSWORD).await;
    assert_eq!(answer.endpoint, format!("https://registry.test:{port}"));
    assert_eq!(
        answer.outcome,
        VerificationOutcome::Unreachable,
        "{answer:?}"
    );
    // Listed with its port: http.
    let answer = verify(&probe, &format!("evil.test:{port}"), PASSWORD).await;
    assert_eq!(answer.outcome, VerificationOutcome::Valid, "{answer:?}");
    assert!(hits.load(Ordering::SeqCst) >= 2);
}

/// Environment proxies are ignored: re-runs [`proxied_verification`] in a child process with
/// every proxy variable pointing at a listener that records connections.
#[test]
fn environment_proxies_are_ignored() {
    let recorder = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", recorder.local_addr().unwrap());
    recorder.set_nonblocking(true).unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "proxied_verification",
            "--ignored",
            "--nocapture",
        ])
        .env("HTTPS_PROXY", &proxy)
        .env("HTTP_PROXY", &proxy)
        .env("ALL_PROXY", &proxy)
        .env("https_proxy", &proxy)
        .env("http_proxy", &proxy)
        .env("all_proxy", &proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
    let mut connections = 0;
    while let Ok((mut stream, _)) = recorder.accept() {
        let mut buffer = [0u8; 64];
        let _ = stream.read(&mut buffer);
        connections += 1;
    }
    assert_eq!(
        connections, 0,
        "a verification went through the environment's proxy"
    );
}

/// Run by [`environment_proxies_are_ignored`] with the proxy variables set.
#[tokio::test]
#[ignore = "run by environment_proxies_are_ignored in a child process"]
async fn proxied_verification() {
    assert!(
        std::env::var("HTTPS_PROXY").is_ok(),
        "run by environment_proxies_are_ignored"
    );
    let (port, hits) = serve(basic_registry);
    let probe = verify(
        &lab_probe(DEADLINE),
        &format!("registry.test:{port}"),
        PASSWORD,
    )
    .await;
    assert_eq!(probe.outcome, VerificationOutcome::Valid, "{probe:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let strict =
        RegistryProbe::with_resolver(NetworkPolicy::default(), DEADLINE, loopback_table()).unwrap();
    let answer = verify(&strict, "2130706433", PASSWORD).await;
    assert_eq!(answer.outcome, VerificationOutcome::Blocked, "{answer:?}");
}

#[tokio::test]
async fn token_service_and_login_answers_are_classified() {
    // (status of the token service, status of the login with the token, outcome)
    for (token_status, login_status, outcome) in [
        (403, 200, VerificationOutcome::Invalid),
        (429, 200, VerificationOutcome::Unverified),
        (400, 200, VerificationOutcome::Unverified),
        (404, 200, VerificationOutcome::Unverified),
        (500, 200, VerificationOutcome::Unreachable),
        (200, 403, VerificationOutcome::Invalid),
        (200, 404, VerificationOutcome::Unverified),
        (200, 429, VerificationOutcome::Unverified),
        (200, 502, VerificationOutcome::Unreachable),
    ] {
        let (port, _) = serve(move |config: &mut web::ServiceConfig| {
            config
                .route(
                    "/v2/",
                    web::get().to(move |request: HttpRequest| async move {
                        if authorization(&request).is_empty() {
                            let host = request.connection_info().host().to_owned();
                            return challenge(format!(r#"Bearer realm="http://{host}/token""#));
                        }
                        HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(login_status).unwrap(),
                        )
                        .finish()
                    }),
                )
                .route(
                    "/token",
                    web::get().to(move || async move {
                        HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(token_status).unwrap(),
                        )
                        .json(serde_json::json!({"token": TOKEN}))
                    }),
                );
        });
        let probe = verify(
            &lab_probe(DEADLINE),
            &format!("registry.test:{port}"),
            PASSWORD,
        )
        .await;
        assert_eq!(
            probe.outcome, outcome,
            "token {token_status}, login {login_status}: {probe:?}"
        );
    }
}

//! Spans are exported over OTLP with the request's route and trace context, reach Harbor's calls
//! as `traceparent`, and never carry a password, a robot secret or a token.
//!
//! Its own test binary: the tracer provider and subscriber are global to a process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use berth_auth::{MintClaims, mint_hs256};
use berth_persistence::sealing::KeyRing;
use berth_server::startup::{Application, HarborChoice};
use berth_testkit::{TestDatabase, bytes_contain};
use secrecy::SecretString;
use serde_json::json;

const CANARY: &str = "canary-Span-3c7d1f";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn spans_carry_routes_and_trace_context_but_no_secrets() {
    // An OTLP/HTTP receiver that keeps every export request's bytes.
    let exported = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = exported.clone();
    let receiver = HttpServer::new(move || {
        let sink = sink.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                sink.lock().unwrap().extend_from_slice(&body);
                async {
                    HttpResponse::Ok()
                        .content_type("application/x-protobuf")
                        .finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let receiver_url = format!("http://127.0.0.1:{}", receiver.addrs()[0].port());
    tokio::spawn(receiver.run());
    let telemetry =
        berth_server::telemetry::init(true, Some("info"), Some(&receiver_url), "berth-test");

    let (harbor, harbor_server) =
        harbor_emulator::start(harbor_emulator::EmulatorConfig::default(), "127.0.0.1:0").unwrap();
    tokio::spawn(harbor_server);
    let db = TestDatabase::new().await;
    let spec = KeyRing::generate_spec_entry("k1").unwrap();
    let mut runtime = common::runtime(db.url(), &spec, "k1");
    runtime.harbor = HarborChoice::Remote(common::harbor_settings(harbor.url()));
    let application = Application::build(runtime).await.unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    let token = mint_hs256(
        &SecretString::from(common::HS256_SECRET),
        &MintClaims {
            subject: "otel-admin".into(),
            scopes: vec!["berth.admin".into()],
            roles: vec![],
            ttl: Duration::from_secs(600),
            issuer: None,
            audience: None,
        },
    )
    .unwrap();
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{address}/v3/registry_credentials"))
        .bearer_auth(&token)
        .header("traceparent", &traceparent)
        .json(&json!({"location": "r.io", "username": "u", "password": CANARY}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let organization = uuid::Uuid::new_v4();
    client
        .put(format!("{address}/v3/organizations/{organization}"))
        .bearer_auth(&token)
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    let enabled: serde_json::Value = client
        .post(format!(
            "{address}/api/v1/organizations/{organization}/registry"
        ))
        .bearer_auth(&token)
        .header("traceparent", &traceparent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let robot_secret = enabled["credentials"]["password"]
        .as_str()
        .unwrap()
        .to_owned();

    // A request's own span ends after its answer is sent, so wait for every span, not the
    // first: the Harbor call's span may be exported before the request's.
    let expected: [&[u8]; 5] = [
        b"harbor.call",
        b"/v3/registry_credentials",
        b"/api/v1/organizations/{org_id}/registry",
        b"db.credentials.insert",
        b"otel-admin",
    ];
    telemetry.flush();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let bytes = exported.lock().unwrap().clone();
        let missing: Vec<_> = expected
            .iter()
            .filter(|marker| !bytes_contain(&bytes, marker))
            .map(|marker| String::from_utf8_lossy(marker).into_owned())
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spans missing after 10 s: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        telemetry.flush();
    }
    let bytes = exported.lock().unwrap().clone();
    assert!(
        bytes_contain(&bytes, &hex(TRACE_ID)),
        "the caller's trace id was not continued"
    );
    assert!(
        bytes_contain(&bytes, organization.to_string().as_bytes()),
        "the organization is on the span"
    );
    assert!(
        !bytes_contain(&bytes, CANARY.as_bytes()),
        "a span carries the password"
    );
    assert!(
        !bytes_contain(&bytes, robot_secret.as_bytes()),
        "a span carries a robot secret"
    );
    assert!(
        !bytes_contain(&bytes, token.as_bytes()),
        "a span carries the bearer token"
    );
    assert!(
        !bytes_contain(&bytes, b"Harbor12345"),
        "a span carries Harbor's password"
    );

    let traceparents = harbor.state().traceparents;
    assert!(
        traceparents.iter().any(|t| t.contains(TRACE_ID)),
        "Harbor did not get the trace context: {traceparents:?}"
    );
}

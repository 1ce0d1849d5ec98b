//! Building a verifier: errors name the setting and never show secrets or key material.

use std::error::Error as _;

use super::*;
use crate::{JwksError, VerifierConfigError};

async fn config_error(settings: AuthSettings) -> VerifierConfigError {
    match TokenVerifier::new(settings).await {
        Ok(verifier) => panic!("built a verifier that must be refused: {verifier:?}"),
        Err(error) => error,
    }
}

/// The error and all its sources, as an operator would read them.
fn chain(error: &VerifierConfigError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(error) = source {
        text.push_str(": ");
        text.push_str(&error.to_string());
        source = error.source();
    }
    text
}

#[tokio::test]
async fn without_any_verifier_the_error_names_all_three_settings() {
    let error = config_error(AuthSettings {
        issuer: Some("https://uaa.example.test".into()),
        ..AuthSettings::default()
    })
    .await;
    assert!(matches!(error, VerifierConfigError::NoVerifier));
    let text = error.to_string();
    for setting in ["auth.hs256_secret", "auth.jwks_file", "auth.jwks_url"] {
        assert!(text.contains(setting), "{text}");
    }
}

#[tokio::test]
async fn a_short_secret_is_refused_without_being_shown() {
    let error = config_error(AuthSettings {
        hs256_secret: Some(SecretString::from("too-short-secret")),
        ..AuthSettings::default()
    })
    .await;
    assert!(matches!(error, VerifierConfigError::WeakSecret));
    assert!(!chain(&error).contains("too-short-secret"));
    assert!(!format!("{error:?}").contains("too-short-secret"));
}

#[tokio::test]
async fn a_large_leeway_is_refused() {
    let error = config_error(AuthSettings {
        leeway_seconds: 3600,
        ..hs256_settings()
    })
    .await;
    assert!(matches!(error, VerifierConfigError::LeewayTooLarge));
    assert!(error.to_string().contains("auth.leeway_seconds"));
}

#[tokio::test]
async fn a_jwks_file_and_url_together_are_refused() {
    let error = config_error(AuthSettings {
        jwks_url: Some("https://uaa.example.test/token_keys".into()),
        ..jwks_file_settings(JWKS_PATH)
    })
    .await;
    assert!(matches!(error, VerifierConfigError::ConflictingJwks));
}

#[tokio::test]
async fn a_missing_jwks_file_is_named() {
    let error = config_error(jwks_file_settings("/nonexistent/berth/jwks.json")).await;
    assert!(matches!(
        &error,
        VerifierConfigError::Jwks {
            setting: "auth.jwks_file",
            source: JwksError::Read { .. }
        }
    ));
    let text = chain(&error);
    assert!(text.contains("auth.jwks_file"), "{text}");
    assert!(text.contains("/nonexistent/berth/jwks.json"), "{text}");
}

#[tokio::test]
async fn an_unparseable_jwks_file_is_refused_without_quoting_it() {
    let private_key = TempFile::with(RSA_PEM);
    let error = config_error(jwks_file_settings(&private_key.0)).await;
    assert!(matches!(
        &error,
        VerifierConfigError::Jwks {
            source: JwksError::Parse { .. },
            ..
        }
    ));
    let text = chain(&error);
    let key_line = RSA_PEM.lines().nth(1).unwrap();
    assert!(!text.contains(&key_line[..16]), "{text}");
    assert!(!text.contains("PRIVATE"), "{text}");

    let not_a_set = TempFile::with(r#"{"kty": "RSA"}"#);
    let error = config_error(jwks_file_settings(&not_a_set.0)).await;
    assert!(matches!(
        &error,
        VerifierConfigError::Jwks {
            source: JwksError::Parse { .. },
            ..
        }
    ));
}

#[tokio::test]
async fn a_jwks_without_usable_keys_is_refused() {
    let symmetric_only = TempFile::with(
        &json!({"keys": [{"kty": "oct", "kid": "k", "k": URL_SAFE_NO_PAD.encode(SECRET)}]})
            .to_string(),
    );
    let error = config_error(jwks_file_settings(&symmetric_only.0)).await;
    assert!(matches!(
        &error,
        VerifierConfigError::Jwks {
            source: JwksError::NoUsableKey,
            ..
        }
    ));
    assert!(!chain(&error).contains(&URL_SAFE_NO_PAD.encode(SECRET)));

    let empty = TempFile::with(r#"{"keys": []}"#);
    assert!(matches!(
        config_error(jwks_file_settings(&empty.0)).await,
        VerifierConfigError::Jwks {
            source: JwksError::NoUsableKey,
            ..
        }
    ));
}

#[tokio::test]
async fn a_jwks_url_that_is_not_http_is_refused() {
    for url in [
        "ftp://uaa.example.test/keys",
        "file:///etc/jwks.json",
        "not a url",
        "",
    ] {
        let error = config_error(AuthSettings {
            jwks_url: Some(url.into()),
            ..AuthSettings::default()
        })
        .await;
        assert!(
            matches!(error, VerifierConfigError::InvalidJwksUrl),
            "{url}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_or_failing_jwks_url_is_refused_at_start() {
    // Nothing listens on port 1.
    let error = config_error(AuthSettings {
        jwks_url: Some("http://127.0.0.1:1/jwks.json".into()),
        ..AuthSettings::default()
    })
    .await;
    assert!(matches!(
        &error,
        VerifierConfigError::Jwks {
            setting: "auth.jwks_url",
            source: JwksError::Fetch(_)
        }
    ));

    let server = JwksServer::start(JWKS).await;
    server.serve(404, "{}");
    let error = config_error(server.settings()).await;
    assert!(matches!(
        &error,
        VerifierConfigError::Jwks {
            source: JwksError::Status(404),
            ..
        }
    ));
    server.serve(200, "<html>sign in</html>");
    let error = config_error(server.settings()).await;
    assert!(matches!(
        &error,
        VerifierConfigError::Jwks {
            source: JwksError::Parse { .. },
            ..
        }
    ));
    server.stop().await;
}

#[tokio::test]
async fn the_verifier_debug_output_shows_no_secret() {
    let verifier = verifier(AuthSettings {
        hs256_secret: Some(SecretString::from(SECRET)),
        ..jwks_file_settings(JWKS_PATH)
    })
    .await;
    let shown = format!("{verifier:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("hs256: true"), "{shown}");
}

//! The OpenAPI document: committed, served, and browsable offline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

const COMMITTED: &str = include_str!("../../../docs/openapi.json");

#[test]
fn the_committed_document_matches_the_code() {
    let generated = berth_http::openapi::document_json();
    assert!(
        COMMITTED.trim_end() == generated.trim_end(),
        "docs/openapi.json is out of date: run `cargo xtask openapi` and commit it"
    );
}

#[test]
fn every_route_is_described_with_bearer_auth_and_both_envelopes() {
    let document: Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/v3/registry_credentials",
        "/v3/registry_credentials/{guid}",
        "/v3/registry_credentials/actions/resolve",
        "/v3/registry_credentials/actions/explain",
        "/v3/registry_credentials/{guid}/actions/verify",
        "/v3/organizations",
        "/v3/organizations/{guid}",
        "/v3/spaces",
        "/v3/spaces/{guid}",
        "/v3/apps",
        "/v3/apps/{guid}",
        "/v3/roles",
        "/v3/roles/{guid}",
        "/api/v1/organizations/{org_id}/registry",
        "/api/v1/organizations/{org_id}/registry/credentials",
        "/api/v1/organizations/{org_id}/registry/credentials/{credential_id}/rotate",
        "/api/v1/organizations/{org_id}/registry/credentials/{credential_id}",
        "/api/v1/organizations/{org_id}/registry/pull_credential/rotate",
        "/v3/audit_events",
        "/v3/audit_events/{guid}",
        "/healthz",
        "/readyz",
    ] {
        assert!(paths.contains_key(path), "{path} is not described");
    }
    let operations: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    // 27, resolve and explain (pull secrets), verify, renew, the pull credential's rotation, the
    // two audit event reads and the four role routes.
    assert_eq!(operations, 38);
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for schema in [
        "V3ErrorBody",
        "V1ErrorBody",
        "CredentialResource",
        "EnableResponse",
        "CreateCredentialBody",
        "PullSecretsBody",
        "ResolveAnswer",
        "ExplainAnswer",
        "RoleBody",
        "RoleResource",
    ] {
        assert!(schemas.contains_key(schema), "{schema} is missing");
    }
    let create = &document["paths"]["/v3/registry_credentials"]["post"]["responses"];
    assert!(
        create["422"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("V3ErrorBody")
    );
    let enable = &document["paths"]["/api/v1/organizations/{org_id}/registry"]["post"]["responses"];
    assert!(
        enable["503"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("V1ErrorBody")
    );
}

/// The verify action documents its answer and the five outcomes.
#[test]
fn the_verify_action_documents_its_outcomes() {
    let document: Value = serde_json::from_str(COMMITTED).unwrap();
    let verify = &document["paths"]["/v3/registry_credentials/{guid}/actions/verify"]["post"];
    assert_eq!(verify["operationId"], "verify_registry_credential");
    for status in ["200", "401", "403", "404", "503"] {
        assert!(verify["responses"][status].is_object(), "{status}");
    }
    let schemas = &document["components"]["schemas"];
    let body = &schemas["VerificationBody"];
    assert_eq!(
        body["required"],
        serde_json::json!(["outcome", "detail", "endpoint", "checked_at"])
    );
    assert_eq!(
        schemas["OutcomeBody"]["enum"],
        serde_json::json!(["valid", "invalid", "unverified", "unreachable", "blocked"])
    );
}

/// Every list query parameter of the V3 lists is documented as a bounded comma-separated array
/// (the bound the parser enforces), guid lists with `format: uuid`; `label_selector` states its
/// bounds.
#[test]
fn every_v3_list_parameter_is_documented_with_its_bound() {
    let document: Value = serde_json::from_str(COMMITTED).unwrap();
    let bound = berth_domain::listing::MAX_LIST_FILTER_VALUES;
    let expected: &[(&str, &[&str])] = &[
        (
            "/v3/registry_credentials",
            &[
                "guids",
                "organization_guids",
                "space_guids",
                "app_guids",
                "scopes",
                "locations",
                "created_ats",
                "updated_ats",
            ],
        ),
        ("/v3/organizations", &["guids", "names"]),
        ("/v3/spaces", &["guids", "names", "organization_guids"]),
        ("/v3/apps", &["guids", "names", "space_guids"]),
    ];
    for (path, lists) in expected {
        let parameters = document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap();
        let arrays: Vec<&str> = parameters
            .iter()
            .filter(|p| p["schema"]["type"] == "array")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let mut sorted_arrays = arrays.clone();
        sorted_arrays.sort_unstable();
        let mut sorted_lists = lists.to_vec();
        sorted_lists.sort_unstable();
        assert_eq!(sorted_arrays, sorted_lists, "{path}");
        for parameter in parameters.iter().filter(|p| p["schema"]["type"] == "array") {
            let name = parameter["name"].as_str().unwrap();
            assert_eq!(parameter["schema"]["maxItems"], bound, "{path} {name}");
            assert_eq!(parameter["style"], "form", "{path} {name}");
            assert_eq!(parameter["explode"], false, "{path} {name}");
            // Each item is the filter's value or empty (`x=` matches nothing, as in Cloud
            // Foundry), so a client may send either.
            let items = &parameter["schema"]["items"]["anyOf"];
            assert_eq!(items[1]["maxLength"], 0, "{path} {name}");
            if name.ends_with("guids") {
                assert_eq!(items[0]["format"], "uuid", "{path} {name}");
            }
        }
    }
    let selector = document["paths"]["/v3/registry_credentials"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "label_selector")
        .unwrap();
    let description = selector["description"].as_str().unwrap();
    assert!(
        description.contains("up to 50 requirements") && description.contains("at most 50 values"),
        "{description}"
    );
}

/// The rules the server enforces that JSON Schema can state are in the document, so a client
/// (and schemathesis's positive-data check) sees them: guids, timestamps, the scope enum, links
/// that are absent rather than null, the 500 answer of each dialect.
#[test]
fn the_document_states_what_the_server_enforces() {
    let document: Value = serde_json::from_str(COMMITTED).unwrap();
    let schemas = &document["components"]["schemas"];
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    assert_eq!(parameter["schema"]["format"], "uuid", "{method} {path}");
                }
            }
            let envelope = if path.starts_with("/api/v1/") {
                "V1ErrorBody"
            } else if path.starts_with("/v3/") {
                "V3ErrorBody"
            } else {
                continue;
            };
            let schema = &operation["responses"]["500"]["content"]["application/json"]["schema"];
            assert_eq!(
                schema["$ref"],
                format!("#/components/schemas/{envelope}"),
                "{method} {path}"
            );
        }
    }
    for (schema, field, format) in [
        ("CredentialResource", "guid", "uuid"),
        ("CredentialResource", "created_at", "date-time"),
        ("CredentialResource", "updated_at", "date-time"),
        ("OrganizationResource", "guid", "uuid"),
        ("SpaceResource", "created_at", "date-time"),
        ("AppResource", "updated_at", "date-time"),
        ("GuidRef", "guid", "uuid"),
        ("GuidData", "guid", "uuid"),
        ("RegistryBody", "org_id", "uuid"),
        ("RegistryBody", "created_at", "date-time"),
        ("RobotBody", "id", "uuid"),
        ("RobotBody", "expires_at", "date-time"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["format"], format,
            "{schema}.{field}"
        );
    }
    assert_eq!(
        schemas["CredentialScopeName"]["enum"],
        serde_json::json!(["foundation", "organization", "space", "app"])
    );
    let links = &schemas["CredentialLinks"]["properties"];
    for relationship in ["organization", "space", "app"] {
        assert_eq!(
            links[relationship]["$ref"], "#/components/schemas/Link",
            "the {relationship} link is absent when there is none, never null"
        );
    }
    for body in ["OrganizationBody", "SpaceBody", "AppBody"] {
        let name = &schemas[body]["properties"]["name"];
        assert_eq!(name["maxLength"], 255, "{body}");
        assert!(
            name["pattern"].is_string(),
            "{body}: not blank, no control characters"
        );
    }
}

/// The patterns the document gives pull-secret entries match every entry the server accepts, so
/// a client checking against the document (or schemathesis's negative-data check) never meets
/// an entry the server takes but the document forbids.
#[test]
fn pull_secret_entry_patterns_admit_whatever_the_server_accepts() {
    use berth_domain::image_reference::{ImageReference, RegistryHost};

    let document: Value = serde_json::from_str(COMMITTED).unwrap();
    let body = &document["components"]["schemas"]["PullSecretsBody"]["properties"];
    let pattern = |field: &str| {
        let text = body[field]["items"]["pattern"].as_str().unwrap();
        regex::Regex::new(text).unwrap()
    };
    let (images, registries) = (pattern("images"), pattern("registries"));
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let texts = [
        "nginx".to_owned(),
        "nginx:1.27".to_owned(),
        format!("nginx@{digest}"),
        format!("r.example.com:5000/team/app:v1@{digest}"),
        "Foo/app".to_owned(),
        "R.Example.COM/team/app:Latest".to_owned(),
        "localhost:5000/a__b/c--d/e.f".to_owned(),
        "[::1]:5000/app".to_owned(),
        "[::ffff:1.2.3.4]/app".to_owned(),
        "[2001:DB8::1]/app".to_owned(),
        "10.0.0.1:5000/a/b".to_owned(),
        "r.io:99999/app".to_owned(),
        "r.io/a___b".to_owned(),
        "r.io/-a".to_owned(),
        "team/App".to_owned(),
        "nginx:".to_owned(),
        "nginx@md5:0123456789abcdef0123456789abcdef".to_owned(),
        "https://r.io/app".to_owned(),
        "r.io".to_owned(),
        "r.io:5000".to_owned(),
        "[::1]".to_owned(),
        "index.docker.io".to_owned(),
        "bad_host".to_owned(),
        "r.io/team".to_owned(),
        " r.io".to_owned(),
        String::new(),
    ];
    for text in &texts {
        if ImageReference::parse(text).is_ok() {
            assert!(images.is_match(text), "the image pattern refuses {text:?}");
        }
        if RegistryHost::parse(text).is_ok() {
            assert!(
                registries.is_match(text),
                "the registry pattern refuses {text:?}"
            );
        }
    }
    assert!(images.is_match(&format!("r.example.com:5000/team/app:v1@{digest}")));
    assert!(!images.is_match("team/App") && !images.is_match("https://r.io/app"));
    assert!(registries.is_match("r.io:5000") && !registries.is_match("r.io/team"));
}

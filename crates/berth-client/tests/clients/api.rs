//! `BerthClient` against a real Berth: the credential routes, their refusals, and no Berth.

use std::collections::BTreeMap;

use berth_client::wire::{
    Context, CredentialQuery, CredentialUpdate, Metadata, MetadataPatch, NewCredential, OrderField,
    ResolveRequest, Scope, TimestampFilter,
};
use berth_client::{BerthClient, ClientError};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::{Berth, free_port, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_creates_gets_lists_updates_and_deletes_credentials() {
    let berth = Berth::spawn().await;
    let (organization, space, _) = berth.directory().await;
    let client = berth.admin();
    let labels = BTreeMap::from([("team".to_owned(), "blue".to_owned())]);
    let created = client
        .create_credential(&NewCredential {
            location: "Registry.Example.com/team".into(),
            username: "robot".into(),
            password: SecretString::from("s3cret"),
            owner: Context::Space(space),
            metadata: Some(Metadata {
                labels,
                annotations: BTreeMap::new(),
            }),
        })
        .await
        .unwrap();
    assert_eq!(created.location, "registry.example.com/team");
    assert_eq!(created.scope, Scope::Space);
    assert_eq!(created.relationships.space.guid(), Some(space));
    assert_eq!(
        created.relationships.organization.guid(),
        Some(organization)
    );
    assert_eq!(created.relationships.app.guid(), None);
    assert_eq!(created.metadata.labels["team"], "blue");
    assert!(created.links.space.is_some() && created.links.app.is_none());

    assert_eq!(client.get_credential(created.guid).await.unwrap(), created);

    for index in 0..3 {
        berth
            .store(
                &format!("r{index}.example.com"),
                "u",
                "p",
                Context::Foundation,
            )
            .await;
    }
    let filtered = client
        .list_credentials(&CredentialQuery {
            space_guids: vec![space],
            label_selector: Some("team=blue".into()),
            created_ats: Some(TimestampFilter::GreaterThanOrEqual(
                created.created_at.clone(),
            )),
            ..CredentialQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(filtered.pagination.total_results, 1);
    assert_eq!(filtered.resources, vec![created.clone()]);

    let foundation = CredentialQuery {
        scopes: vec![Scope::Foundation],
        order_by: Some((OrderField::Location, true)),
        per_page: Some(2),
        page: Some(2),
        ..CredentialQuery::default()
    };
    let second = client.list_credentials(&foundation).await.unwrap();
    assert_eq!(second.pagination.total_results, 3);
    assert_eq!(second.pagination.total_pages, 2);
    assert!(second.pagination.next.is_none() && second.pagination.previous.is_some());
    let locations: Vec<&str> = second
        .resources
        .iter()
        .map(|c| c.location.as_str())
        .collect();
    assert_eq!(locations, ["r0.example.com"]);
    let all = client.list_all_credentials(&foundation, 10).await.unwrap();
    let locations: Vec<&str> = all.iter().map(|c| c.location.as_str()).collect();
    assert_eq!(
        locations,
        ["r2.example.com", "r1.example.com", "r0.example.com"]
    );
    assert_eq!(
        client
            .list_all_credentials(&foundation, 1)
            .await
            .unwrap()
            .len(),
        2
    );

    let updated = client
        .update_credential(
            created.guid,
            &CredentialUpdate {
                username: Some("robot2".into()),
                password: Some(SecretString::from("rotated")),
                metadata: Some(MetadataPatch {
                    labels: BTreeMap::from([("team".to_owned(), None)]),
                    ..MetadataPatch::default()
                }),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.username, "robot2");
    assert!(updated.metadata.labels.is_empty());

    client.delete_credential(created.guid).await.unwrap();
    let error = client.get_credential(created.guid).await.unwrap_err();
    let api = error.api().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(
        (api.status, api.code, api.title.as_str()),
        (404, 10010, "CF-ResourceNotFound")
    );
    assert_eq!(api.detail, "Registry credential not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_the_v3_envelope() {
    let berth = Berth::spawn().await;
    let client = berth.admin();
    let error = client
        .create_credential(&NewCredential {
            location: "https://registry.example.com".into(),
            username: "u".into(),
            password: SecretString::from("never-shown"),
            owner: Context::Foundation,
            metadata: None,
        })
        .await
        .unwrap_err();
    let api = error.api().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(
        (api.status, api.code, api.title.as_str()),
        (422, 10008, "CF-UnprocessableEntity")
    );
    assert!(!error.to_string().contains("never-shown"));
    assert!(error.to_string().contains(&api.detail), "{error}");

    let error = client
        .list_credentials(&CredentialQuery {
            created_ats: Some(TimestampFilter::LessThan("yesterday".into())),
            ..CredentialQuery::default()
        })
        .await
        .unwrap_err();
    let api = error.api().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(
        (api.status, api.code, api.title.as_str()),
        (400, 10005, "CF-BadQueryParameter")
    );

    let stranger = BerthClient::new(&berth.address, SecretString::from("not-a-jwt")).unwrap();
    let error = stranger
        .list_credentials(&CredentialQuery::default())
        .await
        .unwrap_err();
    let api = error.api().unwrap_or_else(|| panic!("{error}"));
    assert_eq!(
        (api.status, api.code, api.title.as_str()),
        (401, 1000, "CF-InvalidAuthToken")
    );

    // A space developer elsewhere cannot write a foundation credential.
    let reader = BerthClient::new(&berth.address, SecretString::from(token(&[]))).unwrap();
    let error = reader
        .create_credential(&NewCredential {
            location: "registry.example.com".into(),
            username: "u".into(),
            password: SecretString::from("p"),
            owner: Context::Foundation,
            metadata: None,
        })
        .await
        .unwrap_err();
    assert_eq!(error.api().map(|api| api.status), Some(403), "{error}");
}

#[tokio::test]
async fn no_berth_is_an_unreachable_error_naming_the_address() {
    let address = format!("http://127.0.0.1:{}", free_port());
    let client = BerthClient::new(&address, SecretString::from("token-never-shown")).unwrap();
    let error = client
        .list_credentials(&CredentialQuery::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&address) && message.to_lowercase().contains("refused"),
        "{message}"
    );
    assert!(!message.contains("token-never-shown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_resolves_pull_secrets_and_explains_the_choice() {
    let berth = Berth::spawn().await;
    let (organization, _, _) = berth.directory().await;
    let chosen = berth
        .store(
            "registry.example.com",
            "u",
            "p",
            Context::Organization(organization),
        )
        .await;
    berth
        .store(
            "registry.example.com",
            "foundation",
            "other",
            Context::Foundation,
        )
        .await;
    let request = ResolveRequest {
        images: vec!["registry.example.com/team/app:1".into(), "nginx".into()],
        registries: vec!["unknown.example.com".into()],
        context: Context::Organization(organization),
    };
    let resolved = berth.deployer().resolve(&request).await.unwrap();
    assert_eq!(resolved.resolutions.len(), 3);
    let first = &resolved.resolutions[0];
    assert_eq!(
        first.image.as_deref(),
        Some("registry.example.com/team/app:1")
    );
    assert_eq!(first.normalized, "registry.example.com/team/app");
    let credential = first.credential.as_ref().unwrap();
    assert_eq!(
        (credential.guid, credential.scope),
        (chosen, Scope::Organization)
    );
    let (key, auth) = resolved.auth_of(first).unwrap();
    assert_eq!(key, "registry.example.com");
    assert_eq!(
        (auth.username.as_str(), auth.password.expose_secret()),
        ("u", "p")
    );
    assert_eq!(auth.auth.expose_secret(), "dTpw");
    assert_eq!(
        resolved.resolutions[1].normalized,
        "docker.io/library/nginx"
    );
    assert!(resolved.resolutions[1].credential.is_none());
    assert_eq!(
        resolved.resolutions[2].registry.as_deref(),
        Some("unknown.example.com")
    );
    assert!(resolved.auth_of(&resolved.resolutions[2]).is_none());
    // The docker_config writes back as a .dockerconfigjson.
    let written = serde_json::to_value(&resolved.docker_config).unwrap();
    assert_eq!(
        written,
        serde_json::json!({"auths": {"registry.example.com": {"username": "u", "password": "p", "auth": "dTpw"}}})
    );

    let explained = berth.admin().explain(&request).await.unwrap();
    assert_eq!(explained.resolutions.len(), 3);
    let first = &explained.resolutions[0];
    assert_eq!(first.credential.as_ref(), Some(credential));
    assert_eq!(first.key.as_deref(), Some("registry.example.com"));
    let levels: Vec<(Scope, Option<uuid::Uuid>)> = first
        .levels
        .iter()
        .map(|level| (level.level, level.owner_guid))
        .collect();
    assert_eq!(levels, [(Scope::Organization, Some(organization))]);
    assert_eq!(
        first.levels[0].candidates,
        [
            "registry.example.com/team/app",
            "registry.example.com/team",
            "registry.example.com",
            "example.com"
        ]
    );
    let levels: Vec<Scope> = explained.resolutions[1]
        .levels
        .iter()
        .map(|level| level.level)
        .collect();
    assert_eq!(levels, [Scope::Organization, Scope::Foundation]);
    assert!(explained.resolutions[1].credential.is_none());

    // Resolving needs the pull-secrets scope.
    let error = BerthClient::new(&berth.address, SecretString::from(token(&[])))
        .unwrap()
        .resolve(&request)
        .await
        .unwrap_err();
    assert_eq!(error.api().map(|api| api.status), Some(403), "{error}");
}

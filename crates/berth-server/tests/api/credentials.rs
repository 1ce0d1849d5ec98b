//! Create, show, update and delete of `/v3/registry_credentials`.

use futures_util::FutureExt as _;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{EXTERNAL_URL, TestApp, assert_v3_error, detail};

#[tokio::test]
async fn create_foundation_credential_matches_the_seed_shape() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/v3/registry_credentials",
            json!({"location": "Registry.Example.com/team", "username": "robot", "password": "s3cret-pw"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let guid = body["guid"].as_str().unwrap();
    assert_eq!(body["location"], "registry.example.com/team");
    assert_eq!(body["username"], "robot");
    assert_eq!(body["scope"], "foundation");
    assert!(body.get("password").is_none());
    assert_eq!(
        body["relationships"],
        json!({"organization": {"data": null}, "space": {"data": null}, "app": {"data": null}})
    );
    assert_eq!(body["metadata"], json!({"labels": {}, "annotations": {}}));
    assert_eq!(
        body["links"],
        json!({"self": {"href": format!("{EXTERNAL_URL}/v3/registry_credentials/{guid}"), "method": "GET"}})
    );
    let created_at = body["created_at"].as_str().unwrap();
    assert_eq!(created_at.len(), 20, "YYYY-MM-DDThh:mm:ssZ");
    assert!(created_at.ends_with('Z'));
    assert_eq!(body["created_at"], body["updated_at"]);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        9,
        "guid, created_at, updated_at, location, username, scope, relationships, metadata, links: {keys:?}"
    );

    let (status, shown) = app.get(&format!("/v3/registry_credentials/{guid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, body);
}

#[tokio::test]
async fn narrower_scopes_name_their_parents() {
    let app = TestApp::spawn().await;
    let organization = app.organization("org").await;
    let space = app.space(&organization, "dev").await;
    let application = app.app(&space, "web").await;

    let body = app
        .credential(
            json!({"location": "ghcr.io", "username": "u", "password": "p",
            "relationships": {"organization": {"data": {"guid": organization}}}}),
        )
        .await;
    assert_eq!(body["scope"], "organization");
    assert_eq!(
        body["relationships"]["organization"]["data"]["guid"],
        organization.as_str()
    );
    assert_eq!(
        body["links"]["organization"]["href"],
        format!("{EXTERNAL_URL}/v3/organizations/{organization}")
    );
    assert!(body["links"].get("space").is_none());

    let body = app
        .credential(
            json!({"location": "ghcr.io", "username": "u", "password": "p",
            "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await;
    assert_eq!(body["scope"], "space");
    assert_eq!(
        body["relationships"]["organization"]["data"]["guid"],
        organization.as_str()
    );
    assert_eq!(
        body["relationships"]["space"]["data"]["guid"],
        space.as_str()
    );
    assert_eq!(
        body["relationships"]["app"]["data"],
        serde_json::Value::Null
    );
    assert_eq!(
        body["links"]["space"]["href"],
        format!("{EXTERNAL_URL}/v3/spaces/{space}")
    );

    let body = app
        .credential(
            json!({"location": "ghcr.io", "username": "u", "password": "p",
            "relationships": {"app": {"data": {"guid": application}}}}),
        )
        .await;
    assert_eq!(body["scope"], "app");
    assert_eq!(
        body["relationships"]["organization"]["data"]["guid"],
        organization.as_str()
    );
    assert_eq!(
        body["relationships"]["space"]["data"]["guid"],
        space.as_str()
    );
    assert_eq!(
        body["relationships"]["app"]["data"]["guid"],
        application.as_str()
    );
    assert_eq!(
        body["links"]["app"]["href"],
        format!("{EXTERNAL_URL}/v3/apps/{application}")
    );
    assert_eq!(body["links"]["organization"]["method"], "GET");
}

#[tokio::test]
async fn unknown_or_malformed_relationships_are_422() {
    let app = TestApp::spawn().await;
    let missing = uuid::Uuid::new_v4();
    for (relationships, message) in [
        (
            json!({"organization": {"data": {"guid": missing}}}),
            "Invalid organization. Ensure that the organization exists and you have access to it.",
        ),
        (
            json!({"space": {"data": {"guid": missing}}}),
            "Invalid space. Ensure that the space exists and you have access to it.",
        ),
        (
            json!({"app": {"data": {"guid": "not-a-uuid"}}}),
            "Invalid app. Ensure that the app exists and you have access to it.",
        ),
        (
            json!({"space": {"guid": missing}}),
            "Relationships space must be structured like this: \"space: {\"data\": {\"guid\": \"valid-guid\"}}\"",
        ),
    ] {
        let (status, body) = app
            .post("/v3/registry_credentials", json!({"location": "r.io", "username": "u", "password": "p", "relationships": relationships}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_v3_error(&body, 10008, "CF-UnprocessableEntity");
        assert_eq!(detail(&body), message);
    }
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let (status, body) = app
        .post("/v3/registry_credentials", json!({"location": "r.io", "username": "u", "password": "p",
            "relationships": {"organization": {"data": {"guid": organization}}, "space": {"data": {"guid": space}}}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "Relationships can only include one of 'organization', 'space' or 'app'"
    );
    let (_, list) = app.get("/v3/registry_credentials").await;
    assert_eq!(
        list["pagination"]["total_results"], 0,
        "nothing was written"
    );
}

#[tokio::test]
async fn one_credential_per_scope_target_and_location() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let body = json!({"location": "registry.example.com", "username": "u", "password": "p"});
    app.credential(body.clone()).await;
    let (status, error) = app
        .post(
            "/v3/registry_credentials",
            json!({"location": "REGISTRY.example.com", "username": "v", "password": "q"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v3_error(&error, 10016, "CF-UniquenessError");
    assert_eq!(
        detail(&error),
        "A registry credential for location 'registry.example.com' already exists for the foundation"
    );
    // The same location in another scope target is fine.
    app.credential(
        json!({"location": "registry.example.com", "username": "u", "password": "p",
        "relationships": {"organization": {"data": {"guid": organization}}}}),
    )
    .await;
    // A different path is a different location.
    app.credential(
        json!({"location": "registry.example.com/team", "username": "u", "password": "p"}),
    )
    .await;
}

#[tokio::test]
async fn concurrent_creates_of_one_location_give_exactly_one_201() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let body = json!({"location": "race.example.com", "username": "u", "password": "p",
        "relationships": {"organization": {"data": {"guid": organization}}}});
    let attempts = (0..16).map(|_| app.post("/v3/registry_credentials", body.clone()));
    let results = futures_util::future::join_all(attempts).await;
    let created = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    let duplicates = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((created, duplicates), (1, 15), "{results:?}");
    for (status, body) in &results {
        if *status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_v3_error(body, 10016, "CF-UniquenessError");
        }
    }
    let (_, list) = app.get("/v3/registry_credentials").await;
    assert_eq!(list["pagination"]["total_results"], 1);
}

#[tokio::test]
async fn patch_changes_username_password_and_merges_metadata() {
    let app = TestApp::spawn().await;
    let created = app
        .credential(json!({"location": "r.io", "username": "u", "password": "p",
            "metadata": {"labels": {"env": "prod", "tier": "web"}, "annotations": {"note": "first"}}}))
        .await;
    let guid = created["guid"].as_str().unwrap();
    let path = format!("/v3/registry_credentials/{guid}");
    let (status, body) = app
        .patch(
            &path,
            json!({"username": "u2", "password": "p2",
            "metadata": {"labels": {"env": null, "team": "a"}, "annotations": {"note": "second"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "u2");
    assert_eq!(
        body["metadata"],
        json!({"labels": {"tier": "web", "team": "a"}, "annotations": {"note": "second"}})
    );
    assert_eq!(body["location"], "r.io");
    assert_eq!(body["created_at"], created["created_at"]);
    let (_, shown) = app.get(&path).await;
    assert_eq!(shown, body);

    // An empty patch changes nothing but is accepted.
    let (status, body) = app.patch(&path, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["metadata"], shown["metadata"]);

    // The location cannot be changed.
    let (status, error) = app.patch(&path, json!({"location": "other.io"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&error), "Unknown field(s): 'location'");
}

#[tokio::test]
async fn delete_is_204_then_404() {
    let app = TestApp::spawn().await;
    let created = app
        .credential(json!({"location": "r.io", "username": "u", "password": "p"}))
        .await;
    let path = format!(
        "/v3/registry_credentials/{}",
        created["guid"].as_str().unwrap()
    );
    let (status, body) = app.delete(&path).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, serde_json::Value::Null);
    for (status, body) in [
        app.get(&path).await,
        app.delete(&path).await,
        app.patch(&path, json!({})).await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_v3_error(&body, 10010, "CF-ResourceNotFound");
        assert_eq!(detail(&body), "Registry credential not found");
    }
}

#[tokio::test]
async fn metadata_limits_are_enforced_on_create_and_patch() {
    let app = TestApp::spawn().await;
    let labels: serde_json::Map<String, serde_json::Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, body) = app
        .post("/v3/registry_credentials", json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"labels": labels}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v3_error(&body, 390020, "CF-LabelLimitExceeded");

    let fifty: serde_json::Map<String, serde_json::Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let created = app
        .credential(json!({"location": "r.io", "username": "u", "password": "p", "metadata": {"labels": fifty}}))
        .await;
    let path = format!(
        "/v3/registry_credentials/{}",
        created["guid"].as_str().unwrap()
    );
    let (status, body) = app
        .patch(&path, json!({"metadata": {"labels": {"one-more": "v"}}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "Failed to add 1 labels because it would exceed maximum of 50"
    );
    // Replacing one label at the limit is fine.
    let (status, _) = app
        .patch(
            &path,
            json!({"metadata": {"labels": {"k0": null, "one-more": "v"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let annotations: serde_json::Map<String, serde_json::Value> =
        (0..201).map(|i| (format!("a{i}"), json!("v"))).collect();
    let (status, body) = app
        .post("/v3/registry_credentials", json!({"location": "s.io", "username": "u", "password": "p", "metadata": {"annotations": annotations}}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v3_error(&body, 390023, "CF-AnnotationLimitExceeded");
}

#[tokio::test]
async fn concurrent_patches_of_different_labels_all_survive() {
    let app = TestApp::spawn().await;
    let created = app
        .credential(json!({"location": "r.io", "username": "u", "password": "p"}))
        .await;
    let path = format!(
        "/v3/registry_credentials/{}",
        created["guid"].as_str().unwrap()
    );
    let patches = (0..8).map(|i| {
        app.patch(
            &path,
            json!({"metadata": {"labels": {format!("k{i}"): "v"}}}),
        )
    });
    let results = futures_util::future::join_all(patches).await;
    assert!(
        results.iter().all(|(status, _)| *status == StatusCode::OK),
        "{results:?}"
    );
    let (_, shown) = app.get(&path).await;
    assert_eq!(
        shown["metadata"]["labels"].as_object().unwrap().len(),
        8,
        "{shown}"
    );
}

/// Fifty PATCHes of one credential at once, half through a second replica: each is a 200 (none
/// is lost to a race on the revision), and the stored row is exactly one request's write:
/// username, password and labels, in the JSON column and the label table.
#[tokio::test]
async fn fifty_concurrent_patches_of_one_credential_end_as_exactly_one_write() {
    use berth_domain::ids::CredentialGuid;
    use berth_domain::ports::CredentialStore;

    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let created = app
        .credential(json!({"location": "r.io", "username": "u", "password": "p",
            "metadata": {"labels": {"writer": "none", "round": "none"}}}))
        .await;
    let guid = created["guid"].as_str().unwrap().to_owned();
    let path = format!("/v3/registry_credentials/{guid}");
    let patches = (0..50).map(|i| {
        let address = if i % 2 == 0 { &app.address } else { &replica };
        let body = json!({"username": format!("user-{i}"), "password": format!("password-{i}"),
            "metadata": {"labels": {"writer": format!("w{i}"), "round": format!("r{i}")}}});
        app.call_at(address, reqwest::Method::PATCH, &path, Some(body))
    });
    let results = futures_util::future::join_all(patches).await;
    // Each waits for the write lock in turn: none is lost, none is refused.
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }

    let (status, shown) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let username = shown["username"].as_str().unwrap();
    let writer: usize = username.strip_prefix("user-").unwrap().parse().unwrap();
    assert_eq!(
        shown["metadata"]["labels"],
        json!({"writer": format!("w{writer}"), "round": format!("r{writer}")}),
        "{shown}"
    );
    let password = app
        .credential_store()
        .await
        .reveal_password(CredentialGuid::parse(&guid).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(password.expose(), format!("password-{writer}"));
    // The label table agrees with the JSON column: the selector of the winner finds it, and a
    // selector of any other writer's labels does not.
    let (_, found) = app
        .get(&format!(
            "/v3/registry_credentials?label_selector=writer=w{writer},round=r{writer}"
        ))
        .await;
    assert_eq!(found["pagination"]["total_results"], 1, "{found}");
    assert_eq!(found["resources"][0]["guid"], guid.as_str());
    let others: Vec<String> = (0..50)
        .filter(|i| *i != writer)
        .map(|i| format!("w{i}"))
        .collect();
    let (_, stale) = app
        .get(&format!(
            "/v3/registry_credentials?label_selector=writer in ({})",
            others.join(",")
        ))
        .await;
    assert_eq!(stale["pagination"]["total_results"], 0, "{stale}");
    let (_, stale) = app
        .get("/v3/registry_credentials?label_selector=writer=none")
        .await;
    assert_eq!(stale["pagination"]["total_results"], 0, "{stale}");
}

/// PATCHes and DELETEs of one credential at once, through two replicas: they wait for each
/// other (never a deadlock answered as a 5xx); exactly one DELETE wins and the credential and
/// its labels are gone.
#[tokio::test]
async fn concurrent_patches_and_deletes_of_one_credential_never_fail() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let created = app
        .credential(json!({"location": "r.io", "username": "u", "password": "p",
            "metadata": {"labels": {"gone": "soon"}}}))
        .await;
    let path = format!(
        "/v3/registry_credentials/{}",
        created["guid"].as_str().unwrap()
    );
    let requests = (0..50).map(|i| {
        let address = if i % 2 == 0 { &app.address } else { &replica };
        let (method, body) = if i % 5 == 0 {
            (reqwest::Method::DELETE, None)
        } else {
            let body = json!({"password": format!("p{i}"),
                "metadata": {"labels": {"gone": "soon", format!("k{i}"): "v"}}});
            (reqwest::Method::PATCH, Some(body))
        };
        app.call_at(address, method.clone(), &path, body)
            .then(move |result| async move { (method, result) })
    });
    let results = futures_util::future::join_all(requests).await;
    let mut deleted = 0;
    for (method, (status, body)) in &results {
        match (method.as_str(), *status) {
            ("DELETE", StatusCode::NO_CONTENT) => deleted += 1,
            (_, StatusCode::NOT_FOUND) => assert_v3_error(body, 10010, "CF-ResourceNotFound"),
            ("PATCH", StatusCode::OK) => {}
            _ => panic!("{method} answered {status}: {body}"),
        }
    }
    assert_eq!(deleted, 1, "{results:?}");
    let (status, _) = app.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = app
        .get("/v3/registry_credentials?label_selector=gone")
        .await;
    assert_eq!(listed["pagination"]["total_results"], 0, "{listed}");
}

//! `/v3/organizations`, `/v3/spaces`, `/v3/apps`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{EXTERNAL_URL, TestApp, assert_v3_error, detail};

#[tokio::test]
async fn put_creates_then_updates_and_shows_the_v3_shape() {
    let app = TestApp::spawn().await;
    let guid = uuid::Uuid::new_v4().to_string();
    let path = format!("/v3/organizations/{guid}");
    let (status, created) = app.put(&path, json!({"name": "acme"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["guid"], guid.as_str());
    assert_eq!(created["name"], "acme");
    assert_eq!(
        created["metadata"],
        json!({"labels": {}, "annotations": {}})
    );
    assert_eq!(
        created["links"]["self"]["href"],
        format!("{EXTERNAL_URL}{path}")
    );
    let (status, updated) = app.put(&path, json!({"name": "acme-renamed"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["name"], "acme-renamed");
    assert_eq!(updated["created_at"], created["created_at"]);
    let (status, shown) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown, updated);

    let space = uuid::Uuid::new_v4().to_string();
    let (status, body) = app
        .put(
            &format!("/v3/spaces/{space}"),
            json!({"name": "dev", "relationships": {"organization": {"data": {"guid": guid}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["relationships"]["organization"]["data"]["guid"],
        guid.as_str()
    );
    assert_eq!(
        body["links"]["organization"]["href"],
        format!("{EXTERNAL_URL}{path}")
    );

    let application = uuid::Uuid::new_v4().to_string();
    let (status, body) = app
        .put(
            &format!("/v3/apps/{application}"),
            json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["relationships"]["space"]["data"]["guid"],
        space.as_str()
    );
    assert_eq!(
        body["links"]["space"]["href"],
        format!("{EXTERNAL_URL}/v3/spaces/{space}")
    );
}

#[tokio::test]
async fn lists_filter_by_parent_and_name() {
    let app = TestApp::spawn().await;
    let first = app.organization("first").await;
    let second = app.organization("second").await;
    let s1 = app.space(&first, "a").await;
    let _s2 = app.space(&second, "b").await;
    let (status, list) = app
        .get(&format!("/v3/spaces?organization_guids={first}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["pagination"]["total_results"], 1);
    assert_eq!(list["resources"][0]["guid"], s1.as_str());
    let (_, list) = app
        .get("/v3/organizations?names=second&order_by=-name")
        .await;
    assert_eq!(list["resources"].as_array().unwrap().len(), 1);
    assert_eq!(list["resources"][0]["guid"], second.as_str());
    let (_, list) = app.get("/v3/organizations?order_by=-name&per_page=1").await;
    assert_eq!(list["resources"][0]["name"], "second");
    assert_eq!(list["pagination"]["total_pages"], 2);
    let (status, body) = app.get("/v3/apps?organization_guids=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_v3_error(&body, 10005, "CF-BadQueryParameter");
}

#[tokio::test]
async fn parents_must_exist_and_never_change() {
    let app = TestApp::spawn().await;
    let missing = uuid::Uuid::new_v4();
    let (status, body) = app
        .put(
            &format!("/v3/spaces/{}", uuid::Uuid::new_v4()),
            json!({"name": "s", "relationships": {"organization": {"data": {"guid": missing}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "Invalid organization. Ensure that the organization exists and you have access to it."
    );
    let (status, body) = app
        .put(
            &format!("/v3/spaces/{}", uuid::Uuid::new_v4()),
            json!({"name": "s"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let first = app.organization("first").await;
    let second = app.organization("second").await;
    let space = app.space(&first, "s").await;
    let (status, body) = app
        .put(
            &format!("/v3/spaces/{space}"),
            json!({"name": "s", "relationships": {"organization": {"data": {"guid": second}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(detail(&body), "The space's organization cannot be changed");
}

#[tokio::test]
async fn deleting_a_directory_resource_in_use_is_refused_and_deletes_nothing() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let application = app.app(&space, "a").await;
    app.credential(json!({"location": "r.io", "username": "u", "password": "p",
        "relationships": {"app": {"data": {"guid": application}}},
        "metadata": {"labels": {"team": "blue"}}}))
        .await;
    let role = uuid::Uuid::new_v4();
    let (status, body) = app
        .put(
            &format!("/v3/roles/{role}"),
            json!({"type": "organization_user", "relationships": {
                "user": {"data": {"guid": "someone"}},
                "organization": {"data": {"guid": organization}}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let (status, body) = app
        .delete(&format!("/v3/organizations/{organization}"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_v3_error(&body, 10008, "CF-UnprocessableEntity");
    assert_eq!(
        detail(&body),
        "Organization still has 1 space, 1 registry credential and 1 role: delete them first"
    );
    let (status, body) = app.delete(&format!("/v3/spaces/{space}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        detail(&body),
        "Space still has 1 app and 1 registry credential: delete them first"
    );
    for path in [
        format!("/v3/organizations/{organization}"),
        format!("/v3/spaces/{space}"),
        format!("/v3/apps/{application}"),
    ] {
        assert_eq!(
            app.get(&path).await.0,
            StatusCode::OK,
            "{path} is still there"
        );
    }

    assert_eq!(
        app.delete(&format!("/v3/roles/{role}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/v3/spaces/{space}")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the app is still there"
    );
    assert_eq!(
        app.delete(&format!("/v3/apps/{application}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/v3/spaces/{space}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/v3/organizations/{organization}"))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = app.get(&format!("/v3/organizations/{organization}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&body), "Organization not found");
}

/// As Cloud Controller: an app goes with its credentials (and their labels), in one
/// transaction; the credentials of other apps and of its space stay.
#[tokio::test]
async fn deleting_an_app_deletes_its_credentials() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let doomed = app.app(&space, "doomed").await;
    let kept = app.app(&space, "kept").await;
    let credential = |kind: &str, guid: &str, location: &str| {
        json!({"location": location, "username": "u", "password": "p",
            "relationships": {kind: {"data": {"guid": guid}}},
            "metadata": {"labels": {"team": "blue"}}})
    };
    let mut gone = Vec::new();
    for location in ["r.io", "other.io/team"] {
        gone.push(app.credential(credential("app", &doomed, location)).await);
    }
    let stays = [
        app.credential(credential("app", &kept, "r.io")).await,
        app.credential(credential("space", &space, "r.io")).await,
    ];

    assert_eq!(
        app.delete(&format!("/v3/apps/{doomed}")).await.0,
        StatusCode::NO_CONTENT
    );
    for credential in &gone {
        let (status, _) = app
            .get(&format!(
                "/v3/registry_credentials/{}",
                credential["guid"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    for credential in &stays {
        let (status, _) = app
            .get(&format!(
                "/v3/registry_credentials/{}",
                credential["guid"].as_str().unwrap()
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    use sea_orm::ConnectionTrait;
    let db = app.connect().await;
    let labels = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM registry_credential_labels".to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(
        labels, 2,
        "only the labels of the credentials kept are left"
    );
}

#[tokio::test]
async fn directory_bodies_are_validated() {
    let app = TestApp::spawn().await;
    let path = format!("/v3/organizations/{}", uuid::Uuid::new_v4());
    for (body, message) in [
        (json!({}), "Name can't be blank"),
        (json!({"name": 7}), "Name must be a string"),
        (
            json!({"name": "x", "suspended": true}),
            "Unknown field(s): 'suspended'",
        ),
        (json!({"name": ""}), "Name can't be blank"),
    ] {
        let (status, error) = app.put(&path, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(detail(&error), message, "{body}");
    }
    let (status, body) = app.get("/v3/organizations/not-a-guid").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v3_error(&body, 10010, "CF-ResourceNotFound");
    let (status, body) = app
        .put("/v3/organizations/not-a-guid", json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let _: Value = body;
}

/// The directory's list filters (`guids`, `names`, `organization_guids`, `space_guids`) hold
/// up to 200 values, all at once; one more is a 400 naming the parameter and its maximum.
#[tokio::test]
async fn directory_list_filters_are_bounded() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let space = app.space(&organization, "s").await;
    let app_guid = app.app(&space, "a").await;
    let guids = |first: &str, count: usize| {
        std::iter::once(first.to_owned())
            .chain(std::iter::repeat_with(|| uuid::Uuid::new_v4().to_string()))
            .take(count)
            .collect::<Vec<_>>()
            .join(",")
    };
    let names = |first: &str, count: usize| {
        std::iter::once(first.to_owned())
            .chain((1..count).map(|i| format!("n{i}")))
            .collect::<Vec<_>>()
            .join(",")
    };
    let lists = [
        ("/v3/organizations", None, organization.as_str(), "o"),
        (
            "/v3/spaces",
            Some(("organization_guids", organization.as_str())),
            space.as_str(),
            "s",
        ),
        (
            "/v3/apps",
            Some(("space_guids", space.as_str())),
            app_guid.as_str(),
            "a",
        ),
    ];
    for (path, parent, guid, name) in lists {
        let mut query = vec![("guids", guids(guid, 200)), ("names", names(name, 200))];
        if let Some((parameter, parent)) = parent {
            query.push((parameter, guids(parent, 200)));
        }
        let url = |query: &[(&str, String)]| {
            let parameters: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{path}?{}", parameters.join("&"))
        };
        let (status, body) = app.get(&url(&query)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["resources"][0]["guid"], guid, "{path}: {body}");
        assert_eq!(body["pagination"]["total_results"], 1, "{path}: {body}");
        for index in 0..query.len() {
            let mut past = query.clone();
            let (parameter, value) = &past[index];
            let parameter = *parameter;
            past[index] = (parameter, format!("{value},x"));
            let (status, body) = app.get(&url(&past)).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{path} {parameter}: {body}"
            );
            assert_v3_error(&body, 10005, "CF-BadQueryParameter");
            assert_eq!(
                detail(&body),
                format!(
                    "The query parameter is invalid: Too many {parameter} values (maximum is 200)"
                )
            );
        }
    }
    // What the issue sent: tens of thousands of names.
    let (status, body) = app
        .get(&format!(
            "/v3/organizations?names={}",
            vec!["a"; 30_000].join(",")
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        detail(&body),
        "The query parameter is invalid: Too many names values (maximum is 200)"
    );
}

/// The platform may send the same upsert many times at once (retries, several syncers): every
/// one is answered 201 or 200, exactly one creates, and the entry ends as one of them wrote it.
#[tokio::test]
async fn fifty_concurrent_upserts_of_one_entry_create_it_once() {
    let app = TestApp::spawn().await;
    let organization = uuid::Uuid::new_v4().to_string();
    let space = uuid::Uuid::new_v4().to_string();
    let app_guid = uuid::Uuid::new_v4().to_string();
    let bodies = [
        (format!("/v3/organizations/{organization}"), None),
        (
            format!("/v3/spaces/{space}"),
            Some(json!({"organization": {"data": {"guid": organization}}})),
        ),
        (
            format!("/v3/apps/{app_guid}"),
            Some(json!({"space": {"data": {"guid": space}}})),
        ),
    ];
    for (path, relationships) in &bodies {
        let answers = futures_util::future::join_all((0..50).map(|index| {
            let mut body = json!({"name": format!("name-{index}")});
            if let Some(relationships) = relationships {
                body["relationships"] = relationships.clone();
            }
            app.put(path, body)
        }))
        .await;
        let created = answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::CREATED)
            .count();
        for (status, body) in &answers {
            assert!(
                *status == StatusCode::CREATED || *status == StatusCode::OK,
                "{path}: {status} {body}"
            );
        }
        assert_eq!(created, 1, "{path}: {created} creations");
        let (status, shown) = app.get(path).await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<String> = (0..50).map(|index| format!("name-{index}")).collect();
        assert!(
            names.iter().any(|name| shown["name"] == name.as_str()),
            "{path}: {shown}"
        );
    }
}

//! Listing `/v3/registry_credentials`: filters, label selectors, ordering and pagination.

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::{Value, json};

use crate::helpers::{EXTERNAL_URL, TestApp, assert_v3_error, detail};

fn guids(list: &Value) -> Vec<String> {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["guid"].as_str().unwrap().to_owned())
        .collect()
}

fn locations(list: &Value) -> Vec<String> {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["location"].as_str().unwrap().to_owned())
        .collect()
}

async fn set_timestamps(app: &TestApp, guid: &str, created_at: &str, updated_at: &str) {
    let format = time::format_description::well_known::Rfc3339;
    let created = time::OffsetDateTime::parse(created_at, &format).unwrap();
    let updated = time::OffsetDateTime::parse(updated_at, &format).unwrap();
    let db = app.connect().await;
    let statement = Query::update()
        .table(Alias::new("registry_credentials"))
        .value(Alias::new("created_at"), created)
        .value(Alias::new("updated_at"), updated)
        .and_where(Expr::col(Alias::new("guid")).eq(uuid::Uuid::parse_str(guid).unwrap()))
        .to_owned();
    db.execute(&statement).await.unwrap();
}

#[tokio::test]
async fn empty_list_has_one_page() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/v3/registry_credentials").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"pagination": {"total_results": 0, "total_pages": 1,
            "first": {"href": format!("{EXTERNAL_URL}/v3/registry_credentials?page=1&per_page=50")},
            "last": {"href": format!("{EXTERNAL_URL}/v3/registry_credentials?page=1&per_page=50")},
            "next": null, "previous": null}, "resources": []})
    );
}

#[tokio::test]
async fn pages_and_links_carry_every_filter() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        app.credential(
            json!({"location": format!("r{i}.io"), "username": "u", "password": "p",
            "metadata": {"labels": {"env": "prod"}}}),
        )
        .await;
    }
    let (status, page2) = app.get("/v3/registry_credentials?per_page=3&page=2&label_selector=env%3Dprod&order_by=-location").await;
    assert_eq!(status, StatusCode::OK, "{page2}");
    let pagination = &page2["pagination"];
    assert_eq!(pagination["total_results"], 7);
    assert_eq!(pagination["total_pages"], 3);
    let base = format!(
        "{EXTERNAL_URL}/v3/registry_credentials?label_selector=env%3Dprod&order_by=-location"
    );
    assert_eq!(
        pagination["first"]["href"],
        format!("{base}&page=1&per_page=3")
    );
    assert_eq!(
        pagination["last"]["href"],
        format!("{base}&page=3&per_page=3")
    );
    assert_eq!(
        pagination["next"]["href"],
        format!("{base}&page=3&per_page=3")
    );
    assert_eq!(
        pagination["previous"]["href"],
        format!("{base}&page=1&per_page=3")
    );
    assert_eq!(locations(&page2), ["r3.io", "r2.io", "r1.io"]);
    let (_, page3) = app.get("/v3/registry_credentials?per_page=3&page=3&label_selector=env%3Dprod&order_by=-location").await;
    assert_eq!(locations(&page3), ["r0.io"]);
    assert_eq!(page3["pagination"]["next"], Value::Null);
    // A page past the end is empty but still counts every result.
    let (_, page9) = app.get("/v3/registry_credentials?per_page=3&page=9").await;
    assert_eq!(page9["resources"], json!([]));
    assert_eq!(page9["pagination"]["total_results"], 7);
}

#[tokio::test]
async fn filters_by_guid_scope_parent_and_location() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let other_organization = app.organization("p").await;
    let space = app.space(&organization, "s").await;
    let application = app.app(&space, "a").await;
    let foundation = app
        .credential(json!({"location": "f.io", "username": "u", "password": "p"}))
        .await;
    let org_cred = app
        .credential(json!({"location": "o.io", "username": "u", "password": "p", "relationships": {"organization": {"data": {"guid": organization}}}}))
        .await;
    let other_cred = app
        .credential(json!({"location": "o.io", "username": "u", "password": "p", "relationships": {"organization": {"data": {"guid": other_organization}}}}))
        .await;
    let space_cred = app
        .credential(json!({"location": "s.io", "username": "u", "password": "p", "relationships": {"space": {"data": {"guid": space}}}}))
        .await;
    let app_cred = app
        .credential(json!({"location": "a.io:5000/x", "username": "u", "password": "p", "relationships": {"app": {"data": {"guid": application}}}}))
        .await;
    let guid = |v: &Value| v["guid"].as_str().unwrap().to_owned();

    let cases = [
        (
            format!("guids={},{}", guid(&foundation), guid(&app_cred)),
            vec![guid(&foundation), guid(&app_cred)],
        ),
        (
            "scopes=foundation,space".to_owned(),
            vec![guid(&foundation), guid(&space_cred)],
        ),
        (
            format!("organization_guids={organization}"),
            vec![guid(&org_cred), guid(&space_cred), guid(&app_cred)],
        ),
        (
            format!("space_guids={space}"),
            vec![guid(&space_cred), guid(&app_cred)],
        ),
        (format!("app_guids={application}"), vec![guid(&app_cred)]),
        (
            "locations=o.io".to_owned(),
            vec![guid(&org_cred), guid(&other_cred)],
        ),
        (
            "locations=A.IO:5000/x,nothing".to_owned(),
            vec![guid(&app_cred)],
        ),
        (
            format!("locations=o.io&organization_guids={other_organization}"),
            vec![guid(&other_cred)],
        ),
        ("guids=".to_owned(), vec![]),
    ];
    for (query, expected) in cases {
        let (status, list) = app.get(&format!("/v3/registry_credentials?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {list}");
        assert_eq!(guids(&list), expected, "{query}");
        assert_eq!(
            list["pagination"]["total_results"],
            expected.len(),
            "{query}"
        );
    }
}

#[tokio::test]
async fn every_label_selector_form_is_applied_in_the_database() {
    let app = TestApp::spawn().await;
    let mut by_name = std::collections::HashMap::new();
    for (name, labels) in [
        ("a", json!({"env": "prod", "tier": "web"})),
        ("b", json!({"env": "dev", "tier": "db"})),
        ("c", json!({"env": "prod"})),
        ("d", json!({"example.com/team": "x"})),
        ("e", json!({})),
    ] {
        let created = app
            .credential(json!({"location": format!("{name}.io"), "username": "u", "password": "p", "metadata": {"labels": labels}}))
            .await;
        by_name.insert(created["guid"].as_str().unwrap().to_owned(), name);
    }
    let cases: &[(&str, &[&str])] = &[
        ("env", &["a", "b", "c"]),
        ("!env", &["d", "e"]),
        ("env=prod", &["a", "c"]),
        ("env==prod", &["a", "c"]),
        ("env!=prod", &["b", "d", "e"]),
        ("env in (prod,dev)", &["a", "b", "c"]),
        ("env notin (prod)", &["b", "d", "e"]),
        ("env=prod,tier", &["a"]),
        ("env=prod,!tier", &["c"]),
        ("example.com/team=x", &["d"]),
        ("tier in (web, db),env=dev", &["b"]),
        ("env=staging", &[]),
    ];
    for (selector, expected) in cases {
        let query = serde_urlencoded::to_string([("label_selector", selector)]).unwrap();
        let (status, list) = app
            .get(&format!(
                "/v3/registry_credentials?{query}&order_by=location"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{selector}: {list}");
        let names: Vec<&str> = guids(&list).iter().map(|g| by_name[g]).collect();
        assert_eq!(names, *expected, "{selector}");
        assert_eq!(
            list["pagination"]["total_results"],
            expected.len(),
            "{selector}"
        );
    }
}

#[tokio::test]
async fn timestamp_filters_and_ordering() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for (i, (created_at, updated_at)) in [
        ("2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        ("2026-01-02T00:00:00Z", "2026-02-01T00:00:00Z"),
        ("2026-01-03T00:00:00Z", "2026-01-03T00:00:00Z"),
    ]
    .into_iter()
    .enumerate()
    {
        let credential = app
            .credential(json!({"location": format!("r{i}.io"), "username": "u", "password": "p"}))
            .await;
        let guid = credential["guid"].as_str().unwrap().to_owned();
        set_timestamps(&app, &guid, created_at, updated_at).await;
        created.push(guid);
    }
    let cases: Vec<(&str, Vec<&String>)> = vec![
        ("created_ats=2026-01-02T00:00:00Z", vec![&created[1]]),
        (
            "created_ats=2026-01-01T00:00:00Z,2026-01-03T00:00:00Z",
            vec![&created[0], &created[2]],
        ),
        ("created_ats[lt]=2026-01-02T00:00:00Z", vec![&created[0]]),
        (
            "created_ats[lte]=2026-01-02T00:00:00Z",
            vec![&created[0], &created[1]],
        ),
        ("created_ats[gt]=2026-01-02T00:00:00Z", vec![&created[2]]),
        (
            "created_ats[gte]=2026-01-02T00:00:00Z&created_ats[lt]=2026-01-03T00:00:00Z",
            vec![&created[1]],
        ),
        (
            "updated_ats[gt]=2026-01-15T00:00:00Z&order_by=updated_at",
            vec![&created[1], &created[0]],
        ),
        (
            "order_by=-created_at",
            vec![&created[2], &created[1], &created[0]],
        ),
        (
            "order_by=%2Bcreated_at",
            vec![&created[0], &created[1], &created[2]],
        ),
        (
            "order_by=-updated_at",
            vec![&created[0], &created[1], &created[2]],
        ),
    ];
    for (query, expected) in cases {
        let (status, list) = app.get(&format!("/v3/registry_credentials?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {list}");
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(guids(&list), expected, "{query}");
        let (_, shown) = app
            .get(&format!("/v3/registry_credentials/{}", created[0]))
            .await;
        assert_eq!(shown["created_at"], "2026-01-01T00:00:00Z");
    }
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "foo=bar",
            "Unknown query parameter(s): 'foo'. Valid parameters are: 'page', 'per_page', 'order_by', 'guids', 'organization_guids', 'space_guids', 'app_guids', 'scopes', 'locations', 'label_selector', 'created_ats', 'updated_ats'",
        ),
        ("per_page=0", "Per page must be a positive integer"),
        ("per_page=5001", "Per page must be between 1 and 5000"),
        ("per_page=abc", "Per page must be a positive integer"),
        ("page=0", "Page must be a positive integer"),
        ("page=-1", "Page must be a positive integer"),
        (
            "order_by=username",
            "Order by can only be: 'created_at', 'updated_at', 'location'",
        ),
        (
            "guids=not-a-guid",
            "Guids must be a list of valid guids: 'not-a-guid' is not one",
        ),
        (
            "space_guids=123",
            "Space guids must be a list of valid guids: '123' is not one",
        ),
        (
            "scopes=global",
            "Scopes can only include 'foundation', 'organization', 'space', 'app'",
        ),
        (
            "created_ats=yesterday",
            "Created ats has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'",
        ),
        (
            "updated_ats[gt]=2026-01-01T00:00:00Z,2026-01-02T00:00:00Z",
            "Updated ats only accepts one value when using a relational operator",
        ),
        (
            "created_ats[between]=2026-01-01T00:00:00Z",
            "Invalid relational operator: 'between'",
        ),
        ("label_selector=", "Missing label_selector value"),
        ("label_selector=a%20b", "Invalid label_selector value"),
        (
            "label_selector=bad%20key%3Dv",
            "Invalid label_selector value",
        ),
    ];
    for (query, message) in cases {
        let (status, body) = app.get(&format!("/v3/registry_credentials?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_v3_error(&body, 10005, "CF-BadQueryParameter");
        assert_eq!(
            detail(&body),
            format!("The query parameter is invalid: {message}"),
            "{query}"
        );
    }
    let selector = (0..51)
        .map(|i| format!("k{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let (status, body) = app
        .get(&format!(
            "/v3/registry_credentials?label_selector={selector}"
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        detail(&body),
        "The query parameter is invalid: Too many label_selector requirements (maximum is 50)"
    );
    let selector = (0..50)
        .map(|i| format!("k{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let (status, _) = app
        .get(&format!(
            "/v3/registry_credentials?label_selector={selector}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "50 requirements are allowed");
}

#[tokio::test]
async fn per_page_bounds_are_inclusive() {
    let app = TestApp::spawn().await;
    for per_page in [1, 5000] {
        let (status, body) = app
            .get(&format!("/v3/registry_credentials?per_page={per_page}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["pagination"]["total_pages"], 1);
    }
}

/// `count` random guids after `first` (when given), comma-separated.
fn guid_list(first: Option<&str>, count: usize) -> String {
    first
        .map(str::to_owned)
        .into_iter()
        .chain(std::iter::repeat_with(|| uuid::Uuid::new_v4().to_string()))
        .take(count)
        .collect::<Vec<_>>()
        .join(",")
}

/// `count` copies of `item`, comma-separated.
fn repeated(item: &str, count: usize) -> String {
    vec![item; count].join(",")
}

/// A selector of `requirements` requirements `k<i> in (v0,...)`, each list `values` long.
fn selector(requirements: usize, values: usize) -> String {
    let list = (0..values)
        .map(|i| format!("v{i}"))
        .collect::<Vec<_>>()
        .join(",");
    (0..requirements)
        .map(|i| format!("k{i} in ({list})"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The list path with these parameters; commas stay as they are (an encoded comma would
/// triple the length of a long list) and spaces become `+`.
fn query(pairs: &[(&str, String)]) -> String {
    let parameters: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", value.replace(' ', "+")))
        .collect();
    format!("/v3/registry_credentials?{}", parameters.join("&"))
}

const BOUND: usize = 200;
const SELECTOR_VALUES: usize = 50;

/// Every list filter at its bound at once, with a full selector of full `in` lists, is a 200
/// on both databases (the worst statement stays under both bind-parameter limits); the
/// filters still find what they should.
#[tokio::test]
async fn every_list_filter_at_its_bound_at_once_is_answered() {
    let app = TestApp::spawn().await;
    let organization = app.organization("o").await;
    let labels: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v7"))).collect();
    let created = app
        .credential(json!({"location": "r.io", "username": "u", "password": "p",
            "relationships": {"organization": {"data": {"guid": organization}}},
            "metadata": {"labels": labels}}))
        .await;
    let guid = created["guid"].as_str().unwrap();
    let created_at = created["created_at"].as_str().unwrap();
    let timestamps = |first: &str| {
        std::iter::once(first.to_owned())
            .chain((1..BOUND).map(|i| format!("2001-01-01T00:00:{:02}Z", i % 60)))
            .collect::<Vec<_>>()
            .join(",")
    };
    let matching = vec![
        ("guids", guid_list(Some(guid), BOUND)),
        ("organization_guids", guid_list(Some(&organization), BOUND)),
        ("scopes", repeated("organization", BOUND)),
        ("locations", format!("r.io,{}", repeated("x.io", BOUND - 1))),
        ("label_selector", selector(50, SELECTOR_VALUES)),
        ("created_ats", timestamps(created_at)),
        ("updated_ats", timestamps(created_at)),
        ("created_ats[gte]", "2000-01-01T00:00:00Z".to_owned()),
        ("created_ats[gt]", "2000-01-01T00:00:00Z".to_owned()),
        ("created_ats[lte]", "2100-01-01T00:00:00Z".to_owned()),
        ("created_ats[lt]", "2100-01-01T00:00:00Z".to_owned()),
        ("updated_ats[gte]", "2000-01-01T00:00:00Z".to_owned()),
        ("updated_ats[gt]", "2000-01-01T00:00:00Z".to_owned()),
        ("updated_ats[lte]", "2100-01-01T00:00:00Z".to_owned()),
        ("updated_ats[lt]", "2100-01-01T00:00:00Z".to_owned()),
    ];
    let (status, body) = app.get(&query(&matching)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(guids(&body), vec![guid.to_owned()]);

    // The worst case: the space and app filters at their bound too (nothing matches them).
    let mut worst = matching;
    worst.push(("space_guids", guid_list(None, BOUND)));
    worst.push(("app_guids", guid_list(None, BOUND)));
    let (status, body) = app.get(&query(&worst)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["pagination"]["total_results"], 0, "{body}");
}

/// One value past any list bound is a 400 CF-BadQueryParameter naming the parameter and its
/// maximum; so are the lists of the issue (tens of thousands of values, 1,300 organizations
/// under a full selector) that reached the database and answered 500.
#[tokio::test]
async fn one_value_past_any_list_bound_is_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let timestamp = "2001-01-01T00:00:00Z";
    let mut cases: Vec<(Vec<(&str, String)>, String)> =
        ["guids", "organization_guids", "space_guids", "app_guids"]
            .into_iter()
            .map(|name| {
                (
                    vec![(name, guid_list(None, BOUND + 1))],
                    format!("Too many {name} values (maximum is 200)"),
                )
            })
            .collect();
    for (name, item) in [
        ("scopes", "app"),
        ("locations", "r.io"),
        ("created_ats", timestamp),
        ("updated_ats", timestamp),
    ] {
        cases.push((
            vec![(name, repeated(item, BOUND + 1))],
            format!("Too many {name} values (maximum is 200)"),
        ));
    }
    let too_many_values =
        "Too many values in a label_selector 'in' or 'notin' list (maximum is 50)".to_owned();
    cases.push((
        vec![("label_selector", selector(1, SELECTOR_VALUES + 1))],
        too_many_values.clone(),
    ));
    cases.push((
        vec![(
            "label_selector",
            format!("k notin ({})", repeated("v", SELECTOR_VALUES + 1)),
        )],
        too_many_values.clone(),
    ));
    // What the issue sent, as long as a URI may be (64 KiB).
    cases.push((
        vec![("locations", repeated("a", 30_000))],
        "Too many locations values (maximum is 200)".to_owned(),
    ));
    cases.push((
        vec![(
            "label_selector",
            format!("k in ({})", repeated("a", 30_000)),
        )],
        too_many_values,
    ));
    cases.push((
        vec![
            ("organization_guids", guid_list(None, 1_300)),
            ("label_selector", selector(50, 1)),
        ],
        "Too many organization_guids values (maximum is 200)".to_owned(),
    ));
    for (pairs, message) in cases {
        let (status, body) = app.get(&query(&pairs)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{message}: {body}");
        assert_v3_error(&body, 10005, "CF-BadQueryParameter");
        assert_eq!(
            detail(&body),
            format!("The query parameter is invalid: {message}")
        );
    }
}

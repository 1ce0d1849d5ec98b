//! Repositories of a project, as Harbor serves them (list, delete; a project holding any
//! answers 412 to its delete), and the test hook that pushes repositories into a project,
//! optionally as a robot, which Harbor's permission rules then govern (a pull-only robot may
//! not push).

// Errors here are the HTTP answers themselves, as in `handlers`.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::handlers::{error, find_project, paged, paging, require_admin, run};
use crate::state::{State, hash_secret};
use crate::{Shared, lock};

type Data = web::Data<Shared>;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route(
            "/api/v2.0/projects/{project}/repositories",
            web::get().to(list_repositories),
        )
        .route(
            "/api/v2.0/projects/{project}/repositories/{repository:.*}",
            web::delete().to(delete_repository),
        )
        .route(
            "/_emulator/projects/{name}/repositories",
            web::post().to(push_repositories),
        );
}

/// Decodes `%XX` escapes once, as Harbor's router and then its handler each do; `None` for a
/// broken escape or text that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The robot a request authenticates as (valid secret, enabled, not expired), by its
/// permissions; `None` when the request carries no robot login that works.
fn robot_permissions(shared: &Shared, request: &HttpRequest) -> Option<Value> {
    let decoded = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| BASE64.decode(encoded.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())?;
    let (user, password) = decoded.split_once(':')?;
    let stored_name = user.strip_prefix(&shared.config.robot_prefix)?;
    let state = lock(&shared.state);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    state
        .robots
        .values()
        .find(|robot| {
            robot.stored_name == stored_name
                && !robot.disable
                && (robot.expires_at == -1 || robot.expires_at > now)
                && hash_secret(&robot.salt, password) == robot.secret_hash
        })
        .map(|robot| robot.permissions.clone())
}

/// Whether `permissions` allow `action` on the repositories of `project`.
fn allows(permissions: &Value, project: &str, action: &str) -> bool {
    permissions.as_array().is_some_and(|list| {
        list.iter().any(|permission| {
            let namespace = permission["namespace"].as_str().unwrap_or_default();
            permission["kind"] == "project"
                && (namespace == project || namespace == "*")
                && permission["access"].as_array().is_some_and(|access| {
                    access.iter().any(|item| {
                        item["resource"] == "repository"
                            && item["action"] == action
                            && item["effect"]
                                .as_str()
                                .is_none_or(|e| e.is_empty() || e == "allow")
                    })
                })
        })
    })
}

/// The admin, or a robot allowed `action` on the project's repositories.
fn authorize(
    shared: &Shared,
    request: &HttpRequest,
    project: &str,
    action: &str,
) -> Result<(), HttpResponse> {
    if require_admin(shared, request).is_ok() {
        return Ok(());
    }
    match robot_permissions(shared, request) {
        Some(permissions) if allows(&permissions, project, action) => Ok(()),
        Some(_) => Err(error(403, "FORBIDDEN", "forbidden")),
        None => Err(error(401, "UNAUTHORIZED", "unauthorized")),
    }
}

fn repository_json(
    project_id: i64,
    project: &str,
    name: &str,
    id: i64,
    at: OffsetDateTime,
) -> Value {
    let time = at.format(&Rfc3339).unwrap_or_default();
    json!({
        "id": id,
        "project_id": project_id,
        "name": format!("{project}/{name}"),
        "description": "",
        "artifact_count": 1,
        "pull_count": 0,
        "creation_time": time,
        "update_time": time,
    })
}

async fn list_repositories(
    shared: Data,
    request: HttpRequest,
    project: web::Path<String>,
    query: web::Query<BTreeMap<String, String>>,
) -> HttpResponse {
    let authorized = authorize(&shared, &request, &project, "pull");
    run(&shared, "GET /projects/{project}/repositories", || {
        authorized?;
        let (page, page_size) = paging(&query)?;
        let state = lock(&shared.state);
        let found = state
            .project_by_name(&project)
            .ok_or_else(|| error(404, "NOT_FOUND", format!("project {project} not found")))?;
        let items = found
            .repositories
            .iter()
            .map(|(name, repository)| {
                repository_json(
                    found.id,
                    &found.name,
                    name,
                    repository.id,
                    repository.creation_time,
                )
            })
            .collect();
        Ok(paged(&request, items, page, page_size))
    })
    .await
}

/// The repository's name from the raw path: Harbor's router decodes the path once (a single
/// encoded `/` would split the route, which answers 404) and the handler decodes it again.
fn repository_name(request: &HttpRequest) -> Option<String> {
    let raw = request.uri().path().rsplit_once("/repositories/")?.1;
    let once = percent_decode(raw)?;
    if once.contains('/') || once.is_empty() {
        return None;
    }
    percent_decode(&once)
}

async fn delete_repository(
    shared: Data,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let project = path.into_inner().0;
    let authorized = require_admin(&shared, &request);
    run(
        &shared,
        "DELETE /projects/{project}/repositories/{repository}",
        || {
            authorized?;
            let not_routed = || {
                error(
                    404,
                    "NOT_FOUND",
                    format!("path {} was not found", request.uri().path()),
                )
            };
            let name = repository_name(&request).ok_or_else(not_routed)?;
            let mut state = lock(&shared.state);
            let found = find_project(&state, &project, &request)
                .map(|p| p.id)
                .ok_or_else(|| error(404, "NOT_FOUND", format!("project {project} not found")))?;
            remove(&mut state, found, &project, &name)?;
            Ok(HttpResponse::Ok().finish())
        },
    )
    .await
}

fn remove(
    state: &mut State,
    project_id: i64,
    project: &str,
    name: &str,
) -> Result<(), HttpResponse> {
    state
        .projects
        .get_mut(&project_id)
        .and_then(|p| p.repositories.remove(name))
        .map(drop)
        .ok_or_else(|| {
            error(
                404,
                "NOT_FOUND",
                format!("repository {project}/{name} not found"),
            )
        })
}

/// Test hook: `{"count": n}` adds `team/app-<n>` repositories, `{"name": "a/b"}` one of that
/// name. Without `Authorization` it is the test's own push; with a login, it is that login's
/// push, which needs `repository:push` on the project (the admin always has it).
async fn push_repositories(
    shared: Data,
    request: HttpRequest,
    project: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> HttpResponse {
    if request.headers().contains_key("authorization")
        && let Err(refused) = authorize(&shared, &request, &project, "push")
    {
        return refused;
    }
    let mut state = lock(&shared.state);
    let pushed = match body.get("name").and_then(Value::as_str) {
        Some(name) => state.push_repository(&project, name),
        None => {
            let count = body
                .get("count")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(1);
            state.add_repositories(&project, count)
        }
    };
    if pushed {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::NotFound().finish()
    }
}

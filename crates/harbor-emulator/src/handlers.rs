//! The emulated endpoints. Each API call passes through `gate` (faults, call log) first.

// Errors here are the HTTP answers themselves; boxing every early return would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::faults::Faults;
use crate::state::{Project, Robot, State, hash_secret, random_secret, view};
use crate::{Shared, lock};

type Data = web::Data<Shared>;
type Reply = Result<HttpResponse, HttpResponse>;

const API: &str = "/api/v2.0";
/// Harbor's largest storage limit: 1024 TB in bytes.
const MAX_STORAGE_BYTES: i64 = 1_125_899_906_842_624;
const MAX_PAGE_SIZE: i64 = 100;

pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/api/v2.0/ping", web::get().to(ping))
        .route("/api/v2.0/health", web::get().to(health))
        .route("/api/v2.0/systeminfo", web::get().to(systeminfo))
        .route("/api/v2.0/users/current", web::get().to(current_user))
        .service(
            web::resource("/api/v2.0/projects")
                .route(web::post().to(create_project))
                .route(web::head().to(head_project))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api/v2.0/projects/{project}")
                .route(web::get().to(get_project))
                .route(web::delete().to(delete_project))
                .default_service(web::to(method_not_allowed)),
        )
        .route(
            "/api/v2.0/projects/{project}/summary",
            web::get().to(project_summary),
        )
        .route("/api/v2.0/quotas", web::get().to(list_quotas))
        .service(
            web::resource("/api/v2.0/quotas/{id}")
                .route(web::get().to(get_quota))
                .route(web::put().to(put_quota))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api/v2.0/robots")
                .route(web::post().to(create_robot))
                .route(web::get().to(list_robots))
                .default_service(web::to(method_not_allowed)),
        )
        .service(
            web::resource("/api/v2.0/robots/{id}")
                .route(web::get().to(get_robot))
                .route(web::patch().to(refresh_robot))
                .route(web::put().to(update_robot))
                .route(web::delete().to(delete_robot))
                .default_service(web::to(method_not_allowed)),
        )
        .route("/v2/", web::get().to(registry_ping))
        .route("/service/token", web::get().to(registry_token))
        .route("/_emulator/state", web::get().to(emulator_state))
        .route("/_emulator/faults", web::put().to(set_faults))
        .route("/_emulator/faults", web::delete().to(clear_faults))
        .configure(crate::repositories::configure)
        .route(
            "/_emulator/projects/{name}/usage",
            web::post().to(set_usage),
        )
        .default_service(web::to(not_found));
}

/// Echoes the caller's `X-Request-Id` or makes one, on every response, as Harbor does.
pub(crate) async fn request_id(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let name = HeaderName::from_static("x-request-id");
    if let (Some(shared), Some(given)) = (
        request.app_data::<Data>(),
        request
            .headers()
            .get(&name)
            .and_then(|value| value.to_str().ok()),
    ) {
        lock(&shared.state).request_ids.push(given.to_owned());
    }
    if let (Some(shared), Some(traceparent)) = (
        request.app_data::<Data>(),
        request
            .headers()
            .get("traceparent")
            .and_then(|value| value.to_str().ok()),
    ) {
        lock(&shared.state)
            .traceparents
            .push(traceparent.to_owned());
    }
    let id = request.headers().get(&name).cloned().unwrap_or_else(|| {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or(HeaderValue::from_static("0"))
    });
    let mut response = next.call(request).await?;
    response.headers_mut().insert(name, id);
    Ok(response)
}

pub(crate) fn error(status: u16, code: &str, message: impl Into<String>) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // Harbor sanitises every 500.
    let message = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        "internal server error".to_owned()
    } else {
        message.into()
    };
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .json(json!({"errors": [{"code": code, "message": message}]}))
}

fn code_for(status: u16) -> &'static str {
    match status {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        412 => "PRECONDITION",
        422 => "UNPROCESSABLE_ENTITY",
        429 => "TOO_MANY_REQUEST",
        503 => "SERVICE_UNAVAILABLE",
        _ => "UNKNOWN",
    }
}

pub(crate) fn json_error(
    error: actix_web::error::JsonPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    let message = format!("parsing body failed: {error}");
    actix_web::error::InternalError::from_response(error, self::error(400, "BAD_REQUEST", message))
        .into()
}

pub(crate) fn query_error(
    error: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    let message = format!("validation failure list:\n{error}");
    actix_web::error::InternalError::from_response(
        error,
        self::error(422, "UNPROCESSABLE_ENTITY", message),
    )
    .into()
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    error(
        404,
        "NOT_FOUND",
        format!("path {} was not found", request.path()),
    )
}

async fn method_not_allowed() -> HttpResponse {
    error(405, "METHOD_NOT_ALLOWED", "method not allowed")
}

enum Caller {
    Anonymous,
    Admin,
    Robot,
}

/// Basic auth as Harbor reads it: the admin, or a robot by its prefixed name and secret. Wrong
/// credentials are not an error here: the caller is anonymous.
fn caller(shared: &Shared, request: &HttpRequest) -> Caller {
    let Some(decoded) = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| BASE64.decode(encoded.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return Caller::Anonymous;
    };
    let Some((user, password)) = decoded.split_once(':') else {
        return Caller::Anonymous;
    };
    let config = &shared.config;
    if let Some(stored_name) = user.strip_prefix(&config.robot_prefix) {
        let state = lock(&shared.state);
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let valid = state.robots.values().any(|robot| {
            robot.stored_name == stored_name
                && !robot.disable
                && (robot.expires_at == -1 || robot.expires_at > now)
                && hash_secret(&robot.salt, password) == robot.secret_hash
        });
        return if valid {
            Caller::Robot
        } else {
            Caller::Anonymous
        };
    }
    if user == config.admin_username && password == config.admin_password {
        Caller::Admin
    } else {
        Caller::Anonymous
    }
}

pub(crate) fn require_admin(shared: &Shared, request: &HttpRequest) -> Result<(), HttpResponse> {
    match caller(shared, request) {
        Caller::Admin => Ok(()),
        Caller::Robot => Err(error(403, "FORBIDDEN", "forbidden")),
        Caller::Anonymous => Err(error(401, "UNAUTHORIZED", "unauthorized")),
    }
}

/// Harbor's registry login (`src/server/middleware/v2auth`): without `Authorization`, 401 with
/// the Bearer challenge naming this host's token service; 200 for a token the token service
/// issued or for valid Basic credentials; otherwise 401 with `Basic realm="harbor"`.
async fn registry_ping(shared: Data, request: HttpRequest) -> HttpResponse {
    run(&shared, "GET /v2/", || {
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        let challenge = match authorization {
            None => {
                let info = request.connection_info();
                format!(
                    "Bearer realm=\"{}://{}/service/token\",service=\"harbor-registry\"",
                    info.scheme(),
                    info.host()
                )
            }
            Some(value) => {
                let accepted = match value.strip_prefix("Bearer ") {
                    Some(token) => lock(&shared.state).registry_token_valid(token.trim()),
                    None => !matches!(caller(&shared, &request), Caller::Anonymous),
                };
                if accepted {
                    return Ok(registry_answer(StatusCode::OK).json(json!({})));
                }
                "Basic realm=\"harbor\"".to_owned()
            }
        };
        Err(registry_answer(StatusCode::UNAUTHORIZED)
            .insert_header(("WWW-Authenticate", challenge))
            .json(json!({"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized: unauthorized"}]})))
    })
    .await
}

fn registry_answer(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::build(status);
    response.insert_header(("Docker-Distribution-Api-Version", "registry/2.0"));
    response
}

/// Harbor's token service: a token for the admin or a robot (Basic auth), 401 otherwise.
async fn registry_token(shared: Data, request: HttpRequest) -> HttpResponse {
    run(&shared, "GET /service/token", || {
        if matches!(caller(&shared, &request), Caller::Anonymous) {
            return Err(error(401, "UNAUTHORIZED", "unauthorized"));
        }
        let token = lock(&shared.state).issue_registry_token();
        Ok(HttpResponse::Ok().json(json!({
            "token": token,
            "access_token": token,
            "expires_in": 1800,
            "issued_at": timestamp(OffsetDateTime::now_utc()),
        })))
    })
    .await
}

/// Applies faults and records the call; `Err` is the injected failure.
async fn gate(shared: &Shared, route: &str) -> Result<bool, HttpResponse> {
    let verdict = lock(&shared.faults).on_call(route);
    if verdict.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(verdict.delay_ms)).await;
    }
    if let Some(status) = verdict.fail_with {
        lock(&shared.state)
            .calls
            .push(format!("{route} {status} (injected)"));
        return Err(error(status, code_for(status), "injected fault"));
    }
    lock(&shared.state).calls.push(route.to_owned());
    Ok(verdict.drop_after)
}

/// The answer, or, when a drop fault fired, a response whose body fails so the connection is cut.
fn finish(drop_after: bool, response: HttpResponse) -> HttpResponse {
    if !drop_after {
        return response;
    }
    let failing = futures_util::stream::once(async {
        Err::<web::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "dropped by fault injection",
        ))
    });
    HttpResponse::build(response.status())
        .insert_header(("content-length", "64"))
        .streaming(failing)
}

pub(crate) async fn run(
    shared: &Shared,
    route: &str,
    work: impl FnOnce() -> Reply,
) -> HttpResponse {
    match gate(shared, route).await {
        Err(response) => response,
        Ok(drop_after) => match work() {
            Ok(response) => finish(drop_after, response),
            Err(response) => response,
        },
    }
}

fn timestamp(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

fn valid_name(name: &str) -> bool {
    // ^[a-z0-9]+(?:[._-][a-z0-9]+)*$
    !name.is_empty()
        && name.split(['.', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn project_json(project: &Project) -> Value {
    json!({
        "project_id": project.id,
        "name": project.name,
        "owner_id": 1,
        "owner_name": project.owner_name,
        "creation_time": timestamp(project.creation_time),
        "update_time": timestamp(project.update_time),
        "deleted": false,
        "togglable": true,
        "repo_count": project.repositories.len(),
        "metadata": project.metadata,
        "current_user_role_id": 1,
        "current_user_role_ids": [1],
        "cve_allowlist": {"items": []},
    })
}

fn robot_json(shared: &Shared, robot: &Robot) -> Value {
    json!({
        "id": robot.id,
        "name": format!("{}{}", shared.config.robot_prefix, robot.stored_name),
        "description": robot.description,
        "level": if robot.project_id == 0 { "system" } else { "project" },
        "duration": robot.duration,
        "expires_at": robot.expires_at,
        "disable": robot.disable,
        "editable": true,
        "permissions": robot.permissions,
        "creator_type": "local",
        "creator_ref": 1,
        "creation_time": timestamp(robot.creation_time),
        "update_time": timestamp(robot.update_time),
    })
}

/// `{project_name_or_id}`: an integer is an id unless `X-Is-Resource-Name: true`.
pub(crate) fn find_project<'a>(
    state: &'a State,
    key: &str,
    request: &HttpRequest,
) -> Option<&'a Project> {
    let by_name = request
        .headers()
        .get("x-is-resource-name")
        .and_then(|v| v.to_str().ok())
        == Some("true");
    match key.parse::<i64>() {
        Ok(id) if !by_name => state.projects.get(&id),
        _ => state.project_by_name(key),
    }
}

/// Total count and `Link` headers for a page of a list, as Harbor builds them.
pub(crate) fn paged(
    request: &HttpRequest,
    items: Vec<Value>,
    page: i64,
    page_size: i64,
) -> HttpResponse {
    let total = items.len() as i64;
    let start = ((page - 1) * page_size).clamp(0, total) as usize;
    let end = (start + page_size as usize).min(items.len());
    let mut links = Vec::new();
    let link = |number: i64| {
        let mut pairs: Vec<(String, String)> =
            serde_urlencoded::from_str::<Vec<(String, String)>>(request.query_string())
                .unwrap_or_default()
                .into_iter()
                .filter(|(key, _)| key != "page" && key != "page_size")
                .collect();
        pairs.push(("page".into(), number.to_string()));
        pairs.push(("page_size".into(), page_size.to_string()));
        format!(
            "<{}?{}>",
            request.path(),
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    if page > 1 {
        links.push(format!("{}; rel=\"prev\"", link(page - 1)));
    }
    if page * page_size < total {
        links.push(format!("{}; rel=\"next\"", link(page + 1)));
    }
    let mut response = HttpResponse::Ok();
    response.insert_header(("x-total-count", total.to_string()));
    if !links.is_empty() {
        response.insert_header(("link", links.join(" , ")));
    }
    response.json(Value::Array(items[start..end].to_vec()))
}

pub(crate) fn paging(query: &BTreeMap<String, String>) -> Result<(i64, i64), HttpResponse> {
    let number = |key: &str, default: i64| -> Result<i64, HttpResponse> {
        match query.get(key) {
            None => Ok(default),
            Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                error(422, "UNPROCESSABLE_ENTITY", format!("validation failure list:\n{key} in query must be of type int64 and at least 1"))
            }),
        }
    };
    let page_size = number("page_size", 10)?;
    if page_size > MAX_PAGE_SIZE {
        return Err(error(
            422,
            "UNPROCESSABLE_ENTITY",
            format!(
                "validation failure list:\npage_size in query should be less than or equal to {MAX_PAGE_SIZE}"
            ),
        ));
    }
    Ok((number("page", 1)?, page_size))
}

async fn ping(shared: Data) -> HttpResponse {
    run(&shared, "GET /ping", || {
        Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("Pong"))
    })
    .await
}

async fn health(shared: Data) -> HttpResponse {
    run(&shared, "GET /health", || {
        let components: Vec<Value> = [
            "core",
            "database",
            "jobservice",
            "portal",
            "redis",
            "registry",
            "registryctl",
        ]
        .iter()
        .map(|name| json!({"name": name, "status": "healthy"}))
        .collect();
        Ok(HttpResponse::Ok().json(json!({"status": "healthy", "components": components})))
    })
    .await
}

async fn systeminfo(shared: Data, request: HttpRequest) -> HttpResponse {
    let authenticated = !matches!(caller(&shared, &request), Caller::Anonymous);
    run(&shared, "GET /systeminfo", || {
        let mut info = json!({"auth_mode": "db_auth", "project_creation_restriction": "everyone", "read_only": false,
            "self_registration": false, "has_ca_root": false, "registry_url": request.connection_info().host()});
        if authenticated {
            info["harbor_version"] = json!("v2.16.0-emulator");
        }
        Ok(HttpResponse::Ok().json(info))
    })
    .await
}

async fn current_user(shared: Data, request: HttpRequest) -> HttpResponse {
    let who = caller(&shared, &request);
    run(&shared, "GET /users/current", || match who {
        Caller::Admin => Ok(HttpResponse::Ok().json(json!({"user_id": 1, "username": shared.config.admin_username,
            "sysadmin_flag": true, "admin_role_in_auth": false, "email": "admin@example.com", "realname": "system admin"}))),
        Caller::Robot => Err(error(412, "PRECONDITION", "get current user not available for security context: robot")),
        Caller::Anonymous => Err(error(401, "UNAUTHORIZED", "unauthorized")),
    })
    .await
}

async fn create_project(
    shared: Data,
    request: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let authorized = match caller(&shared, &request) {
        Caller::Admin => Ok(()),
        Caller::Robot => Err(error(
            403,
            "FORBIDDEN",
            "Only system level robot can create project",
        )),
        Caller::Anonymous => Err(error(401, "UNAUTHORIZED", "unauthorized")),
    };
    run(&shared, "POST /projects", || {
        authorized?;
        let body = body.as_object().ok_or_else(|| error(422, "UNPROCESSABLE_ENTITY", "validation failure list:\nbody must be an object"))?;
        let name = match body.get("project_name") {
            Some(Value::String(name)) => name.clone(),
            Some(_) => return Err(error(422, "UNPROCESSABLE_ENTITY", "validation failure list:\nproject_name in body must be of type string")),
            None => String::new(),
        };
        if name.is_empty() || name.len() > 255 {
            return Err(error(400, "BAD_REQUEST", format!("Project name {name} is illegal in length. (greater than 255 or less than 1)")));
        }
        if !valid_name(&name) {
            return Err(error(400, "BAD_REQUEST", "project name is not in lower case or contains illegal characters"));
        }
        let mut metadata = BTreeMap::new();
        if let Some(value) = body.get("metadata") {
            let object = value.as_object().ok_or_else(|| error(
                422,
                "UNPROCESSABLE_ENTITY",
                "validation failure list:\nmetadata in body must be of type object",
            ))?;
            for (key, value) in object {
                let Value::String(text) = value else {
                    return Err(error(
                        422,
                        "UNPROCESSABLE_ENTITY",
                        format!("validation failure list:\nmetadata.{key} in body must be of type string"),
                    ));
                };
                metadata.insert(key.clone(), text.clone());
            }
        }
        let public = metadata.entry("public".into()).or_insert_with(|| "false".into()).clone();
        if public != "true" && public != "false" {
            return Err(error(400, "BAD_REQUEST", format!("metadata.public should only be 'true' or 'false', but got: '{public}'")));
        }
        let limit = match body.get("storage_limit") {
            None | Some(Value::Null) => -1,
            Some(value) => value.as_i64().ok_or_else(|| error(
                    422,
                    "UNPROCESSABLE_ENTITY",
                    "validation failure list:\nstorage_limit in body must be of type int64",
                ))?,
        };
        let limit = match limit {
            0 | -1 => -1,
            n if n < -1 => return Err(error(400, "BAD_REQUEST", format!("bad request: invalid non-positive value for quota limit, value={n}"))),
            n if n > MAX_STORAGE_BYTES => {
                return Err(error(400, "BAD_REQUEST", format!("bad request: exceeded 1024TB, which is {MAX_STORAGE_BYTES} Bytes, value={n}")));
            }
            n => n,
        };
        let mut state = lock(&shared.state);
        if state.project_by_name(&name).is_some() {
            return Err(error(409, "CONFLICT", format!("The project named {name} already exists")));
        }
        let id = state.create_project(&name, &shared.config.admin_username, limit, metadata);
        Ok(HttpResponse::Created().insert_header(("location", format!("{API}/projects/{id}"))).finish())
    })
    .await
}

async fn head_project(
    shared: Data,
    request: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "HEAD /projects", || {
        authorized?;
        let name = query.get("project_name").ok_or_else(|| {
            error(
                422,
                "UNPROCESSABLE_ENTITY",
                "validation failure list:\nproject_name in query is required",
            )
        })?;
        if lock(&shared.state).project_by_name(name).is_some() {
            Ok(HttpResponse::Ok().finish())
        } else {
            Ok(HttpResponse::NotFound().finish())
        }
    })
    .await
}

async fn get_project(shared: Data, request: HttpRequest, key: web::Path<String>) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "GET /projects/{project}", || {
        authorized?;
        let state = lock(&shared.state);
        let project = find_project(&state, &key, &request)
            .ok_or_else(|| error(404, "NOT_FOUND", format!("project {key} not found")))?;
        Ok(HttpResponse::Ok().json(project_json(project)))
    })
    .await
}

async fn delete_project(
    shared: Data,
    request: HttpRequest,
    key: web::Path<String>,
) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "DELETE /projects/{project}", || {
        authorized?;
        let mut state = lock(&shared.state);
        let project = find_project(&state, &key, &request)
            .ok_or_else(|| error(404, "NOT_FOUND", format!("project {key} not found")))?;
        if !project.repositories.is_empty() {
            return Err(error(
                412,
                "PRECONDITION",
                "precondition failed: the project contains repositories, can not be deleted",
            ));
        }
        let id = project.id;
        state.delete_project(id);
        Ok(HttpResponse::Ok().finish())
    })
    .await
}

async fn project_summary(
    shared: Data,
    request: HttpRequest,
    key: web::Path<String>,
) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "GET /projects/{project}/summary", || {
        authorized?;
        let state = lock(&shared.state);
        let project = find_project(&state, &key, &request).ok_or_else(|| error(404, "NOT_FOUND", format!("project {key} not found")))?;
        let mut summary = json!({"repo_count": project.repositories.len(), "project_admin_count": 1, "maintainer_count": 0,
            "developer_count": 0, "guest_count": 0, "limited_guest_count": 0});
        if let Some(quota) = state.quotas.values().find(|q| q.project_id == project.id) {
            summary["quota"] = json!({"hard": {"storage": quota.hard_bytes}, "used": {"storage": project.used_bytes}});
        }
        Ok(HttpResponse::Ok().json(summary))
    })
    .await
}

fn quota_json(state: &State, quota: &crate::state::Quota) -> Value {
    let project = state.projects.get(&quota.project_id);
    json!({
        "id": quota.id,
        "ref": {"id": quota.project_id, "name": project.map(|p| p.name.clone()), "owner_name": project.map(|p| p.owner_name.clone())},
        "hard": {"storage": quota.hard_bytes},
        "used": {"storage": project.map_or(0, |p| p.used_bytes)},
        "creation_time": timestamp(quota.creation_time),
        "update_time": timestamp(quota.update_time),
    })
}

async fn list_quotas(
    shared: Data,
    request: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "GET /quotas", || {
        authorized?;
        let (page, page_size) = paging(&query)?;
        let state = lock(&shared.state);
        let items: Vec<Value> = state
            .quotas
            .values()
            .filter(|_| {
                query
                    .get("reference")
                    .is_none_or(|reference| reference == "project")
            })
            .filter(|quota| {
                query
                    .get("reference_id")
                    .is_none_or(|id| *id == quota.project_id.to_string())
            })
            .map(|quota| quota_json(&state, quota))
            .collect();
        Ok(paged(&request, items, page, page_size))
    })
    .await
}

fn integer_path(text: &str, name: &str) -> Result<i64, HttpResponse> {
    text.parse::<i64>().map_err(|_| {
        error(
            422,
            "UNPROCESSABLE_ENTITY",
            format!("validation failure list:\n{name} in path must be of type int64: \"{text}\""),
        )
    })
}

async fn get_quota(shared: Data, request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "GET /quotas/{id}", || {
        authorized?;
        let id = integer_path(&id, "id")?;
        let state = lock(&shared.state);
        let quota = state
            .quotas
            .get(&id)
            .ok_or_else(|| error(404, "NOT_FOUND", format!("quota {id} not found")))?;
        Ok(HttpResponse::Ok().json(quota_json(&state, quota)))
    })
    .await
}

async fn put_quota(
    shared: Data,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "PUT /quotas/{id}", || {
        authorized?;
        let id = integer_path(&id, "id")?;
        let hard = body.get("hard").and_then(Value::as_object).filter(|hard| !hard.is_empty())
            .ok_or_else(|| error(400, "BAD_REQUEST", "hard required in body"))?;
        if hard.keys().any(|key| key != "storage") {
            return Err(error(400, "BAD_REQUEST", "resource count not support"));
        }
        let storage = hard.get("storage").and_then(Value::as_i64).ok_or_else(|| error(400, "BAD_REQUEST", "storage required in hard"))?;
        if storage == 0 || storage < -1 {
            return Err(error(400, "BAD_REQUEST", format!("bad request: invalid non-positive value for quota limit, value={storage}")));
        }
        if storage > MAX_STORAGE_BYTES {
            return Err(error(400, "BAD_REQUEST", format!("bad request: exceeded 1024TB, which is {MAX_STORAGE_BYTES} Bytes, value={storage}")));
        }
        let mut state = lock(&shared.state);
        let quota = state.quotas.get_mut(&id).ok_or_else(|| error(404, "NOT_FOUND", format!("quota {id} not found")))?;
        quota.hard_bytes = storage;
        quota.update_time = OffsetDateTime::now_utc();
        Ok(HttpResponse::Ok().finish())
    })
    .await
}

/// Project-kind permissions Harbor lets a robot hold (a subset of `PoliciesMap`).
const PROJECT_ACCESS: &[(&str, &str)] = &[
    ("repository", "pull"),
    ("repository", "push"),
    ("repository", "list"),
    ("repository", "read"),
    ("repository", "update"),
    ("repository", "delete"),
    ("artifact", "read"),
    ("artifact", "create"),
    ("artifact", "list"),
    ("artifact", "delete"),
    ("tag", "create"),
    ("tag", "list"),
    ("tag", "delete"),
    ("scan", "create"),
    ("scan", "read"),
    ("scan", "stop"),
    ("quota", "read"),
    ("robot", "create"),
    ("robot", "read"),
    ("robot", "list"),
    ("robot", "delete"),
    ("helm-chart", "read"),
    ("label", "read"),
];
const SYSTEM_ACCESS: &[(&str, &str)] = &[
    ("project", "create"),
    ("project", "list"),
    ("quota", "read"),
    ("quota", "list"),
    ("quota", "update"),
    ("robot", "create"),
    ("robot", "read"),
    ("robot", "list"),
    ("robot", "delete"),
];

/// Checks `permissions` as Harbor's handler does; returns the project id a project robot binds to.
fn check_permissions(
    state: &State,
    level: &str,
    permissions: Option<&Value>,
) -> Result<i64, HttpResponse> {
    let bad = |message: String| error(400, "BAD_REQUEST", message);
    let list = permissions
        .and_then(Value::as_array)
        .filter(|list| !list.is_empty())
        .ok_or_else(|| bad("bad request empty permission".into()))?;
    if level == "project" && list.len() != 1 {
        return Err(bad("bad request permission".into()));
    }
    let mut project_id = 0;
    for permission in list {
        let kind = permission
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let namespace = permission
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let access = permission
            .get("access")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| bad("bad request empty access".into()))?;
        let allowed = match kind {
            "project" => PROJECT_ACCESS,
            "system" if namespace == "/" => SYSTEM_ACCESS,
            "system" => return Err(bad("unknown namespace".into())),
            _ => return Err(bad("bad request permission".into())),
        };
        if level == "project" && kind != "project" {
            return Err(bad("bad request permission".into()));
        }
        for item in access {
            let resource = item
                .get("resource")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let action = item
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let effect = item
                .get("effect")
                .and_then(Value::as_str)
                .unwrap_or("allow");
            if !allowed.contains(&(resource, action))
                || !(effect.is_empty() || effect == "allow" || effect == "deny")
            {
                return Err(bad(format!("bad request permission: {resource}:{action}")));
            }
        }
        if kind == "project" && namespace != "*" {
            let project = state
                .project_by_name(namespace)
                .ok_or_else(|| error(404, "NOT_FOUND", format!("project {namespace} not found")))?;
            if level == "project" {
                project_id = project.id;
            }
        } else if kind == "project" && level == "project" {
            return Err(error(404, "NOT_FOUND", "project * not found"));
        }
    }
    Ok(project_id)
}

fn duration_of(value: Option<&Value>) -> Result<i64, HttpResponse> {
    let duration = value.and_then(Value::as_i64).unwrap_or(0);
    if duration == -1 || (1..=2_147_483_646).contains(&duration) {
        Ok(duration)
    } else {
        Err(error(
            400,
            "BAD_REQUEST",
            format!(
                "bad request error duration input: {duration}, duration must be either -1(Never) or a positive integer"
            ),
        ))
    }
}

async fn create_robot(shared: Data, request: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "POST /robots", || {
        authorized?;
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !valid_name(&name) {
            return Err(error(
                400,
                "BAD_REQUEST",
                "robot name is not in lower case or contains illegal characters",
            ));
        }
        let level = body
            .get("level")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if level != "system" && level != "project" {
            return Err(error(
                400,
                "BAD_REQUEST",
                format!("bad request error level input: {level}"),
            ));
        }
        let duration = duration_of(body.get("duration"))?;
        let mut state = lock(&shared.state);
        let project_id = check_permissions(&state, &level, body.get("permissions"))?;
        let stored_name = match state.projects.get(&project_id) {
            Some(project) if level == "project" => format!("{}+{name}", project.name),
            _ => name,
        };
        if state
            .robots
            .values()
            .any(|robot| robot.stored_name == stored_name && robot.project_id == project_id)
        {
            return Err(error(
                409,
                "CONFLICT",
                format!("robot account {project_id}:{stored_name} already exists"),
            ));
        }
        let description = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let disable = body
            .get("disable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let permissions = body.get("permissions").cloned().unwrap_or(Value::Null);
        let (id, secret, created, expires_at) = state.create_robot(
            stored_name.clone(),
            project_id,
            description,
            duration,
            disable,
            permissions,
        );
        Ok(HttpResponse::Created()
            .insert_header(("location", format!("{API}/robots/{id}")))
            .json(json!({
                "id": id,
                "name": format!("{}{stored_name}", shared.config.robot_prefix),
                "secret": secret,
                "creation_time": timestamp(created),
                "expires_at": expires_at,
            })))
    })
    .await
}

/// `q=Level=project,ProjectID=12`: Harbor's query syntax, exact terms only.
fn parse_q(q: Option<&String>) -> BTreeMap<String, String> {
    q.map(|q| {
        q.split(',')
            .filter_map(|term| term.split_once('='))
            .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
            .collect()
    })
    .unwrap_or_default()
}

async fn list_robots(
    shared: Data,
    request: HttpRequest,
    query: web::Query<BTreeMap<String, String>>,
) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "GET /robots", || {
        authorized?;
        let (page, page_size) = paging(&query)?;
        let terms = parse_q(query.get("q"));
        let project_id = match terms.get("Level").map(String::as_str) {
            Some("project") => {
                let id = terms.get("ProjectID").ok_or_else(|| {
                    error(
                        400,
                        "BAD_REQUEST",
                        "must with project ID when to query project robots",
                    )
                })?;
                id.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| {
                    error(400, "BAD_REQUEST", "ProjectID must be a positive integer")
                })?
            }
            _ => 0,
        };
        let state = lock(&shared.state);
        let items: Vec<Value> = state
            .robots
            .values()
            .filter(|robot| robot.project_id == project_id)
            .filter(|robot| {
                terms
                    .get("name")
                    .is_none_or(|name| *name == robot.stored_name)
            })
            .map(|robot| robot_json(&shared, robot))
            .collect();
        Ok(paged(&request, items, page, page_size))
    })
    .await
}

async fn get_robot(shared: Data, request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "GET /robots/{id}", || {
        authorized?;
        let id = integer_path(&id, "robot_id")?;
        let state = lock(&shared.state);
        let robot = state
            .robots
            .get(&id)
            .ok_or_else(|| error(404, "NOT_FOUND", format!("robot {id} not found")))?;
        Ok(HttpResponse::Ok().json(robot_json(&shared, robot)))
    })
    .await
}

fn strong_secret(secret: &str) -> bool {
    (8..=128).contains(&secret.chars().count())
        && secret.chars().any(|c| c.is_ascii_uppercase())
        && secret.chars().any(|c| c.is_ascii_lowercase())
        && secret.chars().any(|c| c.is_ascii_digit())
}

async fn refresh_robot(
    shared: Data,
    request: HttpRequest,
    id: web::Path<String>,
    body: Option<web::Json<Value>>,
) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "PATCH /robots/{id}", || {
        authorized?;
        let id = integer_path(&id, "robot_id")?;
        let body = body.ok_or_else(|| {
            error(
                422,
                "UNPROCESSABLE_ENTITY",
                "validation failure list:\nrobotSec in body is required",
            )
        })?;
        let wanted = body
            .get("secret")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if !wanted.is_empty() && !strong_secret(&wanted) {
            return Err(error(
                400,
                "BAD_REQUEST",
                "the secret must be 8-128, inclusively, characters long with at least 1 \
                 uppercase letter, 1 lowercase letter and 1 number",
            ));
        }
        let mut state = lock(&shared.state);
        let robot = state
            .robots
            .get_mut(&id)
            .ok_or_else(|| error(404, "NOT_FOUND", format!("robot {id} not found")))?;
        let generated = wanted.is_empty();
        let secret = if generated { random_secret() } else { wanted };
        robot.secret_hash = hash_secret(&robot.salt, &secret);
        robot.update_time = OffsetDateTime::now_utc();
        Ok(HttpResponse::Ok().json(if generated {
            json!({"secret": secret})
        } else {
            json!({})
        }))
    })
    .await
}

async fn update_robot(
    shared: Data,
    request: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "PUT /robots/{id}", || {
        authorized?;
        let id = integer_path(&id, "robot_id")?;
        let mut state = lock(&shared.state);
        let (full_name, level, project_id, creation) = {
            let robot = state
                .robots
                .get(&id)
                .ok_or_else(|| error(404, "NOT_FOUND", format!("robot {id} not found")))?;
            let level = if robot.project_id == 0 {
                "system"
            } else {
                "project"
            };
            (
                format!("{}{}", shared.config.robot_prefix, robot.stored_name),
                level,
                robot.project_id,
                robot.creation_time,
            )
        };
        let given_level = body
            .get("level")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if given_level.is_empty() {
            return Err(error(400, "BAD_REQUEST", "bad request error level input: "));
        }
        if body.get("name").and_then(Value::as_str) != Some(full_name.as_str())
            || given_level != level
        {
            return Err(error(
                400,
                "BAD_REQUEST",
                "cannot update the level or name of robot",
            ));
        }
        let bound = check_permissions(&state, level, body.get("permissions"))?;
        if level == "project" && bound != project_id {
            return Err(error(
                400,
                "BAD_REQUEST",
                "cannot update the project id of robot",
            ));
        }
        let duration = match body.get("duration") {
            None | Some(Value::Null) => None,
            value => Some(duration_of(value)?),
        };
        let robot = state
            .robots
            .get_mut(&id)
            .ok_or_else(|| error(404, "NOT_FOUND", format!("robot {id} not found")))?;
        if let Some(duration) = duration {
            robot.duration = duration;
            robot.expires_at = if duration == -1 {
                -1
            } else {
                creation.unix_timestamp() + duration * 86_400
            };
        }
        robot.description = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        robot.disable = body
            .get("disable")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        robot.permissions = body.get("permissions").cloned().unwrap_or(Value::Null);
        robot.update_time = OffsetDateTime::now_utc();
        Ok(HttpResponse::Ok().finish())
    })
    .await
}

async fn delete_robot(shared: Data, request: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let authorized = require_admin(&shared, &request);
    run(&shared, "DELETE /robots/{id}", || {
        authorized?;
        let id = integer_path(&id, "robot_id")?;
        let mut state = lock(&shared.state);
        state
            .robots
            .remove(&id)
            .ok_or_else(|| error(404, "NOT_FOUND", format!("robot {id} not found")))?;
        Ok(HttpResponse::Ok().finish())
    })
    .await
}

async fn emulator_state(shared: Data) -> HttpResponse {
    HttpResponse::Ok().json(view(&lock(&shared.state)))
}

async fn set_faults(shared: Data, faults: web::Json<Faults>) -> HttpResponse {
    lock(&shared.faults).set(faults.into_inner());
    HttpResponse::NoContent().finish()
}

async fn clear_faults(shared: Data) -> HttpResponse {
    lock(&shared.faults).set(Faults::default());
    HttpResponse::NoContent().finish()
}

async fn set_usage(
    shared: Data,
    name: web::Path<String>,
    body: web::Json<Map<String, Value>>,
) -> HttpResponse {
    let bytes = body.get("bytes").and_then(Value::as_i64).unwrap_or(0);
    if lock(&shared.state).set_usage(&name, bytes) {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::NotFound().finish()
    }
}

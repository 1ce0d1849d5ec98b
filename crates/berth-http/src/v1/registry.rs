//! `/api/v1/organizations/{orgID}/registry` and `.../registry/credentials`.

use actix_web::{HttpResponse, web};
use berth_domain::ids::OrganizationGuid;
use berth_domain::registry::{
    ExpiresInDays, IssuedSecret, QuotaGb, Registry, RobotAccess, RobotCredential, RobotId,
    RobotName, used_gb,
};
use berth_domain::registry_service::{RegistryError, RegistryService};
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::error::{Detail, V1Error};
use super::{OptionalObject, V1Caller};
use crate::openapi::{
    CreateRobotBody, EnableRegistryBody, QuotaBody, RenewRobotBody, V1Always, V1BodyRefused,
    V1Conflict, V1ErrorBody, V1NotWritable,
};
use crate::state::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            resource(
                "/api/v1/organizations/{org_id}/registry",
                "GET, POST, PATCH, DELETE",
            )
            .route(web::post().to(enable))
            .route(web::get().to(show))
            .route(web::patch().to(update))
            .route(web::delete().to(disable)),
        )
        .service(
            resource(
                "/api/v1/organizations/{org_id}/registry/credentials",
                "GET, POST",
            )
            .route(web::get().to(list_robots))
            .route(web::post().to(create_robot)),
        )
        .service(
            resource(
                "/api/v1/organizations/{org_id}/registry/credentials/{credential_id}/rotate",
                "POST",
            )
            .route(web::post().to(rotate_robot)),
        )
        .service(
            resource(
                "/api/v1/organizations/{org_id}/registry/credentials/{credential_id}",
                "PATCH, DELETE",
            )
            .route(web::patch().to(renew_robot))
            .route(web::delete().to(delete_robot)),
        )
        .service(
            resource(
                "/api/v1/organizations/{org_id}/registry/pull_credential/rotate",
                "POST",
            )
            .route(web::post().to(rotate_pull_credential)),
        );
}

/// A v1 resource whose other methods answer 405 with `Allow`, in the v1 envelope.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(V1Error::method_not_allowed(allow))
    }))
}

/// Any route or method under `/api/v1` that does not exist.
pub async fn unknown() -> Result<HttpResponse, V1Error> {
    Err(V1Error::not_found())
}

fn service(state: &AppState) -> Result<&RegistryService, V1Error> {
    state
        .registries
        .as_ref()
        .ok_or_else(V1Error::harbor_not_configured)
}

/// An orgID that is not a UUID names no organization.
fn organization(text: &str) -> Result<OrganizationGuid, V1Error> {
    let organization =
        OrganizationGuid::parse(text).map_err(|_| V1Error::organization_not_found())?;
    tracing::Span::current().record("berth.organization", organization.to_string());
    Ok(organization)
}

fn timestamp(time: OffsetDateTime) -> String {
    time.replace_nanosecond(0)
        .unwrap_or(time)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// An organization's registry.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegistryBody {
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    org_id: String,
    harbor_project: String,
    endpoint: String,
    enabled: bool,
    quota_gb: u32,
    used_gb: Option<f64>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<&Registry> for RegistryBody {
    fn from(registry: &Registry) -> Self {
        Self {
            id: registry.id().to_string(),
            org_id: registry.organization().to_string(),
            harbor_project: registry.project_name().to_string(),
            endpoint: registry.endpoint().to_owned(),
            enabled: registry.enabled(),
            quota_gb: registry.quota_gb().get(),
            used_gb: registry.used_bytes().map(used_gb),
            created_at: timestamp(registry.created_at()),
            updated_at: timestamp(registry.updated_at()),
        }
    }
}

/// A robot's login, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretBody {
    /// The full robot name Harbor returned, such as `robot$org-…+berth-default`.
    username: String,
    #[schema(format = Password)]
    password: String,
}

impl From<&IssuedSecret> for SecretBody {
    fn from(secret: &IssuedSecret) -> Self {
        Self {
            username: secret.username().to_owned(),
            password: secret.expose_password().to_owned(),
        }
    }
}

/// The answer to enabling: the registry and its default robot's login (shown only here).
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnableResponse {
    registry: RegistryBody,
    credentials: SecretBody,
}

/// Robot credentials of a registry.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RobotList {
    resources: Vec<RobotBody>,
}

/// A robot credential and its login (shown only in this answer).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RobotIssued {
    credential: RobotBody,
    credentials: SecretBody,
}

/// A robot credential, never with its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RobotBody {
    #[schema(format = Uuid)]
    id: String,
    name: String,
    username: Option<String>,
    #[schema(value_type = crate::openapi::RobotAccessName)]
    access: &'static str,
    default: bool,
    /// The platform pull robot, whose login is the organization's managed registry
    /// credential: changed only by `POST .../registry/pull_credential/rotate`.
    managed: bool,
    /// When the robot's login stops working; null: never.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// `expired` once `expires_at` is reached.
    #[schema(value_type = crate::openapi::RobotStatusName)]
    status: &'static str,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<&RobotCredential> for RobotBody {
    fn from(robot: &RobotCredential) -> Self {
        Self {
            id: robot.id().to_string(),
            name: robot.name().to_string(),
            username: robot.username().map(str::to_owned),
            access: robot.access().as_str(),
            default: robot.is_default(),
            managed: robot.managed(),
            expires_at: robot.expires_at().map(timestamp),
            status: robot.status(berth_domain::now()).as_str(),
            created_at: timestamp(robot.created_at()),
        }
    }
}

fn detail(field: &str, code: &'static str, message: impl Into<String>) -> Detail {
    Detail {
        field: field.into(),
        code,
        message: message.into(),
    }
}

fn unknown_fields(body: &Map<String, Value>, allowed: &[&str], details: &mut Vec<Detail>) {
    for key in body.keys().filter(|key| !allowed.contains(&key.as_str())) {
        details.push(detail(key, "unknown_field", "this field is not accepted"));
    }
}

fn quota_field(
    body: &Map<String, Value>,
    required: bool,
    details: &mut Vec<Detail>,
) -> Option<QuotaGb> {
    match body.get("quota_gb") {
        None | Some(Value::Null) => {
            if required {
                details.push(detail("quota_gb", "required", "quota_gb is required"));
            }
            None
        }
        Some(value) => match whole_number(value).map(QuotaGb::new) {
            Some(Ok(quota)) => Some(quota),
            Some(Err(error)) => {
                details.push(detail("quota_gb", "out_of_range", error.to_string()));
                None
            }
            None => {
                details.push(detail(
                    "quota_gb",
                    "invalid_type",
                    "quota_gb must be a whole number",
                ));
                None
            }
        },
    }
}

/// A JSON number that is a whole number: `7` or `7.0` (JSON Schema counts both as integers).
fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
            .map(|f| f as u64)
    })
}

fn finish<T>(details: Vec<Detail>, value: Option<T>) -> Result<T, V1Error> {
    match value {
        Some(value) if details.is_empty() => Ok(value),
        _ => Err(V1Error::validation(details)),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/organizations/{org_id}/registry",
    tag = "registries",
    operation_id = "enable_registry",
    params(("org_id" = String, Path, description = "Organization guid")),
    request_body(content = Option<EnableRegistryBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "Enabled; the robot secret is shown only here", body = EnableResponse),
        V1Always,
        V1BodyRefused,
        V1NotWritable,
        V1Conflict,
    ),
)]
pub(crate) async fn enable(
    state: web::Data<AppState>,
    caller: V1Caller,
    org_id: web::Path<String>,
    body: OptionalObject,
) -> Result<HttpResponse, V1Error> {
    let organization = organization(&org_id)?;
    let mut details = Vec::new();
    let quota = match &body.0 {
        Some(body) => {
            unknown_fields(body, &["quota_gb"], &mut details);
            quota_field(body, false, &mut details)
        }
        None => None,
    };
    let quota = finish(details, Some(quota))?;
    let (registry, secret) = service(&state)?
        .enable(&caller.0, organization, quota)
        .await?;
    Ok(HttpResponse::Created().json(EnableResponse {
        registry: RegistryBody::from(&registry),
        credentials: SecretBody::from(&secret),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/registry",
    tag = "registries",
    operation_id = "get_registry",
    params(("org_id" = String, Path, description = "Organization guid")),
    responses((status = 200, description = "The registry", body = RegistryBody), V1Always),
)]
pub(crate) async fn show(
    state: web::Data<AppState>,
    caller: V1Caller,
    org_id: web::Path<String>,
) -> Result<HttpResponse, V1Error> {
    let registry = service(&state)?
        .get(&caller.0, organization(&org_id)?)
        .await?;
    Ok(HttpResponse::Ok().json(RegistryBody::from(&registry)))
}

#[utoipa::path(
    patch,
    path = "/api/v1/organizations/{org_id}/registry",
    tag = "registries",
    operation_id = "update_registry_quota",
    params(("org_id" = String, Path, description = "Organization guid")),
    request_body(content = QuotaBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Quota changed", body = RegistryBody),
        V1Always,
        V1BodyRefused,
        V1NotWritable,
        V1Conflict,
    ),
)]
pub(crate) async fn update(
    state: web::Data<AppState>,
    caller: V1Caller,
    org_id: web::Path<String>,
    body: OptionalObject,
) -> Result<HttpResponse, V1Error> {
    let organization = organization(&org_id)?;
    let body = body.0.unwrap_or_default();
    let mut details = Vec::new();
    unknown_fields(&body, &["quota_gb"], &mut details);
    let quota = quota_field(&body, true, &mut details);
    let quota = finish(details, quota)?;
    let registry = service(&state)?
        .update_quota(&caller.0, organization, quota)
        .await?;
    Ok(HttpResponse::Ok().json(RegistryBody::from(&registry)))
}

/// `purge`, the one parameter of `DELETE .../registry`: `true` or `false`, once; anything
/// else (another parameter, another spelling) is refused.
fn purge_parameter(query: &str) -> Result<bool, V1Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
        V1Error::invalid_query(vec![detail(
            "query",
            "invalid_format",
            "the query string is not URL-encoded",
        )])
    })?;
    let mut purge = None;
    let mut details = Vec::new();
    for (key, value) in pairs {
        match (key.as_str(), value.as_str()) {
            ("purge", _) if purge.is_some() => {
                details.push(detail("purge", "duplicate", "purge may be given once"));
            }
            ("purge", "true") => purge = Some(true),
            ("purge", "false") => purge = Some(false),
            ("purge", _) => details.push(detail(
                "purge",
                "invalid_value",
                "purge must be true or false",
            )),
            _ => details.push(detail(
                &key,
                "unknown_parameter",
                "this parameter is not accepted",
            )),
        }
    }
    if details.is_empty() {
        Ok(purge.unwrap_or(false))
    } else {
        Err(V1Error::invalid_query(details))
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/organizations/{org_id}/registry",
    tag = "registries",
    operation_id = "disable_registry",
    params(
        ("org_id" = String, Path, description = "Organization guid"),
        (
            "purge" = Option<bool>,
            Query,
            description = "`true`: delete the registry for good (robots, the managed credential, every \
                           repository, the Harbor project, the registry), so the organization may be \
                           deleted. `false` or absent: disable (robots and the managed credential \
                           deleted, project and images kept)."
        ),
    ),
    responses(
        (status = 204, description = "Disabled (robots deleted, project kept), or purged"),
        (status = 400, description = "invalid_query", body = V1ErrorBody),
        V1Always,
        V1NotWritable,
        V1Conflict,
    ),
)]
pub(crate) async fn disable(
    state: web::Data<AppState>,
    caller: V1Caller,
    org_id: web::Path<String>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, V1Error> {
    let organization = organization(&org_id)?;
    let purge = purge_parameter(request.query_string())?;
    let service = service(&state)?;
    if purge {
        service.purge(&caller.0, organization).await?;
    } else {
        service.disable(&caller.0, organization).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    post,
    path = "/api/v1/organizations/{org_id}/registry/pull_credential/rotate",
    tag = "registries",
    operation_id = "rotate_pull_credential",
    params(("org_id" = String, Path, description = "Organization guid")),
    responses(
        (
            status = 204,
            description = "The platform pull robot's secret and its managed credential's password replaced together"
        ),
        V1Always,
        V1NotWritable,
        V1Conflict,
    ),
)]
pub(crate) async fn rotate_pull_credential(
    state: web::Data<AppState>,
    caller: V1Caller,
    org_id: web::Path<String>,
) -> Result<HttpResponse, V1Error> {
    service(&state)?
        .rotate_pull_credential(&caller.0, organization(&org_id)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/registry/credentials",
    tag = "registries",
    operation_id = "list_robot_credentials",
    params(("org_id" = String, Path, description = "Organization guid")),
    responses(
        (status = 200, description = "Robot credentials, never their secrets", body = RobotList),
        V1Always,
    ),
)]
pub(crate) async fn list_robots(
    state: web::Data<AppState>,
    caller: V1Caller,
    org_id: web::Path<String>,
) -> Result<HttpResponse, V1Error> {
    let robots = service(&state)?
        .robots(&caller.0, organization(&org_id)?)
        .await?;
    Ok(HttpResponse::Ok().json(RobotList {
        resources: robots.iter().map(RobotBody::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/organizations/{org_id}/registry/credentials",
    tag = "registries",
    operation_id = "create_robot_credential",
    params(("org_id" = String, Path, description = "Organization guid")),
    request_body(content = CreateRobotBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; the secret is shown only here", body = RobotIssued),
        V1Always,
        V1BodyRefused,
        V1NotWritable,
        V1Conflict,
    ),
)]
pub(crate) async fn create_robot(
    state: web::Data<AppState>,
    caller: V1Caller,
    org_id: web::Path<String>,
    body: OptionalObject,
) -> Result<HttpResponse, V1Error> {
    let organization = organization(&org_id)?;
    let body = body.0.unwrap_or_default();
    let mut details = Vec::new();
    unknown_fields(&body, &["name", "access", "expires_in_days"], &mut details);
    let name = match body.get("name").and_then(Value::as_str) {
        Some(text) => RobotName::parse(text)
            .map_err(|e| details.push(detail("name", "invalid_format", e.to_string())))
            .ok(),
        None => {
            details.push(detail(
                "name",
                "required",
                "name is required and must be a string",
            ));
            None
        }
    };
    let access = match body
        .get("access")
        .and_then(Value::as_str)
        .map(RobotAccess::parse)
    {
        Some(Some(access)) => Some(access),
        _ => {
            details.push(detail(
                "access",
                "invalid_value",
                "access must be \"pull\" or \"push_pull\"",
            ));
            None
        }
    };
    let expires = match body.get("expires_in_days") {
        None | Some(Value::Null) => Some(None),
        Some(value) => match whole_number(value).map(ExpiresInDays::new) {
            Some(Ok(days)) => Some(Some(days)),
            _ => {
                details.push(detail(
                    "expires_in_days",
                    "out_of_range",
                    "expires_in_days must be a whole number from 1 to 3650",
                ));
                None
            }
        },
    };
    let (name, access, expires) = finish(
        details,
        name.zip(access).zip(expires).map(|((n, a), e)| (n, a, e)),
    )?;
    let (robot, secret) = service(&state)?
        .create_robot(&caller.0, organization, name, access, expires)
        .await?;
    Ok(HttpResponse::Created().json(RobotIssued {
        credential: RobotBody::from(&robot),
        credentials: SecretBody::from(&secret),
    }))
}

/// `expires_in_days` of a renewal: 1 to 3650, or -1 for never (as Harbor writes it).
fn renewal(body: &Map<String, Value>, details: &mut Vec<Detail>) -> Option<Option<ExpiresInDays>> {
    let refused = |details: &mut Vec<Detail>, code| {
        details.push(detail(
            "expires_in_days",
            code,
            "expires_in_days must be a whole number from 1 to 3650, or -1 for never",
        ));
        None
    };
    match body.get("expires_in_days") {
        None | Some(Value::Null) => refused(details, "required"),
        Some(value) if value.as_i64() == Some(-1) || value.as_f64() == Some(-1.0) => Some(None),
        Some(value) => match whole_number(value).map(ExpiresInDays::new) {
            Some(Ok(days)) => Some(Some(days)),
            _ => refused(details, "out_of_range"),
        },
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/organizations/{org_id}/registry/credentials/{credential_id}",
    tag = "registries",
    operation_id = "renew_robot_credential",
    params(
        ("org_id" = String, Path, description = "Organization guid"),
        ("credential_id" = String, Path, description = "Robot credential id"),
    ),
    request_body(content = RenewRobotBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Renewed in Harbor; the robot as it now is", body = RobotBody),
        V1Always,
        V1BodyRefused,
        V1NotWritable,
        V1Conflict,
    ),
)]
pub(crate) async fn renew_robot(
    state: web::Data<AppState>,
    caller: V1Caller,
    path: web::Path<(String, String)>,
    body: OptionalObject,
) -> Result<HttpResponse, V1Error> {
    let (org_id, credential_id) = path.into_inner();
    let organization = organization(&org_id)?;
    let id = robot_id(&credential_id)?;
    let body = body.0.unwrap_or_default();
    let mut details = Vec::new();
    unknown_fields(&body, &["expires_in_days"], &mut details);
    let expires = renewal(&body, &mut details);
    let expires = finish(details, expires)?;
    let robot = service(&state)?
        .renew_robot(&caller.0, organization, id, expires)
        .await?;
    Ok(HttpResponse::Ok().json(RobotBody::from(&robot)))
}

/// A credential id that is not a UUID names no credential.
fn robot_id(text: &str) -> Result<RobotId, V1Error> {
    RobotId::parse(text).map_err(|_| V1Error::from(RegistryError::RobotNotFound))
}

#[utoipa::path(
    post,
    path = "/api/v1/organizations/{org_id}/registry/credentials/{credential_id}/rotate",
    tag = "registries",
    operation_id = "rotate_robot_credential",
    params(
        ("org_id" = String, Path, description = "Organization guid"),
        ("credential_id" = String, Path, description = "Robot credential id"),
    ),
    responses(
        (status = 200, description = "Rotated; the new secret is shown only here", body = RobotIssued),
        V1Always,
        V1NotWritable,
        V1Conflict,
    ),
)]
pub(crate) async fn rotate_robot(
    state: web::Data<AppState>,
    caller: V1Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, V1Error> {
    let (org_id, credential_id) = path.into_inner();
    let organization = organization(&org_id)?;
    let id = robot_id(&credential_id)?;
    let (robot, secret) = service(&state)?
        .rotate_robot(&caller.0, organization, id)
        .await?;
    Ok(HttpResponse::Ok().json(RobotIssued {
        credential: RobotBody::from(&robot),
        credentials: SecretBody::from(&secret),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/v1/organizations/{org_id}/registry/credentials/{credential_id}",
    tag = "registries",
    operation_id = "delete_robot_credential",
    params(
        ("org_id" = String, Path, description = "Organization guid"),
        ("credential_id" = String, Path, description = "Robot credential id"),
    ),
    responses(
        (status = 204, description = "Deleted in Harbor and in Berth"),
        V1Always,
        V1NotWritable,
        V1Conflict,
    ),
)]
pub(crate) async fn delete_robot(
    state: web::Data<AppState>,
    caller: V1Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, V1Error> {
    let (org_id, credential_id) = path.into_inner();
    let organization = organization(&org_id)?;
    let id = robot_id(&credential_id)?;
    service(&state)?
        .delete_robot(&caller.0, organization, id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

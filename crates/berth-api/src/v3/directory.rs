//! `/v3/organizations`, `/v3/spaces`, `/v3/apps`: the directory, upserted by guid.

use actix_web::{HttpRequest, HttpResponse, web};
use berth_domain::RelationshipKind;
use berth_domain::directory::{ResourceName, Upserted};
use berth_domain::ids::{AppGuid, OrganizationGuid, SpaceGuid};
use berth_domain::listing::{DirectoryOrderField, DirectoryQuery};
use serde_json::{Map, Value};

use super::V3Caller;
use super::body::{JsonObject, Problems, reject_unknown_fields, required_parent, string_field};
use super::error::V3Error;
use super::presenters::{AppResource, ListBody, OrganizationResource, SpaceResource};
use super::query::ListQuery;
use crate::state::AppState;

const ORDER_FIELDS: &[(&str, DirectoryOrderField)] = &[
    ("created_at", DirectoryOrderField::CreatedAt),
    ("updated_at", DirectoryOrderField::UpdatedAt),
    ("name", DirectoryOrderField::Name),
];

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            super::resource("/v3/organizations", "GET").route(web::get().to(list_organizations)),
        )
        .service(
            super::resource("/v3/organizations/{guid}", "GET, PUT, DELETE")
                .route(web::get().to(show_organization))
                .route(web::put().to(put_organization))
                .route(web::delete().to(delete_organization)),
        )
        .service(super::resource("/v3/spaces", "GET").route(web::get().to(list_spaces)))
        .service(
            super::resource("/v3/spaces/{guid}", "GET, PUT, DELETE")
                .route(web::get().to(show_space))
                .route(web::put().to(put_space))
                .route(web::delete().to(delete_space)),
        )
        .service(super::resource("/v3/apps", "GET").route(web::get().to(list_apps)))
        .service(
            super::resource("/v3/apps/{guid}", "GET, PUT, DELETE")
                .route(web::get().to(show_app))
                .route(web::put().to(put_app))
                .route(web::delete().to(delete_app)),
        );
}

/// A guid that is not a UUID names nothing: the same answer as an unknown one.
fn not_found(kind: RelationshipKind) -> V3Error {
    V3Error::from(berth_domain::directory_service::DirectoryError::NotFound(
        kind,
    ))
}

/// 201 when the upsert created the resource, 200 when it changed an existing one.
fn upserted(outcome: Upserted) -> actix_web::HttpResponseBuilder {
    match outcome {
        Upserted::Created => HttpResponse::Created(),
        Upserted::Updated => HttpResponse::Ok(),
    }
}

fn name_field(
    body: &Map<String, Value>,
    allowed: &[&str],
    problems: &mut Problems,
) -> Option<ResourceName> {
    reject_unknown_fields(body, allowed, problems);
    string_field(body, "name", "Name", true, problems)
        .and_then(|text| problems.check(ResourceName::parse(text)))
}

/// A parent guid that is not a UUID names nothing: the same 422 as an unknown parent.
fn parent_guid<T>(
    text: Option<&str>,
    kind: RelationshipKind,
    parse: fn(&str) -> Result<T, berth_domain::ids::InvalidGuid>,
    problems: &mut Problems,
) -> Option<T> {
    let parsed = parse(text?).ok();
    if parsed.is_none() {
        problems.push(format!(
            "Invalid {kind}. Ensure that the {kind} exists and you have access to it."
        ));
    }
    parsed
}

fn directory_query(
    request: &HttpRequest,
    parent: Option<&str>,
) -> Result<(DirectoryQuery, Vec<(String, String)>), V3Error> {
    let mut allowed = vec!["page", "per_page", "order_by", "guids", "names"];
    allowed.extend(parent);
    let mut query = ListQuery::parse(request.query_string(), &allowed)?;
    let parsed = DirectoryQuery {
        // Set by the use case from the caller's permissions.
        visibility: Default::default(),
        guids: query.guid_list("guids", "Guids"),
        names: query.list("names"),
        parent_guids: match parent {
            Some("organization_guids") => {
                query.guid_list("organization_guids", "Organization guids")
            }
            Some(name) => query.guid_list(name, "Space guids"),
            None => None,
        },
        order: query.order_by(ORDER_FIELDS),
        page: query.page(),
    };
    let link_params = query.link_params();
    query.finish((parsed, link_params))
}

#[utoipa::path(put, path = "/v3/organizations/{guid}", tag = "directory", operation_id = "put_organization", params(("guid" = String, Path, description = "The resource guid")), request_body(content = crate::openapi::OrganizationBody, content_type = "application/json"), responses((status = 200, description = "Updated", body = OrganizationResource), (status = 201, description = "Created", body = OrganizationResource), (status = 400, description = "The body is not a JSON object", body = crate::openapi::V3ErrorBody), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 403, description = "Readable but not writable", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 413, description = "The body is over 1 MiB", body = crate::openapi::V3ErrorBody), (status = 422, description = "A field is invalid, unknown, or a uniqueness rule is broken", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn put_organization(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let guid =
        OrganizationGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::Organization))?;
    let mut problems = Problems::default();
    let name = name_field(&body.0, &["name"], &mut problems);
    let name = problems.finish(|| name)?;
    let (organization, outcome) = state
        .directory
        .put_organization(&caller.0, guid, name)
        .await?;
    Ok(upserted(outcome).json(OrganizationResource::new(&organization, &state.links)))
}

#[utoipa::path(get, path = "/v3/organizations/{guid}", tag = "directory", operation_id = "get_organization", params(("guid" = String, Path, description = "The resource guid")), responses((status = 200, description = "Found", body = OrganizationResource), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn show_organization(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    let guid =
        OrganizationGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::Organization))?;
    let organization = state.directory.get_organization(&caller.0, guid).await?;
    Ok(HttpResponse::Ok().json(OrganizationResource::new(&organization, &state.links)))
}

#[utoipa::path(get, path = "/v3/organizations", tag = "directory", operation_id = "list_organizations", params(crate::openapi::OrganizationListQuery), responses((status = 200, description = "One page", body = ListBody<OrganizationResource>), (status = 400, description = "A query parameter is invalid", body = crate::openapi::V3ErrorBody), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn list_organizations(
    state: web::Data<AppState>,
    caller: V3Caller,
    request: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let (query, params) = directory_query(&request, None)?;
    let page_request = query.page;
    let page = state.directory.list_organizations(&caller.0, query).await?;
    Ok(HttpResponse::Ok().json(ListBody::new(
        &page,
        page_request,
        "/v3/organizations",
        &params,
        &state.links,
        |o| OrganizationResource::new(o, &state.links),
    )))
}

#[utoipa::path(delete, path = "/v3/organizations/{guid}", tag = "directory", operation_id = "delete_organization", params(("guid" = String, Path, description = "The resource guid")), responses((status = 204, description = "Deleted"), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 403, description = "Readable but not writable", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 422, description = "Still in use: nothing was deleted", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn delete_organization(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    let guid =
        OrganizationGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::Organization))?;
    state.directory.delete_organization(&caller.0, guid).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/v3/spaces/{guid}", tag = "directory", operation_id = "put_space", params(("guid" = String, Path, description = "The resource guid")), request_body(content = crate::openapi::SpaceBody, content_type = "application/json"), responses((status = 200, description = "Updated", body = SpaceResource), (status = 201, description = "Created", body = SpaceResource), (status = 400, description = "The body is not a JSON object", body = crate::openapi::V3ErrorBody), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 403, description = "Readable but not writable", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 413, description = "The body is over 1 MiB", body = crate::openapi::V3ErrorBody), (status = 422, description = "A field is invalid, unknown, or a uniqueness rule is broken", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn put_space(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let guid = SpaceGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::Space))?;
    let mut problems = Problems::default();
    let name = name_field(&body.0, &["name", "relationships"], &mut problems);
    let parent = required_parent(&body.0, RelationshipKind::Organization, &mut problems);
    let organization = parent_guid(
        parent,
        RelationshipKind::Organization,
        OrganizationGuid::parse,
        &mut problems,
    );
    let (name, organization) = problems.finish(|| Some((name?, organization?)))?;
    let (space, outcome) = state
        .directory
        .put_space(&caller.0, guid, name, organization)
        .await?;
    Ok(upserted(outcome).json(SpaceResource::new(&space, &state.links)))
}

#[utoipa::path(get, path = "/v3/spaces/{guid}", tag = "directory", operation_id = "get_space", params(("guid" = String, Path, description = "The resource guid")), responses((status = 200, description = "Found", body = SpaceResource), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn show_space(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    let guid = SpaceGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::Space))?;
    let space = state.directory.get_space(&caller.0, guid).await?;
    Ok(HttpResponse::Ok().json(SpaceResource::new(&space, &state.links)))
}

#[utoipa::path(get, path = "/v3/spaces", tag = "directory", operation_id = "list_spaces", params(crate::openapi::SpaceListQuery), responses((status = 200, description = "One page", body = ListBody<SpaceResource>), (status = 400, description = "A query parameter is invalid", body = crate::openapi::V3ErrorBody), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn list_spaces(
    state: web::Data<AppState>,
    caller: V3Caller,
    request: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let (query, params) = directory_query(&request, Some("organization_guids"))?;
    let page_request = query.page;
    let page = state.directory.list_spaces(&caller.0, query).await?;
    Ok(HttpResponse::Ok().json(ListBody::new(
        &page,
        page_request,
        "/v3/spaces",
        &params,
        &state.links,
        |s| SpaceResource::new(s, &state.links),
    )))
}

#[utoipa::path(delete, path = "/v3/spaces/{guid}", tag = "directory", operation_id = "delete_space", params(("guid" = String, Path, description = "The resource guid")), responses((status = 204, description = "Deleted"), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 403, description = "Readable but not writable", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 422, description = "Still in use: nothing was deleted", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn delete_space(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    let guid = SpaceGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::Space))?;
    state.directory.delete_space(&caller.0, guid).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(put, path = "/v3/apps/{guid}", tag = "directory", operation_id = "put_app", params(("guid" = String, Path, description = "The resource guid")), request_body(content = crate::openapi::AppBody, content_type = "application/json"), responses((status = 200, description = "Updated", body = AppResource), (status = 201, description = "Created", body = AppResource), (status = 400, description = "The body is not a JSON object", body = crate::openapi::V3ErrorBody), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 403, description = "Readable but not writable", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 413, description = "The body is over 1 MiB", body = crate::openapi::V3ErrorBody), (status = 422, description = "A field is invalid, unknown, or a uniqueness rule is broken", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn put_app(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let guid = AppGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::App))?;
    let mut problems = Problems::default();
    let name = name_field(&body.0, &["name", "relationships"], &mut problems);
    let parent = required_parent(&body.0, RelationshipKind::Space, &mut problems);
    let space = parent_guid(
        parent,
        RelationshipKind::Space,
        SpaceGuid::parse,
        &mut problems,
    );
    let (name, space) = problems.finish(|| Some((name?, space?)))?;
    let (app, outcome) = state
        .directory
        .put_app(&caller.0, guid, name, space)
        .await?;
    Ok(upserted(outcome).json(AppResource::new(&app, &state.links)))
}

#[utoipa::path(get, path = "/v3/apps/{guid}", tag = "directory", operation_id = "get_app", params(("guid" = String, Path, description = "The resource guid")), responses((status = 200, description = "Found", body = AppResource), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn show_app(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    let guid = AppGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::App))?;
    let app = state.directory.get_app(&caller.0, guid).await?;
    Ok(HttpResponse::Ok().json(AppResource::new(&app, &state.links)))
}

#[utoipa::path(get, path = "/v3/apps", tag = "directory", operation_id = "list_apps", params(crate::openapi::AppListQuery), responses((status = 200, description = "One page", body = ListBody<AppResource>), (status = 400, description = "A query parameter is invalid", body = crate::openapi::V3ErrorBody), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn list_apps(
    state: web::Data<AppState>,
    caller: V3Caller,
    request: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let (query, params) = directory_query(&request, Some("space_guids"))?;
    let page_request = query.page;
    let page = state.directory.list_apps(&caller.0, query).await?;
    Ok(HttpResponse::Ok().json(ListBody::new(
        &page,
        page_request,
        "/v3/apps",
        &params,
        &state.links,
        |a| AppResource::new(a, &state.links),
    )))
}

#[utoipa::path(delete, path = "/v3/apps/{guid}", tag = "directory", operation_id = "delete_app", params(("guid" = String, Path, description = "The resource guid")), responses((status = 204, description = "Deleted"), (status = 401, description = "No token, or an invalid one", body = crate::openapi::V3ErrorBody), (status = 403, description = "Readable but not writable", body = crate::openapi::V3ErrorBody), (status = 404, description = "Not found, or not visible to the caller", body = crate::openapi::V3ErrorBody), (status = 422, description = "Still in use: nothing was deleted", body = crate::openapi::V3ErrorBody), (status = 503, description = "The database is unavailable", body = crate::openapi::V3ErrorBody)))]
pub(crate) async fn delete_app(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    let guid = AppGuid::parse(&guid).map_err(|_| not_found(RelationshipKind::App))?;
    state.directory.delete_app(&caller.0, guid).await?;
    Ok(HttpResponse::NoContent().finish())
}

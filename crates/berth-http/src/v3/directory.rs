//! `/v3/organizations`, `/v3/spaces`, `/v3/apps`: the directory, upserted by guid.

use actix_web::{HttpRequest, HttpResponse, web};
use berth_domain::RelationshipKind;
use berth_domain::directory::{App, DirectoryEntry, Organization, ResourceName, Space, Upserted};
use berth_domain::ids::TypedGuid;
use berth_domain::listing::{DirectoryOrderField, DirectoryQuery};
use serde::Serialize;
use serde_json::{Map, Value};

use super::V3Caller;
use super::body::{JsonObject, Problems, reject_unknown_fields, required_parent, string_field};
use super::error::V3Error;
use super::presenters::{AppResource, Links, ListBody, OrganizationResource, SpaceResource};
use super::query::ListQuery;
use crate::openapi::{
    AppBody, AppListQuery, OrganizationBody, OrganizationListQuery, SpaceBody, SpaceListQuery,
    V3BodyRefused, V3ErrorBody, V3NotVisible, V3NotWritable, V3QueryRefused, V3Unauthenticated,
};
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

/// How each kind of directory entry appears on the V3 wire; the handlers are written once over it.
trait V3Entry: DirectoryEntry {
    type Resource: Serialize;
    /// The collection's path.
    const PATH: &'static str;
    /// The list filter naming the parent, and its title in error messages.
    const PARENT_FILTER: Option<(&'static str, &'static str)>;

    fn present(&self, links: &Links) -> Self::Resource;
}

impl V3Entry for Organization {
    type Resource = OrganizationResource;
    const PATH: &'static str = "/v3/organizations";
    const PARENT_FILTER: Option<(&'static str, &'static str)> = None;

    fn present(&self, links: &Links) -> OrganizationResource {
        OrganizationResource::new(self, links)
    }
}

impl V3Entry for Space {
    type Resource = SpaceResource;
    const PATH: &'static str = "/v3/spaces";
    const PARENT_FILTER: Option<(&'static str, &'static str)> =
        Some(("organization_guids", "Organization guids"));

    fn present(&self, links: &Links) -> SpaceResource {
        SpaceResource::new(self, links)
    }
}

impl V3Entry for App {
    type Resource = AppResource;
    const PATH: &'static str = "/v3/apps";
    const PARENT_FILTER: Option<(&'static str, &'static str)> =
        Some(("space_guids", "Space guids"));

    fn present(&self, links: &Links) -> AppResource {
        AppResource::new(self, links)
    }
}

/// A guid that is not a UUID names nothing: the same answer as an unknown one.
fn path_guid<E: DirectoryEntry>(text: &str) -> Result<E::Guid, V3Error> {
    E::Guid::parse(text).map_err(|_| {
        V3Error::from(berth_domain::directory_service::DirectoryError::NotFound(
            E::KIND,
        ))
    })
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

/// A space's or an app's body: its name and its parent's guid. A parent guid that is not a UUID
/// names nothing: the same 422 as an unknown parent.
fn name_and_parent<G: TypedGuid>(
    body: &JsonObject,
    parent: RelationshipKind,
) -> Result<(ResourceName, G), V3Error> {
    let mut problems = Problems::default();
    let name = name_field(&body.0, &["name", "relationships"], &mut problems);
    let parent_guid = required_parent(&body.0, parent, &mut problems).and_then(|text| {
        let parsed = G::parse(text).ok();
        if parsed.is_none() {
            problems.push(format!(
                "Invalid {parent}. Ensure that the {parent} exists and you have access to it."
            ));
        }
        parsed
    });
    problems.finish(|| Some((name?, parent_guid?)))
}

fn directory_query<E: V3Entry>(
    request: &HttpRequest,
) -> Result<(DirectoryQuery, Vec<(String, String)>), V3Error> {
    let mut allowed = vec!["page", "per_page", "order_by", "guids", "names"];
    allowed.extend(E::PARENT_FILTER.map(|(name, _)| name));
    let mut query = ListQuery::parse(request.query_string(), &allowed)?;
    let parsed = DirectoryQuery {
        // Set by the use case from the caller's permissions.
        visibility: Default::default(),
        guids: query.guid_list("guids", "Guids"),
        names: query.list("names"),
        parent_guids: E::PARENT_FILTER.and_then(|(name, title)| query.guid_list(name, title)),
        order: query.order_by(ORDER_FIELDS),
        page: query.page(),
    };
    let link_params = query.link_params();
    query.finish((parsed, link_params))
}

async fn show<E: V3Entry>(
    state: &AppState,
    caller: &V3Caller,
    guid: &str,
) -> Result<HttpResponse, V3Error> {
    let entry = state
        .directory
        .get::<E>(&caller.0, path_guid::<E>(guid)?)
        .await?;
    Ok(HttpResponse::Ok().json(entry.present(&state.links)))
}

async fn list<E: V3Entry>(
    state: &AppState,
    caller: &V3Caller,
    request: &HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let (query, params) = directory_query::<E>(request)?;
    let page_request = query.page;
    let page = state.directory.list::<E>(&caller.0, query).await?;
    Ok(HttpResponse::Ok().json(ListBody::new(
        &page,
        page_request,
        E::PATH,
        &params,
        &state.links,
        |entry| entry.present(&state.links),
    )))
}

async fn delete<E: V3Entry>(
    state: &AppState,
    caller: &V3Caller,
    guid: &str,
) -> Result<HttpResponse, V3Error> {
    state
        .directory
        .delete::<E>(&caller.0, path_guid::<E>(guid)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    put,
    path = "/v3/organizations/{guid}",
    tag = "directory",
    operation_id = "put_organization",
    params(("guid" = String, Path, description = "The resource guid")),
    request_body(content = OrganizationBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = OrganizationResource),
        (status = 201, description = "Created", body = OrganizationResource),
        V3Unauthenticated,
        V3BodyRefused,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn put_organization(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let guid = path_guid::<Organization>(&guid)?;
    let mut problems = Problems::default();
    let name = name_field(&body.0, &["name"], &mut problems);
    let name = problems.finish(|| name)?;
    let (organization, outcome) = state
        .directory
        .put_organization(&caller.0, guid, name)
        .await?;
    Ok(upserted(outcome).json(organization.present(&state.links)))
}

#[utoipa::path(
    get,
    path = "/v3/organizations/{guid}",
    tag = "directory",
    operation_id = "get_organization",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 200, description = "Found", body = OrganizationResource),
        V3Unauthenticated,
        V3NotVisible,
    ),
)]
pub(crate) async fn show_organization(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    show::<Organization>(&state, &caller, &guid).await
}

#[utoipa::path(
    get,
    path = "/v3/organizations",
    tag = "directory",
    operation_id = "list_organizations",
    params(OrganizationListQuery),
    responses(
        (status = 200, description = "One page", body = ListBody<OrganizationResource>),
        V3Unauthenticated,
        V3QueryRefused,
    ),
)]
pub(crate) async fn list_organizations(
    state: web::Data<AppState>,
    caller: V3Caller,
    request: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    list::<Organization>(&state, &caller, &request).await
}

#[utoipa::path(
    delete,
    path = "/v3/organizations/{guid}",
    tag = "directory",
    operation_id = "delete_organization",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 422, description = "Still in use: nothing was deleted", body = V3ErrorBody),
        V3Unauthenticated,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn delete_organization(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    delete::<Organization>(&state, &caller, &guid).await
}

#[utoipa::path(
    put,
    path = "/v3/spaces/{guid}",
    tag = "directory",
    operation_id = "put_space",
    params(("guid" = String, Path, description = "The resource guid")),
    request_body(content = SpaceBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = SpaceResource),
        (status = 201, description = "Created", body = SpaceResource),
        V3Unauthenticated,
        V3BodyRefused,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn put_space(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let guid = path_guid::<Space>(&guid)?;
    let (name, organization) = name_and_parent(&body, RelationshipKind::Organization)?;
    let (space, outcome) = state
        .directory
        .put_space(&caller.0, guid, name, organization)
        .await?;
    Ok(upserted(outcome).json(space.present(&state.links)))
}

#[utoipa::path(
    get,
    path = "/v3/spaces/{guid}",
    tag = "directory",
    operation_id = "get_space",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 200, description = "Found", body = SpaceResource),
        V3Unauthenticated,
        V3NotVisible,
    ),
)]
pub(crate) async fn show_space(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    show::<Space>(&state, &caller, &guid).await
}

#[utoipa::path(
    get,
    path = "/v3/spaces",
    tag = "directory",
    operation_id = "list_spaces",
    params(SpaceListQuery),
    responses(
        (status = 200, description = "One page", body = ListBody<SpaceResource>),
        V3Unauthenticated,
        V3QueryRefused,
    ),
)]
pub(crate) async fn list_spaces(
    state: web::Data<AppState>,
    caller: V3Caller,
    request: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    list::<Space>(&state, &caller, &request).await
}

#[utoipa::path(
    delete,
    path = "/v3/spaces/{guid}",
    tag = "directory",
    operation_id = "delete_space",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 422, description = "Still in use: nothing was deleted", body = V3ErrorBody),
        V3Unauthenticated,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn delete_space(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    delete::<Space>(&state, &caller, &guid).await
}

#[utoipa::path(
    put,
    path = "/v3/apps/{guid}",
    tag = "directory",
    operation_id = "put_app",
    params(("guid" = String, Path, description = "The resource guid")),
    request_body(content = AppBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = AppResource),
        (status = 201, description = "Created", body = AppResource),
        V3Unauthenticated,
        V3BodyRefused,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn put_app(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let guid = path_guid::<App>(&guid)?;
    let (name, space) = name_and_parent(&body, RelationshipKind::Space)?;
    let (app, outcome) = state
        .directory
        .put_app(&caller.0, guid, name, space)
        .await?;
    Ok(upserted(outcome).json(app.present(&state.links)))
}

#[utoipa::path(
    get,
    path = "/v3/apps/{guid}",
    tag = "directory",
    operation_id = "get_app",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 200, description = "Found", body = AppResource),
        V3Unauthenticated,
        V3NotVisible,
    ),
)]
pub(crate) async fn show_app(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    show::<App>(&state, &caller, &guid).await
}

#[utoipa::path(
    get,
    path = "/v3/apps",
    tag = "directory",
    operation_id = "list_apps",
    params(AppListQuery),
    responses(
        (status = 200, description = "One page", body = ListBody<AppResource>),
        V3Unauthenticated,
        V3QueryRefused,
    ),
)]
pub(crate) async fn list_apps(
    state: web::Data<AppState>,
    caller: V3Caller,
    request: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    list::<App>(&state, &caller, &request).await
}

#[utoipa::path(
    delete,
    path = "/v3/apps/{guid}",
    tag = "directory",
    operation_id = "delete_app",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 422, description = "Still in use: nothing was deleted", body = V3ErrorBody),
        V3Unauthenticated,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn delete_app(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    delete::<App>(&state, &caller, &guid).await
}

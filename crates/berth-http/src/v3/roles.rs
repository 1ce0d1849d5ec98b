//! `/v3/roles`: a user's organization and space roles in the directory, upserted by guid.

use actix_web::{HttpRequest, HttpResponse, web};
use berth_domain::actor::RoleType;
use berth_domain::ids::{OrganizationGuid, SpaceGuid};
use berth_domain::role_service::{RoleError, RolePut};
use berth_domain::roles::{RoleGrant, RoleGuid, RoleOrderField, RoleQuery, UserGuid};
use serde_json::Value;

use super::V3Caller;
use super::body::{
    JsonObject, Problems, named_relationship_guid, reject_unknown_fields,
    reject_unknown_fields_with, string_field,
};
use super::error::V3Error;
use super::presenters::{ListBody, RoleResource};
use super::query::ListQuery;
use crate::openapi::{
    RoleBody, RoleListQuery, V3BodyRefused, V3NotVisible, V3NotWritable, V3QueryRefused,
    V3Unauthenticated,
};
use crate::state::AppState;

const PATH: &str = "/v3/roles";

const ORDER_FIELDS: &[(&str, RoleOrderField)] = &[
    ("created_at", RoleOrderField::CreatedAt),
    ("updated_at", RoleOrderField::UpdatedAt),
];

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(super::resource(PATH, "GET").route(web::get().to(list)))
        .service(
            super::resource("/v3/roles/{guid}", "GET, PUT, DELETE")
                .route(web::get().to(show))
                .route(web::put().to(put))
                .route(web::delete().to(delete)),
        );
}

fn type_names() -> String {
    RoleType::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A guid that is not a UUID names nothing: the same answer as an unknown one.
fn path_guid(text: &str) -> Result<RoleGuid, V3Error> {
    RoleGuid::parse(text).map_err(|_| V3Error::from(RoleError::NotFound))
}

/// Cloud Foundry's role create body: `type`, and `relationships` naming the `user` and exactly
/// one of `organization` (for an organization role) or `space` (for a space role).
fn role_grant(body: &JsonObject) -> Result<RoleGrant, V3Error> {
    let mut problems = Problems::default();
    reject_unknown_fields(&body.0, &["type", "relationships"], &mut problems);
    let kind = string_field(&body.0, "type", "Type", true, &mut problems).and_then(|text| {
        let kind = RoleType::parse(text).ok();
        if kind.is_none() {
            problems.push(format!(
                "Type must be one of the allowed types: {}",
                type_names()
            ));
        }
        kind
    });
    let Some(relationships) = body.0.get("relationships").and_then(Value::as_object) else {
        problems.push("Relationships 'relationships' is not an object");
        return Err(problems.refusal());
    };
    reject_unknown_fields_with(
        relationships,
        &["user", "organization", "space"],
        "Relationships",
        &mut problems,
    );
    let user = match relationships.get("user") {
        Some(value) => named_relationship_guid(value, "user", &mut problems)
            .and_then(|text| problems.check(UserGuid::parse(text))),
        None => {
            problems.push("Relationships user can't be blank");
            None
        }
    };
    let target = |name: &str, problems: &mut Problems| {
        relationships
            .get(name)
            .and_then(|value| named_relationship_guid(value, name, problems))
            .map(str::to_owned)
    };
    let organization = target("organization", &mut problems);
    let space = target("space", &mut problems);
    let role = kind.and_then(|kind| {
        // A guid that is not a UUID names no organization or space: the same 422 as an
        // unknown one.
        let invalid = |what: &str| {
            format!("Invalid {what}. Ensure that the {what} exists and you have access to it.")
        };
        match (kind.is_space_role(), &organization, &space) {
            (false, Some(guid), None) => match OrganizationGuid::parse(guid) {
                Ok(guid) => kind.in_organization(guid).ok(),
                Err(_) => {
                    problems.push(invalid("organization"));
                    None
                }
            },
            (true, None, Some(guid)) => match SpaceGuid::parse(guid) {
                Ok(guid) => kind.in_space(guid).ok(),
                Err(_) => {
                    problems.push(invalid("space"));
                    None
                }
            },
            (true, _, _) => {
                problems.push(format!(
                    "Relationships {kind} is a space role: it needs a space relationship and no \
                     organization"
                ));
                None
            }
            (false, _, _) => {
                problems.push(format!(
                    "Relationships {kind} is an organization role: it needs an organization \
                     relationship and no space"
                ));
                None
            }
        }
    });
    problems.finish(|| {
        Some(RoleGrant {
            user: user?,
            role: role?,
        })
    })
}

fn role_query(request: &HttpRequest) -> Result<(RoleQuery, Vec<(String, String)>), V3Error> {
    let mut query = ListQuery::parse(
        request.query_string(),
        &[
            "page",
            "per_page",
            "order_by",
            "guids",
            "types",
            "user_guids",
            "organization_guids",
            "space_guids",
        ],
    )?;
    let parsed = RoleQuery {
        // Set by the use case from the caller's permissions.
        visibility: Default::default(),
        viewer: None,
        guids: query.guid_list("guids", "Guids"),
        types: query.enum_list(
            "types",
            |text| RoleType::parse(text).ok(),
            &format!("Types must be one of the allowed types: {}", type_names()),
        ),
        user_guids: query.list("user_guids"),
        organization_guids: query.guid_list("organization_guids", "Organization guids"),
        space_guids: query.guid_list("space_guids", "Space guids"),
        order: query.order_by(ORDER_FIELDS),
        page: query.page(),
    };
    let link_params = query.link_params();
    query.finish((parsed, link_params))
}

#[utoipa::path(
    put,
    path = "/v3/roles/{guid}",
    tag = "roles",
    operation_id = "put_role",
    params(("guid" = String, Path, description = "The role's guid, chosen by the platform")),
    request_body(content = RoleBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The same role was there already", body = RoleResource),
        (status = 201, description = "Created", body = RoleResource),
        V3Unauthenticated,
        V3BodyRefused,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn put(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let guid = path_guid(&guid)?;
    let grant = role_grant(&body)?;
    let (role, outcome) = state.roles.put(&caller.0, guid, grant).await?;
    let mut response = match outcome {
        RolePut::Created => HttpResponse::Created(),
        RolePut::Unchanged => HttpResponse::Ok(),
    };
    Ok(response.json(RoleResource::new(&role, &state.links)))
}

#[utoipa::path(
    get,
    path = "/v3/roles/{guid}",
    tag = "roles",
    operation_id = "get_role",
    params(("guid" = String, Path, description = "The role's guid")),
    responses(
        (status = 200, description = "Found", body = RoleResource),
        V3Unauthenticated,
        V3NotVisible,
    ),
)]
pub(crate) async fn show(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    let role = state.roles.get(&caller.0, path_guid(&guid)?).await?;
    Ok(HttpResponse::Ok().json(RoleResource::new(&role, &state.links)))
}

#[utoipa::path(
    get,
    path = "/v3/roles",
    tag = "roles",
    operation_id = "list_roles",
    params(RoleListQuery),
    responses(
        (status = 200, description = "One page", body = ListBody<RoleResource>),
        V3Unauthenticated,
        V3QueryRefused,
    ),
)]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: V3Caller,
    request: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let (query, params) = role_query(&request)?;
    let page_request = query.page;
    let page = state.roles.list(&caller.0, query).await?;
    Ok(HttpResponse::Ok().json(ListBody::new(
        &page,
        page_request,
        PATH,
        &params,
        &state.links,
        |role| RoleResource::new(role, &state.links),
    )))
}

#[utoipa::path(
    delete,
    path = "/v3/roles/{guid}",
    tag = "roles",
    operation_id = "delete_role",
    params(("guid" = String, Path, description = "The role's guid")),
    responses(
        (status = 204, description = "Deleted"),
        (
            status = 422,
            description = "The user's last organization role while the user holds roles in \
                           its spaces: nothing was deleted",
            body = crate::openapi::V3ErrorBody
        ),
        V3Unauthenticated,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn delete(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    state.roles.delete(&caller.0, path_guid(&guid)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `/v3/audit_events`: who changed or read what, in Cloud Foundry's shape.

use actix_web::{HttpRequest, HttpResponse, web};
use berth_domain::audit::{AuditEventGuid, AuditEventType, AuditOrderField, AuditQuery};
use berth_domain::ids::{OrganizationGuid, SpaceGuid};

use super::V3Caller;
use super::error::V3Error;
use super::presenters::{AuditEventResource, ListBody};
use super::query::ListQuery;
use crate::openapi::{AuditEventListQuery, V3NotVisible, V3QueryRefused, V3Unauthenticated};
use crate::state::AppState;

const PATH: &str = "/v3/audit_events";
const LIST_PARAMETERS: &[&str] = &[
    "page",
    "per_page",
    "order_by",
    "types",
    "target_guids",
    "space_guids",
    "organization_guids",
    "created_ats",
    "updated_ats",
];
const ORDER_FIELDS: &[(&str, AuditOrderField)] = &[
    ("created_at", AuditOrderField::CreatedAt),
    ("updated_at", AuditOrderField::UpdatedAt),
];
/// Longest target guid stored (the column's width): longer text matches nothing anyway.
const MAX_TARGET_GUID: usize = 255;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(super::resource(PATH, "GET").route(web::get().to(list)))
        .service(super::resource("/v3/audit_events/{guid}", "GET").route(web::get().to(show)));
}

#[utoipa::path(
    get,
    path = "/v3/audit_events",
    tag = "audit_events",
    operation_id = "list_audit_events",
    params(AuditEventListQuery),
    responses(
        (status = 200, description = "One page of the events the caller may see", body = ListBody<AuditEventResource>),
        V3Unauthenticated,
        V3QueryRefused,
    ),
)]
pub(crate) async fn list(
    state: web::Data<AppState>,
    caller: V3Caller,
    request: HttpRequest,
) -> Result<HttpResponse, V3Error> {
    let (query, link_params) = list_query(request.query_string())?;
    let page_request = query.page;
    let page = state.audit.list(&caller.0, query).await?;
    let body = ListBody::new(
        &page,
        page_request,
        PATH,
        &link_params,
        &state.links,
        |event| AuditEventResource::new(event, &state.links),
    );
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(
    get,
    path = "/v3/audit_events/{guid}",
    tag = "audit_events",
    operation_id = "get_audit_event",
    params(("guid" = String, Path, description = "The event's guid")),
    responses(
        (status = 200, description = "The event", body = AuditEventResource),
        V3Unauthenticated,
        V3NotVisible,
    ),
)]
pub(crate) async fn show(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    // A guid that is not a UUID names no event: 404, as Cloud Foundry answers.
    let guid = AuditEventGuid::parse(&guid)
        .map_err(|_| V3Error::resource_not_found("Audit event not found"))?;
    let event = state.audit.get(&caller.0, guid).await?;
    Ok(HttpResponse::Ok().json(AuditEventResource::new(&event, &state.links)))
}

fn list_query(query_string: &str) -> Result<(AuditQuery, Vec<(String, String)>), V3Error> {
    let mut query = ListQuery::parse(query_string, LIST_PARAMETERS)?;
    let names: Vec<String> = AuditEventType::ALL
        .iter()
        .map(|kind| format!("'{}'", kind.as_str()))
        .collect();
    let parsed = AuditQuery {
        // Set by the use case from the caller's permissions.
        visibility: Default::default(),
        types: query.enum_list(
            "types",
            AuditEventType::parse,
            &format!("Types can only include {}", names.join(", ")),
        ),
        target_guids: query.list("target_guids").map(|targets| {
            targets
                .into_iter()
                .filter(|target| target.len() <= MAX_TARGET_GUID)
                .collect()
        }),
        space_guids: query
            .guid_list("space_guids", "Space guids")
            .map(|guids| guids.into_iter().map(SpaceGuid::from_uuid).collect()),
        organization_guids: query
            .guid_list("organization_guids", "Organization guids")
            .map(|guids| guids.into_iter().map(OrganizationGuid::from_uuid).collect()),
        created_ats: query.timestamps("created_ats", "Created ats"),
        updated_ats: query.timestamps("updated_ats", "Updated ats"),
        order: query.order_by(ORDER_FIELDS),
        page: query.page(),
    };
    let link_params = query.link_params();
    query.finish((parsed, link_params))
}

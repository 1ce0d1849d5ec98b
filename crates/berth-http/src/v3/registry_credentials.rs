//! `/v3/registry_credentials`.

use actix_web::{HttpRequest, HttpResponse, web};
use berth_domain::RelationshipKind;
use berth_domain::credential::{
    CreateCredentialRequest, Password, RequestedOwner, Scope, UpdateCredentialRequest, Username,
};
use berth_domain::ids::{AppGuid, CredentialGuid, OrganizationGuid, SpaceGuid};
use berth_domain::listing::{CredentialOrderField, CredentialQuery};
use berth_domain::location::RegistryLocation;
use secrecy::SecretString;
use serde_json::{Map, Value};

use super::V3Caller;
use super::body::{
    JsonObject, Problems, metadata_patch, reject_unknown_fields, relationship_guid, string_field,
};
use super::error::V3Error;
use super::presenters::{CredentialResource, ListBody};
use super::query::ListQuery;
use crate::openapi::{
    CreateCredentialBody, CredentialListQuery, UpdateCredentialBody, V3BodyRefused, V3NotVisible,
    V3NotWritable, V3QueryRefused, V3Unauthenticated,
};
use crate::state::AppState;

const PATH: &str = "/v3/registry_credentials";
const LIST_PARAMETERS: &[&str] = &[
    "page",
    "per_page",
    "order_by",
    "guids",
    "organization_guids",
    "space_guids",
    "app_guids",
    "scopes",
    "locations",
    "label_selector",
    "created_ats",
    "updated_ats",
];
const ORDER_FIELDS: &[(&str, CredentialOrderField)] = &[
    ("created_at", CredentialOrderField::CreatedAt),
    ("updated_at", CredentialOrderField::UpdatedAt),
    ("location", CredentialOrderField::Location),
];

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            super::resource(PATH, "GET, POST")
                .route(web::post().to(create))
                .route(web::get().to(list)),
        )
        .service(
            super::resource("/v3/registry_credentials/{guid}", "GET, PATCH, DELETE")
                .route(web::get().to(show))
                .route(web::patch().to(update))
                .route(web::delete().to(delete)),
        );
}

#[utoipa::path(
    post,
    path = "/v3/registry_credentials",
    tag = "registry_credentials",
    operation_id = "create_registry_credential",
    request_body(content = CreateCredentialBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = CredentialResource),
        V3Unauthenticated,
        V3BodyRefused,
        V3NotWritable,
    ),
)]
pub(crate) async fn create(
    state: web::Data<AppState>,
    caller: V3Caller,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let request = create_request(&body.0)?;
    let credential = state.credentials.create(&caller.0, request).await?;
    Ok(HttpResponse::Created().json(CredentialResource::new(&credential, &state.links)))
}

#[utoipa::path(
    get,
    path = "/v3/registry_credentials",
    tag = "registry_credentials",
    operation_id = "list_registry_credentials",
    params(CredentialListQuery),
    responses(
        (status = 200, description = "One page", body = ListBody<CredentialResource>),
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
    let page = state.credentials.list(&caller.0, query).await?;
    let body = ListBody::new(
        &page,
        page_request,
        PATH,
        &link_params,
        &state.links,
        |credential| CredentialResource::new(credential, &state.links),
    );
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(
    get,
    path = "/v3/registry_credentials/{guid}",
    tag = "registry_credentials",
    operation_id = "get_registry_credential",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 200, description = "The credential", body = CredentialResource),
        V3Unauthenticated,
        V3NotVisible,
    ),
)]
pub(crate) async fn show(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    let credential = state.credentials.get(&caller.0, path_guid(&guid)?).await?;
    Ok(HttpResponse::Ok().json(CredentialResource::new(&credential, &state.links)))
}

#[utoipa::path(
    patch,
    path = "/v3/registry_credentials/{guid}",
    tag = "registry_credentials",
    operation_id = "update_registry_credential",
    params(("guid" = String, Path, description = "The resource guid")),
    request_body(content = Option<UpdateCredentialBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = CredentialResource),
        V3Unauthenticated,
        V3BodyRefused,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn update(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let guid = path_guid(&guid)?;
    let request = update_request(&body.0)?;
    let credential = state.credentials.update(&caller.0, guid, request).await?;
    Ok(HttpResponse::Ok().json(CredentialResource::new(&credential, &state.links)))
}

#[utoipa::path(
    delete,
    path = "/v3/registry_credentials/{guid}",
    tag = "registry_credentials",
    operation_id = "delete_registry_credential",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 204, description = "Deleted"),
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
    state
        .credentials
        .delete(&caller.0, path_guid(&guid)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A guid that is not a UUID names no credential: 404, as Cloud Foundry answers.
fn path_guid(text: &str) -> Result<CredentialGuid, V3Error> {
    CredentialGuid::parse(text)
        .map_err(|_| V3Error::resource_not_found("Registry credential not found"))
}

fn password(text: &str, problems: &mut Problems) -> Option<Password> {
    problems.check(Password::parse(SecretString::from(text)))
}

fn create_request(body: &Map<String, Value>) -> Result<CreateCredentialRequest, V3Error> {
    let mut problems = Problems::default();
    reject_unknown_fields(
        body,
        &[
            "location",
            "username",
            "password",
            "relationships",
            "metadata",
        ],
        &mut problems,
    );
    let location = string_field(body, "location", "Location", true, &mut problems)
        .and_then(|text| problems.check(RegistryLocation::parse(text)));
    let username = string_field(body, "username", "Username", true, &mut problems)
        .and_then(|text| problems.check(Username::parse(text)));
    let password = string_field(body, "password", "Password", true, &mut problems)
        .and_then(|text| password(text, &mut problems));
    let owner = requested_owner(body.get("relationships"), &mut problems);
    let metadata = metadata_patch(body.get("metadata"), &mut problems);
    problems.finish(|| {
        Some(CreateCredentialRequest {
            owner: owner?,
            location: location?,
            username: username?,
            password: password?,
            metadata,
        })
    })
}

fn update_request(body: &Map<String, Value>) -> Result<UpdateCredentialRequest, V3Error> {
    let mut problems = Problems::default();
    reject_unknown_fields(body, &["username", "password", "metadata"], &mut problems);
    let username = match string_field(body, "username", "Username", false, &mut problems) {
        Some(text) => problems.check(Username::parse(text)).map(Some),
        None => Some(None),
    };
    let password = match string_field(body, "password", "Password", false, &mut problems) {
        Some(text) => password(text, &mut problems).map(Some),
        None => Some(None),
    };
    let metadata = metadata_patch(body.get("metadata"), &mut problems);
    problems.finish(|| {
        Some(UpdateCredentialRequest {
            username: username?,
            password: password?,
            metadata,
        })
    })
}

/// At most one of `organization`, `space`, `app`; none is the foundation.
pub(crate) fn requested_owner(
    value: Option<&Value>,
    problems: &mut Problems,
) -> Option<RequestedOwner> {
    let relationships = match value {
        None | Some(Value::Null) => return Some(RequestedOwner::Foundation),
        Some(Value::Object(map)) => map,
        Some(_) => {
            problems.push("Relationships must be an object");
            return None;
        }
    };
    let kinds = [
        RelationshipKind::Organization,
        RelationshipKind::Space,
        RelationshipKind::App,
    ];
    let unknown: Vec<String> = relationships
        .keys()
        .filter(|key| !kinds.iter().any(|kind| kind.as_str() == key.as_str()))
        .map(|key| format!("'{key}'"))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "Relationships has unexpected field(s): {}",
            unknown.join(", ")
        ));
        return None;
    }
    let mut given = kinds
        .iter()
        .filter_map(|kind| relationships.get(kind.as_str()).map(|v| (*kind, v)));
    let Some((kind, value)) = given.next() else {
        return Some(RequestedOwner::Foundation);
    };
    if given.next().is_some() {
        problems.push("Relationships can only include one of 'organization', 'space' or 'app'");
        return None;
    }
    let guid = relationship_guid(value, kind, problems)?;
    // A guid that is not a UUID names nothing: the same answer as an unknown one.
    let invalid =
        || format!("Invalid {kind}. Ensure that the {kind} exists and you have access to it.");
    let owner = match kind {
        RelationshipKind::Organization => {
            OrganizationGuid::parse(guid).map(RequestedOwner::Organization)
        }
        RelationshipKind::Space => SpaceGuid::parse(guid).map(RequestedOwner::Space),
        RelationshipKind::App => AppGuid::parse(guid).map(RequestedOwner::App),
    };
    owner.map_err(|_| problems.push(invalid())).ok()
}

fn list_query(query_string: &str) -> Result<(CredentialQuery, Vec<(String, String)>), V3Error> {
    let mut query = ListQuery::parse(query_string, LIST_PARAMETERS)?;
    let guid_list = |query: &mut ListQuery, name: &str, label: &str| query.guid_list(name, label);
    let parsed = CredentialQuery {
        // Set by the use case from the caller's permissions.
        visibility: Default::default(),
        guids: guid_list(&mut query, "guids", "Guids")
            .map(|guids| guids.into_iter().map(CredentialGuid::from_uuid).collect()),
        organization_guids: guid_list(&mut query, "organization_guids", "Organization guids")
            .map(|guids| guids.into_iter().map(OrganizationGuid::from_uuid).collect()),
        space_guids: guid_list(&mut query, "space_guids", "Space guids")
            .map(|guids| guids.into_iter().map(SpaceGuid::from_uuid).collect()),
        app_guids: guid_list(&mut query, "app_guids", "App guids")
            .map(|guids| guids.into_iter().map(AppGuid::from_uuid).collect()),
        scopes: query.enum_list(
            "scopes",
            Scope::parse,
            "Scopes can only include 'foundation', 'organization', 'space', 'app'",
        ),
        // A location is matched as stored (host lowercased); text that is no location matches nothing.
        locations: query.list("locations").map(|locations| {
            locations
                .into_iter()
                .map(|text| {
                    RegistryLocation::parse(&text)
                        .map(|l| l.to_string())
                        .unwrap_or(text)
                })
                .collect()
        }),
        label_selector: query.label_selector(),
        created_ats: query.timestamps("created_ats", "Created ats"),
        updated_ats: query.timestamps("updated_ats", "Updated ats"),
        order: query.order_by(ORDER_FIELDS),
        page: query.page(),
    };
    let link_params = query.link_params();
    query.finish((parsed, link_params))
}

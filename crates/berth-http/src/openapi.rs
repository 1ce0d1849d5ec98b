//! The OpenAPI 3.1 document, generated from the handlers' annotations and the wire types, served
//! at `/openapi.json` with a browsable page at `/docs/` (Swagger UI, vendored: no CDN at build
//! or view time). `docs/openapi.json` is a committed copy; a test fails when the two drift
//! (`cargo xtask openapi` rewrites it).

#![allow(dead_code)] // The request-body types exist for the document: bodies are parsed by hand.

use std::collections::BTreeMap;

use berth_domain::label_selector::{MAX_LIST_VALUES, MAX_REQUIREMENTS};
use berth_domain::listing::MAX_LIST_FILTER_VALUES;
use serde::{Deserialize, Serialize};
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

/// The V3 error envelope: `{"errors":[{"detail","title","code"}]}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct V3ErrorBody {
    pub errors: Vec<V3ErrorEntry>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct V3ErrorEntry {
    pub detail: String,
    /// Such as `CF-UnprocessableEntity`.
    pub title: String,
    pub code: u32,
}

/// The v1 error envelope: `{"error":{"code","message","details"}}`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct V1ErrorBody {
    pub error: V1ErrorObject,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct V1ErrorObject {
    /// A stable snake_case code such as `registry_already_enabled`.
    pub code: String,
    pub message: String,
    pub details: Vec<V1ErrorDetail>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct V1ErrorDetail {
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct GuidData {
    #[schema(format = Uuid)]
    pub guid: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RelationshipData {
    pub data: GuidData,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CredentialRelationshipsBody {
    pub organization: Option<RelationshipData>,
    pub space: Option<RelationshipData>,
    pub app: Option<RelationshipData>,
}

/// Labels and annotations; in a `PATCH`, a `null` value deletes the key.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MetadataRequest {
    pub labels: Option<BTreeMap<String, Option<String>>>,
    pub annotations: Option<BTreeMap<String, Option<String>>>,
}

/// `POST /v3/registry_credentials`: at most one relationship; none is the foundation.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredentialBody {
    /// `host[:port][/path]`, no scheme.
    pub location: String,
    /// Not blank, no control characters.
    pub username: String,
    /// Write-only: never returned.
    #[schema(format = Password)]
    pub password: String,
    pub relationships: Option<CredentialRelationshipsBody>,
    pub metadata: Option<MetadataRequest>,
}

/// `PATCH /v3/registry_credentials/{guid}`: metadata merges.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCredentialBody {
    /// Not blank, no control characters.
    pub username: Option<String>,
    #[schema(format = Password)]
    pub password: Option<String>,
    pub metadata: Option<MetadataRequest>,
}

/// `POST /v3/registry_credentials/actions/resolve` and `.../explain`: 1 to 100 entries in
/// `images` and `registries` together; at most one relationship, none is the foundation.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullSecretsBody {
    /// Image references, `[host[:port]/]path[:tag][@digest]`.
    #[schema(max_items = 100)]
    pub images: Option<Vec<String>>,
    /// Bare `host[:port]`, no scheme, no path.
    #[schema(max_items = 100)]
    pub registries: Option<Vec<String>>,
    pub relationships: Option<CredentialRelationshipsBody>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationBody {
    /// 1 to 255 characters, not blank, no control characters.
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrganizationRelationship {
    pub organization: RelationshipData,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpaceBody {
    /// 1 to 255 characters, not blank, no control characters.
    pub name: String,
    pub relationships: OrganizationRelationship,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SpaceRelationship {
    pub space: RelationshipData,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppBody {
    /// 1 to 255 characters, not blank, no control characters.
    pub name: String,
    pub relationships: SpaceRelationship,
}

/// The query of `GET /v3/registry_credentials`: comma-separated lists, ANDed across parameters.
pub struct CredentialListQuery;

impl IntoParams for CredentialListQuery {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut parameters = CredentialListScalars::into_params(parameter_in_provider);
        parameters.extend([
            guid_list("guids", "Credential guids"),
            guid_list("organization_guids", "Organization guids"),
            guid_list("space_guids", "Space guids"),
            guid_list("app_guids", "App guids"),
            text_list(
                "scopes",
                "`foundation`, `organization`, `space`, `app`",
                Some(&["foundation", "organization", "space", "app"]),
            ),
            text_list("locations", "Locations, as stored (host lowercased)", None),
            label_selector(),
            timestamp_list("created_ats", "Creation times"),
            timestamp_list("updated_ats", "Update times"),
        ]);
        parameters
    }
}

/// The single-valued parameters of `GET /v3/registry_credentials`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CredentialListScalars {
    /// From 1.
    pub page: Option<u32>,
    /// 1 to 5000; default 50.
    pub per_page: Option<u32>,
    /// `created_at`, `updated_at` or `location`, `-` first for descending.
    #[param(pattern = r"^[+-]?(created_at|updated_at|location)$")]
    pub order_by: Option<String>,
    #[serde(rename = "created_ats[lt]")]
    pub created_ats_lt: Option<String>,
    #[serde(rename = "created_ats[lte]")]
    pub created_ats_lte: Option<String>,
    #[serde(rename = "created_ats[gt]")]
    pub created_ats_gt: Option<String>,
    #[serde(rename = "created_ats[gte]")]
    pub created_ats_gte: Option<String>,
    #[serde(rename = "updated_ats[lt]")]
    pub updated_ats_lt: Option<String>,
    #[serde(rename = "updated_ats[lte]")]
    pub updated_ats_lte: Option<String>,
    #[serde(rename = "updated_ats[gt]")]
    pub updated_ats_gt: Option<String>,
    #[serde(rename = "updated_ats[gte]")]
    pub updated_ats_gte: Option<String>,
}

/// The query of `GET /v3/audit_events`: comma-separated lists, ANDed across parameters.
pub struct AuditEventListQuery;

impl IntoParams for AuditEventListQuery {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut parameters = AuditEventListScalars::into_params(parameter_in_provider);
        let types: Vec<&str> = berth_domain::audit::AuditEventType::ALL
            .iter()
            .map(|kind| kind.as_str())
            .collect();
        parameters.extend([
            text_list("types", "Event types", Some(&types)),
            text_list("target_guids", "Target guids", None),
            guid_list("space_guids", "Space guids"),
            guid_list("organization_guids", "Organization guids"),
            timestamp_list("created_ats", "Creation times"),
            timestamp_list("updated_ats", "Update times (an event's creation time)"),
        ]);
        parameters
    }
}

/// The single-valued parameters of `GET /v3/audit_events`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditEventListScalars {
    /// From 1.
    pub page: Option<u32>,
    /// 1 to 5000; default 50.
    pub per_page: Option<u32>,
    /// `created_at` or `updated_at`, `-` first for descending.
    #[param(pattern = r"^[+-]?(created_at|updated_at)$")]
    pub order_by: Option<String>,
    #[serde(rename = "created_ats[lt]")]
    pub created_ats_lt: Option<String>,
    #[serde(rename = "created_ats[lte]")]
    pub created_ats_lte: Option<String>,
    #[serde(rename = "created_ats[gt]")]
    pub created_ats_gt: Option<String>,
    #[serde(rename = "created_ats[gte]")]
    pub created_ats_gte: Option<String>,
    #[serde(rename = "updated_ats[lt]")]
    pub updated_ats_lt: Option<String>,
    #[serde(rename = "updated_ats[lte]")]
    pub updated_ats_lte: Option<String>,
    #[serde(rename = "updated_ats[gt]")]
    pub updated_ats_gt: Option<String>,
    #[serde(rename = "updated_ats[gte]")]
    pub updated_ats_gte: Option<String>,
}

/// The query of `GET /v3/organizations`.
pub struct OrganizationListQuery;

impl IntoParams for OrganizationListQuery {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        directory_params(parameter_in_provider, None)
    }
}

/// `PUT /v3/roles/{guid}`: Cloud Foundry's role create body. `relationships` names the `user`
/// and the `organization` of an organization role or the `space` of a space role.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// One of `organization_user`, `organization_auditor`, `organization_manager`,
    /// `organization_billing_manager`, `space_auditor`, `space_developer`, `space_manager`,
    /// `space_supporter`.
    #[schema(
        pattern = r"^(organization_(user|auditor|manager|billing_manager)|space_(auditor|developer|manager|supporter))$"
    )]
    #[serde(rename = "type")]
    pub type_: String,
    pub relationships: RoleRelationshipsBody,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRelationshipsBody {
    /// The user's UAA id (`user_id` of its tokens): 1 to 255 visible characters.
    pub user: UserRelationshipData,
    pub organization: Option<RelationshipData>,
    pub space: Option<RelationshipData>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserRelationshipData {
    pub data: UserGuidData,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserGuidData {
    #[schema(min_length = 1, max_length = 200, pattern = r"^[!-~]+$")]
    pub guid: String,
}

/// The query of `GET /v3/roles`.
pub struct RoleListQuery;

impl IntoParams for RoleListQuery {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut parameters = RoleListScalars::into_params(parameter_in_provider);
        parameters.push(guid_list("guids", "Guids"));
        parameters.push(text_list(
            "types",
            "Role types",
            Some(&[
                "organization_user",
                "organization_auditor",
                "organization_manager",
                "organization_billing_manager",
                "space_auditor",
                "space_developer",
                "space_manager",
                "space_supporter",
            ]),
        ));
        parameters.push(text_list("user_guids", "User guids", None));
        parameters.push(guid_list("organization_guids", "Organization guids"));
        parameters.push(guid_list("space_guids", "Space guids"));
        parameters
    }
}

/// The single-valued parameters of the role list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RoleListScalars {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// `created_at` or `updated_at`, `-` first for descending.
    #[param(pattern = r"^[+-]?(created_at|updated_at)$")]
    pub order_by: Option<String>,
}

/// The query of `GET /v3/spaces`.
pub struct SpaceListQuery;

impl IntoParams for SpaceListQuery {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        directory_params(
            parameter_in_provider,
            Some(("organization_guids", "Organization guids")),
        )
    }
}

/// The query of `GET /v3/apps`.
pub struct AppListQuery;

impl IntoParams for AppListQuery {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        directory_params(parameter_in_provider, Some(("space_guids", "Space guids")))
    }
}

fn directory_params(
    parameter_in_provider: impl Fn() -> Option<ParameterIn>,
    parent: Option<(&str, &str)>,
) -> Vec<Parameter> {
    let mut parameters = DirectoryListScalars::into_params(parameter_in_provider);
    parameters.push(guid_list("guids", "Guids"));
    parameters.push(text_list("names", "Names", None));
    parameters.extend(parent.map(|(name, what)| guid_list(name, what)));
    parameters
}

/// The single-valued parameters of the directory lists.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DirectoryListScalars {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// `created_at`, `updated_at` or `name`, `-` first for descending.
    #[param(pattern = r"^[+-]?(created_at|updated_at|name)$")]
    pub order_by: Option<String>,
}

/// A comma-separated list (`style: form`, `explode: false`) of at most
/// [`MAX_LIST_FILTER_VALUES`] items: the bound the query parser enforces.
fn list_param(name: &str, description: String, items: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(format!(
            "{description}, comma-separated; at most {MAX_LIST_FILTER_VALUES}; \
             an empty value matches nothing."
        )))
        .style(Some(ParameterStyle::Form))
        .explode(Some(false))
        .schema(Some(
            ArrayBuilder::new()
                .items(
                    AnyOfBuilder::new().item(items).item(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .max_length(Some(0)),
                    ),
                )
                .max_items(Some(MAX_LIST_FILTER_VALUES)),
        ))
        .build()
}

fn guid_list(name: &str, what: &str) -> Parameter {
    let uuid = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
    list_param(name, what.to_owned(), uuid)
}

fn text_list(name: &str, what: &str, values: Option<&[&str]>) -> Parameter {
    let mut item = ObjectBuilder::new().schema_type(Type::String);
    if let Some(values) = values {
        item = item.enum_values(Some(values.iter().copied()));
    }
    list_param(name, what.to_owned(), item)
}

fn timestamp_list(name: &str, what: &str) -> Parameter {
    let timestamp = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"));
    list_param(name, format!("{what}, `YYYY-MM-DDThh:mm:ssZ`"), timestamp)
}

fn label_selector() -> Parameter {
    ParameterBuilder::new()
        .name("label_selector")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(format!(
            "`k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`; up to \
             {MAX_REQUIREMENTS} requirements, comma-separated, each list of at most \
             {MAX_LIST_VALUES} values."
        )))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnableRegistryBody {
    /// 1 to 1048576; default from `harbor.default_quota_gb`.
    pub quota_gb: Option<u32>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaBody {
    pub quota_gb: u32,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRobotBody {
    /// Lowercase letters and digits separated by single `.`, `_` or `-`.
    #[schema(pattern = r"^[a-z0-9]+([._-][a-z0-9]+)*$")]
    pub name: String,
    pub access: RobotAccessName,
    /// 1 to 3650; none means never.
    pub expires_in_days: Option<u32>,
}

/// A robot's renewal.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRobotBody {
    /// Days from now until the robot expires, 1 to 3650 (Harbor's lifetime, counted from the
    /// robot's creation, is set so that it expires no earlier), or -1: never.
    #[schema(schema_with = renewal_days)]
    pub expires_in_days: i64,
}

/// -1, or 1 to [`berth_domain::registry::MAX_EXPIRES_IN_DAYS`].
fn renewal_days() -> utoipa::openapi::schema::Schema {
    use berth_domain::registry::MAX_EXPIRES_IN_DAYS;
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let days = usize::try_from(MAX_EXPIRES_IN_DAYS).unwrap_or(usize::MAX);
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .enum_values(Some([-1]))
                .description(Some("never expires")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(days)),
        )
        .build()
        .into()
}

/// Whether a robot's login still works.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RobotStatusName {
    Active,
    Expired,
}

/// What a robot may do.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RobotAccessName {
    Pull,
    PushPull,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The rules the validators enforce, written into the document from the same constants, so the
/// two cannot drift: lengths, bounds and the "not blank, no control characters" pattern of
/// names.
struct DomainRules;

/// Not blank (a non-space character somewhere), no control characters.
const NAME_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// One field's rule.
enum Rule {
    /// 1 to `max` characters.
    Text(usize),
    /// 1 to `max` characters, not blank, no control characters.
    Name(usize),
    /// A whole number from 1 to `max`.
    Whole(u64),
}

impl Rule {
    fn apply(&self, object: &mut utoipa::openapi::schema::Object) {
        match *self {
            Rule::Text(max) | Rule::Name(max) => {
                object.min_length = Some(1);
                object.max_length = Some(max);
                if matches!(self, Rule::Name(_)) {
                    object.pattern = Some(NAME_PATTERN.to_owned());
                }
            }
            Rule::Whole(max) => {
                object.minimum = Some(utoipa::Number::UInt(1));
                object.maximum = Some(utoipa::Number::UInt(
                    usize::try_from(max).unwrap_or(usize::MAX),
                ));
            }
        }
    }
}

impl Modify for DomainRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use berth_domain::credential::{MAX_PASSWORD_LEN, MAX_USERNAME_LEN};
        use berth_domain::directory::MAX_NAME_LEN;
        use berth_domain::image_reference::{
            IMAGE_REFERENCE_PATTERN, MAX_REFERENCE_LEN, REGISTRY_HOST_PATTERN,
        };
        use berth_domain::listing::{MAX_PAGE, MAX_PER_PAGE};
        use berth_domain::location::MAX_LOCATION_LEN;
        use berth_domain::registry::{MAX_EXPIRES_IN_DAYS, MAX_QUOTA_GB, MAX_ROBOT_NAME_LEN};
        use utoipa::openapi::schema::ArrayItems;
        use utoipa::openapi::{RefOr, schema::Schema};

        let fields = [
            (
                "CreateCredentialBody",
                "location",
                Rule::Text(MAX_LOCATION_LEN),
            ),
            (
                "CreateCredentialBody",
                "username",
                Rule::Name(MAX_USERNAME_LEN),
            ),
            (
                "CreateCredentialBody",
                "password",
                Rule::Text(MAX_PASSWORD_LEN),
            ),
            (
                "UpdateCredentialBody",
                "username",
                Rule::Name(MAX_USERNAME_LEN),
            ),
            ("OrganizationBody", "name", Rule::Name(MAX_NAME_LEN)),
            ("SpaceBody", "name", Rule::Name(MAX_NAME_LEN)),
            ("AppBody", "name", Rule::Name(MAX_NAME_LEN)),
            ("EnableRegistryBody", "quota_gb", Rule::Whole(MAX_QUOTA_GB)),
            ("QuotaBody", "quota_gb", Rule::Whole(MAX_QUOTA_GB)),
            ("CreateRobotBody", "name", Rule::Text(MAX_ROBOT_NAME_LEN)),
            (
                "CreateRobotBody",
                "expires_in_days",
                Rule::Whole(MAX_EXPIRES_IN_DAYS),
            ),
        ];
        if let Some(components) = openapi.components.as_mut() {
            for (schema, field, rule) in &fields {
                if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(*schema)
                    && let Some(RefOr::T(Schema::Object(property))) =
                        body.properties.get_mut(*field)
                {
                    rule.apply(property);
                }
            }
        }
        // Each entry of a pull-secret body: the grammar's pattern and the parser's bound.
        let entries = [
            ("images", IMAGE_REFERENCE_PATTERN),
            ("registries", REGISTRY_HOST_PATTERN),
        ];
        if let Some(components) = openapi.components.as_mut()
            && let Some(RefOr::T(Schema::Object(body))) =
                components.schemas.get_mut("PullSecretsBody")
        {
            for (field, pattern) in entries {
                if let Some(RefOr::T(Schema::Array(list))) = body.properties.get_mut(field)
                    && let ArrayItems::RefOrSchema(item) = &mut list.items
                    && let RefOr::T(Schema::Object(item)) = item.as_mut()
                {
                    item.min_length = Some(1);
                    item.max_length = Some(MAX_REFERENCE_LEN);
                    item.pattern = Some(pattern.to_owned());
                }
            }
        }
        let paging = [
            ("page", Rule::Whole(u64::from(MAX_PAGE))),
            ("per_page", Rule::Whole(u64::from(MAX_PER_PAGE))),
        ];
        for item in openapi.paths.paths.values_mut() {
            let Some(list) = item.get.as_mut() else {
                continue;
            };
            for parameter in list.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter
                    && let Some((_, rule)) = paging.iter().find(|(name, _)| parameter.name == *name)
                    && let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut()
                {
                    rule.apply(schema);
                }
            }
        }
    }
}

// Answers many operations share, written once and named in each operation's `responses(...)`.

/// Every V3 operation: the caller is not authenticated, or the database is down.
#[derive(utoipa::IntoResponses)]
pub enum V3Unauthenticated {
    #[response(status = 401, description = "No token, or an invalid one")]
    NotAuthenticated(V3ErrorBody),
    #[response(status = 503, description = "The database is unavailable")]
    Unavailable(V3ErrorBody),
}

/// V3 operations with a body: not a JSON object, too large, or a field refused.
#[derive(utoipa::IntoResponses)]
pub enum V3BodyRefused {
    #[response(status = 400, description = "The body is not a JSON object")]
    NotAnObject(V3ErrorBody),
    #[response(status = 413, description = "The body is over 1 MiB")]
    TooLarge(V3ErrorBody),
    #[response(
        status = 422,
        description = "A field is invalid, unknown, or a uniqueness rule is broken"
    )]
    Unprocessable(V3ErrorBody),
}

/// V3 lists: a query parameter refused.
#[derive(utoipa::IntoResponses)]
pub enum V3QueryRefused {
    #[response(status = 400, description = "A query parameter is invalid")]
    BadQueryParameter(V3ErrorBody),
}

/// V3 operations on one resource: unknown, or not visible to the caller.
#[derive(utoipa::IntoResponses)]
pub enum V3NotVisible {
    #[response(status = 404, description = "Not found, or not visible to the caller")]
    NotFound(V3ErrorBody),
}

/// V3 writes: the caller may read the resource but not change it.
#[derive(utoipa::IntoResponses)]
pub enum V3NotWritable {
    #[response(status = 403, description = "Readable but not writable")]
    NotAuthorized(V3ErrorBody),
}

/// Pull-secret resolution: the caller lacks the scope `berth.pull_secrets`.
#[derive(utoipa::IntoResponses)]
pub enum V3PullSecretsScope {
    #[response(
        status = 403,
        description = "The caller lacks the scope berth.pull_secrets"
    )]
    NotAuthorized(V3ErrorBody),
}

/// Every v1 operation: not authenticated, an unknown or invisible organization, registry or
/// robot, or Harbor or the database down.
#[derive(utoipa::IntoResponses)]
pub enum V1Always {
    #[response(status = 401, description = "unauthorized")]
    Unauthorized(V1ErrorBody),
    #[response(
        status = 404,
        description = "organization_not_found, registry_not_found or robot_credential_not_found"
    )]
    NotFound(V1ErrorBody),
    #[response(
        status = 503,
        description = "harbor_unavailable or database_unavailable"
    )]
    Unavailable(V1ErrorBody),
}

/// v1 operations with a body: not JSON, too large, or a field refused.
#[derive(utoipa::IntoResponses)]
pub enum V1BodyRefused {
    #[response(status = 400, description = "invalid_json")]
    InvalidJson(V1ErrorBody),
    #[response(status = 413, description = "payload_too_large")]
    PayloadTooLarge(V1ErrorBody),
    #[response(status = 422, description = "validation_failed")]
    ValidationFailed(V1ErrorBody),
}

/// v1 writes: the caller may read the registry but not change it.
#[derive(utoipa::IntoResponses)]
pub enum V1NotWritable {
    #[response(status = 403, description = "forbidden")]
    Forbidden(V1ErrorBody),
}

/// v1 writes that meet the registry in another state, or another request holding it.
#[derive(utoipa::IntoResponses)]
pub enum V1Conflict {
    #[response(
        status = 409,
        description = "registry_already_enabled, registry_provisioning, harbor_project_conflict, \
                       robot_name_taken, managed_robot, purge_blocked or registry_busy"
    )]
    Conflict(V1ErrorBody),
}

/// What every operation shares, said once: its path ids are guids (anything else is a 404, as
/// in Cloud Foundry), and an internal failure answers 500 in the dialect's envelope, with no
/// internals in the body. The health routes have neither.
struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{Operation, ParameterIn};
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

        for (path, item) in openapi.paths.paths.iter_mut() {
            let envelope = if path.starts_with("/api/v1/") {
                ("V1ErrorBody", "internal_error")
            } else if path.starts_with("/v3/") {
                ("V3ErrorBody", "UnknownError (10001)")
            } else {
                continue;
            };
            let operations: [&mut Option<Operation>; 4] = [
                &mut item.get,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            let post = &mut item.post;
            for operation in operations.into_iter().chain([post]).flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let RefOr::T(parameter) = parameter
                        && matches!(parameter.parameter_in, ParameterIn::Path)
                    {
                        parameter.schema = Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                                .into(),
                        );
                    }
                }
                operation.responses.responses.insert(
                    "500".to_owned(),
                    ResponseBuilder::new()
                        .description(format!(
                            "{}: an internal failure (the cause is logged, never shown)",
                            envelope.1
                        ))
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(envelope.0)))
                                .build(),
                        )
                        .build()
                        .into(),
                );
            }
        }
    }
}

/// The routes of `one_time_secrets`: the `Idempotency-Key` header and its answers, and the
/// headers of answers that carry a secret, documented from the middleware's own list.
struct OneTimeSecrets;

impl Modify for OneTimeSecrets {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};

        use crate::one_time_secrets::{Dialect, GUARDED_ROUTES};

        for route in GUARDED_ROUTES {
            let Some(operation) = openapi
                .paths
                .paths
                .get_mut(route.pattern)
                .and_then(|item| item.post.as_mut())
            else {
                continue;
            };
            operation.parameters.get_or_insert_with(Vec::new).push(
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(format!(
                        "IETF httpapi Idempotency-Key: a quoted string (or the same characters \
                         unquoted), 1 to {} printable ASCII characters. The same key and request \
                         from the same caller within 24 hours replay the first successful answer \
                         (with `Idempotent-Replayed: true`); another request with the key is 422; \
                         while the first runs, 409.",
                        berth_domain::idempotency::MAX_KEY_LEN
                    )))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some(format!(
                                r#"^("[ !#-\[\]-~]{{1,{max}}}"|[!#-\[\]-~]{{1,{max}}})$"#,
                                max = berth_domain::idempotency::MAX_KEY_LEN
                            ))),
                    ))
                    .build()
                    .into(),
            );
            let (schema, malformed, reused, in_flight) = match route.dialect {
                Dialect::V3 => (
                    "V3ErrorBody",
                    "CF-InvalidRequest (10004): a malformed or repeated Idempotency-Key",
                    "CF-UnprocessableEntity (10008): the Idempotency-Key was used for another request",
                    "CF-InvalidRequest (10004): a request with this Idempotency-Key is in progress",
                ),
                Dialect::V1 => (
                    "V1ErrorBody",
                    "invalid_idempotency_key",
                    "idempotency_key_reused",
                    "idempotency_key_in_flight",
                ),
            };
            for (status, text) in [("400", malformed), ("422", reused), ("409", in_flight)] {
                let responses = &mut operation.responses.responses;
                let description = match responses.get(status) {
                    Some(RefOr::T(existing)) => format!("{}; or {text}", existing.description),
                    _ => text.to_owned(),
                };
                responses.insert(
                    status.to_owned(),
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(schema)))
                                .build(),
                        )
                        .into(),
                );
            }
            for (status, response) in operation.responses.responses.iter_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                if status.starts_with('2') {
                    response.headers.insert(
                        "Idempotent-Replayed".to_owned(),
                        HeaderBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .description(Some(
                                "`true` on an answer replayed for an Idempotency-Key",
                            ))
                            .build()
                            .into(),
                    );
                }
                if route.carries_secret {
                    response.headers.insert(
                        "Cache-Control".to_owned(),
                        HeaderBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .description(Some("`no-store`: the answer may carry a one-time secret"))
                            .build()
                            .into(),
                    );
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth", description = "Registry credentials (Cloud Foundry V3) and organization registries on Harbor."),
    paths(
        crate::v3::registry_credentials::create,
        crate::v3::registry_credentials::list,
        crate::v3::registry_credentials::show,
        crate::v3::registry_credentials::update,
        crate::v3::registry_credentials::delete,
        crate::v3::pull_secrets::resolve,
        crate::v3::pull_secrets::explain,
        crate::v3::credential_verification::verify,
        crate::v3::directory::put_organization,
        crate::v3::directory::show_organization,
        crate::v3::directory::list_organizations,
        crate::v3::directory::delete_organization,
        crate::v3::directory::put_space,
        crate::v3::directory::show_space,
        crate::v3::directory::list_spaces,
        crate::v3::directory::delete_space,
        crate::v3::directory::put_app,
        crate::v3::directory::show_app,
        crate::v3::directory::list_apps,
        crate::v3::directory::delete_app,
        crate::v3::audit_events::list,
        crate::v3::audit_events::show,
        crate::v3::roles::put,
        crate::v3::roles::show,
        crate::v3::roles::list,
        crate::v3::roles::delete,
        crate::v1::registry::enable,
        crate::v1::registry::show,
        crate::v1::registry::update,
        crate::v1::registry::disable,
        crate::v1::registry::list_robots,
        crate::v1::registry::create_robot,
        crate::v1::registry::rotate_robot,
        crate::v1::registry::delete_robot,
        crate::v1::registry::renew_robot,
        crate::v1::registry::rotate_pull_credential,
        crate::health::healthz,
        crate::health::readyz,
    ),
    // The error envelopes are named by the shared answers above, which do not collect schemas.
    components(schemas(V3ErrorBody, V1ErrorBody)),
    modifiers(&BearerAuth, &SharedAnswers, &DomainRules, &OneTimeSecrets),
    security(("bearer" = [])),
    tags(
        (name = "registry_credentials", description = "Cloud Foundry V3 registry credentials"),
        (name = "directory", description = "Organizations, spaces and apps, kept in sync by the platform"),
        (name = "roles", description = "Users' organization and space roles, kept in the directory"),
        (name = "registries", description = "Organization registries on Harbor"),
        (name = "audit_events", description = "Who changed or read what (Cloud Foundry's audit events)"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// The document as served and as committed in `docs/openapi.json`.
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| String::from("{}"))
}

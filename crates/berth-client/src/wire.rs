//! The wire shapes of Berth's V3 credential routes, as `serde` types.
//!
//! Answers are read leniently (fields Berth may add later are ignored); requests are written
//! exactly as the API documents them. Secrets are [`SecretString`]s: redacted in `Debug`, and
//! exposed only while a request body is written.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

/// What a credential is scoped to, or the context a resolution is asked in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Context {
    /// No relationship: foundation credentials only.
    #[default]
    Foundation,
    Organization(Uuid),
    Space(Uuid),
    App(Uuid),
}

impl Context {
    fn relationship(&self) -> Option<(&'static str, Uuid)> {
        match *self {
            Self::Foundation => None,
            Self::Organization(guid) => Some(("organization", guid)),
            Self::Space(guid) => Some(("space", guid)),
            Self::App(guid) => Some(("app", guid)),
        }
    }
}

/// `{"<kind>": {"data": {"guid": "..."}}}`, the relationships object of create and resolve.
struct Relationships(Context);

impl Serialize for Relationships {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Data {
            data: GuidRef,
        }
        let mut map = serializer.serialize_map(None)?;
        if let Some((kind, guid)) = self.0.relationship() {
            map.serialize_entry(
                kind,
                &Data {
                    data: GuidRef { guid },
                },
            )?;
        }
        map.end()
    }
}

/// A credential's scope level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scope {
    Foundation,
    Organization,
    Space,
    App,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Foundation => "foundation",
            Self::Organization => "organization",
            Self::Space => "space",
            Self::App => "app",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuidRef {
    pub guid: Uuid,
}

/// A to-one relationship: `{"data": {"guid"}}` or `{"data": null}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ToOne {
    pub data: Option<GuidRef>,
}

impl ToOne {
    pub fn guid(&self) -> Option<Uuid> {
        self.data.map(|data| data.guid)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CredentialRelationships {
    pub organization: ToOne,
    pub space: ToOne,
    pub app: ToOne,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Link {
    pub href: String,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CredentialLinks {
    #[serde(rename = "self")]
    pub self_: Link,
    pub organization: Option<Link>,
    pub space: Option<Link>,
    pub app: Option<Link>,
}

/// A registry credential as Berth shows it. The password is write-only: never in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Credential {
    pub guid: Uuid,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    pub created_at: String,
    pub updated_at: String,
    /// `host[:port][/path]`.
    pub location: String,
    pub username: String,
    pub scope: Scope,
    pub relationships: CredentialRelationships,
    pub metadata: Metadata,
    pub links: CredentialLinks,
}

/// `POST /v3/registry_credentials`.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// `host[:port][/path]`, no scheme.
    pub location: String,
    pub username: String,
    pub password: SecretString,
    /// Foundation (no relationship), or the organization, space or app that owns it.
    pub owner: Context,
    pub metadata: Option<Metadata>,
}

impl Serialize for NewCredential {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("location", &self.location)?;
        map.serialize_entry("username", &self.username)?;
        map.serialize_entry("password", self.password.expose_secret())?;
        if self.owner != Context::Foundation {
            map.serialize_entry("relationships", &Relationships(self.owner))?;
        }
        if let Some(metadata) = &self.metadata {
            map.serialize_entry("metadata", metadata)?;
        }
        map.end()
    }
}

/// Label or annotation changes: a value sets the key, `None` deletes it; absent keys stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetadataPatch {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, Option<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Option<String>>,
}

/// `PATCH /v3/registry_credentials/{guid}`: only what is `Some` changes.
#[derive(Debug, Clone, Default)]
pub struct CredentialUpdate {
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub metadata: Option<MetadataPatch>,
}

impl Serialize for CredentialUpdate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(username) = &self.username {
            map.serialize_entry("username", username)?;
        }
        if let Some(password) = &self.password {
            map.serialize_entry("password", password.expose_secret())?;
        }
        if let Some(metadata) = &self.metadata {
            map.serialize_entry("metadata", metadata)?;
        }
        map.end()
    }
}

/// A timestamp filter of a list: `created_ats=T1,T2` or `created_ats[gt]=T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampFilter {
    /// Any of these instants (`YYYY-MM-DDThh:mm:ssZ`).
    Equal(Vec<String>),
    LessThan(String),
    LessThanOrEqual(String),
    GreaterThan(String),
    GreaterThanOrEqual(String),
}

impl TimestampFilter {
    fn pairs(&self, name: &str) -> (String, String) {
        match self {
            Self::Equal(values) => (name.to_owned(), values.join(",")),
            Self::LessThan(value) => (format!("{name}[lt]"), value.clone()),
            Self::LessThanOrEqual(value) => (format!("{name}[lte]"), value.clone()),
            Self::GreaterThan(value) => (format!("{name}[gt]"), value.clone()),
            Self::GreaterThanOrEqual(value) => (format!("{name}[gte]"), value.clone()),
        }
    }
}

/// The order of a list: a field, ascending unless `descending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    CreatedAt,
    UpdatedAt,
    Location,
}

/// `GET /v3/registry_credentials` filters and paging. Empty filters are left out; values of one
/// filter are ORed, filters are ANDed (Cloud Foundry's rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialQuery {
    pub guids: Vec<Uuid>,
    pub organization_guids: Vec<Uuid>,
    pub space_guids: Vec<Uuid>,
    pub app_guids: Vec<Uuid>,
    pub scopes: Vec<Scope>,
    pub locations: Vec<String>,
    pub label_selector: Option<String>,
    pub created_ats: Option<TimestampFilter>,
    pub updated_ats: Option<TimestampFilter>,
    /// 1-based; Berth's default is 1.
    pub page: Option<u32>,
    /// 1..=5000; Berth's default is 50.
    pub per_page: Option<u32>,
    /// The field and whether descending.
    pub order_by: Option<(OrderField, bool)>,
}

impl CredentialQuery {
    /// The query string's pairs, in a stable order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        fn joined<T: ToString>(values: &[T]) -> String {
            values
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }
        let mut pairs = Vec::new();
        let mut push = |name: &str, value: String| pairs.push((name.to_owned(), value));
        if !self.guids.is_empty() {
            push("guids", joined(&self.guids));
        }
        if !self.organization_guids.is_empty() {
            push("organization_guids", joined(&self.organization_guids));
        }
        if !self.space_guids.is_empty() {
            push("space_guids", joined(&self.space_guids));
        }
        if !self.app_guids.is_empty() {
            push("app_guids", joined(&self.app_guids));
        }
        if !self.scopes.is_empty() {
            push("scopes", joined(&self.scopes));
        }
        if !self.locations.is_empty() {
            push("locations", self.locations.join(","));
        }
        if let Some(selector) = &self.label_selector {
            push("label_selector", selector.clone());
        }
        if let Some(page) = self.page {
            push("page", page.to_string());
        }
        if let Some(per_page) = self.per_page {
            push("per_page", per_page.to_string());
        }
        if let Some((field, descending)) = self.order_by {
            let name = match field {
                OrderField::CreatedAt => "created_at",
                OrderField::UpdatedAt => "updated_at",
                OrderField::Location => "location",
            };
            push(
                "order_by",
                format!("{}{name}", if descending { "-" } else { "" }),
            );
        }
        for (name, filter) in [
            ("created_ats", &self.created_ats),
            ("updated_ats", &self.updated_ats),
        ] {
            if let Some(filter) = filter {
                pairs.push(filter.pairs(name));
            }
        }
        pairs
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Href {
    pub href: String,
}

/// Cloud Foundry's pagination object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Pagination {
    pub total_results: u64,
    pub total_pages: u64,
    pub first: Href,
    pub last: Href,
    pub next: Option<Href>,
    pub previous: Option<Href>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Page<T> {
    pub pagination: Pagination,
    pub resources: Vec<T>,
}

/// The body of `actions/resolve` and `actions/explain`: image references and bare registries
/// (`host[:port]`), 1..=100 together, asked in one context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveRequest {
    pub images: Vec<String>,
    pub registries: Vec<String>,
    pub context: Context,
}

impl Serialize for ResolveRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if !self.images.is_empty() {
            map.serialize_entry("images", &self.images)?;
        }
        if !self.registries.is_empty() {
            map.serialize_entry("registries", &self.registries)?;
        }
        if self.context != Context::Foundation {
            map.serialize_entry("relationships", &Relationships(self.context))?;
        }
        map.end()
    }
}

/// The credential a resolution chose.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChosenCredential {
    pub guid: Uuid,
    pub location: String,
    pub scope: Scope,
}

/// One entry of `resolutions`, in the order of the request (images, then registries).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Resolution {
    /// The image reference as asked (for an image entry).
    #[serde(default)]
    pub image: Option<String>,
    /// The registry as asked (for a registry entry).
    #[serde(default)]
    pub registry: Option<String>,
    /// The normalized reference or registry (`docker.io/library/nginx`, `host:5000`).
    pub normalized: String,
    /// `None`: no credential matches; the image is pulled anonymously.
    pub credential: Option<ChosenCredential>,
    /// The `docker_config.auths` key of the chosen credential.
    #[serde(default)]
    pub key: Option<String>,
}

/// One `auths` entry of a `.dockerconfigjson`.
#[derive(Clone, Deserialize)]
pub struct DockerAuth {
    pub username: String,
    pub password: SecretString,
    /// base64(`username:password`).
    pub auth: SecretString,
}

impl fmt::Debug for DockerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Serialize for DockerAuth {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("username", &self.username)?;
        map.serialize_entry("password", self.password.expose_secret())?;
        map.serialize_entry("auth", self.auth.expose_secret())?;
        map.end()
    }
}

/// Exactly a `.dockerconfigjson` document: serialize it to write a pull secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DockerConfig {
    pub auths: BTreeMap<String, DockerAuth>,
}

/// The answer of `actions/resolve`.
#[derive(Debug, Clone, Deserialize)]
pub struct Resolved {
    pub resolutions: Vec<Resolution>,
    pub docker_config: DockerConfig,
}

impl Resolved {
    /// The `auths` entry a resolution chose, if it chose one.
    pub fn auth_of(&self, resolution: &Resolution) -> Option<(&str, &DockerAuth)> {
        resolution.credential.as_ref()?;
        let key = resolution.key.as_deref()?;
        self.docker_config
            .auths
            .get_key_value(key)
            .map(|(key, auth)| (key.as_str(), auth))
    }
}

/// One level searched by `actions/explain`: its scope, its owner (`None` for the foundation) and
/// the candidate locations looked up there, most specific first.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExplainedLevel {
    pub level: Scope,
    pub owner_guid: Option<Uuid>,
    pub candidates: Vec<String>,
}

/// One entry of `actions/explain`: resolve's choice without secrets, and the levels searched in
/// order, up to the winner's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Explanation {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub registry: Option<String>,
    pub normalized: String,
    pub levels: Vec<ExplainedLevel>,
    pub credential: Option<ChosenCredential>,
    #[serde(default)]
    pub key: Option<String>,
}

/// The answer of `actions/explain`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Explained {
    pub resolutions: Vec<Explanation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_written_as_the_api_documents_them() {
        let guid = Uuid::new_v4();
        let body = serde_json::to_value(NewCredential {
            location: "registry.example.com/team".into(),
            username: "u".into(),
            password: SecretString::from("p"),
            owner: Context::Space(guid),
            metadata: None,
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "location": "registry.example.com/team", "username": "u", "password": "p",
                "relationships": {"space": {"data": {"guid": guid}}}
            })
        );
        let body = serde_json::to_value(ResolveRequest {
            images: Vec::new(),
            registries: vec!["host:5000".into()],
            context: Context::Foundation,
        })
        .unwrap();
        assert_eq!(body, serde_json::json!({"registries": ["host:5000"]}));
        let mut labels = BTreeMap::new();
        labels.insert("gone".to_owned(), None);
        let body = serde_json::to_value(CredentialUpdate {
            metadata: Some(MetadataPatch {
                labels,
                ..MetadataPatch::default()
            }),
            ..CredentialUpdate::default()
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"metadata": {"labels": {"gone": null}}})
        );
    }

    #[test]
    fn a_query_joins_values_and_writes_relational_operators() {
        let query = CredentialQuery {
            scopes: vec![Scope::Space, Scope::App],
            order_by: Some((OrderField::Location, true)),
            created_ats: Some(TimestampFilter::GreaterThan("2026-01-01T00:00:00Z".into())),
            per_page: Some(5000),
            ..CredentialQuery::default()
        };
        assert_eq!(
            query.pairs(),
            vec![
                ("scopes".to_owned(), "space,app".to_owned()),
                ("per_page".to_owned(), "5000".to_owned()),
                ("order_by".to_owned(), "-location".to_owned()),
                (
                    "created_ats[gt]".to_owned(),
                    "2026-01-01T00:00:00Z".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_docker_auth_keeps_its_password_out_of_debug() {
        let auth: DockerAuth =
            serde_json::from_str(r#"{"username":"u","password":"hunter2","auth":"dTpodW50ZXIy"}"#)
                .unwrap();
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("dTpodW50ZXIy"),
            "{shown}"
        );
    }
}

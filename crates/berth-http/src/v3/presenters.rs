//! V3 wire shapes: resources, links and the pagination object.

use std::collections::BTreeMap;

use berth_domain::actor::RoleTarget;
use berth_domain::credential::RegistryCredential;
use berth_domain::directory::{App, Organization, Space};
use berth_domain::listing::{Page, PageRequest};
use berth_domain::metadata::Metadata;
use berth_domain::roles::RoleAssignment;
use serde::Serialize;

use super::query::format_timestamp;

/// Builds absolute hrefs from the configured external URL.
#[derive(Debug, Clone)]
pub struct Links {
    base: String,
}

impl Links {
    pub fn new(external_url: &str) -> Self {
        Self {
            base: external_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn href(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn link(&self, path: &str) -> Link {
        Link {
            href: self.href(path),
            method: "GET",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Link {
    pub href: String,
    pub method: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Href {
    pub href: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ToOne {
    pub data: Option<GuidRef>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GuidRef {
    #[schema(format = Uuid)]
    pub guid: String,
}

fn to_one(guid: Option<impl ToString>) -> ToOne {
    ToOne {
        data: guid.map(|guid| GuidRef {
            guid: guid.to_string(),
        }),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetadataBody {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl From<&Metadata> for MetadataBody {
    fn from(metadata: &Metadata) -> Self {
        Self {
            labels: metadata
                .labels()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: metadata
                .annotations()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

fn empty_metadata() -> MetadataBody {
    MetadataBody {
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialRelationships {
    pub organization: ToOne,
    pub space: ToOne,
    pub app: ToOne,
}

/// `organization`, `space` and `app` are absent (never `null`) when the credential has no such
/// relationship.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialLinks {
    #[serde(rename = "self")]
    pub self_: Link,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub organization: Option<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub space: Option<Link>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub app: Option<Link>,
}

/// What a credential is scoped to: the foundation, or one organization, space or app.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialScopeName {
    Foundation,
    Organization,
    Space,
    App,
}

/// A registry credential as the V3 API shows it. The password is never part of it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CredentialResource {
    #[schema(format = Uuid)]
    pub guid: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub location: String,
    pub username: String,
    #[schema(value_type = CredentialScopeName)]
    pub scope: &'static str,
    pub relationships: CredentialRelationships,
    pub metadata: MetadataBody,
    pub links: CredentialLinks,
}

impl CredentialResource {
    pub fn new(credential: &RegistryCredential, links: &Links) -> Self {
        let target = &credential.target;
        Self {
            guid: credential.guid.to_string(),
            created_at: format_timestamp(credential.created_at),
            updated_at: format_timestamp(credential.updated_at),
            location: credential.location.to_string(),
            username: credential.username.as_str().to_owned(),
            scope: credential.scope().as_str(),
            relationships: CredentialRelationships {
                organization: to_one(target.organization()),
                space: to_one(target.space()),
                app: to_one(target.app()),
            },
            metadata: MetadataBody::from(&credential.metadata),
            links: CredentialLinks {
                self_: links.link(&format!("/v3/registry_credentials/{}", credential.guid)),
                organization: target
                    .organization()
                    .map(|g| links.link(&format!("/v3/organizations/{g}"))),
                space: target
                    .space()
                    .map(|g| links.link(&format!("/v3/spaces/{g}"))),
                app: target.app().map(|g| links.link(&format!("/v3/apps/{g}"))),
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SelfLinks {
    #[serde(rename = "self")]
    pub self_: Link,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationResource {
    #[schema(format = Uuid)]
    pub guid: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub name: String,
    pub metadata: MetadataBody,
    pub links: SelfLinks,
}

impl OrganizationResource {
    pub fn new(organization: &Organization, links: &Links) -> Self {
        Self {
            guid: organization.guid.to_string(),
            created_at: format_timestamp(organization.created_at),
            updated_at: format_timestamp(organization.updated_at),
            name: organization.name.as_str().to_owned(),
            metadata: empty_metadata(),
            links: SelfLinks {
                self_: links.link(&format!("/v3/organizations/{}", organization.guid)),
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpaceRelationships {
    pub organization: ToOne,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpaceLinks {
    #[serde(rename = "self")]
    pub self_: Link,
    pub organization: Link,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SpaceResource {
    #[schema(format = Uuid)]
    pub guid: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub name: String,
    pub relationships: SpaceRelationships,
    pub metadata: MetadataBody,
    pub links: SpaceLinks,
}

impl SpaceResource {
    pub fn new(space: &Space, links: &Links) -> Self {
        Self {
            guid: space.guid.to_string(),
            created_at: format_timestamp(space.created_at),
            updated_at: format_timestamp(space.updated_at),
            name: space.name.as_str().to_owned(),
            relationships: SpaceRelationships {
                organization: to_one(Some(space.organization)),
            },
            metadata: empty_metadata(),
            links: SpaceLinks {
                self_: links.link(&format!("/v3/spaces/{}", space.guid)),
                organization: links.link(&format!("/v3/organizations/{}", space.organization)),
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppRelationships {
    pub space: ToOne,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppLinks {
    #[serde(rename = "self")]
    pub self_: Link,
    pub space: Link,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppResource {
    #[schema(format = Uuid)]
    pub guid: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub name: String,
    pub relationships: AppRelationships,
    pub metadata: MetadataBody,
    pub links: AppLinks,
}

impl AppResource {
    pub fn new(app: &App, links: &Links) -> Self {
        Self {
            guid: app.guid.to_string(),
            created_at: format_timestamp(app.created_at),
            updated_at: format_timestamp(app.updated_at),
            name: app.name.as_str().to_owned(),
            relationships: AppRelationships {
                space: to_one(Some(app.space)),
            },
            metadata: empty_metadata(),
            links: AppLinks {
                self_: links.link(&format!("/v3/apps/{}", app.guid)),
                space: links.link(&format!("/v3/spaces/{}", app.space)),
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pagination {
    pub total_results: u64,
    pub total_pages: u64,
    pub first: Href,
    pub last: Href,
    pub next: Option<Href>,
    pub previous: Option<Href>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleRelationships {
    pub user: ToOne,
    pub organization: ToOne,
    pub space: ToOne,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleLinks {
    #[serde(rename = "self")]
    pub self_: Link,
    /// The organization of an organization role. (No `user` link: Berth serves no users.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<Link>,
    /// The space of a space role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<Link>,
}

/// Cloud Foundry's role resource: an organization role has `space: {"data": null}`, a space
/// role `organization: {"data": null}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoleResource {
    #[schema(format = Uuid)]
    pub guid: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Such as `space_developer`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub relationships: RoleRelationships,
    pub links: RoleLinks,
}

impl RoleResource {
    pub fn new(role: &RoleAssignment, links: &Links) -> Self {
        let (organization, space) = match role.role.target() {
            RoleTarget::Organization(organization) => (Some(organization), None),
            RoleTarget::Space(space) => (None, Some(space)),
        };
        Self {
            guid: role.guid.to_string(),
            created_at: format_timestamp(role.created_at),
            updated_at: format_timestamp(role.updated_at),
            type_: role.role.role_type().as_str(),
            relationships: RoleRelationships {
                user: to_one(Some(&role.user)),
                organization: to_one(organization),
                space: to_one(space),
            },
            links: RoleLinks {
                self_: links.link(&format!("/v3/roles/{}", role.guid)),
                organization: organization
                    .map(|guid| links.link(&format!("/v3/organizations/{guid}"))),
                space: space.map(|guid| links.link(&format!("/v3/spaces/{guid}"))),
            },
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListBody<T> {
    pub pagination: Pagination,
    pub resources: Vec<T>,
}

impl<T> ListBody<T> {
    /// Wraps a page; links repeat every filter given, with keys in alphabetical order.
    pub fn new<D>(
        page: &Page<D>,
        request: PageRequest,
        path: &str,
        params: &[(String, String)],
        links: &Links,
        present: impl Fn(&D) -> T,
    ) -> Self {
        let total_pages = request.total_pages(page.total_results);
        let href = |number: u64| {
            let mut pairs: Vec<(String, String)> = params.to_vec();
            pairs.push(("page".into(), number.to_string()));
            pairs.push(("per_page".into(), request.per_page().to_string()));
            pairs.sort();
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            Href {
                href: links.href(&format!("{path}?{query}")),
            }
        };
        let current = u64::from(request.page());
        Self {
            pagination: Pagination {
                total_results: page.total_results,
                total_pages,
                first: href(1),
                last: href(total_pages),
                next: (current < total_pages).then(|| href(current + 1)),
                previous: (current > 1).then(|| href(current - 1)),
            },
            resources: page.items.iter().map(present).collect(),
        }
    }
}

/// Who did it, or what it was done to (`{guid, type, name}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditParty {
    pub guid: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventLinks {
    #[serde(rename = "self")]
    pub self_: Href,
}

/// An audit event as Cloud Foundry presents one (`event_presenter.rb`): `updated_at` is
/// `created_at` (events never change), `space` and `organization` are `null` outside one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventResource {
    #[schema(format = Uuid)]
    pub guid: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: AuditParty,
    pub target: AuditParty,
    /// The request's fields, every secret replaced by `[PRIVATE DATA HIDDEN]`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub space: Option<GuidRef>,
    pub organization: Option<GuidRef>,
    pub links: AuditEventLinks,
}

impl AuditEventResource {
    pub fn new(event: &berth_domain::audit::AuditEvent, links: &Links) -> Self {
        use berth_domain::audit::{AuditData, AuditValue, PRIVATE_DATA_HIDDEN};
        fn object(data: &AuditData) -> serde_json::Value {
            serde_json::Value::Object(
                data.entries()
                    .map(|(key, value)| {
                        let value = match value {
                            AuditValue::Text(text) => serde_json::Value::from(text.as_str()),
                            AuditValue::Integer(number) => serde_json::Value::from(*number),
                            AuditValue::Bool(flag) => serde_json::Value::from(*flag),
                            AuditValue::Hidden => serde_json::Value::from(PRIVATE_DATA_HIDDEN),
                            AuditValue::Map(inner) => object(inner),
                        };
                        (key.clone(), value)
                    })
                    .collect(),
            )
        }
        let guid = event.guid.to_string();
        let at = format_timestamp(event.created_at);
        Self {
            links: AuditEventLinks {
                self_: Href {
                    href: links.href(&format!("/v3/audit_events/{guid}")),
                },
            },
            guid,
            created_at: at.clone(),
            updated_at: format_timestamp(event.updated_at()),
            kind: event.event_type.as_str().to_owned(),
            actor: AuditParty {
                guid: event.actor.guid.clone(),
                kind: event.actor.kind.clone(),
                name: event.actor.name.clone(),
            },
            target: AuditParty {
                guid: event.target.guid.clone(),
                kind: event.target.kind.clone(),
                name: event.target.name.clone(),
            },
            data: object(&event.data),
            space: event.space.map(|guid| GuidRef {
                guid: guid.to_string(),
            }),
            organization: event.organization.map(|guid| GuidRef {
                guid: guid.to_string(),
            }),
        }
    }
}

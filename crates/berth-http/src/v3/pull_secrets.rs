//! `POST /v3/registry_credentials/actions/resolve` and `.../actions/explain` (SPEC section 7.1).
//!
//! The rules (candidates, precedence, keys) live in `berth_domain::pull_secrets`; this module
//! reads the body and writes the answer.
//!
//! `docker_config` is exactly a `.dockerconfigjson`: `{"auths": {KEY: {"username", "password",
//! "auth"}}}`, `auth` the standard base64 of `username:password`. KEY is the image's
//! `host[:port]` plus the matched location's path when it has one (`r.io/team`, a prefix the
//! kubelet matches), else the bare `host[:port]`; Docker Hub's bare key is
//! `https://index.docker.io/v1/`, and a Hub location with a path gives `docker.io/<path>`. Two
//! entries given one key always won the same credential (so the key appears once); should two
//! credentials ever claim one key, each image among them is keyed by its whole repository
//! (`host[:port]/<path>`) instead. A port is kept as written, `:443` included: Docker and the
//! kubelet key credentials by the image's `host[:port]` with no default-port equivalence.

use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use base64::Engine;
use berth_domain::image_reference::{ImageReference, RegistryHost};
use berth_domain::pull_secret_service::PullSecretService;
use berth_domain::pull_secrets::{
    MAX_PULL_ENTRIES, PullRequest, PullRequestError, PullSecrets, PullSubject, Resolution,
    owner_guid,
};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::V3Caller;
use super::body::{JsonObject, Problems, reject_unknown_fields};
use super::error::V3Error;
use super::presenters::CredentialScopeName;
use super::registry_credentials::requested_owner;
use crate::openapi::{PullSecretsBody, V3BodyRefused, V3PullSecretsScope, V3Unauthenticated};
use crate::state::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            super::resource("/v3/registry_credentials/actions/resolve", "POST")
                .route(web::post().to(resolve)),
        )
        .service(
            super::resource("/v3/registry_credentials/actions/explain", "POST")
                .route(web::post().to(explain)),
        );
}

#[utoipa::path(
    post,
    path = "/v3/registry_credentials/actions/resolve",
    tag = "registry_credentials",
    operation_id = "resolve_pull_secrets",
    description = "The credentials the platform pulls each image (or registry) with, and a \
                   `.dockerconfigjson` carrying them. Only for the scope `berth.pull_secrets`. \
                   Precedence: app, space, organization, foundation; within a level the most \
                   specific location. Keys: the image's `host[:port]` plus the matched location's \
                   path when it has one, else `host[:port]`; Docker Hub's bare key is \
                   `https://index.docker.io/v1/`, a Hub location with a path gives `docker.io/<path>`. \
                   A port is kept as written (`:443` included: clients key credentials by the \
                   image's `host[:port]`). Answered with `Cache-Control: no-store`.",
    request_body(content = PullSecretsBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The resolutions and the docker config", body = ResolveAnswer,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        V3Unauthenticated,
        V3BodyRefused,
        V3PullSecretsScope,
    ),
)]
pub(crate) async fn resolve(
    state: web::Data<AppState>,
    caller: V3Caller,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    // Refused before the body's fields are looked at: the route is for one client only.
    PullSecretService::may_resolve(&caller.0)?;
    let (request, texts) = pull_request(&body.0)?;
    let secrets = state.pull_secrets.resolve(&caller.0, request).await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(ResolveAnswer::new(&secrets, &texts)))
}

#[utoipa::path(
    post,
    path = "/v3/registry_credentials/actions/explain",
    tag = "registry_credentials",
    operation_id = "explain_pull_secrets",
    description = "The same choice as resolve, without secrets, for anyone who can read the \
                   context: for each entry, the levels searched in order (each with its owner \
                   and the candidate locations, most specific first) and the credential that won.",
    request_body(content = PullSecretsBody, content_type = "application/json"),
    responses(
        (status = 200, description = "How each entry resolves", body = ExplainAnswer),
        V3Unauthenticated,
        V3BodyRefused,
    ),
)]
pub(crate) async fn explain(
    state: web::Data<AppState>,
    caller: V3Caller,
    body: JsonObject,
) -> Result<HttpResponse, V3Error> {
    let (request, texts) = pull_request(&body.0)?;
    let resolutions = state.pull_secrets.explain(&caller.0, request).await?;
    Ok(HttpResponse::Ok().json(ExplainAnswer::new(&resolutions, &texts)))
}

/// An entry as the client wrote it: which list it came from, and its text; in the order of the
/// request's subjects (images, then registries).
struct EntryText {
    field: &'static str,
    text: String,
}

/// The body as a validated request, with each entry's text for the answer; every problem is
/// reported at once, each bad entry by its place (`images[3]: ...`).
fn pull_request(body: &Map<String, Value>) -> Result<(PullRequest, Vec<EntryText>), V3Error> {
    let mut problems = Problems::default();
    reject_unknown_fields(
        body,
        &["images", "registries", "relationships"],
        &mut problems,
    );
    let images = string_list(body, "images", "Images", &mut problems);
    let registries = string_list(body, "registries", "Registries", &mut problems);
    let owner = requested_owner(body.get("relationships"), &mut problems);
    let (Some(images), Some(registries)) = (images, registries) else {
        return Err(problems.refusal());
    };
    if images.len() + registries.len() > MAX_PULL_ENTRIES {
        // Said before any entry is parsed, so an oversized list costs nothing.
        problems.push(PullRequestError::TooMany.to_string());
        return Err(problems.refusal());
    }
    let mut subjects = Vec::with_capacity(images.len() + registries.len());
    let mut texts = Vec::with_capacity(images.len() + registries.len());
    for (index, text) in images.iter().enumerate() {
        match ImageReference::parse(text) {
            Ok(image) => subjects.push(PullSubject::Image(image)),
            Err(error) => problems.push(format!("images[{index}]: {error}")),
        }
        texts.push(EntryText {
            field: "image",
            text: (*text).to_owned(),
        });
    }
    for (index, text) in registries.iter().enumerate() {
        match RegistryHost::parse(text) {
            Ok(registry) => subjects.push(PullSubject::Registry(registry)),
            Err(error) => problems.push(format!("registries[{index}]: {error}")),
        }
        texts.push(EntryText {
            field: "registry",
            text: (*text).to_owned(),
        });
    }
    if subjects.len() < texts.len() {
        // Some entry was refused: the request's own bounds would only repeat it.
        return Err(problems.refusal());
    }
    let request = owner.and_then(|owner| problems.check(PullRequest::new(owner, subjects)));
    problems.finish(|| Some((request?, texts)))
}

/// A list of strings; absent or `null` is empty.
fn string_list<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    label: &str,
    problems: &mut Problems,
) -> Option<Vec<&'a str>> {
    let entries = match map.get(key) {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            problems.push(format!("{label} must be an array of strings"));
            return None;
        }
    };
    if entries.len() > MAX_PULL_ENTRIES {
        problems.push(PullRequestError::TooMany.to_string());
        return None;
    }
    let mut texts = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        match entry {
            Value::String(text) => texts.push(text.as_str()),
            _ => problems.push(format!("{key}[{index}]: must be a string")),
        }
    }
    Some(texts)
}

/// The answer of resolve.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResolveAnswer {
    resolutions: Vec<ResolutionBody>,
    docker_config: DockerConfigBody,
}

/// How one entry resolved: `image` or `registry` (as sent), its normalised name, the winning
/// credential (or null: pulled anonymously) and its key in `docker_config` (or null).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResolutionBody {
    /// The image as sent; absent for a registry entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    image: Option<String>,
    /// The registry as sent; absent for an image entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    registry: Option<String>,
    /// Such as `docker.io/library/nginx`, or `docker.io` for a registry.
    normalized: String,
    #[schema(required = true)]
    credential: Option<WinnerBody>,
    #[schema(required = true)]
    key: Option<String>,
}

/// The credential an entry is pulled with.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WinnerBody {
    #[schema(format = Uuid)]
    guid: String,
    location: String,
    #[schema(value_type = CredentialScopeName)]
    scope: &'static str,
}

/// Exactly a `.dockerconfigjson` document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DockerConfigBody {
    auths: BTreeMap<String, DockerAuthBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DockerAuthBody {
    username: String,
    #[schema(format = Password)]
    password: String,
    /// Standard base64 of `username:password`.
    auth: String,
}

impl ResolutionBody {
    fn new(resolution: &Resolution, entry: &EntryText) -> Self {
        let text = Some(entry.text.clone());
        let (image, registry) = match entry.field {
            "image" => (text, None),
            _ => (None, text),
        };
        Self {
            image,
            registry,
            normalized: resolution.subject.normalized(),
            credential: resolution.winner.as_ref().map(|winner| WinnerBody {
                guid: winner.guid.to_string(),
                location: winner.location.to_string(),
                scope: winner.scope.as_str(),
            }),
            key: resolution.key.clone(),
        }
    }
}

impl ResolveAnswer {
    fn new(secrets: &PullSecrets, texts: &[EntryText]) -> Self {
        let resolutions = secrets
            .resolutions
            .iter()
            .zip(texts)
            .map(|(resolution, entry)| ResolutionBody::new(resolution, entry))
            .collect();
        let auths = secrets
            .auths
            .iter()
            .map(|(key, entry)| {
                let username = entry.username.as_str();
                let password = entry.password.expose();
                let auth = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                let body = DockerAuthBody {
                    username: username.to_owned(),
                    password: password.to_owned(),
                    auth,
                };
                (key.clone(), body)
            })
            .collect();
        Self {
            resolutions,
            docker_config: DockerConfigBody { auths },
        }
    }
}

/// The answer of explain.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExplainAnswer {
    resolutions: Vec<ExplanationBody>,
}

/// How one entry resolved, and why: the levels searched in order, up to the winner's.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ExplanationBody {
    /// The image as sent; absent for a registry entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    image: Option<String>,
    /// The registry as sent; absent for an image entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    registry: Option<String>,
    normalized: String,
    levels: Vec<LevelBody>,
    #[schema(required = true)]
    credential: Option<WinnerBody>,
    #[schema(required = true)]
    key: Option<String>,
}

/// One level searched: its scope, its owner (null for the foundation) and the candidate
/// locations looked up there, most specific first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LevelBody {
    #[schema(value_type = CredentialScopeName)]
    level: &'static str,
    #[schema(format = Uuid, required = true)]
    owner_guid: Option<String>,
    candidates: Vec<String>,
}

impl ExplainAnswer {
    fn new(resolutions: &[Resolution], texts: &[EntryText]) -> Self {
        let resolutions = resolutions
            .iter()
            .zip(texts)
            .map(|(resolution, entry)| {
                let body = ResolutionBody::new(resolution, entry);
                ExplanationBody {
                    image: body.image,
                    registry: body.registry,
                    normalized: body.normalized,
                    levels: resolution
                        .levels_tried
                        .iter()
                        .map(|level| LevelBody {
                            level: level.scope().as_str(),
                            owner_guid: owner_guid(level),
                            candidates: resolution.candidates.clone(),
                        })
                        .collect(),
                    credential: body.credential,
                    key: body.key,
                }
            })
            .collect();
        Self { resolutions }
    }
}

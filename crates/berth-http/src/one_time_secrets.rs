//! Answers that create something or issue a one-time secret: `Cache-Control: no-store` on every
//! answer that carries a secret, and `Idempotency-Key` (IETF httpapi draft) on the routes that
//! create, so that a client that lost an answer gets the same one again instead of a second robot.
//!
//! A middleware, so that the handlers stay as they are: it claims the key before the handler
//! runs, keeps a successful answer (sealed by the store), replays it to a retry of the same
//! request by the same caller for 24 hours, and gives the key back when the handler fails.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpResponse, ResponseError, web};
use berth_domain::idempotency::{
    Begin, IdempotencyKey, IdempotencyKeyError, MAX_ANSWER_LEN, RequestFingerprint, StoredAnswer,
};
use berth_domain::ports::StoreError;
use sha2::{Digest, Sha256};

use crate::body::{BodyError, MAX_BODY_BYTES, read_bounded};
use crate::caller::authenticate_request;
use crate::state::AppState;
use crate::v1::error::V1Error;
use crate::v3::error::V3Error;

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed answer (Stripe's name for it).
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Which error envelope a route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    V3,
    V1,
}

/// A `POST` route this module looks after.
#[derive(Debug, Clone, Copy)]
pub struct GuardedRoute {
    pub pattern: &'static str,
    pub dialect: Dialect,
    /// Its successful answer carries a secret: never cached.
    pub carries_secret: bool,
}

/// The routes that honour `Idempotency-Key` (SPEC 7.3), and whether their answer is secret.
/// The OpenAPI document reads the same list.
pub const GUARDED_ROUTES: &[GuardedRoute] = &[
    GuardedRoute {
        pattern: "/v3/registry_credentials",
        dialect: Dialect::V3,
        carries_secret: false,
    },
    GuardedRoute {
        pattern: "/api/v1/organizations/{org_id}/registry",
        dialect: Dialect::V1,
        carries_secret: true,
    },
    GuardedRoute {
        pattern: "/api/v1/organizations/{org_id}/registry/credentials",
        dialect: Dialect::V1,
        carries_secret: true,
    },
    GuardedRoute {
        pattern: "/api/v1/organizations/{org_id}/registry/credentials/{credential_id}/rotate",
        dialect: Dialect::V1,
        carries_secret: true,
    },
];

fn guarded(method: &Method, pattern: &str) -> Option<&'static GuardedRoute> {
    if method != Method::POST {
        return None;
    }
    GUARDED_ROUTES.iter().find(|route| route.pattern == pattern)
}

/// Why a request with a key was not run.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyRefusal {
    #[error("{0}")]
    Malformed(#[from] IdempotencyKeyError),
    #[error("Send at most one Idempotency-Key header")]
    Repeated,
    #[error(
        "A request with this Idempotency-Key is still in progress; retry once it has been answered"
    )]
    InFlight,
    #[error("This Idempotency-Key was already used for a different request")]
    Mismatch,
    #[error("The request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("The request body could not be read")]
    Unreadable,
    #[error(transparent)]
    Store(StoreError),
}

impl IdempotencyRefusal {
    fn answer(self, dialect: Dialect) -> HttpResponse {
        match dialect {
            Dialect::V3 => V3Error::from(self).error_response(),
            Dialect::V1 => V1Error::from(self).error_response(),
        }
    }
}

/// The middleware: `Cache-Control: no-store` on secret answers; idempotency keys where honoured.
///
/// # Errors
/// The inner service's error, unchanged.
pub async fn one_time_secrets(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let route = request
        .match_pattern()
        .and_then(|pattern| guarded(request.method(), &pattern));
    let Some(route) = route else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let mut response = match request.headers().get_all(IDEMPOTENCY_KEY).count() {
        0 => next.call(request).await?.map_into_boxed_body(),
        _ => idempotent(request, next, route).await?,
    };
    if route.carries_secret {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(response)
}

async fn idempotent(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    route: &GuardedRoute,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let refuse = |request: ServiceRequest, refusal: IdempotencyRefusal| {
        let (request, _) = request.into_parts();
        Ok(ServiceResponse::new(request, refusal.answer(route.dialect)))
    };
    let key = match parse_key(&request) {
        Ok(key) => key,
        Err(refusal) => return refuse(request, refusal),
    };
    // Without a valid token the handler answers 401 as it always does; nothing is claimed.
    let Ok(actor) = authenticate_request(request.request()).await else {
        return Ok(next.call(request).await?.map_into_boxed_body());
    };
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        tracing::error!("application state is missing from the request: a wiring bug");
        return refuse(request, IdempotencyRefusal::Unreadable);
    };
    let body = match read_body(&mut request).await {
        Ok(body) => body,
        Err(refusal) => return refuse(request, refusal),
    };
    let fingerprint = fingerprint(route, request.path(), request.query_string(), &body);
    let ticket = match state
        .idempotency
        .begin(actor.subject(), key, fingerprint)
        .await
    {
        Ok(Begin::Run(ticket)) => ticket,
        Ok(Begin::Replay(answer)) => {
            let (request, _) = request.into_parts();
            return Ok(ServiceResponse::new(request, replay(answer)));
        }
        Ok(Begin::InFlight) => return refuse(request, IdempotencyRefusal::InFlight),
        Ok(Begin::Mismatch) => return refuse(request, IdempotencyRefusal::Mismatch),
        Err(error) => return refuse(request, IdempotencyRefusal::Store(error)),
    };
    request.set_payload(Payload::from(body));
    let response = match next.call(request).await {
        Ok(response) => response.map_into_boxed_body(),
        Err(error) => {
            give_back(&state, ticket).await;
            return Err(error);
        }
    };
    if !response.status().is_success() {
        give_back(&state, ticket).await;
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let body = match actix_web::body::to_bytes_limited(body, MAX_ANSWER_LEN).await {
        Ok(Ok(body)) => body,
        // An answer this module cannot keep: let it through, and let the key go.
        _ => {
            give_back(&state, ticket).await;
            tracing::error!("an answer under an idempotency key could not be kept");
            return Ok(ServiceResponse::new(
                request,
                IdempotencyRefusal::Unreadable.answer(route.dialect),
            ));
        }
    };
    let answer = StoredAnswer {
        status: head.status().as_u16(),
        content_type: header_text(&head, header::CONTENT_TYPE),
        location: header_text(&head, header::LOCATION),
        body: body.to_vec(),
    };
    if let Err(error) = state.idempotency.finish(ticket, &answer).await {
        // The work is done and this answer is true: give it. A retry finds the claim until it
        // runs out (409), then runs again.
        tracing::warn!(
            error = %crate::logging::error_chain(&error),
            "an answer under an idempotency key was not kept"
        );
    }
    Ok(ServiceResponse::new(
        request,
        head.set_body(body).map_into_boxed_body(),
    ))
}

fn parse_key(request: &ServiceRequest) -> Result<IdempotencyKey, IdempotencyRefusal> {
    let mut values = request.headers().get_all(IDEMPOTENCY_KEY);
    let value = values.next().ok_or(IdempotencyKeyError::Blank)?;
    if values.next().is_some() {
        return Err(IdempotencyRefusal::Repeated);
    }
    let text = value.to_str().map_err(|_| IdempotencyKeyError::Malformed)?;
    Ok(IdempotencyKey::parse(text)?)
}

/// Reads the body (bounded as every body is), to digest it and hand it on to the handler.
async fn read_body(request: &mut ServiceRequest) -> Result<web::Bytes, IdempotencyRefusal> {
    let payload = request.take_payload();
    read_bounded(request.headers(), payload)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => IdempotencyRefusal::TooLarge,
            BodyError::Malformed => IdempotencyRefusal::Unreadable,
        })
}

/// A digest of what makes two requests the same one: method, route, path, query and body.
/// Each part is length-prefixed, so no two different requests run together into one input.
fn fingerprint(route: &GuardedRoute, path: &str, query: &str, body: &[u8]) -> RequestFingerprint {
    let mut digest = Sha256::new();
    for part in [
        b"POST",
        route.pattern.as_bytes(),
        path.as_bytes(),
        query.as_bytes(),
        body,
    ] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    RequestFingerprint::new(digest.finalize().into())
}

fn replay(answer: StoredAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.insert_header((IDEMPOTENT_REPLAYED, HeaderValue::from_static("true")));
    for (name, value) in [
        (header::CONTENT_TYPE, answer.content_type),
        (header::LOCATION, answer.location),
    ] {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
            response.insert_header((name, value));
        }
    }
    response.body(answer.body)
}

fn header_text<B>(response: &HttpResponse<B>, name: HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

async fn give_back(state: &AppState, ticket: berth_domain::idempotency::Ticket) {
    if let Err(error) = state.idempotency.abandon(ticket).await {
        tracing::warn!(
            error = %crate::logging::error_chain(&error),
            "an idempotency key could not be given back; it frees itself when its claim runs out"
        );
    }
}

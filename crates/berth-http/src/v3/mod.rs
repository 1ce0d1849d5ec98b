//! The Cloud Foundry V3 dialect: `/v3/registry_credentials` and the directory.

pub mod audit_events;
pub mod body;
pub mod credential_verification;
pub mod directory;
pub mod error;
pub mod presenters;
pub mod pull_secrets;
pub mod query;
pub mod registry_credentials;
pub mod roles;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use berth_domain::actor::Actor;

use berth_auth::AuthFailure;

use crate::caller::authenticate_request;
use error::V3Error;

pub fn configure(config: &mut web::ServiceConfig) {
    // Before `registry_credentials`, whose `/{guid}` would otherwise take `actions`.
    pull_secrets::configure(config);
    registry_credentials::configure(config);
    credential_verification::configure(config);
    directory::configure(config);
    audit_events::configure(config);
    roles::configure(config);
}

/// A V3 resource whose other methods answer 405 with `Allow`, in the V3 envelope.
pub fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<actix_web::HttpResponse, _>(V3Error::method_not_allowed(allow))
    }))
}

/// Cloud Foundry answers 404 CF-NotFound "Unknown request" for any route it does not serve.
pub async fn unknown_request() -> Result<actix_web::HttpResponse, V3Error> {
    Err(V3Error::unknown_request())
}

/// The authenticated caller of a V3 route; failures answer in the V3 envelope.
pub struct V3Caller(pub Actor);

impl FromRequest for V3Caller {
    type Error = V3Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, V3Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let authenticated = authenticate_request(request);
        Box::pin(async move {
            match authenticated.await {
                Ok(actor) => Ok(Self(actor)),
                Err(AuthFailure::Missing) => Err(V3Error::not_authenticated()),
                Err(AuthFailure::Invalid) => Err(V3Error::invalid_auth_token()),
                // Cloud Controller: a token without the read or write scope is NotAuthorized.
                Err(AuthFailure::InsufficientScope) => Err(V3Error::not_authorized()),
            }
        })
    }
}

//! The v1 dialect: `/api/v1/organizations/{orgID}/registry` and its robot credentials.

pub mod error;
pub mod registry;

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use berth_domain::actor::Actor;
use serde_json::{Map, Value};

use crate::body::{BodyError, MAX_BODY_BYTES, read_json};
use berth_auth::AuthFailure;

use crate::caller::authenticate_request;
use error::{Detail, V1Error};

pub fn configure(config: &mut web::ServiceConfig) {
    registry::configure(config);
}

/// The authenticated caller of a v1 route; failures answer in the v1 envelope.
pub struct V1Caller(pub Actor);

impl FromRequest for V1Caller {
    type Error = V1Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, V1Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let authenticated = authenticate_request(request);
        Box::pin(async move {
            authenticated
                .await
                .map(Self)
                .map_err(|failure| match failure {
                    AuthFailure::InsufficientScope => V1Error::insufficient_scope(),
                    AuthFailure::Missing | AuthFailure::Invalid => V1Error::unauthorized(),
                })
        })
    }
}

/// An optional JSON object body: absent or empty is `None`.
pub struct OptionalObject(pub Option<Map<String, Value>>);

impl FromRequest for OptionalObject {
    type Error = V1Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, V1Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            match read_json(&request, payload).await {
                Ok(None | Some(Value::Null)) => Ok(Self(None)),
                Ok(Some(Value::Object(map))) => Ok(Self(Some(map))),
                Ok(Some(_)) => Err(V1Error::validation(vec![Detail {
                    field: "body".into(),
                    code: "invalid_type",
                    message: "the body must be a JSON object".into(),
                }])),
                Err(BodyError::Malformed) => Err(V1Error::invalid_json()),
                Err(BodyError::TooLarge) => Err(V1Error::payload_too_large(MAX_BODY_BYTES)),
            }
        })
    }
}

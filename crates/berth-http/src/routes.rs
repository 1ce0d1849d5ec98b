//! The route table of the public listener.

use actix_web::web;
use utoipa::OpenApi as _;

use crate::openapi::ApiDoc;
use crate::{health, v1, v3};

/// Every route but `/metrics` (see `prometheus::route`). Unknown routes answer in the dialect of
/// their prefix.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(v3::resource("/healthz", "GET").route(web::get().to(health::healthz)))
        .service(v3::resource("/readyz", "GET").route(web::get().to(health::readyz)))
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .url("/openapi.json", ApiDoc::openapi()),
        )
        .configure(v3::configure)
        .configure(v1::configure)
        .service(web::scope("/api/v1").default_service(web::to(v1::registry::unknown)))
        .default_service(web::to(v3::unknown_request));
}

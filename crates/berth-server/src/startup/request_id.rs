//! The request-id middleware.

/// Echoes the caller's `X-Request-Id` or makes one, on every response, and hands it to the
/// Harbor adapter so Harbor's logs carry the same id.
pub(super) async fn request_id(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .or_else(|| {
            // The id tracing-actix-web gave the request span (it runs first), so logs, traces
            // and the response all show one id, and none is generated twice.
            actix_web::HttpMessage::extensions(&request)
                .get::<tracing_actix_web::RequestId>()
                .map(|id| id.to_string())
        })
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut response = berth_harbor::request_id::REQUEST_ID
        .scope(id.clone(), next.call(request))
        .await?;
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    Ok(response)
}

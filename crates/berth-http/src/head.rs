//! `HEAD` on every `GET` route (RFC 9110, section 9.3.2): one middleware serves a `HEAD` request
//! through the route's `GET` handler. The answer keeps the status and every header, including the
//! `Content-Length` the `GET` would have had; actix-web's HTTP/1 and HTTP/2 encoders send no body
//! for a `HEAD` request (they know the method from the wire, not from the rewritten request).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;

/// Runs a `HEAD` request as a `GET`, and names `HEAD` in the `Allow` of a 405 that allows `GET`.
/// Register it innermost, so the request span and the metrics still show `HEAD`.
pub async fn head_as_get(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if request.method() == Method::HEAD {
        request.head_mut().method = Method::GET;
    }
    let mut response = next.call(request).await?;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = response
            .headers()
            .get(ALLOW)
            .and_then(|value| value.to_str().ok())
            .and_then(with_head)
            .and_then(|allow| HeaderValue::from_str(&allow).ok());
        if let Some(allow) = allow {
            response.headers_mut().insert(ALLOW, allow);
        }
    }
    Ok(response)
}

/// `GET, POST` becomes `GET, HEAD, POST`; `None` when there is no `GET` or already a `HEAD`.
fn with_head(allow: &str) -> Option<String> {
    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    if !methods.contains(&"GET") || methods.contains(&"HEAD") {
        return None;
    }
    let mut with_head = Vec::with_capacity(methods.len() + 1);
    for method in methods {
        with_head.push(method);
        if method == "GET" {
            with_head.push("HEAD");
        }
    }
    Some(with_head.join(", "))
}

#[cfg(test)]
mod tests {
    use super::with_head;

    #[test]
    fn head_is_allowed_wherever_get_is() {
        assert_eq!(with_head("GET").as_deref(), Some("GET, HEAD"));
        assert_eq!(
            with_head("GET, PATCH, DELETE").as_deref(),
            Some("GET, HEAD, PATCH, DELETE")
        );
        assert_eq!(with_head("POST"), None);
        assert_eq!(with_head("GET, HEAD"), None);
    }
}

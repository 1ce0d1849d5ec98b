//! The V3 error envelope, `{"errors":[{"detail","title","code"}]}`, and the one place domain
//! errors become V3 responses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use berth_domain::audit::AuditError;
use berth_domain::credential_service::CredentialError;
use berth_domain::directory_service::DirectoryError;
use berth_domain::metadata::MetadataLimitError;
use berth_domain::ports::StoreError;
use berth_domain::pull_secret_service::PullSecretError;
use berth_domain::role_service::RoleError;
use serde::Serialize;

/// One V3 error: an HTTP status and Cloud Foundry's code, title and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Error {
    status: StatusCode,
    code: u32,
    title: &'static str,
    detail: String,
    challenge: Option<&'static str>,
    allow: Option<&'static str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    errors: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    detail: &'a str,
    title: &'a str,
    code: u32,
}

impl V3Error {
    fn new(status: StatusCode, code: u32, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            challenge: None,
            allow: None,
        }
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// 400 CF-BadQueryParameter: one or more query parameters are wrong.
    pub fn bad_query_parameter(problems: &[String]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            10005,
            "CF-BadQueryParameter",
            format!("The query parameter is invalid: {}", problems.join(", ")),
        )
    }

    /// 400 CF-MessageParseError: the body is not JSON (or not a JSON object).
    pub fn message_parse(reason: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            1001,
            "CF-MessageParseError",
            format!("Request invalid due to parse error: {reason}"),
        )
    }

    /// 413: the body is over the documented bound.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            10004,
            "CF-InvalidRequest",
            format!("The request is invalid: the body is larger than {limit} bytes"),
        )
    }

    /// 422 CF-UnprocessableEntity with every problem found, joined as Cloud Foundry joins them.
    pub fn unprocessable(problems: &[String]) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            10008,
            "CF-UnprocessableEntity",
            problems.join(", "),
        )
    }

    /// 404 CF-ResourceNotFound, e.g. "Registry credential not found".
    pub fn resource_not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, 10010, "CF-ResourceNotFound", detail)
    }

    /// 404 CF-NotFound for a route that does not exist.
    pub fn unknown_request() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            10000,
            "CF-NotFound",
            "Unknown request",
        )
    }

    /// 405 for a method the route does not serve, with `Allow`; the V3 code of an unknown request.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                10000,
                "CF-NotFound",
                "Unknown request",
            )
        }
    }

    /// 401 CF-NotAuthenticated: no token.
    pub fn not_authenticated() -> Self {
        Self {
            challenge: Some("Bearer"),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                10002,
                "CF-NotAuthenticated",
                "Authentication error",
            )
        }
    }

    /// 401 CF-InvalidAuthToken: a token that is malformed, expired or wrongly signed.
    pub fn invalid_auth_token() -> Self {
        Self {
            challenge: Some("Bearer error=\"invalid_token\""),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                1000,
                "CF-InvalidAuthToken",
                "Invalid Auth Token",
            )
        }
    }

    /// 403 CF-NotAuthorized.
    pub fn not_authorized() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            10003,
            "CF-NotAuthorized",
            "You are not authorized to perform the requested action",
        )
    }

    /// 503 CF-ServiceUnavailable; the cause is logged, never returned.
    pub fn service_unavailable(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %crate::logging::error_chain(cause), "a backing service is unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            10015,
            "CF-ServiceUnavailable",
            "Database connection failure",
        )
    }

    /// 500 UnknownError; the cause is logged, never returned.
    pub fn unknown(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %crate::logging::error_chain(cause), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            10001,
            "UnknownError",
            "An unknown error occurred.",
        )
    }
}

impl std::fmt::Display for V3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.code, self.detail)
    }
}

impl ResponseError for V3Error {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        if let Some(challenge) = self.challenge {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::health::RETRY_AFTER_SECONDS),
            ));
        }
        response.json(Envelope {
            errors: [Entry {
                detail: &self.detail,
                title: self.title,
                code: self.code,
            }],
        })
    }
}

fn from_store(error: &StoreError) -> V3Error {
    match error {
        StoreError::Unavailable(_) => V3Error::service_unavailable(error),
        _ => V3Error::unknown(error),
    }
}

fn from_limit(error: &MetadataLimitError) -> V3Error {
    let (code, title) = match error {
        MetadataLimitError::TooManyLabels { .. } => (390020, "CF-LabelLimitExceeded"),
        MetadataLimitError::TooManyAnnotations { .. } => (390023, "CF-AnnotationLimitExceeded"),
        _ => return V3Error::unprocessable(&[error.to_string()]),
    };
    V3Error::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        code,
        title,
        error.to_string(),
    )
}

impl From<CredentialError> for V3Error {
    fn from(error: CredentialError) -> Self {
        match &error {
            CredentialError::NotFound => V3Error::resource_not_found(error.to_string()),
            CredentialError::Duplicate { .. } => V3Error::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                10016,
                "CF-UniquenessError",
                error.to_string(),
            ),
            // Cloud Foundry answers a request that clashes with the resource's state with 422.
            CredentialError::InvalidRelationship(_)
            | CredentialError::Contended
            | CredentialError::Managed(_)
            | CredentialError::ReservedLabel => V3Error::unprocessable(&[error.to_string()]),
            CredentialError::MetadataLimit(limit) => from_limit(limit),
            CredentialError::NotAuthorized => V3Error::not_authorized(),
            CredentialError::Store(store) => from_store(store),
            // A variant added to the domain after this surface: a 500 until it is mapped.
            _ => V3Error::unknown(&error),
        }
    }
}

impl From<AuditError> for V3Error {
    fn from(error: AuditError) -> Self {
        match &error {
            AuditError::NotFound => V3Error::resource_not_found(error.to_string()),
            AuditError::Store(store) => from_store(store),
            // A variant added to the domain after this surface: a 500 until it is mapped.
            _ => V3Error::unknown(&error),
        }
    }
}

impl From<DirectoryError> for V3Error {
    fn from(error: DirectoryError) -> Self {
        match &error {
            DirectoryError::NotFound(_) => V3Error::resource_not_found(error.to_string()),
            DirectoryError::InvalidRelationship(_)
            | DirectoryError::ParentChanged(..)
            | DirectoryError::InUse { .. } => V3Error::unprocessable(&[error.to_string()]),
            DirectoryError::NotAuthorized => V3Error::not_authorized(),
            DirectoryError::Store(store) => from_store(store),
            _ => V3Error::unknown(&error),
        }
    }
}

impl From<RoleError> for V3Error {
    fn from(error: RoleError) -> Self {
        match &error {
            RoleError::NotFound => V3Error::resource_not_found(error.to_string()),
            RoleError::NotAuthorized => V3Error::not_authorized(),
            RoleError::InvalidRelationship(_)
            | RoleError::NoOrganizationRole
            | RoleError::GuidTaken(_)
            | RoleError::Contended
            | RoleError::SpaceRolesRemain(_) => V3Error::unprocessable(&[error.to_string()]),
            // Cloud Controller answers a role held twice with its uniqueness error.
            RoleError::AlreadyHeld { .. } => V3Error::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                10016,
                "CF-UniquenessError",
                error.to_string(),
            ),
            RoleError::Store(store) => from_store(store),
            // A variant added to the domain after this surface: a 500 until it is mapped.
            _ => V3Error::unknown(&error),
        }
    }
}

impl From<crate::one_time_secrets::IdempotencyRefusal> for V3Error {
    fn from(refusal: crate::one_time_secrets::IdempotencyRefusal) -> Self {
        use crate::one_time_secrets::IdempotencyRefusal as R;
        let invalid = |status, detail: String| {
            V3Error::new(
                status,
                10004,
                "CF-InvalidRequest",
                format!("The request is invalid: {detail}"),
            )
        };
        match refusal {
            R::Malformed(_) | R::Repeated | R::Unreadable => {
                invalid(StatusCode::BAD_REQUEST, refusal.to_string())
            }
            R::TooLarge => V3Error::payload_too_large(crate::body::MAX_BODY_BYTES),
            // V3 has no code of its own for these; the status says which (IETF draft).
            R::InFlight => invalid(StatusCode::CONFLICT, refusal.to_string()),
            R::Mismatch => V3Error::unprocessable(&[refusal.to_string()]),
            R::Store(error) => from_store(&error),
        }
    }
}

impl From<PullSecretError> for V3Error {
    fn from(error: PullSecretError) -> Self {
        match &error {
            PullSecretError::NotAuthorized => V3Error::not_authorized(),
            PullSecretError::InvalidRelationship(_) => V3Error::unprocessable(&[error.to_string()]),
            PullSecretError::Store(store) => from_store(store),
            _ => V3Error::unknown(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_exactly_three_keys() {
        let response =
            V3Error::bad_query_parameter(&["Per page must be between 1 and 5000".into()])
                .error_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = Envelope {
            errors: [Entry {
                detail: "d",
                title: "t",
                code: 1,
            }],
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"errors":[{"detail":"d","title":"t","code":1}]}"#
        );
    }

    #[test]
    fn a_contended_update_is_a_422_not_a_5xx() {
        let error = V3Error::from(CredentialError::Contended);
        assert_eq!(error.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!((error.code, error.title), (10008, "CF-UnprocessableEntity"));
        assert_eq!(
            error.detail(),
            "The registry credential is being changed by another request; try again"
        );
    }

    #[test]
    fn service_unavailable_says_when_to_retry() {
        let cause = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let response = V3Error::service_unavailable(&cause).error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "5");
    }

    #[test]
    fn auth_errors_carry_a_challenge() {
        let response = V3Error::not_authenticated().error_response();
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer"
        );
        let response = V3Error::invalid_auth_token().error_response();
        assert!(
            response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
}

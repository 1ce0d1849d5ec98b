//! The v1 error envelope, `{"error":{"code","message","details":[{"field","code","message"}]}}`,
//! and the one place domain errors become v1 responses. Codes are stable snake_case.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use berth_domain::ports::{ProvisionError, StoreError};
use berth_domain::registry_service::RegistryError;
use serde::Serialize;

/// One problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

/// A v1 error: an HTTP status, a stable code, a message, and per-field details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Error {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<Detail>,
    allow: Option<&'static str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    details: &'a [Detail],
}

impl V1Error {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            allow: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid bearer token is required.",
        )
    }

    /// A valid token whose scopes do not allow this kind of request (UAA's
    /// `cloud_controller.read` to read, `cloud_controller.write` to write).
    pub fn insufficient_scope() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token lacks the scope for this request (cloud_controller.read to read, \
             cloud_controller.write to write)",
        )
    }

    pub fn organization_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "organization_not_found",
            "The organization does not exist or you cannot see it.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such route.")
    }

    /// 405 for a method the route does not serve, with `Allow`.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This route does not serve that method.",
            )
        }
    }

    /// 400 for a query parameter that is unknown or not of its form.
    pub fn invalid_query(details: Vec<Detail>) -> Self {
        Self {
            details,
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "The query string is not valid.",
            )
        }
    }

    pub fn invalid_json() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "The request body is not valid JSON.",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than {limit} bytes."),
        )
    }

    pub fn validation(details: Vec<Detail>) -> Self {
        Self {
            details,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "The request is not valid.",
            )
        }
    }

    fn internal(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %crate::logging::error_chain(cause), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An internal error occurred.",
        )
    }

    fn unavailable(code: &'static str, message: &str, cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %crate::logging::error_chain(cause), "a backend is unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The organization's registry cannot be provisioned because Harbor is not configured.
    pub fn harbor_not_configured() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "harbor_unavailable",
            "Harbor is not configured for this Berth (harbor.url).",
        )
    }
}

impl std::fmt::Display for V1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl ResponseError for V1Error {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((
                header::RETRY_AFTER,
                HeaderValue::from_static(crate::health::RETRY_AFTER_SECONDS),
            ));
        }
        response.json(Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
                details: &self.details,
            },
        })
    }
}

impl From<RegistryError> for V1Error {
    fn from(error: RegistryError) -> Self {
        use RegistryError as E;
        let conflict = |code, message: &str| Self::new(StatusCode::CONFLICT, code, message);
        match &error {
            E::OrganizationNotFound => Self::organization_not_found(),
            E::NotFound => Self::new(
                StatusCode::NOT_FOUND,
                "registry_not_found",
                "The organization's registry is not enabled.",
            ),
            E::RobotNotFound => Self::new(
                StatusCode::NOT_FOUND,
                "robot_credential_not_found",
                "No such robot credential.",
            ),
            E::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only the organization's managers may change its registry",
            ),
            E::AlreadyEnabled => conflict(
                "registry_already_enabled",
                "the organization's registry is already enabled",
            ),
            E::Busy => conflict(
                "registry_provisioning",
                "the organization's registry is being provisioned or disabled; retry shortly",
            ),
            E::ProjectConflict => conflict(
                "harbor_project_conflict",
                "a Harbor project with this organization's name exists and Berth did not create it",
            ),
            E::RobotNameTaken => conflict(
                "robot_name_taken",
                "the registry already has a robot credential with this name",
            ),
            E::ManagedRobot => conflict(
                "managed_robot",
                "this is the platform pull robot, managed by Berth: rotate it with \
                 POST .../registry/pull_credential/rotate; it goes when the registry is disabled",
            ),
            E::PurgeBlocked(reason) => Self::new(
                StatusCode::CONFLICT,
                "purge_blocked",
                format!(
                    "Harbor refuses to delete what the purge must delete ({reason}); the purge \
                     is recorded and resumes on retry"
                ),
            ),
            E::Contended => conflict(
                "registry_busy",
                "another change to the organization's registry is in progress; retry shortly",
            ),
            E::Provisioner(ProvisionError::Misconfigured) => Self::unavailable(
                "harbor_unavailable",
                "Harbor refused Berth's credential; an operator must fix it.",
                &error,
            ),
            E::Provisioner(_) => Self::unavailable(
                "harbor_unavailable",
                "Harbor is unreachable or failing; retry later.",
                &error,
            ),
            E::Store(StoreError::Unavailable(_)) => Self::unavailable(
                "database_unavailable",
                "The database is unavailable; retry later.",
                &error,
            ),
            // Any other store failure, or a variant added to the domain after this surface
            // (a 500 until it is mapped).
            _ => Self::internal(&error),
        }
    }
}

impl From<crate::one_time_secrets::IdempotencyRefusal> for V1Error {
    fn from(refusal: crate::one_time_secrets::IdempotencyRefusal) -> Self {
        use crate::one_time_secrets::IdempotencyRefusal as R;
        let message = refusal.to_string();
        match refusal {
            R::Malformed(_) | R::Repeated => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_idempotency_key", message)
            }
            R::Unreadable => Self::invalid_json(),
            R::TooLarge => Self::payload_too_large(crate::body::MAX_BODY_BYTES),
            R::InFlight => Self::new(StatusCode::CONFLICT, "idempotency_key_in_flight", message),
            R::Mismatch => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                message,
            ),
            R::Store(StoreError::Unavailable(_)) => Self::unavailable(
                "database_unavailable",
                "The database is unavailable; retry later.",
                &refusal,
            ),
            R::Store(_) => Self::internal(&refusal),
        }
    }
}

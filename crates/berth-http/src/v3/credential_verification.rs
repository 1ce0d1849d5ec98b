//! `POST /v3/registry_credentials/{guid}/actions/verify`: log in to the credential's registry
//! with it and say what came of it.

use actix_web::{HttpResponse, web};
use berth_domain::ids::CredentialGuid;
use berth_domain::verification::{Verification, VerificationOutcome};
use serde::Serialize;
use utoipa::ToSchema;

use super::V3Caller;
use super::error::V3Error;
use super::query::format_timestamp;
use crate::openapi::{V3NotVisible, V3NotWritable, V3Unauthenticated};
use crate::state::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        super::resource("/v3/registry_credentials/{guid}/actions/verify", "POST")
            .route(web::post().to(verify)),
    );
}

/// What the check concluded.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeBody {
    /// The registry accepted the credentials.
    Valid,
    /// The registry or its token service refused them (401 or 403).
    Invalid,
    /// The registry answered without proving or disproving them (anonymous access, an
    /// unsupported challenge, no token, rate limiting).
    Unverified,
    /// The registry could not be reached or is not a v2 registry (DNS, connection, TLS, deadline,
    /// 5xx, 404 from `/v2/`).
    Unreachable,
    /// The deployment's network policy forbids contacting the registry or its token service.
    Blocked,
}

impl From<VerificationOutcome> for OutcomeBody {
    fn from(outcome: VerificationOutcome) -> Self {
        match outcome {
            VerificationOutcome::Valid => Self::Valid,
            VerificationOutcome::Invalid => Self::Invalid,
            VerificationOutcome::Unverified => Self::Unverified,
            VerificationOutcome::Unreachable => Self::Unreachable,
            VerificationOutcome::Blocked => Self::Blocked,
            // An outcome added to the domain after this surface proves nothing either way.
            _ => Self::Unverified,
        }
    }
}

/// The answer of a verification; whatever the registry did, it is a 200.
#[derive(Serialize, ToSchema)]
pub struct VerificationBody {
    pub outcome: OutcomeBody,
    /// What happened, for a person to act on; never holds the password or a token.
    pub detail: String,
    /// The registry base URL contacted (or that would have been, when blocked).
    pub endpoint: String,
    #[schema(format = DateTime)]
    pub checked_at: String,
}

impl From<Verification> for VerificationBody {
    fn from(verification: Verification) -> Self {
        Self {
            outcome: verification.outcome.into(),
            detail: verification.detail,
            endpoint: verification.endpoint,
            checked_at: format_timestamp(verification.checked_at),
        }
    }
}

#[utoipa::path(
    post,
    path = "/v3/registry_credentials/{guid}/actions/verify",
    tag = "registry_credentials",
    operation_id = "verify_registry_credential",
    params(("guid" = String, Path, description = "The resource guid")),
    responses(
        (status = 200, description = "The registry's verdict on the credential", body = VerificationBody),
        V3Unauthenticated,
        V3NotVisible,
        V3NotWritable,
    ),
)]
pub(crate) async fn verify(
    state: web::Data<AppState>,
    caller: V3Caller,
    guid: web::Path<String>,
) -> Result<HttpResponse, V3Error> {
    // A guid that is not a UUID names no credential: 404, as the other credential routes.
    let guid = CredentialGuid::parse(&guid)
        .map_err(|_| V3Error::resource_not_found("Registry credential not found"))?;
    let verification = state.verification.verify(&caller.0, guid).await?;
    Ok(HttpResponse::Ok().json(VerificationBody::from(verification)))
}

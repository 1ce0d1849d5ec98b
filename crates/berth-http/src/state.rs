//! What every handler can reach: the use cases, link building and authentication.

use std::sync::Arc;

use berth_domain::audit::AuditService;
use berth_domain::credential_service::CredentialService;
use berth_domain::directory_service::DirectoryService;
use berth_domain::idempotency::IdempotencyService;
use berth_domain::pull_secret_service::PullSecretService;
use berth_domain::registry_service::RegistryService;
use berth_domain::role_service::RoleService;
use berth_domain::verification_service::VerificationService;

use crate::health::Readiness;
use crate::v3::presenters::Links;
use berth_auth::Authenticator;

pub struct AppState {
    pub credentials: CredentialService,
    pub directory: DirectoryService,
    pub roles: RoleService,
    pub pull_secrets: PullSecretService,
    pub verification: VerificationService,
    /// `None` when no Harbor is configured: the registry routes answer 503.
    pub registries: Option<RegistryService>,
    /// Idempotency keys of the routes that create (`one_time_secrets`).
    pub idempotency: IdempotencyService,
    /// `/v3/audit_events`.
    pub audit: AuditService,
    pub links: Links,
    pub authenticator: Arc<Authenticator>,
    pub readiness: Readiness,
}

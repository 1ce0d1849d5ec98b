//! What every handler can reach: the use cases, link building and authentication.

use berth_domain::credential_service::CredentialService;
use berth_domain::directory_service::DirectoryService;

use crate::authn::Authenticator;
use crate::v3::presenters::Links;

pub struct AppState {
    pub credentials: CredentialService,
    pub directory: DirectoryService,
    pub links: Links,
    pub authenticator: Authenticator,
}

//! Who is calling: the bearer token of a request, authenticated into a domain `Actor`.

use berth_auth::{AuthFailure, authenticate};
use berth_domain::actor::Actor;

use crate::state::AppState;

/// Authenticates the request an extractor sees; each dialect maps the failure to its envelope.
pub fn authenticate_request(
    request: &actix_web::HttpRequest,
) -> impl std::future::Future<Output = Result<Actor, AuthFailure>> + 'static {
    let header = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .cloned();
    let state = request
        .app_data::<actix_web::web::Data<AppState>>()
        .cloned();
    async move {
        let Some(state) = state else {
            tracing::error!("application state is missing from the request: a wiring bug");
            return Err(AuthFailure::Invalid);
        };
        let actor = authenticate(
            &state.authenticator,
            header.as_ref().map(|value| value.as_bytes()),
        )
        .await?;
        tracing::Span::current().record("enduser.id", actor.subject());
        Ok(actor)
    }
}

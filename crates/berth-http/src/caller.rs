//! Who is calling: the bearer token of a request, authenticated into a domain `Actor`.

use actix_web::http::Method;
use berth_auth::{AuthFailure, authenticate};
use berth_domain::actor::{Access, Actor};

use crate::state::AppState;

/// Whether a request only reads: Cloud Controller's rule, by method, with the two pull-secret
/// actions (which answer from the credentials and change nothing) counted as reads.
fn access_of(request: &actix_web::HttpRequest) -> Access {
    let method = request.method();
    let path = request.path();
    if method == Method::GET
        || method == Method::HEAD
        || (method == Method::POST
            && (path.ends_with("/actions/resolve") || path.ends_with("/actions/explain")))
    {
        Access::Read
    } else {
        Access::Write
    }
}

/// Authenticates the request an extractor sees, and checks the token's scopes allow its kind
/// (read or write); each dialect maps the failure to its envelope.
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
    let access = access_of(request);
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
        if !actor.may(access) {
            return Err(AuthFailure::InsufficientScope);
        }
        Ok(actor)
    }
}

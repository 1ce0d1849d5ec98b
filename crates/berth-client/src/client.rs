//! [`BerthClient`]: one reqwest client, the bearer token, one request path for every route.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{ApiError, ClientError};
use crate::wire::{
    Credential, CredentialQuery, CredentialUpdate, Explained, NewCredential, Page, ResolveRequest,
    Resolved,
};

const CREDENTIALS: &str = "/v3/registry_credentials";
/// The largest answer read: a full page (5000 credentials with metadata) fits many times over;
/// anything bigger is not Berth.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// A typed async client of Berth's V3 credential routes.
///
/// Every method returns [`ClientError::Api`] with Berth's code, title and detail when Berth
/// refuses, [`ClientError::Unreachable`] when it does not answer, and [`ClientError::Decode`]
/// when the answer is not the documented shape.
#[derive(Clone)]
pub struct BerthClient {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
}

impl std::fmt::Debug for BerthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BerthClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl BerthClient {
    /// A client of the Berth at `base_url` (`https://berth.example.com`, maybe with a path
    /// prefix), with 5 s to connect and 30 s per call, and no redirects (the token is for Berth).
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] unless `base_url` is an http(s) URL without credentials, query
    /// or fragment.
    pub fn new(base_url: &str, token: SecretString) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("berth-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                ClientError::InvalidUrl(format!("cannot build an HTTP client: {error}"))
            })?;
        Self::with_http(http, base_url, token)
    }

    /// As [`BerthClient::new`], with a reqwest client of the caller's (proxies, roots, timeouts).
    ///
    /// # Errors
    /// As [`BerthClient::new`].
    pub fn with_http(
        http: reqwest::Client,
        base_url: &str,
        token: SecretString,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http,
            base: parse_base(base_url)?,
            token,
        })
    }

    /// The base URL calls are made under.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// `POST /v3/registry_credentials`: 201 with the new credential.
    ///
    /// # Errors
    /// As the type says; 422 `CF-UnprocessableEntity` for a bad or duplicate credential.
    pub async fn create_credential(
        &self,
        credential: &NewCredential,
    ) -> Result<Credential, ClientError> {
        let url = self.url(CREDENTIALS, &[]);
        self.call(Method::POST, url, Some(credential)).await
    }

    /// `GET /v3/registry_credentials/{guid}`.
    ///
    /// # Errors
    /// As the type says; 404 `CF-ResourceNotFound` when the caller cannot see it.
    pub async fn get_credential(&self, guid: Uuid) -> Result<Credential, ClientError> {
        let url = self.url(&format!("{CREDENTIALS}/{guid}"), &[]);
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `GET /v3/registry_credentials` with filters and paging: one page.
    ///
    /// # Errors
    /// As the type says; 400 `CF-BadQueryParameter` for a bad filter.
    pub async fn list_credentials(
        &self,
        query: &CredentialQuery,
    ) -> Result<Page<Credential>, ClientError> {
        let url = self.url(CREDENTIALS, &query.pairs());
        self.call(Method::GET, url, None::<&()>).await
    }

    /// Every credential `query` matches, page after page (its `page` is ignored), reading at
    /// most `max_pages` pages: the caller bounds what it holds.
    ///
    /// # Errors
    /// As [`BerthClient::list_credentials`].
    pub async fn list_all_credentials(
        &self,
        query: &CredentialQuery,
        max_pages: u32,
    ) -> Result<Vec<Credential>, ClientError> {
        let mut all = Vec::new();
        let mut query = query.clone();
        for number in 1..=max_pages {
            query.page = Some(number);
            let page = self.list_credentials(&query).await?;
            all.extend(page.resources);
            // Page numbers, not `next` hrefs: those are built from Berth's external URL, which
            // may not be the address this client reaches it at.
            if u64::from(number) >= page.pagination.total_pages {
                break;
            }
        }
        Ok(all)
    }

    /// `PATCH /v3/registry_credentials/{guid}`.
    ///
    /// # Errors
    /// As the type says; 404 when invisible, 403 when visible but not writable, 422 for bad input.
    pub async fn update_credential(
        &self,
        guid: Uuid,
        update: &CredentialUpdate,
    ) -> Result<Credential, ClientError> {
        let url = self.url(&format!("{CREDENTIALS}/{guid}"), &[]);
        self.call(Method::PATCH, url, Some(update)).await
    }

    /// `DELETE /v3/registry_credentials/{guid}`: 204.
    ///
    /// # Errors
    /// As the type says; 404 when invisible, 403 when visible but not writable.
    pub async fn delete_credential(&self, guid: Uuid) -> Result<(), ClientError> {
        let url = self.url(&format!("{CREDENTIALS}/{guid}"), &[]);
        let response = self
            .send(self.request(Method::DELETE, url.clone()), &url)
            .await?;
        read_bounded(response, &url).await.map(drop)
    }

    /// `POST /v3/registry_credentials/actions/resolve`: the credentials to pull with, and the
    /// `.dockerconfigjson` that carries them. Needs the `berth.pull_secrets` scope.
    ///
    /// # Errors
    /// As the type says; 403 without the scope, 422 for an invalid reference or relationship.
    pub async fn resolve(&self, request: &ResolveRequest) -> Result<Resolved, ClientError> {
        let url = self.url(&format!("{CREDENTIALS}/actions/resolve"), &[]);
        self.call(Method::POST, url, Some(request)).await
    }

    /// `POST /v3/registry_credentials/actions/explain`: resolve's choice without secrets, with
    /// the candidates tried, for anyone who can read the context.
    ///
    /// # Errors
    /// As [`BerthClient::resolve`], without the scope requirement.
    pub async fn explain(&self, request: &ResolveRequest) -> Result<Explained, ClientError> {
        let url = self.url(&format!("{CREDENTIALS}/actions/explain"), &[]);
        self.call(Method::POST, url, Some(request)).await
    }

    fn url(&self, path: &str, query: &[(String, String)]) -> Url {
        let mut url = self.base.clone();
        let joined = format!("{}{path}", self.base.path().trim_end_matches('/'));
        url.set_path(&joined);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json")
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let mut request = self.request(method, url.clone());
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(|error| ClientError::Decode {
                url: url.to_string(),
                reason: format!("the request could not be written: {error}"),
            })?;
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        let response = self.send(request, &url).await?;
        let bytes = read_bounded(response, &url).await?;
        serde_json::from_slice(&bytes).map_err(|error| ClientError::Decode {
            url: url.to_string(),
            reason: error.to_string(),
        })
    }

    /// Sends, and turns a refusal into [`ClientError::Api`].
    async fn send(&self, request: RequestBuilder, url: &Url) -> Result<Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|error| ClientError::unreachable(url, error))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = read_bounded(response, url).await?;
        Err(envelope(status.as_u16(), &bytes))
    }
}

/// Checks a base URL as [`BerthClient::new`] does.
pub(crate) fn parse_base(text: &str) -> Result<Url, ClientError> {
    let url =
        Url::parse(text.trim()).map_err(|error| ClientError::InvalidUrl(format!("{error}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ClientError::InvalidUrl(
            "the scheme must be http or https".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ClientError::InvalidUrl(
            "it must not carry credentials (the token goes in BERTH_TOKEN)".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ClientError::InvalidUrl(
            "it must not have a query or fragment".into(),
        ));
    }
    Ok(url)
}

/// The V3 envelope's first error, or [`ClientError::Status`] when the body is not one.
fn envelope(status: u16, bytes: &[u8]) -> ClientError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: u32,
        title: String,
        detail: String,
    }
    match serde_json::from_slice::<Envelope>(bytes) {
        Ok(Envelope { errors }) => match errors.into_iter().next() {
            Some(entry) => ClientError::Api(ApiError {
                status,
                code: entry.code,
                title: entry.title,
                detail: entry.detail,
            }),
            None => ClientError::Status { status },
        },
        Err(_) => ClientError::Status { status },
    }
}

async fn read_bounded(mut response: Response, url: &Url) -> Result<Vec<u8>, ClientError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| ClientError::unreachable(url, error))?
    {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ClientError::Decode {
                url: url.to_string(),
                reason: format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_keep_their_path_prefix_and_refuse_credentials() {
        let client =
            BerthClient::new("https://example.test/berth/", SecretString::from("t")).unwrap();
        let url = client.url(
            "/v3/registry_credentials",
            &[("locations".into(), "a.io,b.io".into())],
        );
        assert_eq!(
            url.as_str(),
            "https://example.test/berth/v3/registry_credentials?locations=a.io%2Cb.io"
        );
        for bad in [
            "ftp://example.test",
            "https://u:p@example.test",
            "https://example.test/?x=1",
            "example.test",
        ] {
            assert!(
                matches!(
                    BerthClient::new(bad, SecretString::from("t")),
                    Err(ClientError::InvalidUrl(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refusal_carries_the_envelope() {
        let body = br#"{"errors":[{"detail":"Registry credential not found","title":"CF-ResourceNotFound","code":10010}]}"#;
        let error = envelope(404, body);
        assert_eq!(
            error.api(),
            Some(&ApiError {
                status: 404,
                code: 10010,
                title: "CF-ResourceNotFound".into(),
                detail: "Registry credential not found".into(),
            })
        );
        assert!(matches!(
            envelope(502, b"<html>bad gateway</html>"),
            ClientError::Status { status: 502 }
        ));
    }
}

//! Berth's black-box end-to-end suite: the deployment it drives, named only by URLs and secrets.
//!
//! The journeys live in `tests/journeys/`, one file each, and are `#[ignore]`d so the unit run
//! (`cargo xtask test`) lists them without a deployment. `cargo xtask e2e` starts one (two
//! `berth serve` replicas on one fresh PostgreSQL database, the Harbor emulator) and runs them
//! with `--run-ignored only`; `cargo xtask e2e --compose` does the same against
//! `docker-compose.yml`. Any other deployment is driven by setting:
//!
//! | variable | what |
//! |---|---|
//! | `BERTH_E2E_URLS` | two base URLs of Berth replicas sharing one database, comma-separated |
//! | `BERTH_E2E_SIGNING_KEY` | the HS256 secret Berth verifies (`auth.hs256_secret`): the suite mints its callers' tokens |
//! | `BERTH_E2E_TOKEN` | instead of the key: one token with `berth.admin` and `berth.pull_secrets` |
//! | `BERTH_E2E_ISSUER`, `BERTH_E2E_AUDIENCE` | the `iss` and `aud` to mint, where Berth checks them |
//! | `BERTH_E2E_HARBOR_URL` | Harbor's (or the emulator's) base URL as the suite reaches it |
//! | `BERTH_E2E_HARBOR_USERNAME`, `BERTH_E2E_HARBOR_PASSWORD` | Harbor's admin login (default `admin` / `Harbor12345`, the emulator's) |
//!
//! With only `BERTH_E2E_TOKEN`, the journeys that act as another caller fail, saying so.
//! Without the variables a journey fails with a message naming what is missing: it never passes
//! silently. Every journey makes its own organizations and labels (fresh guids), so journeys run
//! in parallel and again on a deployment that keeps its data.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

/// How long any one request may take: a hung deployment fails the journey, not the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The deployment under test: two replicas, a way to authenticate, and Harbor.
pub struct Deployment {
    replicas: [Berth; 2],
    signing: Signing,
    issuer: Option<String>,
    audience: Option<String>,
    harbor: Harbor,
}

/// How the suite gets its bearer tokens.
enum Signing {
    /// Mints any caller's token.
    Key(String),
    /// One given admin token.
    Token(String),
}

impl Deployment {
    /// The deployment the `BERTH_E2E_*` variables name.
    ///
    /// # Errors
    /// A variable is missing or malformed; the message says which and how to get a deployment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    /// [`Deployment::from_env`] over any variable lookup.
    ///
    /// # Errors
    /// As [`Deployment::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        const HOW: &str = "this journey needs a deployment: run `cargo xtask e2e` (or \
                           `cargo xtask e2e --compose`), or set the BERTH_E2E_* variables \
                           (crates/berth-e2e/src/lib.rs lists them)";
        let urls =
            lookup("BERTH_E2E_URLS").with_context(|| format!("BERTH_E2E_URLS is unset: {HOW}"))?;
        let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
        let [first, second] = urls.as_slice() else {
            bail!("BERTH_E2E_URLS must name two replicas, comma-separated, not {urls:?}: {HOW}");
        };
        let signing = match (lookup("BERTH_E2E_SIGNING_KEY"), lookup("BERTH_E2E_TOKEN")) {
            (Some(key), _) => Signing::Key(key),
            (None, Some(token)) => Signing::Token(token),
            (None, None) => bail!("set BERTH_E2E_SIGNING_KEY (or BERTH_E2E_TOKEN): {HOW}"),
        };
        let harbor_url = lookup("BERTH_E2E_HARBOR_URL")
            .with_context(|| format!("BERTH_E2E_HARBOR_URL is unset: {HOW}"))?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            replicas: [
                Berth::new(first, http.clone())?,
                Berth::new(second, http.clone())?,
            ],
            signing,
            issuer: lookup("BERTH_E2E_ISSUER"),
            audience: lookup("BERTH_E2E_AUDIENCE"),
            harbor: Harbor {
                base_url: base_url(&harbor_url)?,
                username: lookup("BERTH_E2E_HARBOR_USERNAME").unwrap_or_else(|| "admin".into()),
                password: lookup("BERTH_E2E_HARBOR_PASSWORD")
                    .unwrap_or_else(|| "Harbor12345".into()),
                http,
            },
        })
    }

    /// The first replica.
    pub fn first(&self) -> &Berth {
        &self.replicas[0]
    }

    /// The second replica, on the same database as the first.
    pub fn second(&self) -> &Berth {
        &self.replicas[1]
    }

    /// Both replicas.
    pub fn replicas(&self) -> &[Berth; 2] {
        &self.replicas
    }

    /// Harbor, as the suite reaches it.
    pub fn harbor(&self) -> &Harbor {
        &self.harbor
    }

    /// A platform admin who may also resolve pull secrets.
    ///
    /// # Errors
    /// The signing key cannot sign.
    pub fn admin(&self) -> anyhow::Result<String> {
        match &self.signing {
            Signing::Token(token) => Ok(token.clone()),
            Signing::Key(_) => self.mint("e2e-admin", &["berth.admin", "berth.pull_secrets"], &[]),
        }
    }

    /// A token for `subject` with platform `scopes` and `<role>:<guid>` `roles`, ten minutes long.
    ///
    /// # Errors
    /// No signing key (only `BERTH_E2E_TOKEN`), or the key cannot sign.
    pub fn mint(&self, subject: &str, scopes: &[&str], roles: &[String]) -> anyhow::Result<String> {
        let Signing::Key(key) = &self.signing else {
            bail!("this journey mints tokens for other callers: set BERTH_E2E_SIGNING_KEY");
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(subject));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 600));
        if !scopes.is_empty() {
            claims.insert("scope".into(), json!(scopes.join(" ")));
        }
        if !roles.is_empty() {
            claims.insert("roles".into(), json!(roles));
        }
        if let Some(issuer) = &self.issuer {
            claims.insert("iss".into(), json!(issuer));
        }
        if let Some(audience) = &self.audience {
            claims.insert("aud".into(), json!(audience));
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
        )
        .context("minting an HS256 token with BERTH_E2E_SIGNING_KEY")
    }
}

/// `url` without a trailing slash, checked to be an absolute http(s) URL.
fn base_url(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "{url:?} is not an http(s) URL"
    );
    Ok(url.trim_end_matches('/').to_owned())
}

/// One Berth replica.
pub struct Berth {
    base_url: String,
    http: reqwest::Client,
}

/// What Berth answered: the status, the headers and the JSON body (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    /// What was asked, for failure messages.
    pub request: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The body when the status is `status`; otherwise an error showing the exchange.
    ///
    /// # Errors
    /// Another status.
    pub fn expect(self, status: u16) -> anyhow::Result<Value> {
        ensure!(
            self.status == status,
            "{} answered {} (expected {status}): {}",
            self.request,
            self.status,
            self.body
        );
        Ok(self.body)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl Berth {
    fn new(url: &str, http: reqwest::Client) -> anyhow::Result<Self> {
        Ok(Self {
            base_url: base_url(url)?,
            http,
        })
    }

    /// The replica's base URL.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// `method path` with `token`, a JSON `body` and extra `headers`.
    ///
    /// # Errors
    /// No answer, or an answer that is not JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Answer> {
        let request_name = format!("{method} {}{path}", self.base_url);
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{request_name}: no answer"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| {
                format!("{request_name} answered {status} with a body that is not JSON: {text}")
            })?
        };
        Ok(Answer {
            request: request_name,
            status,
            headers,
            body,
        })
    }

    /// `GET path` as `token`.
    ///
    /// # Errors
    /// As [`Berth::call`].
    pub async fn get(&self, token: &str, path: &str) -> anyhow::Result<Answer> {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    /// `POST path` as `token` with `body`.
    ///
    /// # Errors
    /// As [`Berth::call`].
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.call(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    /// `POST path` as `token` without a body.
    ///
    /// # Errors
    /// As [`Berth::call`].
    pub async fn post_empty(&self, token: &str, path: &str) -> anyhow::Result<Answer> {
        self.call(Method::POST, path, Some(token), None, &[]).await
    }

    /// `PUT path` as `token` with `body`.
    ///
    /// # Errors
    /// As [`Berth::call`].
    pub async fn put(&self, token: &str, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.call(Method::PUT, path, Some(token), Some(body), &[])
            .await
    }

    /// `PATCH path` as `token` with `body`.
    ///
    /// # Errors
    /// As [`Berth::call`].
    pub async fn patch(&self, token: &str, path: &str, body: &Value) -> anyhow::Result<Answer> {
        self.call(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    /// `DELETE path` as `token`.
    ///
    /// # Errors
    /// As [`Berth::call`].
    pub async fn delete(&self, token: &str, path: &str) -> anyhow::Result<Answer> {
        self.call(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// The path and query of `href` (a link Berth answered), to follow on this replica: links
    /// carry the deployment's external URL, which need not be how the suite reaches a replica.
    ///
    /// # Errors
    /// `href` is not a URL.
    pub fn path_of(href: &str) -> anyhow::Result<String> {
        let url = reqwest::Url::parse(href).with_context(|| format!("{href:?} is not a link"))?;
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// Creates an organization named `name` with a fresh guid; returns the guid.
    ///
    /// # Errors
    /// Berth does not answer 201.
    pub async fn organization(&self, token: &str, name: &str) -> anyhow::Result<String> {
        let guid = fresh_guid();
        self.put(
            token,
            &format!("/v3/organizations/{guid}"),
            &json!({"name": name}),
        )
        .await?
        .expect(201)?;
        Ok(guid)
    }

    /// Creates a space named `name` in `organization`; returns its guid.
    ///
    /// # Errors
    /// Berth does not answer 201.
    pub async fn space(
        &self,
        token: &str,
        organization: &str,
        name: &str,
    ) -> anyhow::Result<String> {
        let guid = fresh_guid();
        let body = json!({"name": name, "relationships": {"organization": {"data": {"guid": organization}}}});
        self.put(token, &format!("/v3/spaces/{guid}"), &body)
            .await?
            .expect(201)?;
        Ok(guid)
    }

    /// Creates an app named `name` in `space`; returns its guid.
    ///
    /// # Errors
    /// Berth does not answer 201.
    pub async fn app(&self, token: &str, space: &str, name: &str) -> anyhow::Result<String> {
        let guid = fresh_guid();
        let body = json!({"name": name, "relationships": {"space": {"data": {"guid": space}}}});
        self.put(token, &format!("/v3/apps/{guid}"), &body)
            .await?
            .expect(201)?;
        Ok(guid)
    }
}

/// A new random guid (a name no other journey or run uses).
pub fn fresh_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The organization registry routes of `organization`.
pub fn registry_path(organization: &str) -> String {
    format!("/api/v1/organizations/{organization}/registry")
}

/// Harbor (or its emulator), through its own API as an operator would check it.
pub struct Harbor {
    base_url: String,
    username: String,
    password: String,
    http: reqwest::Client,
}

impl Harbor {
    /// The project named `name` as Harbor's admin sees it, or `None` when Harbor has none.
    ///
    /// # Errors
    /// Harbor does not answer 200 or 404.
    pub async fn project(&self, name: &str) -> anyhow::Result<Option<Value>> {
        let response = self
            .http
            .get(format!("{}/api/v2.0/projects/{name}", self.base_url))
            .basic_auth(&self.username, Some(&self.password))
            .send()
            .await
            .context("Harbor: no answer")?;
        match response.status().as_u16() {
            200 => Ok(Some(response.json().await?)),
            404 => Ok(None),
            other => bail!(
                "Harbor answered {other} for project {name}: {}",
                response.text().await?
            ),
        }
    }

    /// The robot accounts of project `name` (Harbor's `Level=project` query).
    ///
    /// # Errors
    /// No such project, or Harbor does not answer 200.
    pub async fn robots_of(&self, name: &str) -> anyhow::Result<Vec<Value>> {
        let id = self.project_id(name).await?;
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v2.0/robots", self.base_url),
            [
                ("q", format!("Level=project,ProjectID={id}")),
                ("page_size", "100".into()),
            ],
        )?;
        self.admin_get(url).await
    }

    /// The storage quota Harbor holds for project `name`, in bytes.
    ///
    /// # Errors
    /// No such project, no quota, or Harbor does not answer 200.
    pub async fn storage_quota(&self, name: &str) -> anyhow::Result<i64> {
        let id = self.project_id(name).await?;
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v2.0/quotas", self.base_url),
            [
                ("reference", "project".to_owned()),
                ("reference_id", id.to_string()),
            ],
        )?;
        let quotas: Vec<Value> = self.admin_get(url).await?;
        quotas
            .first()
            .and_then(|quota| quota["hard"]["storage"].as_i64())
            .with_context(|| format!("no storage quota for {name}: {quotas:?}"))
    }

    async fn project_id(&self, name: &str) -> anyhow::Result<i64> {
        let project = self
            .project(name)
            .await?
            .with_context(|| format!("Harbor has no project {name}"))?;
        project["project_id"]
            .as_i64()
            .with_context(|| format!("a project without an id: {project}"))
    }

    async fn admin_get(&self, url: reqwest::Url) -> anyhow::Result<Vec<Value>> {
        let response = self
            .http
            .get(url.clone())
            .basic_auth(&self.username, Some(&self.password))
            .send()
            .await
            .with_context(|| format!("Harbor {url}: no answer"))?;
        ensure!(
            response.status() == 200,
            "Harbor answered {} for {url}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// Whether a registry client logging in as `username` gets a token from Harbor's token
    /// service (`/service/token`, where `docker login` goes after the `/v2/` challenge).
    ///
    /// # Errors
    /// Harbor answers neither 200 nor 401.
    pub async fn registry_login_works(
        &self,
        username: &str,
        password: &str,
    ) -> anyhow::Result<bool> {
        let challenge = self
            .http
            .get(format!("{}/v2/", self.base_url))
            .send()
            .await
            .context("Harbor /v2/: no answer")?;
        ensure!(
            challenge.status() == 401,
            "Harbor's /v2/ answered {} to an anonymous client, not its 401 challenge",
            challenge.status()
        );
        let response = self
            .http
            .get(format!(
                "{}/service/token?service=harbor-registry",
                self.base_url
            ))
            .basic_auth(username, Some(password))
            .send()
            .await
            .context("Harbor /service/token: no answer")?;
        match response.status().as_u16() {
            200 => Ok(true),
            401 => Ok(false),
            other => bail!("Harbor's token service answered {other} for {username}"),
        }
    }
}

/// The `username` and `password` of a `.dockerconfigjson` entry, checked against its `auth`.
///
/// # Errors
/// The entry lacks a field or its `auth` is not base64 of `username:password`.
pub fn docker_login(entry: &Value) -> anyhow::Result<(String, String)> {
    let field = |name: &str| {
        entry[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {name} in {entry}"))
    };
    let (username, password, auth) = (field("username")?, field("password")?, field("auth")?);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&auth)
        .context("auth is not base64")?;
    ensure!(
        decoded == format!("{username}:{password}").as_bytes(),
        "auth is not base64 of username:password"
    );
    Ok((username, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        match Deployment::from_lookup(lookup(pairs)) {
            Ok(_) => panic!("accepted {pairs:?}"),
            Err(error) => error.to_string(),
        }
    }

    const FULL: &[(&str, &str)] = &[
        ("BERTH_E2E_URLS", "http://127.0.0.1:1/, http://127.0.0.1:2"),
        (
            "BERTH_E2E_SIGNING_KEY",
            "a-signing-key-long-enough-for-hs256-tokens",
        ),
        ("BERTH_E2E_HARBOR_URL", "http://127.0.0.1:3"),
    ];

    #[test]
    fn without_a_deployment_the_message_says_how_to_get_one() {
        let message = error_of(&[]);
        assert!(message.contains("BERTH_E2E_URLS is unset"), "{message}");
        assert!(message.contains("cargo xtask e2e"), "{message}");
        let message = error_of(&[("BERTH_E2E_URLS", "http://a:1,http://b:2")]);
        assert!(message.contains("BERTH_E2E_SIGNING_KEY"), "{message}");
        let message = error_of(&FULL[..2]);
        assert!(
            message.contains("BERTH_E2E_HARBOR_URL is unset"),
            "{message}"
        );
        let message = error_of(&[("BERTH_E2E_URLS", "http://a:1"), FULL[1], FULL[2]]);
        assert!(message.contains("two replicas"), "{message}");
        let message = error_of(&[("BERTH_E2E_URLS", "ftp://a:1,http://b:2"), FULL[1], FULL[2]]);
        assert!(message.contains("not an http(s) URL"), "{message}");
    }

    #[test]
    fn urls_lose_their_trailing_slash_and_harbor_defaults_to_the_emulator_login() {
        let deployment = Deployment::from_lookup(lookup(FULL)).unwrap();
        assert_eq!(deployment.first().url(), "http://127.0.0.1:1");
        assert_eq!(deployment.second().url(), "http://127.0.0.1:2");
        assert_eq!(
            (
                deployment.harbor.username.as_str(),
                deployment.harbor.password.as_str()
            ),
            ("admin", "Harbor12345")
        );
    }

    #[test]
    fn minted_tokens_carry_scopes_roles_and_expire_in_ten_minutes() {
        let deployment = Deployment::from_lookup(lookup(FULL)).unwrap();
        let token = deployment
            .mint(
                "someone",
                &["berth.pull_secrets"],
                &["space_developer:abc".into()],
            )
            .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(FULL[1].1.as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "someone");
        assert_eq!(claims["scope"], "berth.pull_secrets");
        assert_eq!(claims["roles"], json!(["space_developer:abc"]));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            600
        );
        let admin = deployment.admin().unwrap();
        let admin = jsonwebtoken::dangerous::insecure_decode::<Value>(&admin)
            .unwrap()
            .claims;
        assert_eq!(admin["scope"], "berth.admin berth.pull_secrets");
    }

    #[test]
    fn a_given_token_is_the_admin_and_minting_others_is_refused() {
        let deployment =
            Deployment::from_lookup(lookup(&[FULL[0], ("BERTH_E2E_TOKEN", "given"), FULL[2]]))
                .unwrap();
        assert_eq!(deployment.admin().unwrap(), "given");
        let message = deployment.mint("x", &[], &[]).unwrap_err().to_string();
        assert!(message.contains("BERTH_E2E_SIGNING_KEY"), "{message}");
    }

    #[test]
    fn links_are_followed_by_their_path_and_query() {
        assert_eq!(
            Berth::path_of("http://external.example/v3/registry_credentials?page=2&per_page=3")
                .unwrap(),
            "/v3/registry_credentials?page=2&per_page=3"
        );
        assert_eq!(Berth::path_of("http://h/v3/apps").unwrap(), "/v3/apps");
    }

    #[test]
    fn docker_logins_must_match_their_auth() {
        let entry = json!({"username": "u", "password": "p", "auth": "dTpw"});
        assert_eq!(docker_login(&entry).unwrap(), ("u".into(), "p".into()));
        let forged = json!({"username": "u", "password": "q", "auth": "dTpw"});
        assert!(docker_login(&forged).is_err());
    }
}

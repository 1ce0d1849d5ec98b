#![doc = include_str!("../README.md")]

pub mod challenge;
pub mod policy;
pub mod resolver;

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use berth_domain::credential::{Password, Username};
use berth_domain::location::RegistryLocation;
use berth_domain::ports::RegistryVerifier;
use berth_domain::verification::{Probe, VerificationOutcome};
use reqwest::header::{LOCATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use url::{Host, Url};

pub use policy::{InsecureRegistry, NetworkPolicy, PolicyError};
pub use resolver::{HostResolver, SystemResolver};

use challenge::Challenge;
use resolver::{BlockedHost, GuardedResolver};

/// How long a whole verification may take in production.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// The most of a token answer read; a token service answering more is misbehaving.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Same-origin redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// The client could not be built (the TLS backend failed to load).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the registry verification client")]
pub struct BuildError(#[source] reqwest::Error);

/// The [`RegistryVerifier`] adapter: the Registry v2 login handshake (`GET /v2/`, the challenge,
/// a token with the credentials, `/v2/` again) behind the [`NetworkPolicy`].
pub struct RegistryProbe {
    client: reqwest::Client,
    policy: Arc<NetworkPolicy>,
    deadline: Duration,
}

impl RegistryProbe {
    /// A probe on the system's resolver.
    ///
    /// # Errors
    /// [`BuildError`] when the HTTP client cannot be built.
    pub fn new(policy: NetworkPolicy, deadline: Duration) -> Result<Self, BuildError> {
        Self::with_resolver(policy, deadline, Arc::new(SystemResolver))
    }

    /// A probe resolving names through `resolver` (tests point names at their own servers).
    ///
    /// # Errors
    /// [`BuildError`] when the HTTP client cannot be built.
    pub fn with_resolver(
        policy: NetworkPolicy,
        deadline: Duration,
        resolver: Arc<dyn HostResolver>,
    ) -> Result<Self, BuildError> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            // A proxy would resolve the target itself, past the guarded resolver.
            .no_proxy()
            .dns_resolver(GuardedResolver {
                inner: resolver,
                policy: policy.clone(),
            })
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
                    attempt.follow()
                } else {
                    // The 3xx goes back to the handshake, which answers `blocked` or
                    // `unreachable`.
                    attempt.stop()
                }
            }))
            .timeout(deadline)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(BuildError)?;
        Ok(Self {
            client,
            policy,
            deadline,
        })
    }
}

#[async_trait]
impl RegistryVerifier for RegistryProbe {
    #[tracing::instrument(name = "verify registry credential", skip_all, fields(location = %location))]
    async fn verify(
        &self,
        location: &RegistryLocation,
        username: &Username,
        password: &Password,
    ) -> Probe {
        let probe = match self.target(location) {
            Err(probe) => probe,
            Ok(target) => {
                let login = Login {
                    probe: self,
                    target: &target,
                    username,
                    password,
                };
                match tokio::time::timeout(self.deadline, login.run()).await {
                    Ok(probe) => probe,
                    Err(_) => target.probe(VerificationOutcome::Unreachable, self.too_slow()),
                }
            }
        };
        tracing::info!(
            outcome = %probe.outcome,
            endpoint = %probe.endpoint,
            "registry credential verified"
        );
        probe
    }
}

/// The registry's base URL, as the handshake reaches it.
struct Target {
    base: Url,
    endpoint: String,
}

impl Target {
    fn probe(&self, outcome: VerificationOutcome, detail: String) -> Probe {
        Probe::new(outcome, detail, self.endpoint.clone())
    }
}

impl RegistryProbe {
    /// The base URL for a location: Docker Hub's API host for `docker.io`, http only for the
    /// operator's insecure registries; `blocked` when the host itself is refused.
    fn target(&self, location: &RegistryLocation) -> Result<Target, Probe> {
        let authority = location
            .as_str()
            .split_once('/')
            .map_or(location.as_str(), |(authority, _)| authority);
        // Docker Hub's references say docker.io; its registry API lives elsewhere.
        let authority = match authority {
            "docker.io" | "index.docker.io" => "registry-1.docker.io",
            other => other,
        };
        let unparseable = || {
            Probe::new(
                VerificationOutcome::Unreachable,
                format!("'{authority}' is not a host Berth can contact"),
                format!("https://{authority}"),
            )
        };
        // `url` reads every IPv4 spelling (decimal, octal, hex, short) as the address it is.
        let https = Url::parse(&format!("https://{authority}/")).map_err(|_| unparseable())?;
        let host = https.host_str().ok_or_else(unparseable)?.to_owned();
        let http_port = https.port().unwrap_or(80);
        let base = if self.policy.allows_http(&host, http_port) {
            Url::parse(&format!("http://{authority}/")).map_err(|_| unparseable())?
        } else {
            https
        };
        let endpoint = base.as_str().trim_end_matches('/').to_owned();
        let target = Target { base, endpoint };
        self.check_host(&target.base)
            .map_err(|detail| target.probe(VerificationOutcome::Blocked, detail))?;
        Ok(target)
    }

    fn too_slow(&self) -> String {
        format!(
            "The registry did not finish answering within {} ms; check that it is up and reachable \
             from Berth",
            self.deadline.as_millis()
        )
    }

    /// IP-literal hosts never reach the resolver: checked here. Names are checked by the
    /// resolver, except metadata names, refused before any lookup.
    fn check_host(&self, url: &Url) -> Result<(), String> {
        let literal = |address: std::net::IpAddr| {
            self.policy.check(address).map_err(|refusal| BlockedHost {
                host: address.to_string(),
                address: Some(address),
                refusal,
            })
        };
        let checked = match url.host() {
            Some(Host::Ipv4(address)) => literal(address.into()),
            Some(Host::Ipv6(address)) => literal(address.into()),
            Some(Host::Domain(name)) if policy::is_metadata_host(name) => Err(BlockedHost {
                host: name.to_owned(),
                address: None,
                refusal: policy::Refusal::Metadata,
            }),
            Some(Host::Domain(_)) => Ok(()),
            None => return Err("Berth cannot contact a URL without a host".to_owned()),
        };
        checked.map_err(|blocked| blocked.detail())
    }
}

/// One verification's handshake.
struct Login<'a> {
    probe: &'a RegistryProbe,
    target: &'a Target,
    username: &'a Username,
    password: &'a Password,
}

/// The requests of the handshake, to classify their answers.
#[derive(Clone, Copy)]
enum Stage {
    /// `GET /v2/` without credentials.
    Ping,
    /// The token request to the Bearer realm.
    Token,
    /// `GET /v2/` with the credentials (Basic) or the token.
    Login,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ping => "its /v2/ endpoint",
            Self::Token => "its token service",
            Self::Login => "its /v2/ endpoint with the credentials",
        }
    }
}

/// Ends the handshake early with a probe.
type Step<T> = Result<T, Probe>;

impl Login<'_> {
    async fn run(&self) -> Probe {
        match self.handshake().await {
            Ok(probe) | Err(probe) => probe,
        }
    }

    fn end(&self, outcome: VerificationOutcome, detail: impl Into<String>) -> Probe {
        self.target.probe(outcome, detail.into())
    }

    fn v2(&self) -> Step<Url> {
        self.target.base.join("v2/").map_err(|_| {
            self.end(
                VerificationOutcome::Unreachable,
                "the registry URL is malformed",
            )
        })
    }

    async fn handshake(&self) -> Step<Probe> {
        let v2 = self.v2()?;
        let ping = self.send(self.probe.client.get(v2.clone())).await?;
        match ping.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::OK => {
                return Ok(self.end(
                    VerificationOutcome::Unverified,
                    "The registry answers without asking for credentials (anonymous access), so it \
                     cannot tell whether these are right",
                ));
            }
            status => return Err(self.unexpected(status, Stage::Ping)),
        }
        let challenges = challenge::parse(
            ping.headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        );
        // The first challenge Berth speaks, in the registry's order (as containers/image does).
        let chosen = challenges
            .iter()
            .find(|challenge| matches!(challenge.scheme.as_str(), "basic" | "bearer"));
        let request = self.probe.client.get(v2);
        let authenticated = match chosen {
            Some(challenge) if challenge.scheme == "bearer" => {
                let token = self.token(challenge).await?;
                request.bearer_auth(token)
            }
            Some(_) => request.basic_auth(self.username.as_str(), Some(self.password.expose())),
            None => {
                let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
                return Ok(self.end(
                    VerificationOutcome::Unverified,
                    format!(
                        "The registry asks for an authentication scheme Berth does not speak ({}); only \
                         Basic and Bearer can be checked",
                        if schemes.is_empty() { "none named".to_owned() } else { schemes.join(", ") }
                    ),
                ));
            }
        };
        let answer = self.send(authenticated).await?;
        Ok(match answer.status() {
            StatusCode::OK => self.end(
                VerificationOutcome::Valid,
                "The registry accepted the username and password",
            ),
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => self.end(
                VerificationOutcome::Invalid,
                format!(
                    "The registry refused the username and password (HTTP {}); update the credential \
                     with a current password or token",
                    status.as_u16()
                ),
            ),
            status => self.unexpected(status, Stage::Login),
        })
    }

    /// A Bearer token from the challenge's realm, asked for with the credentials.
    async fn token(&self, challenge: &Challenge) -> Step<String> {
        let Some(realm) = challenge.param("realm") else {
            return Err(self.end(
                VerificationOutcome::Unverified,
                "The registry's Bearer challenge names no token service (realm)",
            ));
        };
        let mut url = self.realm(realm)?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                query.append_pair("service", service);
            }
            for scope in challenge
                .param("scope")
                .unwrap_or_default()
                .split_whitespace()
            {
                query.append_pair("scope", scope);
            }
            query.append_pair("account", self.username.as_str());
        }
        let request = self
            .probe
            .client
            .get(url)
            .basic_auth(self.username.as_str(), Some(self.password.expose()));
        let answer = self.send(request).await?;
        match answer.status() {
            StatusCode::OK => {}
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(self.end(
                    VerificationOutcome::Invalid,
                    format!(
                        "The registry's token service refused the username and password (HTTP {}); \
                         update the credential with a current password or token",
                        status.as_u16()
                    ),
                ));
            }
            status => return Err(self.unexpected(status, Stage::Token)),
        }
        let body = self.read_capped(answer).await?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: Option<TokenAnswer> = serde_json::from_slice(&body).ok();
        answer
            .and_then(|answer| answer.token.or(answer.access_token))
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                self.end(
                    VerificationOutcome::Unverified,
                    "The registry's token service answered 200 without a token",
                )
            })
    }

    /// The realm URL if Berth may send the credentials there (`reference/registry-auth.md` 3.5):
    /// https when the registry is (http only for an insecure registry), and the registry's own
    /// host or one under the same registrable domain (registry-1.docker.io to auth.docker.io).
    fn realm(&self, realm: &str) -> Step<Url> {
        let base = &self.target.base;
        let block = |why: String| {
            self.end(
                VerificationOutcome::Blocked,
                format!(
                    "Berth did not send the credentials to the registry's token service: {why}"
                ),
            )
        };
        let url = Url::parse(realm).map_err(|_| {
            self.end(
                VerificationOutcome::Unverified,
                "The registry's Bearer challenge names a token service (realm) that is not a URL",
            )
        })?;
        match url.scheme() {
            "https" => {}
            "http" if base.scheme() == "https" => {
                return Err(block(
                    "its realm is plain http while the registry is https".to_owned(),
                ));
            }
            "http" => {
                let port = url.port_or_known_default().unwrap_or(80);
                let host = url.host_str().unwrap_or_default();
                if !self.probe.policy.allows_http(host, port) {
                    return Err(block(format!(
                        "its realm is plain http on {host}:{port}, which is not in \
                         verification.insecure_registries"
                    )));
                }
            }
            other => return Err(block(format!("its realm uses the {other} scheme"))),
        }
        if !realm_host_allowed(base, &url) {
            return Err(block(format!(
                "its realm is on another host ({})",
                url.host_str().unwrap_or_default()
            )));
        }
        self.probe
            .check_host(&url)
            .map_err(|why| self.end(VerificationOutcome::Blocked, why))?;
        Ok(url)
    }

    async fn send(&self, request: RequestBuilder) -> Step<Response> {
        let response = request
            .send()
            .await
            .map_err(|error| self.transport(&error))?;
        if response.status().is_redirection() {
            return Err(self.redirected(&response));
        }
        Ok(response)
    }

    /// A redirect the client did not follow: off the origin (blocked) or one too many.
    fn redirected(&self, response: &Response) -> Probe {
        let next = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|location| response.url().join(location).ok());
        match next {
            Some(next) if next.origin() != response.url().origin() => self.end(
                VerificationOutcome::Blocked,
                format!(
                    "The registry redirected to another host ({}); Berth follows no redirect off the \
                     registry's host",
                    next.host_str().unwrap_or_default()
                ),
            ),
            _ => self.end(
                VerificationOutcome::Unreachable,
                format!(
                    "The registry answered HTTP {} without a usable redirect",
                    response.status().as_u16()
                ),
            ),
        }
    }

    /// An answer outside the handshake's expectations: 429 proves nothing, a 5xx means the
    /// registry is not usable now, and so does a ping that is neither 200 nor 401 (not a v2
    /// registry); any other answer to a request with credentials proves nothing either way.
    fn unexpected(&self, status: StatusCode, stage: Stage) -> Probe {
        let code = status.as_u16();
        let what = stage.as_str();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return self.end(
                VerificationOutcome::Unverified,
                format!(
                    "The registry is rate limiting Berth (HTTP 429 from {what}); try again later"
                ),
            );
        }
        if status.is_server_error() {
            return self.end(
                VerificationOutcome::Unreachable,
                format!("The registry failed (HTTP {code} from {what}); try again later"),
            );
        }
        match stage {
            Stage::Ping => self.end(
                VerificationOutcome::Unreachable,
                format!(
                    "The host does not answer as a Registry v2 API (HTTP {code} from {what}, expected 200 \
                     or 401); check the location"
                ),
            ),
            Stage::Token | Stage::Login => self.end(
                VerificationOutcome::Unverified,
                format!("The registry answered HTTP {code} from {what}, which proves nothing about the credentials"),
            ),
        }
    }

    /// A request that got no answer: refused by the policy, or the network failed.
    fn transport(&self, error: &reqwest::Error) -> Probe {
        let mut source = error.source();
        let mut root = None;
        while let Some(cause) = source {
            if let Some(blocked) = cause.downcast_ref::<BlockedHost>() {
                return self.end(VerificationOutcome::Blocked, blocked.detail());
            }
            root = Some(cause);
            source = cause.source();
        }
        if error.is_timeout() {
            return self.end(VerificationOutcome::Unreachable, self.probe.too_slow());
        }
        let why = root.map_or_else(|| "the connection failed".to_owned(), ToString::to_string);
        self.end(
            VerificationOutcome::Unreachable,
            format!("Berth could not reach the registry: {why}"),
        )
    }

    /// The body, or `unverified` when it is larger than [`MAX_BODY_BYTES`] (read no further).
    async fn read_capped(&self, mut response: Response) -> Step<Vec<u8>> {
        let too_large = || {
            self.end(
                VerificationOutcome::Unverified,
                format!("The registry's token service answered more than {MAX_BODY_BYTES} bytes"),
            )
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.transport(&error))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The realm's host is the registry's, or (for names only) one under the same registrable
/// domain (eTLD+1 by the Public Suffix List, as distribution's proxy binds realms):
/// `registry-1.docker.io` may send Berth to `auth.docker.io`, `registry.example.co.uk` to
/// `auth.example.co.uk`, but never `foo.co.uk` to `evil.co.uk`, nor anything to another domain.
/// An IP-literal realm must equal the registry's host.
fn realm_host_allowed(registry: &Url, realm: &Url) -> bool {
    match (registry.host(), realm.host()) {
        (Some(Host::Domain(registry)), Some(Host::Domain(realm))) => {
            let registry = registry.trim_end_matches('.').to_ascii_lowercase();
            let realm = realm.trim_end_matches('.').to_ascii_lowercase();
            if registry == realm {
                return true;
            }
            match (psl::domain_str(&registry), psl::domain_str(&realm)) {
                (Some(registry), Some(realm)) => registry == realm,
                _ => false,
            }
        }
        (Some(registry), Some(realm)) => registry == realm,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> RegistryProbe {
        RegistryProbe::new(NetworkPolicy::default(), DEFAULT_DEADLINE).unwrap()
    }

    #[test]
    fn docker_hub_is_reached_at_its_api_host() {
        let probe = probe();
        for (location, endpoint) in [
            ("docker.io", "https://registry-1.docker.io"),
            ("docker.io/library/nginx", "https://registry-1.docker.io"),
            ("index.docker.io/team", "https://registry-1.docker.io"),
            ("ghcr.io/team", "https://ghcr.io"),
            (
                "registry.example.com:5000/a",
                "https://registry.example.com:5000",
            ),
        ] {
            let location = RegistryLocation::parse(location).unwrap();
            let target = probe
                .target(&location)
                .map_err(|probe| probe.detail)
                .unwrap();
            assert_eq!(target.endpoint, endpoint);
        }
    }

    #[test]
    fn a_realm_downgraded_to_http_or_on_another_scheme_is_blocked() {
        let probe = probe();
        let target = probe
            .target(&RegistryLocation::parse("registry.example.com").unwrap())
            .map_err(|probe| probe.detail)
            .unwrap();
        let username = Username::parse("user").unwrap();
        let password = Password::parse("pw".to_owned().into()).unwrap();
        let login = Login {
            probe: &probe,
            target: &target,
            username: &username,
            password: &password,
        };
        for (realm, outcome) in [
            (
                "http://registry.example.com/token",
                VerificationOutcome::Blocked,
            ),
            (
                "http://auth.example.com/token",
                VerificationOutcome::Blocked,
            ),
            (
                "ftp://registry.example.com/token",
                VerificationOutcome::Blocked,
            ),
            (
                "https://evil.example.org/token",
                VerificationOutcome::Blocked,
            ),
            ("https://127.0.0.1/token", VerificationOutcome::Blocked),
            ("not a url", VerificationOutcome::Unverified),
        ] {
            let refused = login.realm(realm).unwrap_err();
            assert_eq!(refused.outcome, outcome, "{realm}: {refused:?}");
        }
        for realm in [
            "https://registry.example.com/token",
            "https://auth.example.com/token",
        ] {
            assert!(login.realm(realm).is_ok(), "{realm}");
        }
    }

    #[test]
    fn realm_hosts_must_be_the_registry_or_share_its_registrable_domain() {
        for (registry, realm, allowed) in [
            (
                "https://registry-1.docker.io/",
                "https://auth.docker.io/token",
                true,
            ),
            ("https://ghcr.io/", "https://ghcr.io/token", true),
            ("https://r.example.com/", "https://auth.example.com/t", true),
            ("https://r.example.com/", "https://example.com/t", true),
            ("https://r.example.com/", "https://a.b.example.com/t", true),
            ("https://r.example.com/", "https://evil.com/t", false),
            (
                "https://r.example.com/",
                "https://example.com.evil.com/t",
                false,
            ),
            ("https://r.example.com/", "https://notexample.com/t", false),
            ("https://example.com/", "https://evil.com/t", false),
            ("https://example.com/", "https://auth.example.com/t", true),
            (
                "https://registry.example.co.uk/",
                "https://auth.example.co.uk/t",
                true,
            ),
            ("https://foo.co.uk/", "https://evil.co.uk/t", false),
            ("https://r.github.io/", "https://evil.github.io/t", false),
            ("https://localhost/", "https://evil/t", false),
            ("https://10.0.0.1/", "https://10.0.0.1/t", true),
            ("https://10.0.0.1/", "https://10.0.0.2/t", false),
            ("https://r.example.com/", "https://127.0.0.1/t", false),
            ("https://127.0.0.1:5000/", "https://127.0.0.1:6000/t", true),
            ("https://[::1]/", "https://[::1]/t", true),
        ] {
            let registry = Url::parse(registry).unwrap();
            let realm = Url::parse(realm).unwrap();
            assert_eq!(
                realm_host_allowed(&registry, &realm),
                allowed,
                "{registry} -> {realm}"
            );
        }
    }

    #[test]
    fn every_ipv4_spelling_is_read_as_its_address() {
        for spelling in [
            "2130706433",
            "0x7f.1",
            "0177.0.0.1",
            "127.1",
            "0x7f000001",
            "0x7F.0.0.1",
            "017700000001",
            "127.0.0.1",
        ] {
            let url = Url::parse(&format!("https://{spelling}:5000/")).unwrap();
            assert_eq!(
                url.host(),
                Some(Host::Ipv4(std::net::Ipv4Addr::LOCALHOST)),
                "{spelling}"
            );
        }
    }
}

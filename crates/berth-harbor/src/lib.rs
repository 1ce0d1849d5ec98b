#![doc = include_str!("../README.md")]

use std::time::Duration;

use async_trait::async_trait;
use berth_domain::ports::{
    CreatedRobot, ProvisionError, ProvisionedProject, ProvisionedQuota, ProvisionedRobot,
    RegistryProvisioner,
};
use berth_domain::registry::{
    ExpiresInDays, ProjectName, ProvisionedProjectId, ProvisionedQuotaId, ProvisionedRobotId,
    QuotaGb, RobotAccess, RobotName,
};
use reqwest::{Method, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub mod request_id {
    //! The id of the Berth request being served, sent to Harbor as `X-Request-Id` so one id
    //! follows a call through both services' logs.

    tokio::task_local! {
        /// Set by the HTTP layer around each request.
        pub static REQUEST_ID: String;
    }

    pub(crate) fn current() -> String {
        REQUEST_ID
            .try_with(Clone::clone)
            .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string())
    }
}

/// How to reach Harbor.
#[derive(Debug, Clone)]
pub struct HarborSettings {
    /// `https://harbor.example.com`, without `/api/v2.0`.
    pub url: String,
    pub username: String,
    pub password: SecretString,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// The registry host clients pull from; defaults to the URL's host and port.
    pub registry_endpoint: Option<String>,
}

/// A Harbor setting that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum HarborConfigError {
    #[error("harbor.url (BERTH_HARBOR__URL) is not an http(s) URL")]
    Url,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Harbor over HTTP.
pub struct HarborClient {
    http: reqwest::Client,
    api: String,
    username: String,
    password: SecretString,
    endpoint: String,
}

const DEFAULT_ROBOT_DESCRIPTION: &str = "Managed by Berth";
const PAGE_SIZE: usize = 100;

impl HarborClient {
    /// # Errors
    /// [`HarborConfigError`] for a URL that is not http(s).
    pub fn new(settings: HarborSettings) -> Result<Self, HarborConfigError> {
        let url = reqwest::Url::parse(&settings.url).map_err(|_| HarborConfigError::Url)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(HarborConfigError::Url);
        }
        let endpoint = settings
            .registry_endpoint
            .clone()
            .unwrap_or_else(|| match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_owned(),
            });
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|error| HarborConfigError::Client(error.to_string()))?;
        Ok(Self {
            http,
            api: format!("{}/api/v2.0", settings.url.trim_end_matches('/')),
            username: settings.username,
            password: settings.password,
            endpoint,
        })
    }

    /// Sends one call; idempotent methods are retried once when Harbor is unavailable.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        name_header: bool,
    ) -> Result<Response, ProvisionError> {
        let idempotent = matches!(method, Method::GET | Method::HEAD | Method::PUT);
        let attempts = if idempotent { 2 } else { 1 };
        let mut last_error = ProvisionError::Unavailable("no attempt made".into());
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            match self
                .call_once(method.clone(), path, body, name_header)
                .await
            {
                Err(ProvisionError::Unavailable(reason)) => {
                    last_error = ProvisionError::Unavailable(reason)
                }
                other => return other,
            }
        }
        Err(last_error)
    }

    #[tracing::instrument(
        name = "harbor.call",
        skip(self, body, name_header),
        fields(otel.kind = "client", http.method = %method, harbor.path = path)
    )]
    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        name_header: bool,
    ) -> Result<Response, ProvisionError> {
        let request_id = request_id::current();
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.api))
            .basic_auth(&self.username, Some(self.password.expose_secret()))
            .header("x-request-id", &request_id);
        if name_header {
            request = request.header("x-is-resource-name", "true");
        }
        // W3C trace context: Harbor's spans join the caller's trace.
        let context =
            tracing_opentelemetry::OpenTelemetrySpanExt::context(&tracing::Span::current());
        let mut carrier = std::collections::HashMap::new();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut carrier)
        });
        for (name, value) in carrier {
            request = request.header(name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = std::time::Instant::now();
        let response = request.send().await.map_err(|error| {
            let reason = transport_reason(&error);
            record(&method, path, name_header, "unavailable", started);
            tracing::warn!(%method, path, request_id, error = %error.without_url(), "Harbor call failed");
            ProvisionError::Unavailable(reason)
        })?;
        let status = response.status();
        record(&method, path, name_header, status.as_str(), started);
        tracing::debug!(%method, path, request_id, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "Harbor call");
        if status.is_success() {
            return Ok(response);
        }
        let message = harbor_message(response).await;
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                tracing::error!(
                    %method,
                    path,
                    request_id,
                    status = status.as_u16(),
                    "Harbor refused Berth's credential (harbor.username, harbor.password)"
                );
                ProvisionError::Misconfigured
            }
            StatusCode::NOT_FOUND => ProvisionError::NotFound,
            StatusCode::CONFLICT => ProvisionError::Conflict,
            StatusCode::PRECONDITION_FAILED => ProvisionError::Precondition(message),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                tracing::error!(%method, path, request_id, status = status.as_u16(), message, "Harbor rejected a request");
                ProvisionError::Rejected(message)
            }
            _ => ProvisionError::Unavailable(format!("Harbor answered {status}")),
        })
    }

    async fn json<T: for<'de> Deserialize<'de>>(response: Response) -> Result<T, ProvisionError> {
        response
            .json::<T>()
            .await
            .map_err(|error| ProvisionError::Unavailable(transport_reason(&error)))
    }
}

/// Counts and times a Harbor call by operation (`POST /robots`, `GET /projects/{project}`, ...).
fn record(
    method: &Method,
    path: &str,
    name_header: bool,
    outcome: &str,
    started: std::time::Instant,
) {
    let path = path.split('?').next().unwrap_or_default();
    let template: Vec<&str> = path
        .split('/')
        .enumerate()
        .map(|(index, segment)| match segment {
            _ if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) => "{id}",
            _ if name_header && index == 2 => "{project}",
            _ if name_header && index == 4 => "{repository}",
            _ => segment,
        })
        .collect();
    let labels = [
        ("operation", format!("{method} {}", template.join("/"))),
        ("outcome", outcome.to_owned()),
    ];
    metrics::counter!("berth_harbor_calls_total", &labels).increment(1);
    metrics::histogram!("berth_harbor_call_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
}

fn transport_reason(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "unreachable".into()
    } else if error.is_body() || error.is_decode() {
        "the answer was cut or malformed".into()
    } else {
        "the request failed".into()
    }
}

/// The message of Harbor's `{"errors":[{"code","message"}]}` envelope.
async fn harbor_message(response: Response) -> String {
    let body: Value = response.json().await.unwrap_or(Value::Null);
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or("no message")
        .to_owned()
}

fn parse_time(text: Option<&str>) -> OffsetDateTime {
    text.and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn expiry(expires_at: i64) -> Option<OffsetDateTime> {
    (expires_at != -1).then(|| {
        OffsetDateTime::from_unix_timestamp(expires_at).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    })
}

#[derive(Deserialize)]
struct ProjectBody {
    project_id: i64,
    #[serde(default)]
    owner_name: String,
    creation_time: Option<String>,
    #[serde(default)]
    repo_count: u64,
}

#[derive(Deserialize)]
struct Storage {
    storage: i64,
}

#[derive(Deserialize)]
struct QuotaBody {
    id: i64,
    hard: Storage,
    used: Option<Storage>,
}

#[derive(Deserialize)]
struct RobotBody {
    id: i64,
    name: String,
    #[serde(default = "never")]
    expires_at: i64,
}

#[derive(Deserialize)]
struct RobotCreatedBody {
    id: i64,
    name: String,
    secret: String,
    #[serde(default = "never")]
    expires_at: i64,
}

fn never() -> i64 {
    -1
}

#[derive(Deserialize)]
struct RepositoryBody {
    name: String,
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A repository name as Harbor's repository routes take it: URL-encoded twice, so that `a/b`
/// travels as `a%252Fb` (Harbor decodes the path once more itself).
fn repository_segment(name: &str) -> String {
    encode_segment(&encode_segment(name))
}

/// The `duration` (days from creation, as Harbor counts a robot's lifetime) that makes a robot
/// created at `created` expire `days` whole days after `now` at the earliest.
fn duration_from_creation(created: OffsetDateTime, now: OffsetDateTime, days: i64) -> i64 {
    let elapsed = (now - created).whole_seconds().max(0);
    let elapsed_days = (elapsed + 86_399) / 86_400;
    elapsed_days + days
}

#[async_trait]
impl RegistryProvisioner for HarborClient {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn account(&self) -> String {
        self.username.clone()
    }

    async fn ping(&self) -> Result<(), ProvisionError> {
        self.call_once(Method::GET, "/ping", None, false)
            .await
            .map(drop)
    }

    async fn create_project(
        &self,
        name: &ProjectName,
        quota: QuotaGb,
    ) -> Result<ProvisionedProjectId, ProvisionError> {
        let body = json!({"project_name": name.as_str(), "metadata": {"public": "false"}, "storage_limit": quota.bytes()});
        let response = self
            .call(Method::POST, "/projects", Some(&body), false)
            .await?;
        response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .and_then(|location| location.rsplit('/').next())
            .and_then(|id| id.parse::<i64>().ok())
            .map(ProvisionedProjectId::new)
            .ok_or_else(|| {
                ProvisionError::Unavailable("Harbor's answer had no project Location".into())
            })
    }

    async fn find_project(
        &self,
        name: &ProjectName,
    ) -> Result<Option<ProvisionedProject>, ProvisionError> {
        match self
            .call(Method::GET, &format!("/projects/{name}"), None, true)
            .await
        {
            Ok(response) => {
                let project: ProjectBody = Self::json(response).await?;
                Ok(Some(ProvisionedProject::new(
                    ProvisionedProjectId::new(project.project_id),
                    project.owner_name,
                    parse_time(project.creation_time.as_deref()),
                    project.repo_count,
                )))
            }
            Err(ProvisionError::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn delete_project(&self, id: ProvisionedProjectId) -> Result<(), ProvisionError> {
        self.call(Method::DELETE, &format!("/projects/{id}"), None, false)
            .await
            .map(drop)
    }

    async fn project_quota(
        &self,
        project_id: ProvisionedProjectId,
    ) -> Result<ProvisionedQuota, ProvisionError> {
        let path = format!("/quotas?reference=project&reference_id={project_id}");
        let quotas: Vec<QuotaBody> =
            Self::json(self.call(Method::GET, &path, None, false).await?).await?;
        let quota = quotas.into_iter().next().ok_or(ProvisionError::NotFound)?;
        Ok(ProvisionedQuota::new(
            ProvisionedQuotaId::new(quota.id),
            quota.hard.storage,
            quota.used.map_or(0, |u| u.storage),
        ))
    }

    async fn set_quota(
        &self,
        quota_id: ProvisionedQuotaId,
        quota: QuotaGb,
    ) -> Result<(), ProvisionError> {
        let body = json!({"hard": {"storage": quota.bytes()}});
        self.call(
            Method::PUT,
            &format!("/quotas/{quota_id}"),
            Some(&body),
            false,
        )
        .await
        .map(drop)
    }

    async fn create_robot(
        &self,
        project: &ProjectName,
        name: &RobotName,
        access: RobotAccess,
        expires_in_days: Option<ExpiresInDays>,
    ) -> Result<CreatedRobot, ProvisionError> {
        let mut actions = vec![json!({"resource": "repository", "action": "pull"})];
        if access == RobotAccess::PushPull {
            actions.push(json!({"resource": "repository", "action": "push"}));
        }
        let body = json!({
            "name": name.as_str(),
            "description": DEFAULT_ROBOT_DESCRIPTION,
            "level": "project",
            "duration": expires_in_days.map_or(-1, |days| i64::from(days.get())),
            "disable": false,
            "permissions": [{"kind": "project", "namespace": project.as_str(), "access": actions}],
        });
        let created: RobotCreatedBody = Self::json(
            self.call(Method::POST, "/robots", Some(&body), false)
                .await?,
        )
        .await?;
        Ok(CreatedRobot::new(
            ProvisionedRobot::new(
                ProvisionedRobotId::new(created.id),
                created.name,
                expiry(created.expires_at),
            ),
            SecretString::from(created.secret),
        ))
    }

    async fn find_robot(
        &self,
        project_id: ProvisionedProjectId,
        project: &ProjectName,
        name: &RobotName,
    ) -> Result<Option<ProvisionedRobot>, ProvisionError> {
        // Harbor's full name is `<prefix><project>+<name>`; the prefix is Harbor's setting, so
        // match the known tail and take the whole name from Harbor.
        let tail = format!("{project}+{name}");
        for page in 1.. {
            let path = format!(
                "/robots?q=Level%3Dproject%2CProjectID%3D{project_id}&page={page}&page_size={PAGE_SIZE}"
            );
            let robots: Vec<RobotBody> =
                Self::json(self.call(Method::GET, &path, None, false).await?).await?;
            let count = robots.len();
            if let Some(robot) = robots.into_iter().find(|robot| robot.name.ends_with(&tail)) {
                return Ok(Some(ProvisionedRobot::new(
                    ProvisionedRobotId::new(robot.id),
                    robot.name,
                    expiry(robot.expires_at),
                )));
            }
            if count < PAGE_SIZE {
                break;
            }
        }
        Ok(None)
    }

    async fn refresh_robot_secret(
        &self,
        robot_id: ProvisionedRobotId,
    ) -> Result<SecretString, ProvisionError> {
        let body: Value = Self::json(
            self.call(
                Method::PATCH,
                &format!("/robots/{robot_id}"),
                Some(&json!({})),
                false,
            )
            .await?,
        )
        .await?;
        body["secret"]
            .as_str()
            .map(|secret| SecretString::from(secret.to_owned()))
            .ok_or_else(|| {
                ProvisionError::Unavailable("Harbor's refresh answer had no secret".into())
            })
    }

    async fn delete_robot(&self, robot_id: ProvisionedRobotId) -> Result<(), ProvisionError> {
        self.call(Method::DELETE, &format!("/robots/{robot_id}"), None, false)
            .await
            .map(drop)
    }

    async fn renew_robot(
        &self,
        robot_id: ProvisionedRobotId,
        expires_in_days: Option<ExpiresInDays>,
    ) -> Result<ProvisionedRobot, ProvisionError> {
        let path = format!("/robots/{robot_id}");
        // PUT takes the whole robot as GET gives it (full name, level, permissions); only the
        // duration changes, and Harbor counts it from the robot's creation.
        let mut robot: Value =
            Self::json(self.call(Method::GET, &path, None, false).await?).await?;
        let created = parse_time(robot["creation_time"].as_str());
        robot["duration"] = json!(expires_in_days.map_or(-1, |days| {
            duration_from_creation(created, OffsetDateTime::now_utc(), i64::from(days.get()))
        }));
        self.call(Method::PUT, &path, Some(&robot), false).await?;
        let renewed: RobotBody =
            Self::json(self.call(Method::GET, &path, None, false).await?).await?;
        Ok(ProvisionedRobot::new(
            ProvisionedRobotId::new(renewed.id),
            renewed.name,
            expiry(renewed.expires_at),
        ))
    }

    async fn repositories(&self, project: &ProjectName) -> Result<Vec<String>, ProvisionError> {
        let path = format!("/projects/{project}/repositories?page=1&page_size={PAGE_SIZE}");
        let repositories: Vec<RepositoryBody> =
            Self::json(self.call(Method::GET, &path, None, true).await?).await?;
        // Harbor lists `<project>/<name>`; its routes take `<name>`.
        let prefix = format!("{project}/");
        Ok(repositories
            .into_iter()
            .map(|repository| match repository.name.strip_prefix(&prefix) {
                Some(name) => name.to_owned(),
                None => repository.name,
            })
            .collect())
    }

    async fn delete_repository(
        &self,
        project: &ProjectName,
        repository: &str,
    ) -> Result<(), ProvisionError> {
        let path = format!(
            "/projects/{project}/repositories/{}",
            repository_segment(repository)
        );
        self.call(Method::DELETE, &path, None, true).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_are_encoded_twice_as_harbor_requires() {
        assert_eq!(repository_segment("team/app"), "team%252Fapp");
        assert_eq!(repository_segment("plain-name_1.0"), "plain-name_1.0");
    }

    #[test]
    fn a_renewal_counts_from_creation_and_never_falls_short() {
        let created = OffsetDateTime::UNIX_EPOCH;
        let day = time::Duration::days(1);
        assert_eq!(duration_from_creation(created, created, 30), 30);
        assert_eq!(duration_from_creation(created, created + day * 40, 30), 70);
        let later = created + day * 40 + time::Duration::seconds(1);
        assert_eq!(duration_from_creation(created, later, 30), 71);
    }
}

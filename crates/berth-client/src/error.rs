//! What a call to Berth can end in besides its answer.

use std::error::Error as _;

/// Berth's V3 error envelope (`{"errors":[{"code","title","detail"}]}`), with the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status, e.g. 422.
    pub status: u16,
    /// Cloud Foundry's numeric code, e.g. 10008.
    pub code: u32,
    /// Cloud Foundry's title, e.g. `CF-UnprocessableEntity`.
    pub title: String,
    /// The human-readable detail, e.g. `Location must not contain a scheme`.
    pub detail: String,
}

/// Every way a call of [`crate::BerthClient`] can fail. No variant ever carries the token or a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Berth refused the request and said why in its V3 envelope.
    #[error("Berth answered {} {}: {}", .0.status, .0.title, .0.detail)]
    Api(ApiError),
    /// Berth (or something in front of it) answered an error without a V3 envelope.
    #[error("Berth answered HTTP {status} without an error envelope")]
    Status { status: u16 },
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("cannot reach Berth at {url}: {reason}")]
    Unreachable {
        url: String,
        reason: String,
        #[source]
        source: reqwest::Error,
    },
    /// An answer that is not the documented wire shape, or larger than a client accepts.
    #[error("Berth's answer to {url} is not what the API describes: {reason}")]
    Decode { url: String, reason: String },
    /// The base URL given to the client is unusable.
    #[error("invalid Berth URL: {0}")]
    InvalidUrl(String),
}

impl ClientError {
    /// The V3 envelope, when Berth answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error),
            _ => None,
        }
    }

    pub(crate) fn unreachable(url: &reqwest::Url, source: reqwest::Error) -> Self {
        // reqwest's own message repeats the URL; the root causes say what happened.
        let mut causes = Vec::new();
        let mut cause = source.source();
        while let Some(error) = cause {
            causes.push(error.to_string());
            cause = error.source();
        }
        let reason = if source.is_timeout() {
            "timed out".to_owned()
        } else {
            causes
                .last()
                .cloned()
                .unwrap_or_else(|| "no answer".to_owned())
        };
        Self::Unreachable {
            url: url.to_string(),
            reason,
            source,
        }
    }
}

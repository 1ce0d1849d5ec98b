//! `/healthz` (the process serves) and `/readyz` (its dependencies answer), each with a small
//! JSON body naming what failed.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use berth_domain::ports::RegistryProvisioner;
use serde::Serialize;

use crate::ops::OpsProbe;
use crate::state::AppState;

/// What `/readyz` checks.
#[derive(Clone)]
pub struct Readiness {
    /// The database and the key ring.
    pub ops: Arc<dyn OpsProbe>,
    /// `None` when no Harbor is configured: then it is not checked.
    pub harbor: Option<Arc<dyn RegistryProvisioner>>,
}

/// `/healthz`'s answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthBody {
    pub status: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Report {
    status: &'static str,
    checks: Checks,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Checks {
    database: String,
    key_ring: String,
    harbor: String,
}

const OK: &str = "ok";

/// `Retry-After` on every 503 Berth answers: the database or Harbor may be back by then.
pub(crate) const RETRY_AFTER_SECONDS: &str = "5";

/// How long each of `/readyz`'s checks may take: a probe must get its answer in time even when
/// a dependency has stopped answering (a frozen database holds a query forever).
pub(crate) const CHECK_DEADLINE: Duration = Duration::from_secs(1);

const UNREACHABLE: &str = "unreachable";

impl Readiness {
    async fn check(&self) -> Report {
        let (database, harbor) = futures_util::future::join(
            tokio::time::timeout(CHECK_DEADLINE, self.check_database()),
            tokio::time::timeout(CHECK_DEADLINE, self.check_harbor()),
        )
        .await;
        let (database, key_ring) = database.unwrap_or_else(|_| {
            (
                UNREACHABLE.to_owned(),
                "unknown: the database is unreachable".to_owned(),
            )
        });
        let harbor = harbor.unwrap_or_else(|_| UNREACHABLE.to_owned());
        let ready = database == OK && key_ring == OK && (harbor == OK || self.harbor.is_none());
        Report {
            status: if ready { "ready" } else { "not_ready" },
            checks: Checks {
                database,
                key_ring,
                harbor,
            },
        }
    }

    /// The database's and the key ring's checks.
    async fn check_database(&self) -> (String, String) {
        if self.ops.ping_database().await.is_err() {
            return (
                UNREACHABLE.to_owned(),
                "unknown: the database is unreachable".to_owned(),
            );
        }
        let key_ring = match self.ops.missing_key_labels().await {
            Ok(missing) if missing.is_empty() => OK.to_owned(),
            Ok(missing) => format!("labels missing from the ring: {}", missing.join(", ")),
            Err(_) => "unknown: the database is unreachable".to_owned(),
        };
        (OK.to_owned(), key_ring)
    }

    async fn check_harbor(&self) -> String {
        match &self.harbor {
            None => "not configured".to_owned(),
            Some(harbor) => match harbor.ping().await {
                Ok(()) => OK.to_owned(),
                Err(_) => UNREACHABLE.to_owned(),
            },
        }
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    operation_id = "healthz",
    security(()),
    responses((status = 200, description = "The process serves", body = HealthBody)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthBody {
        status: "ok".into(),
    })
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    operation_id = "readyz",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Report),
        (status = 503, description = "Not ready; the body names what failed", body = Report),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let report = state.readiness.check().await;
    if report.status == "ready" {
        return HttpResponse::Ok().json(report);
    }
    HttpResponse::ServiceUnavailable()
        .insert_header((actix_web::http::header::RETRY_AFTER, RETRY_AFTER_SECONDS))
        .json(report)
}

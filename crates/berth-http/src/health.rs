//! `/healthz` (the process serves) and `/readyz` (its dependencies answer), each with a small
//! JSON body naming what failed.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use berth_domain::ports::RegistryProvisioner;
use berth_persistence::Connection;
use berth_persistence::sealing::KeyRing;
use serde::Serialize;

use crate::state::AppState;

/// What `/readyz` checks.
#[derive(Clone)]
pub struct Readiness {
    pub db: Connection,
    pub keys: Arc<KeyRing>,
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

impl Readiness {
    async fn check(&self) -> Report {
        let database = match berth_persistence::ping(&self.db).await {
            Ok(()) => OK.to_owned(),
            Err(_) => "unreachable".to_owned(),
        };
        let key_ring = match berth_persistence::keys::missing_labels(&self.db, &self.keys).await {
            Ok(missing) if missing.is_empty() => OK.to_owned(),
            Ok(missing) => format!("labels missing from the ring: {}", missing.join(", ")),
            Err(_) => "unknown: the database is unreachable".to_owned(),
        };
        let harbor = match &self.harbor {
            None => "not configured".to_owned(),
            Some(harbor) => match harbor.ping().await {
                Ok(()) => OK.to_owned(),
                Err(_) => "unreachable".to_owned(),
            },
        };
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
}

#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz", security(()), responses((status = 200, description = "The process serves", body = HealthBody)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthBody {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz", security(()), responses((status = 200, description = "Ready", body = Report), (status = 503, description = "Not ready; the body names what failed", body = Report)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let report = state.readiness.check().await;
    let mut response = if report.status == "ready" {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(report)
}

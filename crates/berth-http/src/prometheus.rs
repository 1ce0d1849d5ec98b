//! Prometheus metrics at `/metrics`: requests by route template, method and status; Harbor
//! calls (recorded by `berth-harbor`); database pool usage; sealed rows per key label.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::ops::OpsProbe;

/// Latency buckets in seconds, from a cache hit to a slow Harbor call.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder, installed once (metrics are global to a process).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|error| tracing::warn!(%error, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

/// Counts and times every request by its route template (never the raw path, whose guids would
/// make a series per resource).
pub async fn record_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = request.method().to_string();
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let response = next.call(request).await;
    let status = match &response {
        Ok(response) => response.status().as_u16().to_string(),
        Err(error) => error.as_response_error().status_code().as_u16().to_string(),
    };
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("berth_http_requests_total", &labels).increment(1);
    metrics::histogram!("berth_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`, registered on whichever server serves the metrics.
pub fn route(config: &mut web::ServiceConfig) {
    config.service(crate::v3::resource("/metrics", "GET").route(web::get().to(scrape)));
}

/// The scrape endpoint. Gauges that are read from the database are refreshed here.
pub async fn scrape(ops: web::Data<dyn OpsProbe>) -> HttpResponse {
    let Some(handle) = handle() else {
        return HttpResponse::ServiceUnavailable()
            .body("metrics are not available in this process\n");
    };
    let usage = ops.pool_usage();
    metrics::gauge!("berth_db_pool_connections", "state" => "open").set(f64::from(usage.open));
    metrics::gauge!("berth_db_pool_connections", "state" => "idle").set(usage.idle as f64);
    // Bounded like `/readyz`: a database that stopped answering must not hold the scrape.
    let counts = tokio::time::timeout(crate::health::CHECK_DEADLINE, ops.sealed_rows()).await;
    if let Ok(Ok(counts)) = counts {
        for count in counts {
            metrics::gauge!("berth_sealed_rows", "table" => count.table, "label" => count.label)
                .set(count.rows as f64);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

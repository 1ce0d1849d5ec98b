//! Logs and traces: readable logs in dev mode, JSON in production; OpenTelemetry spans exported
//! over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `telemetry.otlp_endpoint`) is set, with
//! W3C trace context accepted from callers and sent on to Harbor.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the span exporter alive; dropping it flushes and shuts the exporter down.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber (and, with an OTLP endpoint, the span exporter). `RUST_LOG`
/// wins over the configured level. A second call (tests) keeps the first subscriber.
pub fn init(
    json: bool,
    level: Option<&str>,
    otlp_endpoint: Option<&str>,
    service_name: &str,
) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.unwrap_or("info,sea_orm=warn,sqlx=warn")));
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .fmt_fields(AppendJsonFields)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().boxed()
    };
    let endpoint = otlp_endpoint
        .map(str::to_owned)
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok());
    let provider = endpoint.and_then(|endpoint| match tracer_provider(&endpoint, service_name) {
        Ok(provider) => Some(provider),
        Err(error) => {
            eprintln!("OpenTelemetry export disabled: {error}");
            None
        }
    });
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("berth")));
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init();
    TelemetryGuard { provider }
}

fn tracer_provider(endpoint: &str, service_name: &str) -> Result<SdkTracerProvider, String> {
    let traces_endpoint = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_endpoint)
        .build()
        .map_err(|error| error.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(provider)
}

/// The variables the OTLP exporter reads its compression from, the signal's own first.
const COMPRESSION_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
];

/// The compression variables the exporter must not see, given each one's value: an empty one
/// (the specification reads it as unset), and all of them when the one that applies is `none`.
/// opentelemetry-otlp 0.32 parses only `gzip` and `zstd` and turns export off on anything else,
/// including the specification's `none`; without these variables it sends uncompressed.
fn compression_variables_to_drop(value: impl Fn(&str) -> Option<String>) -> Vec<&'static str> {
    let set: Vec<(&'static str, String)> = COMPRESSION_VARIABLES
        .iter()
        .filter_map(|name| value(name).map(|value| (*name, value.trim().to_owned())))
        .collect();
    let applies = set.iter().find(|(_, value)| !value.is_empty());
    let uncompressed = applies.is_none_or(|(_, value)| value.eq_ignore_ascii_case("none"));
    set.iter()
        .filter(|(_, value)| uncompressed || value.is_empty())
        .map(|(name, _)| *name)
        .collect()
}

/// Makes `OTEL_EXPORTER_OTLP_COMPRESSION=none` (and the traces variable) mean what the
/// specification says, uncompressed export, rather than no export: when such a value is set, the
/// process starts itself again without it (safe Rust cannot unset a variable of a running
/// process, and the exporter reads them itself). Call first thing in `main`, before any thread.
///
/// # Errors
/// Only when starting again fails; otherwise it returns only when there is nothing to drop.
pub fn restart_without_unparsable_compression() -> std::io::Result<()> {
    let drop = compression_variables_to_drop(|name| std::env::var(name).ok());
    if drop.is_empty() {
        return Ok(());
    }
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.args(std::env::args_os().skip(1));
    for name in drop {
        command.env_remove(name);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        Err(command.exec())
    }
    #[cfg(not(unix))]
    {
        let status = command.status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// The request span: tracing-actix-web's (route template, method, status, trace id from an
/// incoming `traceparent`) plus the actor's subject and the organization, filled in when known.
pub struct BerthRootSpan;

impl RootSpanBuilder for BerthRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(
            request,
            enduser.id = tracing::field::Empty,
            berth.organization = tracing::field::Empty
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Span fields for JSON log lines, kept as one JSON object that recorded values are appended to.
/// tracing-subscriber's `JsonFields` parses and rewrites the whole object each time a field is
/// recorded, several times per request, for log lines that are seldom written: the benchmark's
/// profile showed it as the largest single cost of a `GET` (bench/README.md). A key recorded
/// twice appears twice; JSON readers keep the last value.
struct AppendJsonFields;

/// Writes recorded values as the members of a JSON object (`"name":value,...`), straight into
/// a buffer.
struct JsonMembers(Vec<u8>);

impl JsonMembers {
    fn member(&mut self, field: &tracing::field::Field, value: &impl serde::Serialize) {
        if !self.0.is_empty() {
            self.0.push(b',');
        }
        // Writing to a Vec cannot fail, and a name or a value always serializes.
        let _ = serde_json::to_writer(&mut self.0, field.name());
        self.0.push(b':');
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    fn into_text(self) -> String {
        String::from_utf8(self.0).unwrap_or_default()
    }
}

impl tracing::field::Visit for JsonMembers {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.member(field, &value);
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.member(field, &value);
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.member(field, &value);
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.member(field, &value);
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.member(field, &value);
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.member(field, &format!("{value:?}"));
    }
}

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for AppendJsonFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut members = JsonMembers(Vec::with_capacity(256));
        fields.record(&mut members);
        write!(writer, "{{{}}}", members.into_text())
    }

    fn add_fields(
        &self,
        current: &'writer mut tracing_subscriber::fmt::FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> std::fmt::Result {
        let mut members = JsonMembers(Vec::new());
        fields.record(&mut members);
        if members.0.is_empty() {
            return Ok(());
        }
        let members = members.into_text();
        // `{...}` + `"k":v` becomes `{...,"k":v}`; what is there is never parsed again.
        match current.fields.strip_suffix('}') {
            Some(open) if open.len() > 1 => {
                current.fields.truncate(open.len());
                current.fields.push(',');
            }
            _ => {
                current.fields.clear();
                current.fields.push('{');
            }
        }
        current.fields.push_str(&members);
        current.fields.push('}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_none_or_empty_is_dropped_and_gzip_kept() {
        let drop = |traces: Option<&str>, general: Option<&str>| {
            compression_variables_to_drop(|name| {
                match name {
                    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION" => traces,
                    _ => general,
                }
                .map(str::to_owned)
            })
        };
        const TRACES: &str = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
        const GENERAL: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
        assert!(drop(None, None).is_empty());
        assert!(drop(None, Some("gzip")).is_empty());
        assert!(drop(Some("gzip"), Some("none")).is_empty());
        assert_eq!(drop(None, Some("none")), [GENERAL]);
        assert_eq!(drop(None, Some(" None ")), [GENERAL]);
        assert_eq!(drop(Some("none"), Some("gzip")), [TRACES, GENERAL]);
        assert_eq!(drop(Some(""), Some("gzip")), [TRACES]);
        assert_eq!(drop(Some(""), None), [TRACES]);
    }

    #[test]
    fn recorded_span_fields_are_appended_as_json() {
        let fields = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = fields.clone();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .fmt_fields(AppendJsonFields)
            .with_writer(move || Capture(seen.clone()));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "request",
                route = "/v3/x",
                status = tracing::field::Empty,
                user = tracing::field::Empty
            );
            span.record("status", 200u64);
            span.record("user", "alice \"q\"");
            let _entered = span.enter();
            let inner = tracing::info_span!("inner", later = tracing::field::Empty);
            inner.record("later", true);
            let _inner = inner.enter();
            tracing::info!("inside");
        });
        let lines = fields.lock().unwrap().join("");
        let line: serde_json::Value = serde_json::from_str(lines.trim()).unwrap();
        let spans = line["spans"].as_array().unwrap();
        assert_eq!(spans[0]["route"], "/v3/x", "{line}");
        assert_eq!(spans[0]["status"], 200);
        assert_eq!(spans[0]["user"], "alice \"q\"");
        assert_eq!(spans[1]["later"], true);
        assert_eq!(line["fields"]["message"], "inside");
    }

    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(bytes).into_owned());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

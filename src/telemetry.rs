//! Logging and tracing set-up. Log fields use dotted names (`case.id`),
//! except the request's, which README lists (`request_id`, `trace_id`,
//! `operation_name`, …); free text of a case, names, tokens and raw `sub`s
//! never go into a log.
//!
//! Three layers over one registry:
//! - the log lines, pretty or flat JSON (`json`), filtered by `RUST_LOG`;
//!   the database statement spans of sea-orm are never theirs, so that
//!   with no exporter a statement costs what it cost before (their
//!   callsites are disabled once, not per statement);
//! - when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, `tracing-opentelemetry`
//!   turning this crate's spans and sea-orm's statement spans into
//!   OpenTelemetry spans, batched and exported over OTLP/HTTP with
//!   protobuf (`opentelemetry-otlp` on reqwest), flushed by
//!   [`Telemetry::shutdown`]. Its filter is its own: `RUST_LOG=warn` hides
//!   request lines, not exported spans;
//! - unset, no OpenTelemetry layer at all: the trace context of a request
//!   is still read and answered (`trace`), from the headers alone.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use tracing_subscriber::filter::{self, EnvFilter, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

use crate::config::{LogFormat, TelemetryArgs};

pub mod json;
pub mod trace;

/// Whether request spans are exported (an OpenTelemetry layer is installed).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The salt of [`client_hash`], set once by [`init`].
static CLIENT_SALT: OnceLock<String> = OnceLock::new();

/// Whether this process exports spans.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What [`init`] started: the span exporter, when there is one.
#[must_use = "call shutdown() so that the last spans are exported"]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still batched and stops the exporter (blocking:
    /// call it when the server has stopped).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            eprintln!("exporting the last spans failed: {err}");
        }
    }
}

/// Installs the global subscriber; an invalid filter falls back to `info`.
/// Fails only on exporter settings it cannot honour.
pub fn init(filter: &str, format: LogFormat, args: &TelemetryArgs) -> anyhow::Result<Telemetry> {
    let _ = CLIENT_SALT.set(args.log_client_salt.clone());
    let env_filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // sea-orm's statement spans are for the exporter only.
    let no_statements = filter::filter_fn(|meta| !(meta.is_span() && is_statement(meta.target())));
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(json::FlatJson::new(&args.otel_service_name))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .with_filter(env_filter.and(no_statements))
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(env_filter.and(no_statements))
            .boxed(),
    };
    let mut layers = vec![lines];
    let provider = match exporter(args)? {
        Some(exporter) => {
            use opentelemetry::trace::TracerProvider as _;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(args.otel_service_name.clone())
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build();
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(resource)
                .build();
            let tracer = provider.tracer("escalations");
            // This crate's spans at `info`, and sea-orm's statements inside
            // them (a background loop's polling is no trace): not the HTTP
            // client's or the exporter's own, which would feed the exporter
            // with itself.
            let exported = filter::dynamic_filter_fn(|meta, cx| {
                if *meta.level() > tracing::Level::INFO {
                    false
                } else if is_statement(meta.target()) {
                    meta.is_span() && cx.lookup_current().is_some()
                } else {
                    meta.target().starts_with("escalations")
                }
            });
            layers.push(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_tracked_inactivity(false)
                    .with_filter(exported)
                    .boxed(),
            );
            EXPORTING.store(true, Ordering::Relaxed);
            Some(provider)
        }
        None => None,
    };
    // A second init (tests) keeps the first subscriber.
    drop(tracing_subscriber::registry().with(layers).try_init());
    Ok(Telemetry { provider })
}

/// The span exporter of the settings, or `None` when nothing is to be
/// exported. OpenTelemetry's variables keep their meaning: the per-signal
/// endpoint wins over the base one, `OTEL_SDK_DISABLED=true` and
/// `OTEL_TRACES_EXPORTER=none` turn export off, and
/// `OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT` and `OTEL_BSP_*` are read by
/// the SDK. Only `http/protobuf` is built in.
fn exporter(args: &TelemetryArgs) -> anyhow::Result<Option<opentelemetry_otlp::SpanExporter>> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let base = args.otel_exporter_otlp_endpoint.as_deref().filter(|v| !v.trim().is_empty());
    let traces = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    if base.is_none() && traces.is_none() {
        return Ok(None);
    }
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Some(protocol) = var(name) {
            anyhow::ensure!(
                protocol.trim() == "http/protobuf",
                "{name}={protocol} is not supported: spans are exported over http/protobuf only"
            );
            break;
        }
    }
    let mut builder =
        opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(Protocol::HttpBinary);
    // A programmatic endpoint would win over the per-signal variable, so
    // the base one is given only without it (as the SDK would read it:
    // `<base>/v1/traces`).
    if traces.is_none()
        && let Some(base) = base
    {
        builder = builder.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
    }
    builder.build().map(Some).context("OTLP span exporter (OTEL_EXPORTER_OTLP_* settings)")
}

/// Whether spans of `target` are sea-orm's database statements.
fn is_statement(target: &str) -> bool {
    target.starts_with("sea_orm")
}

/// The `client` of a log line: the first 16 hex digits of SHA-256 over
/// `LOG_CLIENT_SALT` followed by the token's `sub`, never the `sub` itself.
/// Written into a buffer of its own: no allocation.
pub fn client_hash(sub: &str) -> ClientHash {
    let mut hasher = Sha256::new();
    hasher.update(CLIENT_SALT.get().map_or("", String::as_str).as_bytes());
    hasher.update(sub.as_bytes());
    let digest = hasher.finalize();
    let mut hex = [0u8; 16];
    for (i, byte) in digest.iter().take(8).enumerate() {
        hex[2 * i] = HEX[usize::from(byte >> 4)];
        hex[2 * i + 1] = HEX[usize::from(byte & 0xf)];
    }
    ClientHash(hex)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// See [`client_hash`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientHash([u8; 16]);

impl ClientHash {
    /// The 16 hex digits.
    pub fn as_str(&self) -> &str {
        // Hex digits only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for ClientHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_hash_is_sixteen_hex_digits_of_sha256_over_salt_and_sub() {
        // No salt set in unit tests: SHA-256("practitioner-1").
        let expected: String =
            Sha256::digest(b"practitioner-1").iter().take(8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(client_hash("practitioner-1").as_str(), expected);
        assert_ne!(client_hash("practitioner-1"), client_hash("practitioner-2"));
    }
}

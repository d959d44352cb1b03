//! `LOG_FORMAT=json`: one flat JSON object per line. `tracing-subscriber`'s
//! own JSON format nests the event's fields under `fields` and the spans'
//! under `span`/`spans`, and no maintained crate writes the spans' fields
//! beside the event's, so this `FormatEvent` does: the fields of every span
//! the event is in, outermost first (an inner span's field wins), then the
//! event's own, with `timestamp`, `level`, `target`, `message`, `service`
//! and `version`. The spans' fields are kept by the fmt layer itself, as
//! JSON (the layer's `JsonFields`); this reads them back. A request's line so carries
//! `request_id`, `trace_id`, `operation_name`, `client`, and on its last
//! line `status`, `latency_ms` and `error_code` (README lists them).
//! `otel.*` fields (span kind and status, meant for the exporter) are left
//! out.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The flat JSON line format.
pub struct FlatJson {
    service: String,
}

impl FlatJson {
    /// Lines naming `service` (and this build's version).
    pub fn new(service: &str) -> Self {
        Self { service: service.to_owned() }
    }
}

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("service".into(), self.service.as_str().into());
        line.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else { continue };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields.as_str()) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        line.retain(|key, _| !key.starts_with("otel."));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writer.write_str(&text)?;
        writeln!(writer)
    }
}

/// An event's fields into the line.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

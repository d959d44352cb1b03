//! W3C trace context: a request's `traceparent` (and `tracestate`) read
//! with OpenTelemetry's `TraceContextPropagator`, so that the request span
//! continues the caller's trace, or starts a new one without it (or with a
//! malformed one, which the recommendation says to ignore). The request's
//! [`TraceIds`] are then known to everything the request runs, through a
//! task-local ([`current`]): its JSON log lines (the span's `trace_id`),
//! its errors' `extensions.traceId`, and its response's `traceresponse`
//! header (Trace Context Level 2: the trace and the server's span, so
//! that a caller without a trace of its own can find the one it started).
//!
//! With an exporter the ids are the OpenTelemetry span's, the caller's
//! span its parent and the caller's sampled flag respected (parent-based
//! sampling); without one, the caller's trace id (or a random one) and a
//! random span id of this request, flagged not sampled: nothing recorded it.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceFlags, TraceId};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The name of the response header.
pub const TRACERESPONSE: &str = "traceresponse";

/// The trace and span of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
}

impl TraceIds {
    /// The trace's id: 32 lowercase hex digits when displayed.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The request span's id: 16 lowercase hex digits when displayed.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// Whether the request span is recorded (sampled) for export.
    pub fn sampled(&self) -> bool {
        self.flags.is_sampled()
    }

    /// `00-<trace id>-<span id>-<flags>`, the value of `traceresponse`.
    pub fn header(&self) -> HeaderValue {
        use std::io::Write as _;
        // Written on the stack: the header value is the only allocation.
        let mut value = [0u8; 55];
        let flags = self.flags & TraceFlags::SAMPLED;
        let written =
            write!(&mut value[..], "00-{}-{}-{flags:02x}", self.trace_id, self.span_id).is_ok();
        // Hex digits and dashes only.
        match HeaderValue::from_bytes(&value) {
            Ok(header) if written => header,
            _ => HeaderValue::from_static(""),
        }
    }
}

/// Makes `span` (a request's, not yet entered) continue the trace of the
/// request's `headers`, and says its ids.
pub fn continue_trace(span: &Span, headers: &HeaderMap) -> TraceIds {
    let parent = TraceContextPropagator::new().extract_with_context(
        &opentelemetry::Context::new(),
        &opentelemetry_http::HeaderExtractor(headers),
    );
    if super::exporting() && !span.is_disabled() && span.set_parent(parent.clone()).is_ok() {
        let cx = span.context();
        let own = cx.span().span_context().clone();
        if own.is_valid() {
            return TraceIds {
                trace_id: own.trace_id(),
                span_id: own.span_id(),
                flags: own.trace_flags(),
            };
        }
    }
    let ids = RandomIdGenerator::default();
    let caller = parent.span().span_context().clone();
    TraceIds {
        trace_id: if caller.is_valid() { caller.trace_id() } else { ids.new_trace_id() },
        span_id: ids.new_span_id(),
        flags: TraceFlags::default(),
    }
}

tokio::task_local! {
    static CURRENT: TraceIds;
}

/// Runs `request` with `ids` as the [`current`] ones.
pub async fn scope<F: Future>(ids: TraceIds, request: F) -> F::Output {
    CURRENT.scope(ids, request).await
}

/// The ids of the request this task serves, if it serves one.
pub fn current() -> Option<TraceIds> {
    CURRENT.try_with(|ids| *ids).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn ids_of(traceparent: Option<&str>) -> TraceIds {
        let mut headers = HeaderMap::new();
        if let Some(value) = traceparent {
            headers.insert("traceparent", HeaderValue::from_str(value).unwrap());
        }
        continue_trace(&Span::none(), &headers)
    }

    #[test]
    fn a_valid_traceparent_is_continued() {
        let ids = ids_of(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(ids.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(
            ids.span_id().to_string(),
            "00f067aa0ba902b7",
            "the request has a span of its own"
        );
        assert!(!ids.sampled(), "nothing records it without an exporter");
        let header = ids.header();
        let header = header.to_str().unwrap();
        assert!(header.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{header}");
        assert!(header.ends_with("-00"), "{header}");
        assert_eq!(header.len(), 55);
    }

    #[test]
    fn a_missing_or_malformed_traceparent_starts_a_new_trace() {
        for traceparent in [
            None,
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("garbage"),
        ] {
            let a = ids_of(traceparent);
            let b = ids_of(traceparent);
            assert_ne!(a.trace_id(), b.trace_id(), "{traceparent:?}: a new trace each time");
            assert_ne!(a.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_ne!(a.trace_id(), TraceId::INVALID);
        }
    }
}

//! Process metrics, served at `GET /metrics` in the Prometheus text format
//! (version 0.0.4).
//!
//! Hand-written rather than through a metrics crate: the server needs a few
//! counters and one histogram, which atomics and a mutex hold in fewer lines
//! than the glue a registry would need, and the text format is a handful of
//! line rules. Nothing here is on a hot path beyond one short mutex hold per
//! request.
//!
//! Label values that come from callers (GraphQL operation names) are capped:
//! past [`MAX_OPERATIONS`] distinct names, new ones are counted as `other`,
//! so a client cannot grow the metrics without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend};

/// Distinct operation names kept as labels; later ones become `other`.
pub const MAX_OPERATIONS: usize = 200;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// How a GraphQL request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// No error in the response.
    Ok,
    /// At least one error (refused, failed, or partly failed).
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
        }
    }
}

/// The metrics of one process (one per server).
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    /// Connection counters, kept by `listener`.
    pub connections: ConnectionMetrics,
    /// GraphQL requests executing now (past authentication and limits).
    pub requests_in_flight: AtomicU64,
    /// WebSocket connections initialised (authenticated) and open now.
    pub subscriber_connections: AtomicU64,
    /// Subscriptions live now, over every connection.
    pub subscriptions: AtomicU64,
    /// Subscribers dropped for taking no message in time.
    pub subscribers_dropped: AtomicU64,
}

/// What the accept loop counts.
#[derive(Debug, Default)]
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections accepted since start.
    pub accepted: AtomicU64,
    /// Connections closed to admit a new one at the cap.
    pub shed: AtomicU64,
    /// Connections closed at once because every open one was executing.
    pub refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    operations: BTreeSet<String>,
    requests: BTreeMap<(String, Outcome), u64>,
    errors: BTreeMap<String, u64>,
    responses: BTreeMap<u16, u64>,
    rate_limited: BTreeMap<&'static str, u64>,
    in_flight_limited: BTreeMap<&'static str, u64>,
    webhook_deliveries: BTreeMap<&'static str, u64>,
}

impl Metrics {
    /// Counts one GraphQL request: its operation name (empty for an
    /// anonymous operation), the `extensions.code` of each of its errors
    /// (`None` for an error without one) and how long it took.
    pub fn graphql_request<'a>(
        &self,
        operation: &str,
        codes: impl IntoIterator<Item = Option<&'a str>>,
        latency: Duration,
    ) {
        let mut outcome = Outcome::Ok;
        {
            let mut inner = self.lock();
            for code in codes {
                outcome = Outcome::Error;
                *inner.errors.entry(code.unwrap_or("NONE").to_owned()).or_default() += 1;
            }
            let operation = if inner.operations.contains(operation) {
                operation.to_owned()
            } else if inner.operations.len() < MAX_OPERATIONS {
                inner.operations.insert(operation.to_owned());
                operation.to_owned()
            } else {
                "other".to_owned()
            };
            *inner.requests.entry((operation, outcome)).or_default() += 1;
        }
        let secs = latency.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts one HTTP response by status.
    pub fn http_response(&self, status: u16) {
        *self.lock().responses.entry(status).or_default() += 1;
    }

    /// Counts one request refused by the rate limit of a kind of client.
    pub fn rate_limited(&self, kind: &'static str) {
        *self.lock().rate_limited.entry(kind).or_default() += 1;
    }

    /// Counts one request refused by the cap on a client's requests in
    /// flight.
    pub fn in_flight_limited(&self, kind: &'static str) {
        *self.lock().in_flight_limited.entry(kind).or_default() += 1;
    }

    /// Counts one webhook delivery attempt's outcome: `delivered`,
    /// `retrying` (failed, due again) or `failed` (given up).
    pub fn webhook_delivery(&self, outcome: &'static str) {
        *self.lock().webhook_deliveries.entry(outcome).or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while counting leaves plain numbers behind: keep using them.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The metrics in the Prometheus text format, with the pool of `db`
    /// and the statements run so far.
    pub fn render(&self, db: &DatabaseConnection) -> String {
        let mut out = String::with_capacity(4096);
        {
            let inner = self.lock();
            header(
                &mut out,
                "escalations_graphql_requests_total",
                "counter",
                "GraphQL requests by operation name and outcome.",
            );
            for ((operation, outcome), n) in &inner.requests {
                let _ = writeln!(
                    out,
                    "escalations_graphql_requests_total{{operation=\"{}\",outcome=\"{}\"}} {n}",
                    escape(operation),
                    outcome.as_str()
                );
            }
            header(
                &mut out,
                "escalations_graphql_errors_total",
                "counter",
                "GraphQL errors by extensions.code (NONE: without a code).",
            );
            for (code, n) in &inner.errors {
                let _ = writeln!(
                    out,
                    "escalations_graphql_errors_total{{code=\"{}\"}} {n}",
                    escape(code)
                );
            }
            header(
                &mut out,
                "escalations_http_responses_total",
                "counter",
                "HTTP responses by status.",
            );
            for (status, n) in &inner.responses {
                let _ =
                    writeln!(out, "escalations_http_responses_total{{status=\"{status}\"}} {n}");
            }
            header(
                &mut out,
                "escalations_rate_limited_total",
                "counter",
                "Requests refused with 429, by kind of client.",
            );
            for (kind, n) in &inner.rate_limited {
                let _ = writeln!(out, "escalations_rate_limited_total{{kind=\"{kind}\"}} {n}");
            }
            header(
                &mut out,
                "escalations_in_flight_limited_total",
                "counter",
                "Requests refused with 429 for too many in flight, by kind of client.",
            );
            for (kind, n) in &inner.in_flight_limited {
                let _ = writeln!(out, "escalations_in_flight_limited_total{{kind=\"{kind}\"}} {n}");
            }
            header(
                &mut out,
                "escalations_webhook_deliveries_total",
                "counter",
                "Webhook delivery attempts of this process by outcome: delivered, retrying \
                 (failed, due again), failed (given up).",
            );
            for outcome in ["delivered", "retrying", "failed"] {
                let n = inner.webhook_deliveries.get(outcome).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "escalations_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }

        let name = "escalations_graphql_request_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Time from a GraphQL request's arrival to its response.",
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let n = self.latency_buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");

        let gauge = |out: &mut String, name: &str, kind: &str, help: &str, value: &AtomicU64| {
            header(out, name, kind, help);
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        };
        let c = &self.connections;
        gauge(
            &mut out,
            "escalations_graphql_requests_in_flight",
            "gauge",
            "GraphQL requests executing now.",
            &self.requests_in_flight,
        );
        gauge(
            &mut out,
            "escalations_subscriber_connections",
            "gauge",
            "WebSocket connections of authenticated subscribers, open now.",
            &self.subscriber_connections,
        );
        gauge(
            &mut out,
            "escalations_subscriptions",
            "gauge",
            "GraphQL subscriptions live now.",
            &self.subscriptions,
        );
        gauge(
            &mut out,
            "escalations_subscribers_dropped_total",
            "counter",
            "Subscribers dropped for taking no message within SUBSCRIPTION_SEND_TIMEOUT.",
            &self.subscribers_dropped,
        );
        gauge(&mut out, "escalations_http_connections", "gauge", "Open connections.", &c.open);
        gauge(
            &mut out,
            "escalations_http_connections_accepted_total",
            "counter",
            "Connections accepted.",
            &c.accepted,
        );
        gauge(
            &mut out,
            "escalations_http_connections_shed_total",
            "counter",
            "Connections closed at MAX_CONNECTIONS to admit a new one.",
            &c.shed,
        );
        gauge(
            &mut out,
            "escalations_http_connections_refused_total",
            "counter",
            "Connections closed at once at MAX_CONNECTIONS (every open one was busy).",
            &c.refused,
        );

        let (size, idle, max) = pool_use(db);
        header(&mut out, "escalations_db_pool_connections", "gauge", "Open database connections.");
        let _ = writeln!(out, "escalations_db_pool_connections {size}");
        header(
            &mut out,
            "escalations_db_pool_idle_connections",
            "gauge",
            "Idle database connections.",
        );
        let _ = writeln!(out, "escalations_db_pool_idle_connections {idle}");
        header(
            &mut out,
            "escalations_db_pool_max_connections",
            "gauge",
            "Largest number of database connections the pool opens.",
        );
        let _ = writeln!(out, "escalations_db_pool_max_connections {max}");
        header(
            &mut out,
            "escalations_db_statements_total",
            "counter",
            "SQL statements run since the process started.",
        );
        let _ =
            writeln!(out, "escalations_db_statements_total {}", crate::db::statements_executed());
        header(
            &mut out,
            "escalations_db_background_statements_total",
            "counter",
            "SQL statements run by background work (the webhook worker) since the process started.",
        );
        let _ = writeln!(
            out,
            "escalations_db_background_statements_total {}",
            crate::db::background_statements_executed()
        );
        out
    }

    /// The outbox's lines: deliveries waiting, and the age of the oldest
    /// (all processes', read from the database).
    pub fn render_outbox(out: &mut String, pending: u64, oldest_seconds: f64) {
        header(
            out,
            "escalations_webhook_outbox_pending",
            "gauge",
            "Webhook deliveries not yet delivered or given up (every process's).",
        );
        let _ = writeln!(out, "escalations_webhook_outbox_pending {pending}");
        header(
            out,
            "escalations_webhook_outbox_oldest_pending_seconds",
            "gauge",
            "Age of the oldest undelivered webhook delivery (0 when none waits).",
        );
        let _ = writeln!(out, "escalations_webhook_outbox_oldest_pending_seconds {oldest_seconds}");
    }
}

/// Open, idle and largest number of connections of the pool.
fn pool_use(db: &DatabaseConnection) -> (u32, usize, u32) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        _ => (0, 0, 0),
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_capped() {
        let m = Metrics::default();
        for i in 0..MAX_OPERATIONS + 5 {
            m.graphql_request(&format!("Op{i}"), [], Duration::from_millis(1));
        }
        let inner = m.lock();
        assert_eq!(inner.operations.len(), MAX_OPERATIONS);
        assert_eq!(inner.requests.get(&("other".to_owned(), Outcome::Ok)), Some(&5));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

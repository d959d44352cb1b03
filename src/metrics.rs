//! The server's metrics, kept in a `prometheus-client` registry and served
//! at `GET /metrics` in the Prometheus text format (version 0.0.4). Where
//! and to whom is `http`'s business (`METRICS_LISTEN_ADDR`, `METRICS_TOKEN`).
//!
//! Three kinds of value, one text:
//! - counted as things happen (requests, errors, latency, responses,
//!   refusals, connections, subscriptions, webhook attempts): metrics in
//!   [`Metrics`]'s registry, incremented by the code that sees them;
//! - read when the metrics are scraped (the database pool, the statements
//!   run, the webhook outbox, the hub's listening connection): [`Sampled`],
//!   which the handler gathers (the outbox takes a query) and [`Metrics::encode`]
//!   writes after the registry;
//! - the process's own: `escalations_build_info`, and on Linux the standard
//!   `process_*` metrics ([`process`]).
//!
//! Label values that come from callers (GraphQL operation names) are capped:
//! past [`MAX_OPERATIONS`] distinct names, new ones are counted as `other`,
//! in the request counter and the per-operation latency histogram alike,
//! so a client cannot grow the metrics without bound.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use sea_orm::{DatabaseConnection, DbBackend};

mod process;

/// The media type of what [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Distinct operation names kept as labels; later ones become `other`.
pub const MAX_OPERATIONS: usize = 200;

/// The label of the operations past [`MAX_OPERATIONS`].
const OTHER: &str = "other";

/// Upper bounds of the latency histograms' buckets, in seconds.
const BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The outcomes of a webhook delivery attempt, shown even before the first.
const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "retrying", "failed"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    profile: &'static str,
    os: &'static str,
    arch: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The metrics of one server (one per process).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The operation names given a label of their own so far.
    operations: Mutex<HashSet<String>>,
    requests: Family<RequestLabels, Counter>,
    errors: Family<CodeLabels, Counter>,
    latency: Histogram,
    operation_latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    responses: Family<StatusLabels, Counter>,
    rate_limited: Family<KindLabels, Counter>,
    in_flight_limited: Family<KindLabels, Counter>,
    webhook_deliveries: Family<OutcomeLabels, Counter>,
    /// Connection counters of the API's listener, kept by `listener`.
    pub connections: ConnectionMetrics,
    /// GraphQL requests executing now (past authentication and limits).
    pub requests_in_flight: Gauge,
    /// WebSocket connections initialised (authenticated) and open now.
    pub subscriber_connections: Gauge,
    /// Subscriptions live now, over every connection.
    pub subscriptions: Gauge,
    /// Subscribers dropped for taking no message in time.
    pub subscribers_dropped: Counter,
}

/// What the accept loop counts. Cloning shares the counters; a default one
/// not in any [`Metrics`] counts for nobody (the metrics listener's).
#[derive(Debug, Clone, Default)]
pub struct ConnectionMetrics {
    /// Connections open now.
    pub open: Gauge,
    /// Connections accepted since start.
    pub accepted: Counter,
    /// Connections closed to admit a new one at the cap.
    pub shed: Counter,
    /// Connections closed at once because every open one was executing.
    pub refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            operations: Mutex::default(),
            requests: Family::default(),
            errors: Family::default(),
            latency: latency_histogram(),
            operation_latency: Family::new_with_constructor(latency_histogram),
            responses: Family::default(),
            rate_limited: Family::default(),
            in_flight_limited: Family::default(),
            webhook_deliveries: Family::default(),
            connections: ConnectionMetrics::default(),
            requests_in_flight: Gauge::default(),
            subscriber_connections: Gauge::default(),
            subscriptions: Gauge::default(),
            subscribers_dropped: Counter::default(),
        };
        for outcome in WEBHOOK_OUTCOMES {
            drop(m.webhook_deliveries.get_or_create(&OutcomeLabels { outcome }));
        }
        m.registered()
    }
}

impl Metrics {
    /// Registers every metric under its name (the registry encodes a
    /// counter's name with `_total`, and a unit after the name).
    fn registered(mut self) -> Self {
        let root = &mut self.registry;
        #[cfg(target_os = "linux")]
        root.register_collector(Box::new(process::Linux::new()));
        let r = root.sub_registry_with_prefix("escalations");
        r.register(
            "build",
            "The build of this server: its version, profile and target",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                profile: if cfg!(debug_assertions) { "debug" } else { "release" },
                os: std::env::consts::OS,
                arch: std::env::consts::ARCH,
            }),
        );
        r.register(
            "graphql_requests",
            "GraphQL requests by operation name and outcome",
            self.requests.clone(),
        );
        r.register(
            "graphql_errors",
            "GraphQL errors by extensions.code (NONE: without a code)",
            self.errors.clone(),
        );
        r.register_with_unit(
            "graphql_request_duration",
            "Time from a GraphQL request's arrival to its response, over every operation",
            Unit::Seconds,
            self.latency.clone(),
        );
        r.register_with_unit(
            "graphql_operation_duration",
            "Time from a GraphQL request's arrival to its response, by operation name (as in \
             escalations_graphql_requests_total)",
            Unit::Seconds,
            self.operation_latency.clone(),
        );
        r.register("http_responses", "HTTP responses by status", self.responses.clone());
        r.register(
            "rate_limited",
            "Requests refused with 429, by kind of client",
            self.rate_limited.clone(),
        );
        r.register(
            "in_flight_limited",
            "Requests refused with 429 for too many in flight, by kind of client",
            self.in_flight_limited.clone(),
        );
        r.register(
            "webhook_deliveries",
            "Webhook delivery attempts of this process by outcome: delivered, retrying \
             (failed, due again), failed (given up)",
            self.webhook_deliveries.clone(),
        );
        r.register(
            "graphql_requests_in_flight",
            "GraphQL requests executing now",
            self.requests_in_flight.clone(),
        );
        r.register(
            "subscriber_connections",
            "WebSocket connections of authenticated subscribers, open now",
            self.subscriber_connections.clone(),
        );
        r.register("subscriptions", "GraphQL subscriptions live now", self.subscriptions.clone());
        r.register(
            "subscribers_dropped",
            "Subscribers dropped for taking no message within SUBSCRIPTION_SEND_TIMEOUT",
            self.subscribers_dropped.clone(),
        );
        let c = &self.connections;
        r.register("http_connections", "Open connections", c.open.clone());
        r.register("http_connections_accepted", "Connections accepted", c.accepted.clone());
        r.register(
            "http_connections_shed",
            "Connections closed at MAX_CONNECTIONS to admit a new one",
            c.shed.clone(),
        );
        r.register(
            "http_connections_refused",
            "Connections closed at once at MAX_CONNECTIONS (every open one was busy)",
            c.refused.clone(),
        );
        self
    }

    /// Counts one GraphQL request: its operation name (empty for an
    /// anonymous operation), the `extensions.code` of each of its errors
    /// (`None` for an error without one) and how long it took.
    pub fn graphql_request<'a>(
        &self,
        operation: &str,
        codes: impl IntoIterator<Item = Option<&'a str>>,
        latency: Duration,
    ) {
        let mut outcome = "ok";
        for code in codes {
            outcome = "error";
            let code = code.unwrap_or("NONE").to_owned();
            self.errors.get_or_create(&CodeLabels { code }).inc();
        }
        let operation = self.operation_label(operation);
        let secs = latency.as_secs_f64();
        self.latency.observe(secs);
        self.operation_latency
            .get_or_create(&OperationLabels { operation: operation.clone() })
            .observe(secs);
        self.requests.get_or_create(&RequestLabels { operation, outcome }).inc();
    }

    /// The label of `operation`: its own among the first [`MAX_OPERATIONS`]
    /// names seen, `other` after.
    fn operation_label(&self, operation: &str) -> String {
        // A panic while holding it leaves a set of names behind: keep using it.
        let mut known = self.operations.lock().unwrap_or_else(PoisonError::into_inner);
        if known.contains(operation) {
            operation.to_owned()
        } else if known.len() < MAX_OPERATIONS {
            known.insert(operation.to_owned());
            operation.to_owned()
        } else {
            OTHER.to_owned()
        }
    }

    /// Counts one HTTP response by status.
    pub fn http_response(&self, status: u16) {
        self.responses.get_or_create(&StatusLabels { status }).inc();
    }

    /// Counts one request refused by the rate limit of a kind of client.
    pub fn rate_limited(&self, kind: &'static str) {
        self.rate_limited.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts one request refused by the cap on a client's requests in
    /// flight.
    pub fn in_flight_limited(&self, kind: &'static str) {
        self.in_flight_limited.get_or_create(&KindLabels { kind }).inc();
    }

    /// Counts one webhook delivery attempt's outcome: `delivered`,
    /// `retrying` (failed, due again) or `failed` (given up).
    pub fn webhook_delivery(&self, outcome: &'static str) {
        self.webhook_deliveries.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The metrics in the Prometheus text format ([`CONTENT_TYPE`]), the
    /// registry's and then `sampled`.
    pub fn encode(&self, sampled: Sampled) -> String {
        use prometheus_client::encoding::prometheus_text::encode;
        let mut out = String::with_capacity(16 * 1024);
        let mut scrape = Registry::default();
        scrape.register_collector(Box::new(sampled));
        // Writing to a String cannot fail, nor can our collectors otherwise.
        let written = encode(&mut out, &self.registry).and_then(|()| encode(&mut out, &scrape));
        if written.is_err() {
            tracing::error!("encoding the metrics failed");
        }
        out
    }
}

/// The values read when the metrics are scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sampled {
    /// Open, idle and largest number of connections of the pool.
    pub pool: (u32, usize, u32),
    /// SQL statements run since start, outside background work.
    pub statements: u64,
    /// SQL statements run by background work since start.
    pub background_statements: u64,
    /// Times the PostgreSQL connection listening for events was established.
    pub event_listens: u64,
    /// Webhook deliveries waiting (every process's), and the age of the
    /// oldest in seconds; `None` when the outbox could not be read.
    pub outbox: Option<(u64, f64)>,
}

impl Sampled {
    /// The pool of `db` and the statement counters now, with what the
    /// caller read of the hub and the outbox.
    pub fn read(db: &DatabaseConnection, event_listens: u64, outbox: Option<(u64, f64)>) -> Self {
        Sampled {
            pool: pool_use(db),
            statements: crate::db::statements_executed(),
            background_statements: crate::db::background_statements_executed(),
            event_listens,
            outbox,
        }
    }
}

impl Collector for Sampled {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let (open, idle, max) = self.pool;
        let gauges: [(&str, &str, i64); 3] = [
            ("escalations_db_pool_connections", "Open database connections.", open.into()),
            (
                "escalations_db_pool_idle_connections",
                "Idle database connections.",
                i64::try_from(idle).unwrap_or(i64::MAX),
            ),
            (
                "escalations_db_pool_max_connections",
                "Largest number of database connections the pool opens.",
                max.into(),
            ),
        ];
        for (name, help, value) in gauges {
            let e = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(e)?;
        }
        let counters = [
            (
                "escalations_db_statements",
                "SQL statements run since the process started.",
                self.statements,
            ),
            (
                "escalations_db_background_statements",
                "SQL statements run by background work (the webhook worker) since the process \
                 started.",
                self.background_statements,
            ),
            (
                "escalations_event_listens",
                "Times the PostgreSQL connection listening for new events was established (more \
                 than one: it was lost and re-established).",
                self.event_listens,
            ),
        ];
        for (name, help, value) in counters {
            let e = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(e)?;
        }
        if let Some((pending, oldest)) = self.outbox {
            let e = encoder.encode_descriptor(
                "escalations_webhook_outbox_pending",
                "Webhook deliveries not yet delivered or given up (every process's).",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(pending).encode(e)?;
            let e = encoder.encode_descriptor(
                "escalations_webhook_outbox_oldest_pending",
                "Age of the oldest undelivered webhook delivery (0 when none waits).",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            ConstGauge::new(oldest).encode(e)?;
        }
        Ok(())
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_capped_in_the_counter_and_the_histogram() {
        let m = Metrics::default();
        for i in 0..MAX_OPERATIONS + 5 {
            m.graphql_request(&format!("Op{i}"), [], Duration::from_millis(1));
        }
        let text = m.encode(Sampled::default());
        let series = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(series("escalations_graphql_requests_total{"), MAX_OPERATIONS + 1);
        assert_eq!(
            series("escalations_graphql_operation_duration_seconds_count{"),
            MAX_OPERATIONS + 1
        );
        assert!(
            text.contains(
                r#"escalations_graphql_requests_total{operation="other",outcome="ok"} 5"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"escalations_graphql_operation_duration_seconds_count{operation="other"} 5"#
            ),
            "{text}"
        );
        assert!(!text.contains("Op200"), "{text}");
    }

    #[test]
    fn the_build_is_described() {
        let text = Metrics::default().encode(Sampled::default());
        let line = text.lines().find(|l| l.starts_with("escalations_build_info{")).unwrap();
        assert!(line.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{line}");
        assert!(line.ends_with("} 1"), "{line}");
    }
}

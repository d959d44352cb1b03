//! `/metrics`: where it is served and to whom (not on the API's port by
//! default, on the metrics listener, behind `METRICS_TOKEN`, open in demo
//! mode), and what it holds (the Prometheus text format, build info, the
//! process's metrics, latency per operation).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use escalations::config::MetricsArgs;
use escalations::domain::role::Role;
use prometheus_parse::{LineInfo, SampleType, Scrape, Value};
use serde_json::json;

use crate::db_test;
use crate::helpers::{
    Backend, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, TestApp, global_args, serve_args,
    spawn_app_with,
};

const TOKEN: &str = "metrics-token-of-at-least-32-characters";

/// Checks that every line of `text` is one the text format (0.0.4) allows
/// (a `# HELP`, a `# TYPE` given once per family before its samples, or a
/// sample of a typed family with well-formed labels and a number), then
/// parses it with `prometheus-parse`, which skips what it does not
/// understand rather than failing.
fn parse(text: &str) -> Scrape {
    let mut families: HashMap<String, SampleType> = HashMap::new();
    for line in text.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { .. } => {}
            LineInfo::Type { metric_name, metric_alias, sample_type } => {
                let family = metric_alias.unwrap_or(metric_name);
                assert!(families.insert(family, sample_type).is_none(), "TYPE twice: {line}");
            }
            LineInfo::Sample { metric_name, labels, value, timestamp } => {
                assert!(timestamp.is_none(), "{line}");
                assert!(
                    value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
                    "{line}"
                );
                let histogram = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| metric_name.strip_suffix(suffix))
                    .filter(|family| families.get(*family) == Some(&SampleType::Histogram));
                assert!(
                    histogram.is_some() || families.contains_key(metric_name),
                    "a sample of no family typed before it: {line}"
                );
                for label in labels.map(|l| l.split(',').collect::<Vec<_>>()).unwrap_or_default() {
                    let (key, value) = label.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    assert!(
                        key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "{line}"
                    );
                    assert!(value.len() >= 2 && value.starts_with('"') && value.ends_with('"'));
                }
            }
            LineInfo::Empty | LineInfo::Ignored => panic!("not of the text format: {line:?}"),
        }
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is not a single value: {other:?}"),
        })
}

/// Settings with `metrics` in place of the harness's (a metrics listener).
fn with_metrics(metrics: MetricsArgs) -> escalations::config::ServeArgs {
    escalations::config::ServeArgs { metrics, ..serve_args() }
}

async fn public(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_on_the_public_port_by_default() {
    // With the metrics listener, and without one: 404 on the API's port,
    // as for a route that does not exist, whatever the caller sends.
    for listener in [Some("127.0.0.1:0".parse().unwrap()), None] {
        let args = with_metrics(MetricsArgs { metrics_listen_addr: listener, metrics_token: None });
        let app = spawn_app_with(Backend::Sqlite, args).await.unwrap();
        assert_eq!(public(&app, None).await.status(), 404);
        assert_eq!(public(&app, Some(&format!("Bearer {TOKEN}"))).await.status(), 404);
        assert_eq!(app.get("/no-such-route").await.status(), 404);
        assert_eq!(app.metrics_addr.is_some(), listener.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_serves_metrics_and_health_and_nothing_else() {
    let app = spawn_app_with(Backend::Sqlite, serve_args()).await.unwrap();
    let admin = format!("http://{}", app.metrics_addr.unwrap());
    let res = app.metrics_response().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    parse(&res.text().await.unwrap());
    for (path, status) in [("/healthz", 200), ("/readyz", 200), ("/graphql", 404)] {
        let res = app.client.get(format!("{admin}{path}")).send().await.unwrap();
        assert_eq!(res.status(), status, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_token_opens_the_public_metrics_to_its_bearer_alone() {
    // In demo mode too: a token, once set, is needed.
    for demo in [false, true] {
        let metrics = MetricsArgs { metrics_listen_addr: None, metrics_token: Some(TOKEN.into()) };
        let mut global = global_args();
        global.demo = demo;
        let settings = crate::helpers::Settings { global, serve: with_metrics(metrics) };
        let app = spawn_app_with(Backend::Sqlite, settings).await.unwrap();

        let res = public(&app, None).await;
        assert_eq!(res.status(), 401, "demo {demo}");
        assert_eq!(res.headers()["www-authenticate"], r#"Bearer realm="metrics""#);
        let wrong = format!("Bearer {}", TOKEN.replace('m', "n"));
        for refused in [wrong.as_str(), &format!("Basic {TOKEN}"), &format!("Bearer {TOKEN}x")] {
            let res = public(&app, Some(refused)).await;
            assert_eq!(res.status(), 401, "{refused}");
        }
        let res = public(&app, Some(&wrong)).await;
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer realm="metrics", error="invalid_token""#
        );
        for accepted in [format!("Bearer {TOKEN}"), format!("bearer {TOKEN}")] {
            let res = public(&app, Some(&accepted)).await;
            assert_eq!(res.status(), 200, "{accepted}");
            parse(&res.text().await.unwrap());
        }
        // The token is not a bearer token of the API.
        let res = app.gql_as_raw(TOKEN, "{ cases { totalCount } }", json!({})).await;
        assert_eq!(res.status(), 401);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_without_a_token_shows_the_metrics_on_the_public_port() {
    let mut global = global_args();
    global.demo = true;
    let app = spawn_app_with(Backend::Sqlite, global).await.unwrap();
    let res = public(&app, None).await;
    assert_eq!(res.status(), 200);
    let scrape = parse(&res.text().await.unwrap());
    assert!(value(&scrape, "escalations_build_info", &[]).is_some());
}

db_test!(metrics_parse_and_hold_build_info_process_metrics_and_latency_per_operation, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    for _ in 0..2 {
        app.gql_as_ok(&token, "query MyCases { cases { totalCount } }", json!({})).await;
    }
    app.gql_as_ok(&token, "query OneMore { __typename }", json!({})).await;
    let scrape = parse(&app.metrics().await);

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(value(&scrape, "escalations_build_info", &[("version", version)]), Some(1.0));

    // Latency per operation: a histogram per name, beside the request counter.
    let name = "escalations_graphql_operation_duration_seconds";
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == name && s.labels.get("operation") == Some("MyCases"))
        .unwrap_or_else(|| panic!("no {name} for MyCases"));
    let Value::Histogram(buckets) = &histogram.value else { panic!("{histogram:?}") };
    assert_eq!(buckets.len(), 13, "12 bounds and +Inf: {buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count), "cumulative: {buckets:?}");
    assert_eq!(buckets.last().map(|b| (b.less_than, b.count)), Some((f64::INFINITY, 2.0)));
    let mine = [("operation", "MyCases")];
    assert_eq!(value(&scrape, &format!("{name}_count"), &mine), Some(2.0));
    assert!(value(&scrape, &format!("{name}_sum"), &mine).unwrap() > 0.0);
    assert_eq!(value(&scrape, &format!("{name}_count"), &[("operation", "OneMore")]), Some(1.0));
    let counted = [("operation", "MyCases"), ("outcome", "ok")];
    assert_eq!(value(&scrape, "escalations_graphql_requests_total", &counted), Some(2.0));
    // The histogram over every operation is still there.
    let all = value(&scrape, "escalations_graphql_request_duration_seconds_count", &[]).unwrap();
    assert!(all >= 3.0, "{all}");

    // The process's own, under the standard names (Linux only).
    if cfg!(target_os = "linux") {
        for gauge in [
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_threads",
        ] {
            let v = value(&scrape, gauge, &[]).unwrap_or_else(|| panic!("no {gauge}"));
            assert!(v >= 1.0, "{gauge} {v}");
        }
        assert!(value(&scrape, "process_cpu_seconds_total", &[]).unwrap() > 0.0);
        let started = value(&scrape, "process_start_time_seconds", &[]).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(started <= now + 1.0 && started > now - 24.0 * 3600.0, "{started} vs {now}");
        assert!(
            value(&scrape, "process_resident_memory_bytes", &[]).unwrap()
                <= value(&scrape, "process_virtual_memory_bytes", &[]).unwrap()
        );
    }
});

/// The real binary, killed if the test ends before it is stopped.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(db: &tempfile::TempDir, args: &[&str], port: u16) -> Server {
    let url = format!("sqlite://{}?mode=rwc", db.path().join("metrics.db").display());
    let server = Server(Some(
        Command::new(env!("CARGO_BIN_EXE_escalations"))
            .args(["serve", "--listen-addr", &format!("127.0.0.1:{port}")])
            .args(args)
            .env("DATABASE_URL", url)
            .env("JWT_SECRET", TEST_SECRET)
            .env("JWT_ISSUER", TEST_ISSUER)
            .env("JWT_AUDIENCE", TEST_AUDIENCE)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not start on {port}");
}

/// Stops it with SIGTERM; whether it exited cleanly, within the grace
/// period (30 s) without using it up, and its standard output.
async fn stop(mut server: Server) -> (bool, String) {
    use std::io::Read as _;
    let child = server.0.as_mut().unwrap();
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "no exit within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(!stderr.contains("grace period over"), "{stderr}");
    (status.success(), stdout)
}

/// `serve --metrics-listen-addr`: the metrics there and not on the API's
/// port; SIGTERM stops both listeners (the process exits, cleanly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_metrics_on_its_metrics_listener_and_stops_it_on_sigterm() {
    let db = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let admin_addr = format!("127.0.0.1:{admin}");
    let server = start(&db, &["--metrics-listen-addr", &admin_addr], port);
    let client = reqwest::Client::new();
    let res = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = client.get(format!("http://{admin_addr}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let scrape = parse(&res.text().await.unwrap());
    assert!(value(&scrape, "escalations_build_info", &[]).is_some());
    if cfg!(target_os = "linux") {
        assert!(value(&scrape, "process_start_time_seconds", &[]).is_some());
    }
    let (ok, stdout) = stop(server).await;
    assert!(ok, "{stdout}");
    assert!(stdout.contains(&format!("Metrics: http://{admin_addr}/metrics")), "{stdout}");
    assert!(!stdout.contains(&format!("{port}/metrics")), "{stdout}");
    assert!(std::net::TcpStream::connect(&admin_addr).is_err(), "the metrics listener is closed");
}

/// `serve --demo`: the metrics on the API's port, and the start-up text
/// says where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_binary_shows_its_metrics_on_the_api_port_and_says_so() {
    let db = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = start(&db, &["--demo"], port);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 200);
    parse(&res.text().await.unwrap());
    let (ok, stdout) = stop(server).await;
    assert!(ok, "{stdout}");
    assert!(stdout.contains(&format!("Metrics: {url} (open in demo mode)")), "{stdout}");
}

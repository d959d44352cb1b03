//! Connections and concurrency: half-open connections against the
//! connection cap, the header-read timeout, keep-alive limits, and the cap
//! on one client's requests in flight.
//!
//! The connection tests speak raw HTTP/1.1 over `TcpStream`: a client
//! library would finish every header it starts.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use escalations::auth::MintClaims;
use escalations::config::{InFlightCap, ServeArgs};
use escalations::domain::role::Role;
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, TestApp, mint, serve_args, spawn_app_with};

const HALF_HEADER: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Waiting: ";
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

async fn spawn(args: ServeArgs) -> TestApp {
    spawn_app_with(Backend::Sqlite, args).await.unwrap()
}

/// `GET /healthz` on a new connection: its status line and how long it took.
async fn healthz(app: &TestApp) -> (String, Duration) {
    healthz_at(app.addr).await
}

async fn healthz_at(addr: std::net::SocketAddr) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .expect("/healthz answers")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.lines().next().unwrap_or("").to_owned();
    (status, started.elapsed())
}

/// Reads one `/healthz` response (its body is `ok`) from a kept-alive
/// connection.
async fn read_healthz(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let mut buf = [0; 1024];
    while !response.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response")
            .unwrap();
        assert!(n > 0, "closed before a whole response: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(response).unwrap()
}

/// Waits until the server closes `stream`; returns what it sent and when.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut rest))
        .await
        .unwrap_or_else(|_| panic!("the server kept the connection open for {within:?}"));
    // A close with unread bytes in the server's buffer is a reset.
    if let Err(err) = read {
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    }
    (String::from_utf8_lossy(&rest).into_owned(), started.elapsed())
}

/// A metric's value from `/metrics`.
async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no metric {name}"))
        .parse()
        .unwrap()
}

/// 5,000 connections that each send half a header, in batches of 500: the
/// server keeps at most `MAX_CONNECTIONS` of them, closing the oldest to
/// admit new ones, and `/healthz` answers promptly after every batch.
/// Before the cap, every one of them stayed open until the process ran
/// out of file descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_half_open_connections_leave_healthz_answering() {
    const CAP: u64 = 64;
    const TOTAL: usize = 5000;
    const BATCH: usize = 500;
    // Client and server share this process: room for both ends.
    escalations::listener::raise_open_files_limit();
    let mut args = serve_args();
    args.http.max_connections = CAP as u32;
    // Long enough that only the cap closes anything here.
    args.http.header_read_timeout = Duration::from_secs(60);
    let app = spawn(args).await;

    let mut half_open: VecDeque<TcpStream> = VecDeque::new();
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for _ in 0..TOTAL / BATCH {
        for _ in 0..BATCH {
            let mut stream = TcpStream::connect(app.addr).await.unwrap();
            stream.write_all(HALF_HEADER).await.unwrap();
            half_open.push_back(stream);
        }
        let (status, took) = healthz(&app).await;
        assert_eq!(status, "HTTP/1.1 200 OK", "after {} connections", half_open.len());
        assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
        slowest = slowest.max(took);
        // The client keeps only the last two batches open (its own limit);
        // the older ones were closed by the server long ago.
        while half_open.len() > 2 * BATCH {
            half_open.pop_front();
        }
    }
    // The oldest connection still held by the client was closed by the
    // server; the newest is still waiting for the rest of its header.
    let (_, took) = until_closed(half_open.front_mut().unwrap(), Duration::from_secs(2)).await;
    assert!(took < Duration::from_secs(2));
    let mut byte = [0; 1];
    let newest = half_open.back_mut().unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), newest.read(&mut byte)).await.is_err(),
        "the newest half-open connection is still served"
    );
    let shed = metric(&app, "escalations_http_connections_shed_total").await;
    let open = metric(&app, "escalations_http_connections").await;
    assert!(shed >= TOTAL as u64 - CAP, "shed {shed}");
    assert!(open <= CAP, "{open} connections open, cap {CAP}");
    eprintln!(
        "{TOTAL} half-open connections in {:?}: /healthz at most {slowest:?}; {shed} shed, {open} open",
        started.elapsed()
    );
}

/// The real binary under a low open-files limit (256, hard and soft, so
/// it cannot raise it): 5,000 half-open connections in batches of 250 do
/// not starve it of descriptors. It lowers its cap to fit, `/healthz`
/// answers after every batch, and the cap is logged once. Before the cap,
/// `accept` failed with EMFILE from the ~250th connection on and
/// `/healthz` got no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_under_a_low_open_files_limit_keeps_answering_healthz() {
    const TOTAL: usize = 5000;
    const BATCH: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}?mode=rwc", dir.path().join("conn.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 256 && exec \"$0\" serve --demo --listen-addr \"$1\""])
        .arg(env!("CARGO_BIN_EXE_escalations"))
        .arg(format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db_url)
        .env("RUST_LOG", "warn")
        .env("HTTP_HEADER_READ_TIMEOUT", "60s")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child_guard = Kill(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut up = false;
    for _ in 0..400 {
        if TcpStream::connect(addr).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "server did not start: {}", std::fs::read_to_string(&log_path).unwrap());

    let mut half_open: VecDeque<TcpStream> = VecDeque::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..TOTAL / BATCH {
        for _ in 0..BATCH {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            // The server may have shed it already: the write may fail.
            let _ = stream.write_all(HALF_HEADER).await;
            half_open.push_back(stream);
        }
        let (status, took) = healthz_at(addr).await;
        assert_eq!(
            status,
            "HTTP/1.1 200 OK",
            "after {} connections; log:\n{}",
            half_open.len(),
            std::fs::read_to_string(&log_path).unwrap()
        );
        slowest = slowest.max(took);
        while half_open.len() > BATCH {
            half_open.pop_front();
        }
    }
    assert!(slowest < Duration::from_secs(1), "/healthz took {slowest:?}");
    drop(half_open);
    drop(child_guard);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("lowered"), "{log}");
    assert_eq!(log.matches("connection cap reached").count(), 1, "{log}");
    assert!(!log.contains("accepting a connection failed"), "{log}");
    eprintln!("{TOTAL} half-open connections under ulimit -n 256: /healthz at most {slowest:?}");
}

/// A header that does not arrive in time, even one dribbled a byte at a
/// time, is cut off at the header-read timeout; other clients are served.
#[tokio::test]
async fn a_header_not_complete_in_time_is_cut_off() {
    let mut args = serve_args();
    args.http.header_read_timeout = Duration::from_millis(300);
    let app = spawn(args).await;

    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let sent = Instant::now();
    stream.write_all(HALF_HEADER).await.unwrap();
    let (response, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    let took = sent.elapsed();
    assert!(took >= Duration::from_millis(200), "closed after {took:?}, before the timeout");
    assert!(response.is_empty() || response.starts_with("HTTP/1.1 408"), "{response}");

    // A byte every 50 ms keeps the connection busy but does not extend
    // the deadline of the header.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let sent = Instant::now();
    let dribble = async {
        for b in HALF_HEADER.iter().cycle() {
            if stream.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), dribble).await.expect("the server cut it off");
    assert!(sent.elapsed() < Duration::from_secs(2), "cut off after {:?}", sent.elapsed());

    let (status, _) = healthz(&app).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

/// A kept-alive connection serves at most `MAX_REQUESTS_PER_CONNECTION`
/// requests: the last answer says `Connection: close` and the server
/// closes it, leaving a pipelined extra request unanswered.
#[tokio::test]
async fn a_kept_alive_connection_closes_after_the_most_requests() {
    let mut args = serve_args();
    args.http.max_requests_per_connection = 3;
    let app = spawn(args).await;

    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    for _ in 0..2 {
        stream.write_all(HEALTHZ).await.unwrap();
        let response = read_healthz(&mut stream).await;
        assert!(!response.to_ascii_lowercase().contains("connection: close"), "{response}");
    }
    // The third and a fourth, pipelined.
    stream.write_all(&[HEALTHZ, HEALTHZ].concat()).await.unwrap();
    let (rest, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(rest.matches("HTTP/1.1 200").count(), 1, "{rest}");
    assert!(rest.to_ascii_lowercase().contains("connection: close"), "{rest}");
}

/// A kept-alive connection idle for `HTTP_KEEP_ALIVE_TIMEOUT` is closed;
/// used within it, it serves the next request.
#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let mut args = serve_args();
    args.http.keep_alive_timeout = Duration::from_millis(300);
    let app = spawn(args).await;

    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    read_healthz(&mut stream).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(HEALTHZ).await.unwrap();
    read_healthz(&mut stream).await;
    let (rest, idle) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(rest.is_empty(), "{rest}");
    assert!(idle >= Duration::from_millis(200), "closed after {idle:?} idle");
    assert!(idle < Duration::from_secs(2), "closed after {idle:?} idle");
}

fn person(sub: &str) -> String {
    mint(MintClaims {
        sub: sub.into(),
        role: Some(Role::Practitioner),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..MintClaims::default()
    })
}

/// With `MAX_IN_FLIGHT_PER_CLIENT` 2, a token with two requests waiting on
/// the database gets 429 `RATE_LIMITED` for a third, while another token is
/// served; once the two finish, the first token is served again.
///
/// The two requests wait for real: a transaction of the test holds the
/// `case` table in ACCESS EXCLUSIVE mode. PostgreSQL only: SQLite's readers
/// never wait for a writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_requests_in_flight_gets_429_and_others_do_not() {
    let mut args = serve_args();
    args.rate_limits.max_in_flight_per_client = Some(InFlightCap(NonZeroU32::new(2)));
    let Some(app) = spawn_app_with(Backend::Postgres, args).await else {
        return;
    };
    let (alice, bob) = (person("alice"), person("bob"));
    // Resolve both tokens' codes once, so that what follows needs no table.
    for token in [&alice, &bob] {
        app.gql_as_ok(token, "{ __typename }", json!({})).await;
    }

    let lock = app.db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE \"case\" IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let slow = "{ cases(first: 1) { nodes { id } } }";
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (client, url, alice) = (app.client.clone(), app.url("/graphql"), alice.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(alice)
                    .json(&json!({ "query": slow }))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&app, "escalations_graphql_requests_in_flight").await < 2 {
        assert!(Instant::now() < deadline, "the two requests never got in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let res = app.gql_as_raw(&alice, "{ __typename }", json!({})).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body:#}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("in flight"), "{body:#}");
    // Another token is not held back by alice's requests.
    app.gql_as_ok(&bob, "{ __typename }", json!({})).await;

    lock.rollback().await.unwrap();
    for w in waiting {
        let body = tokio::time::timeout(Duration::from_secs(10), w).await.unwrap().unwrap();
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    app.gql_as_ok(&alice, "{ __typename }", json!({})).await;
    assert_eq!(metric(&app, "escalations_graphql_requests_in_flight").await, 0);
}

/// At the cap, connections executing a request are never shed: with
/// `MAX_CONNECTIONS` 3 and two requests waiting on a locked table, 50
/// half-open connections and a `/healthz` are admitted by shedding each
/// other, and both waiting requests are answered once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_executing_a_request_are_never_shed() {
    let mut args = serve_args();
    args.http.max_connections = 3;
    let Some(app) = spawn_app_with(Backend::Postgres, args).await else {
        return;
    };
    let alice = person("alice");
    app.gql_as_ok(&alice, "{ __typename }", json!({})).await;
    let lock = app.db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE \"case\" IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            // A client each: a connection each.
            let (url, alice) = (app.url("/graphql"), alice.clone());
            tokio::spawn(async move {
                let res = reqwest::Client::new()
                    .post(url)
                    .bearer_auth(alice)
                    .json(&json!({ "query": "{ cases(first: 1) { nodes { id } } }" }))
                    .send()
                    .await
                    .unwrap();
                (res.status(), res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&app, "escalations_graphql_requests_in_flight").await < 2 {
        assert!(Instant::now() < deadline, "the two requests never got in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut half_open = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let _ = stream.write_all(HALF_HEADER).await;
        half_open.push(stream);
    }
    let (status, _) = healthz(&app).await;
    assert_eq!(status, "HTTP/1.1 200 OK");

    lock.rollback().await.unwrap();
    for w in waiting {
        let (status, body) =
            tokio::time::timeout(Duration::from_secs(10), w).await.unwrap().unwrap();
        assert_eq!(status, 200, "{body:#}");
        assert!(body.get("errors").is_none(), "{body:#}");
    }
    assert!(metric(&app, "escalations_http_connections_shed_total").await >= 50);
}

/// A raw HTTP/1.1 `POST /graphql` of `query` with `token`.
fn raw_post(token: &str, query: &str) -> Vec<u8> {
    let body = json!({ "query": query }).to_string();
    format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Waits (up to 30 s: the whole suite loads the machine) until a metric
/// reads `value`; failing, it shows the connection and in-flight gauges.
async fn metric_becomes(app: &TestApp, name: &str, value: u64) {
    metric_until(app, name, value, |now| now == value).await;
}

/// Like [`metric_becomes`], until the metric reads at most `value`.
async fn metric_at_most(app: &TestApp, name: &str, value: u64) {
    metric_until(app, name, value, |now| now <= value).await;
}

async fn metric_until(app: &TestApp, name: &str, value: u64, done: impl Fn(u64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = metric(app, name).await;
        if done(now) {
            return;
        }
        if Instant::now() >= deadline {
            let text = app.metrics().await;
            let gauges: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.starts_with("escalations_http_connections")
                        || l.starts_with("escalations_graphql_requests_in_flight")
                        || l.starts_with("escalations_db_pool")
                })
                .collect();
            panic!("{name} stayed at {now}, not {value}: {gauges:#?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A client that closes its connection while its request waits on the
/// database frees what the request held: its in-flight permits and its
/// database connection. Two requests wait on a locked table; their sockets
/// close; once the lock goes, the client is served again and nothing is
/// left in flight or open.
///
/// A regression test: when the subscriptions first landed, a connection
/// whose client went away mid-request waited for that request to finish
/// while keeping it from ever being polled again, so every such request
/// held its pool connection and its permit for good (every later request
/// of the client got `RATE_LIMITED`, or all of them a pool timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_client_went_away_frees_what_it_held() {
    let mut args = serve_args();
    args.rate_limits.max_in_flight_per_client = Some(InFlightCap(NonZeroU32::new(2)));
    let Some(app) = spawn_app_with(Backend::Postgres, args).await else {
        return;
    };
    let alice = person("alice");
    app.gql_as_ok(&alice, "{ __typename }", json!({})).await;
    let lock = app.db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE \"case\" IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let mut gone = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(&raw_post(&alice, "{ cases(first: 1) { nodes { id } } }")).await.unwrap();
        gone.push(stream);
    }
    metric_becomes(&app, "escalations_graphql_requests_in_flight", 2).await;
    drop(gone);
    lock.rollback().await.unwrap();
    metric_becomes(&app, "escalations_graphql_requests_in_flight", 0).await;
    // At most the client's own kept-alive connection is open (the metrics
    // are read on the metrics listener, whose connections are not counted).
    metric_at_most(&app, "escalations_http_connections", 1).await;
    let body = app.gql_as_ok(&alice, "{ cases(first: 1) { nodes { id } } }", json!({})).await;
    assert!(body["cases"]["nodes"].is_array(), "{body:#}");
}

/// The shape of a load generator's run ending (wrk closes its sockets with
/// requests under way), three times over, on both databases: 32
/// connections each send a case page and close at once. Afterwards every
/// connection is gone and the same token is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_of_clients_closing_mid_request_leave_the_server_answering() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, serve_args()).await else {
            continue;
        };
        let alice = person("alice");
        let page = "{ cases(first: 5) { nodes { id stage } } }";
        app.gql_as_ok(&alice, page, json!({})).await;
        for _ in 0..3 {
            let mut round = tokio::task::JoinSet::new();
            for i in 0..32u64 {
                let (addr, request) = (app.addr, raw_post(&alice, page));
                round.spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    let _ = stream.write_all(&request).await;
                    // Close at once, or after the request got going.
                    tokio::time::sleep(Duration::from_millis(i % 4)).await;
                });
            }
            round.join_all().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        metric_becomes(&app, "escalations_graphql_requests_in_flight", 0).await;
        metric_at_most(&app, "escalations_http_connections", 1).await;
        let started = Instant::now();
        let body = app.gql_as_ok(&alice, page, json!({})).await;
        assert!(body["cases"]["nodes"].is_array(), "{backend:?}: {body:#}");
        assert!(started.elapsed() < Duration::from_secs(2), "{backend:?}: {:?}", started.elapsed());
    }
}

/// The listener on its own, with routes of the test: the caller's address
/// reaches handlers as `ConnectInfo`, and on shutdown a request in flight
/// is finished while new connections are refused and idle ones closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_passes_the_peer_address_and_shuts_down_gracefully() {
    use axum::extract::ConnectInfo;
    use axum::routing::get;
    use std::net::SocketAddr;

    let router = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = escalations::listener::Settings::from(&escalations::config::HttpArgs::default());
    let connections = escalations::metrics::ConnectionMetrics::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(escalations::listener::serve(
        listener,
        router,
        settings,
        connections,
        async {
            let _ = stopped.await;
        },
    ));

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    stream.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let (response, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(response.ends_with(&local.to_string()), "{response}");

    // One connection idle after a request, one with a request in flight.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(HEALTHZ).await.unwrap();
    read_healthz(&mut idle).await;
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();

    let (rest, _) = until_closed(&mut idle, Duration::from_secs(2)).await;
    assert!(rest.is_empty(), "{rest}");
    let (response, _) = until_closed(&mut busy, Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("done"), "{response}");
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "a connection after shutdown");
}

/// A connection whose header is complete but whose body trickles in is not
/// yet executing anything: at the cap it is shed like one still sending
/// its header, so bodies sent slowly cannot pin every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_still_receiving_their_body_are_shed_at_the_cap() {
    const CAP: u32 = 8;
    let mut args = serve_args();
    args.http.max_connections = CAP;
    args.http.header_read_timeout = Duration::from_secs(60);
    args.http.request_timeout = Duration::from_secs(60);
    let app = spawn(args).await;
    let header = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n{";
    let mut trickling = Vec::new();
    for _ in 0..(CAP * 4) {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(header).await.unwrap();
        trickling.push(stream);
        // Let the server read the header and start on the body.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, took) = healthz(&app).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    // The oldest were shed: the server closed them.
    let (_, after) = until_closed(&mut trickling[0], Duration::from_secs(5)).await;
    assert!(after < Duration::from_secs(5));
}

//! Faults: the database going away and coming back, transient database
//! failures retried, and SIGTERM in the middle of a stream of writes.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use entity::{case, case_event};
use escalations::db::{DbSettings, connect};
use escalations::domain::role::Role;
use escalations::service::ServiceError;
use escalations::service::change::retry;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, TransactionTrait};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::helpers::{Backend, TcpProxy, TestApp, TestDb, spawn_app_at, via};

const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id version } } }";

fn raise_input(receiving: &str, reference: &str, key: Option<&str>) -> Value {
    json!({ "input": {
        "idempotencyKey": key,
        "receivingAgencyId": receiving,
        "childReference": reference,
        "category": "referral-response",
        "summary": "Police referral closed with no further action despite a second incident.",
    }})
}

/// The PostgreSQL server's address, from a test database URL.
async fn pg_addr(url: &str) -> SocketAddr {
    let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let host_port = authority.rsplit('@').next().unwrap();
    tokio::net::lookup_host(host_port).await.unwrap().next().unwrap()
}

async fn counts(app: &TestApp) -> (u64, u64) {
    let cases = case::Entity::find().count(&app.db).await.unwrap();
    let events = case_event::Entity::find().count(&app.db).await.unwrap();
    (cases, events)
}

/// With PostgreSQL cut off (by a proxy; the shared server is never
/// touched), a mutation fails within the acquire timeout with the fixed
/// `INTERNAL_SERVER_ERROR`, leaving nothing stored; once the database is
/// back the same mutation, with the same idempotency key, succeeds without
/// a restart and is stored once with its audit event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_during_a_database_outage_fails_fast_and_cleanly_then_succeeds() {
    let Some(test_db) = TestDb::create(Backend::Postgres).await else { return };
    let proxy = TcpProxy::start(pg_addr(test_db.url()).await).await;
    let url = via(test_db.url(), proxy.addr);
    let app = spawn_app_at(Backend::Postgres, test_db, &url).await;
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    app.gql_as_ok(&token, RAISE, raise_input(&receiving, "SWP-1", None)).await;
    assert_eq!(counts(&app).await, (1, 1));

    proxy.cut().await;
    let input = raise_input(&receiving, "SWP-2", Some("outage-1"));
    let started = Instant::now();
    let res = app.gql_as_raw(&token, RAISE, input.clone()).await;
    let took = started.elapsed();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["data"].is_null(), "{body:#}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body:#}");
    assert_eq!(errors[0]["extensions"]["code"], "INTERNAL_SERVER_ERROR", "{body:#}");
    assert_eq!(errors[0]["message"], "internal error");
    // The default acquire timeout is 3 s; nothing waits on TCP or retries.
    assert!(took < Duration::from_millis(4500), "failed after {took:?}, not fast");
    eprintln!("a mutation against a refusing database failed after {took:?}");
    // Another request fails the same way; `/readyz` says so.
    assert_eq!(app.get("/readyz").await.status(), 503);
    // Nothing of the failed change is stored (checked behind the proxy).
    assert_eq!(counts(&app).await, (1, 1));

    proxy.restore();
    let mut ready = false;
    for _ in 0..80 {
        if app.get("/readyz").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again once the database is back");
    let data = app.gql_as_ok(&token, RAISE, input.clone()).await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    // The key was never stored by the failed attempt: this was the first
    // change, and a repeat replays it.
    let again = app.gql_as_ok(&token, RAISE, input).await;
    assert_eq!(again["raiseCase"]["case"]["id"], id.as_str());
    assert_eq!(counts(&app).await, (2, 2));
}

/// A proxy that, once cut, swallows traffic: open connections die and new
/// ones are accepted but never answered, as when a network path goes dark
/// (no refusal, no reset), the case timeouts exist for.
struct BlackHole {
    addr: SocketAddr,
    dark: Arc<AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::AbortHandle,
}

impl BlackHole {
    async fn start(target: SocketAddr) -> BlackHole {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dark = Arc::new(AtomicBool::new(false));
        let conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (dark2, conns2) = (dark.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                let dark = dark2.load(Ordering::SeqCst);
                let task = tokio::spawn(async move {
                    if dark {
                        // Hold the socket open and say nothing.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        drop(inbound);
                    } else if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        BlackHole { addr, dark, conns, accept }
    }

    fn go_dark(&self) {
        self.dark.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.dark.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.accept.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

/// When PostgreSQL stops answering at all (connections neither refused nor
/// reset), a mutation still fails within the acquire timeout (3 s by
/// default), not after TCP's minutes, with nothing stored; the server
/// serves again once the path is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_database_fails_requests_within_the_acquire_timeout() {
    let Some(test_db) = TestDb::create(Backend::Postgres).await else { return };
    let hole = BlackHole::start(pg_addr(test_db.url()).await).await;
    let url = via(test_db.url(), hole.addr);
    let app = spawn_app_at(Backend::Postgres, test_db, &url).await;
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;

    hole.go_dark();
    let started = Instant::now();
    let body: Value = app
        .gql_as_raw(&token, RAISE, raise_input(&receiving, "SWP-3", Some("dark-1")))
        .await
        .json()
        .await
        .unwrap();
    let took = started.elapsed();
    // The token's codes are looked up first, and that look-up is held to
    // the preparation deadline (2 s): a 503 to try again, not a 500.
    assert_eq!(body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE", "{body:#}");
    assert!(took < Duration::from_millis(4500), "failed after {took:?}, not within ~3 s");
    eprintln!("a mutation against a silent database failed after {took:?}");
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(counts(&app).await, (0, 0));

    hole.restore();
    let mut ready = false;
    for _ in 0..100 {
        if app.get("/readyz").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again once the database answers");
    app.gql_as_ok(&token, RAISE, raise_input(&receiving, "SWP-3", Some("dark-1"))).await;
    assert_eq!(counts(&app).await, (1, 1));
}

/// Two transactions that lock two rows in opposite orders: PostgreSQL
/// aborts one with a deadlock (SQLSTATE 40P01), which `retry::retrying` sees as
/// transient and runs again; both changes end up committed once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_postgres_deadlock_is_retried() {
    let Some(test_db) = TestDb::create(Backend::Postgres).await else { return };
    let db = connect(&DbSettings { url: test_db.url().to_owned(), max_connections: Some(4) })
        .await
        .unwrap();
    db.execute_unprepared("CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL)")
        .await
        .unwrap();
    db.execute_unprepared("INSERT INTO counter VALUES (1, 0), (2, 0)").await.unwrap();
    // Deadlocks are found after `deadlock_timeout` (1 s by default).
    let barrier = Arc::new(Barrier::new(2));
    let attempts = Arc::new(AtomicU32::new(0));
    let transient = Arc::new(AtomicU32::new(0));

    let run = |first: i32, second: i32| {
        let (db, barrier) = (db.clone(), barrier.clone());
        let (attempts, transient) = (attempts.clone(), transient.clone());
        async move {
            let tries = AtomicU32::new(0);
            retry::retrying(|| {
                let (db, barrier) = (&db, &barrier);
                let first_try = tries.fetch_add(1, Ordering::SeqCst) == 0;
                attempts.fetch_add(1, Ordering::SeqCst);
                let transient = transient.clone();
                async move {
                    let result: Result<(), ServiceError> = async {
                        let txn = db.begin().await?;
                        let bump =
                            |id: i32| format!("UPDATE counter SET n = n + 1 WHERE id = {id}");
                        txn.execute_unprepared(&bump(first)).await?;
                        if first_try {
                            barrier.wait().await;
                        }
                        txn.execute_unprepared(&bump(second)).await?;
                        txn.commit().await?;
                        Ok(())
                    }
                    .await;
                    if let Err(err) = &result
                        && retry::is_transient(err)
                    {
                        transient.fetch_add(1, Ordering::SeqCst);
                    }
                    result
                }
            })
            .await
        }
    };
    let (a, b) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(tokio::spawn(run(1, 2)), tokio::spawn(run(2, 1)))
    })
    .await
    .expect("the deadlock was not broken");
    a.unwrap().unwrap();
    b.unwrap().unwrap();
    assert!(transient.load(Ordering::SeqCst) >= 1, "no deadlock happened");
    assert_eq!(attempts.load(Ordering::SeqCst), 2 + transient.load(Ordering::SeqCst));
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT n FROM counter ORDER BY id",
        ))
        .await
        .unwrap();
    let ns: Vec<i32> = rows.iter().map(|r| r.try_get("", "n").unwrap()).collect();
    assert_eq!(ns, [2, 2], "each transaction committed exactly once");
    db.close().await.unwrap();
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_escalations"))
}

/// How one request of the load ended.
#[derive(Debug)]
enum Outcome {
    /// 200 with the case's id and no errors.
    Raised(String),
    /// No answer: the connection was refused, reset or closed.
    NoAnswer,
    /// Anything else: a half answer, an error, a 5xx.
    Other(String),
}

async fn raise_once(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    receiving: &str,
    reference: &str,
) -> Outcome {
    let res = match client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": RAISE, "variables": raise_input(receiving, reference, None) }))
        .send()
        .await
    {
        Ok(res) => res,
        // A request that hangs is a failure too.
        Err(err) if err.is_timeout() => return Outcome::Other(format!("timed out: {err}")),
        Err(err) if err.is_connect() || err.is_request() => return Outcome::NoAnswer,
        Err(err) => return Outcome::Other(format!("send: {err:?}")),
    };
    let status = res.status();
    // A body cut short is a half answer, which must not happen.
    let body: Value = match res.json().await {
        Ok(b) => b,
        Err(err) => return Outcome::Other(format!("{status}: unreadable body: {err}")),
    };
    match body["data"]["raiseCase"]["case"]["id"].as_str() {
        Some(id) if status == 200 && body.get("errors").is_none() => Outcome::Raised(id.to_owned()),
        _ => Outcome::Other(format!("{status}: {body}")),
    }
}

/// The real binary on a SQLite file, under a stream of `raiseCase` from 8
/// clients, gets SIGTERM. It exits 0; every case it answered is stored with
/// its audit event, none is stored without one, the audit chain verifies,
/// and once it is gone requests find no server rather than half answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_no_committed_change_and_stores_no_half_change() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}?mode=rwc", dir.path().join("load.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut child = bin()
        .args(["serve", "--demo", "--listen-addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db_url)
        .env("RUST_LOG", "warn")
        .env("SHUTDOWN_GRACE_SECONDS", "20")
        // One token drives the load; the default per-client limit would answer 429.
        .env("RATE_LIMIT_PEOPLE", "off")
        .env("MAX_IN_FLIGHT_PER_CLIENT", "off")
        .env("RATE_LIMIT_COST", "off")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();

    let mut up = false;
    for _ in 0..200 {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await
            && res.status() == 200
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        let _ = child.kill();
        panic!("server did not start");
    }

    let out = bin()
        .args(["--demo", "token", "--role", "practitioner", "--agency", "wb-police"])
        .args(["--partnership", "western-bay", "--sub", "load-tester"])
        .env("DATABASE_URL", &db_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let directory: Value = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": "{ partnerships { agencies { id code } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let receiving = directory["data"]["partnerships"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["agencies"].as_array().unwrap().iter())
        .find(|a| a["code"] == "wb-swansea-csc")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .expect("demo agency");

    // Eight clients raise cases back to back until the server is gone.
    let stop = Arc::new(AtomicBool::new(false));
    let termed_flag = Arc::new(AtomicBool::new(false));
    // Requests sent before SIGTERM and answered after it: in flight.
    let in_flight = Arc::new(AtomicU32::new(0));
    let url = format!("{base}/graphql");
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, url, token, receiving, stop) =
            (client.clone(), url.clone(), token.clone(), receiving.clone(), stop.clone());
        let (termed_flag, in_flight) = (termed_flag.clone(), in_flight.clone());
        workers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let sent_before = !termed_flag.load(Ordering::SeqCst);
                let o =
                    raise_once(&client, &url, &token, &receiving, &format!("LOAD-{w}-{i}")).await;
                if sent_before
                    && termed_flag.load(Ordering::SeqCst)
                    && matches!(o, Outcome::Raised(_))
                {
                    in_flight.fetch_add(1, Ordering::SeqCst);
                }
                let done = matches!(o, Outcome::NoAnswer);
                outcomes.push(o);
                if done {
                    break;
                }
            }
            outcomes
        }));
    }
    // Let the load build, then stop the server in the middle of it.
    let loaded = Instant::now();
    tokio::time::sleep(Duration::from_millis(700)).await;
    termed_flag.store(true, Ordering::SeqCst);
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let termed = Instant::now();

    // The process exits by itself, in bounded time.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if termed.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the server did not exit within 30 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited_after = termed.elapsed();
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    // Workers still looping now find no server.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);

    let mut raised = Vec::new();
    let mut no_answer = 0;
    for w in workers {
        for o in tokio::time::timeout(Duration::from_secs(30), w).await.unwrap().unwrap() {
            match o {
                Outcome::Raised(id) => raised.push(id),
                Outcome::NoAnswer => no_answer += 1,
                Outcome::Other(what) => panic!("a request got neither an answer nor none: {what}"),
            }
        }
    }
    assert!(raised.len() >= 8, "too little load before SIGTERM: {} cases", raised.len());
    // Requests in flight at SIGTERM were completed, not dropped.
    let in_flight = in_flight.load(Ordering::SeqCst);
    assert!(in_flight >= 1, "no request in flight at SIGTERM was answered");
    // After the exit: no server, a connection error rather than an answer.
    assert!(matches!(
        raise_once(&client, &url, &token, &receiving, "AFTER-1").await,
        Outcome::NoAnswer
    ));

    // Every answered case is stored; every stored case has its audit event.
    let db = connect(&DbSettings { url: db_url.clone(), max_connections: Some(1) }).await.unwrap();
    let stored: HashSet<String> =
        case::Entity::find().all(&db).await.unwrap().iter().map(|c| c.id.to_string()).collect();
    let mut events: BTreeMap<String, usize> = BTreeMap::new();
    for e in case_event::Entity::find().all(&db).await.unwrap() {
        *events.entry(e.case_id.to_string()).or_default() += 1;
    }
    db.close().await.unwrap();
    for id in &raised {
        assert!(stored.contains(id), "case {id} was answered but not stored");
    }
    for id in &stored {
        assert_eq!(events.get(id), Some(&1), "case {id} without exactly its raise event");
    }
    assert!(events.keys().all(|id| stored.contains(id)), "an event without its case");
    let out = bin().args(["audit", "verify"]).env("DATABASE_URL", &db_url).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "load for {:?}; {} cases answered ({} of them in flight at SIGTERM), {} stored, {} requests unanswered; exit {:?} after SIGTERM",
        termed - loaded,
        raised.len(),
        in_flight,
        stored.len(),
        no_answer,
        exited_after
    );
}

/// A statement PostgreSQL has started goes on even when the request that
/// sent it is gone: every pooled connection ends one after 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statements_end_after_the_statement_timeout() {
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await else {
        return;
    };
    use sea_orm::ConnectionTrait;
    let row = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SHOW statement_timeout",
        ))
        .await
        .unwrap()
        .unwrap();
    let value: String = row.try_get_by_index(0).unwrap();
    assert_eq!(value, "30s");
}

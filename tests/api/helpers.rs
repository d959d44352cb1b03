//! The test harness: the real server (the library's router) on a random
//! port, against a fresh database per test, driven over HTTP.
//!
//! Every database test runs twice, on SQLite (a temporary file) and on
//! PostgreSQL (a fresh database, dropped afterwards), through `db_test!`.
//! PostgreSQL is at `postgres://127.0.0.1:5432/postgres` unless
//! `TEST_DATABASE_URL` says otherwise. When `CI` is set an unreachable
//! PostgreSQL fails the test; otherwise the PostgreSQL half says it skipped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use escalations::auth::{MintClaims, Verifier};
use escalations::config::{
    AnonymousAccess, AuthArgs, GlobalArgs, GraphqlArgs, HttpArgs, LogFormat, MetricsArgs,
    RateLimitArgs, ServeArgs,
};
use escalations::db::{DbSettings, connect};
use escalations::domain::role::Role;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs the body once per backend, as two tests named `sqlite` and
/// `postgres` inside a module named after the test.
#[macro_export]
macro_rules! db_test {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await;
                let Some($app) = $app else { return };
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await;
                let Some($app) = $app else { return };
                $body
            }
        }
    };
}

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A database that exists for one test.
pub enum TestDb {
    Sqlite { dir: tempfile::TempDir, url: String },
    Postgres { name: String, url: String },
}

impl TestDb {
    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    /// A fresh, empty database; `None` only when PostgreSQL is unreachable
    /// outside CI.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Some(TestDb::Sqlite { dir, url })
            }
            Backend::Postgres => {
                let admin = admin_url();
                let conn = match Database::connect(admin.as_str()).await {
                    Ok(c) => c,
                    Err(err) => {
                        if std::env::var_os("CI").is_some() {
                            panic!("PostgreSQL at {admin} is unreachable and CI is set: {err}");
                        }
                        eprintln!("SKIPPED the PostgreSQL half: {admin} unreachable ({err})");
                        return None;
                    }
                };
                let name = format!("esc_test_{}", uuid::Uuid::now_v7().simple());
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
                conn.close().await.unwrap();
                let url = with_database(&admin, &name);
                Some(TestDb::Postgres { name, url })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { name, .. } = self {
            let name = name.clone();
            // Drop runs inside the test's runtime: use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(conn) = Database::connect(admin_url().as_str()).await {
                        let _ = conn
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// A running server with its database.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The metrics listener's address, when the settings asked for one
    /// (the default of [`serve_args`]).
    pub metrics_addr: Option<SocketAddr>,
    pub backend: Backend,
    pub client: reqwest::Client,
    /// A separate pool on the same database, for checks behind the API.
    pub db: DatabaseConnection,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    // Dropped last: the database outlives the server.
    test_db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub const TEST_SECRET: &str = "test-secret-of-at-least-thirty-two-bytes!";
pub const TEST_ISSUER: &str = "https://idp.test.example";
pub const TEST_AUDIENCE: &str = "escalations-api";

pub fn serve_args() -> ServeArgs {
    ServeArgs {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        migrate_on_start: true,
        shutdown_grace_seconds: 5,
        directory_cache_seconds: 30,
        graphql: GraphqlArgs::default(),
        http: HttpArgs::default(),
        rate_limits: RateLimitArgs::default(),
        webhooks: escalations::config::WebhookArgs::default(),
        timers: escalations::config::TimerArgs::default(),
        // As a deployment would: metrics on a listener of their own.
        metrics: MetricsArgs {
            metrics_listen_addr: Some("127.0.0.1:0".parse().unwrap()),
            metrics_token: None,
        },
        trusted: escalations::config::TrustedArgs::default(),
    }
}

/// `serve_args` with GraphiQL served (`GRAPHIQL=true`; off by default
/// outside demo mode).
pub fn with_graphiql() -> ServeArgs {
    let mut args = serve_args();
    args.graphql.graphiql = Some(true);
    args
}

/// Settings as a deployment would give them (no demo defaults): HS256 with a
/// test secret; introspection and the directory opened to anonymous callers
/// explicitly (outside demo mode nothing is open by default), since many
/// tests read the directory without a token. GraphiQL stays at its default
/// (off): [`with_graphiql`] turns it on.
pub fn global_args() -> GlobalArgs {
    GlobalArgs {
        database_url: String::new(),
        database_max_connections: Some(4),
        log_filter: "warn".into(),
        log_format: LogFormat::Pretty,
        demo: false,
        bank_holidays_file: None,
        auth: AuthArgs {
            jwt_secret: Some(TEST_SECRET.into()),
            jwt_issuer: Some(TEST_ISSUER.into()),
            jwt_audience: Some(TEST_AUDIENCE.into()),
            jwt_leeway_seconds: 30,
            anonymous_access: Some(vec![
                AnonymousAccess::Introspection,
                AnonymousAccess::Directory,
            ]),
            ..AuthArgs::default()
        },
        telemetry: Default::default(),
    }
}

/// A server on a fresh database loaded with the demo directory.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, global_args()).await
}

/// The settings of a test server: the global ones and those of `serve`.
pub struct Settings {
    pub global: GlobalArgs,
    pub serve: ServeArgs,
}

impl From<GlobalArgs> for Settings {
    fn from(global: GlobalArgs) -> Self {
        Settings { global, serve: serve_args() }
    }
}

impl From<ServeArgs> for Settings {
    fn from(serve: ServeArgs) -> Self {
        Settings { global: global_args(), serve }
    }
}

/// Like `spawn_app`, with other settings (`GlobalArgs`, `ServeArgs` or both).
pub async fn spawn_app_with(backend: Backend, settings: impl Into<Settings>) -> Option<TestApp> {
    let test_db = TestDb::create(backend).await?;
    let url = test_db.url().to_owned();
    Some(spawn_app_at_with(backend, test_db, &url, settings.into(), true).await)
}

/// Like `spawn_app_with`, on a migrated database with no directory (no
/// partnership), as a deployment starts before it loads its own.
pub async fn spawn_app_on_empty_directory(
    backend: Backend,
    settings: impl Into<Settings>,
) -> Option<TestApp> {
    let test_db = TestDb::create(backend).await?;
    let url = test_db.url().to_owned();
    Some(spawn_app_at_with(backend, test_db, &url, settings.into(), false).await)
}

/// A server whose pool uses `server_url` (e.g. through a proxy) for the
/// database of `test_db`.
pub async fn spawn_app_at(backend: Backend, test_db: TestDb, server_url: &str) -> TestApp {
    spawn_app_at_with(backend, test_db, server_url, global_args().into(), true).await
}

async fn spawn_app_at_with(
    backend: Backend,
    test_db: TestDb,
    server_url: &str,
    settings: Settings,
    demo_directory: bool,
) -> TestApp {
    let pool = DbSettings { url: server_url.to_owned(), max_connections: Some(4) };
    let server_db = connect(&pool).await.expect("server pool");
    // The demo directory is loaded explicitly: tests run without demo defaults.
    escalations::db::migrate(&server_db).await.expect("migrate");
    if demo_directory {
        escalations::service::demo::seed_directory(
            &server_db,
            &escalations::domain::catalog::Catalog::builtin().unwrap(),
        )
        .await
        .expect("seed");
    }
    let state = escalations::app::prepare(server_db, &settings.global, &settings.serve)
        .await
        .expect("prepare");
    let listeners = escalations::http::Listeners::bind(
        "127.0.0.1:0".parse().unwrap(),
        settings.serve.metrics.metrics_listen_addr,
    )
    .await
    .unwrap();
    let addr = listeners.api.local_addr().unwrap();
    let metrics_addr = listeners.metrics.as_ref().map(|l| l.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(escalations::http::serve(listeners, state, async {
        let _ = stopped.await;
    }));
    let db = connect(&DbSettings { url: test_db.url().to_owned(), max_connections: Some(2) })
        .await
        .expect("test pool");
    TestApp {
        addr,
        metrics_addr,
        backend,
        client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        db,
        stop: Some(stop),
        test_db,
    }
}

impl TestApp {
    /// The URL of the test's database.
    pub fn db_url(&self) -> &str {
        self.test_db.url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A valid token for a person with `role` acting for `agency` (a code)
    /// in `partnership` (a code).
    pub fn token(&self, role: Role, agency: Option<&str>, partnership: &str) -> String {
        mint(MintClaims {
            sub: format!("user-{}-{}", role.as_str(), agency.unwrap_or("none")),
            name: Some("Test User".into()),
            role: Some(role),
            scope: None,
            agency: agency.map(str::to_owned),
            partnership: partnership.to_owned(),
        })
    }

    /// A valid token for a machine client with `scope`.
    pub fn client_token(&self, scope: &str, agency: Option<&str>, partnership: &str) -> String {
        mint(MintClaims {
            sub: "client-1".into(),
            scope: Some(scope.into()),
            agency: agency.map(str::to_owned),
            partnership: partnership.to_owned(),
            ..MintClaims::default()
        })
    }

    /// Posts a GraphQL request with a bearer token; returns the response.
    pub async fn gql_as_raw(
        &self,
        token: &str,
        query: &str,
        variables: Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
    }

    /// Posts with a token; returns the JSON body.
    pub async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.gql_as_raw(token, query, variables).await.json().await.unwrap()
    }

    /// The `data` of a request with a token that must have no errors.
    pub async fn gql_as_ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql_as(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// The single error of a request with a token.
    pub async fn gql_as_err(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql_as(token, query, variables).await;
        let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors: {body:#}"));
        assert_eq!(errors.len(), 1, "{body:#}");
        errors[0].clone()
    }

    /// Posts a request that names a trusted document by `hash` (Apollo's
    /// persisted-query extension, no `query`), with a token when given.
    pub async fn persisted_raw(
        &self,
        token: Option<&str>,
        hash: &str,
        variables: Value,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url("/graphql")).json(&json!({
            "extensions": persisted_query(hash),
            "variables": variables,
        }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `GET /metrics` on the metrics listener.
    pub async fn metrics_response(&self) -> reqwest::Response {
        let addr = self.metrics_addr.expect("a server with a metrics listener");
        self.client.get(format!("http://{addr}/metrics")).send().await.unwrap()
    }

    /// The text of `/metrics`, from the metrics listener.
    pub async fn metrics(&self) -> String {
        let res = self.metrics_response().await;
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    /// Posts a GraphQL request and returns the JSON body (any status).
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.gql_raw(query, variables).await.json().await.unwrap()
    }

    pub async fn gql_raw(&self, query: &str, variables: Value) -> reqwest::Response {
        self.client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
    }

    /// The `data` of a response that must have no errors.
    pub async fn gql_ok(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// The single error of a response, which must have one.
    pub async fn gql_err(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors: {body:#}"));
        assert_eq!(errors.len(), 1, "{body:#}");
        errors[0].clone()
    }

    /// The id of a demo agency by code.
    pub async fn agency_id(&self, code: &str) -> String {
        let data = self.gql_ok("{ partnerships { agencies { id code } } }", json!({})).await;
        data["partnerships"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["agencies"].as_array().unwrap().iter())
            .find(|a| a["code"] == code)
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no agency {code}"))
    }
}

/// The `extensions` of a request that names a trusted document by `hash`.
pub fn persisted_query(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// Mints a token with the test settings.
pub fn mint(claims: MintClaims) -> String {
    let verifier = Verifier::from_args(&global_args().auth, false).unwrap();
    verifier.mint(&claims, Duration::from_secs(600)).unwrap()
}

/// A TCP proxy that can cut every connection and refuse new ones, to
/// simulate a database outage without touching the shared server.
pub struct TcpProxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (cut2, conns2) = (cut.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if cut2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().await.push(task.abort_handle());
            }
        })
        .abort_handle();
        TcpProxy { addr, cut, conns, accept }
    }

    /// Closes every open connection and refuses new ones.
    pub async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// `url` with its host and port replaced by `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let host_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..host_end];
    let userinfo = authority.rfind('@').map(|i| &authority[..=i]).unwrap_or("");
    format!("{}{userinfo}{addr}{}", &url[..scheme_end], &rest[host_end..])
}

#[test]
fn urls_are_rewritten() {
    assert_eq!(with_database("postgres://h:5432/postgres", "x"), "postgres://h:5432/x");
    assert_eq!(
        with_database("postgres://u@h/postgres?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert_eq!(via("postgres://u@h:5432/db", addr), "postgres://u@127.0.0.1:9/db");
    assert_eq!(via("postgres://h:5432/db", addr), "postgres://127.0.0.1:9/db");
}

/// Like `db_test!`, on a server started with other settings: `$global` is a
/// `GlobalArgs` or `ServeArgs` expression (anything `Into<Settings>`),
/// evaluated once per backend inside the test module.
#[macro_export]
macro_rules! db_test_with {
    ($name:ident, $global:expr, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app =
                    $crate::helpers::spawn_app_with($crate::helpers::Backend::Sqlite, $global)
                        .await;
                let Some($app) = $app else { return };
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app =
                    $crate::helpers::spawn_app_with($crate::helpers::Backend::Postgres, $global)
                        .await;
                let Some($app) = $app else { return };
                $body
            }
        }
    };
}

/// Western Bay as the demo directory stores it, for fixtures written
/// behind the API: its id, the police's, and the three agencies that
/// receive the police's cases in them.
pub struct WesternBay {
    pub partnership: uuid::Uuid,
    pub police: uuid::Uuid,
    pub receivers: Vec<uuid::Uuid>,
}

impl TestApp {
    /// Western Bay's ids (see [`WesternBay`]).
    pub async fn western_bay(&self) -> WesternBay {
        let data = self.gql_ok("{ partnerships { id code } }", json!({})).await;
        let wb = data["partnerships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == "western-bay")
            .unwrap();
        let mut receivers = Vec::new();
        for code in ["wb-swansea-csc", "wb-health", "wb-education"] {
            receivers.push(self.agency_id(code).await.parse().unwrap());
        }
        WesternBay {
            partnership: wb["id"].as_str().unwrap().parse().unwrap(),
            police: self.agency_id("wb-police").await.parse().unwrap(),
            receivers,
        }
    }
}

/// An open Western Bay case `id` raised by the police at `at` and received
/// by `receiving`, child reference `SWP-{i}`, as a row to insert (fields
/// can be changed before).
pub fn open_case(
    wb: &WesternBay,
    id: uuid::Uuid,
    receiving: uuid::Uuid,
    stage: &str,
    i: usize,
    at: chrono::DateTime<chrono::Utc>,
) -> entity::case::ActiveModel {
    use sea_orm::ActiveValue::Set;
    entity::case::ActiveModel {
        id: Set(id),
        partnership_id: Set(wb.partnership),
        protocol_id: Set("western-bay".into()),
        protocol_version: Set(1),
        route: Set("main".into()),
        stage: Set(stage.into()),
        status: Set("open".into()),
        raising_agency_id: Set(wb.police),
        receiving_agency_id: Set(receiving),
        child_reference: Set(format!("SWP-{i}")),
        category: Set("other".into()),
        summary: Set("s".into()),
        version: Set(1),
        raised_at: Set(at),
        updated_at: Set(at),
        stage_entered_at: Set(Some(at)),
        due_on: Set(None),
        acknowledged_at: Set(None),
        repeated_similar_cases: Set(None),
        family_told_on: Set(None),
        step_down_conference_on: Set(None),
        step_down_checked_at: Set(None),
        step_down_cin_meeting_held: Set(None),
        step_down_cin_plan_in_place: Set(None),
        step_down_follow_up_id: Set(None),
        follows_case_id: Set(None),
    }
}

/// A stage-1 discussion record of `case`, by `author` (an agency), as a
/// row to insert.
pub fn discussion_record(
    case: uuid::Uuid,
    facts: String,
    author: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> entity::case_record::ActiveModel {
    use sea_orm::ActiveValue::Set;
    entity::case_record::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        case_id: Set(case),
        stage: Set("stage-1".into()),
        kind: Set("discussion".into()),
        facts: Set(facts),
        opinions: Set(String::new()),
        attendees: Set("[]".into()),
        corrects_id: Set(None),
        author_sub: Set("u".into()),
        author_agency_id: Set(Some(author)),
        created_at: Set(at),
    }
}

/// Writes the records Western Bay's stage 1 asks for before a case leaves
/// it (a discussion and an analysis of the risk), as the raising police
/// manager: two changes of the case.
pub async fn western_bay_stage_1_records(app: &TestApp, case_id: &str) {
    let manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let add = "mutation($i: AddRecordInput!) { addRecord(input: $i) { record { id } } }";
    for kind in ["DISCUSSION", "ANALYSIS"] {
        app.gql_as_ok(&manager, add, serde_json::json!({ "i": { "caseId": case_id, "kind": kind, "facts": "Written at stage 1." } }))
            .await;
    }
}

/// A response body without its errors' `extensions.traceId` (each
/// request's own), for comparing two answers that must not be told apart.
pub fn without_trace_ids(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(errors) = body.get_mut("errors").and_then(Value::as_array_mut) {
        for error in errors {
            if let Some(ext) = error.get_mut("extensions").and_then(Value::as_object_mut) {
                ext.remove("traceId");
            }
        }
    }
    body
}

//! Secure by default: outside demo mode a server serves no GraphiQL and
//! opens nothing to anonymous callers unless settings say so, refuses to
//! start with the development secret or without a key, and says so when
//! its directory is empty (at start and in `/readyz`). GraphiQL and the
//! settings are not about the database (SQLite only); the empty directory
//! is, on both.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use escalations::auth::{AuthError, DEMO_SECRET};
use escalations::config::AnonymousAccess;
use escalations::domain::role::Role;
use serde_json::json;

use crate::auth::{assert_ok, assert_unauthenticated, post};
use crate::helpers::{
    Backend, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, TestApp, TestDb, global_args, serve_args,
    spawn_app_on_empty_directory, spawn_app_with, with_graphiql,
};

const SCHEMA_QUERY: &str = "{ __schema { queryType { name } } }";
const PARTNERSHIPS_QUERY: &str = "{ partnerships { code } }";

/// The settings of a deployment that sets only its token keys.
fn deployment() -> crate::helpers::Settings {
    let mut global = global_args();
    global.auth.anonymous_access = None;
    crate::helpers::Settings { global, serve: serve_args() }
}

/// `GET /graphql` as a browser asks for it, and one of GraphiQL's files.
async fn graphiql_statuses(app: &TestApp) -> (u16, String, u16) {
    let res =
        app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    let page = res.status().as_u16();
    let body = res.text().await.unwrap();
    let file = app.get("/graphiql/start.js").await.status().as_u16();
    (page, body, file)
}

#[tokio::test]
async fn outside_demo_mode_graphiql_and_anonymous_introspection_are_off_by_default() {
    let app = spawn_app_with(Backend::Sqlite, deployment()).await.unwrap();
    let (page, body, file) = graphiql_statuses(&app).await;
    assert_eq!((page, file), (404, 404), "{body}");
    // The 404 says how to send a query, and nothing of the settings.
    assert!(body.starts_with("GraphiQL is not served here"), "{body}");
    assert!(body.contains("POST /graphql"), "{body}");
    assert!(!body.contains("GRAPHIQL"), "{body}");

    for (name, query) in [("introspection", SCHEMA_QUERY), ("the directory", PARTNERSHIPS_QUERY)] {
        let reply = post(&app, None, query, json!({})).await;
        assert_unauthenticated(name, &reply, &AuthError::Missing);
    }
    // A token introspects (PRODUCTION turns that off too).
    let token = format!("Bearer {}", app.token(Role::Manager, Some("wb-police"), "western-bay"));
    let data = assert_ok("with a token", &post(&app, Some(&token), SCHEMA_QUERY, json!({})).await);
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    // Queries over GET still run.
    let res = app.get("/graphql?query=%7B%20__typename%20%7D").await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn graphiql_and_anonymous_introspection_are_settings() {
    let mut global = global_args();
    global.auth.anonymous_access = Some(vec![AnonymousAccess::Introspection]);
    let settings = crate::helpers::Settings { global, serve: with_graphiql() };
    let app = spawn_app_with(Backend::Sqlite, settings).await.unwrap();
    let (page, body, file) = graphiql_statuses(&app).await;
    assert_eq!((page, file), (200, 200));
    assert!(body.contains("<title>escalations: GraphiQL</title>"), "{body}");
    let data = assert_ok("introspection", &post(&app, None, SCHEMA_QUERY, json!({})).await);
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    // Only what the setting names: not the directory.
    let reply = post(&app, None, PARTNERSHIPS_QUERY, json!({})).await;
    assert_unauthenticated("the directory", &reply, &AuthError::Missing);
}

#[tokio::test]
async fn demo_mode_serves_graphiql_and_opens_introspection_and_the_directory() {
    let mut settings = deployment();
    settings.global.demo = true;
    let app = spawn_app_with(Backend::Sqlite, settings).await.unwrap();
    let (page, _, file) = graphiql_statuses(&app).await;
    assert_eq!((page, file), (200, 200));
    assert_ok("introspection", &post(&app, None, SCHEMA_QUERY, json!({})).await);
    let data = assert_ok("directory", &post(&app, None, PARTNERSHIPS_QUERY, json!({})).await);
    assert_eq!(data["partnerships"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn graphiql_and_production_mode_exclude_each_other() {
    let test_db = TestDb::create(Backend::Sqlite).await.unwrap();
    let settings =
        escalations::db::DbSettings { url: test_db.url().to_owned(), max_connections: Some(2) };
    let db = escalations::db::connect(&settings).await.unwrap();
    let mut args = with_graphiql();
    args.graphql.production = true;
    let err = escalations::app::prepare(db, &global_args(), &args).await.err().unwrap();
    assert!(format!("{err:#}").contains("GRAPHIQL=true and PRODUCTION"), "{err:#}");
}

/// `escalations serve` outside demo mode on a new SQLite file, with the
/// token settings `env` and nothing from the test's own environment.
fn serve(dir: &tempfile::TempDir, port: u16, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_escalations"));
    cmd.args(["serve", "--listen-addr", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()))
        .env("RUST_LOG", "warn");
    for name in [
        "DEMO",
        "JWT_ALGORITHM",
        "JWT_SECRET",
        "JWT_PUBLIC_KEY_FILE",
        "JWT_JWKS_FILE",
        "JWT_JWKS_URL",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
    ] {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Runs `cmd`, which must exit within 30 s (a server that starts runs
/// until it is stopped).
fn exits(mut cmd: Command) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the server started");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn outside_demo_mode_serve_refuses_the_development_secret_and_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = [("JWT_ISSUER", TEST_ISSUER), ("JWT_AUDIENCE", TEST_AUDIENCE)];
    // Each row: its name, the settings, what the refusal says.
    type Row<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [&'a str]);
    let rows: [Row; 4] = [
        (
            "the development secret",
            [("JWT_SECRET", DEMO_SECRET)].into_iter().chain(issuer).collect(),
            &["JWT_SECRET is the development secret of --demo", "a secret of your own"],
        ),
        (
            "the development secret, nothing else",
            vec![("JWT_SECRET", DEMO_SECRET)],
            &["JWT_SECRET is the development secret of --demo"],
        ),
        (
            "no key at all",
            issuer.to_vec(),
            &["no token key is set", "JWT_SECRET", "JWT_JWKS_URL", "README: Production"],
        ),
        (
            "a secret shorter than 32 bytes",
            [("JWT_SECRET", "too-short")].into_iter().chain(issuer).collect(),
            &["JWT_SECRET: must be at least 32 bytes"],
        ),
    ];
    for (name, env, says) in rows {
        let out = exits(serve(&dir, 0, &env));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        for words in says {
            assert!(stderr.contains(words), "{name}: {words:?} not in {stderr}");
        }
    }
    // The same secret in demo mode starts (and is stopped here).
    let port = free_port();
    let mut demo = serve(&dir, port, &[("JWT_SECRET", DEMO_SECRET)]);
    demo.arg("--demo");
    let mut child = demo.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut up = false;
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().unwrap();
    assert!(up, "the demo server did not start");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn an_empty_directory_is_ready_and_says_so(backend: Backend) {
    let Some(app) = spawn_app_on_empty_directory(backend, deployment()).await else { return };
    let admin = format!("http://{}/readyz", app.metrics_addr.unwrap());
    for url in [app.url("/readyz"), admin.clone()] {
        let res = app.client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let body = res.text().await.unwrap();
        assert!(body.starts_with("ready; the directory is empty"), "{url}: {body}");
        for words in ["escalations directory import FILE", "escalations seed-demo"] {
            assert!(body.contains(words), "{url}: {body}");
        }
    }
    // A token can name no partnership yet.
    let token = format!("Bearer {}", app.token(Role::Manager, Some("wb-police"), "western-bay"));
    let reply = post(&app, Some(&token), PARTNERSHIPS_QUERY, json!({})).await;
    assert_unauthenticated("a token", &reply, &AuthError::UnknownPartnership);

    // Loaded while the server runs, the directory is no longer spoken of.
    escalations::service::demo::seed_directory(
        &app.db,
        &escalations::domain::catalog::Catalog::builtin().unwrap(),
    )
    .await
    .unwrap();
    for url in [app.url("/readyz"), admin] {
        let res = app.client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert_eq!(res.text().await.unwrap(), "ready", "{url}");
    }
}

mod an_empty_directory_is_ready_and_says_so {
    use crate::helpers::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::an_empty_directory_is_ready_and_says_so(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::an_empty_directory_is_ready_and_says_so(Backend::Postgres).await;
    }
}

#[tokio::test]
async fn serve_on_an_empty_directory_warns_at_start_how_to_load_one() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = serve(
        &dir,
        port,
        &[
            ("JWT_SECRET", TEST_SECRET),
            ("JWT_ISSUER", TEST_ISSUER),
            ("JWT_AUDIENCE", TEST_AUDIENCE),
        ],
    );
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let mut body = None;
    for _ in 0..200 {
        if let Ok(res) = client.get(&url).send().await {
            body = Some(res.text().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let body = body.unwrap_or_else(|| panic!("the server did not answer: {stderr}"));
    assert!(body.starts_with("ready; the directory is empty"), "{body}");
    assert!(out.status.success(), "{stderr}");
    let warning = stderr.lines().find(|l| l.contains("the directory is empty"));
    let warning = warning.unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("escalations directory import FILE"), "{warning}");
    // Outside demo mode it offers no GraphiQL.
    assert!(stdout.contains("escalations is listening on"), "{stdout}");
    assert!(!stdout.contains("GraphiQL"), "{stdout}");
}

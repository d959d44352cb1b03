//! Hostile and bad input, and observability: limits on documents, bodies,
//! media types, time, origins and rates; production mode; panics and
//! internal errors; `/metrics`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use escalations::auth::MintClaims;
use escalations::config::{RateLimit, ServeArgs};
use escalations::domain::role::Role;
use escalations::http::AppState;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::db_test;
use crate::helpers::{Backend, TestDb, global_args, mint, serve_args, spawn_app};

const SPEC: &str = "application/graphql-response+json";

/// A server started with other `serve` settings (and optionally extra
/// routes behind the same layers), on a fresh SQLite database.
struct Server {
    addr: SocketAddr,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _db: TestDb,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Server {
    async fn start(args: ServeArgs) -> Server {
        Self::start_with_routes(args, Router::new()).await
    }

    async fn start_with_routes(args: ServeArgs, extra: Router<AppState>) -> Server {
        let test_db = TestDb::create(Backend::Sqlite).await.unwrap();
        let settings =
            escalations::db::DbSettings { url: test_db.url().to_owned(), max_connections: Some(4) };
        let db = escalations::db::connect(&settings).await.unwrap();
        escalations::db::migrate(&db).await.unwrap();
        escalations::service::demo::seed_directory(
            &db,
            &escalations::domain::catalog::Catalog::builtin().unwrap(),
        )
        .await
        .unwrap();
        let state = escalations::app::prepare(db, &global_args(), &args).await.unwrap();
        // The server's own accept loop, with the extra routes.
        let connections = state.metrics.connections.clone();
        let router = escalations::http::router_with(state, extra);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = escalations::listener::Settings::from(&args.http);
        tokio::spawn(escalations::listener::serve(
            listener,
            router,
            settings,
            connections,
            async {
                let _ = stopped.await;
            },
        ));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Server { addr, client, stop: Some(stop), _db: test_db }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, token: Option<&str>, query: &str) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/graphql"))
            .header("accept", SPEC)
            .json(&json!({ "query": query }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }
}

/// Posts `query` anonymously under the spec media type to a default server.
async fn post_spec(addr: SocketAddr, client: &reqwest::Client, query: &str) -> reqwest::Response {
    client
        .post(format!("http://{addr}/graphql"))
        .header("accept", SPEC)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
}

/// The response is a 400 refusal before execution with `BAD_USER_INPUT`
/// and a message containing `needle`.
async fn assert_refused(res: reqwest::Response, needle: &str) {
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["data"].is_null(), "{body:#}");
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert!(err["message"].as_str().unwrap().contains(needle), "{body:#}");
}

fn person_token(sub: &str) -> String {
    mint(MintClaims {
        sub: sub.into(),
        role: Some(Role::Practitioner),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..MintClaims::default()
    })
}

#[tokio::test]
async fn the_token_count_is_limited_and_ignores_commas_and_comments() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    // 1 + 1,000 + 1 tokens: one too many.
    let long = format!("{{ {} }}", "__typename ".repeat(1000));
    assert_refused(post_spec(app.addr, &app.client, &long).await, "more than 1000 tokens").await;
    // Commas, whitespace and comments are not tokens.
    let padded =
        format!("# {}\n{{ {} partnerships {{ code }} }}", "x ".repeat(2000), ",".repeat(5000));
    let res = post_spec(app.addr, &app.client, &padded).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["partnerships"].as_array().unwrap().len(), 5, "{body:#}");
}

#[tokio::test]
async fn brackets_nested_past_the_parser_s_bound_are_refused_before_parsing() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let deep = format!("{}{}", "{ a ".repeat(200), "}".repeat(200));
    assert_refused(post_spec(app.addr, &app.client, &deep).await, "nested too deep").await;
}

#[tokio::test]
async fn aliases_are_limited_to_fifteen() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let aliases = |n: usize| {
        format!(
            "{{ {} }}",
            (0..n).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" ")
        )
    };
    let res = post_spec(app.addr, &app.client, &aliases(15)).await;
    assert_eq!(res.status(), 200);
    assert_refused(post_spec(app.addr, &app.client, &aliases(16)).await, "16 aliases").await;
    // Aliases in fragments count too.
    let q = format!(
        "{{ ...F }} fragment F on Query {{ {} }}",
        (0..16).map(|i| format!("b{i}: __typename")).collect::<Vec<_>>().join(" ")
    );
    assert_refused(post_spec(app.addr, &app.client, &q).await, "aliases").await;
}

#[tokio::test]
async fn directives_per_field_are_limited() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let res = post_spec(
        app.addr,
        &app.client,
        "{ partnerships @include(if: true) @skip(if: false) { code } }",
    )
    .await;
    assert_eq!(res.status(), 200);
    let six = format!("{{ __typename {} }}", "@skip(if: false) ".repeat(6));
    assert_refused(post_spec(app.addr, &app.client, &six).await, "directives").await;
}

#[tokio::test]
async fn depth_and_complexity_refusals_carry_the_code() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let deep = "{ partnerships { agencies { partnership { agencies { partnership { agencies { partnership { agencies { partnership { agencies { partnership { code } } } } } } } } } } } }";
    assert_refused(post_spec(app.addr, &app.client, deep).await, "too deep").await;

    let mut args = serve_args();
    args.graphql.max_cost = 3;
    let server = Server::start(args).await;
    assert_refused(server.post(None, "{ partnerships { id code name } }").await, "costs").await;
    assert_eq!(server.post(None, "{ partnerships { code } }").await.status(), 200);
}

#[tokio::test]
async fn a_batch_is_refused_with_a_clear_400() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("accept", SPEC)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("batched"), "{body:#}");

    // A body that is JSON but not a GraphQL request is a 400 too.
    let res =
        app.client.post(app.url("/graphql")).json(&json!({ "nothing": 1 })).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let big = json!({ "query": "{ __typename }", "variables": { "x": "a".repeat(70 * 1024) } });
    let res = app.client.post(app.url("/graphql")).json(&big).send().await.unwrap();
    assert_eq!(res.status(), 413);
    // Just under the limit is fine.
    let ok = json!({ "query": "{ __typename }", "variables": { "x": "a".repeat(60 * 1024) } });
    let res = app.client.post(app.url("/graphql")).json(&ok).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // A chunked body (no Content-Length) is cut off at the limit as well.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let chunk = "a".repeat(70 * 1024);
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
}

#[tokio::test]
async fn a_request_whose_body_stalls_times_out_with_408() {
    let mut args = serve_args();
    args.http.request_timeout = Duration::from_millis(300);
    let server = Server::start(args).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut response = vec![0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut response))
        .await
        .expect("the server answers a stalled request")
        .unwrap();
    let response = String::from_utf8_lossy(&response[..n]);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A prompt request is served.
    assert_eq!(server.post(None, "{ __typename }").await.status(), 200);
}

#[tokio::test]
async fn post_bodies_are_accepted_only_as_json() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let body = r#"{"query":"{ __typename }"}"#;
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/graphql"),
        None,
    ] {
        let mut req = app.client.post(app.url("/graphql")).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 415, "{content_type:?}");
    }
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn mutations_are_refused_over_get() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let res = app.get("/graphql?query=mutation%20M%20%7B%20__typename%20%7D&operationName=M").await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");
}

async fn preflight(client: &reqwest::Client, addr: SocketAddr, origin: &str) -> reqwest::Response {
    client
        .request(reqwest::Method::OPTIONS, format!("http://{addr}/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_admits_only_the_configured_origins() {
    // None by default.
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let res = preflight(&app.client, app.addr, "https://portal.example.org").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());

    let mut args = serve_args();
    args.http.cors_allowed_origins = vec!["https://portal.example.org".into()];
    let server = Server::start(args).await;
    let res = preflight(&server.client, server.addr, "https://portal.example.org").await;
    assert!(res.status().is_success());
    assert_eq!(res.headers()["access-control-allow-origin"], "https://portal.example.org");
    let methods = res.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = res.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");

    let res = preflight(&server.client, server.addr, "https://evil.example").await;
    assert!(res.headers().get("access-control-allow-origin").is_none());

    // An actual request from the allowed origin gets the header too.
    let res = server
        .client
        .post(server.url("/graphql"))
        .header("origin", "https://portal.example.org")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "https://portal.example.org");
}

#[tokio::test]
async fn a_malformed_cors_origin_stops_the_start() {
    let test_db = TestDb::create(Backend::Sqlite).await.unwrap();
    let settings =
        escalations::db::DbSettings { url: test_db.url().to_owned(), max_connections: Some(2) };
    let db = escalations::db::connect(&settings).await.unwrap();
    let mut args = serve_args();
    args.http.cors_allowed_origins = vec!["portal.example.org".into()];
    let err = escalations::app::prepare(db, &global_args(), &args).await.err().unwrap();
    assert!(format!("{err:#}").contains("CORS"), "{err:#}");
}

#[tokio::test]
async fn production_mode_turns_off_introspection_suggestions_and_graphiql() {
    // Outside production, with GraphiQL turned on, all three answer.
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, crate::helpers::with_graphiql())
        .await
        .unwrap();
    let data = app.gql_ok("{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    let token = person_token("suggest-me");
    let err = app.gql_as_err(&token, "{ partnership { code } }", json!({})).await;
    assert!(err["message"].as_str().unwrap().contains("Did you mean"), "{err:#}");
    let res = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let res = app.client.get(app.url("/graphiql/start.js")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    let mut args = serve_args();
    args.graphql.production = true;
    let server = Server::start(args).await;
    // async-graphql answers introspection fields with null when it is off.
    let res = server
        .post(None, "{ __schema { queryType { name } } __type(name: \"Query\") { name } }")
        .await;
    let body: Value = res.json().await.unwrap();
    assert!(body["data"]["__schema"].is_null(), "{body:#}");
    assert!(body["data"]["__type"].is_null(), "{body:#}");
    assert!(!body.to_string().contains("queryType\":{"), "{body:#}");

    let res = server.post(Some(&token), "{ partnership { code } }").await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("partnership") && !message.contains("Did you mean"), "{message}");

    let res = server.client.get(server.url("/graphql")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    // So are the page's files.
    for file in ["start.js", "graphiql-4.1.2.min.js", "graphiql-4.1.2.min.css"] {
        let res = server.client.get(server.url(&format!("/graphiql/{file}"))).send().await.unwrap();
        assert_eq!(res.status(), 404, "{file}");
    }
    // Queries over GET still run.
    let res = server
        .client
        .get(server.url("/graphql?query=%7B%20partnerships%20%7B%20code%20%7D%20%7D"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["partnerships"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn production_and_demo_exclude_each_other() {
    let test_db = TestDb::create(Backend::Sqlite).await.unwrap();
    let settings =
        escalations::db::DbSettings { url: test_db.url().to_owned(), max_connections: Some(2) };
    let db = escalations::db::connect(&settings).await.unwrap();
    let mut global = global_args();
    global.demo = true;
    let mut args = serve_args();
    args.graphql.production = true;
    let err = escalations::app::prepare(db, &global, &args).await.err().unwrap();
    assert!(format!("{err:#}").contains("--production"), "{err:#}");
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    async fn boom() -> &'static str {
        panic!("secret detail of the panic")
    }
    let extra: Router<AppState> = Router::new().route("/panic", get(boom));
    let server = Server::start_with_routes(serve_args(), extra).await;
    for _ in 0..2 {
        let res = server.client.get(server.url("/panic")).send().await.unwrap();
        assert_eq!(res.status(), 500);
        assert!(res.headers().contains_key("x-request-id"));
        let text = res.text().await.unwrap();
        assert!(!text.contains("secret"), "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR");
        assert_eq!(body["errors"][0]["message"], "internal error");
    }
    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(server.post(None, "{ __typename }").await.status(), 200);
}

db_test!(a_database_error_carries_the_request_id_and_nothing_of_the_database, |app| {
    app.db.execute_unprepared("ALTER TABLE partnership RENAME TO partnership_moved").await.unwrap();
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "trace-internal-7")
        .json(&json!({ "query": "{ partnerships { code } }" }))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(!text.to_lowercase().contains("partnership_moved"), "{text}");
    assert!(!text.to_lowercase().contains("select"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "INTERNAL_SERVER_ERROR", "{body:#}");
    assert_eq!(err["message"], "internal error");
    assert_eq!(err["extensions"]["requestId"], "trace-internal-7", "{body:#}");

    // With a token the directory lookup fails first: a 500 with the id too.
    let token = person_token("someone");
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("x-request-id", "trace-internal-8")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["requestId"], "trace-internal-8", "{body:#}");
});

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_client() {
    let mut args = serve_args();
    args.rate_limits.rate_limit_people = RateLimit::new(1, 2);
    args.rate_limits.rate_limit_anonymous = RateLimit::new(1, 1);
    let server = Server::start(args).await;
    let alice = person_token("alice");
    let bob = person_token("bob");
    // Every answer says the policy (a burst of 2, refilled in 2 s) and
    // what is left (the IETF draft's RateLimit headers).
    let header = |res: &reqwest::Response, name: &str| {
        res.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
    };
    for left in [1, 0] {
        let res = server.post(Some(&alice), "{ __typename }").await;
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "ratelimit-policy").as_deref(), Some("\"requests\";q=2;w=2"));
        let now = header(&res, "ratelimit").unwrap();
        assert!(now.starts_with(&format!("\"requests\";r={left};t=")), "{now}");
    }
    let res = server.post(Some(&alice), "{ __typename }").await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    let now = header(&res, "ratelimit").unwrap();
    assert!(now.starts_with("\"requests\";r=0;t="), "{now}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED", "{body:#}");
    // Another person has an allowance of their own.
    assert_eq!(server.post(Some(&bob), "{ __typename }").await.status(), 200);
    // Machine clients have theirs (a separate setting, untouched here).
    let client = mint(MintClaims {
        sub: "alice".into(),
        scope: Some("statistics:read".into()),
        partnership: "western-bay".into(),
        ..MintClaims::default()
    });
    for _ in 0..5 {
        assert_eq!(server.post(Some(&client), "{ __typename }").await.status(), 200);
    }
    // Anonymous callers are counted by address.
    assert_eq!(server.post(None, "{ __typename }").await.status(), 200);
    assert_eq!(server.post(None, "{ __typename }").await.status(), 429);
    // The allowance comes back with time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(server.post(Some(&alice), "{ __typename }").await.status(), 200);
}

#[test]
fn rate_limit_settings_parse() {
    assert_eq!("50:100".parse::<RateLimit>().unwrap(), RateLimit::new(50, 100));
    assert_eq!("7".parse::<RateLimit>().unwrap(), RateLimit::new(7, 7));
    assert_eq!("off".parse::<RateLimit>().unwrap(), RateLimit::new(0, 0));
    assert!("0:5".parse::<RateLimit>().is_err());
    assert!("fast".parse::<RateLimit>().is_err());
}

/// Parses the text format: `name{labels} value` lines keyed by
/// `name{labels}`; every non-comment line must have that shape.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let kind = rest.split(' ').nth(1).unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "{line}");
            let labels = &series[name_end + 1..series.len() - 1];
            for label in labels.split("\",").filter(|l| !l.is_empty()) {
                let (k, v) = label.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                assert!(!v.trim_end_matches('"').contains('"'), "{line}");
            }
        }
        out.insert(series.to_owned(), value);
    }
    out
}

db_test!(metrics_count_requests_errors_latency_pool_and_statements, |app| {
    let before = parse_metrics(&app.metrics().await);
    let statements_before = before["escalations_db_statements_total"];

    for _ in 0..2 {
        let res = app
            .client
            .post(app.url("/graphql"))
            .json(&json!({ "query": "query Directory { partnerships { code } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    app.gql_err("query Broken { partnerships { nope } }", json!({})).await;
    let res = app.client.post(app.url("/graphql")).body("x").send().await.unwrap();
    assert_eq!(res.status(), 415);

    let res = app.metrics_response().await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4")
    );
    let m = parse_metrics(&res.text().await.unwrap());
    // Callers without a token, and refused requests, do not name the
    // series: anybody could otherwise fill the label set.
    assert_eq!(
        m[r#"escalations_graphql_requests_total{operation="(anonymous)",outcome="ok"}"#],
        2.0
    );
    assert_eq!(
        m[r#"escalations_graphql_requests_total{operation="(refused)",outcome="error"}"#],
        1.0
    );
    assert!(!m.keys().any(|k| k.contains("Directory") || k.contains("Broken")), "{m:#?}");
    assert!(m[r#"escalations_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"}"#] >= 1.0);
    assert!(m["escalations_graphql_request_duration_seconds_count"] >= 3.0);
    assert_eq!(
        m[r#"escalations_graphql_request_duration_seconds_bucket{le="+Inf"}"#],
        m["escalations_graphql_request_duration_seconds_count"]
    );
    assert!(m["escalations_graphql_request_duration_seconds_sum"] > 0.0);
    assert!(m[r#"escalations_http_responses_total{status="200"}"#] >= 3.0);
    assert_eq!(m[r#"escalations_http_responses_total{status="415"}"#], 1.0);
    assert!(m["escalations_db_pool_connections"] >= 1.0);
    assert!(m["escalations_db_pool_idle_connections"] <= m["escalations_db_pool_connections"]);
    assert_eq!(m["escalations_db_pool_max_connections"], 4.0);
    // The counter is per process (other tests run in it too): it moved.
    assert!(m["escalations_db_statements_total"] >= statements_before + 2.0);
});

/// GraphiQL's (and graphql-core's) standard introspection query nests
/// `ofType` deeper than the depth limit; it still answers, while an
/// ordinary query just as deep is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_introspection_query_passes_the_depth_limit() {
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    let query = r#"
      query IntrospectionQuery { __schema { queryType { name } mutationType { name }
        types { ...FullType } directives { name args { ...InputValue } } } }
      fragment FullType on __Type { kind name description
        fields(includeDeprecated: true) { name args { ...InputValue } type { ...TypeRef } }
        inputFields { ...InputValue } interfaces { ...TypeRef }
        enumValues(includeDeprecated: true) { name } possibleTypes { ...TypeRef } }
      fragment InputValue on __InputValue { name type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType {
        kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
    "#;
    let body = app.gql(query, serde_json::json!({})).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert!(body["data"]["__schema"]["types"].as_array().unwrap().len() > 20);
}

/// Times `query` (anonymous, spec media type) against `app` while another
/// task asks `/healthz` again and again; returns the refusal's body, how
/// long it took, and the slowest `/healthz` meanwhile.
async fn refused_while_healthy(app: &crate::helpers::TestApp, query: &str) -> (Value, Duration) {
    let health = {
        let client = app.client.clone();
        let url = app.url("/healthz");
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for _ in 0..20 {
                let started = std::time::Instant::now();
                let res = client.get(&url).send().await.unwrap();
                assert_eq!(res.status(), 200);
                slowest = slowest.max(started.elapsed());
            }
            slowest
        })
    };
    let started = std::time::Instant::now();
    let res = post_spec(app.addr, &app.client, query).await;
    let took = started.elapsed();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    let slowest = health.await.unwrap();
    assert!(slowest < Duration::from_millis(500), "/healthz took {slowest:?}");
    assert!(took < Duration::from_millis(100), "refused in {took:?}");
    (body, took)
}

/// A fragment that spreads itself four times is 60 bytes of text and was
/// unbounded work before the depth check remembered what it had visited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragment_bomb_is_refused_at_once_as_a_cycle() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let bomb = "query{...A} fragment A on Query{...A ...A ...A ...A}";
    let (body, _) = refused_while_healthy(&app, bomb).await;
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["limit"], "fragmentCycles", "{body:#}");
    assert!(err["message"].as_str().unwrap().contains("A → A"), "{body:#}");
    // A longer cycle is named too.
    let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { partnerships { ...C } } fragment C on Partnership { code ...A }";
    let res = post_spec(app.addr, &app.client, cycle).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["limit"], "fragmentCycles", "{body:#}");
}

/// A cycle-free chain of fragments that each spread the next three times
/// stays within the token limit and writes out to 3^40 selections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_fragments_is_measured_once_per_fragment() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let mut chain = String::from("query { ...F0 }");
    for i in 0..40 {
        let next = i + 1;
        chain.push_str(&format!(" fragment F{i} on Query {{ ...F{next} ...F{next} ...F{next} }}"));
    }
    chain.push_str(" fragment F40 on Query { __typename }");
    let (body, _) = refused_while_healthy(&app, &chain).await;
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["limit"], "cost", "{body:#}");
    assert_eq!(ext["max"], 5000, "{body:#}");
    assert!(ext["value"].as_u64().unwrap() > 5000, "{body:#}");
    // A chain that writes out small is answered.
    let small = "{ ...A } fragment A on Query { ...B ...B } fragment B on Query { __typename }";
    let res = post_spec(app.addr, &app.client, small).await;
    assert_eq!(res.status(), 200);
}

const EXPENSIVE_CASE: &str = "summary childReference records(first: 100) { nodes { facts opinions } } views { view } actions { description }";

db_test!(the_alias_multiplication_is_refused_by_cost_before_it_runs, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    // 15 aliases (the alias limit), each a page of 100 cases with their
    // free text and 100 records each, through a fragment.
    let aliases: String =
        (0..15).map(|i| format!("c{i}: cases(first: 100) {{ ...Page }} ")).collect();
    let query = format!(
        "{{ {aliases} }} fragment Page on CaseConnection {{ nodes {{ {EXPENSIVE_CASE} }} }}"
    );
    let before = escalations::db::statements_executed();
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("accept", SPEC)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let err = &body["errors"][0];
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(err["extensions"]["limit"], "cost", "{body:#}");
    assert_eq!(err["extensions"]["max"], 5000, "{body:#}");
    // 15 × (1 + 100 × (nodes 1 + summary 10 + childReference 1 + records
    // (1 + 100 × (nodes 1 + 10 + 10)) + views (1 + 50 × 10) + actions (1 + 50 × 10))),
    // 50 being the most views and actions a case keeps.
    assert_eq!(
        err["extensions"]["value"],
        15 * (1 + 100 * (1 + 10 + 1 + 2101 + 501 + 501)),
        "{body:#}"
    );
    assert!(err["message"].as_str().unwrap().contains("costs"), "{body:#}");
    // Nothing ran: no statement for cases (authentication's directory
    // look-up is cached after the first request, so allow it).
    assert!(escalations::db::statements_executed() - before <= 2, "statements ran");

    // A page of 50 cases with both agencies and the current stage costs
    // well under the limit.
    let page = "{ cases(first: 50) { totalCount nodes { id status stage dueOn raisingAgency { code name } receivingAgency { code name } currentStage { key name number } } } }";
    let data = app.gql_as_ok(&token, page, json!({})).await;
    assert!(data["cases"]["totalCount"].is_number());
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_its_size_limit_is_replaced_by_an_error() {
    let mut args = serve_args();
    args.graphql.max_response_bytes = 300;
    let server = Server::start(args).await;
    let res = server.post(None, "{ partnerships { id code name } }").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["data"].is_null(), "{body:#}");
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["code"], "RESPONSE_TOO_LARGE", "{body:#}");
    assert_eq!(ext["max"], 300, "{body:#}");
    let res = server.post(None, "{ __typename }").await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["__typename"], "Query", "{body:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_before_execution_has_a_deadline() {
    let mut args = serve_args();
    args.graphql.prepare_timeout = Duration::ZERO;
    let server = Server::start(args).await;
    let res = server.post(None, "{ __typename }").await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let ext = &body["errors"][0]["extensions"];
    assert_eq!((&ext["code"], &ext["limit"]), (&json!("BAD_USER_INPUT"), &json!("prepareTimeout")));
}

db_test!(nul_characters_are_refused_in_every_text_input_and_nothing_is_stored, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let raise = "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id } } }";
    let input = |summary: &str, child: &str, key: Option<&str>| {
        let mut i = json!({ "receivingAgencyId": receiving, "childReference": child, "category": "referral-response", "summary": summary });
        if let Some(k) = key {
            i["idempotencyKey"] = json!(k);
        }
        json!({ "input": i })
    };
    for (vars, what) in [
        (input("Referral\u{0}closed.", "SWP-1", None), "summary"),
        (input("Referral closed.", "SWP-\u{0}1", None), "childReference"),
        (input("Referral closed.", "SWP-1", Some("key-\u{0}")), "idempotencyKey"),
    ] {
        let res = app.gql_as_raw(&token, raise, vars).await;
        let body: Value = res.json().await.unwrap();
        let err = &body["errors"][0];
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{what}: {body:#}");
        assert_eq!(err["extensions"]["field"], "input", "{what}: {body:#}");
        assert!(err["message"].as_str().unwrap().contains("U+0000"), "{what}: {body:#}");
    }
    // Written into the query text as an escape, too.
    let literal = format!(
        r#"mutation {{ raiseCase(input: {{ receivingAgencyId: "{receiving}", childReference: "SWP-1", category: "referral-response", summary: "a\u0000b" }}) {{ case {{ id }} }} }}"#
    );
    let body = app.gql_as(&token, &literal, json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "input", "{body:#}");
    let data = app.gql_as_ok(&token, "{ cases { totalCount } }", json!({})).await;
    assert_eq!(data["cases"]["totalCount"], 0, "nothing was stored");
});

db_test!(the_operation_names_of_token_holders_are_counted, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    app.gql_as_ok(&token, "query MyCases { cases { totalCount } }", json!({})).await;
    // Refused before it ran: not named, whoever sends it.
    let res = app.gql_as_raw(&token, "query Junk123 { nope }", json!({})).await;
    assert_eq!(res.status(), 200);
    let text = app.metrics().await;
    assert!(text.contains(r#"operation="MyCases",outcome="ok""#), "{text}");
    assert!(!text.contains("Junk123"), "{text}");
});

/// Each client has an allowance of cost per second: expensive requests are
/// held back long before cheap ones, and one client's spending does not
/// touch another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_spends_its_own_allowance_of_cost() {
    let mut args = serve_args();
    args.graphql.max_cost = 100;
    args.rate_limits.rate_limit_cost = RateLimit::new(1, 100);
    let server = Server::start(args).await;
    let (alice, bob) = (person_token("alice"), person_token("bob"));
    // `{ cases(first: 30) { nodes { id stage } } }` costs 1 + 30 × 3 = 91.
    let page = "{ cases(first: 30) { nodes { id stage } } }";
    let res = server.post(Some(&alice), page).await;
    assert_eq!(res.status(), 200);
    let res = server.post(Some(&alice), page).await;
    assert_eq!(res.status(), 429);
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=91).contains(&wait), "{wait}");
    let body: Value = res.json().await.unwrap();
    let ext = &body["errors"][0]["extensions"];
    assert_eq!(ext["code"], "RATE_LIMITED", "{body:#}");
    assert_eq!(ext["cost"], 91, "{body:#}");
    assert_eq!(ext["retryAfter"], wait, "{body:#}");
    assert!(body["data"].is_null(), "nothing ran: {body:#}");
    // Another client is not touched; a cheap request of the first still
    // fits what is left.
    assert_eq!(server.post(Some(&bob), page).await.status(), 200);
    assert_eq!(
        server.post(Some(&alice), "{ cases(first: 1) { nodes { id } } }").await.status(),
        200
    );
}

#[tokio::test]
async fn a_cost_allowance_smaller_than_the_cost_limit_is_refused_at_start() {
    let test_db = TestDb::create(Backend::Sqlite).await.unwrap();
    let settings =
        escalations::db::DbSettings { url: test_db.url().to_owned(), max_connections: Some(2) };
    let db = escalations::db::connect(&settings).await.unwrap();
    let mut args = serve_args();
    args.rate_limits.rate_limit_cost = RateLimit::new(10, 100);
    let err = escalations::app::prepare(db, &global_args(), &args).await.err().unwrap();
    assert!(format!("{err:#}").contains("RATE_LIMIT_COST"), "{err:#}");
}

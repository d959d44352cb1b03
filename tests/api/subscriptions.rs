//! Live subscriptions over WebSocket (`graphql-transport-ws`): the events
//! of `caseEvents`, scoped like the feed, in order, across processes, with
//! `after` giving no gap and no duplicate between replay and live; the
//! protocol's close codes for tokens, the limits, and `/metrics`.

use std::time::Duration;

use escalations::auth::MintClaims;
use escalations::domain::role::Role;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{Backend, TestApp, TestDb, serve_args};
use crate::{db_test, db_test_with};

const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id version } } }";
const ADD_RECORD: &str =
    "mutation($input: AddRecordInput!) { addRecord(input: $input) { record { id } } }";
const SUBSCRIBE: &str = "subscription($after: String, $filter: CaseEventFilter) { caseEvents(after: $after, filter: $filter) { cursor node { id type caseId version } } }";
const FEED: &str = "query($after: String) { caseEvents(after: $after, first: 100) { pageInfo { hasNextPage endCursor } edges { cursor node { id type caseId version } } } }";

/// A WebSocket client speaking `graphql-transport-ws`.
pub(crate) struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server sent: a text message as JSON, or a close frame.
#[derive(Debug)]
pub(crate) enum Got {
    Json(Value),
    Closed(u16, String),
    /// Nothing within the wait.
    Nothing,
}

impl Ws {
    /// Opens a socket to `url` (`ws://…/graphql`), with an `Authorization`
    /// header when `token` is given.
    pub(crate) async fn open(url: &str, token: Option<&str>) -> Ws {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
        if let Some(t) = token {
            req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (socket, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            resp.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap()),
            Some("graphql-transport-ws")
        );
        Ws { socket }
    }

    /// Opens a socket and initialises it with `token` in the payload;
    /// panics unless acknowledged.
    pub(crate) async fn connect(url: &str, token: &str) -> Ws {
        let mut ws = Ws::open(url, None).await;
        ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
        match ws.next(Duration::from_secs(10)).await {
            Got::Json(m) if m["type"] == "connection_ack" => ws,
            other => panic!("no ack: {other:?}"),
        }
    }

    pub(crate) async fn send(&mut self, message: Value) {
        self.socket.send(Message::text(message.to_string())).await.unwrap();
    }

    pub(crate) async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
    }

    /// Subscribes with a trusted document named by `hash` (no `query`).
    pub(crate) async fn subscribe_by_hash(&mut self, id: &str, hash: &str, variables: Value) {
        let extensions = crate::helpers::persisted_query(hash);
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "extensions": extensions, "variables": variables } })).await;
    }

    /// The next message (pings are answered by tungstenite).
    pub(crate) async fn next(&mut self, wait: Duration) -> Got {
        loop {
            let got = match tokio::time::timeout(wait, self.socket.next()).await {
                Err(_) => return Got::Nothing,
                Ok(got) => got,
            };
            match got {
                Some(Ok(Message::Text(t))) => return Got::Json(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(Some(f)))) => {
                    return Got::Closed(u16::from(f.code), f.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None => return Got::Closed(1005, String::new()),
                Some(Err(e)) => return Got::Closed(1006, e.to_string()),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next `next` message's payload of subscription `id`.
    /// (The ends of other subscriptions are passed over.)
    pub(crate) async fn event(&mut self, id: &str) -> Value {
        loop {
            match self.next(Duration::from_secs(15)).await {
                Got::Json(m) if m["type"] == "next" && m["id"] == id => {
                    assert!(m["payload"].get("errors").is_none(), "{m:#}");
                    return m["payload"]["data"]["caseEvents"].clone();
                }
                Got::Json(m) if m["type"] == "complete" && m["id"] != id => {}
                other => panic!("expected an event of {id}: {other:?}"),
            }
        }
    }

    /// Waits for the close frame.
    pub(crate) async fn closed(&mut self) -> (u16, String) {
        loop {
            match self.next(Duration::from_secs(15)).await {
                Got::Closed(code, reason) => return (code, reason),
                Got::Nothing => panic!("not closed"),
                Got::Json(_) => {}
            }
        }
    }
}

fn ws_url(app: &TestApp) -> String {
    format!("ws://{}/graphql", app.addr)
}

async fn raise(app: &TestApp, token: &str, receiving: &str, child: &str) -> String {
    let receiving = app.agency_id(receiving).await;
    let data = app
        .gql_as_ok(token, RAISE, json!({ "input": { "receivingAgencyId": receiving, "childReference": child, "category": "referral-response", "summary": "Disputed decision." } }))
        .await;
    data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned()
}

async fn add_record(app: &TestApp, token: &str, case: &str) {
    app.gql_as_ok(token, ADD_RECORD, json!({ "input": { "caseId": case, "kind": "DISCUSSION", "facts": "Phoned the duty team." } })).await;
}

db_test!(a_subscriber_receives_its_cases_events_in_order_as_they_commit, |app| {
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let mut ws = Ws::connect(&ws_url(&app), &police).await;
    ws.subscribe("1", SUBSCRIBE, json!({})).await;
    // Subscribed from now: nothing yet.
    assert!(matches!(ws.next(Duration::from_millis(300)).await, Got::Nothing));
    let id = raise(&app, &police, "wb-swansea-csc", "SUB-1").await;
    add_record(&app, &police, &id).await;
    add_record(&app, &police, &id).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = ws.event("1").await;
        assert_eq!(e["node"]["caseId"], id.as_str());
        seen.push((e["node"]["type"].as_str().unwrap().to_owned(), e["node"]["version"].clone()));
    }
    assert_eq!(
        seen,
        vec![
            ("CASE_RAISED".to_owned(), json!(1)),
            ("RECORD_ADDED".to_owned(), json!(2)),
            ("RECORD_ADDED".to_owned(), json!(3)),
        ]
    );
    // The live events are the feed's, cursors included.
    let feed = app.gql_as_ok(&police, FEED, json!({})).await;
    assert_eq!(feed["caseEvents"]["edges"][2]["node"]["version"], 3);
    // `complete` ends the subscription; the connection stays.
    ws.send(json!({ "id": "1", "type": "complete" })).await;
    add_record(&app, &police, &id).await;
    assert!(matches!(ws.next(Duration::from_millis(500)).await, Got::Nothing | Got::Json(_)));
});

db_test!(a_cases_read_client_of_another_agency_receives_nothing_of_these_cases, |app| {
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let own = app.client_token("cases:read", Some("wb-police"), "western-bay");
    let other = app.client_token("cases:read", Some("wb-health"), "western-bay");
    let elsewhere = app.client_token("cases:read", Some("ps-police"), "pan-sussex");
    let mut own_ws = Ws::connect(&ws_url(&app), &own).await;
    let mut other_ws = Ws::connect(&ws_url(&app), &other).await;
    let mut elsewhere_ws = Ws::connect(&ws_url(&app), &elsewhere).await;
    for ws in [&mut own_ws, &mut other_ws, &mut elsewhere_ws] {
        ws.subscribe("s", SUBSCRIBE, json!({})).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Police and Swansea's cases: the police's client sees them.
    let id = raise(&app, &police, "wb-swansea-csc", "SUB-2").await;
    add_record(&app, &police, &id).await;
    for version in [1, 2] {
        let e = own_ws.event("s").await;
        assert_eq!((&e["node"]["caseId"], &e["node"]["version"]), (&json!(id), &json!(version)));
    }
    // Then a case the health client may see: the first thing it receives.
    let health_case = raise(&app, &police, "wb-health", "SUB-3").await;
    let e = other_ws.event("s").await;
    assert_eq!(e["node"]["caseId"], health_case.as_str(), "nothing of the police and CSC case");
    // Another partnership's client receives nothing at all.
    assert!(matches!(elsewhere_ws.next(Duration::from_millis(500)).await, Got::Nothing));
    // And the police client got the health case too, after the others.
    assert_eq!(own_ws.event("s").await["node"]["caseId"], health_case.as_str());
});

db_test!(after_replays_the_feed_then_goes_live_with_no_gap_and_no_duplicate, |app| {
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let id = raise(&app, &police, "wb-swansea-csc", "SUB-4").await;
    for _ in 0..4 {
        add_record(&app, &police, &id).await;
    }
    // A client reads the feed up to here (five events), keeps the cursor
    // of the second, and subscribes after it while changes keep coming.
    let feed = app.gql_as_ok(&police, FEED, json!({})).await;
    let cursor = feed["caseEvents"]["edges"][1]["cursor"].clone();
    let writer = {
        let (police, id, client, url) =
            (police.clone(), id.clone(), app.client.clone(), app.url("/graphql"));
        tokio::spawn(async move {
            for _ in 0..20 {
                let body: Value = client
                    .post(&url)
                    .bearer_auth(&police)
                    .json(&json!({ "query": ADD_RECORD, "variables": { "input": { "caseId": id, "kind": "DISCUSSION", "facts": "More." } } }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(body.get("errors").is_none(), "{body:#}");
            }
        })
    };
    let mut ws = Ws::connect(&ws_url(&app), &police).await;
    ws.subscribe("r", SUBSCRIBE, json!({ "after": cursor })).await;
    // Versions 3 to 25: three replayed, 20 written meanwhile (some of them
    // replayed, some live), each once, in order.
    let mut versions = Vec::new();
    let mut cursors = Vec::new();
    while versions.len() < 23 {
        let e = ws.event("r").await;
        versions.push(e["node"]["version"].as_i64().unwrap());
        cursors.push(e["cursor"].as_str().unwrap().to_owned());
    }
    writer.await.unwrap();
    assert_eq!(versions, (3..=25).collect::<Vec<_>>());
    assert!(matches!(ws.next(Duration::from_millis(500)).await, Got::Nothing), "no duplicate");
    // The same cursors as the feed's.
    let feed = app.gql_as_ok(&police, FEED, json!({ "after": cursor })).await;
    let polled: Vec<&str> = feed["caseEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cursor"].as_str().unwrap())
        .collect();
    assert_eq!(polled, cursors);
});

db_test!(a_subscription_sent_with_post_or_get_is_told_to_use_websocket, |app| {
    // It parses and validates; only the transport is wrong, which is the
    // caller's mistake (no internal error): a 400 under the GraphQL-over-HTTP
    // media type, like any request that cannot be executed.
    let token = app.client_token("cases:read", Some("wb-police"), "western-bay");
    let resp = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": SUBSCRIBE, "variables": { "after": null } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body:#}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body:#}");
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(errors[0]["extensions"]["limit"], "operationType", "{body:#}");
    assert!(errors[0]["message"].as_str().unwrap().contains("WebSocket"), "{body:#}");
    // With GET and application/json the same.
    let resp = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "subscription { caseEvents { cursor } }")])
        .bearer_auth(&token)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["limit"], "operationType", "{body:#}");
});

/// A token valid for `ttl`.
fn short_token(ttl: Duration) -> String {
    let verifier =
        escalations::auth::Verifier::from_args(&crate::helpers::global_args().auth, false).unwrap();
    verifier
        .mint(
            &MintClaims {
                sub: "short".into(),
                role: Some(Role::Practitioner),
                agency: Some("wb-police".into()),
                partnership: "western-bay".into(),
                ..MintClaims::default()
            },
            ttl,
        )
        .unwrap()
}

db_test!(a_missing_bad_or_expired_token_closes_the_socket_with_4401, |app| {
    let url = ws_url(&app);
    // No token at all.
    let mut ws = Ws::open(&url, None).await;
    ws.send(json!({ "type": "connection_init" })).await;
    assert_eq!(ws.closed().await.0, 4401);
    // A token that does not verify, in the payload or in the header.
    let mut ws = Ws::open(&url, None).await;
    ws.send(
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not.a.token" } }),
    )
    .await;
    assert_eq!(ws.closed().await.0, 4401);
    let mut ws = Ws::open(&url, Some("not.a.token")).await;
    assert_eq!(ws.closed().await.0, 4401);
    // A subscribe before the init.
    let mut ws = Ws::open(&url, None).await;
    ws.subscribe("x", SUBSCRIBE, json!({})).await;
    assert_eq!(ws.closed().await.0, 4401);
    // A good token in the header: the init needs no payload.
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let mut ws = Ws::open(&url, Some(&police)).await;
    ws.send(json!({ "type": "connection_init" })).await;
    assert!(
        matches!(ws.next(Duration::from_secs(5)).await, Got::Json(m) if m["type"] == "connection_ack")
    );
    // A token that expires: the connection ends then, with 4401.
    let started = std::time::Instant::now();
    let mut ws = Ws::connect(&url, &short_token(Duration::from_secs(2))).await;
    ws.subscribe("e", SUBSCRIBE, json!({})).await;
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4401, "{reason}");
    assert!(reason.contains("expired"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(6), "{:?}", started.elapsed());
});

fn limited() -> escalations::config::ServeArgs {
    let mut args = serve_args();
    args.http.subscriptions_per_connection = 2;
    args.http.subscription_connections_per_client = 2;
    args.http.subscription_init_timeout = Duration::from_millis(500);
    args
}

db_test_with!(subscriptions_are_held_to_the_limits_of_a_request, limited(), |app| {
    let url = ws_url(&app);
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let mut ws = Ws::connect(&url, &police).await;
    ws.subscribe("1", SUBSCRIBE, json!({})).await;
    ws.subscribe("2", SUBSCRIBE, json!({})).await;
    // A third on the connection is refused, the two others live on.
    ws.subscribe("3", SUBSCRIBE, json!({})).await;
    let refused = match ws.next(Duration::from_secs(5)).await {
        Got::Json(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(refused["id"], "3", "{refused:#}");
    let ext = &refused["payload"]["errors"][0]["extensions"];
    assert_eq!(
        (&ext["code"], &ext["limit"]),
        (&json!("BAD_USER_INPUT"), &json!("subscriptionsPerConnection"))
    );
    ws.send(json!({ "id": "2", "type": "complete" })).await;
    // Queries and mutations are not run over the socket.
    ws.subscribe("q", "{ partnerships { id } }", json!({})).await;
    let refused = loop {
        match ws.next(Duration::from_secs(5)).await {
            Got::Json(m) if m["id"] == "q" && m["type"] == "next" => break m,
            Got::Json(_) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["limit"], "operationType");
    // The document limits (here the token count) apply to a subscription.
    let long = format!("subscription {{ caseEvents {{ {} }} }}", "cursor ".repeat(1200));
    ws.subscribe("4", &long, json!({})).await;
    let refused = loop {
        match ws.next(Duration::from_secs(5)).await {
            Got::Json(m) if m["id"] == "4" && m["type"] == "next" => break m,
            Got::Json(_) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(refused["payload"]["errors"][0]["extensions"]["limit"], "tokens", "{refused:#}");
    // The live ones still deliver.
    let id = raise(&app, &police, "wb-swansea-csc", "SUB-5").await;
    assert_eq!(ws.event("1").await["node"]["caseId"], id.as_str());
    // Two connections per client; the third is closed with 4429.
    let _second = Ws::connect(&url, &police).await;
    let mut third = Ws::open(&url, None).await;
    third.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {police}") } })).await;
    assert_eq!(third.closed().await.0, 4429);
    // A socket that never initialises is closed with 4408.
    let mut silent = Ws::open(&url, None).await;
    assert_eq!(silent.closed().await.0, 4408);
});

fn cheap() -> escalations::config::ServeArgs {
    let mut args = serve_args();
    args.graphql.max_cost = 5;
    args
}

db_test_with!(the_cost_limit_applies_to_subscriptions, cheap(), |app| {
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let mut ws = Ws::connect(&ws_url(&app), &police).await;
    ws.subscribe(
        "c",
        "subscription { caseEvents { cursor node { id type caseId version at status } } }",
        json!({}),
    )
    .await;
    let refused = match ws.next(Duration::from_secs(5)).await {
        Got::Json(m) => m,
        other => panic!("{other:?}"),
    };
    let ext = &refused["payload"]["errors"][0]["extensions"];
    assert_eq!(
        (&ext["code"], &ext["limit"]),
        (&json!("BAD_USER_INPUT"), &json!("cost")),
        "{refused:#}"
    );
});

async fn metric(app: &TestApp, name: &str) -> i64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

db_test!(metrics_show_the_connected_subscribers, |app| {
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    assert_eq!(metric(&app, "escalations_subscriber_connections").await, 0);
    let mut ws = Ws::connect(&ws_url(&app), &police).await;
    ws.subscribe("m", SUBSCRIBE, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(metric(&app, "escalations_subscriber_connections").await, 1);
    assert_eq!(metric(&app, "escalations_subscriptions").await, 1);
    drop(ws);
    for _ in 0..50 {
        if metric(&app, "escalations_subscriber_connections").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&app, "escalations_subscriber_connections").await, 0);
    assert_eq!(metric(&app, "escalations_subscriptions").await, 0);
});

/// Two server processes on one PostgreSQL: a subscriber connected to one
/// receives, in order, the events of the changes made through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_process_receives_the_changes_made_through_the_other_in_order() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let a = crate::processes::start(db.url());
    let b = crate::processes::start(db.url());
    let police = crate::helpers::mint(MintClaims {
        sub: "subs-police".into(),
        role: Some(Role::Practitioner),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..Default::default()
    });
    let client = reqwest::Client::new();
    let post = |url: String, query: &'static str, vars: Value| {
        let (client, police) = (client.clone(), police.clone());
        async move {
            let body: Value = client
                .post(url)
                .bearer_auth(police)
                .json(&json!({ "query": query, "variables": vars }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(body.get("errors").is_none(), "{body:#}");
            body["data"].clone()
        }
    };
    let directory =
        post(b.url.clone(), "{ partnerships { agencies { id code } } }", json!({})).await;
    let receiving = directory["partnerships"][0]["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "wb-swansea-csc")
        .unwrap()["id"]
        .clone();
    let mut ws = Ws::connect(&a.url.replace("http://", "ws://"), &police).await;
    ws.subscribe("x", SUBSCRIBE, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut expected = Vec::new();
    for i in 0..5 {
        let raised = post(b.url.clone(), RAISE, json!({ "input": { "receivingAgencyId": receiving, "childReference": format!("X-{i}"), "category": "other", "summary": "s" } })).await;
        let id = raised["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
        post(
            b.url.clone(),
            ADD_RECORD,
            json!({ "input": { "caseId": id, "kind": "DISCUSSION", "facts": "f" } }),
        )
        .await;
        expected.push((id.clone(), 1));
        expected.push((id, 2));
    }
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let e = ws.event("x").await;
        seen.push((
            e["node"]["caseId"].as_str().unwrap().to_owned(),
            e["node"]["version"].as_i64().unwrap(),
        ));
    }
    assert_eq!(seen, expected);
}

/// The listening connection is cut: the hub listens again and reads the
/// gap from the log, so the subscriber misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_connection_is_re_established_and_the_gap_read_from_the_log() {
    let Some(app) = crate::helpers::spawn_app(Backend::Postgres).await else { return };
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let mut ws = Ws::connect(&ws_url(&app), &police).await;
    ws.subscribe("g", SUBSCRIBE, json!({})).await;
    let id = raise(&app, &police, "wb-swansea-csc", "SUB-6").await;
    assert_eq!(ws.event("g").await["node"]["version"], 1);
    assert_eq!(metric(&app, "escalations_event_listens_total").await, 1);
    use sea_orm::ConnectionTrait as _;
    let cut = app
        .db
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .await
        .unwrap();
    assert_eq!(cut.rows_affected(), 1, "one listening connection");
    // Changes made at once: some may commit before the hub listens again.
    for _ in 0..3 {
        add_record(&app, &police, &id).await;
    }
    for version in 2..=4 {
        assert_eq!(ws.event("g").await["node"]["version"], version);
    }
    assert_eq!(metric(&app, "escalations_event_listens_total").await, 2);
}

/// The `graphql-ws` client's modules (`npm ci` in `tests/graphql-ws`,
/// which `.ci/run` does); `None` (skip, with a message) when they are
/// missing outside CI, a failure under CI.
fn graphql_ws_client() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/graphql-ws");
    if dir.join("node_modules/graphql-ws").is_dir() && dir.join("node_modules/ws").is_dir() {
        return Some(dir);
    }
    let hint = format!("run `npm ci --prefix {}`", dir.display());
    assert!(
        std::env::var_os("CI").is_none(),
        "the graphql-ws client is missing and CI is set: {hint}"
    );
    eprintln!("SKIPPED the graphql-ws client test: its modules are missing ({hint})");
    None
}

db_test!(the_graphql_ws_client_receives_the_replay_then_the_live_events, |app| {
    let Some(dir) = graphql_ws_client() else { return };
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let id = raise(&app, &police, "wb-swansea-csc", "SUB-7").await;
    add_record(&app, &police, &id).await;
    let feed = app.gql_as_ok(&police, FEED, json!({})).await;
    let after = feed["caseEvents"]["edges"][0]["cursor"].as_str().unwrap().to_owned();
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("subscribe.mjs"))
        .current_dir(&dir)
        .env("URL", ws_url(&app))
        .env("TOKEN", &police)
        .env("AFTER", &after)
        .env("COUNT", "3")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(node.stdout.take().unwrap()));
    let mut next_line = async || {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
        let line = line.expect("the client said nothing").unwrap().expect("the client ended");
        serde_json::from_str::<Value>(&line).unwrap()
    };
    assert_eq!(next_line().await, json!({ "connected": true }));
    // The replayed event, then two made now.
    let first = next_line().await;
    assert_eq!(first["data"]["caseEvents"]["node"]["version"], 2, "{first:#}");
    add_record(&app, &police, &id).await;
    add_record(&app, &police, &id).await;
    for version in [3, 4] {
        let e = next_line().await;
        assert_eq!(e["data"]["caseEvents"]["node"]["version"], version, "{e:#}");
        assert_eq!(e["data"]["caseEvents"]["node"]["caseId"], id.as_str());
    }
    let status = tokio::time::timeout(Duration::from_secs(10), node.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
});

db_test!(the_graphql_ws_client_is_refused_without_a_valid_token, |app| {
    let Some(dir) = graphql_ws_client() else { return };
    let out = tokio::process::Command::new("node")
        .arg(dir.join("subscribe.mjs"))
        .current_dir(&dir)
        .env("URL", ws_url(&app))
        .env("TOKEN", "not.a.token")
        .env("COUNT", "1")
        .output()
        .await
        .expect("node");
    let text = String::from_utf8_lossy(&out.stdout);
    let last: Value = serde_json::from_str(text.lines().last().unwrap_or("null")).unwrap();
    assert_eq!(last["error"]["code"], 4401, "{text}");
    assert_eq!(out.status.code(), Some(2));
});

fn impatient() -> escalations::config::ServeArgs {
    let mut args = serve_args();
    args.http.subscription_send_timeout = Duration::from_millis(300);
    args
}

db_test_with!(a_subscriber_that_takes_no_messages_is_dropped, impatient(), |app| {
    use sea_orm::ActiveValue::{NotSet, Set};
    use sea_orm::EntityTrait as _;
    // Far more events than the sockets' buffers hold (about 10 MB of
    // messages), written behind the API.
    let wb = app.western_bay().await;
    let case = uuid::Uuid::now_v7();
    for chunk in 0..40 {
        let rows = (0..500).map(|i| entity::change_event::ActiveModel {
            seq: NotSet,
            id: Set(uuid::Uuid::now_v7()),
            kind: Set("RECORD_ADDED".into()),
            case_id: Set(case),
            partnership_id: Set(wb.partnership),
            raising_agency_id: Set(wb.police),
            receiving_agency_id: Set(wb.receivers[0]),
            stage_before: Set(Some("informal".into())),
            stage_after: Set("informal".into()),
            status: Set("open".into()),
            case_version: Set(chunk * 500 + i + 2),
            at: Set(chrono::Utc::now()),
            request_id: Set(Some("r".repeat(100))),
            ..Default::default()
        });
        entity::change_event::Entity::insert_many(rows)
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
    // A client that reads nothing, with a small receive buffer.
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let mut req = ws_url(&app).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    req.headers_mut().insert("authorization", format!("Bearer {police}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    let init = json!({ "type": "connection_init" }).to_string();
    socket.send(Message::text(init)).await.unwrap();
    let query = "subscription { caseEvents(after: \"e0\") { cursor node { id type caseId partnershipId raisingAgencyId receivingAgencyId stageBefore stageAfter status version at requestId } } }";
    let subscribe = json!({ "id": "s", "type": "subscribe", "payload": { "query": query } });
    socket.send(Message::text(subscribe.to_string())).await.unwrap();
    let mut dropped = 0;
    for _ in 0..100 {
        dropped = metric(&app, "escalations_subscribers_dropped_total").await;
        if dropped == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(dropped, 1, "the subscriber was not dropped");
    assert_eq!(metric(&app, "escalations_subscriber_connections").await, 0);
    assert_eq!(metric(&app, "escalations_subscriptions").await, 0);
    // What it finally reads ends well short of the 20,000 events.
    let mut received = 0;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
        if matches!(m, Message::Text(_)) {
            received += 1;
        }
    }
    assert!(received > 1 && received < 20_000, "{received}");
});

fn many_per_client() -> escalations::config::ServeArgs {
    let mut args = serve_args();
    args.http.subscription_connections_per_client = 60;
    args.rate_limits.rate_limit_people = escalations::config::RateLimit::new(0, 0);
    args
}

db_test_with!(subscribers_who_would_read_the_same_page_share_one_read, many_per_client(), |app| {
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let mut sockets = Vec::new();
    for _ in 0..50 {
        let mut ws = Ws::connect(&ws_url(&app), &police).await;
        ws.subscribe("s", SUBSCRIBE, json!({})).await;
        sockets.push(ws);
    }
    while metric(&app, "escalations_subscriptions").await < 50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = metric(&app, "escalations_db_statements_total").await;
    app.gql_as_ok(&police, RAISE, json!({ "input": { "receivingAgencyId": receiving, "childReference": "SUB-8", "category": "other", "summary": "s" } })).await;
    for ws in &mut sockets {
        assert_eq!(ws.event("s").await["node"]["version"], 1);
    }
    let statements = metric(&app, "escalations_db_statements_total").await - before;
    // The raise's own statements and a few reads of the feed, not fifty.
    assert!(statements < 40, "{statements} statements for one change and 50 subscribers");
});

fn two_connections() -> escalations::config::ServeArgs {
    let mut args = serve_args();
    args.http.max_connections = 2;
    args
}

db_test_with!(
    a_websocket_counts_against_the_connections_and_is_never_shed,
    two_connections(),
    |app| {
        let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
        let receiving = app.agency_id("wb-swansea-csc").await;
        let mut first = Ws::connect(&ws_url(&app), &police).await;
        let second = Ws::connect(&ws_url(&app), &police).await;
        first.subscribe("s", SUBSCRIBE, json!({})).await;
        // Both connections are sockets now, busy: a third connection is
        // refused rather than either being shed.
        let fresh = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        assert!(fresh.get(app.url("/healthz")).send().await.is_err(), "the cap admitted a third");
        drop(second);
        let mut ok = false;
        for _ in 0..50 {
            let fresh = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            if fresh.get(app.url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
                ok = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ok, "a closed socket gives its place back");
        // The first one was not shed: it still delivers. (One connection
        // is left for HTTP, and a closed one takes a moment to give it back.)
        let vars = json!({ "input": { "receivingAgencyId": receiving, "childReference": "SUB-9", "category": "other", "summary": "s" } });
        let mut raised = false;
        for _ in 0..50 {
            let fresh = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let sent = fresh
                .post(app.url("/graphql"))
                .bearer_auth(&police)
                .json(&json!({ "query": RAISE, "variables": vars }))
                .send()
                .await;
            if let Ok(resp) = sent {
                let body: Value = resp.json().await.unwrap();
                assert!(body.get("errors").is_none(), "{body:#}");
                raised = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(raised);
        assert_eq!(first.event("s").await["node"]["version"], 1);
    }
);

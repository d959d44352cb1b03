//! Trace context, OTLP export and JSON log lines, on the real binary (the
//! global subscriber is per process): spans reach a local OTLP/HTTP
//! receiver that decodes them with `opentelemetry-proto`, and log lines
//! are read from the process's standard error.

use std::io::BufRead as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::db_test;
use crate::helpers::{Backend, TestDb, mint};
use crate::processes;

/// A caller's trace and span, as its `traceparent` names them.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// A query that reads the database (the directory) and fails in one field
/// (a malformed id): data and an error.
const LOOKUP: &str = "query CaseLookup { partnerships { code } case(id: \"not-an-id\") { id } }";

/// Spans received, with the resource's `service.name` of each.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// An OTLP/HTTP receiver on 127.0.0.1: `POST /v1/traces` with protobuf.
async fn receiver() -> (String, Received) {
    async fn traces(State(received): State<Received>, body: Bytes) -> Vec<u8> {
        let request = ExportTraceServiceRequest::decode(body).unwrap();
        let mut received = received.lock().unwrap();
        for resource in request.resource_spans {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| string_attribute(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                received.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        ExportTraceServiceResponse::default().encode_to_vec()
    }
    let received = Received::default();
    let app = axum::Router::new().route("/v1/traces", post(traces)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), received)
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) => Some(s.clone()),
        _ => None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn token(sub: &str) -> String {
    mint(escalations::auth::MintClaims {
        sub: sub.into(),
        role: Some(escalations::domain::role::Role::Practitioner),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..Default::default()
    })
}

async fn lookup(url: &str, token: &str, traceparent: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": LOOKUP, "operationName": "CaseLookup" }));
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    request.send().await.unwrap()
}

/// The trace and span ids of a `traceresponse` header.
fn traceresponse(res: &reqwest::Response) -> (String, String, String) {
    let value = res.headers()["traceresponse"].to_str().unwrap().to_owned();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00", "{value}");
    (parts[1].to_owned(), parts[2].to_owned(), parts[3].to_owned())
}

async fn a_request_with_traceparent_is_exported_under_the_callers_span(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else { return };
    let (endpoint, received) = receiver().await;
    // Batched for a minute: what arrives, arrives at the graceful shutdown.
    // RUST_LOG=warn (the harness's): export does not hang on the log filter.
    let mut server = processes::start_with(
        db.url(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "escalations-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
    );
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    let res = lookup(&server.url, &token("otel-caller"), Some(&traceparent)).await;
    let (trace_id, span_id, flags) = traceresponse(&res);
    assert_eq!(trace_id, TRACE_ID);
    assert_ne!(span_id, PARENT_SPAN_ID, "the server's span is a child of the caller's");
    assert_eq!(flags, "01", "sampled, as the caller's was");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["partnerships"][0]["code"], "western-bay", "{body:#}");
    let error = &body["errors"][0]["extensions"];
    assert_eq!(error["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(error["traceId"], TRACE_ID, "{body:#}");
    // A request without one starts a trace of its own.
    let res = lookup(&server.url, &token("otel-caller"), None).await;
    let (other_trace, _, _) = traceresponse(&res);
    assert_ne!(other_trace, TRACE_ID);
    assert_eq!(other_trace.len(), 32);
    assert!(received.lock().unwrap().is_empty(), "nothing exported before the batch is due");

    assert!(server.terminate().success());
    let spans = received.lock().unwrap().clone();
    let request = spans
        .iter()
        .find(|(_, s)| s.name == "request" && hex(&s.trace_id) == TRACE_ID)
        .unwrap_or_else(|| panic!("no request span of the trace among {spans:#?}"));
    let (service, request) = request;
    assert_eq!(service, "escalations-under-test");
    assert_eq!(hex(&request.span_id), span_id, "the span traceresponse named");
    assert_eq!(hex(&request.parent_span_id), PARENT_SPAN_ID);
    assert_eq!(
        string_attribute(&request.attributes, "operation_name").as_deref(),
        Some("CaseLookup")
    );
    assert_eq!(
        string_attribute(&request.attributes, "error_code").as_deref(),
        Some("BAD_USER_INPUT")
    );
    let statements: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| hex(&s.trace_id) == TRACE_ID && s.parent_span_id == request.span_id)
        .filter(|s| s.name.starts_with("sea_orm."))
        .collect();
    assert!(!statements.is_empty(), "no statement under the request span among {spans:#?}");
    let system = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    for statement in &statements {
        assert_eq!(string_attribute(&statement.attributes, "db.system").as_deref(), Some(system));
    }
    assert!(
        statements.iter().any(|s| string_attribute(&s.attributes, "db.statement")
            .is_some_and(|sql| sql.to_ascii_lowercase().contains("partnership"))),
        "the directory's statement among {statements:#?}"
    );
    // The other request is a trace of its own, also exported.
    assert!(spans.iter().any(|(_, s)| s.name == "request" && hex(&s.trace_id) == other_trace));
}

mod otlp_export {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_request_with_traceparent_is_exported_under_the_callers_span(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_request_with_traceparent_is_exported_under_the_callers_span(Backend::Postgres).await;
    }
}

async fn json_lines_are_flat_and_name_the_client_by_a_hash(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else { return };
    const SUB: &str = "sub-5d1e-never-logged";
    const SALT: &str = "deployment-salt-for-tests";
    let mut server = processes::start_logged(
        db.url(),
        &[("LOG_FORMAT", "json"), ("RUST_LOG", "info"), ("LOG_CLIENT_SALT", SALT)],
    );
    let stderr = server.take_stderr().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stderr).lines().map(Result::unwrap).collect::<Vec<String>>()
    });
    let token = token(SUB);
    let client = reqwest::Client::new();
    let ok = client
        .post(&server.url)
        .bearer_auth(&token)
        .json(&json!({ "query": "query Directory { partnerships { code } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok_request_id = ok.headers()["x-request-id"].to_str().unwrap().to_owned();
    let (ok_trace, _, _) = traceresponse(&ok);
    let failing = lookup(&server.url, &token, None).await;
    let failing_request_id = failing.headers()["x-request-id"].to_str().unwrap().to_owned();
    let (failing_trace, _, _) = traceresponse(&failing);
    let body: Value = failing.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["traceId"], failing_trace.as_str());
    let refused = client
        .post(&server.url)
        .json(&json!({ "query": "query Anonymous { cases { totalCount } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let refused_request_id = refused.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(server.terminate().success());
    let lines = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap()
    })
    .await
    .unwrap();

    let whole = lines.join("\n");
    assert!(!whole.contains(&token), "the token is in the log");
    assert!(!whole.contains(SUB), "the raw sub is in the log");
    let lines: Vec<serde_json::Map<String, Value>> = lines
        .iter()
        .map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(map)) => map,
            _ => panic!("not a JSON object: {line}"),
        })
        .collect();
    for line in &lines {
        for (key, value) in line {
            assert!(!value.is_object() && !value.is_array(), "{key} is nested in {line:?}");
        }
        assert_eq!(line["service"], "escalations", "{line:?}");
        assert_eq!(line["version"], env!("CARGO_PKG_VERSION"), "{line:?}");
    }
    let finished = |request_id: &str| {
        lines
            .iter()
            .find(|l| l["message"] == "request finished" && l["request_id"] == request_id)
            .unwrap_or_else(|| panic!("no line of request {request_id} in {lines:#?}"))
            .clone()
    };
    let digest = sha2::Sha256::digest(format!("{SALT}{SUB}").as_bytes());
    let client_hash = hex(&digest[..8]);

    let ok = finished(&ok_request_id);
    assert_eq!(ok["trace_id"], ok_trace.as_str());
    assert_eq!(ok["operation_name"], "Directory");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["client"], client_hash.as_str());
    assert!(ok.get("error_code").is_none(), "{ok:?}");
    assert!(ok["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{ok:?}");

    let failing = finished(&failing_request_id);
    assert_eq!(failing["trace_id"], failing_trace.as_str());
    assert_eq!(failing["operation_name"], "CaseLookup");
    assert_eq!(failing["error_code"], "BAD_USER_INPUT");
    assert_eq!(failing["status"], 200);
    assert_eq!(failing["client"], client_hash.as_str());

    let refused = finished(&refused_request_id);
    assert_eq!(refused["error_code"], "UNAUTHENTICATED");
    assert_eq!(refused["status"], 401);
    assert_eq!(refused["operation_name"], "Anonymous");
    assert!(refused.get("client").is_none(), "no token, no client: {refused:?}");
    assert_eq!(refused["trace_id"].as_str().map(str::len), Some(32));
}

mod json_logs {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        json_lines_are_flat_and_name_the_client_by_a_hash(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        json_lines_are_flat_and_name_the_client_by_a_hash(Backend::Postgres).await;
    }
}

// In process: the trace context is the router's, whatever the subscriber.
db_test!(a_websocket_upgrade_continues_the_callers_trace, |app| {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut req = format!("ws://{}/graphql", app.addr).into_client_request().unwrap();
    let headers = req.headers_mut();
    headers.insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    headers.insert("traceparent", traceparent.parse().unwrap());
    let (_socket, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    let value = resp.headers()["traceresponse"].to_str().unwrap();
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!((parts[0], parts[1]), ("00", TRACE_ID), "{value}");
    assert_ne!(parts[2], PARENT_SPAN_ID, "{value}");
});

// In process too: every error of a response names the request's trace,
// refusals before execution included, and the trace is the caller's.
db_test!(every_error_names_the_callers_trace, |app| {
    let traceparent = format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01");
    let client = reqwest::Client::new();
    let token =
        app.token(escalations::domain::role::Role::Practitioner, Some("wb-police"), "western-bay");
    for (name, request) in [
        (
            "an error in a field",
            client.post(app.url("/graphql")).bearer_auth(&token).json(&json!({ "query": LOOKUP })),
        ),
        (
            "a parse error",
            client.post(app.url("/graphql")).bearer_auth(&token).json(&json!({ "query": "{" })),
        ),
        (
            "no token",
            client.post(app.url("/graphql")).json(&json!({ "query": "{ cases { totalCount } }" })),
        ),
        (
            "not JSON",
            client.post(app.url("/graphql")).header("content-type", "text/plain").body("{}"),
        ),
    ] {
        let res = request.header("traceparent", &traceparent).send().await.unwrap();
        let (trace_id, _, _) = traceresponse(&res);
        assert_eq!(trace_id, TRACE_ID, "{name}");
        let body: Value = res.json().await.unwrap();
        let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{name}: {body:#}"));
        assert!(!errors.is_empty(), "{name}: {body:#}");
        for error in errors {
            assert_eq!(error["extensions"]["traceId"], TRACE_ID, "{name}: {body:#}");
            assert!(error["extensions"]["code"].is_string(), "{name}: {body:#}");
        }
    }
});

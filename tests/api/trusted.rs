//! Trusted documents: operations registered in a persisted-query manifest
//! and named by hash (Apollo's `persistedQuery` extension) over POST, GET
//! and WebSocket; unknown hashes, mismatched ones and wrong versions
//! refused with their codes and statuses; trusted-only mode refusing free
//! text; a bad manifest refusing the start; and the manifest that
//! `escalations trusted-documents build examples/` prints running every
//! example by hash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use escalations::config::ServeArgs;
use escalations::domain::role::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::examples::{EXAMPLES, agency_id, pascal, run_every_example};
use crate::helpers::{TestApp, persisted_query, serve_args};
use crate::subscriptions::{Got, Ws};
use crate::{db_test, db_test_with};

const DIRECTORY: &str = "query Directory { partnerships { code } }";
const RAISE: &str =
    "mutation Raise($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id } } }";
const LIVE: &str = "subscription Live { caseEvents { cursor node { type caseId } } }";
const COUNT: &str = "{ cases(first: 1) { totalCount } }";
const SPEC: &str = "application/graphql-response+json";

/// The SHA-256 of `text`, lowercase hex, computed here rather than by the
/// server's code.
fn sha256(text: &str) -> String {
    hex(text.as_bytes())
}

/// The SHA-256 of `bytes`, lowercase hex.
fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A manifest file of `(name, type, body)` operations, in a file of its own.
fn manifest_file(ops: &[(&str, &str, &str)], ids: impl Fn(&str) -> String) -> PathBuf {
    let operations: Vec<Value> = ops
        .iter()
        .map(|(name, ty, body)| json!({ "id": ids(body), "name": name, "type": ty, "body": body }))
        .collect();
    let manifest = json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": operations });
    file_of(serde_json::to_string_pretty(&manifest).unwrap().as_bytes())
}

/// A file holding `contents` in cargo's directory for test files, named
/// by their SHA-256 (so that runs do not pile files up) and written whole
/// before it appears under that name (tests run at once may write it).
fn file_of(contents: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("trusted-documents-{}.json", hex(contents)));
    let partial = dir.join(format!("partial-{}.json", uuid::Uuid::now_v7().simple()));
    std::fs::write(&partial, contents).unwrap();
    std::fs::rename(&partial, &path).unwrap();
    path
}

/// The three operations the tests register.
fn registered() -> PathBuf {
    manifest_file(
        &[
            ("Directory", "query", DIRECTORY),
            ("Raise", "mutation", RAISE),
            ("Live", "subscription", LIVE),
        ],
        sha256,
    )
}

fn with_manifest(path: PathBuf, only: bool) -> ServeArgs {
    let mut args = serve_args();
    args.trusted.trusted_documents = Some(path);
    args.trusted.trusted_documents_only = only;
    args
}

/// A request body with the persisted-query extension and `more` beside it.
fn named(hash: &str, more: Value) -> Value {
    let mut body = json!({ "extensions": persisted_query(hash) });
    body.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
    body
}

/// Posts `body` (with `Accept` of the GraphQL-over-HTTP media type when
/// `spec`) and returns the status, the `Cache-Control` and the JSON.
async fn post(
    app: &TestApp,
    body: &Value,
    token: Option<&str>,
    spec: bool,
) -> (u16, String, Value) {
    let mut req = app.client.post(app.url("/graphql")).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if spec {
        req = req.header("accept", SPEC);
    }
    answer(req.send().await.unwrap()).await
}

/// `GET /graphql` with these query parameters.
async fn get(app: &TestApp, params: &[(&str, String)], spec: bool) -> (u16, String, Value) {
    let mut req = app.client.get(app.url("/graphql")).query(params);
    if spec {
        req = req.header("accept", SPEC);
    }
    answer(req.send().await.unwrap()).await
}

async fn answer(res: reqwest::Response) -> (u16, String, Value) {
    let status = res.status().as_u16();
    let cache = res
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, cache, res.json().await.unwrap())
}

/// The code of a response's only error; it has no `data`.
#[track_caller]
fn refused(body: &Value) -> &str {
    assert!(body.get("data").is_none(), "nothing ran: {body:#}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors: {body:#}"));
    assert_eq!(errors.len(), 1, "{body:#}");
    errors[0]["extensions"]["code"].as_str().unwrap()
}

/// The partnership codes of a directory answer, which must have no error.
#[track_caller]
fn directory(body: &Value) -> usize {
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"]["partnerships"].as_array().unwrap_or_else(|| panic!("{body:#}")).len()
}

db_test_with!(
    a_registered_hash_runs_over_post_and_get,
    with_manifest(registered(), false),
    |app| {
        let id = sha256(DIRECTORY);
        // POST with the hash alone, under either media type.
        for spec in [false, true] {
            let (status, _, body) = post(&app, &named(&id, json!({})), None, spec).await;
            assert_eq!((status, directory(&body)), (200, 5), "{body:#}");
        }
        // GET with the extension as a JSON parameter.
        let extensions = persisted_query(&id).to_string();
        let (status, _, body) = get(&app, &[("extensions", extensions.clone())], false).await;
        assert_eq!((status, directory(&body)), (200, 5));
        // With its query, and with its operation's name.
        let (_, _, body) =
            post(&app, &named(&id, json!({ "query": DIRECTORY })), None, false).await;
        assert_eq!(directory(&body), 5);
        let given = json!({ "operationName": "Directory" });
        let (_, _, body) = post(&app, &named(&id, given), None, false).await;
        assert_eq!(directory(&body), 5);
        // A name the document does not hold is refused, as for any text.
        let (status, _, body) =
            post(&app, &named(&id, json!({ "operationName": "Other" })), None, true).await;
        assert_eq!((status, refused(&body)), (400, "OPERATION_RESOLUTION_FAILURE"));
        let named_get =
            |name: &str| [("extensions", extensions.clone()), ("operationName", name.to_owned())];
        let (status, _, body) = get(&app, &named_get("Other"), true).await;
        assert_eq!((status, refused(&body)), (400, "OPERATION_RESOLUTION_FAILURE"));
        let (_, _, body) = get(&app, &named_get("Directory"), false).await;
        assert_eq!(directory(&body), 5);
        // Free text still runs: only the manifest's hashes are known, nothing
        // else is refused.
        assert_eq!(directory(&app.gql("{ partnerships { code } }", json!({})).await), 5);

        // The registered text meets what any text meets: no mutation over GET
        // (and nothing raised), a token for a mutation, the metrics by name.
        let mutation = persisted_query(&sha256(RAISE)).to_string();
        let res =
            app.client.get(app.url("/graphql")).query(&[("extensions", mutation)]).send().await;
        let res = res.unwrap();
        assert_eq!(res.status(), 405);
        let receiving = app.agency_id("wb-swansea-csc").await;
        let input = json!({ "input": {
            "receivingAgencyId": receiving, "childReference": "TD-1", "category": "other",
            "summary": "Raised by a trusted document.",
        }});
        let res = app.persisted_raw(None, &sha256(RAISE), input.clone()).await;
        assert_eq!(res.status(), 401, "a trusted document still needs a token");
        let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
        let body: Value =
            app.persisted_raw(Some(&police), &sha256(RAISE), input).await.json().await.unwrap();
        assert!(body["data"]["raiseCase"]["case"]["id"].is_string(), "{body:#}");
        let (_, _, body) = post(&app, &named(&id, json!({})), Some(&police), false).await;
        assert_eq!(directory(&body), 1, "a token sees its own partnership");
        let metrics = app.metrics().await;
        for series in [
            r#"escalations_graphql_requests_total{operation="Directory",outcome="ok"} 1"#,
            r#"escalations_graphql_requests_total{operation="Raise",outcome="ok"} 1"#,
        ] {
            assert!(metrics.lines().any(|l| l == series), "{series} in\n{metrics}");
        }
        let count = app.gql_as_ok(&police, COUNT, json!({})).await;
        assert_eq!(count["cases"]["totalCount"], 1, "one case raised, by POST");
    }
);

db_test_with!(
    an_unknown_hash_or_a_wrong_extension_is_refused_and_changes_nothing,
    with_manifest(registered(), false),
    |app| {
        let unknown = sha256("query Unknown { partnerships { code } }");
        // An unknown hash: 200 under application/json (Apollo Server), 404
        // under the GraphQL-over-HTTP media type (Apollo Router), never
        // cached, no data.
        for (spec, expected) in [(false, 200), (true, 404)] {
            let (status, cache, body) = post(&app, &named(&unknown, json!({})), None, spec).await;
            assert_eq!((status, refused(&body)), (expected, "PERSISTED_QUERY_NOT_FOUND"));
            assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
            assert_eq!(cache, "private, no-cache, must-revalidate");
            let params = [("extensions", persisted_query(&unknown).to_string())];
            let (status, cache, body) = get(&app, &params, spec).await;
            assert_eq!((status, refused(&body)), (expected, "PERSISTED_QUERY_NOT_FOUND"));
            assert_eq!(cache, "private, no-cache, must-revalidate");
        }
        // A registered id in capitals is not it.
        let shouted = sha256(DIRECTORY).to_uppercase();
        let (_, _, body) = post(&app, &named(&shouted, json!({})), None, false).await;
        assert_eq!(refused(&body), "PERSISTED_QUERY_NOT_FOUND");

        // A hash that is not the query's: BAD_USER_INPUT, and the mutation
        // sent with it raised nothing.
        let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
        let receiving = app.agency_id("wb-swansea-csc").await;
        let input = json!({ "input": {
            "receivingAgencyId": receiving, "childReference": "TD-2", "category": "other",
            "summary": "Never raised.",
        }});
        for hash in [sha256(DIRECTORY), unknown.clone()] {
            let body = named(&hash, json!({ "query": RAISE, "variables": input }));
            let (status, _, body) = post(&app, &body, Some(&police), true).await;
            assert_eq!((status, refused(&body)), (400, "BAD_USER_INPUT"), "{body:#}");
            let error = &body["errors"][0];
            assert_eq!(error["message"], "provided sha does not match query");
            assert_eq!(error["extensions"]["field"], "extensions.persistedQuery.sha256Hash");
        }
        let count = app.gql_as_ok(&police, COUNT, json!({})).await;
        assert_eq!(count["cases"]["totalCount"], 0, "nothing was raised");

        // Another version, and an extension of another shape.
        let id = sha256(DIRECTORY);
        for (extension, field) in [
            (json!({ "version": 2, "sha256Hash": id }), "extensions.persistedQuery.version"),
            (json!({ "sha256Hash": id }), "extensions.persistedQuery.version"),
            (json!({ "version": 1, "sha256Hash": 1 }), "extensions.persistedQuery"),
            (json!({ "version": 1 }), "extensions.persistedQuery"),
            (json!(id), "extensions.persistedQuery"),
        ] {
            let body = json!({ "extensions": { "persistedQuery": extension } });
            let (status, _, body) = post(&app, &body, None, true).await;
            assert_eq!((status, refused(&body)), (400, "BAD_USER_INPUT"), "{extension}");
            assert_eq!(body["errors"][0]["extensions"]["field"], field, "{extension}");
        }
        // Neither a query nor a hash is still no request.
        let (status, _, body) = post(&app, &json!({ "variables": {} }), None, false).await;
        assert_eq!((status, refused(&body)), (400, "BAD_USER_INPUT"));
        let metrics = app.metrics().await;
        assert!(
            metrics.lines().any(|l| l.starts_with(
                r#"escalations_graphql_errors_total{code="PERSISTED_QUERY_NOT_FOUND"}"#
            )),
            "{metrics}"
        );
    }
);

db_test!(without_a_manifest_a_hash_runs_only_with_its_query, |app| {
    let id = sha256(DIRECTORY);
    let (status, _, body) = post(&app, &named(&id, json!({})), None, false).await;
    assert_eq!((status, refused(&body)), (200, "PERSISTED_QUERY_NOT_FOUND"));
    // An automatic-persisted-query client's second try: the hash and its
    // text.
    let (_, _, body) = post(&app, &named(&id, json!({ "query": DIRECTORY })), None, false).await;
    assert_eq!(directory(&body), 5);
    let other = json!({ "query": "{ partnerships { code } }" });
    let (_, _, body) = post(&app, &named(&id, other), None, false).await;
    assert_eq!(refused(&body), "BAD_USER_INPUT");
});

db_test_with!(
    trusted_only_mode_refuses_free_text_and_accepts_the_hash,
    with_manifest(registered(), true),
    |app| {
        let id = sha256(DIRECTORY);
        // Free text, over POST and GET: refused, whatever it is.
        for (spec, expected) in [(false, 200), (true, 400)] {
            let (status, _, body) = post(&app, &json!({ "query": DIRECTORY }), None, spec).await;
            assert_eq!((status, refused(&body)), (expected, "PERSISTED_QUERY_ID_REQUIRED"));
            let (status, _, body) = get(&app, &[("query", DIRECTORY.to_owned())], spec).await;
            assert_eq!((status, refused(&body)), (expected, "PERSISTED_QUERY_ID_REQUIRED"));
        }
        // Text with its own hash, not registered: not found.
        let free = "{ partnerships { code } }";
        let (_, _, body) =
            post(&app, &named(&sha256(free), json!({ "query": free })), None, false).await;
        assert_eq!(refused(&body), "PERSISTED_QUERY_NOT_FOUND");
        // The registered hash runs, alone, with its text, and over GET.
        let (_, _, body) = post(&app, &named(&id, json!({})), None, false).await;
        assert_eq!(directory(&body), 5);
        let (_, _, body) =
            post(&app, &named(&id, json!({ "query": DIRECTORY })), None, false).await;
        assert_eq!(directory(&body), 5);
        let (_, _, body) =
            get(&app, &[("extensions", persisted_query(&id).to_string())], false).await;
        assert_eq!(directory(&body), 5);

        // Over WebSocket: a free subscription is refused on a connection
        // that stays open; the registered one goes live.
        let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
        let mut ws = Ws::connect(&format!("ws://{}/graphql", app.addr), &police).await;
        ws.subscribe("free", LIVE, json!({})).await;
        let refusal = loop {
            match ws.next(std::time::Duration::from_secs(5)).await {
                Got::Json(m) if m["id"] == "free" && m["type"] == "next" => break m,
                Got::Json(_) => {}
                other => panic!("{other:?}"),
            }
        };
        let errors = &refusal["payload"]["errors"];
        assert_eq!(errors[0]["extensions"]["code"], "PERSISTED_QUERY_ID_REQUIRED", "{refusal:#}");
        assert_eq!(errors.as_array().map(Vec::len), Some(1), "{refusal:#}");
        ws.subscribe_by_hash("live", &sha256(LIVE), json!({})).await;
        let receiving = agency_id(&app, "wb-swansea-csc").await;
        let input = json!({ "input": {
            "receivingAgencyId": receiving, "childReference": "TD-3", "category": "other",
            "summary": "Raised by a trusted document.",
        }});
        let res = app.persisted_raw(Some(&police), &sha256(RAISE), input).await;
        let body: Value = res.json().await.unwrap();
        let case =
            body["data"]["raiseCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{body:#}"));
        let event = loop {
            match ws.next(std::time::Duration::from_secs(15)).await {
                Got::Json(m) if m["id"] == "live" && m["type"] == "next" => break m,
                Got::Json(_) => {}
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(event["payload"]["data"]["caseEvents"]["node"]["caseId"], case, "{event:#}");
    }
);

/// Runs the binary with `args`; its success and standard error.
fn escalations(args: &[&str], db: &Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_escalations"))
        .args(args)
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", db.display()))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_manifest_that_is_not_what_it_says_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("serve.db");
    let serve = |extra: &[&str]| {
        let mut args = vec!["--demo", "serve", "--listen-addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        escalations(&args, &db)
    };
    // One id that is not its body's SHA-256: no start, the operation named.
    let wrong =
        manifest_file(&[("Directory", "query", DIRECTORY), ("Raise", "mutation", RAISE)], |body| {
            if body == RAISE { sha256(DIRECTORY) } else { sha256(body) }
        });
    let (ok, err) = serve(&["--trusted-documents", wrong.to_str().unwrap()]);
    assert!(!ok, "{err}");
    assert!(err.contains("operation \"Raise\": id"), "{err}");
    assert!(
        err.contains(&format!("is not the SHA-256 of its body, which is \"{}\"", sha256(RAISE))),
        "{err}"
    );
    // A body over a document limit.
    let (ok, err) =
        serve(&["--trusted-documents", registered().to_str().unwrap(), "--max-tokens", "8"]);
    assert!(!ok, "{err}");
    assert!(err.contains("is over the document limit tokens"), "{err}");
    // No manifest, or trusted-only mode without one.
    let (ok, err) = serve(&["--trusted-documents", "/nonexistent/manifest.json"]);
    assert!(!ok && err.contains("reading the manifest"), "{err}");
    let (ok, err) = serve(&["--trusted-documents-only"]);
    assert!(!ok && err.contains("TRUSTED_DOCUMENTS_ONLY needs TRUSTED_DOCUMENTS"), "{err}");
}

/// The manifest `escalations trusted-documents build examples/` prints, in
/// a file (built once per test process).
fn examples_manifest() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_escalations"))
            .args(["trusted-documents", "build", examples])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        file_of(&out.stdout)
    })
}

db_test_with!(
    the_built_manifest_of_examples_runs_each_example_by_hash,
    with_manifest(examples_manifest().to_owned(), true),
    |app| {
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(examples_manifest()).unwrap()).unwrap();
        assert_eq!(manifest["format"], "apollo-persisted-query-manifest");
        assert_eq!(manifest["version"], 1);
        let operations = manifest["operations"].as_array().unwrap();
        assert_eq!(operations.len(), EXAMPLES.len(), "one operation per file");
        // Each example is registered with its file's text, under the
        // file's SHA-256, by its operation's name and type.
        let mut ids = HashMap::new();
        for (file, text) in EXAMPLES {
            let name = pascal(file.strip_suffix(".graphql").unwrap());
            let op = operations.iter().find(|o| o["name"] == name.as_str());
            let op = op.unwrap_or_else(|| panic!("{file} is not registered as {name}"));
            assert_eq!(op["id"], sha256(text), "{file}");
            assert_eq!(op["body"], *text, "{file}");
            let head = text.lines().find(|l| !l.starts_with('#')).unwrap();
            assert!(head.starts_with(op["type"].as_str().unwrap()), "{file}: {head}");
            ids.insert(name, op["id"].as_str().unwrap().to_owned());
        }
        // The server runs only them; each example, by its id.
        let (_, _, body) = post(&app, &json!({ "query": DIRECTORY }), None, false).await;
        assert_eq!(refused(&body), "PERSISTED_QUERY_ID_REQUIRED");
        run_every_example(&app, Some(&ids)).await;
    }
);

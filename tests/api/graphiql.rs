//! GraphiQL served by the binary alone: the page, its files and their
//! headers over HTTP, and the IDE used in headless Chromium with no network
//! but the server's (`tests/browser/graphiql.mjs` under node, driving
//! Debian's chromium through playwright-core). Not about the database:
//! SQLite only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use escalations::domain::role::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha384};

use crate::helpers::{Backend, TestApp, spawn_app_with, with_graphiql};

/// The policy of the page and its files, for a server at `host`.
fn policy(host: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; \
         connect-src 'self' ws://{host} wss://{host}; img-src 'self' data:; \
         font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
}

/// The files the page names, with their `integrity`, in page order.
fn files_of(page: &str) -> Vec<(String, String)> {
    page.split("=\"graphiql/")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let integrity = rest.split("integrity=\"").nth(1).unwrap().split('"').next().unwrap();
            (name.to_owned(), integrity.to_owned())
        })
        .collect()
}

async fn page(app: &TestApp) -> String {
    let res =
        app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["content-security-policy"], policy(&app.addr.to_string()).as_str());
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-cache");
    res.text().await.unwrap()
}

#[tokio::test]
async fn the_page_loads_only_the_servers_own_files_each_as_its_integrity_says() {
    let app = spawn_app_with(Backend::Sqlite, with_graphiql()).await.unwrap();
    let page = page(&app).await;
    assert!(!page.contains("://") && !page.contains("<script>"), "{page}");
    let files = files_of(&page);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "graphiql-4.1.2.min.css",
            "page.css",
            "react-18.3.1.production.min.js",
            "react-dom-18.3.1.production.min.js",
            "graphiql-4.1.2.min.js",
            "start.js",
        ]
    );
    for (name, integrity) in &files {
        let res = app.get(&format!("/graphiql/{name}")).await;
        assert_eq!(res.status(), 200, "{name}");
        let h = res.headers().clone();
        let kind = if name.ends_with(".js") { "text/javascript" } else { "text/css" };
        assert_eq!(h["content-type"], format!("{kind}; charset=utf-8").as_str(), "{name}");
        assert_eq!(h["content-security-policy"], policy(&app.addr.to_string()).as_str());
        assert_eq!(h["x-content-type-options"], "nosniff");
        // Vendored files carry their version in their name; ours do not.
        let ours = ["page.css", "start.js"].contains(&name.as_str());
        let cache = if ours { "no-cache" } else { "public, max-age=31536000, immutable" };
        assert_eq!(h["cache-control"], cache, "{name}");
        let body = res.bytes().await.unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&body));
        assert_eq!(integrity, &format!("sha384-{hash}"), "{name}");
    }
    for missing in ["/graphiql/index.umd.js.map", "/graphiql/", "/graphiql/..%2FCargo.toml"] {
        assert_eq!(app.get(missing).await.status(), 404, "{missing}");
    }
}

/// node, playwright-core (`npm ci` in `tests/browser`, which `.ci/run`
/// does) and chromium (`CHROMIUM`, or Debian's `/usr/bin/chromium`); `None`
/// (skip, with a message) when one is missing outside CI, a failure under
/// CI.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let node = std::process::Command::new("node").arg("--version").output();
    let missing = if node.map_or(true, |o| !o.status.success()) {
        "node (Debian's nodejs)".to_owned()
    } else if !dir.join("node_modules/playwright-core").is_dir() {
        format!("playwright-core: run `npm ci --prefix {}`", dir.display())
    } else if !chromium.is_file() {
        format!("{}: run `apt-get install -y chromium`", chromium.display())
    } else {
        return Some((dir, chromium));
    };
    assert!(std::env::var_os("CI").is_none(), "the browser test needs {missing}, and CI is set");
    eprintln!("SKIPPED the browser test: it needs {missing}");
    None
}

const CASES: &str = "{ cases(first: 10) { totalCount nodes { id childReference stage status } } }";

#[tokio::test]
async fn graphiql_runs_a_query_and_a_subscription_in_a_browser_with_no_network_but_the_server() {
    let Some((dir, chromium)) = browser() else { return };
    let app = spawn_app_with(Backend::Sqlite, with_graphiql()).await.unwrap();
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    // A case with a record: two events, the second replayed to the
    // subscription after the first's cursor.
    let receiving = app.agency_id("wb-swansea-csc").await;
    let raised = app
        .gql_as_ok(
            &police,
            "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }",
            json!({ "i": { "receivingAgencyId": receiving, "childReference": "GRAPHIQL-1", "category": "referral-response", "summary": "Seen in a browser." } }),
        )
        .await;
    let case = raised["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    app.gql_as_ok(
        &police,
        "mutation($i: AddRecordInput!) { addRecord(input: $i) { record { id } } }",
        json!({ "i": { "caseId": case, "kind": "DISCUSSION", "facts": "Phoned the duty team." } }),
    )
    .await;
    let feed =
        app.gql_as_ok(&police, "{ caseEvents(first: 1) { edges { cursor } } }", json!({})).await;
    let after = feed["caseEvents"]["edges"][0]["cursor"].as_str().unwrap();
    let subscription = format!(
        "subscription {{ caseEvents(after: \"{after}\") {{ node {{ type caseId version }} }} }}"
    );
    // What the API answers the same caller, for the result pane to match.
    let expected = app.gql_as(&police, CASES, json!({})).await;
    assert_eq!(expected["data"]["cases"]["nodes"][0]["childReference"], "GRAPHIQL-1");

    let screenshot = std::env::temp_dir().join(format!("graphiql-{}.png", app.addr.port()));
    let started = Instant::now();
    let run = tokio::process::Command::new("node")
        .arg(dir.join("graphiql.mjs"))
        .current_dir(&dir)
        .env("URL", app.url("/graphql"))
        .env("TOKEN", &police)
        .env("QUERIES", json!([CASES, subscription]).to_string())
        .env("UNSTORED", json!(["GRAPHIQL-1"]).to_string())
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT", &screenshot)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(150), run)
        .await
        .expect("the browser did not finish in 150 s")
        .expect("node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or_else(|_| panic!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("the browser took {:?}: {}", started.elapsed(), report["timings"]);
    assert!(out.status.success(), "{report:#}");

    // Nothing asked of anywhere else, nothing refused by the policy.
    assert_eq!(report["refused"], json!([]), "{report:#}");
    assert_eq!(report["csp"], json!([]), "{report:#}");
    assert_eq!(report["pageErrors"], json!([]), "{report:#}");
    assert_eq!(report["consoleErrors"], json!([]), "{report:#}");
    let served: Vec<&str> =
        report["served"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    for file in ["graphiql-4.1.2.min.js", "react-dom-18.3.1.production.min.js", "start.js"] {
        assert!(served.contains(&format!("GET /graphiql/{file}").as_str()), "{served:?}");
    }
    assert_eq!(report["sockets"], json!([format!("ws://{}/graphql", app.addr)]), "{report:#}");
    // GraphiQL keeps its tabs and history, but neither the token nor
    // what the API answered.
    assert_eq!(report["stored"], json!([]), "{report:#}");
    assert!(report["storageKeys"].as_array().unwrap().contains(&json!("graphiql:queries")));

    // The query ran with the token of the headers pane; the subscription
    // too, over the socket, which replayed the record's event.
    assert_eq!(report["results"][0], expected, "{report:#}");
    assert_eq!(
        report["results"][1],
        json!({ "data": { "caseEvents": { "node": { "type": "RECORD_ADDED", "caseId": case, "version": 2 } } } }),
        "{report:#}"
    );
}

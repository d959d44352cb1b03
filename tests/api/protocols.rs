//! Protocols as data the partnership owns, over HTTP: checking a
//! definition with every problem located, publishing the next version (new
//! cases take it, open cases keep theirs), the refusals, the adopted
//! version, the diff, the stored text winning over the binary's, the
//! database refusing to edit or delete a version, and a second server
//! process seeing a version the first published.

use escalations::domain::role::Role;
use escalations::service::protocols::{Library, adopt, sha256};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::{Backend, TestApp, TestDb, spawn_app_at};

const VALIDATE: &str = "query($d: String!) { validateProtocol(definition: $d) { valid protocolId version problems { message path line column } policy { route stage action roles side line } } }";
const PUBLISH: &str = "mutation($p: ID!, $d: String!) { publishProtocolVersion(partnershipId: $p, definition: $d) { id version publishedBy sha256 partnership { code } routes { stages { key name } } } }";
const LIST: &str = "{ protocols { id version name publishedBy sha256 partnership { code } } }";
const DIFF: &str = "query($id: String!, $from: Int!, $to: Int!) { protocolDiff(id: $id, from: $from, to: $to) { kind path route stage before after } }";
const RAISE: &str = "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id protocolVersion currentStage { name } } } }";
const ESCALATE: &str = "mutation($input: EscalateCaseInput!) { escalateCase(input: $input) { case { stage version protocolVersion currentStage { name } } } }";

fn western_bay() -> &'static str {
    escalations::domain::protocol::builtin_texts()[0].1
}

/// Western Bay's next version: stage 1 renamed.
fn version_2() -> String {
    western_bay().replacen("version = 1", "version = 2", 1).replacen(
        "name = \"Manager to manager\"",
        "name = \"Managers, first\"",
        1,
    )
}

/// The line (from 1) of the first line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).expect(needle) as u64 + 1
}

async fn partnership_id(app: &TestApp, code: &str) -> String {
    let data = app.gql_ok("{ partnerships { id code } }", json!({})).await;
    data["partnerships"].as_array().unwrap().iter().find(|p| p["code"] == code).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn admin(app: &TestApp, partnership: &str) -> String {
    app.client_token("protocols:admin", None, partnership)
}

async fn raise(app: &TestApp, child: &str) -> Value {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let input = json!({ "input": {
        "receivingAgencyId": receiving,
        "childReference": child,
        "category": "referral-response",
        "summary": "Referral closed with no further action.",
    }});
    app.gql_as_ok(&token, RAISE, input).await["raiseCase"]["case"].clone()
}

async fn escalate(app: &TestApp, id: &Value) -> Value {
    let manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let input = json!({ "input": { "caseId": id, "expectedVersion": 1, "reason": "UNRESOLVED" } });
    app.gql_as_ok(&manager, ESCALATE, input).await["escalateCase"]["case"].clone()
}

async fn versions(app: &TestApp, id: &str) -> Vec<Value> {
    let token = app.token(Role::BoardChair, None, "western-bay");
    let data = app.gql_as_ok(&token, LIST, json!({})).await;
    data["protocols"].as_array().unwrap().iter().filter(|p| p["id"] == id).cloned().collect()
}

db_test!(validate_lists_every_problem_with_its_path_and_line, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let broken = western_bay()
        .replacen("version = 1", "version = 0", 1)
        .replacen("key = \"other\"", "key = \"Other\"", 1)
        .replacen("escalate = []", "escalate = [\"board_chair\"]", 1);
    let data =
        app.gql_as_ok(&token, VALIDATE, json!({ "d": broken })).await["validateProtocol"].clone();
    assert_eq!(data["valid"], false);
    assert_eq!(data["policy"], json!([]));
    let problems = data["problems"].as_array().unwrap();
    for (path, line) in [
        ("version", line_of(&broken, "version = 0")),
        ("categories[7].key", line_of(&broken, "key = \"Other\"")),
        ("categories", line_of(&broken, "categories = [")),
        ("routes[0].stages[4].allow.escalate", line_of(&broken, "escalate = [\"board_chair\"]")),
    ] {
        let p = problems
            .iter()
            .find(|p| p["path"] == path)
            .unwrap_or_else(|| panic!("no problem at {path}: {problems:#?}"));
        assert_eq!(p["line"], line, "{path}");
        assert!(p["column"].as_u64().unwrap() >= 1);
        assert!(!p["message"].as_str().unwrap().is_empty());
    }
    // A syntax error: its line.
    let data = app.gql_as_ok(&token, VALIDATE, json!({ "d": "id = \"x\"\nversion = = 1\n" })).await;
    assert_eq!(data["validateProtocol"]["problems"][0]["line"], 2);
    // A valid definition: its policy table, the rows of policy.matrix.
    let data =
        app.gql_as_ok(&token, VALIDATE, json!({ "d": version_2() })).await["validateProtocol"]
            .clone();
    assert_eq!(
        (data["valid"].clone(), data["protocolId"].clone(), data["version"].clone()),
        (json!(true), json!("western-bay"), json!(2))
    );
    let policy = data["policy"].as_array().unwrap();
    assert_eq!(policy.len(), 1 + 5 * 12);
    assert_eq!(policy[0]["action"], "READ_STATISTICS");
    assert_eq!(policy[0]["roles"], json!(["BOARD_CHAIR"]));
    let escalate =
        policy.iter().find(|r| r["stage"] == "stage-1" && r["action"] == "ESCALATE").unwrap();
    assert_eq!(escalate["line"], "escalate         .  Y  Y  Y  .  raising");
    assert_eq!(escalate["side"], "RAISING");
    // Nothing was stored.
    assert_eq!(versions(&app, "western-bay").await.len(), 1);
});

db_test!(a_published_version_takes_new_cases_while_open_ones_keep_theirs, |app| {
    let before = raise(&app, "SWP-1").await;
    assert_eq!(before["protocolVersion"], 1);
    let wb = partnership_id(&app, "western-bay").await;
    let text = version_2();
    let data =
        app.gql_as_ok(&admin(&app, "western-bay"), PUBLISH, json!({ "p": wb, "d": text })).await;
    let published = &data["publishProtocolVersion"];
    assert_eq!(published["version"], 2);
    assert_eq!(published["publishedBy"], "client-1");
    assert_eq!(published["sha256"], sha256(&text));
    assert_eq!(published["partnership"]["code"], "western-bay");
    assert_eq!(published["routes"][0]["stages"][1]["name"], "Managers, first");

    let after = raise(&app, "SWP-2").await;
    assert_eq!(after["protocolVersion"], 2);
    // The case raised before walks on under version 1.
    let moved = escalate(&app, &before["id"]).await;
    assert_eq!(moved["stage"], "stage-1");
    assert_eq!(moved["protocolVersion"], 1);
    assert_eq!(moved["currentStage"]["name"], "Manager to manager");
    let moved = escalate(&app, &after["id"]).await;
    assert_eq!(
        (moved["protocolVersion"].clone(), moved["currentStage"]["name"].clone()),
        (json!(2), json!("Managers, first"))
    );

    let listed = versions(&app, "western-bay").await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["publishedBy"], "builtin");
    assert_eq!(listed[0]["partnership"], Value::Null);
    assert_eq!(listed[0]["sha256"], sha256(western_bay()));
    assert_eq!(listed[1]["version"], 2);
    assert_eq!(listed[1]["partnership"]["code"], "western-bay");

    let token = app.token(Role::BoardChair, None, "western-bay");
    let diff =
        app.gql_as_ok(&token, DIFF, json!({ "id": "western-bay", "from": 1, "to": 2 })).await;
    assert_eq!(
        diff["protocolDiff"],
        json!([{ "kind": "STAGE_RENAMED", "path": "routes[0].stages[1].name", "route": "main", "stage": "stage-1", "before": "Manager to manager", "after": "Managers, first" }])
    );
    let missing =
        app.gql_as_err(&token, DIFF, json!({ "id": "western-bay", "from": 1, "to": 3 })).await;
    assert_eq!(missing["extensions"]["code"], "NOT_FOUND");

    // Pinned to version 1, new cases take it; cleared, the newest again.
    let library = Library::load(&app.db).await.unwrap();
    let id = wb.parse().unwrap();
    adopt(&app.db, &library, id, Some(1)).await.unwrap();
    assert_eq!(raise(&app, "SWP-3").await["protocolVersion"], 1);
    adopt(&app.db, &library, id, None).await.unwrap();
    assert_eq!(raise(&app, "SWP-4").await["protocolVersion"], 2);
    assert!(adopt(&app.db, &library, id, Some(9)).await.is_err());
});

db_test!(publishing_is_refused_to_others_and_for_a_wrong_definition, |app| {
    let wb = partnership_id(&app, "western-bay").await;
    let ours = admin(&app, "western-bay");
    let forbidden = [
        ("another partnership's admin", admin(&app, "pan-sussex")),
        ("a person", app.token(Role::BoardChair, None, "western-bay")),
        ("a statistics client", app.client_token("statistics:read", None, "western-bay")),
    ];
    for (who, token) in &forbidden {
        let err = app.gql_as_err(token, PUBLISH, json!({ "p": wb, "d": version_2() })).await;
        assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{who}: {err:#}");
    }
    let v3 = western_bay().replacen("version = 1", "version = 3", 1);
    let err = app.gql_as_err(&ours, PUBLISH, json!({ "p": wb, "d": v3 })).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");
    assert!(
        err["message"].as_str().unwrap().contains("next version of western-bay is 2"),
        "{err:#}"
    );
    let again = western_bay();
    let err = app.gql_as_err(&ours, PUBLISH, json!({ "p": wb, "d": again })).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");

    let invalid = version_2().replacen("key = \"other\"", "key = \"Other\"", 1).replacen(
        "escalate = []",
        "escalate = [\"board_chair\"]",
        1,
    );
    let err = app.gql_as_err(&ours, PUBLISH, json!({ "p": wb, "d": invalid })).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
    let problems = err["extensions"]["problems"].as_array().unwrap();
    assert!(problems.len() >= 3, "{problems:#?}");
    let last = problems.iter().find(|p| p["path"] == "routes[0].stages[4].allow.escalate").unwrap();
    assert_eq!(last["line"], line_of(&invalid, "escalate = [\"board_chair\"]"));

    let other_id = version_2().replacen("id = \"western-bay\"", "id = \"western-bay-2\"", 1);
    let err = app.gql_as_err(&ours, PUBLISH, json!({ "p": wb, "d": other_id })).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");

    // Nothing was stored, and new cases still take version 1.
    assert_eq!(versions(&app, "western-bay").await.len(), 1);
    assert_eq!(raise(&app, "SWP-9").await["protocolVersion"], 1);
});

db_test!(a_published_version_is_never_edited_or_deleted, |app| {
    let statements = [
        "UPDATE protocol_version SET published_by = 'someone' WHERE protocol_id = 'western-bay'",
        "UPDATE protocol_version SET definition = 'x'",
        "DELETE FROM protocol_version WHERE protocol_id = 'western-bay'",
        "DELETE FROM protocol_version",
    ];
    for sql in statements {
        assert!(app.db.execute_unprepared(sql).await.is_err(), "{sql} was allowed");
    }
    if app.backend == Backend::Postgres {
        assert!(app.db.execute_unprepared("TRUNCATE protocol_version").await.is_err());
    }
    let listed = versions(&app, "western-bay").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["publishedBy"], "builtin");
    assert_eq!(listed[0]["sha256"], sha256(western_bay()));
    assert_eq!(versions(&app, "pan-sussex").await.len(), 1);
});

/// A stored version 1 whose text differs from the binary's file is kept
/// and used: the server starts with it.
async fn the_stored_text_wins(backend: Backend) {
    let Some(test_db) = TestDb::create(backend).await else { return };
    let url = test_db.url().to_owned();
    let db = escalations::db::connect(&escalations::db::DbSettings {
        url: url.clone(),
        max_connections: Some(1),
    })
    .await
    .unwrap();
    escalations::db::migrate(&db).await.unwrap();
    let edited = western_bay().replacen(
        "name = \"Western Bay Safeguarding Children Board: Resolution of Professional Differences\"",
        "name = \"Western Bay, as this deployment stored it\"",
        1,
    );
    assert_ne!(edited, western_bay());
    let sql = format!(
        "INSERT INTO protocol_version (protocol_id, version, partnership_id, definition, sha256, published_at, published_by) \
         VALUES ('western-bay', 1, NULL, '{}', '{}', '2026-01-01T00:00:00Z', 'builtin')",
        edited.replace('\'', "''"),
        sha256(&edited)
    );
    db.execute_unprepared(&sql).await.unwrap();
    db.close().await.unwrap();
    let app = spawn_app_at(backend, test_db, &url).await;
    let listed = versions(&app, "western-bay").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "Western Bay, as this deployment stored it");
    assert_eq!(listed[0]["sha256"], sha256(&edited));
    // The others were stored from the binary's files.
    assert_eq!(versions(&app, "leeds").await[0]["publishedBy"], "builtin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_text_wins_over_the_binarys_on_sqlite() {
    the_stored_text_wins(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_text_wins_over_the_binarys_on_postgres() {
    the_stored_text_wins(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_processes_raise_and_read_under_a_version_one_published() {
    use crate::processes::{agency_id, post, post_ok, start, token};
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    // One after the other: the first applies the migrations. Each has
    // loaded the catalog (version 1 only) before `a` publishes.
    let (a, b, c) = (start(db.url()), start(db.url()), start(db.url()));
    let client = reqwest::Client::new();
    let practitioner = token(Role::Practitioner, "wb-police");
    let manager = token(Role::Manager, "wb-police");
    let receiving = agency_id(&client, &a.url, &practitioner, "wb-swansea-csc").await;
    let raise_on = |url: &str| {
        let input = json!({ "input": {
            "receivingAgencyId": receiving,
            "childReference": "SWP-7",
            "category": "referral-response",
            "summary": "s",
        }});
        let (client, url, practitioner) = (client.clone(), url.to_owned(), practitioner.clone());
        async move {
            post_ok(&client, &url, &practitioner, RAISE, input).await["raiseCase"]["case"].clone()
        }
    };
    let escalate_on = |url: &str, id: &Value| {
        let input =
            json!({ "input": { "caseId": id, "expectedVersion": 1, "reason": "UNRESOLVED" } });
        let (client, url, manager) = (client.clone(), url.to_owned(), manager.clone());
        async move {
            post_ok(&client, &url, &manager, ESCALATE, input).await["escalateCase"]["case"].clone()
        }
    };
    assert_eq!(raise_on(&b.url).await["protocolVersion"], 1);
    let wb = post_ok(&client, &a.url, &practitioner, "{ partnerships { id } }", json!({})).await
        ["partnerships"][0]["id"]
        .clone();
    let admin = crate::helpers::mint(escalations::auth::MintClaims {
        sub: "wb-protocols".into(),
        scope: Some("protocols:admin".into()),
        partnership: "western-bay".into(),
        ..Default::default()
    });
    let published =
        post(&client, &a.url, &admin, PUBLISH, json!({ "p": wb, "d": version_2() })).await;
    assert_eq!(published["data"]["publishProtocolVersion"]["version"], 2, "{published:#}");
    // b's next new case takes version 2 and walks on under it.
    let case = raise_on(&b.url).await;
    assert_eq!(case["protocolVersion"], 2);
    assert_eq!(escalate_on(&b.url, &case["id"]).await["currentStage"]["name"], "Managers, first");
    // c, which has neither raised nor published, reads that case under
    // version 2 at its first look.
    let read = "query($id: ID!) { case(id: $id) { protocolVersion currentStage { name } } }";
    let seen = post_ok(&client, &c.url, &manager, read, json!({ "id": case["id"] })).await;
    assert_eq!(
        seen["case"],
        json!({ "protocolVersion": 2, "currentStage": { "name": "Managers, first" } })
    );
    let token = token(Role::BoardChair, "wb-police");
    let listed = post_ok(&client, &c.url, &token, LIST, json!({})).await;
    let versions: Vec<&Value> = listed["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["id"] == "western-bay")
        .collect();
    assert_eq!(versions.len(), 2);
}

db_test!(two_publishes_of_one_version_at_once_store_one, |app| {
    let wb = partnership_id(&app, "western-bay").await;
    let token = admin(&app, "western-bay");
    let vars = json!({ "p": wb, "d": version_2() });
    let (a, b) = tokio::join!(
        app.gql_as(&token, PUBLISH, vars.clone()),
        app.gql_as(&token, PUBLISH, vars.clone())
    );
    let codes: Vec<Value> =
        [&a, &b].iter().map(|r| r["errors"][0]["extensions"]["code"].clone()).collect();
    let stored =
        [&a, &b].iter().filter(|r| r["data"]["publishProtocolVersion"]["version"] == 2).count();
    assert_eq!(stored, 1, "{a:#} {b:#}");
    assert!(codes.contains(&json!("CONFLICT")), "{a:#} {b:#}");
    assert_eq!(versions(&app, "western-bay").await.len(), 2);
});

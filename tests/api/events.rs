//! The event log and the change feed: one event per change, none for a
//! change that rolled back, scoped like `cases`, and every event exactly
//! once to a reader following `endCursor` while two processes write.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use escalations::domain::role::Role;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::{Backend, TestApp, TestDb};

const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id version } } }";
const ADD_RECORD: &str =
    "mutation($input: AddRecordInput!) { addRecord(input: $input) { record { id } } }";
const FEED: &str = "query($after: String, $filter: CaseEventFilter) { caseEvents(after: $after, first: 100, filter: $filter) { pageInfo { hasNextPage endCursor } nodes { id type caseId partnershipId raisingAgencyId receivingAgencyId stageBefore stageAfter status version requestId } } }";

/// An event as the test compares it: type, case, stages, status, version.
type Seen<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, &'a str, i64);

async fn raise(app: &TestApp, child: &str) -> String {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let data = app
        .gql_as_ok(&token, RAISE, json!({ "input": { "receivingAgencyId": receiving, "childReference": child, "category": "referral-response", "summary": "Disputed decision." } }))
        .await;
    data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned()
}

/// Every event `token` sees, following `endCursor` to the end.
async fn feed(app: &TestApp, token: &str, filter: Value) -> Vec<Value> {
    let (mut all, mut after) = (Vec::new(), Value::Null);
    loop {
        let data = app.gql_as_ok(token, FEED, json!({ "after": after, "filter": filter })).await;
        let page = &data["caseEvents"];
        all.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return all;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

db_test!(every_change_appends_one_event_with_its_type_stages_and_version, |app| {
    let id = raise(&app, "EV-1").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let csc = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let owner = app.agency_id("wb-swansea-csc").await;
    let due = (chrono::Utc::now().date_naive() + chrono::Days::new(14)).to_string();
    app.gql_as_ok(&police, ADD_RECORD, json!({ "input": { "caseId": id, "kind": "DISCUSSION", "facts": "Phoned the duty team." } })).await;
    app.gql_as_ok(
        &csc,
        "mutation($i: RecordAgencyViewInput!) { recordAgencyView(input: $i) { view { stage } } }",
        json!({ "i": { "caseId": id, "view": "Threshold not met." } }),
    )
    .await;
    app.gql_as_ok(&police, "mutation($i: AgreeActionInput!) { agreeAction(input: $i) { action { stage } } }", json!({ "i": { "caseId": id, "description": "Share the report.", "ownerAgencyId": owner, "dueOn": due } })).await;
    app.gql_as_ok(
        &manager,
        "mutation($i: EscalateCaseInput!) { escalateCase(input: $i) { case { stage } } }",
        json!({ "i": { "caseId": id, "reason": "UNRESOLVED" } }),
    )
    .await;
    app.gql_as_ok(
        &manager,
        "mutation($i: ResolveCaseInput!) { resolveCase(input: $i) { case { status } } }",
        json!({ "i": { "caseId": id, "outcome": "Agreed a joint visit." } }),
    )
    .await;
    app.gql_as_ok(&police, "mutation($id: ID!) { giveFeedback(input: { caseId: $id, resolved: true, wouldUseAgain: true }) { feedback { id } } }", json!({ "id": id })).await;
    let other = raise(&app, "EV-2").await;
    app.gql_as_ok(
        &police,
        "mutation($i: WithdrawCaseInput!) { withdrawCase(input: $i) { case { status } } }",
        json!({ "i": { "caseId": other, "reason": "Resolved between the agencies." } }),
    )
    .await;

    let events = feed(&app, &police, Value::Null).await;
    let seen: Vec<Seen> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["caseId"].as_str().unwrap(),
                e["stageBefore"].as_str(),
                e["stageAfter"].as_str().unwrap(),
                e["status"].as_str().unwrap(),
                e["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("CASE_RAISED", id.as_str(), None, "informal", "OPEN", 1),
            ("RECORD_ADDED", id.as_str(), Some("informal"), "informal", "OPEN", 2),
            ("VIEW_RECORDED", id.as_str(), Some("informal"), "informal", "OPEN", 3),
            ("ACTION_AGREED", id.as_str(), Some("informal"), "informal", "OPEN", 4),
            ("CASE_ESCALATED", id.as_str(), Some("informal"), "stage-1", "OPEN", 5),
            ("CASE_RESOLVED", id.as_str(), Some("stage-1"), "stage-1", "RESOLVED", 6),
            ("FEEDBACK_GIVEN", id.as_str(), Some("stage-1"), "stage-1", "RESOLVED", 7),
            ("CASE_RAISED", other.as_str(), None, "informal", "OPEN", 1),
            ("CASE_WITHDRAWN", other.as_str(), Some("informal"), "informal", "WITHDRAWN", 2),
        ]
    );
    // Ids and states only: nothing of the case's text.
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("EV-1") && !text.contains("Disputed") && !text.contains("Phoned"));
    // Filters: by type and by case.
    let raised = feed(&app, &police, json!({ "types": ["CASE_RAISED"] })).await;
    assert_eq!(raised.len(), 2);
    let of_other = feed(&app, &police, json!({ "caseId": other })).await;
    assert_eq!(of_other.len(), 2);
    // A cursor that is not one is refused.
    let err = app.gql_as_err(&police, FEED, json!({ "after": "nope" })).await;
    assert_eq!(
        (&err["extensions"]["code"], &err["extensions"]["field"]),
        (&json!("BAD_USER_INPUT"), &json!("after"))
    );
});

db_test!(the_feed_is_scoped_like_the_cases, |app| {
    raise(&app, "EV-3").await;
    let sees = |events: Vec<Value>| events.len();
    let csc = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let health = app.token(Role::Practitioner, Some("wb-health"), "western-bay");
    let other_chair = app.token(Role::BoardChair, None, "pan-sussex");
    let stats = app.client_token("statistics:read", None, "western-bay");
    let poller = app.client_token("cases:read", Some("wb-police"), "western-bay");
    assert_eq!(sees(feed(&app, &csc, Value::Null).await), 1, "the receiving agency");
    assert_eq!(sees(feed(&app, &chair, Value::Null).await), 1, "the partnership's chair");
    assert_eq!(sees(feed(&app, &poller, Value::Null).await), 1, "the raising agency's poller");
    assert_eq!(sees(feed(&app, &health, Value::Null).await), 0, "another agency");
    assert_eq!(sees(feed(&app, &other_chair, Value::Null).await), 0, "another partnership");
    assert_eq!(sees(feed(&app, &stats, Value::Null).await), 0, "a statistics client");
});

db_test!(a_change_that_rolls_back_leaves_no_event, |app| {
    let id = raise(&app, "EV-4").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    // Fail every change after its rows are written: the event is the last
    // row a change writes before it commits.
    let (create, drop) = match app.backend {
        Backend::Sqlite => (
            vec![
                "CREATE TRIGGER fail_event BEFORE INSERT ON change_event BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            ],
            vec!["DROP TRIGGER fail_event"],
        ),
        Backend::Postgres => (
            vec![
                "CREATE FUNCTION fail_event() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER fail_event BEFORE INSERT ON change_event FOR EACH ROW EXECUTE FUNCTION fail_event()",
            ],
            vec!["DROP TRIGGER fail_event ON change_event", "DROP FUNCTION fail_event()"],
        ),
    };
    for sql in create {
        app.db.execute_unprepared(sql).await.unwrap();
    }
    let err = app
        .gql_as_err(&police, ADD_RECORD, json!({ "input": { "caseId": id, "kind": "DISCUSSION", "facts": "Lost with its change." } }))
        .await;
    assert_eq!(err["extensions"]["code"], "INTERNAL_SERVER_ERROR", "{err:#}");
    for sql in drop {
        app.db.execute_unprepared(sql).await.unwrap();
    }
    let data = app
        .gql_as_ok(
            &police,
            "query($id: ID!) { case(id: $id) { version records { totalCount } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["case"], json!({ "version": 1, "records": { "totalCount": 0 } }));
    let events = feed(&app, &police, Value::Null).await;
    assert_eq!(events.len(), 1, "only the raise: {events:#?}");
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

/// Two server processes on one PostgreSQL each make 500 changes while a
/// reader follows the feed by `endCursor`: it sees all of them, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_following_the_feed_sees_every_event_once_while_two_processes_write() {
    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let a = crate::processes::start(db.url());
    let b = crate::processes::start(db.url());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let police = crate::helpers::mint(escalations::auth::MintClaims {
        sub: "events-police".into(),
        role: Some(Role::Practitioner),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..Default::default()
    });
    let post = move |url: String, query: &'static str, vars: Value| {
        let (client, token) = (client.clone(), police.clone());
        async move {
            let res = client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({ "query": query, "variables": vars }))
                .send()
                .await
                .unwrap();
            let body: Value = res.json().await.unwrap();
            assert!(body.get("errors").is_none(), "{body:#}");
            body["data"].clone()
        }
    };
    let receiving = {
        let data =
            post(a.url.clone(), "{ partnerships { code agencies { id code } } }", json!({})).await;
        let wb = data["partnerships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == "western-bay")
            .unwrap()
            .clone();
        wb["agencies"].as_array().unwrap().iter().find(|x| x["code"] == "wb-swansea-csc").unwrap()["id"].as_str().unwrap().to_owned()
    };
    let mut cases = Vec::new();
    for i in 0..10 {
        let data = post(a.url.clone(), RAISE, json!({ "input": { "receivingAgencyId": receiving, "childReference": format!("EVC-{i}"), "category": "referral-response", "summary": "Disputed decision." } })).await;
        cases.push(data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned());
    }
    const PER_PROCESS: usize = 500;
    const WORKERS: usize = 4;
    let mut writers = Vec::new();
    for (p, url) in [a.url.clone(), b.url.clone()].into_iter().enumerate() {
        for w in 0..WORKERS {
            let (post, url, cases) = (post.clone(), url.clone(), cases.clone());
            writers.push(tokio::spawn(async move {
                for n in 0..PER_PROCESS / WORKERS {
                    let case = &cases[(p * 7 + w * 3 + n) % cases.len()];
                    post(url.clone(), ADD_RECORD, json!({ "input": { "caseId": case, "kind": "DISCUSSION", "facts": "Concurrent change." } })).await;
                }
            }));
        }
    }
    // The reader follows the feed through one process while both write.
    let expected = cases.len() + 2 * PER_PROCESS;
    let (mut seen, mut order, mut after) = (HashSet::new(), Vec::new(), Value::Null);
    let started = Instant::now();
    while seen.len() < expected {
        assert!(started.elapsed() < Duration::from_secs(120), "saw {} of {expected}", seen.len());
        let data = post(a.url.clone(), FEED, json!({ "after": after })).await;
        let page = &data["caseEvents"];
        for e in page["nodes"].as_array().unwrap() {
            let id = e["id"].as_str().unwrap().to_owned();
            assert!(seen.insert(id.clone()), "event {id} seen twice");
            order.push((e["caseId"].as_str().unwrap().to_owned(), e["version"].as_i64().unwrap()));
        }
        if !page["pageInfo"]["endCursor"].is_null() {
            after = page["pageInfo"]["endCursor"].clone();
        }
        if page["nodes"].as_array().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    // Nothing more comes, and each case's versions arrive in order.
    let data = post(b.url.clone(), FEED, json!({ "after": after })).await;
    assert_eq!(data["caseEvents"]["nodes"], json!([]));
    let mut last: HashMap<String, i64> = HashMap::new();
    for (case, version) in order {
        let prev = last.insert(case.clone(), version).unwrap_or(0);
        assert_eq!(version, prev + 1, "case {case}");
    }
    assert_eq!(seen.len(), expected);
}

const TIMELINE: &str = "query($id: ID!, $after: String) { case(id: $id) { events(first: 2, after: $after) { pageInfo { hasNextPage hasPreviousPage endCursor } nodes { id type caseId version } } } }";

db_test!(a_case_shows_its_own_events_a_page_at_a_time, |app| {
    let id = raise(&app, "EV-10").await;
    let other = raise(&app, "EV-11").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    for facts in ["One.", "Two."] {
        app.gql_as_ok(
            &police,
            ADD_RECORD,
            json!({ "input": { "caseId": id, "kind": "DISCUSSION", "facts": facts } }),
        )
        .await;
    }
    app.gql_as_ok(
        &police,
        ADD_RECORD,
        json!({ "input": { "caseId": other, "kind": "DISCUSSION", "facts": "Else." } }),
    )
    .await;
    // Follow the case's own cursor to the end.
    let (mut seen, mut after, mut pages) = (Vec::new(), Value::Null, 0);
    loop {
        let data = app.gql_as_ok(&police, TIMELINE, json!({ "id": id, "after": after })).await;
        let page = &data["case"]["events"];
        assert_eq!(page["pageInfo"]["hasPreviousPage"], pages > 0);
        pages += 1;
        seen.extend(page["nodes"].as_array().unwrap().iter().cloned());
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 2, "three events, two a page");
    let timeline: Vec<(&str, i64)> = seen
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(timeline, [("CASE_RAISED", 1), ("RECORD_ADDED", 2), ("RECORD_ADDED", 3)]);
    assert!(seen.iter().all(|e| e["caseId"] == json!(id)), "only this case's events");
    // The same events, with the same ids, as the feed filtered to the case.
    let feed_ids: Vec<Value> = feed(&app, &police, json!({ "caseId": id }))
        .await
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    let ids: Vec<Value> = seen.iter().map(|e| e["id"].clone()).collect();
    assert_eq!(ids, feed_ids);
    // A cursor that is not one is refused, naming the argument.
    let err = app.gql_as_err(&police, TIMELINE, json!({ "id": id, "after": "x1" })).await;
    assert_eq!(
        (&err["extensions"]["code"], &err["extensions"]["field"]),
        (&json!("BAD_USER_INPUT"), &json!("after"))
    );
    // Another agency does not find the case, so neither its events.
    let health = app.token(Role::Practitioner, Some("wb-health"), "western-bay");
    let err = app.gql_as_err(&health, TIMELINE, json!({ "id": id })).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
});

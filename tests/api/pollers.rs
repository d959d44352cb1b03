//! What systems that poll for changes use: `cases(filter: {updatedAfter,
//! childReference})`, `cases(orderBy: UPDATED_AT)` and `nodes(ids:)`.

use chrono::{DateTime, Duration, DurationRound, Utc};
use entity::{access_log, case};
use escalations::domain::role::Role;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::{TestApp, open_case};

const RAISE: &str = "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }";
const ADD_RECORD: &str = "mutation($i: AddRecordInput!) { addRecord(input: $i) { record { id } } }";
const UPDATED_AFTER: &str = "query($t: DateTime!) { cases(filter: { updatedAfter: $t }) { totalCount nodes { id updatedAt } } }";
const BY_REFERENCE: &str =
    "query($r: String!) { cases(filter: { childReference: $r }) { totalCount nodes { id } } }";
const BY_UPDATE: &str = "query($after: String) { cases(orderBy: UPDATED_AT, first: 2, after: $after) { nodes { id updatedAt } pageInfo { hasNextPage endCursor } } }";
const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }";

/// Raises a case as a practitioner of `raising` (a code) in `partnership`;
/// returns its id.
async fn raise(
    app: &TestApp,
    partnership: &str,
    raising: &str,
    receiving: &str,
    category: &str,
    reference: &str,
) -> String {
    let token = app.token(Role::Practitioner, Some(raising), partnership);
    let receiving = app.agency_id(receiving).await;
    let input = json!({ "receivingAgencyId": receiving, "childReference": reference, "category": category, "summary": "Disputed decision." });
    let data = app.gql_as_ok(&token, RAISE, json!({ "i": input })).await;
    data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned()
}

/// A Western Bay case raised by `raising` against `receiving`.
async fn raise_wb(app: &TestApp, raising: &str, receiving: &str, reference: &str) -> String {
    raise(app, "western-bay", raising, receiving, "other", reference).await
}

/// Adds a record to a case as a practitioner of `agency`: a change.
async fn add_record(app: &TestApp, agency: &str, case: &str) {
    let token = app.token(Role::Practitioner, Some(agency), "western-bay");
    let input = json!({ "caseId": case, "kind": "DISCUSSION", "facts": "Spoke again." });
    app.gql_as_ok(&token, ADD_RECORD, json!({ "i": input })).await;
}

fn ids_of(nodes: &Value) -> Vec<String> {
    nodes.as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// The `extensions` of a request's single error.
async fn refusal(app: &TestApp, token: &str, query: &str, vars: Value) -> Value {
    app.gql_as_err(token, query, vars).await["extensions"].clone()
}

db_test!(updated_after_returns_exactly_the_cases_changed_since, |app| {
    let police = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let a = raise_wb(&app, "wb-police", "wb-swansea-csc", "SWP-1").await;
    let b = raise_wb(&app, "wb-police", "wb-health", "SWP-2").await;
    let c = raise_wb(&app, "wb-education", "wb-police", "SWP-3").await;
    let elsewhere = raise_wb(&app, "wb-health", "wb-education", "SWP-4").await;
    // What a poller stores: the latest change it has seen.
    let all = app.gql_as_ok(&police, "{ cases { nodes { id updatedAt } } }", json!({})).await;
    let seen = all["cases"]["nodes"].as_array().unwrap();
    assert_eq!(seen.len(), 3, "the police see their three cases");
    let since = seen.iter().map(|n| at(&n["updatedAt"])).max().unwrap();
    let body = app.gql_as_ok(&police, UPDATED_AFTER, json!({ "t": since })).await;
    assert_eq!(body["cases"]["totalCount"], 0, "nothing changed after the latest change");

    add_record(&app, "wb-health", &b).await;
    // A change the police cannot see does not show.
    add_record(&app, "wb-health", &elsewhere).await;
    let body = app.gql_as_ok(&police, UPDATED_AFTER, json!({ "t": since })).await;
    assert_eq!(ids_of(&body["cases"]["nodes"]), vec![b.clone()], "only the changed case");
    assert_eq!(body["cases"]["totalCount"], 1);
    let changed = at(&body["cases"]["nodes"][0]["updatedAt"]);
    assert!(changed > since);
    // Strictly after: the change's own instant no longer matches.
    let body = app.gql_as_ok(&police, UPDATED_AFTER, json!({ "t": changed })).await;
    assert_eq!(body["cases"]["totalCount"], 0);
    // Just before it: the change again.
    let before = changed - Duration::microseconds(1);
    let body = app.gql_as_ok(&police, UPDATED_AFTER, json!({ "t": before })).await;
    assert_eq!(ids_of(&body["cases"]["nodes"]), vec![b.clone()]);
    // The health board sees both its changes; the police's others are old.
    let health = app.token(Role::Manager, Some("wb-health"), "western-bay");
    let body = app.gql_as_ok(&health, UPDATED_AFTER, json!({ "t": since })).await;
    let mut got = ids_of(&body["cases"]["nodes"]);
    got.sort();
    let mut want = vec![b, elsewhere];
    want.sort();
    assert_eq!(got, want);
    assert!(!got.contains(&a) && !got.contains(&c));
});

db_test!(child_reference_finds_the_agencys_case_and_no_other_agencys, |app| {
    let ours = raise_wb(&app, "wb-police", "wb-swansea-csc", "SWP-2026-0042").await;
    raise_wb(&app, "wb-police", "wb-swansea-csc", "SWP-2026-0043").await;
    // Another agency's case with the same number, and another partnership's.
    let theirs = raise_wb(&app, "wb-health", "wb-education", "SWP-2026-0042").await;
    let sussex =
        raise(&app, "pan-sussex", "ps-police", "ps-bh-csc", "timeliness", "SWP-2026-0042").await;

    let police = app.token(Role::Manager, Some("wb-police"), "western-bay");
    // The same parsing as raiseCase's: surrounding whitespace is ignored.
    let body = app.gql_as_ok(&police, BY_REFERENCE, json!({ "r": " SWP-2026-0042 " })).await;
    assert_eq!(ids_of(&body["cases"]["nodes"]), vec![ours.clone()]);
    assert_eq!(body["cases"]["totalCount"], 1);
    let client = app.client_token("cases:read", Some("wb-health"), "western-bay");
    let body = app.gql_as_ok(&client, BY_REFERENCE, json!({ "r": "SWP-2026-0042" })).await;
    assert_eq!(ids_of(&body["cases"]["nodes"]), vec![theirs.clone()], "a cases:read client");
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let body = app.gql_as_ok(&chair, BY_REFERENCE, json!({ "r": "SWP-2026-0042" })).await;
    let got = ids_of(&body["cases"]["nodes"]);
    assert_eq!(got.len(), 2, "the partnership's two: {got:?}");
    assert!(got.contains(&ours) && got.contains(&theirs) && !got.contains(&sussex));
    // Exact match: a prefix or another case is not the number.
    let body = app.gql_as_ok(&police, BY_REFERENCE, json!({ "r": "SWP-2026-004" })).await;
    assert_eq!(body["cases"]["totalCount"], 0);

    // The answer tells which case is about that child: a read of its
    // child reference, logged though `childReference` was not selected.
    let logged = access_log::Entity::find()
        .filter(access_log::Column::CaseId.eq(ours.parse::<uuid::Uuid>().unwrap()))
        .filter(access_log::Column::What.eq("child_reference"))
        .filter(access_log::Column::ActorSub.eq("user-manager-wb-police"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(logged, 1);

    for bad in ["John Smith", "", "SWP--1"] {
        let ext = refusal(&app, &police, BY_REFERENCE, json!({ "r": bad })).await;
        assert_eq!(ext["code"], "BAD_USER_INPUT", "{bad:?}");
        assert_eq!(ext["field"], "childReference", "{bad:?}");
    }
});

/// Stores Western Bay cases raised by the police behind the API, with the
/// given `updated_at` each (ties included); returns their ids.
async fn store_updated(app: &TestApp, times: &[DateTime<Utc>]) -> Vec<String> {
    let wb = app.western_bay().await;
    let csc = wb.receivers[0];
    let mut out = Vec::new();
    for (i, &updated) in times.iter().enumerate() {
        let id = uuid::Uuid::now_v7();
        let raised = updated - Duration::days(30) + Duration::minutes(i as i64);
        let mut case = open_case(&wb, id, csc, "informal", i, raised);
        case.updated_at = Set(updated);
        case::Entity::insert(case).exec_without_returning(&app.db).await.unwrap();
        out.push(id.to_string());
    }
    out
}

fn hex(raw: &str) -> String {
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

db_test!(updated_at_order_pages_through_every_case_once_oldest_change_first, |app| {
    let t = (Utc::now() - Duration::hours(1)).duration_trunc(Duration::seconds(1)).unwrap();
    let s = Duration::seconds(1);
    // Three cases share one instant: the id breaks the tie, across pages.
    let times = [t, t + s, t - s, t, t + s + s, t, t - s - s];
    let stored = store_updated(&app, &times).await;
    let changed = raise_wb(&app, "wb-police", "wb-health", "SWP-99").await;
    // A change moves an old case to the end.
    add_record(&app, "wb-swansea-csc", &stored[2]).await;
    let mut want: Vec<(DateTime<Utc>, String)> =
        stored.iter().cloned().enumerate().map(|(i, id)| (times[i], id)).collect();
    want.retain(|(_, id)| *id != stored[2]);
    want.sort_by(|x, y| {
        (x.0, x.1.parse::<uuid::Uuid>().unwrap()).cmp(&(y.0, y.1.parse().unwrap()))
    });
    let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();

    let police = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let (mut got, mut after, mut pages) = (Vec::new(), Value::Null, 0);
    loop {
        let body = app.gql_as_ok(&police, BY_UPDATE, json!({ "after": after })).await;
        let page = &body["cases"];
        got.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| (at(&n["updatedAt"]), n["id"].as_str().unwrap().to_owned())),
        );
        pages += 1;
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 4, "eight cases, two a page");
    let order: Vec<String> = got.iter().map(|(_, id)| id.clone()).collect();
    // The raised case and the changed one come last, in the order they
    // changed; every case once.
    let mut expected = want;
    expected.push(changed);
    expected.push(stored[2].clone());
    assert_eq!(order, expected);
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "oldest change first");

    // RAISED_AT (the default) keeps its cursors: a stored one still works,
    // and each order refuses the other's.
    let body = app
        .gql_as_ok(
            &police,
            "{ cases(first: 1) { nodes { id raisedAt } pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let first = &body["cases"]["nodes"][0];
    let raised_cursor = body["cases"]["pageInfo"]["endCursor"].clone();
    let old = hex(&format!(
        "{}|{}",
        at(&first["raisedAt"]).timestamp_micros(),
        first["id"].as_str().unwrap()
    ));
    assert_eq!(raised_cursor, json!(old), "the cursor of RAISED_AT is unchanged");
    let body = app
        .gql_as_ok(
            &police,
            "query($a: String) { cases(orderBy: RAISED_AT, after: $a) { nodes { id } } }",
            json!({ "a": raised_cursor }),
        )
        .await;
    assert_eq!(body["cases"]["nodes"].as_array().unwrap().len(), 7, "the eight but the first");
    let ext = refusal(&app, &police, BY_UPDATE, json!({ "after": raised_cursor })).await;
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_USER_INPUT"), &json!("after")));
    let body = app.gql_as_ok(&police, BY_UPDATE, json!({ "after": null })).await;
    let updated_cursor = body["cases"]["pageInfo"]["endCursor"].clone();
    let ext = refusal(
        &app,
        &police,
        "query($a: String) { cases(after: $a) { nodes { id } } }",
        json!({ "a": updated_cursor }),
    )
    .await;
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_USER_INPUT"), &json!("after")));
});

db_test!(nodes_returns_cases_in_order_with_null_for_what_the_caller_cannot_see, |app| {
    let one = raise_wb(&app, "wb-police", "wb-swansea-csc", "SWP-1").await;
    let two = raise_wb(&app, "wb-education", "wb-police", "SWP-2").await;
    let theirs = raise_wb(&app, "wb-health", "wb-education", "SWP-3").await;
    let sussex = raise(&app, "pan-sussex", "ps-police", "ps-bh-csc", "timeliness", "SWP-4").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let police = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let asked = json!([two, theirs, unknown, one, sussex, two]);
    let body = app
        .gql_as(
            &police,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id raisingAgency { code } } }",
            json!({ "ids": asked }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(
        body["data"]["nodes"],
        json!([
            { "id": two, "raisingAgency": { "code": "wb-education" } },
            null,
            null,
            { "id": one, "raisingAgency": { "code": "wb-police" } },
            null,
            { "id": two, "raisingAgency": { "code": "wb-education" } },
        ]),
        "in order; another agency's, another partnership's and an unknown id alike null"
    );
    // Another agency sees its own where the police saw null.
    let health = app.client_token("cases:read", Some("wb-health"), "western-bay");
    let body = app.gql_as_ok(&health, NODES, json!({ "ids": [one, theirs] })).await;
    assert_eq!(body["nodes"], json!([null, { "id": theirs }]));
    let body = app.gql_as_ok(&police, NODES, json!({ "ids": [] })).await;
    assert_eq!(body["nodes"], json!([]));
    // A statistics:read client sees no case; an anonymous caller, nothing.
    let stats = app.client_token("statistics:read", None, "western-bay");
    let body = app.gql_as_ok(&stats, NODES, json!({ "ids": [one, two] })).await;
    assert_eq!(body["nodes"], json!([null, null]));
    let ext = app.gql_err(NODES, json!({ "ids": [one] })).await["extensions"].clone();
    assert_eq!(ext["code"], "UNAUTHENTICATED");

    let ext = refusal(&app, &police, NODES, json!({ "ids": [one, "case-1"] })).await;
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_USER_INPUT"), &json!("ids")));
    let many: Vec<String> = (0..101).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let ext = refusal(&app, &police, NODES, json!({ "ids": many })).await;
    assert_eq!((&ext["code"], &ext["field"]), (&json!("BAD_USER_INPUT"), &json!("ids")));
    // The cost counts the ids asked for: a heavy selection passes for one
    // id and is refused for a hundred.
    let heavy = "query($ids: [ID!]!) { nodes(ids: $ids) { summary childReference records(first: 20) { nodes { facts opinions } } } }";
    app.gql_as_ok(&police, heavy, json!({ "ids": [one] })).await;
    let ext = refusal(&app, &police, heavy, json!({ "ids": &many[..100] })).await;
    assert_eq!((&ext["code"], &ext["limit"]), (&json!("BAD_USER_INPUT"), &json!("cost")));
});

const NODES_PAGE: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { id childReference raisingAgency { code } receivingAgency { code name } currentStage { key name } lastRecord { facts } } }";

async fn statements_for_nodes(app: &TestApp, token: &str, ids: &[String]) -> u64 {
    let before = escalations::db::statements_executed();
    let data = app.gql_as_ok(token, NODES_PAGE, json!({ "ids": ids })).await;
    let after = escalations::db::statements_executed();
    let nodes = data["nodes"].as_array().unwrap();
    assert_eq!(ids_of(&data["nodes"]), ids.to_vec(), "every case, in order");
    for node in nodes {
        let i = node["childReference"].as_str().unwrap().trim_start_matches("SWP-");
        assert_eq!(node["lastRecord"]["facts"], format!("last {i}"), "the latest record");
        assert_eq!(node["raisingAgency"]["code"], "wb-police");
    }
    after - before
}

db_test!(nodes_runs_the_same_statements_for_ten_and_a_hundred_ids, |app| {
    crate::lists::store_cases(&app, 100).await;
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let all = app.gql_as_ok(&token, "{ cases(first: 100) { nodes { id } } }", json!({})).await;
    let mut every = ids_of(&all["cases"]["nodes"]);
    // Not the list's order.
    every.reverse();
    let small = statements_for_nodes(&app, &token, &every[..10]).await;
    let large = statements_for_nodes(&app, &token, &every).await;
    assert_eq!(small, large, "statements do not grow with the ids");
    // The cases, the access-log insert, the latest records, the agencies.
    assert!(large <= 4, "{large} statements for 100 ids");
});

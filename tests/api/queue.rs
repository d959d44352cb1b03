//! Who must act next (issue 13): `Case.awaiting` and `myQueue`, over HTTP on
//! both databases, against `viewerCan`.

use escalations::domain::role::Role;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;

const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id dueOn } } }";
const ADD_RECORD: &str =
    "mutation($input: AddRecordInput!) { addRecord(input: $input) { record { id } } }";
const QUEUE: &str = "query($first: Int!, $after: String) { myQueue(first: $first, after: $after) { totalCount overdueCount pageInfo { hasNextPage endCursor } edges { cursor node { id } } } }";
const CASE: &str = "query($id: ID!) { case(id: $id) { id viewerCan { addRecord resolve escalate } awaiting { party agency { code } roles milestone dueOn overdue } } }";

fn clock(at: &str) {
    escalations::service::audit::set_clock_for_tests(Some(at.parse().unwrap()));
}

/// The ids in the caller's whole queue, in order, read `first` at a time.
async fn queue_of(app: &TestApp, token: &str, first: i64) -> (Vec<String>, Value) {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app.gql_as_ok(token, QUEUE, json!({ "first": first, "after": after })).await;
        let q = &data["myQueue"];
        let counts = json!({ "total": q["totalCount"], "overdue": q["overdueCount"] });
        for e in q["edges"].as_array().unwrap() {
            ids.push(e["node"]["id"].as_str().unwrap().to_owned());
        }
        if q["pageInfo"]["hasNextPage"] != true {
            return (ids, counts);
        }
        after = q["pageInfo"]["endCursor"].clone();
        assert!(ids.len() < 1000, "the queue ends");
    }
}

/// Whether the case, read by `token` (of `role` at `agency`, none for the
/// board chair), awaits that caller; and if so, that `viewerCan` lets the
/// caller take the awaited action.
async fn awaits_me(app: &TestApp, token: &str, id: &str, role: &str, agency: Option<&str>) -> bool {
    let data = app.gql_as_ok(token, CASE, json!({ "id": id })).await;
    let case = &data["case"];
    let mine = case["awaiting"].as_array().unwrap().iter().find(|a| {
        let party_ok = match agency {
            None => a["party"] == "BOARD",
            Some(code) => a["agency"]["code"] == code,
        };
        party_ok && a["roles"].as_array().unwrap().iter().any(|r| r == role)
    });
    if let Some(a) = mine {
        let can = &case["viewerCan"];
        let may = if a["milestone"].is_null() {
            can["resolve"] == true || can["escalate"] == true
        } else {
            can["addRecord"] == true
        };
        assert!(may, "awaited but viewerCan says no: {data:#}");
    }
    mine.is_some()
}

db_test!(the_queue_follows_the_milestone_owed_from_one_side_to_the_other, |app| {
    let cyps = app.agency_id("ro-cyps").await;
    let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    let line_manager = app.token(Role::Manager, Some("ro-cyps"), "rotherham");
    let practitioner = app.token(Role::Practitioner, Some("ro-cyps"), "rotherham");
    let board = app.token(Role::BoardChair, None, "rotherham");
    // Two challenges raised on Thursday 24 December 2026 and Monday 4
    // January 2027: forms due 31 December and 7 January.
    let raise = |child: &str| json!({ "input": { "receivingAgencyId": cyps, "childReference": child, "category": "conference-practice", "route": "challenge", "summary": "Report not shared." } });
    clock("2027-01-04T10:00:00Z");
    let later =
        app.gql_as_ok(&chair, RAISE, raise("RMBC-2027-0002")).await["raiseCase"]["case"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    clock("2026-12-24T10:00:00Z");
    let sooner =
        app.gql_as_ok(&chair, RAISE, raise("RMBC-2026-0001")).await["raiseCase"]["case"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    clock("2027-01-05T10:00:00Z");
    // The chair owes both forms: soonest due first, one page at a time; the
    // first is overdue.
    let (ids, counts) = queue_of(&app, &chair, 1).await;
    assert_eq!(ids, [sooner.clone(), later.clone()]);
    assert_eq!(counts, json!({ "total": 2, "overdue": 1 }));
    let data = app.gql_as_ok(&chair, CASE, json!({ "id": sooner })).await;
    assert_eq!(
        data["case"]["awaiting"],
        json!([{ "party": "RAISING", "agency": { "code": "ro-safeguarding-unit" }, "roles": ["SAFEGUARDING_LEAD"], "milestone": "form", "dueOn": "2026-12-31", "overdue": true }])
    );
    for (token, role, agency, want) in [
        (&chair, "SAFEGUARDING_LEAD", Some("ro-safeguarding-unit"), true),
        (&line_manager, "MANAGER", Some("ro-cyps"), false),
        (&practitioner, "PRACTITIONER", Some("ro-cyps"), false),
        (&board, "BOARD_CHAIR", None, false),
    ] {
        assert_eq!(awaits_me(&app, token, &sooner, role, agency).await, want, "{role}");
        let (mine, _) = queue_of(&app, token, 5).await;
        assert_eq!(mine.contains(&sooner), want, "myQueue agrees with awaiting: {role}");
    }
    // The form is in: the line manager owes the response, the chair nothing.
    app.gql_as_ok(
        &chair,
        ADD_RECORD,
        json!({ "input": { "caseId": sooner, "kind": "FORM", "facts": "Sent." } }),
    )
    .await;
    assert_eq!(queue_of(&app, &chair, 5).await.0, [later]);
    let (mine, counts) = queue_of(&app, &line_manager, 5).await;
    assert_eq!(mine, std::slice::from_ref(&sooner));
    assert_eq!(counts, json!({ "total": 1, "overdue": 0 }));
    assert!(awaits_me(&app, &line_manager, &sooner, "MANAGER", Some("ro-cyps")).await);
    // Withdrawn: nobody's.
    app.gql_as_ok(
        &chair,
        "mutation($i: WithdrawCaseInput!) { withdrawCase(input: $i) { case { id } } }",
        json!({ "i": { "caseId": sooner, "reason": "Raised in error." } }),
    )
    .await;
    assert!(queue_of(&app, &line_manager, 5).await.0.is_empty());
    let data = app.gql_as_ok(&chair, CASE, json!({ "id": sooner })).await;
    assert_eq!(data["case"]["awaiting"], json!([]));
});

db_test!(a_stage_without_milestones_waits_on_both_leads, |app| {
    let csc = app.agency_id("wb-swansea-csc").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let csc_practitioner = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let csc_manager = app.token(Role::Manager, Some("wb-swansea-csc"), "western-bay");
    let other = app.token(Role::Practitioner, Some("wb-npt-csc"), "western-bay");
    let client = app.client_token("cases:read", Some("wb-swansea-csc"), "western-bay");
    let data = app.gql_as_ok(&police, RAISE, json!({ "input": { "receivingAgencyId": csc, "childReference": "SWP-Q-001", "category": "referral-response", "summary": "Disputed." } })).await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    for (token, role, agency, want) in [
        (&police, "PRACTITIONER", "wb-police", true),
        (&csc_practitioner, "PRACTITIONER", "wb-swansea-csc", true),
        (&csc_manager, "MANAGER", "wb-swansea-csc", false),
    ] {
        assert_eq!(awaits_me(&app, token, &id, role, Some(agency)).await, want, "{role} {agency}");
        assert_eq!(queue_of(&app, token, 10).await.0.contains(&id), want, "{role} {agency}");
    }
    // Another agency's practitioner, and a machine client, have nothing.
    assert!(queue_of(&app, &other, 10).await.0.is_empty());
    let (ids, counts) = queue_of(&app, &client, 10).await;
    assert!(ids.is_empty());
    assert_eq!(counts, json!({ "total": 0, "overdue": 0 }));
    // Bad arguments are refused, and an anonymous caller has no queue.
    let err = app.gql_as_err(&police, QUEUE, json!({ "first": 0 })).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    let err = app.gql_as_err(&police, QUEUE, json!({ "first": 5, "after": "zz" })).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    let body = app.gql(QUEUE, json!({ "first": 5 })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body:#}");
});

db_test!(cases_without_rows_are_backfilled_once, |app| {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let csc = app.agency_id("wb-swansea-csc").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let data = app.gql_as_ok(&police, RAISE, json!({ "input": { "receivingAgencyId": csc, "childReference": "SWP-B-001", "category": "referral-response", "summary": "Disputed." } })).await;
    let id: uuid::Uuid = data["raiseCase"]["case"]["id"].as_str().unwrap().parse().unwrap();
    // As a case written before the queues existed: no rows.
    entity::awaiting::Entity::delete_many()
        .filter(entity::awaiting::Column::CaseId.eq(id))
        .exec(&app.db)
        .await
        .unwrap();
    assert!(queue_of(&app, &police, 10).await.0.is_empty());
    let catalog = escalations::domain::catalog::Catalog::builtin().unwrap();
    assert_eq!(escalations::service::awaiting::backfill(&app.db, &catalog).await.unwrap(), 1);
    assert_eq!(queue_of(&app, &police, 10).await.0, [id.to_string()]);
    // Once: a second run finds nothing to do.
    assert_eq!(escalations::service::awaiting::backfill(&app.db, &catalog).await.unwrap(), 0);
    let rows = entity::awaiting::Entity::find()
        .filter(entity::awaiting::Column::CaseId.eq(id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 2, "a practitioner on each side");
});

db_test!(a_queue_page_costs_the_same_statements_whatever_its_size, |app| {
    let csc = app.agency_id("wb-swansea-csc").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    for n in 0..12 {
        app.gql_as_ok(&police, RAISE, json!({ "input": { "receivingAgencyId": csc, "childReference": format!("SWP-S-{n:03}"), "category": "referral-response", "summary": "Disputed." } })).await;
    }
    let page = "query($n: Int!) { myQueue(first: $n) { totalCount overdueCount edges { cursor node { id dueOn raisingAgency { code } receivingAgency { code } currentStage { key } awaiting { party agency { code } roles milestone dueOn } milestones { key } viewerCan { resolve } } } } }";
    let statements = |n: i64| {
        let app = &app;
        let police = &police;
        async move {
            let before = escalations::db::statements_executed();
            let data = app.gql_as_ok(police, page, json!({ "n": n })).await;
            let after = escalations::db::statements_executed();
            assert_eq!(data["myQueue"]["edges"].as_array().unwrap().len() as i64, n);
            assert_eq!(data["myQueue"]["totalCount"], 12);
            after - before
        }
    };
    let two = statements(2).await;
    let twelve = statements(12).await;
    assert_eq!(two, twelve, "a page of 2 and a page of 12");
    assert!(twelve <= 8, "{twelve} statements");
});

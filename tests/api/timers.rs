//! Timers (issue 13): deadlines that announce themselves in the event log,
//! once, with the server's clock moved by the test (a process per test
//! under nextest).

use std::time::{Duration, Instant};

use escalations::domain::role::Role;
use serde_json::json;

use crate::db_test_with;
use crate::helpers::{TestApp, serve_args};

/// Sweeps every 50 ms.
fn quick() -> escalations::config::ServeArgs {
    let mut args = serve_args();
    args.timers.timer_poll_interval = Duration::from_millis(50);
    args
}

fn clock(at: &str) {
    escalations::service::audit::set_clock_for_tests(Some(at.parse().unwrap()));
}

const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id dueOn } } }";
const ADD_RECORD: &str =
    "mutation($input: AddRecordInput!) { addRecord(input: $input) { record { id } } }";

/// The types of the case's events, oldest first.
async fn types(app: &TestApp, token: &str, id: &str) -> Vec<String> {
    let data = app
        .gql_as_ok(
            token,
            "query($id: ID!) { case(id: $id) { events(first: 100) { nodes { type } } } }",
            json!({ "id": id }),
        )
        .await;
    data["case"]["events"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits (up to 10 s) until the case has `n` events of type `kind`, then a
/// few sweeps more, and checks there are still `n`.
async fn exactly(app: &TestApp, token: &str, id: &str, kind: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = |t: &[String]| t.iter().filter(|k| *k == kind).count();
    loop {
        let got = count(&types(app, token, id).await);
        if got >= n {
            break;
        }
        assert!(Instant::now() < deadline, "{kind}: {got} of {n}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&types(app, token, id).await), n, "{kind} fired more than once");
}

db_test_with!(
    a_milestone_announces_itself_due_soon_and_overdue_on_the_right_days_once,
    quick(),
    |app| {
        let cyps = app.agency_id("ro-cyps").await;
        let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
        // Raised Thursday 24 December 2026: the form is due Thursday 31st.
        clock("2026-12-24T10:00:00Z");
        let data = app
        .gql_as_ok(&chair, RAISE, json!({ "input": { "receivingAgencyId": cyps, "childReference": "RMBC-2026-0950", "category": "conference-practice", "route": "challenge", "summary": "Report not shared." } }))
        .await;
        let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
        assert_eq!(data["raiseCase"]["case"]["dueOn"], "2026-12-31");
        // Due soon at the start of Wednesday 30th, the form's 2nd working day
        // (50% of 3, rounded up; Christmas and Boxing Day skipped); 75% is the
        // due day itself, not told. Not a moment before.
        clock("2026-12-29T23:59:50Z");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(types(&app, &chair, &id).await.iter().all(|t| !t.starts_with("MILESTONE")));
        clock("2026-12-30T00:00:01Z");
        exactly(&app, &chair, &id, "MILESTONE_DUE_SOON", 1).await;
        // On the due day itself nothing more.
        clock("2026-12-31T23:59:00Z");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!types(&app, &chair, &id).await.contains(&"MILESTONE_OVERDUE".to_owned()));
        exactly(&app, &chair, &id, "MILESTONE_DUE_SOON", 1).await;
        // Once the day is over (GMT): the form's milestone is overdue, once.
        clock("2027-01-01T00:00:05Z");
        exactly(&app, &chair, &id, "MILESTONE_OVERDUE", 1).await;
        // The form, late, starts the response's clock: ten working days after
        // New Year's Day, due Friday 15 January; due soon on its 5th working
        // day (Friday 8th) and its 8th (Wednesday 13th).
        app.gql_as_ok(
            &chair,
            ADD_RECORD,
            json!({ "input": { "caseId": id, "kind": "FORM", "facts": "Sent." } }),
        )
        .await;
        clock("2027-01-07T23:59:50Z");
        exactly(&app, &chair, &id, "MILESTONE_DUE_SOON", 1).await;
        clock("2027-01-08T00:00:01Z");
        exactly(&app, &chair, &id, "MILESTONE_DUE_SOON", 2).await;
        clock("2027-01-15T23:00:00Z");
        exactly(&app, &chair, &id, "MILESTONE_DUE_SOON", 3).await;
        exactly(&app, &chair, &id, "MILESTONE_OVERDUE", 1).await;
        clock("2027-01-16T00:00:05Z");
        exactly(&app, &chair, &id, "MILESTONE_OVERDUE", 2).await;
        exactly(&app, &chair, &id, "MILESTONE_DUE_SOON", 3).await;
        let feed = app
            .gql_as_ok(
                &chair,
                "{ caseEvents(first: 100) { nodes { type caseId version } } }",
                json!({}),
            )
            .await;
        let overdue: Vec<_> = feed["caseEvents"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "MILESTONE_OVERDUE")
            .collect();
        assert_eq!(overdue.len(), 2, "the feed carries them: {feed:#}");
        // A timer's event moves nothing: the version is the case's.
        assert_eq!(overdue[1]["version"], 2, "{feed:#}");
    }
);

db_test_with!(
    a_stage_without_milestones_announces_its_overdue_and_a_closed_case_nothing,
    quick(),
    |app| {
        let csc = app.agency_id("ps-bh-csc").await;
        let police = app.token(Role::Practitioner, Some("ps-police"), "pan-sussex");
        // Pan-Sussex step 1 with a stated timeframe of 2 working days, raised
        // on Monday 7 June 2027: due Wednesday 9 June.
        clock("2027-06-07T09:00:00Z");
        let raise = |child: &str| json!({ "input": { "receivingAgencyId": csc, "childReference": child, "category": "need-for-action", "summary": "Disputed.", "timeframeWorkingDays": 2 } });
        let data = app.gql_as_ok(&police, RAISE, raise("SP-2027-0100")).await;
        let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
        assert_eq!(data["raiseCase"]["case"]["dueOn"], "2027-06-09");
        let data = app.gql_as_ok(&police, RAISE, raise("SP-2027-0101")).await;
        let closed = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
        app.gql_as_ok(
            &police,
            "mutation($i: WithdrawCaseInput!) { withdrawCase(input: $i) { case { id } } }",
            json!({ "i": { "caseId": closed, "reason": "Raised in error." } }),
        )
        .await;
        // BST: the day ends at 23:00 UTC.
        clock("2027-06-09T23:00:05Z");
        exactly(&app, &police, &id, "STAGE_OVERDUE", 1).await;
        assert!(!types(&app, &police, &closed).await.contains(&"STAGE_OVERDUE".to_owned()));
    }
);

/// Two server processes on one PostgreSQL, 1,000 timers falling due at
/// once: each fires exactly once (one event each), wherever it fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_fire_a_thousand_due_timers_once_each() {
    use sea_orm::ColumnTrait;
    use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

    use crate::helpers::{Backend, TestDb};
    use crate::processes::{agency_id, post_ok, start_with, token};

    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let sweeping = [("TIMER_POLL_INTERVAL", "50ms")];
    let a = start_with(db.url(), &sweeping);
    let client = reqwest::Client::new();
    let police = token(Role::Practitioner, "wb-police");
    let csc = agency_id(&client, &a.url, &police, "wb-swansea-csc").await;
    let mut cases = Vec::new();
    for n in 0..10 {
        let data = post_ok(&client, &a.url, &police, RAISE, json!({ "input": { "receivingAgencyId": csc, "childReference": format!("SWP-T-{n:03}"), "category": "referral-response", "summary": "Disputed." } })).await;
        cases
            .push(data["raiseCase"]["case"]["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    // 1,000 timers behind the API, due in two seconds: by then both
    // processes sweep.
    let conn = sea_orm::Database::connect(db.url()).await.unwrap();
    let due = chrono::Utc::now() + chrono::Duration::seconds(2);
    let rows: Vec<entity::timer::ActiveModel> = (0..1000)
        .map(|i| entity::timer::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            case_id: Set(cases[i % cases.len()]),
            kind: Set("STAGE_OVERDUE".into()),
            stage: Set("informal".into()),
            milestone: Set(None),
            fires_at: Set(due),
            fired_at: Set(None),
            late_ms: Set(None),
            claim_owner: Set(None),
            claim_until_ms: Set(None),
        })
        .collect();
    entity::timer::Entity::insert_many(rows).exec_without_returning(&conn).await.unwrap();
    let b = start_with(db.url(), &sweeping);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = entity::timer::Entity::find()
            .filter(entity::timer::Column::FiredAt.is_null())
            .count(&conn)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} timers never fired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*) AS n FROM change_event WHERE type = 'STAGE_OVERDUE'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(events, 1000, "one event per timer");
    let owners = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(DISTINCT claim_owner) AS n FROM timer",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    eprintln!("fired by {owners} process(es)");
    drop((a, b));
    conn.close().await.unwrap();
}

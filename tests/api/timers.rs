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

/// The one number `sql` (`SELECT COUNT(…) AS n …`) gives on PostgreSQL.
async fn count(conn: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    conn.query_one_raw(sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

/// An unfired `STAGE_OVERDUE` timer of `case` at its `informal` stage,
/// firing at `at`, as the tests write them behind the API.
fn due_timer(
    case: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    deadline: chrono::DateTime<chrono::Utc>,
) -> entity::timer::ActiveModel {
    use sea_orm::ActiveValue::Set;
    entity::timer::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        case_id: Set(case),
        kind: Set("STAGE_OVERDUE".into()),
        stage: Set("informal".into()),
        milestone: Set(None),
        fires_at: Set(at),
        fired_at: Set(None),
        late_ms: Set(None),
        claim_owner: Set(None),
        claim_until_ms: Set(None),
        action_id: Set(None),
        deadline_at: Set(Some(deadline)),
    }
}

/// Two server processes on one PostgreSQL, 1,000 timers falling due at
/// once: each fires exactly once (one event each), wherever it fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_fire_a_thousand_due_timers_once_each() {
    use sea_orm::ColumnTrait;
    use sea_orm::{EntityTrait, PaginatorTrait, QueryFilter};

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
    let rows: Vec<entity::timer::ActiveModel> =
        (0..1000).map(|i| due_timer(cases[i % cases.len()], due, due)).collect();
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
    let events =
        count(&conn, "SELECT COUNT(*) AS n FROM change_event WHERE type = 'STAGE_OVERDUE'").await;
    assert_eq!(events, 1000, "one event per timer");
    let owners = count(&conn, "SELECT COUNT(DISTINCT claim_owner) AS n FROM timer").await;
    eprintln!("fired by {owners} process(es)");
    drop((a, b));
    conn.close().await.unwrap();
}

const AGREE: &str =
    "mutation($input: AgreeActionInput!) { agreeAction(input: $input) { action { id dueOn } } }";
const COMPLETE: &str = "mutation($input: CompleteActionInput!) { completeAction(input: $input) { action { id completedAt overdue } } }";

/// The case's events of the feed with their detail, oldest first.
async fn detailed(app: &TestApp, token: &str, id: &str) -> Vec<serde_json::Value> {
    let data = app
        .gql_as_ok(
            token,
            "query($id: ID!) { caseEvents(first: 100, filter: { caseId: $id }) { nodes { type milestone actionId deadlineAt lateSeconds } } }",
            json!({ "id": id }),
        )
        .await;
    data["caseEvents"]["nodes"].as_array().unwrap().clone()
}

db_test_with!(an_agreed_action_reminds_until_its_owner_completes_it, quick(), |app| {
    let csc_id = app.agency_id("wb-swansea-csc").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let csc = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let chair = app.token(Role::BoardChair, None, "western-bay");
    // Raised and agreed on Monday 7 June 2027; the action is due Friday 18
    // June, 9 working days on: due soon on the 5th (Monday 14th) and the 7th
    // (Wednesday 16th); overdue once the 18th is over (23:00 UTC, BST).
    clock("2027-06-07T09:00:00Z");
    let data = app.gql_as_ok(&police, RAISE, json!({ "input": { "receivingAgencyId": csc_id, "childReference": "SWP-A-001", "category": "referral-response", "summary": "Disputed." } })).await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    let agree = |due: &str| json!({ "input": { "caseId": id, "description": "Share the strategy notes.", "ownerAgencyId": csc_id, "dueOn": due } });
    let data = app.gql_as_ok(&police, AGREE, agree("2027-06-18")).await;
    let action = data["agreeAction"]["action"]["id"].as_str().unwrap().to_owned();
    let data = app.gql_as_ok(&police, AGREE, agree("2027-06-18")).await;
    let done_early = data["agreeAction"]["action"]["id"].as_str().unwrap().to_owned();
    // Only the owner completes it, once; another case's action is not found.
    let complete = |a: &str| json!({ "input": { "caseId": id, "actionId": a } });
    let err = app.gql_as_err(&police, COMPLETE, complete(&done_early)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    assert_eq!(err["extensions"]["allowedSides"], json!(["receiving"]), "{err:#}");
    let err = app.gql_as_err(&chair, COMPLETE, complete(&done_early)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    let err = app.gql_as_err(&csc, COMPLETE, complete(&uuid::Uuid::now_v7().to_string())).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND", "{err:#}");
    clock("2027-06-08T09:00:00Z");
    let data = app.gql_as_ok(&csc, COMPLETE, complete(&done_early)).await;
    let at = data["completeAction"]["action"]["completedAt"].as_str().unwrap();
    assert!(at.starts_with("2027-06-08T09:00:00"), "{at}");
    let err = app.gql_as_err(&csc, COMPLETE, complete(&done_early)).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT", "{err:#}");

    let reminders = |events: &[serde_json::Value]| -> Vec<String> {
        events
            .iter()
            .filter(|e| {
                e["type"] != "ACTION_AGREED" && e["type"].as_str().unwrap().starts_with("ACTION_")
            })
            .map(|e| {
                format!("{} {}", e["type"].as_str().unwrap(), e["actionId"].as_str().unwrap_or("-"))
            })
            .collect()
    };
    // (The day starts at 23:00 UTC the evening before, in BST.)
    clock("2027-06-13T22:59:50Z");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reminders(&detailed(&app, &police, &id).await), ["ACTION_COMPLETED -"]);
    clock("2027-06-13T23:00:01Z");
    exactly(&app, &police, &id, "ACTION_DUE_SOON", 1).await;
    clock("2027-06-15T23:00:01Z");
    exactly(&app, &police, &id, "ACTION_DUE_SOON", 2).await;
    clock("2027-06-18T22:59:00Z");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!types(&app, &police, &id).await.contains(&"ACTION_OVERDUE".to_owned()));
    // At the very second it falls due: fired within a sweep, so on time.
    clock("2027-06-18T23:00:00Z");
    exactly(&app, &police, &id, "ACTION_OVERDUE", 1).await;
    let events = detailed(&app, &police, &id).await;
    assert_eq!(
        reminders(&events),
        [
            "ACTION_COMPLETED -".to_owned(),
            format!("ACTION_DUE_SOON {action}"),
            format!("ACTION_DUE_SOON {action}"),
            format!("ACTION_OVERDUE {action}"),
        ],
        "the completed action tells nothing more: {events:#?}"
    );
    let overdue = events.iter().find(|e| e["type"] == "ACTION_OVERDUE").unwrap();
    assert!(
        overdue["deadlineAt"].as_str().unwrap().starts_with("2027-06-18T22:59:59"),
        "{overdue:#}"
    );
    // On time: not marked late (a loaded machine may sweep a little after
    // the 50 ms interval, never seconds).
    assert!(overdue["lateSeconds"].as_i64().unwrap_or(0) < 2, "on time: {overdue:#}");
    let data = app
        .gql_as_ok(
            &police,
            "query($id: ID!) { case(id: $id) { actions { id overdue completedAt } } }",
            json!({ "id": id }),
        )
        .await;
    let overdue_flags: Vec<_> = data["case"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"] == action.as_str(), a["overdue"].as_bool().unwrap()))
        .collect();
    assert!(
        overdue_flags.contains(&(true, true)) && overdue_flags.contains(&(false, false)),
        "{data:#}"
    );
});

/// The timers of a server that was down: timer rows due two days ago, as a
/// server finds them when it starts after two days down, fire once each on
/// start, marked late with how late. A separate process, on each database.
async fn late_timers_fire_once_marked_late(backend: crate::helpers::Backend) {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    use crate::helpers::TestDb;
    use crate::processes::{agency_id, post, post_ok, start_with, token};

    let Some(db) = TestDb::create(backend).await else { return };
    let client = reqwest::Client::new();
    let police = token(Role::Practitioner, "wb-police");
    let (case, due) = {
        let a = start_with(db.url(), &[("TIMER_POLL_INTERVAL", "1h")]);
        let csc = agency_id(&client, &a.url, &police, "wb-swansea-csc").await;
        let data = post_ok(&client, &a.url, &police, RAISE, json!({ "input": { "receivingAgencyId": csc, "childReference": "SWP-L-001", "category": "referral-response", "summary": "Disputed." } })).await;
        let case: uuid::Uuid = data["raiseCase"]["case"]["id"].as_str().unwrap().parse().unwrap();
        (case, chrono::Utc::now() - chrono::Duration::days(2))
    };
    // Down: the server is gone; its case's deadline passes two days ago.
    let conn = sea_orm::Database::connect(db.url()).await.unwrap();
    let rows: Vec<entity::timer::ActiveModel> =
        (0..3).map(|i| due_timer(case, due + chrono::Duration::minutes(i), due)).collect();
    entity::timer::Entity::insert_many(rows).exec_without_returning(&conn).await.unwrap();
    let b = start_with(db.url(), &[("TIMER_POLL_INTERVAL", "50ms")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let query = "query($id: ID!) { caseEvents(first: 100, filter: { caseId: $id, types: [STAGE_OVERDUE] }) { nodes { type lateSeconds deadlineAt } } }";
    loop {
        let body = post(&client, &b.url, &police, query, json!({ "id": case })).await;
        if body["data"]["caseEvents"]["nodes"].as_array().is_some_and(|n| n.len() >= 3) {
            break;
        }
        assert!(Instant::now() < deadline, "the late timers never fired: {body:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let data = post_ok(&client, &b.url, &police, query, json!({ "id": case })).await;
    let nodes = data["caseEvents"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "each fired once: {data:#}");
    for n in nodes {
        let late = n["lateSeconds"].as_i64().unwrap();
        assert!((2 * 86_400 - 300..2 * 86_400 + 300).contains(&late), "two days late: {n:#}");
    }
    let late_rows = entity::timer::Entity::find()
        .filter(entity::timer::Column::LateMs.gt(86_400_000i64))
        .count(&conn)
        .await
        .unwrap();
    assert_eq!(late_rows, 3, "each timer keeps how late it fired");
    drop(b);
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_timers_fire_once_marked_late_after_downtime_sqlite() {
    late_timers_fire_once_marked_late(crate::helpers::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_timers_fire_once_marked_late_after_downtime_postgres() {
    late_timers_fire_once_marked_late(crate::helpers::Backend::Postgres).await;
}

/// A process killed (SIGKILL) in the middle of a sweep of 1,000 due timers
/// on PostgreSQL, and a second process started after: every timer fires,
/// each exactly once (its claims expire; its half-done fire rolled back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_sweep_loses_and_doubles_nothing() {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    use crate::helpers::{Backend, TestDb};
    use crate::processes::{agency_id, post_ok, start_with, token};

    let Some(db) = TestDb::create(Backend::Postgres).await else { return };
    let client = reqwest::Client::new();
    let police = token(Role::Practitioner, "wb-police");
    let sweeping = [("TIMER_POLL_INTERVAL", "50ms")];
    let mut a = start_with(db.url(), &sweeping);
    let csc = agency_id(&client, &a.url, &police, "wb-swansea-csc").await;
    let data = post_ok(&client, &a.url, &police, RAISE, json!({ "input": { "receivingAgencyId": csc, "childReference": "SWP-K-001", "category": "referral-response", "summary": "Disputed." } })).await;
    let case: uuid::Uuid = data["raiseCase"]["case"]["id"].as_str().unwrap().parse().unwrap();
    let conn = sea_orm::Database::connect(db.url()).await.unwrap();
    let due = chrono::Utc::now();
    let rows: Vec<entity::timer::ActiveModel> =
        (0..1000).map(|_| due_timer(case, due, due)).collect();
    entity::timer::Entity::insert_many(rows).exec_without_returning(&conn).await.unwrap();
    let fired = || async {
        entity::timer::Entity::find()
            .filter(entity::timer::Column::FiredAt.is_not_null())
            .count(&conn)
            .await
            .unwrap()
    };
    // Kill it once it has fired some, well before it is done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if fired().await >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the first process never swept");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.kill();
    let at_kill = fired().await;
    assert!(at_kill < 1000, "killed mid-sweep ({at_kill} fired)");
    let b = start_with(db.url(), &sweeping);
    let deadline = Instant::now() + Duration::from_secs(90);
    while fired().await < 1000 {
        assert!(Instant::now() < deadline, "timers lost: {} fired", fired().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events =
        count(&conn, "SELECT COUNT(*) AS n FROM change_event WHERE type = 'STAGE_OVERDUE'").await;
    assert_eq!(
        events, 1000,
        "one event per timer, none lost, none doubled ({at_kill} fired before the kill)"
    );
    eprintln!("{at_kill} fired before the kill, the rest after");
    drop(b);
    conn.close().await.unwrap();
}

/// Western Bay version 2: its informal stage limited to two working days
/// and turned to escalate on a breach.
fn western_bay_escalating_on_breach() -> String {
    let text = include_str!("../../src/domain/protocols/western_bay.toml");
    assert!(text.contains("\nversion = 1\n") && text.contains("number = 0\n"));
    text.replacen("\nversion = 1\n", "\nversion = 2\n", 1).replacen(
        "number = 0\n",
        "number = 0\ntime_limit_working_days = 2\nescalate_on_breach = true\n",
        1,
    )
}

db_test_with!(a_breach_escalates_the_case_by_itself_where_the_protocol_says_so, quick(), |app| {
    let admin = app.client_token("protocols:admin", None, "western-bay");
    let wb = app.gql_ok("{ partnerships { id code } }", json!({})).await["partnerships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "western-bay")
        .unwrap()["id"]
        .clone();
    let published = app
        .gql_as_ok(
            &admin,
            "mutation($p: ID!, $d: String!) { publishProtocolVersion(partnershipId: $p, definition: $d) { version routes { stages { key escalatesOnBreach timeLimitWorkingDays } } } }",
            json!({ "p": wb, "d": western_bay_escalating_on_breach() }),
        )
        .await;
    let stages = &published["publishProtocolVersion"]["routes"][0]["stages"];
    assert_eq!(
        stages[0],
        json!({ "key": "informal", "escalatesOnBreach": true, "timeLimitWorkingDays": 2 })
    );
    assert_eq!(stages[1]["escalatesOnBreach"], false);

    // Raised Thursday 3 December 2026 at the informal stage: due Monday 7th.
    let csc = app.agency_id("wb-swansea-csc").await;
    let practitioner = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let lead = app.token(Role::SafeguardingLead, Some("wb-police"), "western-bay");
    clock("2026-12-03T10:00:00Z");
    let data = app
        .gql_as_ok(&practitioner, RAISE, json!({ "input": { "receivingAgencyId": csc, "childReference": "SWP-2026-0700", "category": "other", "summary": "Disagreement." } }))
        .await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    assert_eq!(data["raiseCase"]["case"]["dueOn"], "2026-12-07");
    const CASE: &str = "query($id: ID!) { case(id: $id) { stage version protocolVersion dueOn } }";

    // Not before the end of the due day.
    clock("2026-12-07T23:59:50Z");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(types(&app, &lead, &id).await, ["CASE_RAISED"]);

    // Then the breach is announced and the case moves up, once, as the
    // server's change: one stage, no timeframe (stage 1 has no limit).
    clock("2026-12-08T00:00:05Z");
    exactly(&app, &lead, &id, "CASE_ESCALATED", 1).await;
    assert_eq!(types(&app, &lead, &id).await, ["CASE_RAISED", "STAGE_OVERDUE", "CASE_ESCALATED"]);
    let case = app.gql_as_ok(&lead, CASE, json!({ "id": id })).await;
    assert_eq!(
        case["case"],
        json!({ "stage": "stage-1", "version": 2, "protocolVersion": 2, "dueOn": null })
    );
    let trail = app
        .gql_as_ok(&lead, "query($id: ID!) { auditTrail(caseId: $id) { nodes { seq action actorSub actorRole actorAgencyId data } } }", json!({ "id": id }))
        .await;
    let last = trail["auditTrail"]["nodes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            &last["seq"],
            &last["action"],
            &last["actorSub"],
            &last["actorRole"],
            &last["actorAgencyId"]
        ),
        (&json!(2), &json!("escalate"), &json!("system:timers"), &json!(null), &json!(null)),
        "{trail:#}"
    );
    let detail: serde_json::Value = serde_json::from_str(last["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&detail["automatic"], &detail["reason"], &detail["from_stage"], &detail["to_stage"]),
        (&json!(true), &json!("overdue"), &json!("informal"), &json!("stage-1")),
        "{detail:#}"
    );
    // Nothing more fires: stage 1 has no deadline.
    clock("2027-01-20T12:00:00Z");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(types(&app, &lead, &id).await, ["CASE_RAISED", "STAGE_OVERDUE", "CASE_ESCALATED"]);
});

db_test_with!(
    a_breach_escalates_nothing_that_moved_or_where_the_protocol_says_no,
    quick(),
    |app| {
        let admin = app.client_token("protocols:admin", None, "western-bay");
        let wb = app.gql_ok("{ partnerships { id code } }", json!({})).await["partnerships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == "western-bay")
            .unwrap()["id"]
            .clone();
        let practitioner = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
        let lead = app.token(Role::SafeguardingLead, Some("wb-police"), "western-bay");
        let csc = app.agency_id("wb-swansea-csc").await;
        clock("2026-12-03T10:00:00Z");
        let raise = |child: &str| json!({ "input": { "receivingAgencyId": csc, "childReference": child, "category": "other", "summary": "Disagreement." } });
        app.gql_as_ok(
        &admin,
        "mutation($p: ID!, $d: String!) { publishProtocolVersion(partnershipId: $p, definition: $d) { version } }",
        json!({ "p": wb, "d": western_bay_escalating_on_breach() }),
    )
    .await;
        // Escalated by a person before its deadline: the timer goes with the
        // stage, and nothing fires.
        let moved = app.gql_as_ok(&practitioner, RAISE, raise("SWP-2026-0701")).await["raiseCase"]
            ["case"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.gql_as_ok(&practitioner, "mutation($id: ID!) { escalateCase(input: { caseId: $id, reason: UNRESOLVED }) { case { stage } } }", json!({ "id": moved }))
        .await;
        // Resolved before its deadline: nothing fires either.
        let resolved =
            app.gql_as_ok(&practitioner, RAISE, raise("SWP-2026-0702")).await["raiseCase"]["case"]
                ["id"]
                .as_str()
                .unwrap()
                .to_owned();
        app.gql_as_ok(&practitioner, "mutation($id: ID!) { resolveCase(input: { caseId: $id, outcome: \"Talked it through.\" }) { case { status } } }", json!({ "id": resolved }))
        .await;
        clock("2026-12-08T00:00:05Z");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(types(&app, &lead, &moved).await, ["CASE_RAISED", "CASE_ESCALATED"]);
        let escalated_by = app
            .gql_as_ok(
                &lead,
                "query($id: ID!) { auditTrail(caseId: $id) { nodes { actorSub } } }",
                json!({ "id": moved }),
            )
            .await;
        assert_ne!(escalated_by["auditTrail"]["nodes"][1]["actorSub"], "system:timers");
        assert_eq!(types(&app, &lead, &resolved).await, ["CASE_RAISED", "CASE_RESOLVED"]);
    }
);

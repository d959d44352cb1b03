//! Rotherham's step-down check (issue 12), over HTTP with the server's clock
//! set by the test (a process per test under nextest): the Conference Chair
//! records a conference's step-down to Child in Need planning on a
//! challenge, and six weeks later the check; a check that finds the CiN
//! meeting or plan missing raises a new stage-1 challenge between the same
//! agencies, linked both ways, in the same change; and six weeks after the
//! conference the check announces itself (`STEP_DOWN_CHECK_DUE`), once,
//! whatever the case did since, unless the check came first.

use escalations::domain::role::Role;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::helpers::{TestApp, serve_args};
use crate::{db_test, db_test_with};

fn clock(at: &str) {
    escalations::service::audit::set_clock_for_tests(Some(at.parse().unwrap()));
}

const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id version } } }";
const RESOLVE: &str = "mutation($input: ResolveCaseInput!) { resolveCase(input: $input) { case { id version updatedAt } } }";
const STEP_DOWN: &str = "mutation($input: RecordStepDownInput!) { recordStepDown(input: $input) { case { id version status updatedAt stepDown { conferenceOn checkDueOn checkedAt cinMeetingHeld cinPlanInPlace evidenced followUpCase { id } } viewerCan { recordStepDown recordStepDownCheck } } } }";
const CHECK: &str = "mutation($input: RecordStepDownCheckInput!) { recordStepDownCheck(input: $input) { case { id version status stepDown { conferenceOn checkDueOn checkedAt cinMeetingHeld cinPlanInPlace evidenced followUpCase { id route stage status version childReference category dueOn summary raisingAgency { code } receivingAgency { code } followsUp { id } events(first: 10) { nodes { type version } } } } viewerCan { recordStepDown recordStepDownCheck } } } }";
const SHOWN: &str = "query($id: ID!) { case(id: $id) { id version status updatedAt followsUp { id } stepDown { conferenceOn checkDueOn checkedAt evidenced followUpCase { id } } viewerCan { recordStepDown recordStepDownCheck } } }";

/// A Rotherham case raised by the Safeguarding Unit's Conference Chair
/// against children's services, on `route`; returns its id.
async fn rotherham_case(app: &TestApp, chair: &str, route: &str, reference: &str) -> String {
    let cyps = app.agency_id("ro-cyps").await;
    let input = json!({ "input": {
        "receivingAgencyId": cyps,
        "childReference": reference,
        "category": "conference-practice",
        "route": route,
        "summary": "The social work report was not shared with the parents before conference.",
    } });
    let data = app.gql_as_ok(chair, RAISE, input).await;
    data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned()
}

fn step_down(id: &str, on: &str) -> Value {
    json!({ "input": { "caseId": id, "conferenceOn": on } })
}

fn check(id: &str, meeting: bool, plan: bool) -> Value {
    json!({ "input": { "caseId": id, "cinMeetingHeld": meeting, "cinPlanInPlace": plan } })
}

async fn stored_cases(app: &TestApp) -> u64 {
    entity::case::Entity::find().count(&app.db).await.unwrap()
}

/// The case's version, as the chair sees it.
async fn version(app: &TestApp, token: &str, id: &str) -> Value {
    app.gql_as_ok(token, SHOWN, json!({ "id": id })).await["case"]["version"].clone()
}

/// The case's audit events, oldest first, as (action, data).
async fn trail(app: &TestApp, id: &str) -> Vec<(String, Value)> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    entity::case_event::Entity::find()
        .filter(entity::case_event::Column::CaseId.eq(id.parse::<uuid::Uuid>().unwrap()))
        .order_by_asc(entity::case_event::Column::Seq)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, serde_json::from_str(&e.data).unwrap()))
        .collect()
}

/// The types of the case's events that are not timers', oldest first.
async fn changes(app: &TestApp, token: &str, id: &str) -> Vec<(String, i64)> {
    let data = app
        .gql_as_ok(
            token,
            "query($f: CaseEventFilter) { caseEvents(first: 100, filter: $f) { nodes { type version } } }",
            json!({ "f": { "caseId": id } }),
        )
        .await;
    data["caseEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["version"].as_i64().unwrap()))
        .filter(|(t, _)| {
            !t.ends_with("_DUE") && !t.ends_with("_DUE_SOON") && !t.ends_with("OVERDUE")
        })
        .collect()
}

#[track_caller]
fn refused(err: &Value, code: &str) {
    assert_eq!(err["extensions"]["code"], code, "{err:#}");
}

db_test!(a_step_down_check_that_finds_no_cin_plan_raises_a_linked_stage_1_challenge, |app| {
    let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    let line_manager = app.token(Role::Manager, Some("ro-cyps"), "rotherham");
    let their_lead = app.token(Role::SafeguardingLead, Some("ro-cyps"), "rotherham");
    let police = app.token(Role::SafeguardingLead, Some("ro-police"), "rotherham");
    // Raised on Monday 2 March 2026, resolved the next day; the review
    // conference of Monday 9 March steps the plan down.
    clock("2026-03-02T10:00:00Z");
    let id = rotherham_case(&app, &chair, "challenge", "RMBC-2026-0960").await;
    let shown = app.gql_as_ok(&chair, SHOWN, json!({ "id": id })).await;
    assert_eq!(shown["case"]["stepDown"], Value::Null, "nothing is assumed");
    assert_eq!(
        shown["case"]["viewerCan"],
        json!({ "recordStepDown": true, "recordStepDownCheck": false })
    );
    clock("2026-03-03T10:00:00Z");
    let resolved = app
        .gql_as_ok(
            &chair,
            RESOLVE,
            json!({ "input": { "caseId": id, "outcome": "The report was shared." } }),
        )
        .await;
    let closed_at = resolved["resolveCase"]["case"]["updatedAt"].clone();
    clock("2026-03-10T10:00:00Z");

    // Refusals, each changing nothing.
    let err = app.gql_as_err(&line_manager, STEP_DOWN, step_down(&id, "2026-03-09")).await;
    refused(&err, "FORBIDDEN");
    assert_eq!(err["extensions"]["allowedRoles"], json!(["safeguarding_lead"]), "{err:#}");
    let err = app.gql_as_err(&their_lead, STEP_DOWN, step_down(&id, "2026-03-09")).await;
    refused(&err, "FORBIDDEN");
    assert_eq!(err["extensions"]["allowedSides"], json!(["raising"]), "{err:#}");
    let shown = app.gql_as_ok(&their_lead, SHOWN, json!({ "id": id })).await;
    assert_eq!(
        shown["case"]["viewerCan"],
        json!({ "recordStepDown": false, "recordStepDownCheck": false })
    );
    let err = app.gql_as_err(&police, STEP_DOWN, step_down(&id, "2026-03-09")).await;
    refused(&err, "NOT_FOUND");
    let err = app.gql_as_err(&chair, STEP_DOWN, step_down(&id, "2026-03-11")).await;
    refused(&err, "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "conferenceOn", "{err:#}");
    let err = app.gql_as_err(&chair, CHECK, check(&id, true, true)).await;
    refused(&err, "CONFLICT");
    assert!(err["message"].as_str().unwrap().contains("no step-down is recorded"), "{err:#}");
    let practice = rotherham_case(&app, &chair, "practice", "RMBC-2026-0961").await;
    let err = app.gql_as_err(&chair, STEP_DOWN, step_down(&practice, "2026-03-09")).await;
    refused(&err, "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "caseId", "{err:#}");
    let err = app.gql_as_err(&chair, CHECK, check(&practice, true, true)).await;
    assert_eq!(err["extensions"]["field"], "caseId", "{err:#}");
    assert_eq!(version(&app, &chair, &id).await, 2);
    assert_eq!(version(&app, &chair, &practice).await, 1);

    // On the closed case: its closing time stays its `updatedAt`.
    let data = app.gql_as_ok(&chair, STEP_DOWN, step_down(&id, "2026-03-09")).await;
    let case = &data["recordStepDown"]["case"];
    assert_eq!((&case["version"], &case["status"]), (&json!(3), &json!("RESOLVED")));
    assert_eq!(case["updatedAt"], closed_at);
    assert_eq!(
        case["stepDown"],
        json!({ "conferenceOn": "2026-03-09", "checkDueOn": "2026-04-20", "checkedAt": null,
                "cinMeetingHeld": null, "cinPlanInPlace": null, "evidenced": null,
                "followUpCase": null })
    );
    assert_eq!(case["viewerCan"], json!({ "recordStepDown": true, "recordStepDownCheck": true }));
    let err = app.gql_as_err(&chair, STEP_DOWN, step_down(&id, "2026-03-09")).await;
    refused(&err, "CONFLICT");
    // A correction: the conference was on the 10th.
    let data = app.gql_as_ok(&chair, STEP_DOWN, step_down(&id, "2026-03-10")).await;
    assert_eq!(data["recordStepDown"]["case"]["stepDown"]["checkDueOn"], "2026-04-21");
    // The check sees the chair's side only, and nobody else at all.
    let err = app.gql_as_err(&their_lead, CHECK, check(&id, false, false)).await;
    refused(&err, "FORBIDDEN");
    let err = app.gql_as_err(&police, CHECK, check(&id, false, false)).await;
    refused(&err, "NOT_FOUND");
    // The day before it is due, a missing plan is not yet a failure.
    clock("2026-04-20T16:00:00Z");
    let err = app.gql_as_err(&chair, CHECK, check(&id, true, false)).await;
    refused(&err, "CONFLICT");
    assert!(err["message"].as_str().unwrap().contains("due on 2026-04-21"), "{err:#}");
    assert_eq!(version(&app, &chair, &id).await, 4);
    let before = stored_cases(&app).await;

    // Six weeks on, a CiN meeting was held but there is no CiN plan: the
    // challenge starts again at stage 1, in the same change. Sent twice
    // with one idempotency key: one check, one new case.
    clock("2026-04-21T09:00:00Z");
    let mut keyed = check(&id, true, false);
    keyed["input"]["idempotencyKey"] = json!("step-down-check-0960");
    let data = app.gql_as_ok(&chair, CHECK, keyed.clone()).await;
    let again = app.gql_as_ok(&chair, CHECK, keyed).await;
    assert_eq!(again, data, "the retry returns the first result");
    assert_eq!(stored_cases(&app).await, before + 1, "one new case");
    let case = &data["recordStepDownCheck"]["case"];
    assert_eq!((&case["version"], &case["status"]), (&json!(5), &json!("RESOLVED")));
    let step = &case["stepDown"];
    assert_eq!(
        (&step["cinMeetingHeld"], &step["cinPlanInPlace"], &step["evidenced"]),
        (&json!(true), &json!(false), &json!(false))
    );
    assert!(step["checkedAt"].as_str().unwrap().starts_with("2026-04-21T09:00:0"), "{step:#}");
    assert_eq!(case["viewerCan"], json!({ "recordStepDown": false, "recordStepDownCheck": false }));
    let new = &step["followUpCase"];
    let new_id = new["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    assert_eq!(
        (&new["route"], &new["stage"], &new["status"], &new["version"]),
        (&json!("challenge"), &json!("stage-1"), &json!("OPEN"), &json!(1))
    );
    assert_eq!(
        (&new["childReference"], &new["category"]),
        (&json!("RMBC-2026-0960"), &json!("conference-practice"))
    );
    assert_eq!(
        (&new["raisingAgency"]["code"], &new["receivingAgency"]["code"]),
        (&json!("ro-safeguarding-unit"), &json!("ro-cyps"))
    );
    // Tuesday 21 April: the chair's stage-1 form within 3 working days.
    assert_eq!(new["dueOn"], "2026-04-24");
    assert_eq!(
        new["summary"],
        "Step-down check: the conference of 2026-03-10 ended the child protection plan with a \
         step-down to Child in Need planning; six weeks on, a multi-agency CiN meeting has taken \
         place but no CiN plan is in place."
    );
    assert_eq!(new["followsUp"]["id"], json!(id));
    assert_eq!(new["events"]["nodes"], json!([{ "type": "CASE_RAISED", "version": 1 }]));

    // The agency challenged sees the new case and the link, as it sees the
    // first; another agency sees neither.
    let theirs = app.gql_as_ok(&line_manager, SHOWN, json!({ "id": new_id })).await;
    assert_eq!(theirs["case"]["followsUp"]["id"], json!(id));
    let first = app.gql_as_ok(&line_manager, SHOWN, json!({ "id": id })).await;
    assert_eq!(first["case"]["stepDown"]["followUpCase"]["id"], json!(new_id));
    let err = app
        .gql_as_err(&police, "query($id: ID!) { case(id: $id) { id } }", json!({ "id": new_id }))
        .await;
    refused(&err, "NOT_FOUND");
    // It waits on the chair's stage-1 form: in the chair's queue, as a
    // raised case is; the closed first case is not.
    let queue = app.gql_as_ok(&chair, "{ myQueue(first: 100) { nodes { id } } }", json!({})).await;
    let queued: Vec<&str> = queue["myQueue"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(queued.contains(&new_id.as_str()) && !queued.contains(&id.as_str()), "{queue:#}");

    // Each with its events and its audit trail, one chain each.
    assert_eq!(
        changes(&app, &chair, &id).await,
        [
            ("CASE_RAISED".to_owned(), 1),
            ("CASE_RESOLVED".to_owned(), 2),
            ("STEP_DOWN_RECORDED".to_owned(), 3),
            ("STEP_DOWN_RECORDED".to_owned(), 4),
            ("STEP_DOWN_CHECKED".to_owned(), 5),
        ]
    );
    let feed = app
        .gql_as_ok(&chair, "{ caseEvents(first: 100) { nodes { type caseId } } }", json!({}))
        .await;
    let order: Vec<(&str, &str)> = feed["caseEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["caseId"].as_str().unwrap()))
        .filter(|(t, _)| matches!(*t, "STEP_DOWN_CHECKED" | "CASE_RAISED"))
        .collect();
    assert_eq!(
        &order[order.len() - 2..],
        [("STEP_DOWN_CHECKED", id.as_str()), ("CASE_RAISED", new_id.as_str())],
        "the check, then the case it raised"
    );
    let first_trail = trail(&app, &id).await;
    let actions: Vec<&str> = first_trail.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["raise", "resolve", "record_step_down", "record_step_down", "record_step_down_check"]
    );
    assert_eq!(
        first_trail[3].1,
        json!({ "stage": "stage-1", "status": "resolved", "conference_on": "2026-03-10",
                "check_due_on": "2026-04-21", "replaces": "2026-03-09" })
    );
    assert_eq!(
        first_trail[4].1,
        json!({ "stage": "stage-1", "status": "resolved", "conference_on": "2026-03-10",
                "check_due_on": "2026-04-21", "cin_meeting_held": true,
                "cin_plan_in_place": false, "evidenced": false,
                "follow_up_case_id": new_id })
    );
    let new_trail = trail(&app, &new_id).await;
    assert_eq!(new_trail.len(), 1);
    assert_eq!(new_trail[0].0, "raise");
    assert_eq!(new_trail[0].1["follows_case_id"], json!(id));
    assert_eq!(new_trail[0].1["stage"], "stage-1");
    assert_eq!(new_trail[0].1["milestones"], json!({ "form": "2026-04-24" }));
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);

    // Checked once: neither the check nor the step-down again.
    let err = app.gql_as_err(&chair, CHECK, check(&id, true, true)).await;
    refused(&err, "CONFLICT");
    let err = app.gql_as_err(&chair, STEP_DOWN, step_down(&id, "2026-04-01")).await;
    refused(&err, "CONFLICT");
    assert_eq!(version(&app, &chair, &id).await, 5);
    assert_eq!(stored_cases(&app).await, before + 1);
});

db_test!(a_step_down_check_that_finds_the_cin_plan_raises_nothing, |app| {
    let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    clock("2026-06-01T10:00:00Z");
    let id = rotherham_case(&app, &chair, "challenge", "RMBC-2026-0970").await;
    // On an open case, at the conference's day.
    let data = app.gql_as_ok(&chair, STEP_DOWN, step_down(&id, "2026-06-01")).await;
    let case = &data["recordStepDown"]["case"];
    assert_eq!((&case["version"], &case["status"]), (&json!(2), &json!("OPEN")));
    assert!(case["updatedAt"].as_str().unwrap().starts_with("2026-06-01T10:00:0"), "{case:#}");
    assert_eq!(case["stepDown"]["checkDueOn"], "2026-07-13");
    let before = stored_cases(&app).await;
    // Evidenced three weeks on: recorded early, nothing raised.
    clock("2026-06-22T10:00:00Z");
    let data = app.gql_as_ok(&chair, CHECK, check(&id, true, true)).await;
    let case = &data["recordStepDownCheck"]["case"];
    assert_eq!(case["version"], 3);
    assert_eq!(
        (&case["stepDown"]["evidenced"], &case["stepDown"]["followUpCase"]),
        (&json!(true), &Value::Null)
    );
    assert_eq!(stored_cases(&app).await, before, "no new case");
    let trail = trail(&app, &id).await;
    assert_eq!(trail.last().unwrap().1["follow_up_case_id"], Value::Null);
    assert_eq!(
        changes(&app, &chair, &id).await.last().unwrap(),
        &("STEP_DOWN_CHECKED".to_owned(), 3)
    );
    let err = app.gql_as_err(&chair, CHECK, check(&id, false, false)).await;
    refused(&err, "CONFLICT");
});

/// Sweeps every 50 ms.
fn quick() -> escalations::config::ServeArgs {
    let mut args = serve_args();
    args.timers.timer_poll_interval = std::time::Duration::from_millis(50);
    args
}

/// The case's `STEP_DOWN_CHECK_DUE` events, as (version, deadlineAt).
async fn due_events(app: &TestApp, token: &str, id: &str) -> Vec<(i64, String)> {
    let data = app
        .gql_as_ok(
            token,
            "query($f: CaseEventFilter) { caseEvents(first: 100, filter: $f) { nodes { type version deadlineAt } } }",
            json!({ "f": { "caseId": id, "types": ["STEP_DOWN_CHECK_DUE"] } }),
        )
        .await;
    data["caseEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["version"].as_i64().unwrap(), e["deadlineAt"].as_str().unwrap().to_owned()))
        .collect()
}

/// Waits (up to 10 s) for `n` `STEP_DOWN_CHECK_DUE` events of the case,
/// then a few sweeps more, and checks there are still `n`.
async fn exactly_due(app: &TestApp, token: &str, id: &str, n: usize) -> Vec<(i64, String)> {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(10);
    while due_events(app, token, id).await.len() < n {
        assert!(Instant::now() < deadline, "fewer than {n} STEP_DOWN_CHECK_DUE");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = due_events(app, token, id).await;
    assert_eq!(events.len(), n, "STEP_DOWN_CHECK_DUE more than {n} times: {events:?}");
    events
}

/// The case's unfired step-down timers.
async fn waiting(app: &TestApp, id: &str) -> u64 {
    use entity::timer::{Column, Entity};
    use sea_orm::{ColumnTrait, QueryFilter};
    Entity::find()
        .filter(Column::CaseId.eq(id.parse::<uuid::Uuid>().unwrap()))
        .filter(Column::Kind.eq("STEP_DOWN_CHECK_DUE"))
        .filter(Column::FiredAt.is_null())
        .count(&app.db)
        .await
        .unwrap()
}

db_test_with!(a_step_down_check_falls_due_42_days_after_the_conference_once, quick(), |app| {
    let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    let line_manager = app.token(Role::Manager, Some("ro-cyps"), "rotherham");
    // Day D: Monday 9 March 2026, the conference steps the plan down; the
    // check is due on D + 42, Monday 20 April (British Summer Time by
    // then: the day starts at 23:00 UTC on the 19th).
    clock("2026-03-09T10:00:00Z");
    let id = rotherham_case(&app, &chair, "challenge", "RMBC-2026-0980").await;
    let data = app.gql_as_ok(&chair, STEP_DOWN, step_down(&id, "2026-03-09")).await;
    assert_eq!(data["recordStepDown"]["case"]["stepDown"]["checkDueOn"], "2026-04-20");
    assert_eq!(waiting(&app, &id).await, 1);
    // The case moves on and closes: the reminder stays.
    app.gql_as_ok(
        &chair,
        "mutation($input: EscalateCaseInput!) { escalateCase(input: $input) { case { stage } } }",
        json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } }),
    )
    .await;
    app.gql_as_ok(
        &chair,
        RESOLVE,
        json!({ "input": { "caseId": id, "outcome": "Resolved at stage 2." } }),
    )
    .await;
    assert_eq!(waiting(&app, &id).await, 1, "neither a new stage nor the closing removes it");
    // D + 41, its last seconds: nothing.
    clock("2026-04-19T22:59:50Z");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(due_events(&app, &chair, &id).await, []);
    // D + 42 begins: once, on the closed case at its own version, to
    // both agencies.
    clock("2026-04-19T23:00:05Z");
    let events = exactly_due(&app, &chair, &id, 1).await;
    assert_eq!(events, [(4, "2026-04-20T22:59:59+00:00".to_owned())], "deadline: the day's end");
    assert_eq!(due_events(&app, &line_manager, &id).await.len(), 1);
    // And nothing more, days later.
    clock("2026-04-30T12:00:00Z");
    exactly_due(&app, &chair, &id, 1).await;
    assert_eq!(waiting(&app, &id).await, 0);
    // Checked late, it raises the challenge again; the reminder has fired.
    let data = app.gql_as_ok(&chair, CHECK, check(&id, false, false)).await;
    let new = &data["recordStepDownCheck"]["case"]["stepDown"]["followUpCase"];
    assert_eq!((&new["stage"], &new["status"]), (&json!("stage-1"), &json!("OPEN")));
    exactly_due(&app, &chair, &id, 1).await;
});

db_test_with!(a_step_down_check_before_the_due_day_cancels_its_reminder, quick(), |app| {
    let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    clock("2026-03-09T10:00:00Z");
    let id = rotherham_case(&app, &chair, "challenge", "RMBC-2026-0981").await;
    // Recorded, then corrected: one reminder, of the corrected day.
    app.gql_as_ok(&chair, STEP_DOWN, step_down(&id, "2026-03-08")).await;
    let data = app.gql_as_ok(&chair, STEP_DOWN, step_down(&id, "2026-03-09")).await;
    assert_eq!(data["recordStepDown"]["case"]["stepDown"]["checkDueOn"], "2026-04-20");
    assert_eq!(waiting(&app, &id).await, 1, "the correction replaced the first");
    // The day the first would have fired passes without it.
    clock("2026-04-19T12:00:00Z");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(due_events(&app, &chair, &id).await, []);
    // Checked, evidenced, before the due day: the reminder goes.
    let data = app.gql_as_ok(&chair, CHECK, check(&id, true, true)).await;
    assert_eq!(data["recordStepDownCheck"]["case"]["stepDown"]["evidenced"], true);
    assert_eq!(waiting(&app, &id).await, 0);
    clock("2026-04-21T12:00:00Z");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(due_events(&app, &chair, &id).await, [], "no reminder after the check");
});

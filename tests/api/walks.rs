//! The walks of issue 5 over HTTP, one per seed protocol besides Western
//! Bay (in `workflow.rs`): Pan-Sussex to step 5 through the
//! repeated-disagreement trigger, Leeds's conference-request route,
//! Rotherham's challenge route started at stage 2 with working-day
//! deadlines, and seed 004 to the child protection manager.

use chrono::SubsecRound;
use chrono::{NaiveDate, Utc};
use escalations::domain::calendar::Calendar;
use escalations::domain::role::Role;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;

const CASE: &str = "id stage status version route";
const CAN: &str = "viewerCan { addRecord escalate accept resolve withdraw skipStage readReport }";

fn raise_query() -> String {
    format!(
        "mutation($input: RaiseCaseInput!) {{ raiseCase(input: $input) {{ case {{ {CASE} }} }} }}"
    )
}

fn escalate_query() -> String {
    format!(
        "mutation($input: EscalateCaseInput!) {{ escalateCase(input: $input) {{ case {{ {CASE} }} }} }}"
    )
}

const RESOLVE: &str = "mutation($input: ResolveCaseInput!) { resolveCase(input: $input) { case { id status version } } }";
const WITHDRAW: &str =
    "mutation($input: WithdrawCaseInput!) { withdrawCase(input: $input) { case { id status } } }";

/// Raises a case as `token` and returns it.
async fn raise(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql_as_ok(token, &raise_query(), json!({ "input": input })).await["raiseCase"]["case"]
        .clone()
}

/// Escalates a case as `token` and returns it.
async fn escalate(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql_as_ok(token, &escalate_query(), json!({ "input": input })).await["escalateCase"]["case"]
        .clone()
}

/// The refusal of an escalation.
async fn escalate_err(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql_as_err(token, &escalate_query(), json!({ "input": input })).await
}

/// What `token` may do with the case now.
async fn can(app: &TestApp, token: &str, id: &str) -> Value {
    let query = format!("query($id: ID!) {{ case(id: $id) {{ {CAN} }} }}");
    app.gql_as_ok(token, &query, json!({ "id": id })).await["case"]["viewerCan"].clone()
}

/// The stored row behind the API.
async fn row(app: &TestApp, id: &str) -> entity::case::Model {
    entity::case::Entity::find_by_id(id.parse::<uuid::Uuid>().unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
}

/// The data of the case's latest audit event.
async fn last_event(app: &TestApp, id: &str) -> (String, Value) {
    let e = entity::case_event::Entity::find()
        .filter(entity::case_event::Column::CaseId.eq(id.parse::<uuid::Uuid>().unwrap()))
        .order_by_desc(entity::case_event::Column::Seq)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    (e.action, serde_json::from_str(&e.data).unwrap())
}

/// The types of the case's events in the feed, oldest first.
async fn event_types(app: &TestApp, token: &str, id: &str) -> Vec<String> {
    let data = app
        .gql_as_ok(
            token,
            "query($id: ID!) { caseEvents(first: 100, filter: { caseId: $id }) { nodes { type version } } }",
            json!({ "id": id }),
        )
        .await;
    data["caseEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} v{}", e["type"].as_str().unwrap(), e["version"]))
        .collect()
}

fn england_and_wales() -> &'static Calendar {
    Calendar::for_id("england-and-wales").unwrap()
}

/// Runs `change` (a mutation returning a case) and checks the case's
/// stored due date is `days` working days after the day it ran (either side
/// of midnight UTC). Returns the case, that day and the due date.
async fn due_in_working_days<F>(
    app: &TestApp,
    days: u32,
    change: F,
) -> (Value, NaiveDate, NaiveDate)
where
    F: std::future::Future<Output = Value>,
{
    let before = Utc::now().date_naive();
    let case = change.await;
    let after = Utc::now().date_naive();
    let due = row(app, case["id"].as_str().unwrap()).await.due_on.expect("a due date");
    let cal = england_and_wales();
    let today = if due == cal.add_working_days(before, days).unwrap() { before } else { after };
    assert_eq!(due, cal.add_working_days(today, days).unwrap(), "{days} working days from {today}");
    // Independently of how the calendar counts: the calendar days from today
    // to the due date are the working days plus every weekend day and bank
    // holiday in between, so the deadline lies later than `days` calendar
    // days whenever one of those falls in the way.
    let skipped = today
        .iter_days()
        .skip(1)
        .take_while(|d| *d <= due)
        .filter(|d| !cal.is_working_day(*d))
        .count();
    assert_eq!((due - today).num_days(), i64::from(days) + i64::try_from(skipped).unwrap());
    assert!(due > today + chrono::Days::new(u64::from(days)) || skipped == 0);
    (case, today, due)
}

db_test!(pan_sussex_reaches_step_5_through_repeated_disagreements, |app| {
    let police = app.agency_id("ps-police").await;
    let csc = app.agency_id("ps-bh-csc").await;
    let icb = app.agency_id("ps-icb").await;
    let police_practitioner = app.token(Role::Practitioner, Some("ps-police"), "pan-sussex");
    let csc_practitioner = app.token(Role::Practitioner, Some("ps-bh-csc"), "pan-sussex");
    let police_lead = app.token(Role::SafeguardingLead, Some("ps-police"), "pan-sussex");
    let police_manager = app.token(Role::Manager, Some("ps-police"), "pan-sussex");
    let chair = app.token(Role::BoardChair, None, "pan-sussex");
    let case = |receiving: &str, reference: &str, category: &str| {
        json!({
            "receivingAgencyId": receiving,
            "childReference": reference,
            "category": category,
            "summary": "Information about a child known to police was not passed on.",
        })
    };
    // The case to escalate, and a similar one raised the other way round.
    let first =
        raise(&app, &police_practitioner, case(&csc, "SP-2026-001", "information-sharing")).await;
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["stage"], "stage-1");
    raise(&app, &csc_practitioner, case(&police, "BH-2026-002", "information-sharing")).await;
    // Not similar: another category, another pair of agencies.
    raise(&app, &police_practitioner, case(&csc, "SP-2026-003", "timeliness")).await;
    raise(&app, &police_practitioner, case(&icb, "SP-2026-004", "information-sharing")).await;
    // A withdrawn one does not count either.
    let withdrawn =
        raise(&app, &police_practitioner, case(&csc, "SP-2026-005", "information-sharing")).await;
    app.gql_as_ok(
        &police_manager,
        WITHDRAW,
        json!({ "input": { "caseId": withdrawn["id"], "reason": "Raised against the wrong team." } }),
    )
    .await;
    // Nor does one raised before the window (365 days), stored behind the API.
    let template = row(&app, &id).await;
    let old = Utc::now() - chrono::Duration::days(366);
    let old_id = uuid::Uuid::now_v7();
    entity::case::Entity::insert(entity::case::ActiveModel {
        id: Set(old_id),
        child_reference: Set("SP-2024-0099".into()),
        raised_at: Set(old),
        updated_at: Set(old),
        stage_entered_at: Set(Some(old)),
        version: Set(1),
        ..template.clone().into_active_model()
    })
    .exec_without_returning(&app.db)
    .await
    .unwrap();
    // With its raise event, as the service would have written it.
    let mut event = entity::case_event::Model {
        id: uuid::Uuid::now_v7(),
        case_id: old_id,
        seq: 1,
        at: old.trunc_subsecs(6),
        actor_sub: "old-raiser".into(),
        actor_role: Some(escalations::domain::role::Role::Practitioner.as_str().into()),
        actor_agency_id: Some(template.raising_agency_id),
        action: escalations::service::audit::AuditAction::Raise.as_str().into(),
        request_id: None,
        data: json!({ "stage": template.stage }).to_string(),
        prev_hash: escalations::service::audit::GENESIS.into(),
        hash: String::new(),
    };
    event.hash = escalations::service::audit::event_hash(&event.prev_hash, &event);
    entity::case_event::Entity::insert(event.into_active_model())
        .exec_without_returning(&app.db)
        .await
        .unwrap();

    // The police safeguarding lead may escalate, or skip on immediate risk.
    let flags = can(&app, &police_lead, &id).await;
    assert_eq!(flags["escalate"], true);
    assert_eq!(flags["skipStage"], true);

    // Two similar cases: below the count of 3, refused, saying so.
    let repeated = |v: i32| json!({ "caseId": id, "expectedVersion": v, "reason": "REPEATED_DISAGREEMENT", "timeframeWorkingDays": 10 });
    let err = escalate_err(&app, &police_lead, repeated(1)).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("needs 3 similar cases"), "{message}");
    assert!(message.contains("there are 2"), "{message}");

    // A third similar case meets the count, and is flagged as it is
    // raised; the first is not (yet).
    let third =
        raise(&app, &police_practitioner, case(&csc, "SP-2026-006", "information-sharing")).await;
    let flag = |id: Value| {
        let (app, token) = (&app, police_lead.clone());
        async move {
            app.gql_as_ok(
                &token,
                "query($id: ID!) { case(id: $id) { repeatedDisagreement { similarCases threshold windowDays } } }",
                json!({ "id": id }),
            )
            .await["case"]["repeatedDisagreement"]
                .clone()
        }
    };
    let crossed = json!({ "similarCases": 3, "threshold": 3, "windowDays": 365 });
    assert_eq!(flag(third["id"].clone()).await, crossed);
    assert_eq!(flag(json!(id)).await, Value::Null);
    // Pan-Sussex asks whoever escalates to state the timeframe.
    let err = escalate_err(
        &app,
        &police_lead,
        json!({ "caseId": id, "expectedVersion": 1, "reason": "REPEATED_DISAGREEMENT" }),
    )
    .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    assert!(err["message"].as_str().unwrap().starts_with("timeframeWorkingDays:"), "{err:#}");
    // Referring to the Independent Scrutineer is not a practitioner's call.
    let err = escalate_err(&app, &police_practitioner, repeated(1)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    assert_eq!(
        err["message"],
        "a practitioner may not start_higher at stage-5; roles that may: safeguarding_lead, head_of_service"
    );
    // The rule only sends a case to step 5.
    let err = escalate_err(
        &app,
        &police_lead,
        json!({ "caseId": id, "reason": "REPEATED_DISAGREEMENT", "toStage": "stage-6", "timeframeWorkingDays": 10 }),
    )
    .await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    assert_eq!(row(&app, &id).await.version, 1, "refusals change nothing");

    // Straight from step 1 to step 5, with no immediate-risk justification;
    // the stated timeframe is the due date, in working days.
    let (moved, _, _) =
        due_in_working_days(&app, 10, escalate(&app, &police_lead, repeated(1))).await;
    assert_eq!(
        moved,
        json!({ "id": id, "stage": "stage-5", "status": "OPEN", "version": 2, "route": "main" })
    );
    let (action, data) = last_event(&app, &id).await;
    assert_eq!(action, "escalate");
    assert_eq!(data["reason"], "repeated_disagreement");
    assert_eq!(data["from_stage"], "stage-1");
    assert_eq!(data["similar_cases"], 3);
    assert_eq!(data["board_told"], true);
    assert_eq!(flag(json!(id)).await, crossed, "escalated for it: flagged too");

    // At step 5 the scrutineer (board chair) acts; the lead reads the report.
    let flags = can(&app, &police_lead, &id).await;
    assert_eq!(flags["escalate"], false);
    assert_eq!(flags["readReport"], true);
    assert_eq!(flags["withdraw"], true);
    let flags = can(&app, &chair, &id).await;
    assert_eq!((flags["escalate"].clone(), flags["resolve"].clone()), (json!(true), json!(true)));
    let data = app
        .gql_as_ok(
            &chair,
            RESOLVE,
            json!({ "input": { "caseId": id, "expectedVersion": 2, "outcome": "Information-sharing agreement between police and children's services revised.", "learning": "Repeated disagreements pointed to a gap in the agreement." } }),
        )
        .await;
    assert_eq!(data["resolveCase"]["case"]["status"], "RESOLVED");
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

db_test!(leeds_conference_request_goes_through_the_common_tail, |app| {
    let csws = app.agency_id("ld-csws").await;
    let practitioner = app.token(Role::Practitioner, Some("ld-lth"), "leeds");
    let designated = app.token(Role::SafeguardingLead, Some("ld-lth"), "leeds");
    let manager = app.token(Role::Manager, Some("ld-lth"), "leeds");
    let representative = app.token(Role::HeadOfService, Some("ld-lth"), "leeds");
    let csc_manager = app.token(Role::Manager, Some("ld-csws"), "leeds");
    let chair = app.token(Role::BoardChair, None, "leeds");
    let request = |reference: &str| {
        json!({
            "receivingAgencyId": csws,
            "childReference": reference,
            "category": "conference-need",
            "route": "conference-request",
            "summary": "Hospital asks for an initial child protection conference after a second unexplained injury.",
        })
    };
    let case = raise(&app, &practitioner, request("LTH-2026-0101")).await;
    let id = case["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (case["route"].clone(), case["stage"].clone()),
        (json!("conference-request"), json!("request"))
    );
    assert_eq!(row(&app, &id).await.due_on, None, "Leeds sets no time limits");
    // Children's Social Care decides whether to convene: its manager accepts;
    // only the raising side withdraws.
    let flags = can(&app, &csc_manager, &id).await;
    assert_eq!((flags["accept"].clone(), flags["withdraw"].clone()), (json!(true), json!(false)));
    // A senior manager or designated professional may raise the backed
    // request directly (a second entry stage); a practitioner may not.
    let mut backed = request("LTH-2026-0102");
    backed["stage"] = json!("senior-support");
    let err = app.gql_as_err(&practitioner, &raise_query(), json!({ "input": backed })).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");

    let up = |v: i32| json!({ "caseId": id, "expectedVersion": v, "reason": "UNRESOLVED" });
    // The designated professional backs the request, which should now
    // normally be agreed.
    assert_eq!(escalate(&app, &designated, up(1)).await["stage"], "senior-support");
    let (_, data) = last_event(&app, &id).await;
    assert_eq!(data["backed_request"], true);
    // A manager may not take the backed request further.
    let err = escalate_err(&app, &manager, up(2)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    assert_eq!(can(&app, &manager, &id).await["escalate"], false);
    // The common tail: board representative, board manager, board chair.
    assert_eq!(escalate(&app, &representative, up(2)).await["stage"], "board-representative");
    assert_eq!(escalate(&app, &representative, up(3)).await["stage"], "board-manager");
    let flags = can(&app, &representative, &id).await;
    assert_eq!(
        (flags["escalate"].clone(), flags["readReport"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(escalate(&app, &chair, up(4)).await["stage"], "board-chair");
    let (_, data) = last_event(&app, &id).await;
    assert_eq!(data["board_told"], true);
    let flags = can(&app, &chair, &id).await;
    assert_eq!((flags["escalate"].clone(), flags["resolve"].clone()), (json!(false), json!(true)));
    let data = app
        .gql_as_ok(
            &chair,
            RESOLVE,
            json!({ "input": { "caseId": id, "expectedVersion": 5, "outcome": "Initial child protection conference convened." } }),
        )
        .await;
    assert_eq!(
        data["resolveCase"]["case"],
        json!({ "id": id, "status": "RESOLVED", "version": 6 })
    );
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

db_test!(rotherham_challenge_starts_at_stage_2_with_working_day_deadlines, |app| {
    let cyps = app.agency_id("ro-cyps").await;
    // The Conference Chair works in the Safeguarding Unit and is mapped to
    // the safeguarding lead role (see the protocols' README).
    let conference_chair =
        app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    let unit_manager = app.token(Role::Manager, Some("ro-safeguarding-unit"), "rotherham");
    let line_manager = app.token(Role::Manager, Some("ro-cyps"), "rotherham");
    let head_of_service = app.token(Role::HeadOfService, Some("ro-cyps"), "rotherham");
    let board_chair = app.token(Role::BoardChair, None, "rotherham");
    let challenge = |stage: &str, justification: Option<&str>| {
        json!({
            "receivingAgencyId": cyps,
            "childReference": "RMBC-2026-0777",
            "category": "conference-practice",
            "route": "challenge",
            "stage": stage,
            "summary": "Social work report not shared with parents; review conference stood down.",
            "immediateRiskJustification": justification,
        })
    };
    // Starting at stage 2 needs the serious-concern justification, and is
    // the chair's alone; stage 4 needs stages 1 to 3 exhausted.
    let refusals = [
        (&conference_chair, challenge("stage-2", None), "BAD_USER_INPUT"),
        (&unit_manager, challenge("stage-2", Some("serious")), "FORBIDDEN"),
        (&conference_chair, challenge("stage-4", Some("serious")), "FORBIDDEN"),
    ];
    for (token, input, code) in refusals {
        let err = app.gql_as_err(token, &raise_query(), json!({ "input": input })).await;
        assert_eq!(err["extensions"]["code"], code, "{input}: {err:#}");
    }

    // The serious start: straight to stage 2, due by its first milestone,
    // the chair's form, 2 working days on (the response's 5 count from the
    // form), skipping weekends and bank holidays.
    let justification = "Second conference stood down; the child's plan is drifting.";
    let (case, today, due) = due_in_working_days(
        &app,
        2,
        raise(&app, &conference_chair, challenge("stage-2", Some(justification))),
    )
    .await;
    let id = case["id"].as_str().unwrap().to_owned();
    // The API shows the same deadline, its instant and where it stands.
    let shown = app
        .gql_as_ok(
            &conference_chair,
            "query($id: ID!) { case(id: $id) { dueOn dueAt workingDaysRemaining overdue } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(shown["case"]["dueOn"], json!(due));
    let due_at: chrono::DateTime<Utc> = shown["case"]["dueAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        due_at,
        escalations::domain::deadline::due_at(due),
        "the end of the due day in London"
    );
    assert_eq!(shown["case"]["workingDaysRemaining"], 2);
    assert_eq!(shown["case"]["overdue"], false);
    assert_eq!(
        (case["route"].clone(), case["stage"].clone()),
        (json!("challenge"), json!("stage-2"))
    );
    let cal = england_and_wales();
    let (action, data) = last_event(&app, &id).await;
    assert_eq!(action, "raise");
    assert_eq!(data["started_higher"], true);
    assert_eq!(
        data.get("family_told"),
        None,
        "that the family was told is the chair's to record (recordFamilyTold), not assumed"
    );
    assert_eq!(data["milestones"], json!({ "form": cal.add_working_days(today, 2).unwrap() }));

    // The chair alone escalates and judges the response; the line manager
    // and the middle or senior manager of the agency accept and respond.
    let flags = can(&app, &conference_chair, &id).await;
    assert_eq!(
        flags,
        json!({ "addRecord": true, "escalate": true, "accept": false, "resolve": true, "withdraw": true, "skipStage": false, "readReport": false })
    );
    let flags = can(&app, &line_manager, &id).await;
    assert_eq!(
        (flags["accept"].clone(), flags["escalate"].clone(), flags["resolve"].clone()),
        (json!(true), json!(false), json!(false))
    );
    assert_eq!(can(&app, &head_of_service, &id).await["accept"], true);
    let err =
        escalate_err(&app, &head_of_service, json!({ "caseId": id, "reason": "UNRESOLVED" })).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");

    // The response fails: stage 3, due in 1 working day: the director told
    // and the form, both within one working day (the response's 4 count
    // from the form); the partnership is told.
    let up = |v: i32| json!({ "caseId": id, "expectedVersion": v, "reason": "UNRESOLVED" });
    let (case, today, _) =
        due_in_working_days(&app, 1, escalate(&app, &conference_chair, up(1))).await;
    assert_eq!(case["stage"], "stage-3");
    let (_, data) = last_event(&app, &id).await;
    let next = json!(cal.add_working_days(today, 1).unwrap());
    assert_eq!(data["milestones"], json!({ "director": next, "form": next }));
    assert_eq!(data["board_told"], true);
    // The business unit is told at stage 3 (an event after the escalation's,
    // of the same version), and not before.
    assert_eq!(
        event_types(&app, &board_chair, &id).await,
        ["CASE_RAISED v1", "CASE_ESCALATED v2", "BOARD_NOTIFIED v2"]
    );

    // Stages 1 to 3 exhausted: the Practice Review Group, with no time limit.
    assert_eq!(escalate(&app, &conference_chair, up(2)).await["stage"], "stage-4");
    // The Practice Review Group is told at stage 4.
    assert_eq!(
        event_types(&app, &conference_chair, &id).await[3..],
        ["CASE_ESCALATED v3", "BOARD_NOTIFIED v3"]
    );
    assert_eq!(row(&app, &id).await.due_on, None);
    assert_eq!(can(&app, &conference_chair, &id).await["resolve"], false);
    let data = app
        .gql_as_ok(
            &board_chair,
            RESOLVE,
            json!({ "input": { "caseId": id, "expectedVersion": 3, "outcome": "Practice Review Group agreed a recovery plan with Children's Services.", "learning": "Reports to conference are tracked by the Safeguarding Unit." } }),
        )
        .await;
    assert_eq!(
        data["resolveCase"]["case"],
        json!({ "id": id, "status": "RESOLVED", "version": 4 })
    );
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

db_test!(six_stage_reaches_the_child_protection_manager, |app| {
    let csc = app.agency_id("ss-csc").await;
    let practitioner = app.token(Role::Practitioner, Some("ss-health"), "six-stage");
    let manager = app.token(Role::Manager, Some("ss-health"), "six-stage");
    let cp_manager = app.token(Role::SafeguardingLead, Some("ss-csc"), "six-stage");
    let csc_practitioner = app.token(Role::Practitioner, Some("ss-csc"), "six-stage");
    let case = raise(
        &app,
        &practitioner,
        json!({
            "receivingAgencyId": csc,
            "childReference": "SSH-2026-0404",
            "category": "risk-interpretation",
            "summary": "Health visitor reads the bruising as significant; social care does not.",
        }),
    )
    .await;
    let id = case["id"].as_str().unwrap().to_owned();
    assert_eq!(case["stage"], "stage-1");
    let up = |v: i32| json!({ "caseId": id, "expectedVersion": v, "reason": "UNRESOLVED" });
    // Stage 1 is between the professionals, who may take it to their
    // managers or leads.
    assert_eq!(can(&app, &practitioner, &id).await["escalate"], true);
    assert_eq!(escalate(&app, &practitioner, up(1)).await["stage"], "stage-2");
    // From stage 2 on, the manager or lead escalates.
    let err = escalate_err(&app, &practitioner, up(2)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    // Urgent action is taken outside the process: no skipping, even on
    // immediate risk.
    let err = escalate_err(
        &app,
        &manager,
        json!({ "caseId": id, "reason": "IMMEDIATE_RISK", "toStage": "stage-4", "immediateRiskJustification": "bruising on a baby" }),
    )
    .await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    assert_eq!(escalate(&app, &manager, up(2)).await["stage"], "stage-3");
    assert_eq!(escalate(&app, &manager, up(3)).await["stage"], "stage-4");
    let stored = row(&app, &id).await;
    assert_eq!((stored.stage.as_str(), stored.version, stored.due_on), ("stage-4", 4, None));
    // At stage 4 the local Child Protection Manager (the receiving agency's
    // safeguarding lead) accepts; the raising practitioner still records;
    // the raising manager may go on to stage 5 (resources) or withdraw.
    let flags = can(&app, &cp_manager, &id).await;
    assert_eq!(
        flags,
        json!({ "addRecord": true, "escalate": true, "accept": true, "resolve": true, "withdraw": false, "skipStage": false, "readReport": false })
    );
    let flags = can(&app, &practitioner, &id).await;
    assert_eq!(
        flags,
        json!({ "addRecord": true, "escalate": false, "accept": false, "resolve": false, "withdraw": false, "skipStage": false, "readReport": false })
    );
    let flags = can(&app, &manager, &id).await;
    assert_eq!(
        (flags["escalate"].clone(), flags["withdraw"].clone(), flags["accept"].clone()),
        (json!(true), json!(true), json!(false))
    );
    assert_eq!(can(&app, &csc_practitioner, &id).await["accept"], false);
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

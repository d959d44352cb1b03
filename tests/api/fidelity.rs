//! The protocols as the seeds wrote them (issue 12), over HTTP: which side
//! may act at a stage, the questions a stage asks, and the milestones
//! timed separately inside a stage.

use escalations::domain::role::Role;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;

const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id stage } } }";
const ESCALATE: &str =
    "mutation($input: EscalateCaseInput!) { escalateCase(input: $input) { case { id stage } } }";
const ADD_RECORD: &str =
    "mutation($input: AddRecordInput!) { addRecord(input: $input) { record { id stage kind } } }";
const CAN: &str = "query($id: ID!) { case(id: $id) { viewerCan { escalate withdraw resolve } } }";

/// A Western Bay case from the police to children's social care, at stage 1.
async fn western_bay_case_at_stage_1(app: &TestApp) -> String {
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let data = app
        .gql_as_ok(&police, RAISE, json!({ "input": { "receivingAgencyId": receiving, "childReference": "SWP-120", "category": "referral-response", "summary": "Disputed decision." } }))
        .await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    app.gql_as_ok(&police, ESCALATE, json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    id
}

/// Writes a record of each of `kinds` on the case, as `token`.
async fn add_records(app: &TestApp, token: &str, id: &str, kinds: &[&str]) {
    for kind in kinds {
        app.gql_as_ok(
            token,
            ADD_RECORD,
            json!({ "input": { "caseId": id, "kind": kind, "facts": "Written." } }),
        )
        .await;
    }
}

db_test!(at_western_bay_only_the_raising_side_escalates, |app| {
    let id = western_bay_case_at_stage_1(&app).await;
    let theirs = app.token(Role::Manager, Some("wb-swansea-csc"), "western-bay");
    let ours = app.token(Role::Manager, Some("wb-police"), "western-bay");
    // The receiving side's manager: viewerCan says no, and so does the
    // mutation, naming the side; nothing changes.
    let can = app.gql_as_ok(&theirs, CAN, json!({ "id": id })).await;
    assert_eq!(
        can["case"]["viewerCan"],
        json!({ "escalate": false, "withdraw": false, "resolve": true })
    );
    let err = app
        .gql_as_err(&theirs, ESCALATE, json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("only the raising agency may escalate"), "{message}");
    // The raising side's manager may, and does (with the records stage 1
    // asks for).
    add_records(&app, &ours, &id, &["DISCUSSION", "ANALYSIS"]).await;
    let can = app.gql_as_ok(&ours, CAN, json!({ "id": id })).await;
    assert_eq!(can["case"]["viewerCan"]["escalate"], true);
    let data = app
        .gql_as_ok(&ours, ESCALATE, json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    assert_eq!(data["escalateCase"]["case"]["stage"], "stage-2");
});

const STAGES: &str = "{ protocols { id routes { id stages { key permissions { action roles side } questions { heading items } } } } }";

/// The stage `key` of the first route of protocol `id`.
fn stage<'a>(protocols: &'a Value, id: &str, key: &str) -> &'a Value {
    let protocol = protocols.as_array().unwrap().iter().find(|p| p["id"] == id).unwrap();
    protocol["routes"][0]["stages"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap()
}

fn permission<'a>(stage: &'a Value, action: &str) -> &'a Value {
    stage["permissions"].as_array().unwrap().iter().find(|p| p["action"] == action).unwrap()
}

db_test!(stages_show_who_may_act_on_which_side_and_their_questions, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let data = app.gql_as_ok(&token, STAGES, json!({})).await;
    let protocols = &data["protocols"];
    let wb1 = stage(protocols, "western-bay", "stage-1");
    assert_eq!(
        permission(wb1, "ESCALATE"),
        &json!({ "action": "ESCALATE", "roles": ["MANAGER", "SAFEGUARDING_LEAD", "HEAD_OF_SERVICE"], "side": "RAISING" })
    );
    assert_eq!(permission(wb1, "WITHDRAW")["side"], "RAISING");
    assert_eq!(permission(wb1, "ACCEPT")["side"], "RECEIVING");
    assert_eq!(permission(wb1, "RESOLVE")["side"], "EITHER");
    assert_eq!(permission(wb1, "READ_AUDIT_TRAIL")["side"], Value::Null, "reads have no side");
    assert_eq!(permission(wb1, "RAISE")["roles"], json!([]), "stage 1 is no entry stage");
    let ps1 = stage(protocols, "pan-sussex", "stage-1");
    assert_eq!(permission(ps1, "ESCALATE")["side"], "EITHER");
    // Seed 004's stage-1 questions, in the source's order.
    let six = stage(protocols, "six-stage", "stage-1");
    let questions = six["questions"].as_array().unwrap();
    assert!(questions.len() >= 3, "{questions:?}");
    assert_eq!(
        questions[0]["heading"],
        "Do all parties clearly understand why there is a difference of opinion?"
    );
    assert_eq!(questions[1]["items"], json!(["Is this clear?"]));
    assert_eq!(wb1["questions"], json!([]), "Western Bay asks none");
});

const MISSING: &str =
    "query($id: ID!) { case(id: $id) { stage version missingRecords { stage kind flaggedAt } } }";

db_test!(
    western_bay_stage_2_needs_the_record_and_the_analysis_unless_the_risk_is_immediate,
    |app| {
        let ours = app.token(Role::Manager, Some("wb-police"), "western-bay");
        let id = western_bay_case_at_stage_1(&app).await;
        let escalate = json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } });
        let before = app.gql_as_ok(&ours, MISSING, json!({ "id": id })).await;
        // Nothing written at stage 1: refused, naming both kinds; nothing changes.
        let err = app.gql_as_err(&ours, ESCALATE, escalate.clone()).await;
        assert_eq!(
            (&err["extensions"]["code"], &err["extensions"]["field"]),
            (&json!("BAD_USER_INPUT"), &json!("records"))
        );
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("discussion, analysis"), "{message}");
        assert_eq!(app.gql_as_ok(&ours, MISSING, json!({ "id": id })).await, before);
        // The discussion alone is not enough; a meeting is no analysis.
        add_records(&app, &ours, &id, &["DISCUSSION", "MEETING"]).await;
        let err = app.gql_as_err(&ours, ESCALATE, escalate.clone()).await;
        let message = err["message"].as_str().unwrap();
        assert!(message.contains("at it: analysis;"), "{message}");
        // With the analysis it goes, and nothing is missing.
        add_records(&app, &ours, &id, &["ANALYSIS"]).await;
        app.gql_as_ok(&ours, ESCALATE, escalate).await;
        let now = app.gql_as_ok(&ours, MISSING, json!({ "id": id })).await;
        assert_eq!(now["case"]["stage"], "stage-2");
        assert_eq!(now["case"]["missingRecords"], json!([]));

        // Immediate risk is never held up: the case moves, and shows the gap.
        let urgent = western_bay_case_at_stage_1(&app).await;
        add_records(&app, &ours, &urgent, &["ANALYSIS"]).await;
        let data = app
        .gql_as_ok(&ours, ESCALATE, json!({ "input": { "caseId": urgent, "reason": "IMMEDIATE_RISK", "immediateRiskJustification": "Seen with injuries today." } }))
        .await;
        assert_eq!(data["escalateCase"]["case"]["stage"], "stage-2");
        let shown = app.gql_as_ok(&ours, MISSING, json!({ "id": urgent })).await;
        let missing = shown["case"]["missingRecords"].as_array().unwrap();
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(
            (&missing[0]["stage"], &missing[0]["kind"]),
            (&json!("stage-1"), &json!("DISCUSSION"))
        );
        // Another agency sees neither the case nor its gaps.
        let health = app.token(Role::Manager, Some("wb-health"), "western-bay");
        let err = app.gql_as_err(&health, MISSING, json!({ "id": urgent })).await;
        assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    }
);

/// Sets the server's clock (in this test's process) to `at`, UTC.
fn clock(at: &str) {
    escalations::service::audit::set_clock_for_tests(Some(at.parse().unwrap()));
}

const MILESTONES: &str = "query($id: ID!) { case(id: $id) { stage dueOn overdue \
    nextMilestone { key } \
    milestones { key owedBy { side roles } dueOn dueAt completedAt overdue } } }";

db_test!(rotherham_challenge_stage_1_times_the_form_and_the_response_separately, |app| {
    let cyps = app.agency_id("ro-cyps").await;
    let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    let line_manager = app.token(Role::Manager, Some("ro-cyps"), "rotherham");
    // Raised on Thursday 24 December 2026, before Christmas Day and the
    // Boxing Day substitute (Monday 28th): the form is due three working
    // days on, Thursday 31 December; the response has no date until the
    // form is written.
    clock("2026-12-24T10:00:00Z");
    let data = app
        .gql_as_ok(&chair, RAISE, json!({ "input": { "receivingAgencyId": cyps, "childReference": "RMBC-2026-0901", "category": "conference-practice", "route": "challenge", "summary": "Conference report not shared." } }))
        .await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    let shown = app.gql_as_ok(&chair, MILESTONES, json!({ "id": id })).await;
    assert_eq!(
        shown["case"],
        json!({
            "stage": "stage-1", "dueOn": "2026-12-31", "overdue": false,
            "nextMilestone": { "key": "form" },
            "milestones": [
                { "key": "form", "owedBy": { "side": "RAISING", "roles": ["SAFEGUARDING_LEAD"] },
                  "dueOn": "2026-12-31", "dueAt": "2026-12-31T23:59:59+00:00", "completedAt": null, "overdue": false },
                { "key": "response", "owedBy": { "side": "RECEIVING", "roles": ["MANAGER"] },
                  "dueOn": null, "dueAt": null, "completedAt": null, "overdue": false },
            ],
        }),
        "{shown:#}"
    );
    // A form written by the receiving side completes nothing.
    add_records(&app, &line_manager, &id, &["FORM"]).await;
    let shown = app.gql_as_ok(&chair, MILESTONES, json!({ "id": id })).await;
    assert_eq!(shown["case"]["nextMilestone"]["key"], "form");

    // The chair's form on Tuesday 29 December: the response is due ten
    // working days after it (New Year's Day skipped), Wednesday 13 January.
    clock("2026-12-29T11:00:00Z");
    add_records(&app, &chair, &id, &["FORM"]).await;
    let shown = app.gql_as_ok(&line_manager, MILESTONES, json!({ "id": id })).await;
    let case = &shown["case"];
    assert_eq!(case["dueOn"], "2027-01-13", "the case follows its next open milestone");
    assert_eq!(case["nextMilestone"]["key"], "response");
    // (The moved clock runs on from where it was set.)
    let completed = case["milestones"][0]["completedAt"].as_str().unwrap();
    assert!(completed.starts_with("2026-12-29T11:00:0"), "{completed}");
    assert_eq!(case["milestones"][1]["dueOn"], "2027-01-13");
    // Not yet overdue: an escalation for it is refused.
    let overdue = json!({ "input": { "caseId": id, "reason": "OVERDUE", "toStage": "stage-3" } });
    let err = app.gql_as_err(&chair, ESCALATE, overdue.clone()).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");

    // No response by Thursday 14 January: the milestone, and the case, are
    // overdue, and the chair goes straight to stage 3 for it, with no
    // immediate-risk justification (the protocol's skip_for).
    clock("2027-01-14T09:00:00Z");
    let shown = app.gql_as_ok(&chair, MILESTONES, json!({ "id": id })).await;
    assert_eq!(
        (shown["case"]["overdue"].clone(), shown["case"]["milestones"][1]["overdue"].clone()),
        (json!(true), json!(true))
    );
    // Not past stage 3, though: stage 4 needs stages 1 to 3 exhausted.
    let err = app
        .gql_as_err(
            &chair,
            ESCALATE,
            json!({ "input": { "caseId": id, "reason": "OVERDUE", "toStage": "stage-4" } }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    let data = app.gql_as_ok(&chair, ESCALATE, overdue).await;
    assert_eq!(data["escalateCase"]["case"]["stage"], "stage-3");
    // Stage 3: the director told and the form, each within one working day.
    let shown = app.gql_as_ok(&chair, MILESTONES, json!({ "id": id })).await;
    let keys: Vec<(Value, Value)> = shown["case"]["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["key"].clone(), m["dueOn"].clone()))
        .collect();
    assert_eq!(
        keys,
        [
            (json!("director"), json!("2027-01-15")),
            (json!("form"), json!("2027-01-15")),
            (json!("response"), Value::Null)
        ]
    );
    assert_eq!(shown["case"]["dueOn"], "2027-01-15");
});

db_test!(a_protocols_milestones_and_skip_reasons_are_published, |app| {
    let token = app.token(Role::Practitioner, Some("ro-cyps"), "rotherham");
    let data = app
        .gql_as_ok(&token, "{ protocols { id routes { id stages { key timeLimitWorkingDays milestones { key side roles withinWorkingDays after recordKind } skipFor { reasons upTo } } } } }", json!({}))
        .await;
    let rotherham =
        data["protocols"].as_array().unwrap().iter().find(|p| p["id"] == "rotherham").unwrap();
    let challenge =
        rotherham["routes"].as_array().unwrap().iter().find(|r| r["id"] == "challenge").unwrap();
    let stage_1 = &challenge["stages"][0];
    assert_eq!(
        stage_1["milestones"],
        json!([
            { "key": "form", "side": "RAISING", "roles": ["SAFEGUARDING_LEAD"], "withinWorkingDays": 3, "after": "start", "recordKind": "FORM" },
            { "key": "response", "side": "RECEIVING", "roles": ["MANAGER"], "withinWorkingDays": 10, "after": "form", "recordKind": "RESPONSE" },
        ])
    );
    assert_eq!(
        stage_1["skipFor"],
        json!({ "reasons": ["OVERDUE", "UNRESOLVED"], "upTo": "stage-3" })
    );
    assert_eq!(challenge["stages"][2]["milestones"][1]["after"], "start");
    // The practice route times its stages as one.
    let practice =
        rotherham["routes"].as_array().unwrap().iter().find(|r| r["id"] == "practice").unwrap();
    assert_eq!(practice["stages"][0]["milestones"], json!([]));
    assert_eq!(practice["stages"][0]["skipFor"], Value::Null);
});

const ACKNOWLEDGE: &str = "mutation($input: AcknowledgeCaseInput!) { acknowledgeCase(input: $input) { case { id acknowledgedAt version } } }";
const ACKNOWLEDGED: &str = "query($id: ID!) { case(id: $id) { acknowledgedAt viewerCan { accept } events(first: 20) { nodes { type } } } }";

db_test!(the_receiving_side_acknowledges_a_case_once_per_stage, |app| {
    let id = western_bay_case_at_stage_1(&app).await;
    let theirs = app.token(Role::Manager, Some("wb-swansea-csc"), "western-bay");
    let ours = app.token(Role::Manager, Some("wb-police"), "western-bay");
    // The flag promises the mutation to the receiving side only.
    let before = app.gql_as_ok(&theirs, ACKNOWLEDGED, json!({ "id": id })).await;
    assert_eq!(before["case"]["acknowledgedAt"], Value::Null);
    assert_eq!(before["case"]["viewerCan"]["accept"], true);
    let raiser = app.gql_as_ok(&ours, ACKNOWLEDGED, json!({ "id": id })).await;
    assert_eq!(raiser["case"]["viewerCan"]["accept"], false);
    let err = app.gql_as_err(&ours, ACKNOWLEDGE, json!({ "input": { "caseId": id } })).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");

    let data = app.gql_as_ok(&theirs, ACKNOWLEDGE, json!({ "input": { "caseId": id } })).await;
    let at = data["acknowledgeCase"]["case"]["acknowledgedAt"].clone();
    assert!(at.is_string(), "{data:#}");
    let after = app.gql_as_ok(&theirs, ACKNOWLEDGED, json!({ "id": id })).await;
    assert_eq!(after["case"]["acknowledgedAt"], at);
    assert_eq!(after["case"]["viewerCan"]["accept"], false, "once per stage");
    let types: Vec<&str> = after["case"]["events"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.last(), Some(&"CASE_ACKNOWLEDGED"), "{types:?}");
    // Again: CONFLICT, and nothing changes.
    let version = data["acknowledgeCase"]["case"]["version"].clone();
    let err = app.gql_as_err(&theirs, ACKNOWLEDGE, json!({ "input": { "caseId": id } })).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT", "{err:#}");
    let again = app
        .gql_as_ok(&theirs, "query($id: ID!) { case(id: $id) { version } }", json!({ "id": id }))
        .await;
    assert_eq!(again["case"]["version"], version);

    // viewerPermissions says why, as the mutations would, and agrees with
    // viewerCan on every action.
    let why = app
        .gql_as_ok(&theirs, "query($id: ID!) { case(id: $id) { viewerCan { addRecord recordView agreeAction escalate accept resolve withdraw skipStage readAuditTrail readReport } viewerPermissions { action allowed code reason allowedRoles allowedSides } } }", json!({ "id": id }))
        .await;
    let perms = why["case"]["viewerPermissions"].as_array().unwrap();
    assert_eq!(perms.len(), 10);
    for p in perms {
        let action = p["action"].as_str().unwrap().to_lowercase();
        let flag: String = action
            .split('_')
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_owned() } else { w[..1].to_uppercase() + &w[1..] })
            .collect();
        assert_eq!(p["allowed"], why["case"]["viewerCan"][&flag], "{p:#}");
        assert_eq!(p["allowed"] == true, p["code"].is_null(), "{p:#}");
    }
    let of = |action: &str| perms.iter().find(|p| p["action"] == action).unwrap().clone();
    let escalate = of("ESCALATE");
    assert_eq!(escalate["code"], "FORBIDDEN");
    assert!(
        escalate["reason"].as_str().unwrap().contains("only the raising agency may escalate"),
        "{escalate:#}"
    );
    assert_eq!(escalate["allowedSides"], json!(["RAISING"]));
    let accept = of("ACCEPT");
    assert_eq!(
        (accept["allowed"].clone(), accept["code"].clone()),
        (json!(false), json!("CONFLICT"))
    );

    // Up a stage (stage 1's records first): to be acknowledged there anew.
    crate::helpers::western_bay_stage_1_records(&app, &id).await;
    app.gql_as_ok(&ours, ESCALATE, json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    let lead = app.token(Role::SafeguardingLead, Some("wb-swansea-csc"), "western-bay");
    let up = app.gql_as_ok(&lead, ACKNOWLEDGED, json!({ "id": id })).await;
    assert_eq!(up["case"]["acknowledgedAt"], Value::Null);
    assert_eq!(up["case"]["viewerCan"]["accept"], true);
});

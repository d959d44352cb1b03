//! The protocols as the seeds wrote them (issue 12), over HTTP: which side
//! may act at a stage, and the questions a stage asks.

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

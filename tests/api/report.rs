//! The Resolution of Professional Differences Report and the board queue.

use escalations::domain::role::Role;
use serde_json::json;

use crate::db_test;

const REPORT: &str = "query($id: ID!) { report(caseId: $id) { childReference category summary raisingAgency { code } receivingAgency { code } professionals { sub designation agency { code } } views { agency { code } view stage } stagesReached { stage reachedAt } resolvedAtStage closedAt outcome learning agreedActions { description owner { code } } workingDaysTaken case { stage status } } }";

db_test!(a_western_bay_case_at_stage_3_has_its_report_and_is_in_the_board_queue, |app| {
    let police_pr = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let data = app
        .gql_as_ok(
            &police_pr,
            "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }",
            json!({ "i": { "receivingAgencyId": receiving, "childReference": "SWP-2026-0099", "category": "strategy-discussion", "summary": "No strategy meeting after a disclosure at school." } }),
        )
        .await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    let escalate =
        "mutation($i: EscalateCaseInput!) { escalateCase(input: $i) { case { stage } } }";
    let police_mgr = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let police_lead = app.token(Role::SafeguardingLead, Some("wb-police"), "western-bay");
    let csc_lead = app.token(Role::SafeguardingLead, Some("wb-swansea-csc"), "western-bay");
    app.gql_as_ok(&police_mgr, escalate, json!({ "i": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    crate::helpers::western_bay_stage_1_records(&app, &id).await;
    app.gql_as_ok(&police_mgr, escalate, json!({ "i": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    app.gql_as_ok(
        &csc_lead,
        "mutation($i: RecordAgencyViewInput!) { recordAgencyView(input: $i) { view { stage } } }",
        json!({ "i": { "caseId": id, "view": "Threshold for a strategy meeting was not met." } }),
    )
    .await;
    app.gql_as_ok(
        &police_lead,
        "mutation($i: RecordAgencyViewInput!) { recordAgencyView(input: $i) { view { stage } } }",
        json!({ "i": { "caseId": id, "view": "A disclosure meets the threshold." } }),
    )
    .await;
    // Before stage 3 nobody reads the report.
    let err = app.gql_as_err(&police_lead, REPORT, json!({ "id": id })).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    app.gql_as_ok(&police_lead, escalate, json!({ "i": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    let due = (chrono::Utc::now().date_naive() + chrono::Days::new(10)).to_string();
    let police_hos = app.token(Role::HeadOfService, Some("wb-police"), "western-bay");
    app.gql_as_ok(
        &police_hos,
        "mutation($i: AgreeActionInput!) { agreeAction(input: $i) { action { id } } }",
        json!({ "i": { "caseId": id, "description": "Hold a strategy meeting.", "ownerAgencyId": receiving, "dueOn": due } }),
    )
    .await;

    // The board chair sees it in the queue, with the report.
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let queue = app.gql_as_ok(&chair, "{ boardQueue { id stage } }", json!({})).await;
    assert_eq!(queue["boardQueue"], json!([{ "id": id, "stage": "stage-3" }]));
    let other_chair = app.token(Role::BoardChair, None, "pan-sussex");
    let queue = app.gql_as_ok(&chair, "{ boardQueue(first: 1) { id } }", json!({})).await;
    assert_eq!(queue["boardQueue"], json!([{ "id": id }]));
    for first in [0, 101] {
        let err = app
            .gql_as_err(
                &chair,
                "query($n: Int!) { boardQueue(first: $n) { id } }",
                json!({ "n": first }),
            )
            .await;
        assert_eq!(
            (&err["extensions"]["code"], &err["extensions"]["field"]),
            (&json!("BAD_USER_INPUT"), &json!("first")),
            "{err:#}"
        );
    }
    let queue = app.gql_as_ok(&other_chair, "{ boardQueue { id } }", json!({})).await;
    assert_eq!(queue["boardQueue"], json!([]));
    let err = app.gql_as_err(&police_hos, "{ boardQueue { id } }", json!({})).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN");

    let report = app.gql_as_ok(&chair, REPORT, json!({ "id": id })).await["report"].clone();
    assert_eq!(report["childReference"], "SWP-2026-0099");
    assert_eq!(report["category"], "strategy-discussion");
    assert_eq!(report["summary"], "No strategy meeting after a disclosure at school.");
    assert_eq!(report["raisingAgency"]["code"], "wb-police");
    assert_eq!(report["receivingAgency"]["code"], "wb-swansea-csc");
    let stages: Vec<&str> = report["stagesReached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["informal", "stage-1", "stage-2", "stage-3"]);
    let designations: Vec<&str> = report["professionals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["designation"].as_str().unwrap())
        .collect();
    assert_eq!(
        designations,
        ["practitioner", "manager", "safeguarding_lead", "safeguarding_lead", "head_of_service"]
    );
    assert_eq!(report["professionals"][2]["agency"]["code"], "wb-swansea-csc");
    let views: Vec<&str> = report["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["agency"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(views, ["wb-swansea-csc", "wb-police"], "the views of all agencies");
    assert_eq!(report["agreedActions"][0]["owner"]["code"], "wb-swansea-csc");
    assert_eq!(report["resolvedAtStage"], serde_json::Value::Null);
    assert_eq!(report["outcome"], serde_json::Value::Null);
    assert_eq!(report["workingDaysTaken"].as_i64().unwrap(), 0);
    assert_eq!(report["case"], json!({ "stage": "stage-3", "status": "OPEN" }));

    // Resolved at stage 3 by the heads of service: the report says so and the
    // case leaves the queue.
    app.gql_as_ok(
        &police_hos,
        "mutation($i: ResolveCaseInput!) { resolveCase(input: $i) { case { status } } }",
        json!({ "i": { "caseId": id, "outcome": "Strategy meeting held; plan agreed.", "learning": "Disclosures at school trigger a strategy discussion." } }),
    )
    .await;
    let report = app.gql_as_ok(&police_lead, REPORT, json!({ "id": id })).await["report"].clone();
    assert_eq!(report["resolvedAtStage"], "stage-3");
    assert_eq!(report["outcome"], "Strategy meeting held; plan agreed.");
    assert_eq!(report["learning"], "Disclosures at school trigger a strategy discussion.");
    assert!(report["closedAt"].is_string());
    let queue = app.gql_as_ok(&chair, "{ boardQueue { id } }", json!({})).await;
    assert_eq!(queue["boardQueue"], json!([]));
    // Not for a practitioner, nor for an agency that is not a party.
    let err = app.gql_as_err(&police_pr, REPORT, json!({ "id": id })).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN");
    let health = app.token(Role::SafeguardingLead, Some("wb-health"), "western-bay");
    let err = app.gql_as_err(&health, REPORT, json!({ "id": id })).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
});

//! Reading cases.

use chrono::Utc;
use entity::case;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;

use escalations::domain::role::Role;

use crate::db_test;
use crate::helpers::TestApp;

/// Stores a case behind the API (the workflow's mutations come later).
pub async fn store_case(app: &TestApp, raising: &str, receiving: &str) -> String {
    let data = app.gql_ok("{ partnerships { id code } }", json!({})).await;
    let wb = data["partnerships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "western-bay")
        .unwrap();
    let id = uuid::Uuid::now_v7();
    let now = Utc::now();
    case::Entity::insert(case::ActiveModel {
        id: Set(id),
        partnership_id: Set(wb["id"].as_str().unwrap().parse().unwrap()),
        protocol_id: Set("western-bay".into()),
        protocol_version: Set(1),
        route: Set("main".into()),
        stage: Set("stage-1".into()),
        status: Set("open".into()),
        raising_agency_id: Set(app.agency_id(raising).await.parse().unwrap()),
        receiving_agency_id: Set(app.agency_id(receiving).await.parse().unwrap()),
        child_reference: Set("SWP-2026-0042".into()),
        category: Set("response_to_referral".into()),
        summary: Set("Disagreement about no further action".into()),
        version: Set(1),
        raised_at: Set(now),
        updated_at: Set(now),
        stage_entered_at: Set(Some(now)),
        due_on: Set(None),
        acknowledged_at: Set(None),
        repeated_similar_cases: Set(None),
        family_told_on: Set(None),
        step_down_conference_on: Set(None),
        step_down_checked_at: Set(None),
        step_down_cin_meeting_held: Set(None),
        step_down_cin_plan_in_place: Set(None),
        step_down_follow_up_id: Set(None),
        follows_case_id: Set(None),
    })
    .exec_without_returning(&app.db)
    .await
    .unwrap();
    id.to_string()
}

db_test!(a_case_is_read_with_its_agencies, |app| {
    let id = store_case(&app, "wb-police", "wb-swansea-csc").await;
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let data = app
        .gql_as_ok(
            &token,
            "query($id: ID!) { case(id: $id) { id status protocolId protocolVersion route stage childReference category version raisedAt partnership { code } raisingAgency { code kind } receivingAgency { code kind } } }",
            json!({ "id": id }),
        )
        .await;
    let c = &data["case"];
    assert_eq!(c["id"], id);
    assert_eq!(c["status"], "OPEN");
    assert_eq!(c["protocolId"], "western-bay");
    assert_eq!(c["protocolVersion"], 1);
    assert_eq!(c["stage"], "stage-1");
    assert_eq!(c["childReference"], "SWP-2026-0042");
    assert_eq!(c["version"], 1);
    assert_eq!(c["partnership"]["code"], "western-bay");
    assert_eq!(c["raisingAgency"], json!({ "code": "wb-police", "kind": "POLICE" }));
    assert_eq!(
        c["receivingAgency"],
        json!({ "code": "wb-swansea-csc", "kind": "CHILDRENS_SOCIAL_CARE" })
    );
    assert!(
        c["raisedAt"].as_str().unwrap().ends_with('Z')
            || c["raisedAt"].as_str().unwrap().contains("+00:00")
    );
});

db_test!(an_unknown_case_is_not_found, |app| {
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let err = app
        .gql_as_err(
            &token,
            "query($id: ID!) { case(id: $id) { id } }",
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    assert_eq!(err["path"], json!(["case"]));
});

db_test!(a_malformed_case_id_is_bad_input, |app| {
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let err = app.gql_as_err(&token, "{ case(id: \"42\") { id } }", json!({})).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "id");
});

const VIEWER_CAN: &str = "query($id: ID!) { case(id: $id) { viewerCan { addRecord recordView agreeAction escalate accept resolve withdraw skipStage readAuditTrail readReport } } }";

db_test!(viewer_can_follows_role_stage_and_side, |app| {
    // A Western Bay case at stage 1 (manager to manager), raised by the police.
    let id = store_case(&app, "wb-police", "wb-swansea-csc").await;
    let flags = |v: &serde_json::Value| {
        let c = &v["case"]["viewerCan"];
        [
            "addRecord",
            "recordView",
            "agreeAction",
            "escalate",
            "accept",
            "resolve",
            "withdraw",
            "skipStage",
            "readAuditTrail",
            "readReport",
        ]
        .iter()
        .filter(|k| c[**k] == true)
        .map(|k| (*k).to_owned())
        .collect::<Vec<_>>()
    };
    let rows: [(&str, Role, Option<&str>, &[&str]); 5] = [
        (
            "raising manager: escalates and withdraws, does not accept",
            Role::Manager,
            Some("wb-police"),
            &["addRecord", "recordView", "agreeAction", "escalate", "resolve", "withdraw"],
        ),
        (
            "receiving manager: accepts, neither escalates nor withdraws",
            Role::Manager,
            Some("wb-swansea-csc"),
            &["addRecord", "recordView", "agreeAction", "accept", "resolve"],
        ),
        (
            "raising practitioner: records only",
            Role::Practitioner,
            Some("wb-police"),
            &["addRecord", "recordView", "agreeAction"],
        ),
        (
            "receiving safeguarding lead: may also read the audit trail",
            Role::SafeguardingLead,
            Some("wb-swansea-csc"),
            &["addRecord", "recordView", "agreeAction", "accept", "resolve", "readAuditTrail"],
        ),
        (
            "board chair at stage 1: reads the audit trail only",
            Role::BoardChair,
            None,
            &["readAuditTrail"],
        ),
    ];
    for (name, role, agency, expected) in rows {
        let token = app.token(role, agency, "western-bay");
        let data = app.gql_as_ok(&token, VIEWER_CAN, json!({ "id": id })).await;
        assert_eq!(flags(&data), expected, "{name}");
    }
    // A machine client reads the case but may do nothing.
    let token = app.client_token("cases:read", Some("wb-police"), "western-bay");
    let data = app.gql_as_ok(&token, VIEWER_CAN, json!({ "id": id })).await;
    assert!(flags(&data).is_empty());
});

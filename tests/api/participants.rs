//! Parties beyond the two agencies (issue 12): seed 004's stage 4 brings
//! children's social care's local Child Protection Manager into a
//! police-versus-health case; before joining and after leaving the case
//! does not exist for it, while joined it reads the case and adds records,
//! and everyone else still gets `NOT_FOUND`.

use escalations::domain::role::Role;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;

const RAISE: &str =
    "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id version } } }";
const ESCALATE: &str =
    "mutation($i: EscalateCaseInput!) { escalateCase(input: $i) { case { stage version } } }";
const JOIN: &str = "mutation($i: JoinCaseInput!) { joinCase(input: $i) { case { version participants { agency { code } agencyKind stage joinedAt leftAt } } } }";
const LEAVE: &str = "mutation($i: LeaveCaseInput!) { leaveCase(input: $i) { case { version participants { agency { code } leftAt } } } }";
const CASE: &str = "query($id: ID!) { case(id: $id) { id stage participants { agency { code } } viewerCan { addRecord escalate resolve } } }";
const ADD_RECORD: &str = "mutation($i: AddRecordInput!) { addRecord(input: $i) { record { stage authorAgency { code } } } }";

/// The event types of an endpoint's deliveries, sorted.
async fn delivered(app: &TestApp, hooks: &str, endpoint: &str) -> Vec<String> {
    let data = app
        .gql_as_ok(
            hooks,
            "query($id: ID!) { webhookDeliveries(endpointId: $id, first: 20) { nodes { eventType caseId } } }",
            json!({ "id": endpoint }),
        )
        .await;
    let mut types: Vec<String> = data["webhookDeliveries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["eventType"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    types
}

fn code(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]["code"]
}

async fn cases_seen(app: &TestApp, token: &str) -> Value {
    app.gql_as_ok(token, "{ cases { totalCount nodes { id } } }", json!({})).await["cases"]
        ["totalCount"]
        .clone()
}

db_test!(a_participant_joins_at_stage_4_reads_and_writes_then_leaves, |app| {
    let health = app.agency_id("ss-health").await;
    let csc = app.agency_id("ss-csc").await;
    let school = app.agency_id("ss-education").await;
    let practitioner = app.token(Role::Practitioner, Some("ss-police"), "six-stage");
    let manager = app.token(Role::Manager, Some("ss-police"), "six-stage");
    let cp_manager = app.token(Role::SafeguardingLead, Some("ss-csc"), "six-stage");
    let csc_client = app.client_token("cases:read", Some("ss-csc"), "six-stage");
    let school_lead = app.token(Role::SafeguardingLead, Some("ss-education"), "six-stage");
    let raised = app
        .gql_as_ok(
            &practitioner,
            RAISE,
            json!({ "i": { "receivingAgencyId": health, "childReference": "SSP-2026-0012", "category": "risk-interpretation", "summary": "Police read the injury as non-accidental; health does not." } }),
        )
        .await;
    let id = raised["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    let up =
        |v: i32| json!({ "i": { "caseId": id, "expectedVersion": v, "reason": "UNRESOLVED" } });
    let join = |agency: &str| json!({ "i": { "caseId": id, "agencyId": agency } });
    let case = json!({ "id": id });

    // Before stage 4 no stage names a participant.
    let body = app.gql_as(&manager, JOIN, join(&csc)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
    app.gql_as_ok(&practitioner, ESCALATE, up(1)).await;
    app.gql_as_ok(&manager, ESCALATE, up(2)).await;
    let at4 = app.gql_as_ok(&manager, ESCALATE, up(3)).await;
    assert_eq!(at4["escalateCase"]["case"], json!({ "stage": "stage-4", "version": 4 }));

    // The protocol says who joins there.
    let stage = app
        .gql_as_ok(
            &manager,
            "{ protocols { id routes { stages { key participants { agencyKind roles addedBy may } } } } }",
            json!({}),
        )
        .await;
    let six = stage["protocols"].as_array().unwrap().iter().find(|p| p["id"] == "six-stage");
    assert_eq!(
        six.unwrap()["routes"][0]["stages"][3]["participants"],
        json!([{ "agencyKind": "CHILDRENS_SOCIAL_CARE", "roles": ["SAFEGUARDING_LEAD"], "addedBy": ["MANAGER", "SAFEGUARDING_LEAD"], "may": ["ADD_RECORD", "READ_AUDIT_TRAIL"] }])
    );

    // Children's social care is neither party: the case does not exist for
    // it, and it cannot join itself a case it cannot see.
    assert_eq!(code(&app.gql_as(&cp_manager, CASE, case.clone()).await), "NOT_FOUND");
    assert_eq!(cases_seen(&app, &cp_manager).await, 0);
    assert_eq!(code(&app.gql_as(&cp_manager, JOIN, join(&csc)).await), "NOT_FOUND");
    // A party's practitioner may not bring it in; a school is not the kind
    // stage 4 names; a party is a party already.
    let body = app.gql_as(&practitioner, JOIN, join(&csc)).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body:#}");
    assert_eq!(
        body["errors"][0]["extensions"]["allowedRoles"],
        json!(["manager", "safeguarding_lead"])
    );
    let body = app.gql_as(&manager, JOIN, join(&school)).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "agencyId", "{body:#}");
    assert_eq!(code(&app.gql_as(&manager, JOIN, join(&health)).await), "BAD_USER_INPUT");
    let unchanged = app
        .gql_as_ok(
            &manager,
            "query($id: ID!) { case(id: $id) { version participants { stage } } }",
            case.clone(),
        )
        .await;
    assert_eq!(
        unchanged["case"],
        json!({ "version": 4, "participants": [] }),
        "refusals change nothing"
    );

    // Children's social care's webhook endpoint hears nothing of the case
    // until its agency takes part.
    let hooks = app.client_token("webhooks:manage", Some("ss-csc"), "six-stage");
    let made = app
        .gql_as_ok(
            &hooks,
            "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { endpoint { id } } }",
            json!({ "i": { "url": "https://1.1.1.1/escalations", "eventTypes": ["RECORD_ADDED", "PARTICIPANT_JOINED"] } }),
        )
        .await;
    let endpoint = made["createWebhookEndpoint"]["endpoint"]["id"].as_str().unwrap().to_owned();
    assert!(delivered(&app, &hooks, &endpoint).await.is_empty());

    // The police manager brings in the Child Protection Manager's agency.
    let joined = app.gql_as_ok(&manager, JOIN, join(&csc)).await;
    let joined = &joined["joinCase"]["case"];
    assert_eq!(joined["version"], 5);
    assert_eq!(joined["participants"][0]["agency"]["code"], "ss-csc");
    assert_eq!(joined["participants"][0]["agencyKind"], "CHILDRENS_SOCIAL_CARE");
    assert_eq!(joined["participants"][0]["stage"], "stage-4");
    assert_eq!(joined["participants"][0]["leftAt"], Value::Null);
    assert_eq!(code(&app.gql_as(&manager, JOIN, join(&csc)).await), "CONFLICT", "twice");

    // Now it reads the case, lists it, and adds its record; it does not
    // steer the dispute.
    let seen = app.gql_as_ok(&cp_manager, CASE, case.clone()).await;
    assert_eq!(seen["case"]["stage"], "stage-4");
    assert_eq!(
        seen["case"]["viewerCan"],
        json!({ "addRecord": true, "escalate": false, "resolve": false })
    );
    assert_eq!(cases_seen(&app, &cp_manager).await, 1);
    assert_eq!(cases_seen(&app, &csc_client).await, 1, "its cases:read client");
    let nodes = app
        .gql_as_ok(
            &cp_manager,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": [id] }),
        )
        .await;
    assert_eq!(nodes["nodes"][0]["id"], id.as_str());
    let record = app
        .gql_as_ok(
            &cp_manager,
            ADD_RECORD,
            json!({ "i": { "caseId": id, "kind": "DISCUSSION", "facts": "Discussed with both leads; a conference will be convened." } }),
        )
        .await;
    assert_eq!(
        record["addRecord"]["record"],
        json!({ "stage": "stage-4", "authorAgency": { "code": "ss-csc" } })
    );
    let body = app.gql_as(&cp_manager, ESCALATE, up(6)).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body:#}");
    // Its endpoint now receives the case's events, as its readers see it.
    assert_eq!(delivered(&app, &hooks, &endpoint).await, ["PARTICIPANT_JOINED", "RECORD_ADDED"]);
    let feed = app
        .gql_as_ok(&cp_manager, "{ caseEvents(first: 100) { nodes { type } } }", json!({}))
        .await;
    let types: Vec<&str> = feed["caseEvents"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"PARTICIPANT_JOINED") && types.contains(&"RECORD_ADDED"), "{types:?}");
    let trail = app
        .gql_as_ok(
            &cp_manager,
            "query($id: ID!) { auditTrail(caseId: $id) { nodes { action } } }",
            case.clone(),
        )
        .await;
    let actions: Vec<&str> = trail["auditTrail"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["raise", "escalate", "escalate", "escalate", "join_case", "add_record"]);

    // Everyone else still gets NOT_FOUND.
    assert_eq!(code(&app.gql_as(&school_lead, CASE, case.clone()).await), "NOT_FOUND");
    assert_eq!(cases_seen(&app, &school_lead).await, 0);

    // It leaves; from then the case does not exist for it again.
    let left = app
        .gql_as_ok(
            &cp_manager,
            LEAVE,
            json!({ "i": { "caseId": id, "agencyId": csc, "expectedVersion": 6 } }),
        )
        .await;
    assert_eq!(left["leaveCase"]["case"]["version"], 7);
    assert_eq!(code(&app.gql_as(&cp_manager, CASE, case.clone()).await), "NOT_FOUND");
    assert_eq!(cases_seen(&app, &cp_manager).await, 0);
    let kept = app
        .gql_as_ok(
            &manager,
            "query($id: ID!) { case(id: $id) { participants { agency { code } leftAt } } }",
            case.clone(),
        )
        .await;
    assert!(kept["case"]["participants"][0]["leftAt"].is_string(), "{kept:#}");
    assert_eq!(
        code(&app.gql_as(&manager, LEAVE, json!({ "i": { "caseId": id, "agencyId": csc } })).await),
        "BAD_USER_INPUT",
        "it takes part no more"
    );
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

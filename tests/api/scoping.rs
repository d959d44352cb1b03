//! Every query and mutation tried with a token of another agency and of
//! another partnership: the case does not exist for them, and nothing
//! changes.

use escalations::domain::role::Role;
use serde_json::{Value, json};

use crate::db_test;

db_test!(every_operation_refuses_other_agencies_and_partnerships, |app| {
    // A Western Bay case between the police and children's services,
    // resolved so that feedback applies too, and one open case.
    let police = app.token(Role::HeadOfService, Some("wb-police"), "western-bay");
    let police_practitioner = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let raise = "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }";
    let raise_input = json!({ "i": { "receivingAgencyId": receiving, "childReference": "SWP-5", "category": "other", "summary": "s" } });
    let open_id =
        app.gql_as_ok(&police_practitioner, raise, raise_input.clone()).await["raiseCase"]["case"]
            ["id"]
            .clone();
    let closed_id =
        app.gql_as_ok(&police_practitioner, raise, raise_input).await["raiseCase"]["case"]["id"]
            .clone();
    app.gql_as_ok(
        &police,
        "mutation($i: ResolveCaseInput!) { resolveCase(input: $i) { case { id } } }",
        json!({ "i": { "caseId": closed_id, "outcome": "agreed" } }),
    )
    .await;
    let partnership_id = {
        let data = app.gql_ok("{ partnerships { id code } }", json!({})).await;
        data["partnerships"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["code"] == "western-bay")
            .unwrap()["id"]
            .clone()
    };
    let due = (chrono::Utc::now().date_naive() + chrono::Days::new(5)).to_string();

    let operations: Vec<(&str, &str, Value)> = vec![
        ("case", "query($id: ID!) { case(id: $id) { id } }", json!({ "id": open_id })),
        (
            "report",
            "query($id: ID!) { report(caseId: $id) { summary } }",
            json!({ "id": closed_id }),
        ),
        (
            "auditTrail",
            "query($id: ID!) { auditTrail(caseId: $id) { nodes { seq } } }",
            json!({ "id": open_id }),
        ),
        (
            "agencies",
            "query($id: ID!) { agencies(partnershipId: $id) { code } }",
            json!({ "id": partnership_id }),
        ),
        (
            "boardStatistics",
            "query($id: ID!) { boardStatistics(partnershipId: $id, from: \"2020-01-01T00:00:00Z\", to: \"2030-01-01T00:00:00Z\") { casesRaised } }",
            json!({ "id": partnership_id }),
        ),
        (
            "addRecord",
            "mutation($id: ID!) { addRecord(input: { caseId: $id, kind: LETTER, facts: \"x\" }) { record { id } } }",
            json!({ "id": open_id }),
        ),
        (
            "recordAgencyView",
            "mutation($id: ID!) { recordAgencyView(input: { caseId: $id, view: \"x\" }) { view { id } } }",
            json!({ "id": open_id }),
        ),
        (
            "agreeAction",
            "mutation($id: ID!, $owner: ID!, $due: Date!) { agreeAction(input: { caseId: $id, description: \"x\", ownerAgencyId: $owner, dueOn: $due }) { action { id } } }",
            json!({ "id": open_id, "owner": receiving, "due": due }),
        ),
        (
            "escalateCase",
            "mutation($id: ID!) { escalateCase(input: { caseId: $id, reason: UNRESOLVED }) { case { id } } }",
            json!({ "id": open_id }),
        ),
        (
            "resolveCase",
            "mutation($id: ID!) { resolveCase(input: { caseId: $id, outcome: \"x\" }) { case { id } } }",
            json!({ "id": open_id }),
        ),
        (
            "withdrawCase",
            "mutation($id: ID!) { withdrawCase(input: { caseId: $id, reason: \"x\" }) { case { id } } }",
            json!({ "id": open_id }),
        ),
        (
            "joinCase",
            "mutation($id: ID!, $agency: ID!) { joinCase(input: { caseId: $id, agencyId: $agency }) { case { id } } }",
            json!({ "id": open_id, "agency": receiving }),
        ),
        (
            "leaveCase",
            "mutation($id: ID!, $agency: ID!) { leaveCase(input: { caseId: $id, agencyId: $agency }) { case { id } } }",
            json!({ "id": open_id, "agency": receiving }),
        ),
        (
            "giveFeedback",
            "mutation($id: ID!) { giveFeedback(input: { caseId: $id, resolved: true, wouldUseAgain: true }) { feedback { id } } }",
            json!({ "id": closed_id }),
        ),
    ];
    let strangers = [
        (
            "another agency of the partnership",
            app.token(Role::HeadOfService, Some("wb-health"), "western-bay"),
        ),
        ("another partnership", app.token(Role::HeadOfService, Some("ps-police"), "pan-sussex")),
        ("another partnership's board chair", app.token(Role::BoardChair, None, "pan-sussex")),
    ];
    let trail = "query($id: ID!) { auditTrail(caseId: $id) { nodes { seq } } }";
    let before = app.gql_as_ok(&police, trail, json!({ "id": open_id })).await;
    for (who, token) in &strangers {
        for (name, query, vars) in &operations {
            let body = app.gql_as(token, query, vars.clone()).await;
            // The partnership's own directory is visible to its own members.
            if *name == "agencies" && who.starts_with("another agency") {
                assert!(body.get("errors").is_none(), "{who} / {name}: {body:#}");
                continue;
            }
            // Statistics refuse a non-board role of the partnership outright.
            let expected = if *name == "boardStatistics" && who.starts_with("another agency") {
                "FORBIDDEN"
            } else {
                "NOT_FOUND"
            };
            let code = &body["errors"][0]["extensions"]["code"];
            assert_eq!(code, expected, "{who} / {name}: {body:#}");
            assert!(
                body["data"].is_null()
                    || body["data"].as_object().unwrap().values().all(Value::is_null),
                "{who} / {name}: no data"
            );
        }
        // Lists are empty rather than refused.
        let data = app.gql_as_ok(token, "{ cases { totalCount } boardQueue: cases(filter: { stage: \"stage-3\" }) { totalCount } }", json!({})).await;
        assert_eq!(data["cases"]["totalCount"], 0, "{who}");
        // Raising against an agency of another partnership is refused.
        if who.starts_with("another partnership") && !who.contains("chair") {
            let body = app
                .gql_as(token, raise, json!({ "i": { "receivingAgencyId": receiving, "childReference": "PS-1", "category": "other", "summary": "s" } }))
                .await;
            assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
            assert_eq!(body["errors"][0]["extensions"]["field"], "receivingAgencyId");
        }
    }
    let after = app.gql_as_ok(&police, trail, json!({ "id": open_id })).await;
    assert_eq!(before, after, "nothing changed");
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

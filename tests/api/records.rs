//! Records, views, actions, deadlines, the case list, the protocols and the
//! audit trail over HTTP.

use entity::access_log;
use escalations::domain::role::Role;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::db_test;
use crate::helpers::TestApp;

const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id version } } }";
const ADD_RECORD: &str = "mutation($input: AddRecordInput!) { addRecord(input: $input) { record { id stage kind facts opinions attendees corrects authorAgency { code } } } }";
const VIEW: &str = "mutation($input: RecordAgencyViewInput!) { recordAgencyView(input: $input) { view { agency { code } stage view } } }";
const ACTION: &str = "mutation($input: AgreeActionInput!) { agreeAction(input: $input) { action { description dueOn owner { code } stage } } }";

async fn raise(app: &TestApp, receiving: &str, category: &str) -> String {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id(receiving).await;
    let data = app
        .gql_as_ok(
            &token,
            RAISE,
            json!({ "input": { "receivingAgencyId": receiving, "childReference": "SWP-77", "category": category, "summary": "Disputed decision." } }),
        )
        .await;
    data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned()
}

db_test!(records_views_and_actions_are_kept_and_never_edited, |app| {
    let id = raise(&app, "wb-swansea-csc", "referral-response").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let csc = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let data = app
        .gql_as_ok(
            &police,
            ADD_RECORD,
            json!({ "input": { "caseId": id, "expectedVersion": 1, "kind": "DISCUSSION", "facts": "Phoned the duty team on 3 March.", "opinions": "The threshold was misread.", "attendees": ["PC, police", "SW, CSC"] } }),
        )
        .await;
    let first = &data["addRecord"]["record"];
    assert_eq!(first["stage"], "informal");
    assert_eq!(first["kind"], "DISCUSSION");
    assert_eq!(first["attendees"], json!(["PC, police", "SW, CSC"]));
    assert_eq!(first["authorAgency"]["code"], "wb-police");
    // A correction is a new record pointing at the first.
    let data = app
        .gql_as_ok(
            &police,
            ADD_RECORD,
            json!({ "input": { "caseId": id, "kind": "DISCUSSION", "facts": "Phoned on 4 March, not 3 March.", "corrects": first["id"] } }),
        )
        .await;
    assert_eq!(data["addRecord"]["record"]["corrects"], first["id"]);
    app.gql_as_ok(
        &csc,
        VIEW,
        json!({ "input": { "caseId": id, "view": "Threshold not met on the information held." } }),
    )
    .await;
    let owner = app.agency_id("wb-swansea-csc").await;
    let due = (chrono::Utc::now().date_naive() + chrono::Days::new(14)).to_string();
    let data = app
        .gql_as_ok(&police, ACTION, json!({ "input": { "caseId": id, "description": "Share the second incident report.", "ownerAgencyId": owner, "dueOn": due } }))
        .await;
    assert_eq!(data["agreeAction"]["action"]["owner"]["code"], "wb-swansea-csc");

    let data = app
        .gql_as_ok(
            &csc,
            "query($id: ID!) { case(id: $id) { version records { totalCount nodes { facts corrects } } views { agency { code } view } actions { description dueOn } } }",
            json!({ "id": id }),
        )
        .await;
    let c = &data["case"];
    assert_eq!(c["version"], 5, "raise + 2 records + view + action");
    assert_eq!(c["records"]["totalCount"], 2);
    assert_eq!(
        c["records"]["nodes"][0]["facts"], "Phoned the duty team on 3 March.",
        "the first record is unchanged"
    );
    assert_eq!(c["views"][0]["agency"]["code"], "wb-swansea-csc");
    assert_eq!(c["actions"][0]["dueOn"], due);
    // Reading free text is logged, with who read it.
    let logged = access_log::Entity::find()
        .filter(access_log::Column::CaseId.eq(uuid::Uuid::parse_str(&id).unwrap()))
        .filter(access_log::Column::ActorSub.eq("user-practitioner-wb-swansea-csc"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(logged, 3, "records, views and actions were read once each");
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);

    // Refusals: another agency, a bad correction target, a past due date.
    let health = app.token(Role::Manager, Some("wb-health"), "western-bay");
    let err = app
        .gql_as_err(
            &health,
            ADD_RECORD,
            json!({ "input": { "caseId": id, "kind": "LETTER", "facts": "x" } }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    let err = app
        .gql_as_err(&police, ADD_RECORD, json!({ "input": { "caseId": id, "kind": "LETTER", "facts": "x", "corrects": uuid::Uuid::now_v7().to_string() } }))
        .await;
    assert_eq!(err["extensions"]["field"], "corrects");
    let err = app
        .gql_as_err(&police, ACTION, json!({ "input": { "caseId": id, "description": "x", "ownerAgencyId": owner, "dueOn": "2020-01-01" } }))
        .await;
    assert_eq!(err["extensions"]["field"], "dueOn");
    let err = app.gql_as_err(&police, ADD_RECORD, json!({ "input": { "caseId": id, "expectedVersion": 1, "kind": "LETTER", "facts": "x" } })).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");
});

db_test!(the_case_list_is_scoped_and_filtered_in_the_database, |app| {
    let a = raise(&app, "wb-swansea-csc", "referral-response").await;
    let b = raise(&app, "wb-health", "medical-examination").await;
    let list = |token: String, filter: serde_json::Value| {
        let app = &app;
        async move {
            let data = app
                .gql_as_ok(
                    &token,
                    "query($f: CaseFilter) { cases(filter: $f) { nodes { id } } }",
                    json!({ "f": filter }),
                )
                .await;
            data["cases"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let police = app.token(Role::Manager, Some("wb-police"), "western-bay");
    assert_eq!(list(police.clone(), json!({})).await, vec![b.clone(), a.clone()], "newest first");
    assert_eq!(
        list(police.clone(), json!({ "category": "medical-examination" })).await,
        vec![b.clone()]
    );
    let csc_id = app.agency_id("wb-swansea-csc").await;
    assert_eq!(list(police.clone(), json!({ "agencyId": csc_id })).await, vec![a.clone()]);
    assert_eq!(list(police.clone(), json!({ "status": "RESOLVED" })).await, Vec::<String>::new());
    assert_eq!(list(police.clone(), json!({ "overdue": true })).await, Vec::<String>::new());
    assert_eq!(list(police.clone(), json!({ "stage": "informal" })).await.len(), 2);
    // Scope: the receiving agency sees its one case; another partnership none.
    let csc = app.token(Role::Manager, Some("wb-swansea-csc"), "western-bay");
    assert_eq!(list(csc, json!({})).await, vec![a.clone()]);
    let sussex = app.token(Role::Manager, Some("ps-police"), "pan-sussex");
    assert!(list(sussex, json!({})).await.is_empty());
    let chair = app.token(Role::BoardChair, None, "western-bay");
    assert_eq!(list(chair, json!({})).await.len(), 2);
    let err = app.gql_as_err(&police, "{ cases(first: 101) { totalCount } }", json!({})).await;
    assert_eq!(err["extensions"]["field"], "first");
    let err = app.gql_as_err(&police, "{ cases(after: \"zz\") { totalCount } }", json!({})).await;
    assert_eq!(err["extensions"]["field"], "after");

    // Pages: a stable order, cursors, a total.
    let c = raise(&app, "wb-education", "other").await;
    let page = "query($after: String) { cases(first: 2, after: $after) { totalCount edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let one = app.gql_as_ok(&police, page, json!({ "after": null })).await;
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["cases"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&one), vec![c.clone(), b.clone()]);
    assert_eq!(one["cases"]["totalCount"], 3);
    assert_eq!(one["cases"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(one["cases"]["pageInfo"]["hasPreviousPage"], false);
    let two = app
        .gql_as_ok(&police, page, json!({ "after": one["cases"]["pageInfo"]["endCursor"] }))
        .await;
    assert_eq!(ids(&two), vec![a.clone()]);
    assert_eq!(two["cases"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(two["cases"]["pageInfo"]["hasPreviousPage"], true);
});

db_test!(the_audit_trail_is_for_the_roles_the_protocol_allows, |app| {
    let id = raise(&app, "wb-swansea-csc", "other").await;
    let query =
        "query($id: ID!) { auditTrail(caseId: $id) { nodes { seq action actorRole hash } } }";
    let lead = app.token(Role::SafeguardingLead, Some("wb-police"), "western-bay");
    let data = app.gql_as_ok(&lead, query, json!({ "id": id })).await;
    assert_eq!(data["auditTrail"]["nodes"][0]["seq"], 1);
    assert_eq!(data["auditTrail"]["nodes"][0]["action"], "raise");
    assert_eq!(data["auditTrail"]["nodes"][0]["actorRole"], "practitioner");
    assert_eq!(data["auditTrail"]["nodes"][0]["hash"].as_str().unwrap().len(), 64);
    // Its events' data holds outcomes and learning: the read is logged.
    let reads = access_log::Entity::find()
        .filter(access_log::Column::CaseId.eq(uuid::Uuid::parse_str(&id).unwrap()))
        .filter(access_log::Column::What.eq("audit_trail"))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(reads, 1);
    let practitioner = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let err = app.gql_as_err(&practitioner, query, json!({ "id": id })).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN");
    let other = app.token(Role::SafeguardingLead, Some("wb-health"), "western-bay");
    let err = app.gql_as_err(&other, query, json!({ "id": id })).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
});

db_test!(protocols_describe_routes_stages_and_exclusions, |app| {
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let data = app
        .gql_as_ok(&token, "{ protocols { id version calendar categories { key } exclusions { kind redirect } routes { id stages { key isEntry timeLimitWorkingDays boardTold } } } }", json!({}))
        .await;
    let list = data["protocols"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["leeds", "pan-sussex", "rotherham", "six-stage", "western-bay"]);
    let wb = &list[4];
    let stages: Vec<&str> = wb["routes"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["informal", "stage-1", "stage-2", "stage-3", "stage-4"]);
    assert_eq!(wb["exclusions"].as_array().unwrap().len(), 5);
    let rotherham = &list[2];
    assert!(
        rotherham["routes"].as_array().unwrap().len() >= 2,
        "practice resolution and challenge"
    );
});

db_test!(a_retried_mutation_with_its_key_changes_nothing_twice, |app| {
    let id = raise(&app, "wb-swansea-csc", "other").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let input = json!({ "input": { "caseId": id, "idempotencyKey": "rec-1", "kind": "LETTER", "facts": "Letter sent." } });
    let first = app.gql_as_ok(&police, ADD_RECORD, input.clone()).await;
    let again = app.gql_as_ok(&police, ADD_RECORD, input).await;
    assert_eq!(first, again, "the retry returns the first result");
    let data = app
        .gql_as_ok(
            &police,
            "query($id: ID!) { case(id: $id) { version records { nodes { id } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["case"]["version"], 2, "one change only");
    assert_eq!(data["case"]["records"]["nodes"].as_array().unwrap().len(), 1);
    let err = app
        .gql_as_err(&police, ADD_RECORD, json!({ "input": { "caseId": id, "idempotencyKey": "rec-1", "kind": "LETTER", "facts": "Another letter." } }))
        .await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");
    // Keys belong to the caller: another user's same key is a new request.
    let other = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let data = app
        .gql_as_ok(&other, ADD_RECORD, json!({ "input": { "caseId": id, "idempotencyKey": "rec-1", "kind": "LETTER", "facts": "Letter sent." } }))
        .await;
    assert_ne!(data["addRecord"]["record"]["id"], first["addRecord"]["record"]["id"]);
});

db_test!(records_and_the_audit_trail_come_a_page_at_a_time, |app| {
    let id = raise(&app, "wb-swansea-csc", "other").await;
    let police = app.token(Role::SafeguardingLead, Some("wb-police"), "western-bay");
    for i in 0..5 {
        app.gql_as_ok(&police, ADD_RECORD, json!({ "input": { "caseId": id, "kind": "DISCUSSION", "facts": format!("call {i}") } })).await;
    }
    let records = "query($id: ID!, $after: String) { case(id: $id) { records(first: 2, after: $after) { totalCount nodes { facts } pageInfo { hasNextPage endCursor } } } }";
    let mut after = serde_json::Value::Null;
    let mut seen = Vec::new();
    loop {
        let data = app.gql_as_ok(&police, records, json!({ "id": id, "after": after })).await;
        let page = &data["case"]["records"];
        assert_eq!(page["totalCount"], 5);
        seen.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["facts"].as_str().unwrap().to_owned()),
        );
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen, ["call 0", "call 1", "call 2", "call 3", "call 4"]);
    let trail = "query($id: ID!, $after: String) { auditTrail(caseId: $id, first: 4, after: $after) { totalCount edges { cursor node { seq } } pageInfo { hasNextPage endCursor } } }";
    let one = app.gql_as_ok(&police, trail, json!({ "id": id, "after": null })).await;
    assert_eq!(one["auditTrail"]["totalCount"], 6);
    let seqs = |v: &serde_json::Value| -> Vec<i64> {
        v["auditTrail"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&one), [1, 2, 3, 4]);
    let two = app
        .gql_as_ok(
            &police,
            trail,
            json!({ "id": id, "after": one["auditTrail"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(seqs(&two), [5, 6]);
    assert_eq!(two["auditTrail"]["pageInfo"]["hasNextPage"], false);
    let err = app.gql_as_err(&police, trail, json!({ "id": id, "after": "nonsense" })).await;
    assert_eq!(err["extensions"]["field"], "after");
});

db_test!(a_case_keeps_at_most_fifty_views_and_fifty_actions, |app| {
    let id = raise(&app, "wb-swansea-csc", "referral-response").await;
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let csc = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let owner = app.agency_id("wb-swansea-csc").await;
    let due = (chrono::Utc::now().date_naive() + chrono::Days::new(14)).to_string();
    for i in 0..50 {
        app.gql_as_ok(
            &csc,
            VIEW,
            json!({ "input": { "caseId": id, "view": format!("View {i}.") } }),
        )
        .await;
        app.gql_as_ok(&police, ACTION, json!({ "input": { "caseId": id, "description": format!("Action {i}."), "ownerAgencyId": owner, "dueOn": due } }))
            .await;
    }
    let version = |data: &serde_json::Value| data["case"]["version"].clone();
    let before = app
        .gql_as_ok(&csc, "query($id: ID!) { case(id: $id) { version } }", json!({ "id": id }))
        .await;
    let err =
        app.gql_as_err(&csc, VIEW, json!({ "input": { "caseId": id, "view": "One more." } })).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT", "{err:#}");
    assert!(err["message"].as_str().unwrap().contains("50"), "{err:#}");
    let err = app
        .gql_as_err(&police, ACTION, json!({ "input": { "caseId": id, "description": "One more.", "ownerAgencyId": owner, "dueOn": due } }))
        .await;
    assert_eq!(err["extensions"]["code"], "CONFLICT", "{err:#}");
    let after = app
        .gql_as_ok(
            &csc,
            "query($id: ID!) { case(id: $id) { version views { view } actions { description } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(version(&after), version(&before), "nothing changed");
    assert_eq!(after["case"]["views"].as_array().unwrap().len(), 50);
    assert_eq!(after["case"]["actions"].as_array().unwrap().len(), 50);
});

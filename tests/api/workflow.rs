//! The case lifecycle over HTTP: raise, escalate, resolve, withdraw, and
//! every refusal leaving the case unchanged.

use escalations::domain::role::Role;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::{TestApp, western_bay_stage_1_records};

const RAISE: &str = "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id stage status version route raisingAgency { code } receivingAgency { code } } } }";
const ESCALATE: &str = "mutation($input: EscalateCaseInput!) { escalateCase(input: $input) { case { id stage version status } } }";
const RESOLVE: &str = "mutation($input: ResolveCaseInput!) { resolveCase(input: $input) { case { id status version } } }";
const WITHDRAW: &str = "mutation($input: WithdrawCaseInput!) { withdrawCase(input: $input) { case { id status version } } }";
const READ: &str = "query($id: ID!) { case(id: $id) { stage status version } }";

async fn raise_western_bay(app: &TestApp) -> (String, String) {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let data = app
        .gql_as_ok(
            &token,
            RAISE,
            json!({ "input": {
                "receivingAgencyId": receiving,
                "childReference": "SWP-2026-0042",
                "category": "referral-response",
                "summary": "Police referral closed with no further action despite a second incident.",
            }}),
        )
        .await;
    (data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned(), receiving)
}

async fn state(app: &TestApp, id: &str) -> Value {
    let token = app.token(Role::BoardChair, None, "western-bay");
    app.gql_as_ok(&token, READ, json!({ "id": id })).await["case"].clone()
}

db_test!(western_bay_walks_from_informal_discussion_to_the_board_chair, |app| {
    let (id, _) = raise_western_bay(&app).await;
    assert_eq!(
        state(&app, &id).await,
        json!({ "stage": "informal", "status": "OPEN", "version": 1 })
    );
    let steps: [(Role, Option<&str>, &str); 4] = [
        (Role::Manager, Some("wb-police"), "stage-1"),
        (Role::Manager, Some("wb-police"), "stage-2"),
        (Role::SafeguardingLead, Some("wb-police"), "stage-3"),
        (Role::HeadOfService, Some("wb-police"), "stage-4"),
    ];
    let mut version = 1;
    for (role, agency, to) in steps {
        if to == "stage-2" {
            // Stage 1's written record and the analysis of the risk.
            western_bay_stage_1_records(&app, &id).await;
            version += 2;
        }
        let token = app.token(role, agency, "western-bay");
        let data = app
            .gql_as_ok(
                &token,
                ESCALATE,
                json!({ "input": { "caseId": id, "expectedVersion": version, "reason": "UNRESOLVED" } }),
            )
            .await;
        assert_eq!(data["escalateCase"]["case"]["stage"], to, "{role:?}");
        assert_eq!(data["escalateCase"]["case"]["version"], version + 1);
        version += 1;
    }
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let data = app
        .gql_as_ok(
            &chair,
            RESOLVE,
            json!({ "input": { "caseId": id, "expectedVersion": version, "outcome": "Strategy meeting convened; section 47 enquiry opened.", "learning": "Second incidents trigger review." } }),
        )
        .await;
    assert_eq!(
        data["resolveCase"]["case"],
        json!({ "id": id, "status": "RESOLVED", "version": version + 1 })
    );
    // The audit trail holds one chained event per change.
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

db_test!(refusals_are_typed_and_change_nothing, |app| {
    let (id, receiving) = raise_western_bay(&app).await;
    let before = state(&app, &id).await;
    let police_practitioner = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let police_manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let health_manager = app.token(Role::Manager, Some("wb-health"), "western-bay");
    let sussex_manager = app.token(Role::Manager, Some("ps-police"), "pan-sussex");
    let csc_manager = app.token(Role::Manager, Some("wb-swansea-csc"), "western-bay");
    let escalate =
        |v: i32| json!({ "input": { "caseId": id, "expectedVersion": v, "reason": "UNRESOLVED" } });
    let rows: Vec<(&str, &String, &str, Value, &str)> = vec![
        ("another agency's case", &health_manager, ESCALATE, escalate(1), "NOT_FOUND"),
        ("another partnership's case", &sussex_manager, ESCALATE, escalate(1), "NOT_FOUND"),
        ("a stale version", &police_manager, ESCALATE, escalate(7), "CONFLICT"),
        (
            "skipping without justification",
            &police_manager,
            ESCALATE,
            json!({ "input": { "caseId": id, "reason": "UNRESOLVED", "toStage": "stage-3" } }),
            "FORBIDDEN",
        ),
        (
            "escalating for a deadline that has not passed",
            &police_manager,
            ESCALATE,
            json!({ "input": { "caseId": id, "reason": "OVERDUE" } }),
            "BAD_USER_INPUT",
        ),
        (
            "withdrawal by the receiving side",
            &csc_manager,
            WITHDRAW,
            json!({ "input": { "caseId": id, "reason": "no longer needed" } }),
            "FORBIDDEN",
        ),
        (
            "resolution by another partnership",
            &sussex_manager,
            RESOLVE,
            json!({ "input": { "caseId": id, "outcome": "x" } }),
            "NOT_FOUND",
        ),
        (
            "a malformed case id",
            &police_manager,
            ESCALATE,
            json!({ "input": { "caseId": "nope", "reason": "UNRESOLVED" } }),
            "BAD_USER_INPUT",
        ),
        (
            "a name as the child's reference",
            &police_practitioner,
            RAISE,
            json!({ "input": { "receivingAgencyId": receiving, "childReference": "Jane Smith", "category": "other", "summary": "s" } }),
            "BAD_USER_INPUT",
        ),
        (
            "an unknown category",
            &police_practitioner,
            RAISE,
            json!({ "input": { "receivingAgencyId": receiving, "childReference": "C-1", "category": "weather", "summary": "s" } }),
            "BAD_USER_INPUT",
        ),
        (
            "a complaint about a named professional",
            &police_practitioner,
            RAISE,
            json!({ "input": { "receivingAgencyId": receiving, "childReference": "C-1", "category": "other", "summary": "s", "exclusionTriage": ["COMPLAINT_ABOUT_PROFESSIONAL"] } }),
            "OUT_OF_SCOPE",
        ),
    ];
    for (name, token, query, vars, code) in rows {
        let err = app.gql_as_err(token, query, vars).await;
        assert_eq!(err["extensions"]["code"], code, "{name}: {err:#}");
    }
    assert_eq!(state(&app, &id).await, before, "nothing changed");

    // A practitioner may not escalate at the informal stage? They may (the
    // informal stage is between professionals); at stage 1 they may not, and
    // the error names the roles that may.
    app.gql_as_ok(&police_manager, ESCALATE, escalate(1)).await;
    let err = app.gql_as_err(&police_practitioner, ESCALATE, escalate(2)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN");
    assert_eq!(
        err["message"],
        "a practitioner may not escalate at stage-1; roles that may: manager, safeguarding_lead, head_of_service"
    );
    // A dispute inside one agency is out of scope, with where it belongs.
    let own = app.agency_id("wb-police").await;
    let err = app
        .gql_as_err(
            &police_practitioner,
            RAISE,
            json!({ "input": { "receivingAgencyId": own, "childReference": "C-1", "category": "other", "summary": "s" } }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "OUT_OF_SCOPE");
    assert_eq!(err["extensions"]["exclusion"], "intra_agency");
    assert!(!err["extensions"]["redirect"].as_str().unwrap().is_empty());
});

db_test!(the_raising_side_withdraws_and_a_closed_case_does_not_move, |app| {
    let (id, _) = raise_western_bay(&app).await;
    let police_manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let data = app
        .gql_as_ok(
            &police_manager,
            WITHDRAW,
            json!({ "input": { "caseId": id, "reason": "Resolved informally by phone." } }),
        )
        .await;
    assert_eq!(data["withdrawCase"]["case"]["status"], "WITHDRAWN");
    let err = app
        .gql_as_err(
            &police_manager,
            ESCALATE,
            json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");
});

db_test!(two_simultaneous_escalations_apply_exactly_once, |app| {
    let (id, _) = raise_western_bay(&app).await;
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let vars = json!({ "input": { "caseId": id, "expectedVersion": 1, "reason": "UNRESOLVED" } });
    let (a, b) = tokio::join!(
        app.gql_as(&token, ESCALATE, vars.clone()),
        app.gql_as(&token, ESCALATE, vars.clone())
    );
    let applied = [&a, &b].iter().filter(|r| r.get("errors").is_none()).count();
    assert_eq!(applied, 1, "{a:#} {b:#}");
    let refused = if a.get("errors").is_some() { &a } else { &b };
    assert_eq!(refused["errors"][0]["extensions"]["code"], "CONFLICT", "{refused:#}");
    assert_eq!(
        state(&app, &id).await,
        json!({ "stage": "stage-1", "status": "OPEN", "version": 2 })
    );
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

db_test!(mutations_are_refused_over_get, |app| {
    let res = app.get("/graphql?query=mutation%20%7B%20__typename%20%7D").await;
    assert_eq!(res.status(), 405);
});

db_test!(a_retried_raise_with_its_key_raises_one_case, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let input = json!({ "input": {
        "idempotencyKey": "raise-7f3a",
        "receivingAgencyId": receiving,
        "childReference": "SWP-1",
        "category": "other",
        "summary": "s",
    }});
    let first = app.gql_as_ok(&token, RAISE, input.clone()).await;
    let again = app.gql_as_ok(&token, RAISE, input).await;
    assert_eq!(first, again);
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let data = app.gql_as_ok(&chair, "{ cases { totalCount } }", json!({})).await;
    assert_eq!(data["cases"]["totalCount"], 1);
    let err = app
        .gql_as_err(&token, RAISE, json!({ "input": { "idempotencyKey": "raise-7f3a", "receivingAgencyId": receiving, "childReference": "SWP-2", "category": "other", "summary": "s" } }))
        .await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");
});

db_test!(audit_verify_finds_the_first_broken_link, |app| {
    let (id, _) = raise_western_bay(&app).await;
    let manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    app.gql_as_ok(&manager, ESCALATE, json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_escalations"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", app.db_url())
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "audit trail intact");
    // Someone edits the first event behind the application's back.
    use sea_orm::ConnectionTrait;
    app.db
        .execute_unprepared("UPDATE case_event SET data = '{\"stage\":\"stage-4\"}' WHERE seq = 1")
        .await
        .unwrap();
    let out = verify();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("case {id} event 1: content does not match its hash")), "{err}");
});

db_test!(audit_verify_notices_missing_events, |app| {
    let (id, _) = raise_western_bay(&app).await;
    let manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    app.gql_as_ok(&manager, ESCALATE, json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } }))
        .await;
    use sea_orm::ConnectionTrait;
    app.db.execute_unprepared("DELETE FROM case_event WHERE seq = 2").await.unwrap();
    let broken = escalations::service::audit::verify(&app.db).await.unwrap().unwrap();
    assert_eq!(broken, format!("case {id}: version 2 but 1 events (events are missing)"));
});

db_test!(changes_without_an_expected_version_wait_for_each_other, |app| {
    let (id, _) = raise_western_bay(&app).await;
    let manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let record = "mutation($i: AddRecordInput!) { addRecord(input: $i) { record { id } } }";
    let (a, b) = tokio::join!(
        app.gql_as(
            &manager,
            ESCALATE,
            json!({ "input": { "caseId": id, "reason": "UNRESOLVED" } })
        ),
        app.gql_as(
            &manager,
            record,
            json!({ "i": { "caseId": id, "kind": "DISCUSSION", "facts": "Called the duty team." } })
        ),
    );
    assert!(a.get("errors").is_none(), "{a:#}");
    assert!(b.get("errors").is_none(), "{b:#}");
    assert_eq!(state(&app, &id).await["version"], 3, "both applied, one after the other");
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

//! Rules the seeds state about one protocol (issue 12), over HTTP: Leeds's
//! conference requests are raised with children's social care.

use escalations::domain::role::Role;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;

const RAISE: &str = "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id route stage receivingAgency { code } } } }";
const ROUTES: &str = "{ protocols { id routes { id receivingAgencyKinds } } }";

/// How many cases are stored.
async fn stored_cases(app: &TestApp) -> u64 {
    entity::case::Entity::find().count(&app.db).await.unwrap()
}

db_test!(a_leeds_conference_request_is_raised_with_childrens_social_care, |app| {
    let hospital = app.token(Role::Practitioner, Some("ld-lth"), "leeds");
    let request = |receiving: &str, reference: &str| {
        json!({ "input": {
            "receivingAgencyId": receiving,
            "childReference": reference,
            "category": "conference-need",
            "route": "conference-request",
            "summary": "The hospital asks for an initial child protection conference.",
        } })
    };
    // The route says so.
    let data = app.gql_as_ok(&hospital, ROUTES, json!({})).await;
    let leeds = data["protocols"].as_array().unwrap().iter().find(|p| p["id"] == "leeds").unwrap();
    let kinds: Vec<(&str, &Value)> = leeds["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), &r["receivingAgencyKinds"]))
        .collect();
    let none = json!([]);
    let csc = json!(["CHILDRENS_SOCIAL_CARE"]);
    assert_eq!(
        kinds,
        [
            ("referral-enquiry", &none),
            ("conference-request", &csc),
            ("conference-dissent", &none),
            ("protection-plan", &none),
        ]
    );

    // Against health (the community trust): refused, naming the field,
    // and nothing stored.
    let health = app.agency_id("ld-lch").await;
    let err = app.gql_as_err(&hospital, RAISE, request(&health, "LTH-2026-0201")).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    assert_eq!(err["extensions"]["field"], "receivingAgencyId", "{err:#}");
    assert_eq!(
        err["message"],
        "receivingAgencyId: a case on the conference-request route is raised with an agency of \
         kind CHILDRENS_SOCIAL_CARE (the protocol puts the decision there); this agency is HEALTH"
    );
    assert_eq!(stored_cases(&app).await, 0);
    // Against the police: refused too.
    let police = app.agency_id("ld-police").await;
    let err = app.gql_as_err(&hospital, RAISE, request(&police, "LTH-2026-0202")).await;
    assert_eq!(err["extensions"]["field"], "receivingAgencyId", "{err:#}");
    assert_eq!(stored_cases(&app).await, 0);

    // Against children's social care: accepted.
    let csws = app.agency_id("ld-csws").await;
    let data = app.gql_as_ok(&hospital, RAISE, request(&csws, "LTH-2026-0203")).await;
    let case = &data["raiseCase"]["case"];
    assert_eq!(
        (&case["route"], &case["stage"], &case["receivingAgency"]["code"]),
        (&json!("conference-request"), &json!("request"), &json!("ld-csws"))
    );
    // Another route of the same protocol takes health.
    let mut enquiry = request(&health, "LTH-2026-0204");
    enquiry["input"]["route"] = json!("referral-enquiry");
    enquiry["input"]["category"] = json!("other");
    let data = app.gql_as_ok(&hospital, RAISE, enquiry).await;
    assert_eq!(data["raiseCase"]["case"]["receivingAgency"]["code"], "ld-lch");
    assert_eq!(stored_cases(&app).await, 2);
});

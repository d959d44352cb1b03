//! Rules the seeds state about one protocol (issue 12), over HTTP: Leeds's
//! conference requests are raised with children's social care, and
//! Rotherham's Conference Chair records the day the family was told.

use chrono::{Days, NaiveDate, Utc};
use escalations::domain::role::Role;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
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

const TOLD: &str = "mutation($input: RecordFamilyToldInput!) { recordFamilyTold(input: $input) { case { id version familyToldOn } } }";
const SHOWN: &str =
    "query($id: ID!) { case(id: $id) { version familyToldOn viewerCan { recordFamilyTold } } }";

/// A Rotherham case raised by the Safeguarding Unit's Conference Chair
/// against children's services, on `route`; returns its id.
async fn rotherham_case(app: &TestApp, chair: &str, route: &str, reference: &str) -> String {
    let cyps = app.agency_id("ro-cyps").await;
    let input = json!({ "input": {
        "receivingAgencyId": cyps,
        "childReference": reference,
        "category": "conference-practice",
        "route": route,
        "summary": "The social work report was not shared with the parents before conference.",
    } });
    let data = app.gql_as_ok(chair, RAISE, input).await;
    data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned()
}

/// The case's audit events, oldest first, as (action, data).
async fn trail(app: &TestApp, id: &str) -> Vec<(String, Value)> {
    use sea_orm::QueryOrder;
    entity::case_event::Entity::find()
        .filter(entity::case_event::Column::CaseId.eq(id.parse::<uuid::Uuid>().unwrap()))
        .order_by_asc(entity::case_event::Column::Seq)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, serde_json::from_str(&e.data).unwrap()))
        .collect()
}

fn told(id: &str, on: NaiveDate) -> Value {
    json!({ "input": { "caseId": id, "toldOn": on.to_string() } })
}

db_test!(rotherham_s_conference_chair_records_the_day_the_family_was_told, |app| {
    let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    let line_manager = app.token(Role::Manager, Some("ro-cyps"), "rotherham");
    let their_lead = app.token(Role::SafeguardingLead, Some("ro-cyps"), "rotherham");
    let id = rotherham_case(&app, &chair, "challenge", "RMBC-2026-0901").await;
    // Raised some days ago, so that several days are in range.
    let today = Utc::now().date_naive();
    let raised_on = today - Days::new(5);
    entity::case::Entity::update_many()
        .col_expr(
            entity::case::Column::RaisedAt,
            sea_orm::sea_query::Expr::value(raised_on.and_hms_opt(9, 0, 0).unwrap().and_utc()),
        )
        .filter(entity::case::Column::Id.eq(id.parse::<uuid::Uuid>().unwrap()))
        .exec(&app.db)
        .await
        .unwrap();

    // Nothing is assumed: raising records no family told.
    let shown = app.gql_as_ok(&chair, SHOWN, json!({ "id": id })).await;
    assert_eq!(
        shown["case"],
        json!({ "version": 1, "familyToldOn": null, "viewerCan": { "recordFamilyTold": true } })
    );
    let (action, data) = &trail(&app, &id).await[0];
    assert_eq!((action.as_str(), data.get("family_told")), ("raise", None));
    // The challenged agency does not record it: its line manager's role
    // is not the chair's, and its safeguarding lead is on the other side.
    let shown = app.gql_as_ok(&line_manager, SHOWN, json!({ "id": id })).await;
    assert_eq!(shown["case"]["viewerCan"]["recordFamilyTold"], false);
    let err = app.gql_as_err(&line_manager, TOLD, told(&id, today)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    assert_eq!(err["extensions"]["allowedRoles"], json!(["safeguarding_lead"]), "{err:#}");
    let err = app.gql_as_err(&their_lead, TOLD, told(&id, today)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    assert_eq!(err["extensions"]["allowedSides"], json!(["raising"]), "{err:#}");
    // Not tomorrow, not before the case was raised.
    for day in [today + Days::new(1), raised_on - Days::new(1)] {
        let err = app.gql_as_err(&chair, TOLD, told(&id, day)).await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{day}: {err:#}");
        assert_eq!(err["extensions"]["field"], "toldOn", "{day}: {err:#}");
    }
    let shown = app.gql_as_ok(&chair, SHOWN, json!({ "id": id })).await;
    assert_eq!(
        (&shown["case"]["version"], &shown["case"]["familyToldOn"]),
        (&json!(1), &json!(null))
    );

    // The chair records it, through the write frame: a new version, its
    // audit event and its event.
    let first = raised_on + Days::new(1);
    let data = app.gql_as_ok(&chair, TOLD, told(&id, first)).await;
    assert_eq!(
        data["recordFamilyTold"]["case"],
        json!({ "id": id, "version": 2, "familyToldOn": first.to_string() })
    );
    // The day already shown: nothing to change.
    let err = app.gql_as_err(&chair, TOLD, told(&id, first)).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT", "{err:#}");
    // Told again of a later escalation: the later day replaces it, and the
    // trail keeps both.
    let data = app.gql_as_ok(&chair, TOLD, told(&id, today)).await;
    assert_eq!(data["recordFamilyTold"]["case"]["familyToldOn"], json!(today.to_string()));
    let events = trail(&app, &id).await;
    let recorded: Vec<&Value> =
        events.iter().filter(|(a, _)| a == "record_family_told").map(|(_, d)| d).collect();
    assert_eq!(
        recorded,
        [
            &json!({ "stage": "stage-1", "told_on": first.to_string(), "replaces": null }),
            &json!({ "stage": "stage-1", "told_on": today.to_string(), "replaces": first.to_string() }),
        ]
    );
    let feed = app
        .gql_as_ok(
            &chair,
            "query($f: CaseEventFilter) { caseEvents(first: 10, filter: $f) { nodes { type version } } }",
            json!({ "f": { "caseId": id } }),
        )
        .await;
    assert_eq!(
        feed["caseEvents"]["nodes"],
        json!([
            { "type": "CASE_RAISED", "version": 1 },
            { "type": "FAMILY_TOLD_RECORDED", "version": 2 },
            { "type": "FAMILY_TOLD_RECORDED", "version": 3 },
        ])
    );
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);

    // The practice route has no such rule: refused, naming the case.
    let practice = rotherham_case(&app, &chair, "practice", "RMBC-2026-0902").await;
    let shown = app.gql_as_ok(&chair, SHOWN, json!({ "id": practice })).await;
    assert_eq!(shown["case"]["viewerCan"]["recordFamilyTold"], false);
    let err = app.gql_as_err(&chair, TOLD, told(&practice, today)).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{err:#}");
    assert_eq!(err["extensions"]["field"], "caseId", "{err:#}");
    let shown = app.gql_as_ok(&chair, SHOWN, json!({ "id": practice })).await;
    assert_eq!(
        (&shown["case"]["version"], &shown["case"]["familyToldOn"]),
        (&json!(1), &json!(null))
    );

    // Another agency's token does not find the case at all.
    let police = app.token(Role::SafeguardingLead, Some("ro-police"), "rotherham");
    let err = app.gql_as_err(&police, TOLD, told(&id, today)).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND", "{err:#}");
});

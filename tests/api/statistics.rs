//! Board statistics and feedback over HTTP, on SQLite and PostgreSQL.
//!
//! A small fixed data set of cases is stored directly; every statistic is
//! checked against numbers worked out by hand below. Both backends run the
//! same assertions, so they give the same numbers.

use chrono::{DateTime, Days, Utc};
use entity::case;
use escalations::domain::role::Role;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;

/// A case of the fixed data set.
struct Row {
    /// Label used in the comments below.
    label: &'static str,
    raising: &'static str,
    receiving: &'static str,
    category: &'static str,
    stage: &'static str,
    status: &'static str,
    raised: &'static str,
    /// When it was resolved or withdrawn (its `updated_at`).
    closed: Option<&'static str>,
    /// Due date, in days from today.
    due_in_days: Option<i64>,
}

const CHILD_REFERENCE: &str = "SWP-2025-SECRET-REF-0042";
const SUMMARY: &str = "Free text that must never reach a statistic";
const COMMENT: &str = "A free comment that must never reach a statistic";

#[rustfmt::skip]
const WESTERN_BAY: [Row; 12] = [
    // Thu 17 Apr -> Thu 24 Apr 2025: Good Friday 18 and Easter Monday 21
    // excluded, so 22, 23, 24: 3 working days.
    Row { label: "A", raising: "wb-police", receiving: "wb-swansea-csc", category: "referral-response", stage: "stage-1", status: "resolved", raised: "2025-04-17T09:00:00Z", closed: Some("2025-04-24T15:00:00Z"), due_in_days: None },
    // Tue 1 Apr -> Tue 8 Apr: 2, 3, 4, 7, 8: 5.
    Row { label: "B", raising: "wb-police", receiving: "wb-swansea-csc", category: "referral-response", stage: "stage-2", status: "resolved", raised: "2025-04-01T10:00:00Z", closed: Some("2025-04-08T10:00:00Z"), due_in_days: None },
    // Fri 2 May -> Tue 6 May: early May bank holiday Mon 5 excluded: 1.
    Row { label: "C", raising: "wb-health", receiving: "wb-swansea-csc", category: "medical-examination", stage: "informal", status: "resolved", raised: "2025-05-02T11:00:00Z", closed: Some("2025-05-06T16:00:00Z"), due_in_days: None },
    // Mon 12 May -> Mon 9 Jun: 4 + 5 + 4 (spring bank holiday 26 May) + 5 + 1: 19.
    Row { label: "D", raising: "wb-police", receiving: "wb-health", category: "medical-examination", stage: "stage-3", status: "resolved", raised: "2025-05-12T08:30:00Z", closed: Some("2025-06-09T12:00:00Z"), due_in_days: None },
    // Raised before the period, resolved in it. Thu 20 Mar -> Thu 10 Apr: 1 + 5 + 5 + 4: 15.
    Row { label: "E", raising: "wb-police", receiving: "wb-swansea-csc", category: "referral-response", stage: "stage-1", status: "resolved", raised: "2025-03-20T09:00:00Z", closed: Some("2025-04-10T09:00:00Z"), due_in_days: None },
    // Withdrawn in the period.
    Row { label: "F", raising: "wb-swansea-csc", receiving: "wb-police", category: "strategy-discussion", stage: "informal", status: "withdrawn", raised: "2025-06-10T09:00:00Z", closed: Some("2025-06-12T09:00:00Z"), due_in_days: None },
    // Open and overdue now.
    Row { label: "G", raising: "wb-police", receiving: "wb-swansea-csc", category: "referral-response", stage: "stage-2", status: "open", raised: "2025-05-20T09:00:00Z", closed: None, due_in_days: Some(-2) },
    // Open, due later.
    Row { label: "H", raising: "wb-health", receiving: "wb-swansea-csc", category: "medical-examination", stage: "stage-1", status: "open", raised: "2025-06-20T09:00:00Z", closed: None, due_in_days: Some(30) },
    // Raised after the period; open, no due date.
    Row { label: "I", raising: "wb-education", receiving: "wb-police", category: "referral-response", stage: "informal", status: "open", raised: "2025-07-05T09:00:00Z", closed: None, due_in_days: None },
    // Raised before the period, resolved after it: open at its end. A stale
    // due date on a closed case is not overdue.
    Row { label: "J", raising: "wb-npt-csc", receiving: "wb-health", category: "strategy-discussion", stage: "stage-4", status: "resolved", raised: "2025-02-01T09:00:00Z", closed: Some("2025-07-15T09:00:00Z"), due_in_days: Some(-10) },
    // Raised in the last hour of the period, resolved exactly at its end
    // (excluded): open at the end, not resolved in the period.
    Row { label: "K", raising: "wb-probation", receiving: "wb-education", category: "strategy-discussion", stage: "stage-1", status: "resolved", raised: "2025-06-30T23:00:00Z", closed: Some("2025-07-01T00:00:00Z"), due_in_days: None },
    // The same date pair as A (one SQL row, weight 2): 3.
    Row { label: "L", raising: "wb-swansea-csc", receiving: "wb-health", category: "medical-examination", stage: "stage-1", status: "resolved", raised: "2025-04-17T14:00:00Z", closed: Some("2025-04-24T09:00:00Z"), due_in_days: None },
];

#[rustfmt::skip]
const PAN_SUSSEX: [Row; 2] = [
    Row { label: "P1", raising: "ps-police", receiving: "ps-bh-csc", category: "timeliness", stage: "stage-2", status: "resolved", raised: "2025-04-02T09:00:00Z", closed: Some("2025-04-03T09:00:00Z"), due_in_days: None },
    Row { label: "P2", raising: "ps-police", receiving: "ps-bh-csc", category: "timeliness", stage: "stage-1", status: "open", raised: "2025-04-09T09:00:00Z", closed: None, due_in_days: Some(-1) },
];

const FROM: &str = "2025-04-01T00:00:00Z";
const TO: &str = "2025-07-01T00:00:00Z";

const STATISTICS: &str = "query($p: ID!, $from: DateTime!, $to: DateTime!) { boardStatistics(partnershipId: $p, from: $from, to: $to) {
    from to casesRaised casesOpenAtEnd casesResolved
    byStageReached { route stage count }
    byAgencyPair { raisingAgency { code } receivingAgency { code } count }
    byCategory { category count }
    byRoute { route count }
    byOutcome { status count }
    timeToResolution { count medianWorkingDays p90WorkingDays }
    openNow overdueNow
    monthlyTrend { month raised resolved }
    agenciesThatRaise { code }
    agenciesThatNeverRaise { code }
    repeatedDisagreements { agencies { code } category count }
    feedback { count resolvedYes wouldUseAgainYes averageFeltDuration }
} }";

/// `repeatedDisagreements` as (agency codes sorted, category, count),
/// sorted: the pair's order follows agency ids.
fn repeated(list: &Value) -> Vec<(Vec<String>, String, u64)> {
    let mut out: Vec<(Vec<String>, String, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut codes: Vec<String> = r["agencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["code"].as_str().unwrap().to_owned())
                .collect();
            codes.sort();
            (codes, r["category"].as_str().unwrap().to_owned(), r["count"].as_u64().unwrap())
        })
        .collect();
    out.sort();
    out
}

const GIVE: &str = "mutation($input: GiveFeedbackInput!) { giveFeedback(input: $input) { caseVersion feedback { caseId agency { code } resolved feltDurationRating wouldUseAgain comment } } }";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn partnership_id(app: &TestApp, code: &str) -> String {
    let data = app.gql_ok("{ partnerships { id code } }", json!({})).await;
    data["partnerships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == code)
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .unwrap()
}

/// Stores one case row directly (no audit trail), like `cases::store_case`
/// with every fact chosen.
async fn store(app: &TestApp, partnership: &str, protocol: &str, row: &Row) -> String {
    let id = uuid::Uuid::now_v7();
    let raised = at(row.raised);
    let updated = row.closed.map_or(raised, at);
    let today = Utc::now().date_naive();
    let due_on = row.due_in_days.map(|d| {
        if d >= 0 {
            today + Days::new(d.unsigned_abs())
        } else {
            today - Days::new(d.unsigned_abs())
        }
    });
    case::Entity::insert(case::ActiveModel {
        id: Set(id),
        partnership_id: Set(partnership.parse().unwrap()),
        protocol_id: Set(protocol.into()),
        protocol_version: Set(1),
        route: Set("main".into()),
        stage: Set(row.stage.into()),
        status: Set(row.status.into()),
        raising_agency_id: Set(app.agency_id(row.raising).await.parse().unwrap()),
        receiving_agency_id: Set(app.agency_id(row.receiving).await.parse().unwrap()),
        child_reference: Set(CHILD_REFERENCE.into()),
        category: Set(row.category.into()),
        summary: Set(SUMMARY.into()),
        version: Set(1),
        raised_at: Set(raised),
        updated_at: Set(updated),
        stage_entered_at: Set(Some(raised)),
        due_on: Set(due_on),
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

/// Stores the fixed data set; returns the Western Bay partnership id, the
/// Pan-Sussex one and the case ids by label.
async fn fixture(
    app: &TestApp,
) -> (String, String, std::collections::HashMap<&'static str, String>) {
    let wb = partnership_id(app, "western-bay").await;
    let ps = partnership_id(app, "pan-sussex").await;
    let mut ids = std::collections::HashMap::new();
    for row in &WESTERN_BAY {
        ids.insert(row.label, store(app, &wb, "western-bay", row).await);
    }
    for row in &PAN_SUSSEX {
        ids.insert(row.label, store(app, &ps, "pan-sussex", row).await);
    }
    (wb, ps, ids)
}

fn vars(partnership: &str) -> Value {
    json!({ "p": partnership, "from": FROM, "to": TO })
}

/// `[raising, receiving, count]` of each pair, sorted by count (biggest
/// first) then codes, so ties between equal counts compare stably.
fn pairs(list: &Value) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["raisingAgency"]["code"].as_str().unwrap().to_owned(),
                p["receivingAgency"]["code"].as_str().unwrap().to_owned(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    out
}

fn codes(list: &Value) -> Vec<&str> {
    list.as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect()
}

fn p(raising: &str, receiving: &str, count: u64) -> (String, String, u64) {
    (raising.to_owned(), receiving.to_owned(), count)
}

/// Gives the feedback the statistics count: two agencies on A (resolved in
/// the period), one on F (withdrawn in the period), one on J (resolved
/// after the period: not counted).
async fn give_counted_feedback(
    app: &TestApp,
    ids: &std::collections::HashMap<&'static str, String>,
) {
    let police = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let csc = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let npt = app.token(Role::HeadOfService, Some("wb-npt-csc"), "western-bay");
    for (token, case, resolved, rating, again) in [
        (&police, "A", true, json!(4), true),
        (&csc, "A", true, json!(1), false),
        (&csc, "F", false, Value::Null, true),
        (&npt, "J", true, json!(5), true),
    ] {
        app.gql_as_ok(
            token,
            GIVE,
            json!({ "input": { "caseId": ids[case], "resolved": resolved, "feltDurationRating": rating, "wouldUseAgain": again, "comment": COMMENT } }),
        )
        .await;
    }
}

db_test!(board_statistics_match_hand_computed_numbers, |app| {
    let (wb, _, ids) = fixture(&app).await;
    give_counted_feedback(&app, &ids).await;
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let body = app.gql_as(&chair, STATISTICS, vars(&wb)).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let s = &body["data"]["boardStatistics"];

    assert_eq!(at(s["from"].as_str().unwrap()), at(FROM));
    assert_eq!(at(s["to"].as_str().unwrap()), at(TO));
    // Raised in [1 Apr, 1 Jul): A B C D F G H K L.
    assert_eq!(s["casesRaised"], 9);
    // Raised before 1 Jul and not closed before it: G H (open), J (resolved
    // 15 Jul), K (resolved exactly at the end).
    assert_eq!(s["casesOpenAtEnd"], 4);
    // Resolved in the period: A B C D E L (not F: withdrawn; not J, K).
    assert_eq!(s["casesResolved"], 6);
    assert_eq!(
        s["byStageReached"],
        json!([
            { "route": "main", "stage": "stage-1", "count": 4 },  // A H K L
            { "route": "main", "stage": "informal", "count": 2 }, // C F
            { "route": "main", "stage": "stage-2", "count": 2 },  // B G
            { "route": "main", "stage": "stage-3", "count": 1 },  // D
        ])
    );
    assert_eq!(
        pairs(&s["byAgencyPair"]),
        vec![
            p("wb-police", "wb-swansea-csc", 3),  // A B G
            p("wb-health", "wb-swansea-csc", 2),  // C H
            p("wb-police", "wb-health", 1),       // D
            p("wb-probation", "wb-education", 1), // K
            p("wb-swansea-csc", "wb-health", 1),  // L
            p("wb-swansea-csc", "wb-police", 1),  // F
        ]
    );
    // The API's own order: biggest count first.
    assert_eq!(s["byAgencyPair"][0]["count"], 3);
    assert_eq!(s["byAgencyPair"][1]["count"], 2);
    assert_eq!(
        s["byCategory"],
        json!([
            { "category": "medical-examination", "count": 4 }, // C D H L
            { "category": "referral-response", "count": 3 },   // A B G
            { "category": "strategy-discussion", "count": 2 }, // F K
        ])
    );
    assert_eq!(s["byRoute"], json!([{ "route": "main", "count": 9 }]));
    assert_eq!(
        s["byOutcome"],
        json!([
            { "status": "OPEN", "count": 2 },      // G H
            { "status": "RESOLVED", "count": 6 },  // A B C D K L (K's status now)
            { "status": "WITHDRAWN", "count": 1 }, // F
        ])
    );
    // Working days: A 3, B 5, C 1, D 19, E 15, L 3 -> 1 3 3 5 15 19.
    // Nearest rank: median = 3rd = 3 (interpolating would give 4);
    // p90 = ceil(5.4) = 6th = 19 (interpolating would give 17).
    assert_eq!(
        s["timeToResolution"],
        json!({ "count": 6, "medianWorkingDays": 3, "p90WorkingDays": 19 })
    );
    // Now, whatever the period: G H I open; G overdue (J's stale date does
    // not count, it is closed).
    assert_eq!(s["openNow"], 3);
    assert_eq!(s["overdueNow"], 1);
    assert_eq!(
        s["monthlyTrend"],
        json!([
            { "month": "2025-04", "raised": 3, "resolved": 4 }, // raised A B L; resolved A B E L
            { "month": "2025-05", "raised": 3, "resolved": 1 }, // raised C D G; resolved C
            { "month": "2025-06", "raised": 3, "resolved": 1 }, // raised F H K; resolved D
        ])
    );
    // By name: Probation Service Wales, South Wales Police, Swansea Bay
    // University Health Board, Swansea Council Child and Family Services.
    assert_eq!(
        codes(&s["agenciesThatRaise"]),
        ["wb-probation", "wb-police", "wb-health", "wb-swansea-csc"]
    );
    // J's raiser raised before the period, I's after it.
    assert_eq!(codes(&s["agenciesThatNeverRaise"]), ["wb-npt-csc", "wb-education"]);
    // Either way round, withdrawn ones not counted (F), at least Western
    // Bay's threshold of 2: police and CSC about referrals (A B G), health
    // and CSC about medical examinations (C H from health, L from CSC).
    assert_eq!(
        repeated(&s["repeatedDisagreements"]),
        [
            (
                vec!["wb-health".to_owned(), "wb-swansea-csc".to_owned()],
                "medical-examination".to_owned(),
                3
            ),
            (
                vec!["wb-police".to_owned(), "wb-swansea-csc".to_owned()],
                "referral-response".to_owned(),
                3
            ),
        ]
    );
    // On A (twice) and F; J was closed after the period. Ratings 4 and 1.
    assert_eq!(
        s["feedback"],
        json!({ "count": 3, "resolvedYes": 2, "wouldUseAgainYes": 2, "averageFeltDuration": 2.5 })
    );

    // No free text and no child reference anywhere.
    let text = body.to_string();
    for secret in [CHILD_REFERENCE, SUMMARY, COMMENT] {
        assert!(!text.contains(secret), "{secret:?} leaked into the statistics");
    }

    // A statistics client of the partnership gets the same numbers.
    let client = app.client_token("statistics:read", None, "western-bay");
    let same = app.gql_as(&client, STATISTICS, vars(&wb)).await;
    assert_eq!(same, body);

    // Each part alone, as a reporting tool asks for it.
    let data = app
        .gql_as_ok(
            &client,
            "query($p: ID!, $from: DateTime!, $to: DateTime!) { boardStatistics(partnershipId: $p, from: $from, to: $to) { timeToResolution { medianWorkingDays } } }",
            vars(&wb),
        )
        .await;
    assert_eq!(data["boardStatistics"], json!({ "timeToResolution": { "medianWorkingDays": 3 } }));

    // A narrower period: April only.
    let data = app
        .gql_as_ok(
            &chair,
            STATISTICS,
            json!({ "p": wb, "from": FROM, "to": "2025-05-01T00:00:00Z" }),
        )
        .await;
    let april = &data["boardStatistics"];
    assert_eq!(april["casesRaised"], 3, "A B L");
    assert_eq!(april["casesResolved"], 4, "A B E L");
    assert_eq!(april["casesOpenAtEnd"], 1, "J; G, K and the rest were raised later");
    assert_eq!(
        april["timeToResolution"],
        json!({ "count": 4, "medianWorkingDays": 3, "p90WorkingDays": 15 }),
        "3 3 5 15"
    );
    assert_eq!(april["monthlyTrend"], json!([{ "month": "2025-04", "raised": 3, "resolved": 4 }]));
    assert_eq!(april["repeatedDisagreements"].as_array().unwrap().len(), 1, "police -> CSC: A B");
    assert_eq!(
        april["feedback"],
        json!({ "count": 2, "resolvedYes": 2, "wouldUseAgainYes": 1, "averageFeltDuration": 2.5 })
    );

    // A period with nothing in it.
    let data = app
        .gql_as_ok(
            &chair,
            STATISTICS,
            json!({ "p": wb, "from": "2019-01-01T00:00:00Z", "to": "2019-02-15T00:00:00Z" }),
        )
        .await;
    let empty = &data["boardStatistics"];
    assert_eq!(empty["casesRaised"], 0);
    assert_eq!(empty["casesOpenAtEnd"], 0);
    assert_eq!(empty["byStageReached"], json!([]));
    assert_eq!(
        empty["byOutcome"],
        json!([{ "status": "OPEN", "count": 0 }, { "status": "RESOLVED", "count": 0 }, { "status": "WITHDRAWN", "count": 0 }])
    );
    assert_eq!(
        empty["timeToResolution"],
        json!({ "count": 0, "medianWorkingDays": null, "p90WorkingDays": null })
    );
    assert_eq!(
        empty["monthlyTrend"],
        json!([{ "month": "2019-01", "raised": 0, "resolved": 0 }, { "month": "2019-02", "raised": 0, "resolved": 0 }])
    );
    assert_eq!(empty["agenciesThatRaise"], json!([]));
    assert_eq!(empty["agenciesThatNeverRaise"].as_array().unwrap().len(), 6);
    assert_eq!(
        empty["feedback"],
        json!({ "count": 0, "resolvedYes": 0, "wouldUseAgainYes": 0, "averageFeltDuration": null })
    );
    assert_eq!(empty["openNow"], 3, "now does not depend on the period");
});

db_test!(board_statistics_are_scoped_to_the_partnership_and_its_board, |app| {
    let (wb, ps, _) = fixture(&app).await;

    // Another partnership's board chair or statistics client: not found.
    let ps_chair = app.token(Role::BoardChair, None, "pan-sussex");
    let err = app.gql_as_err(&ps_chair, STATISTICS, vars(&wb)).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    let ps_client = app.client_token("statistics:read", None, "pan-sussex");
    let err = app.gql_as_err(&ps_client, STATISTICS, vars(&wb)).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = app.gql_as_err(&ps_chair, STATISTICS, vars(&unknown)).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");

    // The partnership's other roles and its cases:read clients: forbidden,
    // naming the role that may.
    for role in [Role::Practitioner, Role::Manager, Role::SafeguardingLead, Role::HeadOfService] {
        let token = app.token(role, Some("wb-police"), "western-bay");
        let err = app.gql_as_err(&token, STATISTICS, vars(&wb)).await;
        assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{role:?}");
        assert!(err["message"].as_str().unwrap().contains("board_chair"), "{err:#}");
    }
    let cases_client = app.client_token("cases:read", Some("wb-police"), "western-bay");
    let err = app.gql_as_err(&cases_client, STATISTICS, vars(&wb)).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN");
    assert!(err["message"].as_str().unwrap().contains("statistics:read"), "{err:#}");

    // Every part of a partnership's statistics counts its cases only.
    let body = app.gql_as(&ps_chair, STATISTICS, vars(&ps)).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let s = &body["data"]["boardStatistics"];
    assert_eq!(s["casesRaised"], 2);
    assert_eq!(s["casesOpenAtEnd"], 1);
    assert_eq!(s["casesResolved"], 1);
    assert_eq!(
        s["byStageReached"],
        json!([{ "route": "main", "stage": "stage-1", "count": 1 }, { "route": "main", "stage": "stage-2", "count": 1 }])
    );
    assert_eq!(pairs(&s["byAgencyPair"]), vec![p("ps-police", "ps-bh-csc", 2)]);
    assert_eq!(s["byCategory"], json!([{ "category": "timeliness", "count": 2 }]));
    assert_eq!(s["byRoute"], json!([{ "route": "main", "count": 2 }]));
    assert_eq!(
        s["byOutcome"],
        json!([{ "status": "OPEN", "count": 1 }, { "status": "RESOLVED", "count": 1 }, { "status": "WITHDRAWN", "count": 0 }])
    );
    // Wed 2 Apr -> Thu 3 Apr 2025.
    assert_eq!(
        s["timeToResolution"],
        json!({ "count": 1, "medianWorkingDays": 1, "p90WorkingDays": 1 })
    );
    assert_eq!(s["openNow"], 1);
    assert_eq!(s["overdueNow"], 1);
    assert_eq!(
        s["monthlyTrend"],
        json!([
            { "month": "2025-04", "raised": 2, "resolved": 1 },
            { "month": "2025-05", "raised": 0, "resolved": 0 },
            { "month": "2025-06", "raised": 0, "resolved": 0 },
        ])
    );
    assert_eq!(codes(&s["agenciesThatRaise"]), ["ps-police"]);
    let never = codes(&s["agenciesThatNeverRaise"]);
    assert_eq!(never.len(), 6);
    assert!(never.iter().all(|c| c.starts_with("ps-")), "{never:?}");
    // Two similar cases are under Pan-Sussex's threshold of 3 (its rule's
    // count, as the step-5 trigger counts).
    assert_eq!(s["repeatedDisagreements"], json!([]));
    assert_eq!(
        s["feedback"],
        json!({ "count": 0, "resolvedYes": 0, "wouldUseAgainYes": 0, "averageFeltDuration": null })
    );

    // The period must run forwards; identifiers must be identifiers.
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let err = app.gql_as_err(&chair, STATISTICS, json!({ "p": wb, "from": TO, "to": FROM })).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "from");
    let err =
        app.gql_as_err(&chair, STATISTICS, json!({ "p": wb, "from": FROM, "to": FROM })).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
    let err = app.gql_as_err(&chair, STATISTICS, vars("not-an-id")).await;
    assert_eq!(err["extensions"]["field"], "partnershipId");
});

db_test!(each_agency_gives_feedback_once_on_a_closed_case, |app| {
    let (_, _, ids) = fixture(&app).await;
    let police = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let input = |case: &str| json!({ "input": { "caseId": ids[case], "resolved": true, "feltDurationRating": 4, "wouldUseAgain": true, "comment": "  Took a while.  " } });
    let data = app.gql_as_ok(&police, GIVE, input("A")).await;
    let given = &data["giveFeedback"];
    assert_eq!(given["caseVersion"], 2);
    assert_eq!(
        given["feedback"],
        json!({ "caseId": ids["A"], "agency": { "code": "wb-police" }, "resolved": true, "feltDurationRating": 4, "wouldUseAgain": true, "comment": "Took a while." })
    );
    // Once per agency: a second time, by anyone of it, is a conflict.
    let err = app.gql_as_err(&police, GIVE, input("A")).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");
    let police_lead = app.token(Role::SafeguardingLead, Some("wb-police"), "western-bay");
    let err = app.gql_as_err(&police_lead, GIVE, input("A")).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");
    // The other party may, once; on a withdrawn case too.
    let csc = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let data = app.gql_as_ok(&csc, GIVE, input("A")).await;
    assert_eq!(data["giveFeedback"]["caseVersion"], 3);
    app.gql_as_ok(&csc, GIVE, input("F")).await;
    // An open case: conflict.
    let err = app.gql_as_err(&police, GIVE, input("G")).await;
    assert_eq!(err["extensions"]["code"], "CONFLICT");
    // An agency that is not a party, or of another partnership: not found.
    let education = app.token(Role::Manager, Some("wb-education"), "western-bay");
    let err = app.gql_as_err(&education, GIVE, input("A")).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    let sussex = app.token(Role::Manager, Some("ps-police"), "pan-sussex");
    let err = app.gql_as_err(&sussex, GIVE, input("A")).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    // No agency (a board chair) or no role (a client): forbidden.
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let err = app.gql_as_err(&chair, GIVE, input("B")).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN");
    let client = app.client_token("cases:read", Some("wb-police"), "western-bay");
    let err = app.gql_as_err(&client, GIVE, input("B")).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN");
    // A rating outside 1 to 5.
    let err = app
        .gql_as_err(&police, GIVE, json!({ "input": { "caseId": ids["B"], "resolved": true, "feltDurationRating": 6, "wouldUseAgain": true } }))
        .await;
    assert_eq!(err["extensions"]["field"], "feltDurationRating");
    // Without a rating or a comment.
    let data = app
        .gql_as_ok(&police, GIVE, json!({ "input": { "caseId": ids["B"], "resolved": false, "wouldUseAgain": false, "comment": "   " } }))
        .await;
    assert_eq!(data["giveFeedback"]["feedback"]["feltDurationRating"], Value::Null);
    assert_eq!(data["giveFeedback"]["feedback"]["comment"], Value::Null);
});

db_test!(feedback_is_a_change_of_the_case_in_its_audit_trail, |app| {
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let csc = app.agency_id("wb-swansea-csc").await;
    let data = app
        .gql_as_ok(
            &police,
            "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id } } }",
            json!({ "input": { "receivingAgencyId": csc, "childReference": "SWP-77", "category": "other", "summary": "Disputed decision." } }),
        )
        .await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    let data = app
        .gql_as_ok(
            &police,
            "mutation($input: ResolveCaseInput!) { resolveCase(input: $input) { case { version updatedAt } } }",
            json!({ "input": { "caseId": id, "outcome": "Agreed a joint visit." } }),
        )
        .await;
    let closed = data["resolveCase"]["case"].clone();
    assert_eq!(closed["version"], 2);

    let input = json!({ "input": { "caseId": id, "idempotencyKey": "fb-1", "resolved": true, "feltDurationRating": 5, "wouldUseAgain": true, "comment": "Quick." } });
    let first = app.gql_as_ok(&police, GIVE, input.clone()).await;
    assert_eq!(first["giveFeedback"]["caseVersion"], 3);
    // A retry with its key returns the first result and changes nothing.
    let again = app.gql_as_ok(&police, GIVE, input).await;
    assert_eq!(first, again);

    let lead = app.token(Role::SafeguardingLead, Some("wb-police"), "western-bay");
    let data = app
        .gql_as_ok(
            &lead,
            "query($id: ID!) { case(id: $id) { version updatedAt } auditTrail(caseId: $id) { nodes { seq action } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["case"]["version"], 3);
    assert_eq!(data["case"]["updatedAt"], closed["updatedAt"], "the closing time stays");
    assert_eq!(
        data["auditTrail"]["nodes"],
        json!([
            { "seq": 1, "action": "raise" },
            { "seq": 2, "action": "resolve" },
            { "seq": 3, "action": "give_feedback" },
        ])
    );
    assert_eq!(escalations::service::audit::verify(&app.db).await.unwrap(), None);
});

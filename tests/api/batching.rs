//! Every per-case field batches across a page: a selection asking for every
//! field of `Case` costs the same number of statements for 10 and for 100
//! cases, and still logs one read per case and free text. A board chair acts
//! for the board, and an action's owner is a party of the case.

use chrono::{Duration, Utc};
use entity::{access_log, agency_view, agreed_action, case, case_record, change_event};
use escalations::domain::role::Role;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::{TestApp, discussion_record, open_case};
use crate::{db_test, db_test_with};

/// Stores `n` Western Bay cases raised by the police, each with three
/// records, a view of each party and an agreed action, behind the API; at
/// `stage`, or at stages 1 and 2 in turn. Each odd one follows the one
/// before (`followsUp`), as a case raised by a step-down check does.
async fn store_cases(app: &TestApp, n: usize, stage: Option<&str>) {
    let wb = app.western_bay().await;
    let police = wb.police;
    let now = Utc::now();
    let (mut cases, mut records, mut views, mut actions) = (vec![], vec![], vec![], vec![]);
    let mut events = vec![];
    let mut previous = None;
    for i in 0..n {
        let id = uuid::Uuid::now_v7();
        let at = now - Duration::minutes(i as i64);
        let receiving = wb.receivers[i % wb.receivers.len()];
        let stage = stage.unwrap_or(if i % 2 == 0 { "stage-1" } else { "stage-2" });
        let mut case = open_case(&wb, id, receiving, stage, i, at);
        case.summary = Set(format!("summary {i}"));
        case.due_on = Set(Some(now.date_naive() + chrono::Days::new(5)));
        case.follows_case_id = Set(previous.filter(|_| i % 2 == 1));
        previous = Some(id);
        cases.push(case);
        for (k, facts) in ["first", "second", "last"].into_iter().enumerate() {
            let author = if k == 1 { receiving } else { police };
            records.push(discussion_record(
                id,
                format!("{facts} {i}"),
                author,
                at + Duration::seconds(k as i64),
            ));
        }
        // Its timeline: the raise and the three records.
        for (version, kind) in
            ["CASE_RAISED", "RECORD_ADDED", "RECORD_ADDED", "RECORD_ADDED"].into_iter().enumerate()
        {
            events.push(change_event::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                kind: Set(kind.into()),
                case_id: Set(id),
                partnership_id: Set(wb.partnership),
                raising_agency_id: Set(police),
                receiving_agency_id: Set(receiving),
                stage_before: Set((version > 0).then(|| stage.to_owned())),
                stage_after: Set(stage.to_owned()),
                status: Set("open".into()),
                case_version: Set(version as i32 + 1),
                at: Set(at + Duration::seconds(version as i64)),
                request_id: Set(None),
                ..Default::default()
            });
        }
        for (k, agency) in [police, receiving].into_iter().enumerate() {
            views.push(agency_view::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                case_id: Set(id),
                agency_id: Set(agency),
                stage: Set("stage-1".into()),
                view: Set(format!("view {k} of {i}")),
                author_sub: Set("u".into()),
                created_at: Set(at + Duration::seconds(k as i64)),
            });
        }
        actions.push(agreed_action::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            case_id: Set(id),
            stage: Set("stage-1".into()),
            description: Set(format!("action of {i}")),
            owner_agency_id: Set(receiving),
            due_on: Set(now.date_naive() + chrono::Days::new(10)),
            author_sub: Set("u".into()),
            created_at: Set(at),
            completed_at: Set(None),
            completed_by_sub: Set(None),
        });
    }
    for chunk in cases.chunks(50) {
        case::Entity::insert_many(chunk.to_vec()).exec_without_returning(&app.db).await.unwrap();
    }
    for chunk in records.chunks(50) {
        case_record::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
    for chunk in events.chunks(50) {
        change_event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
    for chunk in views.chunks(50) {
        agency_view::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
    for chunk in actions.chunks(50) {
        agreed_action::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
}

/// Every field of `Case` (schema.graphql), with every nested list and object.
const EVERY_FIELD: &str = r#"
query($n: Int!) {
  cases(first: $n) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { ...EveryField }
  }
}
fragment AgencyFields on Agency { id code name kind partnership { id code } }
fragment RecordFields on Record {
  id stage kind facts opinions attendees corrects createdAt
  authorAgency { ...AgencyFields }
}
fragment EveryField on Case {
  id status protocolId protocolVersion route stage childReference category
  version raisedAt updatedAt stageEnteredAt dueOn dueAt workingDaysRemaining
  overdue summary
  records(first: 2) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id } }
    nodes { ...RecordFields }
  }
  views { id stage view createdAt agency { ...AgencyFields } }
  events(first: 2) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id } }
    nodes {
      id type caseId partnershipId raisingAgencyId receivingAgencyId
      stageBefore stageAfter status version at requestId
    }
  }
  lastRecord { ...RecordFields }
  currentStage { key number name timeLimitWorkingDays boardTold }
  actions { id stage description dueOn createdAt owner { ...AgencyFields } }
  partnership { id code name protocolId calendar agencies { id code } }
  raisingAgency { ...AgencyFields }
  receivingAgency { ...AgencyFields }
  viewerCan {
    addRecord recordView agreeAction escalate accept resolve withdraw
    skipStage readAuditTrail readReport
  }
  stepDown {
    conferenceOn checkDueOn checkedAt cinMeetingHeld cinPlanInPlace evidenced
    followUpCase { id stage }
  }
  followsUp { id stage childReference }
}
"#;

/// Runs the page of `n` cases; checks what it shows and returns the
/// statements it ran.
/// `serve` settings whose cost limit lets a page of 100 cases ask for
/// every field: these tests count statements, not cost.
fn uncapped() -> escalations::config::ServeArgs {
    let mut serve = crate::helpers::serve_args();
    serve.graphql.max_cost = usize::MAX;
    serve.graphql.max_response_bytes = usize::MAX;
    serve.rate_limits.rate_limit_cost = "off".parse().unwrap();
    serve
}

async fn statements_for_page(app: &TestApp, token: &str, n: i64) -> u64 {
    let before = escalations::db::statements_executed();
    let data = app.gql_as_ok(token, EVERY_FIELD, json!({ "n": n })).await;
    let after = escalations::db::statements_executed();
    let nodes = data["cases"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len() as i64, n);
    for node in nodes {
        check_case(node);
        assert_eq!(node["viewerCan"]["readAuditTrail"], false, "a manager may not");
    }
    after - before
}

#[track_caller]
fn check_case(node: &Value) {
    let i = node["childReference"].as_str().unwrap().trim_start_matches("SWP-");
    assert_eq!(node["summary"], format!("summary {i}"));
    let records = &node["records"];
    assert_eq!(records["totalCount"], 3);
    assert_eq!(records["pageInfo"]["hasNextPage"], true, "2 of 3 records");
    let facts: Vec<&str> =
        records["nodes"].as_array().unwrap().iter().map(|r| r["facts"].as_str().unwrap()).collect();
    assert_eq!(facts, [format!("first {i}"), format!("second {i}")], "the first page, in order");
    assert_eq!(records["edges"].as_array().unwrap().len(), 2);
    assert_eq!(records["nodes"][0]["authorAgency"]["code"], "wb-police");
    assert_eq!(node["lastRecord"]["facts"], format!("last {i}"), "the latest record");
    let views: Vec<&str> =
        node["views"].as_array().unwrap().iter().map(|v| v["view"].as_str().unwrap()).collect();
    assert_eq!(views, [format!("view 0 of {i}"), format!("view 1 of {i}")]);
    assert_eq!(node["views"][0]["agency"]["code"], "wb-police");
    assert_eq!(node["actions"][0]["description"], format!("action of {i}"));
    assert_eq!(node["actions"][0]["owner"]["code"], node["receivingAgency"]["code"]);
    let events = &node["events"];
    let timeline: Vec<(&str, i64)> = events["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(timeline, [("CASE_RAISED", 1), ("RECORD_ADDED", 2)], "the first page of events");
    assert_eq!(events["nodes"][0]["caseId"], node["id"], "the case's own events");
    assert_eq!(events["pageInfo"]["hasNextPage"], true, "2 of 4 events");
    assert_eq!(node["raisingAgency"]["code"], "wb-police");
    assert_eq!(node["partnership"]["code"], "western-bay");
    assert!(node["partnership"]["agencies"].as_array().unwrap().len() >= 4);
    assert!(node["currentStage"]["name"].is_string());
    assert!(node["workingDaysRemaining"].is_i64());
    assert_eq!(node["stepDown"], Value::Null, "Western Bay has no step-down rule");
    let n: usize = i.parse().unwrap();
    if n % 2 == 1 {
        assert_eq!(node["followsUp"]["childReference"], format!("SWP-{}", n - 1), "{node:#}");
    } else {
        assert_eq!(node["followsUp"], Value::Null);
    }
}

/// Access-log rows of `sub` for `what`.
async fn logged(app: &TestApp, sub: &str, what: &str) -> u64 {
    access_log::Entity::find()
        .filter(access_log::Column::ActorSub.eq(sub))
        .filter(access_log::Column::What.eq(what))
        .count(&app.db)
        .await
        .unwrap()
}

const FREE_TEXT: [&str; 6] =
    ["summary", "child_reference", "records", "last_record", "views", "actions"];

db_test_with!(
    a_page_asking_every_field_of_a_case_runs_a_constant_number_of_statements,
    uncapped(),
    |app| {
        store_cases(&app, 100, None).await;
        let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
        let sub = "user-manager-wb-police";
        // Warm the token's directory cache so both pages run the same path.
        app.gql_as_ok(&token, "{ partnerships { code } }", json!({})).await;
        let small = statements_for_page(&app, &token, 10).await;
        for what in FREE_TEXT {
            assert_eq!(logged(&app, sub, what).await, 10, "one {what} read per case of the page");
        }
        let large = statements_for_page(&app, &token, 100).await;
        assert_eq!(small, large, "statements do not grow with the page size");
        for what in FREE_TEXT {
            assert_eq!(logged(&app, sub, what).await, 110, "one {what} read per case of each page");
        }
        // The page and its count; agencies, the partnership and its agencies;
        // the access-log insert; records, their count, the latest records,
        // views, actions, events; the cases they follow.
        assert!(large <= 13, "{large} statements for a page of 100");
        eprintln!("every field of Case: {small} statements for 10 cases, {large} for 100");
    }
);

/// Every field of every case in the board queue.
const BOARD_QUEUE: &str = "{ boardQueue(first: 100) { ...EveryField } }";

async fn statements_for_board_queue(app: &TestApp, token: &str, n: usize) -> u64 {
    let query = format!("{BOARD_QUEUE}{}", &EVERY_FIELD[EVERY_FIELD.find("fragment").unwrap()..]);
    let before = escalations::db::statements_executed();
    let data = app.gql_as_ok(token, &query, json!({})).await;
    let after = escalations::db::statements_executed();
    let nodes = data["boardQueue"].as_array().unwrap();
    assert_eq!(nodes.len(), n);
    for node in nodes {
        check_case(node);
        assert_eq!(node["viewerCan"]["readAuditTrail"], true, "the chair may");
    }
    after - before
}

db_test_with!(
    the_board_queue_asking_every_field_runs_a_constant_number_of_statements,
    uncapped(),
    |app| {
        let chair = app.token(Role::BoardChair, None, "western-bay");
        app.gql_as_ok(&chair, "{ partnerships { code } }", json!({})).await;
        store_cases(&app, 10, Some("stage-3")).await;
        let small = statements_for_board_queue(&app, &chair, 10).await;
        store_cases(&app, 90, Some("stage-3")).await;
        let large = statements_for_board_queue(&app, &chair, 100).await;
        assert_eq!(small, large, "statements do not grow with the queue");
        assert_eq!(logged(&app, "user-board_chair-none", "summary").await, 110);
    }
);

db_test!(a_single_case_logs_each_free_text_once_however_often_asked, |app| {
    store_cases(&app, 1, None).await;
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let sub = "user-manager-wb-police";
    let page = app.gql_as_ok(&token, "{ cases { nodes { id } } }", json!({})).await;
    let id = page["cases"]["nodes"][0]["id"].clone();
    let query = "query($id: ID!) { case(id: $id) { a: summary b: summary childReference records(first: 1) { nodes { facts } } more: records(first: 3) { nodes { facts } } } }";
    let data = app.gql_as_ok(&token, query, json!({ "id": id })).await;
    assert_eq!(data["case"]["a"], "summary 0");
    assert_eq!(data["case"]["more"]["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(logged(&app, sub, "summary").await, 1);
    assert_eq!(logged(&app, sub, "child_reference").await, 1);
    assert_eq!(logged(&app, sub, "records").await, 1);
    // Skipped fields are neither shown nor logged.
    let skipped = "query($n: Int!) { cases(first: $n) { nodes { id summary @skip(if: true) views @include(if: false) { view } } } }";
    app.gql_as_ok(&token, skipped, json!({ "n": 1 })).await;
    assert_eq!(logged(&app, sub, "summary").await, 1);
    assert_eq!(logged(&app, sub, "views").await, 0);
    // Another agency's caller gets nothing, and nothing is logged for it.
    let health = app.token(Role::Manager, Some("wb-education"), "western-bay");
    let err = app.gql_as_err(&health, query, json!({ "id": id })).await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    assert_eq!(logged(&app, "user-manager-wb-education", "summary").await, 0);
});

/// Raises a Western Bay case from the police to children's social care and
/// escalates it to the board (stage 4); returns its id.
async fn case_at_the_board(app: &TestApp) -> String {
    let practitioner = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let raise = "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }";
    let data = app
        .gql_as_ok(&practitioner, raise, json!({ "i": { "receivingAgencyId": receiving, "childReference": "SWP-2026-0042", "category": "other", "summary": "s" } }))
        .await;
    let id = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    let escalate =
        "mutation($i: EscalateCaseInput!) { escalateCase(input: $i) { case { stage } } }";
    for (i, role) in [Role::Manager, Role::Manager, Role::SafeguardingLead, Role::HeadOfService]
        .into_iter()
        .enumerate()
    {
        if i == 1 {
            crate::helpers::western_bay_stage_1_records(app, &id).await;
        }
        let token = app.token(role, Some("wb-police"), "western-bay");
        app.gql_as_ok(&token, escalate, json!({ "i": { "caseId": id, "reason": "UNRESOLVED" } }))
            .await;
    }
    id
}

const VERSION: &str = "query($id: ID!) { case(id: $id) { version stage } }";

db_test!(a_board_chair_acts_for_the_board_not_for_the_agency_in_the_token, |app| {
    let id = case_at_the_board(&app).await;
    // A chair whose token names an agency that is no party of the case.
    let chair = app.token(Role::BoardChair, Some("wb-health"), "western-bay");
    let data = app.gql_as_ok(&chair, VERSION, json!({ "id": id })).await;
    assert_eq!(data["case"]["stage"], "stage-4");
    let version = data["case"]["version"].clone();

    let add = "mutation($i: AddRecordInput!) { addRecord(input: $i) { record { authorAgency { code } } } }";
    let data = app
        .gql_as_ok(
            &chair,
            add,
            json!({ "i": { "caseId": id, "kind": "REPORT", "facts": "The Board met." } }),
        )
        .await;
    assert_eq!(data["addRecord"]["record"]["authorAgency"], Value::Null, "the board's record");
    let trail = app
        .gql_as_ok(
            &chair,
            "query($id: ID!) { auditTrail(caseId: $id) { nodes { action actorAgencyId } } }",
            json!({ "id": id }),
        )
        .await;
    let last = trail["auditTrail"]["nodes"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, json!({ "action": "add_record", "actorAgencyId": null }));

    // No agency's view: refused, and viewerCan says so beforehand.
    let can =
        "query($id: ID!) { case(id: $id) { version viewerCan { recordView addRecord withdraw } } }";
    let data = app.gql_as_ok(&chair, can, json!({ "id": id })).await;
    assert_eq!(
        data["case"]["viewerCan"],
        json!({ "recordView": false, "addRecord": true, "withdraw": true })
    );
    let after_record = data["case"]["version"].clone();
    assert_eq!(after_record, version.as_i64().unwrap() + 1);
    let view = "mutation($i: RecordAgencyViewInput!) { recordAgencyView(input: $i) { view { agency { code } } } }";
    let err = app
        .gql_as_err(
            &chair,
            view,
            json!({ "i": { "caseId": id, "view": "The health board agrees." } }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    assert_eq!(
        app.gql_as_ok(&chair, VERSION, json!({ "id": id })).await["case"]["version"],
        after_record,
        "nothing changed"
    );
    // A party's lead still records its agency's view at the board stage.
    let csc = app.token(Role::HeadOfService, Some("wb-swansea-csc"), "western-bay");
    let data =
        app.gql_as_ok(&csc, view, json!({ "i": { "caseId": id, "view": "We disagree." } })).await;
    assert_eq!(data["recordAgencyView"]["view"]["agency"]["code"], "wb-swansea-csc");
});

db_test!(an_action_is_owned_by_the_raising_or_the_receiving_agency, |app| {
    let id = case_at_the_board(&app).await;
    let chair = app.token(Role::BoardChair, Some("wb-health"), "western-bay");
    let agree =
        "mutation($i: AgreeActionInput!) { agreeAction(input: $i) { action { owner { code } } } }";
    let due = (Utc::now().date_naive() + chrono::Days::new(14)).to_string();
    let version =
        app.gql_as_ok(&chair, VERSION, json!({ "id": id })).await["case"]["version"].clone();
    for (who, owner) in [("the chair's own agency", "wb-health"), ("a bystander", "wb-education")] {
        let owner = app.agency_id(owner).await;
        let err = app
            .gql_as_err(&chair, agree, json!({ "i": { "caseId": id, "description": "Review.", "ownerAgencyId": owner, "dueOn": due } }))
            .await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{who}: {err:#}");
        assert_eq!(err["extensions"]["field"], "ownerAgencyId", "{who}");
    }
    let other_partnership = app.agency_id("ps-police").await;
    let err = app
        .gql_as_err(&chair, agree, json!({ "i": { "caseId": id, "description": "Review.", "ownerAgencyId": other_partnership, "dueOn": due } }))
        .await;
    assert_eq!(err["extensions"]["field"], "ownerAgencyId");
    assert_eq!(
        app.gql_as_ok(&chair, VERSION, json!({ "id": id })).await["case"]["version"],
        version,
        "nothing changed"
    );
    for owner in ["wb-police", "wb-swansea-csc"] {
        let owner_id = app.agency_id(owner).await;
        let data = app
            .gql_as_ok(&chair, agree, json!({ "i": { "caseId": id, "description": "Review.", "ownerAgencyId": owner_id, "dueOn": due } }))
            .await;
        assert_eq!(data["agreeAction"]["action"]["owner"]["code"], owner);
    }
});

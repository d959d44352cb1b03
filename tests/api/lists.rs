//! Lists load nested fields in batches: the statements of a page do not grow
//! with its size.

use chrono::{Duration, Utc};
use entity::{case, case_record};
use escalations::domain::role::Role;
use sea_orm::EntityTrait;
use serde_json::json;

use crate::db_test;
use crate::helpers::{TestApp, discussion_record, open_case};

/// Stores `n` Western Bay cases with two records each, behind the API.
pub async fn store_cases(app: &TestApp, n: usize) {
    let wb = app.western_bay().await;
    let now = Utc::now();
    let mut cases = Vec::new();
    let mut records = Vec::new();
    for i in 0..n {
        let id = uuid::Uuid::now_v7();
        let at = now - Duration::minutes(i as i64);
        let stage = if i % 2 == 0 { "stage-1" } else { "stage-2" };
        cases.push(open_case(&wb, id, wb.receivers[i % wb.receivers.len()], stage, i, at));
        for (k, facts) in ["first", "last"].into_iter().enumerate() {
            records.push(discussion_record(
                id,
                format!("{facts} {i}"),
                wb.police,
                at + Duration::seconds(k as i64),
            ));
        }
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
}

const PAGE: &str = "query($n: Int!) { cases(first: $n) { totalCount nodes { id childReference raisingAgency { code } receivingAgency { code name } currentStage { key name } lastRecord { facts } } } }";

async fn statements_for_page(app: &TestApp, token: &str, n: i64) -> u64 {
    let before = escalations::db::statements_executed();
    let data = app.gql_as_ok(token, PAGE, json!({ "n": n })).await;
    let after = escalations::db::statements_executed();
    let nodes = data["cases"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len() as i64, n);
    for node in nodes {
        let i = node["childReference"].as_str().unwrap().trim_start_matches("SWP-");
        assert_eq!(node["lastRecord"]["facts"], format!("last {i}"), "the latest record");
        assert_eq!(node["raisingAgency"]["code"], "wb-police");
        assert!(node["currentStage"]["name"].is_string());
    }
    after - before
}

db_test!(
    a_page_of_cases_with_agencies_stage_and_last_record_runs_a_constant_number_of_statements,
    |app| {
        store_cases(&app, 100).await;
        let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
        // Warm the token's directory cache so both pages run the same path.
        app.gql_as_ok(&token, "{ partnerships { code } }", json!({})).await;
        let small = statements_for_page(&app, &token, 10).await;
        let large = statements_for_page(&app, &token, 100).await;
        assert_eq!(small, large, "statements do not grow with the page size");
        // The page, its count, agencies, the access-log insert (child
        // references and latest records), the latest records (the caller's
        // scope re-checked inside that statement).
        assert!(large <= 5, "{large} statements for a page of 100");
    }
);

//! The HTTP surface: probes, media types, request ids, GraphiQL.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, TcpProxy, TestDb, spawn_app_at, via};
use crate::{db_test, db_test_with};

db_test!(health_and_readiness_answer, |app| {
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ready");
});

db_test!(a_request_id_is_echoed_or_made, |app| {
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-42");
    let res = app.get("/healthz").await;
    let made = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
});

db_test!(graphql_answers_in_both_media_types, |app| {
    let query = json!({ "query": "{ partnerships { code } }" });
    let res = app.client.post(app.url("/graphql")).json(&query).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");

    let res = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json, application/json;q=0.9")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/graphql-response+json; charset=utf-8");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["partnerships"].as_array().unwrap().len(), 5);

    // A request that cannot be executed is a 400 under the spec's media type
    // and a 200 with errors under plain JSON.
    let bad = json!({ "query": "{ partnerships { nope } }" });
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app.client.post(app.url("/graphql")).json(&bad).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("nope"));
});

db_test_with!(
    get_serves_graphiql_to_a_browser_and_runs_queries_with_a_query_string,
    crate::helpers::with_graphiql(),
    |app| {
        let res =
            app.client.get(app.url("/graphql")).header("accept", "text/html").send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        // Our own page, loading nothing from elsewhere (tests/api/graphiql.rs).
        let page = res.text().await.unwrap();
        assert!(page.contains("<title>escalations: GraphiQL</title>"), "{page}");
        assert!(!page.contains("://"), "{page}");

        let res = app.get("/graphql?query=%7B%20partnerships%20%7B%20code%20%7D%20%7D").await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["data"]["partnerships"].as_array().unwrap().len(), 5);

        // `operationName` says which operation of the document runs.
        let two = "query A { __typename } query B { partnerships { code } }";
        for (name, expected) in [("B", Some(5)), ("C", None)] {
            let res = app
                .client
                .get(app.url("/graphql"))
                .query(&[("query", two), ("operationName", name)])
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = res.json().await.unwrap();
            let codes = body["data"]["partnerships"].as_array().map(Vec::len);
            assert_eq!(codes, expected, "{name}: {body:#}");
            if expected.is_none() {
                assert_eq!(body["errors"][0]["extensions"]["code"], "OPERATION_RESOLUTION_FAILURE");
            }
        }
    }
);

db_test!(limits_refuse_a_query_nested_too_deep, |app| {
    // Depth 12 > the default limit of 10.
    let query = "{ partnerships { agencies { partnership { agencies { partnership { agencies { partnership { agencies { partnership { agencies { partnership { code } } } } } } } } } } } }";
    let body = app.gql(query, json!({})).await;
    assert!(body["data"].is_null(), "{body:#}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("too deep"), "{body:#}");
});

/// `/readyz` follows the database: 503 while PostgreSQL is unreachable, 200
/// again once it is back, with no restart. (SQLite is a file inside the
/// process and cannot become unreachable this way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_database_outage_and_recovers_without_restart() {
    let Some(test_db) = TestDb::create(Backend::Postgres).await else { return };
    let target = tokio::net::lookup_host(
        test_db
            .url()
            .split("://")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .rsplit('@')
            .next()
            .unwrap(),
    )
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = TcpProxy::start(target).await;
    let url = via(test_db.url(), proxy.addr);
    let app = spawn_app_at(Backend::Postgres, test_db, &url).await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    proxy.cut().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.text().await.unwrap(), "database unreachable");
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), 200);
    // A query fails with a fixed message, leaking nothing of the database.
    let body = app.gql("{ partnerships { code } }", json!({})).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR", "{body:#}");
    assert_eq!(body["errors"][0]["message"], "internal error");

    proxy.restore();
    let mut status = 0;
    for _ in 0..50 {
        status = app.get("/readyz").await.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "ready again once the database is back");
    let data = app.gql_ok("{ partnerships { code } }", json!({})).await;
    assert_eq!(data["partnerships"].as_array().unwrap().len(), 5);
}

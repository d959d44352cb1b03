//! Edges: tokens refused beyond signature and validity window (`crit`, a
//! future `iat`, a long lifetime, size, claims the database cannot store),
//! the scope of idempotency keys, child references, the SQLite file's mode.

use escalations::auth::{AuthError, MAX_SUB_CHARS, MAX_TOKEN_BYTES};
use escalations::domain::role::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::auth::{
    assert_ok, assert_unauthenticated, bearer, claims, client, hs256, now, post, sign, with,
    without,
};
use crate::cases::store_case;
use crate::db_test;
use crate::helpers::{TEST_SECRET, TestApp};

const CASE_QUERY: &str = "query($id: ID!) { case(id: $id) { id } }";
const RAISE: &str = "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id summary childReference raisingAgency { code } } } }";
const DAY: i64 = 24 * 3600;

// --- Tokens ----------------------------------------------------------------

/// Valid claims with several claims set.
fn with_all(pairs: &[(&str, Value)]) -> Value {
    let mut c = claims();
    for (key, value) in pairs {
        c[*key] = value.clone();
    }
    c
}

/// HS256 with the test secret and a `crit` header parameter.
fn with_crit(claims: &Value) -> String {
    let header = Header {
        crit: Some(vec!["https://example.org/must-understand".into()]),
        ..Header::new(Algorithm::HS256)
    };
    sign(&header, &EncodingKey::from_secret(TEST_SECRET.as_bytes()), claims)
}

/// Valid tokens padded through `name` (a claim the server ignores): the
/// longest no longer than `bytes`, and the one a character longer (base64
/// skips some lengths, so neither need be exactly `bytes` long).
fn tokens_around(bytes: usize) -> (String, String) {
    let token = |n: usize| hs256(&with("name", json!("x".repeat(n))));
    let mut n = (bytes * 3 / 4).saturating_sub(400);
    assert!(token(n).len() <= bytes);
    while token(n + 1).len() <= bytes {
        n += 1;
    }
    (token(n), token(n + 1))
}

db_test!(tokens_beyond_the_contract_are_refused_with_401, |app| {
    // Every row would see this case were it accepted (its claims are those
    // of a Western Bay police manager, valid now).
    let id = store_case(&app, "wb-police", "wb-swansea-csc").await;
    let now = now();
    let (largest, too_large) = tokens_around(MAX_TOKEN_BYTES);
    let hs = |claims: Value| bearer(&hs256(&claims));
    let too_long = AuthError::TooLongLived { max_seconds: DAY as u64 };
    let rows: Vec<(&str, String, AuthError)> = vec![
        ("a crit header", bearer(&with_crit(&claims())), AuthError::CriticalExtension),
        ("issued in 2 min", hs(with("iat", json!(now + 120))), AuthError::IssuedInFuture),
        (
            "a person's token valid for 25 h",
            hs(with_all(&[("iat", json!(now)), ("exp", json!(now + 25 * 3600))])),
            too_long.clone(),
        ),
        (
            "no iat, nbf 2 h ago, 23 h left",
            hs({
                let mut c = without(&["iat"]);
                c["nbf"] = json!(now - 7200);
                c["exp"] = json!(now + 23 * 3600);
                c
            }),
            too_long.clone(),
        ),
        (
            "issued 2 days ago, valid 10 more min",
            hs(with("iat", json!(now - 2 * DAY))),
            too_long.clone(),
        ),
        (
            "a cases:read client's token valid for 25 h",
            hs({
                let mut c = client(json!("cases:read"), Some("wb-police"));
                c["exp"] = json!(now + 25 * 3600);
                c
            }),
            too_long,
        ),
        ("a token over the size limit", bearer(&too_large), AuthError::TooLarge),
        (
            "a sub longer than its column",
            hs(with("sub", json!("s".repeat(MAX_SUB_CHARS + 1)))),
            AuthError::SubTooLong,
        ),
        ("a sub with NUL", hs(with("sub", json!("user\u{0}42"))), AuthError::NulInClaim("sub")),
        (
            "a partnership with NUL",
            hs(with("partnership", json!("western-bay\u{0}"))),
            AuthError::NulInClaim("partnership"),
        ),
        (
            "an agency with NUL",
            hs(with("agency", json!("wb-police\u{0}"))),
            AuthError::NulInClaim("agency"),
        ),
    ];
    for (name, authorization, expected) in &rows {
        let reply = post(&app, Some(authorization), CASE_QUERY, json!({ "id": id })).await;
        assert_unauthenticated(name, &reply, expected);
    }
    // Just inside every bound, the same token is accepted: the rows above fail
    // for their one reason.
    let ok: Vec<(&str, String)> = vec![
        ("issued 20 s ahead, inside the leeway", hs(with("iat", json!(now + 20)))),
        ("valid for exactly 24 h", hs(with_all(&[("iat", json!(now)), ("exp", json!(now + DAY))]))),
        (
            "no iat, nbf 1 h ago, 23 h left",
            hs({
                let mut c = without(&["iat"]);
                c["nbf"] = json!(now - 3600);
                c["exp"] = json!(now + 23 * 3600);
                c
            }),
        ),
        ("a token of the largest size", bearer(&largest)),
        ("a sub as long as its column", hs(with("sub", json!("s".repeat(MAX_SUB_CHARS))))),
        ("a sub of 256 two-byte characters", hs(with("sub", json!("é".repeat(MAX_SUB_CHARS))))),
    ];
    for (name, authorization) in &ok {
        let reply = post(&app, Some(authorization), CASE_QUERY, json!({ "id": id })).await;
        assert_eq!(assert_ok(name, &reply)["case"]["id"], id, "{name}");
    }
});

/// Raises a case in Western Bay as `sub`, a wb-police practitioner.
fn practitioner(sub: &str) -> String {
    hs256(&with_all(&[("sub", json!(sub)), ("role", json!("practitioner"))]))
}

db_test!(a_sub_the_columns_cannot_hold_is_refused_before_any_write, |app| {
    let receiving = app.agency_id("wb-swansea-csc").await;
    let input = |reference: &str| json!({ "i": { "receivingAgencyId": receiving, "childReference": reference, "category": "other", "summary": "s" } });
    // As long as the column: stored on both databases.
    let longest = "s".repeat(MAX_SUB_CHARS);
    app.gql_as_ok(&practitioner(&longest), RAISE, input("SWP-1")).await;
    // One longer, or with a NUL: 401 before anything is written (it used to
    // be stored on SQLite and an internal error on PostgreSQL).
    for sub in ["s".repeat(MAX_SUB_CHARS + 1), "user\u{0}42".to_owned()] {
        let res = app.gql_as_raw(&practitioner(&sub), RAISE, input("SWP-2")).await;
        assert_eq!(res.status(), 401, "{sub:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body:#}");
    }
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let data = app.gql_as_ok(&chair, "{ cases { totalCount } }", json!({})).await;
    assert_eq!(data["cases"]["totalCount"], 1);
});

// --- Child references ------------------------------------------------------

db_test!(a_child_reference_is_an_agency_case_number_never_a_name, |app| {
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let input = |reference: &str| json!({ "i": { "receivingAgencyId": receiving, "childReference": reference, "category": "other", "summary": "s" } });
    for refused in
        ["John Smith 1", "J.Smith_1", "SWP--1", "SWP-ABC", &format!("SWP-{}", "1".repeat(40))]
    {
        let err = app.gql_as_err(&token, RAISE, input(refused)).await;
        assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{refused:?}: {err:#}");
        assert_eq!(err["extensions"]["field"], "childReference", "{refused:?}: {err:#}");
    }
    for accepted in ["SWP-2026-0042", "CP/2025/118", "GEN-000001", "C-1"] {
        let data = app.gql_as_ok(&token, RAISE, input(accepted)).await;
        assert_eq!(data["raiseCase"]["case"]["childReference"], accepted);
    }
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let data = app.gql_as_ok(&chair, "{ cases { totalCount } }", json!({})).await;
    assert_eq!(data["cases"]["totalCount"], 4, "the refused ones changed nothing");
});

// --- Idempotency keys ------------------------------------------------------

/// A person's token with these codes and `sub`.
fn person(sub: &str, role: &str, agency: &str, partnership: &str) -> String {
    hs256(&with_all(&[
        ("sub", json!(sub)),
        ("role", json!(role)),
        ("agency", json!(agency)),
        ("partnership", json!(partnership)),
    ]))
}

/// The number of cases of Western Bay.
async fn western_bay_cases(app: &TestApp) -> i64 {
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let data = app.gql_as_ok(&chair, "{ cases { totalCount } }", json!({})).await;
    data["cases"]["totalCount"].as_i64().unwrap()
}

const SUMMARY: &str = "Referral closed with no further action after a second incident.";

db_test!(an_idempotency_key_is_scoped_by_partnership_and_agency, |app| {
    let sub = "shared-sub-7";
    let receiving = app.agency_id("wb-swansea-csc").await;
    let input = json!({ "i": {
        "idempotencyKey": "raise-1",
        "receivingAgencyId": receiving,
        "childReference": "SWP-2026-0042",
        "category": "other",
        "summary": SUMMARY,
    }});
    let western_bay = person(sub, "practitioner", "wb-police", "western-bay");
    let first = app.gql_as_ok(&western_bay, RAISE, input.clone()).await;
    let id = first["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();

    // The same sub in Pan-Sussex sending the same request (every id in it is
    // public in the directory) used to get the Western Bay case back, summary
    // and child reference included. Its key is its own now: the request runs
    // anew and is refused like any raise against another partnership's agency.
    let pan_sussex = person(sub, "practitioner", "ps-police", "pan-sussex");
    let body = app.gql_as(&pan_sussex, RAISE, input.clone()).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "receivingAgencyId", "{body:#}");
    assert!(!body.to_string().contains(&id), "{body:#}");

    // The same sub for another Western Bay agency: a new case of its own.
    let health = person(sub, "practitioner", "wb-health", "western-bay");
    let other = app.gql_as_ok(&health, RAISE, input.clone()).await;
    assert_ne!(other["raiseCase"]["case"]["id"], id);
    assert_eq!(other["raiseCase"]["case"]["raisingAgency"]["code"], "wb-health");

    // Each key is stored with its whole scope, the issuer included (the
    // verifier accepts one issuer, so that part cannot vary over HTTP).
    let stored = entity::idempotency_key::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(stored.len(), 2, "one key per scope");
    assert!(stored.iter().all(|k| k.issuer == crate::helpers::TEST_ISSUER && k.actor_sub == sub));

    // The first caller's retry still gets its first result, and only two
    // cases exist.
    let again = app.gql_as_ok(&western_bay, RAISE, input).await;
    assert_eq!(again, first);
    assert_eq!(western_bay_cases(&app).await, 2);
});

db_test!(a_replay_whose_case_the_caller_can_no_longer_see_is_not_returned, |app| {
    let receiving = app.agency_id("wb-swansea-csc").await;
    let input = json!({ "i": {
        "idempotencyKey": "raise-2",
        "receivingAgencyId": receiving,
        "childReference": "SWP-2026-0043",
        "category": "other",
        "summary": SUMMARY,
    }});
    let first = app
        .gql_as_ok(
            &person("sub-9", "practitioner", "wb-police", "western-bay"),
            RAISE,
            input.clone(),
        )
        .await;
    let id = first["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    // The same issuer, sub, partnership and agency, now a statistics client:
    // the scope is the same, but it sees no case.
    let mut statistics = client(json!("statistics:read"), Some("wb-police"));
    statistics["sub"] = json!("sub-9");
    let body = app.gql_as(&hs256(&statistics), RAISE, input).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{body:#}");
    assert_eq!(body["data"], Value::Null, "{body:#}");
    assert!(!body.to_string().contains(&id), "{body:#}");
    assert!(!body.to_string().contains(SUMMARY), "{body:#}");
    assert_eq!(western_bay_cases(&app).await, 1);
});

// --- The SQLite file -------------------------------------------------------

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_and_its_wal_and_shm_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await.unwrap();
    // A write, so that the write-ahead log has content and both files exist.
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    app.gql_as_ok(&token, RAISE, json!({ "i": { "receivingAgencyId": receiving, "childReference": "SWP-1", "category": "other", "summary": "s" } }))
        .await;
    let url = app.db_url();
    let file = url.trim_start_matches("sqlite://").split('?').next().unwrap().to_owned();
    for path in [file.clone(), format!("{file}-wal"), format!("{file}-shm")] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path}: {mode:o}");
    }
}

//! Tokens and scoping over HTTP: every way a token can be refused, algorithm
//! confusion under RS256, what anonymous callers may do (a setting), and who
//! sees which case.
//!
//! Tokens are built here by hand with jsonwebtoken and `serde_json` claims,
//! not with the server's minting, so each row can break exactly one rule.

use std::path::PathBuf;

use escalations::auth::AuthError;
use escalations::config::{AnonymousAccess, GlobalArgs, JwtAlgorithm};
use escalations::domain::role::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::cases::store_case;
use crate::helpers::{
    TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, TestApp, global_args, without_trace_ids,
};
use crate::{db_test, db_test_with};

const CASE_QUERY: &str = "query($id: ID!) { case(id: $id) { id } }";
const PARTNERSHIPS_QUERY: &str = "{ partnerships { code } }";
const SCHEMA_QUERY: &str = "{ __schema { queryType { name } } }";

// --- Tokens built by hand --------------------------------------------------

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a valid token: a manager of South Wales Police in Western
/// Bay, valid for ten minutes.
pub(crate) fn claims() -> Value {
    let now = now();
    json!({
        "sub": "user-42",
        "name": "Test User",
        "role": "manager",
        "agency": "wb-police",
        "partnership": "western-bay",
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    })
}

/// Valid claims with one claim set to `value`.
pub(crate) fn with(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

/// Valid claims without some claims.
pub(crate) fn without(keys: &[&str]) -> Value {
    let mut c = claims();
    for key in keys {
        c.as_object_mut().unwrap().remove(*key);
    }
    c
}

/// The claims of a machine client (no role) with `scope` (a string or a list).
pub(crate) fn client(scope: Value, agency: Option<&str>) -> Value {
    let mut c = without(&["role", "agency", "name"]);
    c["scope"] = scope;
    if let Some(agency) = agency {
        c["agency"] = json!(agency);
    }
    c
}

pub(crate) fn sign(header: &Header, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

/// Signed as the server expects: HS256 with the test secret.
pub(crate) fn hs256(claims: &Value) -> String {
    sign(&Header::new(Algorithm::HS256), &EncodingKey::from_secret(TEST_SECRET.as_bytes()), claims)
}

/// A correctly HS256-signed token whose payload segment is `payload` as is.
fn hs256_raw(payload: &str) -> String {
    let message = format!("{}.{payload}", b64url(br#"{"alg":"HS256","typ":"JWT"}"#));
    let key = EncodingKey::from_secret(TEST_SECRET.as_bytes());
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

/// Signed with the test secret under another HMAC algorithm.
fn hmac_with(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    sign(&Header::new(alg), &EncodingKey::from_secret(secret), claims)
}

/// An unsigned token: header `{"alg":"none"}`, the claims, an empty signature.
fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    )
}

/// `token` with its claims changed after signing (to a board chair's).
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let forged = b64url(with("role", json!("board_chair")).to_string().as_bytes());
    format!("{}.{forged}.{}", parts[0], parts[2])
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[test]
fn hand_encoding_agrees_with_jsonwebtoken() {
    let c = claims();
    let token = hs256(&c);
    assert_eq!(token.split('.').nth(1).unwrap(), b64url(c.to_string().as_bytes()));
    assert_eq!(b64url(b"f"), "Zg");
    assert_eq!(b64url(b"fo"), "Zm8");
    assert_eq!(b64url(b"foo"), "Zm9v");
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
}

pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// --- Requests and checks ---------------------------------------------------

/// What came back, kept whole for failure messages.
#[derive(Debug)]
pub(crate) struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    request_id: Option<String>,
    body: Value,
}

/// Posts `query` with `authorization` as the raw `Authorization` header.
pub(crate) async fn post(
    app: &TestApp,
    authorization: Option<&str>,
    query: &str,
    variables: Value,
) -> Reply {
    let mut req = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let res = req.send().await.unwrap();
    let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    Reply {
        status: res.status().as_u16(),
        www_authenticate: header("www-authenticate"),
        request_id: header("x-request-id"),
        body: res.json().await.unwrap(),
    }
}

/// A 401 with the bearer challenge, `data: null` and one `UNAUTHENTICATED`
/// error saying `expected`.
#[track_caller]
pub(crate) fn assert_unauthenticated(name: &str, reply: &Reply, expected: &AuthError) {
    assert_eq!(reply.status, 401, "{name}: {reply:#?}");
    let challenge = reply.www_authenticate.as_deref().unwrap_or_default();
    assert!(
        challenge.starts_with(r#"Bearer error="invalid_token""#),
        "{name}: challenge {challenge:?}"
    );
    let body = reply.body.as_object().unwrap();
    assert_eq!(body.get("data"), None, "{name}: nothing ran, so no data entry: {reply:#?}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{name}: {reply:#?}");
    assert_eq!(errors[0]["extensions"]["code"], "UNAUTHENTICATED", "{name}: {reply:#?}");
    assert_eq!(errors[0]["message"], expected.to_string(), "{name}: {reply:#?}");
}

/// A 200 whose body has data and no errors.
#[track_caller]
pub(crate) fn assert_ok(name: &str, reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "{name}: {reply:#?}");
    assert!(reply.body.get("errors").is_none(), "{name}: {reply:#?}");
    reply.body["data"].clone()
}

/// The codes of a `{ partnerships { code } }` answer.
fn partnership_codes(data: &Value) -> Vec<&str> {
    let mut codes: Vec<&str> = data["partnerships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    codes
}

// --- 1. Every bad token ----------------------------------------------------

db_test!(a_hand_built_token_is_accepted_within_the_leeway, |app| {
    // The baseline the refusals below depart from, so they fail for their
    // one reason and not because the builder is wrong.
    let id = store_case(&app, "wb-police", "wb-swansea-csc").await;
    let leeway_ok = [
        ("valid claims", claims()),
        ("expired 10 s ago, inside the 30 s leeway", with("exp", json!(now() - 10))),
        ("valid in 10 s, inside the 30 s leeway", with("nbf", json!(now() + 10))),
        ("aud as a list holding ours", with("aud", json!(["other-api", TEST_AUDIENCE]))),
        ("no iat and no name", without(&["iat", "name"])),
    ];
    for (name, claims) in leeway_ok {
        let reply =
            post(&app, Some(&bearer(&hs256(&claims))), CASE_QUERY, json!({ "id": id })).await;
        assert_eq!(assert_ok(name, &reply)["case"]["id"], id, "{name}");
    }
    // The scheme is case-insensitive (RFC 7235).
    let token = hs256(&claims());
    let reply = post(&app, Some(&format!("bearer {token}")), CASE_QUERY, json!({ "id": id })).await;
    assert_eq!(assert_ok("lowercase scheme", &reply)["case"]["id"], id);
});

db_test!(a_missing_token_on_a_protected_query_is_401, |app| {
    let id = store_case(&app, "wb-police", "wb-swansea-csc").await;
    let reply = post(&app, None, CASE_QUERY, json!({ "id": id })).await;
    assert_unauthenticated("no Authorization header", &reply, &AuthError::Missing);
});

/// `MissingClaim(claim)`.
fn lacks(claim: &str) -> AuthError {
    AuthError::MissingClaim(claim.to_owned())
}

db_test!(every_bad_token_is_401_without_data, |app| {
    // The claims of every row would see this case were they accepted.
    let id = store_case(&app, "wb-police", "wb-swansea-csc").await;
    let valid = hs256(&claims());
    // `Authorization` values: HS256 with the test secret unless said.
    let hs = |claims: Value| bearer(&hs256(&claims));
    let hmac = |alg, secret: &str| bearer(&hmac_with(alg, secret.as_bytes(), &claims()));
    let other_secret = "another-secret-of-at-least-thirty-two-bytes";
    let rows: Vec<(&str, String, AuthError)> = vec![
        // Not a bearer JWT at all.
        ("Basic credentials", "Basic dXNlcjpwYXNzd29yZA==".into(), AuthError::Malformed),
        ("Bearer without a token", "Bearer ".into(), AuthError::Malformed),
        ("the token without a scheme", valid.clone(), AuthError::Malformed),
        ("Bearer garbage", bearer("not-a-jwt"), AuthError::Malformed),
        ("two parts", bearer("eyJhbGciOiJIUzI1NiJ9.e30"), AuthError::Malformed),
        ("four parts", bearer(&format!("{valid}.e30")), AuthError::Malformed),
        ("signed, payload not base64", bearer(&hs256_raw("!!!")), AuthError::Malformed),
        ("signed, payload not JSON", bearer(&hs256_raw(&b64url(b"claims"))), AuthError::Malformed),
        ("signed, payload a list", bearer(&hs256_raw(&b64url(b"[]"))), AuthError::Malformed),
        // Time.
        ("expired beyond the leeway", hs(with("exp", json!(now() - 120))), AuthError::Expired),
        ("valid only in 2 min", hs(with("nbf", json!(now() + 120))), AuthError::NotYetValid),
        // Signature and algorithm.
        (
            "signed with another secret",
            hmac(Algorithm::HS256, other_secret),
            AuthError::BadSignature,
        ),
        ("claims changed after signing", bearer(&tampered(&valid)), AuthError::BadSignature),
        // jsonwebtoken knows no `none` algorithm: the header does not parse.
        ("alg none, no signature", bearer(&unsigned(&claims())), AuthError::Malformed),
        (
            "HS384 with the right secret",
            hmac(Algorithm::HS384, TEST_SECRET),
            AuthError::WrongAlgorithm,
        ),
        (
            "HS512 with the right secret",
            hmac(Algorithm::HS512, TEST_SECRET),
            AuthError::WrongAlgorithm,
        ),
        // Issuer and audience.
        (
            "another issuer",
            hs(with("iss", json!("https://idp.evil.example"))),
            AuthError::WrongIssuer,
        ),
        ("another audience", hs(with("aud", json!("another-api"))), AuthError::WrongAudience),
        ("audiences without ours", hs(with("aud", json!(["a", "b"]))), AuthError::WrongAudience),
        // Required claims.
        ("no sub", hs(without(&["sub"])), lacks("sub")),
        ("a blank sub", hs(with("sub", json!("  "))), lacks("sub")),
        ("no exp", hs(without(&["exp"])), lacks("exp")),
        ("no nbf", hs(without(&["nbf"])), lacks("nbf")),
        ("no iss", hs(without(&["iss"])), lacks("iss")),
        ("no aud", hs(without(&["aud"])), lacks("aud")),
        ("no partnership", hs(without(&["partnership"])), lacks("partnership")),
        // Role and scope.
        ("an unknown role", hs(with("role", json!("superuser"))), AuthError::UnknownRole),
        ("a role in capitals", hs(with("role", json!("Manager"))), AuthError::UnknownRole),
        ("a role that is a number", hs(with("role", json!(42))), AuthError::Malformed),
        ("neither role nor scope", hs(without(&["role"])), AuthError::NoRoleOrScope),
        (
            "only unknown scopes",
            hs(client(json!("cases:write admin"), Some("wb-police"))),
            AuthError::NoRoleOrScope,
        ),
        ("an empty scope list", hs(client(json!([]), Some("wb-police"))), AuthError::NoRoleOrScope),
        ("a manager without an agency", hs(without(&["agency"])), lacks("agency")),
        (
            "a cases:read client without an agency",
            hs(client(json!("cases:read"), None)),
            lacks("agency"),
        ),
        // Codes the directory does not know.
        (
            "an unknown partnership",
            hs(with("partnership", json!("atlantis"))),
            AuthError::UnknownPartnership,
        ),
        ("an unknown agency", hs(with("agency", json!("wb-nope"))), AuthError::UnknownAgency),
        (
            "an agency of another partnership",
            hs(with("agency", json!("ps-police"))),
            AuthError::UnknownAgency,
        ),
    ];
    for (name, authorization, expected) in &rows {
        let reply = post(&app, Some(authorization), CASE_QUERY, json!({ "id": id })).await;
        assert_unauthenticated(name, &reply, expected);
        // A bad token is refused even where no token is needed: it does not
        // fall back to anonymous access.
        let reply = post(&app, Some(authorization), PARTNERSHIPS_QUERY, json!({})).await;
        assert_unauthenticated(&format!("{name} (open query)"), &reply, expected);
    }
});

// --- 2. RS256: a public key file, a JWKS file, algorithm confusion ----------

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The PEM of the test RSA public key, as the server reads it.
fn public_pem() -> Vec<u8> {
    std::fs::read(fixture("test-rsa-public.pem")).unwrap()
}

/// The kid of the test key in `test-rsa-jwks.json`.
const KID: &str = "test-rsa-1";

fn header(alg: Algorithm, kid: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header
}

/// Signed with the test RSA private key under `alg` (an RSA algorithm).
fn rsa_signed(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let pem = std::fs::read(fixture("test-rsa-private.pem")).unwrap();
    sign(&header(alg, kid), &EncodingKey::from_rsa_pem(&pem).unwrap(), claims)
}

fn rs256(kid: Option<&str>, claims: &Value) -> String {
    rsa_signed(Algorithm::RS256, kid, claims)
}

/// HMAC-signed with `secret`, with a kid in the header.
fn hmac_with_kid(alg: Algorithm, kid: &str, secret: &[u8], claims: &Value) -> String {
    sign(&header(alg, Some(kid)), &EncodingKey::from_secret(secret), claims)
}

fn rs256_settings() -> GlobalArgs {
    let mut global = global_args();
    global.auth.jwt_algorithm = JwtAlgorithm::Rs256;
    global.auth.jwt_secret = None;
    global
}

fn public_key_settings() -> GlobalArgs {
    let mut global = rs256_settings();
    global.auth.jwt_public_key_file = Some(fixture("test-rsa-public.pem"));
    global
}

fn jwks_settings() -> GlobalArgs {
    let mut global = rs256_settings();
    global.auth.jwt_jwks_file = Some(fixture("test-rsa-jwks.json"));
    global
}

/// Each token is refused, also on a query anonymous callers may run.
async fn assert_all_refused(app: &TestApp, rows: &[(&str, String, AuthError)]) {
    for (name, token, expected) in rows {
        let reply = post(app, Some(&bearer(token)), PARTNERSHIPS_QUERY, json!({})).await;
        assert_unauthenticated(name, &reply, expected);
    }
}

db_test_with!(
    rs256_with_a_public_key_accepts_its_tokens_and_refuses_algorithm_confusion,
    public_key_settings(),
    |app| {
        // Accepted, and read as a token: one partnership, not the five an
        // anonymous caller sees.
        let reply =
            post(&app, Some(&bearer(&rs256(None, &claims()))), PARTNERSHIPS_QUERY, json!({})).await;
        assert_eq!(
            partnership_codes(&assert_ok("RS256 with the private key", &reply)),
            ["western-bay"]
        );

        let pem = public_pem();
        let rows = [
            (
                "HS256 keyed with the public key's PEM",
                hmac_with(Algorithm::HS256, &pem, &claims()),
                AuthError::WrongAlgorithm,
            ),
            (
                "HS256 keyed with the PEM, trimmed",
                hmac_with(Algorithm::HS256, pem.trim_ascii(), &claims()),
                AuthError::WrongAlgorithm,
            ),
            (
                "HS512 keyed with the public key's PEM",
                hmac_with(Algorithm::HS512, &pem, &claims()),
                AuthError::WrongAlgorithm,
            ),
            ("HS256 with the test secret", hs256(&claims()), AuthError::WrongAlgorithm),
            (
                "RS512 with the private key",
                rsa_signed(Algorithm::RS512, None, &claims()),
                AuthError::WrongAlgorithm,
            ),
            (
                "PS256 with the private key",
                rsa_signed(Algorithm::PS256, None, &claims()),
                AuthError::WrongAlgorithm,
            ),
            ("alg none", unsigned(&claims()), AuthError::Malformed),
            (
                "RS256, claims changed after signing",
                tampered(&rs256(None, &claims())),
                AuthError::BadSignature,
            ),
            ("RS256, expired", rs256(None, &with("exp", json!(now() - 120))), AuthError::Expired),
            (
                "RS256, another issuer",
                rs256(None, &with("iss", json!("https://idp.evil.example"))),
                AuthError::WrongIssuer,
            ),
            (
                "RS256, another audience",
                rs256(None, &with("aud", json!("another-api"))),
                AuthError::WrongAudience,
            ),
        ];
        assert_all_refused(&app, &rows).await;
    }
);

db_test_with!(rs256_with_a_jwks_file_chooses_the_key_by_kid, jwks_settings(), |app| {
    let reply =
        post(&app, Some(&bearer(&rs256(Some(KID), &claims()))), PARTNERSHIPS_QUERY, json!({}))
            .await;
    assert_eq!(partnership_codes(&assert_ok("RS256 with the known kid", &reply)), ["western-bay"]);

    let pem = public_pem();
    let rows = [
        ("an unknown kid", rs256(Some("retired-key"), &claims()), AuthError::UnknownKey),
        ("no kid", rs256(None, &claims()), AuthError::UnknownKey),
        (
            "HS256 keyed with the public key's PEM, known kid",
            hmac_with_kid(Algorithm::HS256, KID, &pem, &claims()),
            AuthError::WrongAlgorithm,
        ),
        (
            "HS256 with the test secret, known kid",
            hmac_with_kid(Algorithm::HS256, KID, TEST_SECRET.as_bytes(), &claims()),
            AuthError::WrongAlgorithm,
        ),
        ("alg none", unsigned(&claims()), AuthError::Malformed),
        (
            "RS256, known kid, claims changed after signing",
            tampered(&rs256(Some(KID), &claims())),
            AuthError::BadSignature,
        ),
        (
            "RS256, known kid, expired",
            rs256(Some(KID), &with("exp", json!(now() - 120))),
            AuthError::Expired,
        ),
    ];
    assert_all_refused(&app, &rows).await;
});

// --- 3. Anonymous access is a setting ---------------------------------------

fn anonymous_settings(access: Option<Vec<AnonymousAccess>>) -> GlobalArgs {
    let mut global = global_args();
    global.auth.anonymous_access = access;
    global
}

/// Posts a document with several operations, running `operation`.
async fn post_operation(app: &TestApp, query: &str, operation: &str) -> Reply {
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query, "operationName": operation }))
        .send()
        .await
        .unwrap();
    Reply {
        status: res.status().as_u16(),
        www_authenticate: None,
        request_id: None,
        body: res.json().await.unwrap(),
    }
}

db_test!(anonymous_callers_may_read_the_directory_and_the_schema_when_open, |app| {
    // The test settings open introspection and the directory.
    let data = assert_ok("partnerships", &post(&app, None, PARTNERSHIPS_QUERY, json!({})).await);
    assert_eq!(
        partnership_codes(&data),
        ["leeds", "pan-sussex", "rotherham", "six-stage", "western-bay"]
    );
    let data = assert_ok("introspection", &post(&app, None, SCHEMA_QUERY, json!({})).await);
    assert!(data["__schema"]["queryType"]["name"].is_string(), "{data:#}");
    let data = assert_ok("__typename", &post(&app, None, "{ __typename }", json!({})).await);
    assert!(data["__typename"].is_string(), "{data:#}");
    let fragment = "{ ...Open } fragment Open on Query { partnerships { code } __typename }";
    assert_ok("open fields through a fragment", &post(&app, None, fragment, json!({})).await);

    let id = store_case(&app, "wb-police", "wb-swansea-csc").await;
    let closed = [
        ("a case", CASE_QUERY),
        (
            "a case beside open fields",
            "query($id: ID!) { partnerships { code } case(id: $id) { id } }",
        ),
        (
            "a case behind a fragment",
            "query($id: ID!) { partnerships { code } ...C } fragment C on Query { case(id: $id) { id } }",
        ),
        (
            "a case behind an inline fragment",
            "query($id: ID!) { ... on Query { case(id: $id) { id } } }",
        ),
        (
            "a case behind an aliased field",
            "query($id: ID!) { partnerships: case(id: $id) { id } }",
        ),
    ];
    for (name, query) in closed {
        let reply = post(&app, None, query, json!({ "id": id })).await;
        assert_unauthenticated(name, &reply, &AuthError::Missing);
    }

    // Of several operations, the one that runs decides.
    let two = format!(
        r#"query Open {{ partnerships {{ code }} }} query Closed {{ case(id: "{id}") {{ id }} }}"#
    );
    assert_ok("the open operation", &post_operation(&app, &two, "Open").await);
    let reply = post_operation(&app, &two, "Closed").await;
    assert_eq!(reply.status, 401, "{reply:#?}");
    assert_eq!(reply.body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
});

db_test_with!(
    with_anonymous_access_none_only_typename_works_without_a_token,
    anonymous_settings(Some(vec![AnonymousAccess::None])),
    |app| {
        let closed = [
            ("partnerships", PARTNERSHIPS_QUERY),
            ("introspection", SCHEMA_QUERY),
            ("a type", r#"{ __type(name: "Case") { name } }"#),
            (
                "agencies",
                r#"{ agencies(partnershipId: "0190d3a0-0000-7000-8000-000000000000") { code } }"#,
            ),
            ("__typename beside the directory", "{ __typename partnerships { code } }"),
        ];
        for (name, query) in closed {
            let reply = post(&app, None, query, json!({})).await;
            assert_unauthenticated(name, &reply, &AuthError::Missing);
        }
        // `__typename` alone names the root type and nothing else; the server
        // answers it whatever the setting.
        let data = assert_ok("__typename", &post(&app, None, "{ __typename }", json!({})).await);
        assert!(data["__typename"].is_string(), "{data:#}");

        // A token still works.
        let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
        let reply = post(&app, Some(&bearer(&token)), PARTNERSHIPS_QUERY, json!({})).await;
        assert_eq!(partnership_codes(&assert_ok("with a token", &reply)), ["western-bay"]);
        let reply = post(&app, Some(&bearer(&token)), SCHEMA_QUERY, json!({})).await;
        assert_ok("introspection with a token", &reply);
    }
);

db_test_with!(outside_demo_mode_the_default_opens_nothing, anonymous_settings(None), |app| {
    let reply = post(&app, None, PARTNERSHIPS_QUERY, json!({})).await;
    assert_unauthenticated("partnerships", &reply, &AuthError::Missing);
    let reply = post(&app, None, SCHEMA_QUERY, json!({})).await;
    assert_unauthenticated("introspection", &reply, &AuthError::Missing);
    // A token still introspects (outside production mode).
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let reply = post(&app, Some(&bearer(&token)), SCHEMA_QUERY, json!({})).await;
    assert_ok("introspection with a token", &reply);
});

// --- 4. Who sees which case -------------------------------------------------

db_test!(a_case_is_seen_by_its_parties_and_its_board_and_nobody_else, |app| {
    let id = store_case(&app, "wb-police", "wb-swansea-csc").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let person = |role, agency, partnership| app.token(role, agency, partnership);
    let rows = [
        (
            "manager of the raising agency",
            person(Role::Manager, Some("wb-police"), "western-bay"),
            true,
        ),
        (
            "manager of the receiving agency",
            person(Role::Manager, Some("wb-swansea-csc"), "western-bay"),
            true,
        ),
        (
            "practitioner of the receiving agency",
            person(Role::Practitioner, Some("wb-swansea-csc"), "western-bay"),
            true,
        ),
        (
            "manager of another agency, same partnership",
            person(Role::Manager, Some("wb-health"), "western-bay"),
            false,
        ),
        (
            "head of service of another agency",
            person(Role::HeadOfService, Some("wb-npt-csc"), "western-bay"),
            false,
        ),
        (
            "manager in another partnership",
            person(Role::Manager, Some("ps-police"), "pan-sussex"),
            false,
        ),
        ("board chair of the partnership", person(Role::BoardChair, None, "western-bay"), true),
        (
            "board chair who also names an agency",
            person(Role::BoardChair, Some("wb-health"), "western-bay"),
            true,
        ),
        ("board chair of another partnership", person(Role::BoardChair, None, "pan-sussex"), false),
        (
            "cases:read client of the raising agency",
            app.client_token("cases:read", Some("wb-police"), "western-bay"),
            true,
        ),
        (
            "cases:read client of another agency",
            app.client_token("cases:read", Some("wb-health"), "western-bay"),
            false,
        ),
        (
            "statistics:read client of the partnership",
            app.client_token("statistics:read", None, "western-bay"),
            false,
        ),
        (
            "statistics:read client of the raising agency",
            app.client_token("statistics:read", Some("wb-police"), "western-bay"),
            false,
        ),
    ];
    for (name, token, visible) in &rows {
        let reply = post(&app, Some(&bearer(token)), CASE_QUERY, json!({ "id": id })).await;
        if *visible {
            assert_eq!(assert_ok(name, &reply)["case"]["id"], *id, "{name}");
        } else {
            assert_eq!(reply.status, 200, "{name}: {reply:#?}");
            assert_eq!(
                reply.body["errors"][0]["extensions"]["code"], "NOT_FOUND",
                "{name}: {reply:#?}"
            );
            // Exactly as if the case did not exist.
            let absent =
                post(&app, Some(&bearer(token)), CASE_QUERY, json!({ "id": unknown })).await;
            assert_eq!(without_trace_ids(&reply.body), without_trace_ids(&absent.body), "{name}");
        }
    }
});

db_test!(with_a_token_the_directory_is_the_tokens_partnership, |app| {
    let data =
        assert_ok("anonymous", &post(&app, None, "{ partnerships { id code } }", json!({})).await);
    let id_of = |code: &str| {
        data["partnerships"].as_array().unwrap().iter().find(|p| p["code"] == code).unwrap()["id"]
            .clone()
    };
    let (western_bay, pan_sussex) = (id_of("western-bay"), id_of("pan-sussex"));

    let rows = [
        (
            "a Western Bay manager",
            app.token(Role::Manager, Some("wb-police"), "western-bay"),
            "western-bay",
        ),
        ("a Pan-Sussex board chair", app.token(Role::BoardChair, None, "pan-sussex"), "pan-sussex"),
        (
            "a Western Bay statistics client",
            app.client_token("statistics:read", None, "western-bay"),
            "western-bay",
        ),
    ];
    for (name, token, own) in &rows {
        let reply = post(
            &app,
            Some(&bearer(token)),
            "{ partnerships { code agencies { partnership { code } } } }",
            json!({}),
        )
        .await;
        let data = assert_ok(name, &reply);
        assert_eq!(partnership_codes(&data), [*own], "{name}");
        for agency in data["partnerships"][0]["agencies"].as_array().unwrap() {
            assert_eq!(agency["partnership"]["code"], *own, "{name}");
        }
    }

    let token = bearer(&app.token(Role::Manager, Some("wb-police"), "western-bay"));
    let agencies = "query($id: ID!) { agencies(partnershipId: $id) { code } }";
    let data = assert_ok(
        "own agencies",
        &post(&app, Some(&token), agencies, json!({ "id": western_bay })).await,
    );
    let codes: Vec<&str> =
        data["agencies"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"wb-police"), "{codes:?}");
    assert!(codes.iter().all(|c| c.starts_with("wb-")), "{codes:?}");

    let other = post(&app, Some(&token), agencies, json!({ "id": pan_sussex })).await;
    assert_eq!(other.status, 200, "{other:#?}");
    assert_eq!(other.body["errors"][0]["extensions"]["code"], "NOT_FOUND", "{other:#?}");
    let absent =
        post(&app, Some(&token), agencies, json!({ "id": uuid::Uuid::now_v7().to_string() })).await;
    assert_eq!(
        without_trace_ids(&other.body),
        without_trace_ids(&absent.body),
        "another partnership is as if it did not exist"
    );
});

// --- 5. A valid token ---------------------------------------------------------

db_test!(a_valid_token_gets_200_with_a_request_id, |app| {
    let token = app.token(Role::Practitioner, Some("wb-health"), "western-bay");
    let reply = post(&app, Some(&bearer(&token)), PARTNERSHIPS_QUERY, json!({})).await;
    assert_eq!(partnership_codes(&assert_ok("valid token", &reply)), ["western-bay"]);
    let request_id = reply.request_id.as_deref().unwrap_or_else(|| panic!("{reply:#?}"));
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");

    // A refusal carries one too, for the caller's support request.
    let reply = post(&app, Some("Bearer nope"), PARTNERSHIPS_QUERY, json!({})).await;
    assert_eq!(reply.status, 401);
    assert!(reply.request_id.is_some(), "{reply:#?}");
});

// --- 6. RS256 with a JWKS URL: fetched at start, throttled refetches ---------

mod jwks_url {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use escalations::auth::Verifier;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;
    use tokio::task::{JoinHandle, JoinSet};

    use super::*;
    use crate::helpers::{Backend, spawn_app_with};

    /// The kid of the rotated key in `test-rsa2-jwks.json`.
    const KID2: &str = "test-rsa-2";

    fn fixture_text(name: &str) -> String {
        std::fs::read_to_string(fixture(name)).unwrap()
    }

    /// An identity provider's JWKS endpoint: serves its document at
    /// `/jwks.json` (anything else is a 404), counts the requests, can switch
    /// to another document and can go away.
    struct JwksServer {
        base: String,
        fetches: Arc<AtomicUsize>,
        document: Arc<Mutex<String>>,
        delay: Arc<Mutex<Duration>>,
        stop: Option<oneshot::Sender<()>>,
        task: Option<JoinHandle<()>>,
    }

    impl JwksServer {
        async fn start(document: String) -> JwksServer {
            let fetches = Arc::new(AtomicUsize::new(0));
            let document = Arc::new(Mutex::new(document));
            let delay = Arc::new(Mutex::new(Duration::ZERO));
            let handler = {
                let (fetches, document, delay) = (fetches.clone(), document.clone(), delay.clone());
                move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let wait = *delay.lock().unwrap();
                    tokio::time::sleep(wait).await;
                    let body = document.lock().unwrap().clone();
                    ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
                }
            };
            let router = axum::Router::new().route("/jwks.json", axum::routing::get(handler));
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
            JwksServer { base, fetches, document, delay, stop: Some(stop), task: Some(task) }
        }

        async fn serving(fixture_name: &str) -> JwksServer {
            JwksServer::start(fixture_text(fixture_name)).await
        }

        fn url(&self) -> String {
            format!("{}/jwks.json", self.base)
        }

        /// Requests served so far.
        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }

        /// Answers this late from now on.
        fn slow_down(&self, by: Duration) {
            *self.delay.lock().unwrap() = by;
        }

        /// Serves another document from now on.
        fn switch_to(&self, fixture_name: &str) {
            *self.document.lock().unwrap() = fixture_text(fixture_name);
        }

        /// Stops listening and waits until the port is closed.
        async fn go_away(&mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(task) = self.task.take() {
                task.await.unwrap();
            }
        }
    }

    /// RS256 keys from `url`, with the throttle settings given.
    fn url_settings(url: &str, min_refresh: Option<u64>, refresh: Option<u64>) -> GlobalArgs {
        let mut global = rs256_settings();
        global.auth.jwt_jwks_url = Some(url.to_owned());
        global.auth.jwt_jwks_min_refresh_seconds = min_refresh;
        global.auth.jwt_jwks_refresh_seconds = refresh;
        global
    }

    async fn spawn(global: GlobalArgs) -> TestApp {
        spawn_app_with(Backend::Sqlite, global).await.unwrap()
    }

    /// Signed with the rotated key (`test-rsa2-private.pem`).
    fn rs256_rotated(kid: Option<&str>, claims: &Value) -> String {
        let pem = std::fs::read(fixture("test-rsa2-private.pem")).unwrap();
        sign(&header(Algorithm::RS256, kid), &EncodingKey::from_rsa_pem(&pem).unwrap(), claims)
    }

    /// Accepted, and read as the token's partnership.
    async fn assert_accepted(app: &TestApp, name: &str, token: &str) {
        let reply = post(app, Some(&bearer(token)), PARTNERSHIPS_QUERY, json!({})).await;
        assert_eq!(partnership_codes(&assert_ok(name, &reply)), ["western-bay"], "{name}");
    }

    async fn assert_refused(app: &TestApp, name: &str, token: &str, expected: &AuthError) {
        let reply = post(app, Some(&bearer(token)), PARTNERSHIPS_QUERY, json!({})).await;
        assert_unauthenticated(name, &reply, expected);
    }

    /// `tokens` sent all at once; each must be refused as `UnknownKey`.
    async fn all_at_once_refused(app: &Arc<TestApp>, tokens: Vec<String>) {
        let mut requests = JoinSet::new();
        for (i, token) in tokens.into_iter().enumerate() {
            let app = app.clone();
            requests.spawn(async move {
                let reply = post(&app, Some(&bearer(&token)), PARTNERSHIPS_QUERY, json!({})).await;
                (i, reply)
            });
        }
        while let Some(joined) = requests.join_next().await {
            let (i, reply) = joined.unwrap();
            assert_unauthenticated(&format!("unknown kid #{i}"), &reply, &AuthError::UnknownKey);
        }
    }

    /// Ten tokens, each with its own kid the keys lack.
    fn unknown_kid_tokens(round: &str) -> Vec<String> {
        (0..10).map(|i| rs256(Some(&format!("unknown-{round}-{i}")), &claims())).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_are_fetched_at_start_and_chosen_by_kid() {
        let idp = JwksServer::serving("test-rsa-jwks.json").await;
        // No throttle, so that each kind of token shows whether it fetches.
        let app = spawn(url_settings(&idp.url(), Some(0), None)).await;
        assert_eq!(idp.fetches(), 1, "fetched once, at start");

        for round in 0..3 {
            assert_accepted(&app, &format!("known kid, #{round}"), &rs256(Some(KID), &claims()))
                .await;
        }
        assert_eq!(idp.fetches(), 1, "known kids are served from memory");

        let pem = public_pem();
        let no_fetch = [
            ("no kid", rs256(None, &claims()), AuthError::UnknownKey),
            (
                "HS256 keyed with the public key's PEM, unknown kid",
                hmac_with_kid(Algorithm::HS256, "unknown", &pem, &claims()),
                AuthError::WrongAlgorithm,
            ),
            (
                "RS512, unknown kid",
                rsa_signed(Algorithm::RS512, Some("unknown"), &claims()),
                AuthError::WrongAlgorithm,
            ),
            ("alg none", unsigned(&claims()), AuthError::Malformed),
            (
                "RS256, known kid, claims changed after signing",
                tampered(&rs256(Some(KID), &claims())),
                AuthError::BadSignature,
            ),
            (
                "the rotated key's token under the old kid",
                rs256_rotated(Some(KID), &claims()),
                AuthError::BadSignature,
            ),
        ];
        assert_all_refused(&app, &no_fetch).await;
        assert_eq!(idp.fetches(), 1, "tokens without an RS256 kid fetch nothing");

        assert_refused(
            &app,
            "unknown kid",
            &rs256(Some("unknown"), &claims()),
            &AuthError::UnknownKey,
        )
        .await;
        assert_eq!(idp.fetches(), 2, "an unknown kid fetches the keys again");
        assert_accepted(&app, "known kid after the refetch", &rs256(Some(KID), &claims())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_kids_fetch_at_most_once_per_window_even_all_at_once() {
        let window = Duration::from_secs(2);
        let idp = JwksServer::serving("test-rsa-jwks.json").await;
        let before_start = Instant::now();
        let app = Arc::new(spawn(url_settings(&idp.url(), Some(window.as_secs()), None)).await);
        assert_eq!(idp.fetches(), 1);

        // Within the window of the fetch at start: refused without a fetch.
        all_at_once_refused(&app, unknown_kid_tokens("a")).await;
        if before_start.elapsed() < window {
            assert_eq!(idp.fetches(), 1, "inside the window nothing is fetched");
        } else {
            // A very slow machine: the window passed; still one fetch at most.
            assert!(idp.fetches() <= 2, "{} fetches", idp.fetches());
        }
        let fetched = idp.fetches();

        // After the window: ten at once make exactly one fetch...
        tokio::time::sleep(window + Duration::from_millis(200)).await;
        let before_b = Instant::now();
        all_at_once_refused(&app, unknown_kid_tokens("b")).await;
        assert_eq!(idp.fetches(), fetched + 1, "one fetch for ten unknown kids at once");
        // ...and ten more right after, none (the window opened with the
        // fetch, after `before_b`).
        all_at_once_refused(&app, unknown_kid_tokens("c")).await;
        if before_b.elapsed() < window {
            assert_eq!(idp.fetches(), fetched + 1, "the next ones inside the window fetch nothing");
        } else {
            // A very slow machine: the window passed; still one fetch at most.
            assert!(idp.fetches() <= fetched + 2, "{} fetches", idp.fetches());
        }

        assert_accepted(&app, "known kid", &rs256(Some(KID), &claims())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rotated_key_is_fetched_when_its_kid_first_arrives() {
        let idp = JwksServer::serving("test-rsa-jwks.json").await;
        let app = spawn(url_settings(&idp.url(), Some(1), None)).await;
        assert_accepted(&app, "the first key", &rs256(Some(KID), &claims())).await;

        // The provider rotates: the new document has only the new key.
        idp.switch_to("test-rsa2-jwks.json");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_accepted(&app, "the rotated key", &rs256_rotated(Some(KID2), &claims())).await;
        assert_eq!(idp.fetches(), 2);
        assert_accepted(&app, "the rotated key again", &rs256_rotated(Some(KID2), &claims())).await;
        assert_eq!(idp.fetches(), 2);
        // The withdrawn key's tokens are refused now.
        assert_refused(
            &app,
            "the withdrawn key",
            &rs256(Some(KID), &claims()),
            &AuthError::UnknownKey,
        )
        .await;
    }

    /// A key-set fetch slower than the preparation deadline is the server's
    /// trouble, not the caller's: 503 with `Retry-After`, not a 500.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_set_fetch_slower_than_the_deadline_is_a_503() {
        let idp = JwksServer::serving("test-rsa-jwks.json").await;
        let mut serve = crate::helpers::serve_args();
        serve.graphql.prepare_timeout = Duration::from_millis(300);
        let settings =
            crate::helpers::Settings { global: url_settings(&idp.url(), Some(0), None), serve };
        let app = spawn_app_with(Backend::Sqlite, settings).await.unwrap();
        idp.switch_to("test-rsa2-jwks.json");
        idp.slow_down(Duration::from_secs(2));
        let res = app
            .gql_as_raw(&rs256_rotated(Some(KID2), &claims()), "{ __typename }", json!({}))
            .await;
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "1");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE", "{body:#}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_older_than_the_refresh_age_are_fetched_again() {
        let idp = JwksServer::serving("test-rsa-jwks.json").await;
        // No throttle: the unknown kid below could fetch, but uses the
        // refresh its own verification just made.
        let app = spawn(url_settings(&idp.url(), Some(0), Some(1))).await;
        idp.switch_to("test-rsa2-jwks.json");
        tokio::time::sleep(Duration::from_millis(1200)).await;

        // The first verification after the age refreshes the keys: the
        // withdrawn key is gone, though its kid was known.
        assert_refused(
            &app,
            "the withdrawn key",
            &rs256(Some(KID), &claims()),
            &AuthError::UnknownKey,
        )
        .await;
        assert_eq!(idp.fetches(), 2, "one refresh, not one more for the unknown kid");
        assert_accepted(&app, "the new key", &rs256_rotated(Some(KID2), &claims())).await;
        assert_eq!(idp.fetches(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_keys_outlive_the_jwks_server() {
        let mut idp = JwksServer::serving("test-rsa-jwks.json").await;
        // Every verification may try to fetch: the keys are always too old
        // after a second and the throttle is off.
        let app = spawn(url_settings(&idp.url(), Some(0), Some(1))).await;
        idp.go_away().await;
        tokio::time::sleep(Duration::from_millis(1200)).await;

        assert_accepted(&app, "known kid, refresh failed", &rs256(Some(KID), &claims())).await;
        assert_refused(
            &app,
            "unknown kid, refetch failed",
            &rs256(Some("unknown"), &claims()),
            &AuthError::UnknownKey,
        )
        .await;
        assert_accepted(&app, "known kid, still", &rs256(Some(KID), &claims())).await;
        assert_eq!(idp.fetches(), 1);
    }

    /// The message of a start that fails.
    async fn start_error(global: &GlobalArgs) -> String {
        match Verifier::start(&global.auth, false).await {
            Ok(_) => panic!("the start succeeded with {:?}", global.auth),
            Err(err) => err.to_string(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_start_without_usable_keys_at_the_url_fails_clearly() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/jwks.json", listener.local_addr().unwrap())
        };
        let ok = JwksServer::serving("test-rsa-jwks.json").await;
        let only_other_keys = JwksServer::start(
            json!({ "keys": [
                { "kty": "oct", "kid": "shared", "k": b64url(TEST_SECRET.as_bytes()) },
                { "kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB" },
                { "kty": "RSA", "n": "AQAB", "e": "AQAB" },
            ] })
            .to_string(),
        )
        .await;
        let not_json = JwksServer::start("<html>sign in</html>".into()).await;
        let huge = JwksServer::start(format!("{{\"keys\": []{}}}", " ".repeat(300 * 1024))).await;

        let mut both = url_settings(&ok.url(), None, None);
        both.auth.jwt_jwks_file = Some(fixture("test-rsa-jwks.json"));
        let mut zero_age = url_settings(&ok.url(), None, None);
        zero_age.auth.jwt_jwks_refresh_seconds = Some(0);
        let rows = [
            (
                "unreachable",
                url_settings(&closed, None, None),
                format!("JWT_JWKS_URL: fetching the JWKS from {closed} failed"),
            ),
            (
                "a 404",
                url_settings(&format!("{}/missing.json", ok.base), None, None),
                "failed: HTTP status 404".to_owned(),
            ),
            (
                "no key for RS256",
                url_settings(&only_other_keys.url(), None, None),
                "failed: no usable RS256 key (".to_owned(),
            ),
            ("not JSON", url_settings(&not_json.url(), None, None), "not a JWKS document".into()),
            ("too large", url_settings(&huge.url(), None, None), "larger than".into()),
            (
                "plain http to another host",
                url_settings("http://idp.example/jwks.json", None, None),
                "JWT_JWKS_URL: must be https".into(),
            ),
            ("not a URL", url_settings("idp/jwks.json", None, None), "JWT_JWKS_URL: ".into()),
            (
                "a JWKS file as well",
                both,
                "give one of JWT_PUBLIC_KEY_FILE, JWT_JWKS_FILE and JWT_JWKS_URL".into(),
            ),
            ("refresh age 0", zero_age, "JWT_JWKS_REFRESH_SECONDS: must be at least 1".into()),
        ];
        for (name, global, expected) in rows {
            let message = start_error(&global).await;
            assert!(message.contains(&expected), "{name}: {message:?} lacks {expected:?}");
        }
        // The good URL starts, so the rows fail for their own reason.
        assert!(Verifier::start(&url_settings(&ok.url(), None, None).auth, false).await.is_ok());
        assert_eq!(only_other_keys.fetches(), 1);
    }

    #[test]
    fn serve_with_an_unreachable_jwks_url_exits_with_a_clear_error() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/jwks.json", listener.local_addr().unwrap())
        };
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_escalations"))
            .args(["serve", "--listen-addr", "127.0.0.1:0"])
            .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()))
            .env("RUST_LOG", "off")
            .env_remove("DEMO")
            .env_remove("JWT_PUBLIC_KEY_FILE")
            .env_remove("JWT_JWKS_FILE")
            .env("JWT_ALGORITHM", "RS256")
            .env("JWT_JWKS_URL", &closed)
            .env("JWT_ISSUER", TEST_ISSUER)
            .env("JWT_AUDIENCE", TEST_AUDIENCE)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that starts would run until stopped: give it 30 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                panic!("the server started with an unreachable JWKS URL");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "error: token settings: JWT_JWKS_URL: fetching the JWKS from {closed} failed: "
            )),
            "{stderr}"
        );
    }
}

/// The operation of README's machine-client example that starts with
/// `start` (a code span on one line), its `…` placeholders filled in.
fn readme_example(start: &str, fill: &[&str]) -> String {
    let readme = include_str!("../../README.md");
    let at = readme.find(&format!("`{start}")).unwrap_or_else(|| panic!("README lacks {start}"));
    let rest = &readme[at + 1..];
    let mut query = rest[..rest.find('`').unwrap()].to_owned();
    for value in fill {
        query = query.replacen('…', value, 1);
    }
    assert!(!query.contains('…'), "{query}");
    query
}

db_test!(readmes_machine_client_examples_run_as_it_says, |app| {
    let person = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let raised = app
        .gql_as_ok(&person, "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id } } }", json!({ "i": { "receivingAgencyId": receiving, "childReference": "SWP-2026-0777", "category": "referral-response", "summary": "Disputed." } }))
        .await;
    let case = raised["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    // A case system's status poll: its agency's cases, and no mutation.
    let police = app.client_token("cases:read", Some("wb-police"), "western-bay");
    let poll = readme_example("{ cases(first: 100", &["2000-01-01T00:00:00Z"]);
    let data = app.gql_as_ok(&police, &poll, json!({})).await;
    let ids: Vec<&str> = data["cases"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [case.as_str()]);
    let err = app
        .gql_as_err(
            &police,
            "mutation($i: AcknowledgeCaseInput!) { acknowledgeCase(input: $i) { case { id } } }",
            json!({ "i": { "caseId": case } }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    // A board reporting tool: the aggregates, and no case.
    let board = app.client_token("statistics:read", None, "western-bay");
    let wb = app.western_bay().await;
    let stats = readme_example("{ boardStatistics(", &[&wb.partnership.to_string()]);
    let data = app.gql_as_ok(&board, &stats, json!({})).await;
    assert!(data["boardStatistics"]["overdueNow"].is_u64(), "{data:#}");
    let err = app
        .gql_as_err(&board, "query($id: ID!) { case(id: $id) { id } }", json!({ "id": case }))
        .await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND", "{err:#}");
});

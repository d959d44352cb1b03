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
use crate::helpers::{TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, TestApp, global_args};
use crate::{db_test, db_test_with};

const CASE_QUERY: &str = "query($id: ID!) { case(id: $id) { id } }";
const PARTNERSHIPS_QUERY: &str = "{ partnerships { code } }";
const SCHEMA_QUERY: &str = "{ __schema { queryType { name } } }";

// --- Tokens built by hand --------------------------------------------------

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of a valid token: a manager of South Wales Police in Western
/// Bay, valid for ten minutes.
fn claims() -> Value {
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
fn with(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

/// Valid claims without some claims.
fn without(keys: &[&str]) -> Value {
    let mut c = claims();
    for key in keys {
        c.as_object_mut().unwrap().remove(*key);
    }
    c
}

/// The claims of a machine client (no role) with `scope` (a string or a list).
fn client(scope: Value, agency: Option<&str>) -> Value {
    let mut c = without(&["role", "agency", "name"]);
    c["scope"] = scope;
    if let Some(agency) = agency {
        c["agency"] = json!(agency);
    }
    c
}

fn sign(header: &Header, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

/// Signed as the server expects: HS256 with the test secret.
fn hs256(claims: &Value) -> String {
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

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// --- Requests and checks ---------------------------------------------------

/// What came back, kept whole for failure messages.
#[derive(Debug)]
struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    request_id: Option<String>,
    body: Value,
}

/// Posts `query` with `authorization` as the raw `Authorization` header.
async fn post(app: &TestApp, authorization: Option<&str>, query: &str, variables: Value) -> Reply {
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
fn assert_unauthenticated(name: &str, reply: &Reply, expected: &AuthError) {
    assert_eq!(reply.status, 401, "{name}: {reply:#?}");
    let challenge = reply.www_authenticate.as_deref().unwrap_or_default();
    assert!(
        challenge.starts_with(r#"Bearer error="invalid_token""#),
        "{name}: challenge {challenge:?}"
    );
    let body = reply.body.as_object().unwrap();
    assert_eq!(body.get("data"), Some(&Value::Null), "{name}: {reply:#?}");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{name}: {reply:#?}");
    assert_eq!(errors[0]["extensions"]["code"], "UNAUTHENTICATED", "{name}: {reply:#?}");
    assert_eq!(errors[0]["message"], expected.to_string(), "{name}: {reply:#?}");
}

/// A 200 whose body has data and no errors.
#[track_caller]
fn assert_ok(name: &str, reply: &Reply) -> Value {
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

db_test_with!(
    outside_demo_mode_the_default_opens_introspection_only,
    anonymous_settings(None),
    |app| {
        let reply = post(&app, None, PARTNERSHIPS_QUERY, json!({})).await;
        assert_unauthenticated("partnerships", &reply, &AuthError::Missing);
        assert_ok("introspection", &post(&app, None, SCHEMA_QUERY, json!({})).await);
    }
);

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
            assert_eq!(reply.body, absent.body, "{name}");
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
    assert_eq!(other.body, absent.body, "another partnership is as if it did not exist");
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

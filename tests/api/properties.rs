//! Property tests of the parts that take untrusted text: bearer tokens, and
//! the `cases` cursor and filter (decoded inside the server, so tested over
//! HTTP). Protocol files have theirs in `src/domain/protocol.rs`.
//!
//! Case counts are kept small so that CI stays fast.

use std::time::Duration;

use escalations::auth::{MintClaims, Verifier};
use escalations::domain::role::Role;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, global_args, mint, spawn_app};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn verifier() -> Verifier {
    Verifier::from_args(&global_args().auth, false).unwrap()
}

fn valid_token() -> String {
    mint(MintClaims {
        sub: "user-1".into(),
        role: Some(Role::Practitioner),
        agency: Some("wb-police".into()),
        partnership: "western-bay".into(),
        ..MintClaims::default()
    })
}

/// base64url without padding, as in a JWT.
fn b64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// One change to a token's text.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, char),
    Delete(usize),
    Insert(usize, char),
    Truncate(usize),
    SwapSegments(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![
        proptest::char::range('A', 'Z'),
        proptest::char::range('a', 'z'),
        proptest::char::range('0', '9'),
        Just('-'),
        Just('_'),
        Just('.'),
        Just('='),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), ch).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Truncate),
        (0..3usize, 0..3usize).prop_map(|(a, b)| Mutation::SwapSegments(a, b)),
    ]
}

fn mutate(token: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let n = chars.len();
    // An earlier mutation may have truncated the token to nothing: only an
    // insertion can change it then.
    if n == 0 && !matches!(m, Mutation::Insert(..)) {
        return String::new();
    }
    match m {
        Mutation::Replace(i, c) => chars[i % n] = *c,
        Mutation::Delete(i) => {
            chars.remove(i % n);
        }
        Mutation::Insert(i, c) => chars.insert(i % (n + 1), *c),
        Mutation::Truncate(i) => chars.truncate(i % n),
        Mutation::SwapSegments(a, b) => {
            let mut parts: Vec<&str> = token.split('.').collect();
            let len = parts.len();
            parts.swap(*a % len, *b % len);
            return parts.join(".");
        }
    }
    chars.into_iter().collect()
}

/// A JSON value for a claim: strings, numbers, lists, nulls and objects.
fn claim_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::from),
        prop::sample::select(vec![
            "practitioner",
            "board_chair",
            "cases:read",
            "western-bay",
            "wb-police",
            "HS256",
            "none",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// Any text as a token: refused, never a panic.
    #[test]
    fn arbitrary_text_is_never_a_valid_token(text in "\\PC{0,300}") {
        let rt = runtime();
        let v = verifier();
        prop_assert!(rt.block_on(v.verify(&text)).is_err());
    }

    /// Three dot-separated base64url segments of any bytes: refused.
    #[test]
    fn arbitrary_segments_are_never_a_valid_token(
        parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 3),
    ) {
        let token = parts.iter().map(|p| b64(p)).collect::<Vec<_>>().join(".");
        let rt = runtime();
        prop_assert!(rt.block_on(verifier().verify(&token)).is_err());
    }

    /// Well-formed JWTs with any header `alg` and any claims, signed with
    /// garbage or with no signature: refused.
    #[test]
    fn forged_tokens_are_refused(
        alg in prop::sample::select(vec!["HS256", "none", "RS256", "ES256", "HS512", ""]),
        claims in prop::collection::btree_map(
            prop::sample::select(vec![
                "sub", "iss", "aud", "exp", "nbf", "iat", "role", "scope", "agency",
                "partnership", "name",
            ]),
            claim_value(),
            0..11,
        ),
        signature in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let header = json!({ "alg": alg, "typ": "JWT" });
        let token = format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(Value::Object(claims.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                .to_string()
                .as_bytes()),
            b64(&signature),
        );
        let rt = runtime();
        prop_assert!(rt.block_on(verifier().verify(&token)).is_err());
    }

    /// A valid token changed in one to three places is refused (the
    /// original itself verifies).
    #[test]
    fn a_mutated_valid_token_is_never_accepted(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let token = valid_token();
        let mut changed = token.clone();
        for m in &mutations {
            changed = mutate(&changed, m);
        }
        prop_assume!(changed != token);
        let rt = runtime();
        let v = verifier();
        prop_assert!(rt.block_on(v.verify(&token)).is_ok());
        let verdict = rt.block_on(v.verify(&changed));
        prop_assert!(verdict.is_err(), "accepted {changed:?} (from {token:?})");
    }
}

/// One text field of a `cases` query: a cursor, a filter value.
fn untrusted() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,60}",
        "[0-9a-f]{0,120}",
        // Hex of `micros|uuid`-like text, valid or nearly.
        ("-?[0-9]{0,20}", "[0-9a-f-]{0,40}")
            .prop_map(|(m, id)| format!("{m}|{id}").bytes().map(|b| format!("{b:02x}")).collect()),
        Just(String::new()),
        Just("'; DROP TABLE \"case\"; --".to_owned()),
    ]
}

async fn cases_query(app: &TestApp, token: &str, variables: Value) -> (u16, Value) {
    let res = app
        .gql_as_raw(
            token,
            "query($after: String, $filter: CaseFilter!) { cases(first: 5, after: $after, filter: $filter) { totalCount pageInfo { endCursor } nodes { id } } }",
            variables,
        )
        .await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Any `after` cursor and any filter text: an answer or a client error,
/// never a 500 or an `INTERNAL_SERVER_ERROR`.
#[test]
fn cases_cursor_and_filter_never_fail_inside_the_server() {
    let rt = runtime();
    let Some(app) = rt.block_on(spawn_app(Backend::Sqlite)) else { return };
    let token = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let strategy = (
        untrusted(),
        untrusted(),
        untrusted(),
        untrusted(),
        prop::option::of(prop::sample::select(vec!["OPEN", "RESOLVED", "WITHDRAWN", "open"])),
        prop::option::of(untrusted()),
    );
    let mut runner = proptest::test_runner::TestRunner::new(config(128));
    runner
        .run(&strategy, |(after, stage, category, agency, status, raised)| {
            let variables = json!({
                "after": after,
                "filter": {
                    "stage": stage,
                    "category": category,
                    "agencyId": agency,
                    "status": status,
                    "raisedFrom": raised,
                },
            });
            let (code, body) = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), cases_query(&app, &token, variables))
                    .await
                    .expect("the server answered")
            });
            prop_assert!(code < 500, "{code}: {body}");
            let internal = body["errors"].as_array().is_some_and(|e| {
                e.iter().any(|e| e["extensions"]["code"] == "INTERNAL_SERVER_ERROR")
            });
            prop_assert!(!internal, "{body}");
            prop_assert!(body["data"].is_object() || body["errors"].is_array(), "{body}");
            Ok(())
        })
        .unwrap();
}

//! Error codes over HTTP: async-graphql's own errors told apart (parse,
//! validation, argument and variable coercion, operation resolution) under
//! both media types, `FORBIDDEN` naming who may from the policy data, and
//! every code of `graphql::error::Code` asserted by some test.

use escalations::domain::policy::{Action, allowed_roles};
use escalations::domain::protocol::{Protocol, builtin};
use escalations::domain::role::Role;
use escalations::graphql::error::Code;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;

const JSON: &str = "application/json";
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// A request and the one error it must get.
struct Row {
    name: &'static str,
    query: &'static str,
    variables: Value,
    operation: Option<&'static str>,
    code: &'static str,
    /// Extensions the error must carry besides its code (`null`: must not).
    extensions: Value,
}

fn row(name: &'static str, query: &'static str, variables: Value, code: &'static str) -> Row {
    Row { name, query, variables, operation: None, code, extensions: json!({}) }
}

impl Row {
    fn with(mut self, extensions: Value) -> Self {
        self.extensions = extensions;
        self
    }

    fn operation(mut self, name: &'static str) -> Self {
        self.operation = Some(name);
        self
    }
}

async fn post(app: &TestApp, token: &str, accept: &str, row: &Row) -> (u16, Value) {
    let mut body = json!({ "query": row.query, "variables": row.variables });
    if let Some(op) = row.operation {
        body["operationName"] = json!(op);
    }
    let res = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header("accept", accept)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// Every request refused before execution, each with its code, under both
/// media types: no `data` entry, 400 under the GraphQL-over-HTTP media
/// type and 200 under `application/json`, and the argument or variable
/// named where the error is about a value.
#[rustfmt::skip]
fn refused_before_execution() -> Vec<Row> {
    vec![
        row("a parse failure", "{ cases(first: 2 { totalCount } }", json!({}), "GRAPHQL_PARSE_FAILED")
            .with(json!({ "argument": null, "variable": null })),
        row("an unterminated string", "{ case(id: \"x) { id } }", json!({}), "GRAPHQL_PARSE_FAILED"),
        row("an unknown field", "{ cases { nope } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        row("an unknown argument", "{ cases(last: 2) { totalCount } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        row("a missing required argument", "{ case { id } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        row("an undeclared variable", "{ case(id: $id) { id } }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        row(
            "a declared variable never used",
            "query($n: Int) { cases { totalCount } }",
            json!({ "n": 2 }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        row("an object without a selection", "{ cases }", json!({}), "GRAPHQL_VALIDATION_FAILED"),
        row("a bad enum argument literal", "{ cases(orderBy: NEWEST) { totalCount } }", json!({}), "BAD_USER_INPUT")
            .with(json!({ "argument": "orderBy", "variable": null })),
        row(
            "a bad enum in a variable",
            "query($o: CaseOrder) { cases(orderBy: $o) { totalCount } }",
            json!({ "o": "NEWEST" }),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "orderBy", "variable": "o" })),
        row(
            "a bad DateTime variable",
            "query($f: DateTime) { cases(filter: { raisedFrom: $f }) { totalCount } }",
            json!({ "f": "yesterday" }),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "filter.raisedFrom", "variable": "f" })),
        row(
            "a DateTime without its offset, inside an input object variable",
            "query($f: CaseFilter) { cases(filter: $f) { totalCount } }",
            json!({ "f": { "raisedFrom": "2026-03-31T09:30:00" } }),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "filter.raisedFrom", "variable": "f" })),
        row(
            "a bad DateTime literal",
            "{ cases(filter: { raisedFrom: \"31/03/2026\" }) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "filter.raisedFrom", "variable": null })),
        row(
            "a wrong-type variable",
            "query($n: Int) { cases(first: $n) { totalCount } }",
            json!({ "n": "ten" }),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "first", "variable": "n" })),
        row(
            "an unknown input field in a variable",
            "query($f: CaseFilter) { cases(filter: $f) { totalCount } }",
            json!({ "f": { "colour": "red" } }),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "filter", "variable": "f" })),
        row(
            "a bad Date in a mutation's input",
            "mutation($i: AgreeActionInput!) { agreeAction(input: $i) { action { id } } }",
            json!({ "i": {
                "caseId": "019a0000-0000-7000-8000-000000000000", "description": "x",
                "ownerAgencyId": "019a0000-0000-7000-8000-000000000000", "dueOn": "tomorrow",
            }}),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "input.dueOn", "variable": "i" })),
        row(
            "a missing required variable",
            "query($id: ID!) { case(id: $id) { id } }",
            json!({}),
            "BAD_USER_INPUT",
        )
        .with(json!({ "variable": "id" })),
        row(
            "a required variable sent as null",
            "query($id: ID!) { case(id: $id) { id } }",
            json!({ "id": null }),
            "BAD_USER_INPUT",
        )
        .with(json!({ "variable": "id" })),
        row(
            "an integer out of range",
            "{ cases(orderBy: RAISED_AT, first: 3000000000) { totalCount } }",
            json!({}),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "first", "variable": null })),
        row(
            "an integer out of range in a variable",
            "query($n: Int) { cases(first: $n) { totalCount } }",
            json!({ "n": 3000000000u64 }),
            "BAD_USER_INPUT",
        )
        .with(json!({ "argument": "first", "variable": "n" })),
        row(
            "several operations and no operationName",
            "query A { __typename } query B { __typename }",
            json!({}),
            "OPERATION_RESOLUTION_FAILURE",
        ),
        row(
            "an operationName the document does not hold",
            "query A { __typename } query B { __typename }",
            json!({}),
            "OPERATION_RESOLUTION_FAILURE",
        )
        .operation("C"),
        row(
            "an operationName for a document of one unnamed operation",
            "{ __typename }",
            json!({}),
            "OPERATION_RESOLUTION_FAILURE",
        )
        .operation("A"),
    ]
}

db_test!(request_errors_are_told_apart_under_both_media_types, |app| {
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    for row in refused_before_execution() {
        for accept in [JSON, GRAPHQL_RESPONSE] {
            let name = format!("{} ({accept})", row.name);
            let (status, body) = post(&app, &token, accept, &row).await;
            let expected_status = if accept == JSON { 200 } else { 400 };
            assert_eq!(status, expected_status, "{name}: {body:#}");
            assert!(body.get("data").is_none(), "{name}: nothing ran, so no data: {body:#}");
            let errors = body["errors"].as_array().unwrap_or_else(|| panic!("{name}: {body:#}"));
            assert_eq!(errors.len(), 1, "{name}: one error: {body:#}");
            let err = &errors[0];
            assert_eq!(err["extensions"]["code"], row.code, "{name}: {body:#}");
            assert!(!err["message"].as_str().unwrap_or_default().is_empty(), "{name}");
            for (key, value) in row.extensions.as_object().unwrap() {
                let got = err["extensions"].get(key).cloned().unwrap_or(Value::Null);
                assert_eq!(&got, value, "{name}: extensions.{key}: {body:#}");
            }
        }
    }
    // A good value of each scalar passes the same checks.
    let data = app
        .gql_as_ok(
            &token,
            "query($f: DateTime, $t: DateTime) { cases(filter: { raisedFrom: $f, raisedTo: $t }) { totalCount } }",
            json!({ "f": "2026-01-01T00:00:00Z", "t": "2030-01-01T01:00:00+01:00" }),
        )
        .await;
    assert_eq!(data["cases"]["totalCount"], 0);
});

db_test!(an_executed_request_keeps_its_data_and_codes_its_errors, |app| {
    // Executed, with a field error: `data` stays, the error has a path and
    // a code, and the status is 200 under both media types.
    let token = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let row = row(
        "a case that is not there",
        "{ case(id: \"019a0000-0000-7000-8000-000000000000\") { id } }",
        json!({}),
        "NOT_FOUND",
    );
    for accept in [JSON, GRAPHQL_RESPONSE] {
        let (status, body) = post(&app, &token, accept, &row).await;
        assert_eq!(status, 200, "{accept}: {body:#}");
        assert!(body.get("data").is_some(), "{accept}: executed, so data: {body:#}");
        let err = &body["errors"][0];
        assert!(err["extensions"]["code"].is_string(), "{accept}: {body:#}");
        assert_eq!(err["path"], json!(["case"]), "{accept}: {body:#}");
    }
});

fn western_bay() -> Protocol {
    builtin().unwrap().into_iter().find(|p| p.id() == "western-bay").unwrap()
}

fn role_names(roles: &[Role]) -> Value {
    json!(roles.iter().map(|r| r.as_str()).collect::<Vec<_>>())
}

/// The error of a request that must fail with exactly one, `FORBIDDEN`.
async fn forbidden(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let err = app.gql_as_err(token, query, variables).await;
    assert_eq!(err["extensions"]["code"], "FORBIDDEN", "{err:#}");
    err["extensions"].clone()
}

db_test!(forbidden_names_the_roles_and_sides_that_may, |app| {
    let protocol = western_bay();
    let route = protocol.routes()[0].id().to_owned();
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let receiving = app.agency_id("wb-swansea-csc").await;
    let raised = app
        .gql_as_ok(
            &police,
            "mutation($i: RaiseCaseInput!) { raiseCase(input: $i) { case { id stage } } }",
            json!({ "i": {
                "receivingAgencyId": receiving, "childReference": "SWP-2026-0042",
                "category": "referral-response", "summary": "Referral closed with no action.",
            }}),
        )
        .await;
    let id = raised["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    let stage = raised["raiseCase"]["case"]["stage"].as_str().unwrap().to_owned();

    // A role the policy does not name at this stage: the roles that may.
    let chair = app.token(Role::BoardChair, None, "western-bay");
    let ext = forbidden(
        &app,
        &chair,
        "mutation($i: EscalateCaseInput!) { escalateCase(input: $i) { case { id } } }",
        json!({ "i": { "caseId": id, "reason": "UNRESOLVED" } }),
    )
    .await;
    let escalators = allowed_roles(&protocol, &route, &stage, Action::Escalate);
    assert!(!escalators.is_empty() && !escalators.contains(&Role::BoardChair), "{escalators:?}");
    assert_eq!(ext["allowedRoles"], role_names(&escalators), "{ext:#}");
    assert_eq!(ext["allowedSides"], json!([]), "{ext:#}");

    // The wrong side: the side that may, and the roles that may.
    let csc = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let ext = forbidden(
        &app,
        &csc,
        "mutation($i: WithdrawCaseInput!) { withdrawCase(input: $i) { case { id } } }",
        json!({ "i": { "caseId": id, "reason": "no longer needed" } }),
    )
    .await;
    assert_eq!(ext["allowedSides"], json!(["raising"]), "{ext:#}");
    let withdrawers = allowed_roles(&protocol, &route, &stage, Action::Withdraw);
    assert_eq!(ext["allowedRoles"], role_names(&withdrawers), "{ext:#}");

    // A view is a party's: the chair, who acts for no agency, is told the
    // sides that record one, with the roles the policy names (never the
    // chair: the protocol validator keeps the chair out of those lists).
    let ext = forbidden(
        &app,
        &chair,
        "mutation($i: RecordAgencyViewInput!) { recordAgencyView(input: $i) { __typename } }",
        json!({ "i": { "caseId": id, "view": "We disagree." } }),
    )
    .await;
    assert_eq!(
        ext["allowedRoles"],
        role_names(&allowed_roles(&protocol, &route, &stage, Action::RecordView)),
        "{ext:#}"
    );
    assert_eq!(ext["allowedSides"], json!(["raising", "receiving"]), "{ext:#}");

    // Partnership-wide refusals name their roles too.
    let ext = forbidden(&app, &police, "{ boardQueue { id } }", json!({})).await;
    assert_eq!(ext["allowedRoles"], json!(["board_chair"]), "{ext:#}");
    let partnership = app.western_bay().await.partnership.to_string();
    let ext = forbidden(
        &app,
        &police,
        "query($p: ID!) { boardStatistics(partnershipId: $p, from: \"2026-01-01T00:00:00Z\", to: \"2027-01-01T00:00:00Z\") { agenciesThatRaise { id } } }",
        json!({ "p": partnership }),
    )
    .await;
    let mut readers = allowed_roles(&protocol, "*", "*", Action::ReadStatistics);
    readers.sort_by_key(|r| r.as_str());
    assert_eq!(ext["allowedRoles"], role_names(&readers), "{ext:#}");
});

/// Every code of the list is asserted by a test of this binary: its name
/// appears, quoted, in an `assert` line or a table row of `tests/api`.
#[test]
fn every_code_is_asserted_by_some_test() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs")
            && path.file_name() != Some("helpers.rs".as_ref())
        {
            sources.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    // This file's own list of rows counts; its mention of the codes here
    // does not, since every code below is built, never written out.
    for code in Code::ALL {
        let quoted = format!("\"{}\"", code.as_str());
        assert!(
            sources.lines().any(|l| l.contains(&quoted) && !l.trim_start().starts_with("//")),
            "no test in tests/api asserts {code}"
        );
    }
}

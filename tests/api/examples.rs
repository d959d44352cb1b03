//! The operations of `examples/`, what each kind of caller runs: every file
//! is run over HTTP (the subscription over WebSocket) against the real
//! server, with the kind of token its header names and real variables, and
//! must answer without errors. A file in `examples/` that is not listed
//! here fails `every_file_in_examples_is_listed_and_documented`; one that
//! is listed and not run fails the run. `trusted` runs them all again by
//! hash, from the manifest `escalations trusted-documents build` makes.

use std::collections::{BTreeSet, HashMap};

use escalations::domain::role::Role;
use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;
use crate::subscriptions::Ws;

/// Every file of `examples/`, by name, with its text.
pub(crate) const EXAMPLES: &[(&str, &str)] = &[
    ("acknowledge-case.graphql", include_str!("../../examples/acknowledge-case.graphql")),
    ("add-record.graphql", include_str!("../../examples/add-record.graphql")),
    ("board-statistics.graphql", include_str!("../../examples/board-statistics.graphql")),
    (
        "case-by-child-reference.graphql",
        include_str!("../../examples/case-by-child-reference.graphql"),
    ),
    ("escalate-case.graphql", include_str!("../../examples/escalate-case.graphql")),
    ("feed-follow.graphql", include_str!("../../examples/feed-follow.graphql")),
    ("live-case-events.graphql", include_str!("../../examples/live-case-events.graphql")),
    ("raise-case.graphql", include_str!("../../examples/raise-case.graphql")),
    ("resolve-case.graphql", include_str!("../../examples/resolve-case.graphql")),
    ("rotherham-milestones.graphql", include_str!("../../examples/rotherham-milestones.graphql")),
    ("status-poll.graphql", include_str!("../../examples/status-poll.graphql")),
];

fn text(name: &str) -> &'static str {
    let file = format!("{name}.graphql");
    EXAMPLES
        .iter()
        .find(|(n, _)| *n == file)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no examples/{file}"))
}

/// The header's part from `# {label}:` to the next `# Word:` line.
fn header_part(text: &str, label: &str) -> Option<String> {
    let mut part = None::<String>;
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        let line = line.trim_start_matches('#').trim();
        let starts_part = line.split_once(':').is_some_and(|(word, _)| {
            !word.is_empty() && word.chars().all(|c| c.is_ascii_alphabetic())
        });
        match &mut part {
            Some(_) if starts_part => break,
            Some(p) => {
                p.push(' ');
                p.push_str(line);
            }
            None if line.starts_with(&format!("{label}:")) => part = Some(line.to_owned()),
            None => {}
        }
    }
    part
}

/// The document without its comments.
fn operation(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n")
}

/// `status-poll` as an operation name: `StatusPoll`.
pub(crate) fn pascal(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

#[test]
fn every_file_in_examples_is_listed_and_documented() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let listed: BTreeSet<String> = EXAMPLES.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(on_disk, listed, "every file of examples/ is listed in EXAMPLES, and run below");
    for (name, text) in EXAMPLES {
        let stem = name.strip_suffix(".graphql").expect("a .graphql file");
        // Who runs it, with which token, and what to pass.
        assert!(text.starts_with("# "), "{name}: a comment header first");
        for label in ["Who", "Token", "Variables"] {
            assert!(header_part(text, label).is_some(), "{name}: the header says `{label}:`");
        }
        // One named operation, the file's name, with variables, no literals
        // (enum values such as `UPDATED_AT` and defaults of variables aside).
        let op = operation(text);
        let heads: Vec<&str> = op
            .lines()
            .filter(|l| ["query", "mutation", "subscription"].iter().any(|k| l.starts_with(k)))
            .collect();
        assert_eq!(heads.len(), 1, "{name}: one operation");
        let head = heads[0];
        let named = head.split_whitespace().nth(1).unwrap();
        assert!(named.starts_with(&format!("{}(", pascal(stem))), "{name}: named {}", pascal(stem));
        assert!(head.contains('$'), "{name}: takes variables");
        assert!(!op.contains('"'), "{name}: variables, not string literals");
        assert!(!op.contains("fragment "), "{name}: no fragments (one operation per file)");
    }
}

/// The kind of token an example runs with; its header names it.
#[derive(Clone, Copy)]
enum Caller {
    Person,
    CasesRead,
    StatisticsRead,
}

impl Caller {
    fn named_as(self) -> &'static str {
        match self {
            Caller::Person => "a person's",
            Caller::CasesRead => "`cases:read`",
            Caller::StatisticsRead => "`statistics:read`",
        }
    }
}

/// Runs the examples and remembers which ran.
struct Examples<'a> {
    app: &'a TestApp,
    ran: BTreeSet<String>,
    /// Trusted documents' ids by operation name: send each example by its
    /// id rather than its text.
    ids: Option<&'a HashMap<String, String>>,
}

impl Examples<'_> {
    /// The header of `name` names the token `caller` holds.
    fn check_token(&mut self, name: &str, caller: Caller) -> &'static str {
        let text = text(name);
        let token = header_part(text, "Token").unwrap();
        assert!(
            token.contains(caller.named_as()),
            "{name}: run with {} but its header says {token:?}",
            caller.named_as()
        );
        self.ran.insert(format!("{name}.graphql"));
        text
    }

    /// The id of example `name` among the trusted documents, when sent by
    /// id.
    fn id(&self, name: &str) -> Option<&str> {
        let ids = self.ids?;
        let id = ids.get(&pascal(name)).unwrap_or_else(|| panic!("no id for {name}: {ids:?}"));
        Some(id.as_str())
    }

    /// Runs example `name` over HTTP (its text, or its id); its `data`,
    /// which must come with no error.
    async fn run(&mut self, name: &str, caller: Caller, token: &str, variables: Value) -> Value {
        let text = self.check_token(name, caller);
        let body = match self.id(name) {
            None => self.app.gql_as(token, text, variables.clone()).await,
            Some(id) => {
                let res = self.app.persisted_raw(Some(token), id, variables.clone()).await;
                res.json().await.unwrap()
            }
        };
        assert!(body.get("errors").is_none(), "{name} with {variables}: {body:#}");
        body["data"].clone()
    }
}

/// The id of a demo agency, read behind the API: a server that runs only
/// the examples answers no other query.
pub(crate) async fn agency_id(app: &TestApp, code: &str) -> String {
    let agency = entity::agency::Entity::find()
        .filter(entity::agency::Column::Code.eq(code))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no agency {code}"));
    agency.id.to_string()
}

fn at(offset_days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(offset_days))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

db_test!(every_example_runs_with_the_token_its_header_names, |app| {
    run_every_example(&app, None).await;
});

/// Runs every example, by its text, or by its id in `ids` (operation name
/// to trusted document id), and checks what each answers.
pub(crate) async fn run_every_example(app: &TestApp, ids: Option<&HashMap<String, String>>) {
    let mut ex = Examples { app, ran: BTreeSet::new(), ids };
    let police = app.token(Role::Practitioner, Some("wb-police"), "western-bay");
    let police_manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let social_care = app.token(Role::Practitioner, Some("wb-swansea-csc"), "western-bay");
    let police_system = app.client_token("cases:read", Some("wb-police"), "western-bay");
    let board = app.client_token("statistics:read", None, "western-bay");
    let receiving = agency_id(app, "wb-swansea-csc").await;

    // A front end: raise, acknowledge (the other side), record, escalate.
    let data = ex
        .run(
            "raise-case",
            Caller::Person,
            &police,
            json!({ "input": {
                "receivingAgencyId": receiving,
                "childReference": "SWP-2026-0042",
                "category": "referral-response",
                "summary": "Referral closed with no further action after a second incident.",
                "idempotencyKey": "raise-SWP-2026-0042",
            }}),
        )
        .await;
    let raised = &data["raiseCase"]["case"];
    assert_eq!((&raised["stage"], &raised["version"]), (&json!("informal"), &json!(1)));
    assert_eq!(raised["viewerCan"]["escalate"], true, "{raised:#}");
    let case = raised["id"].as_str().unwrap().to_owned();
    let data = ex
        .run(
            "acknowledge-case",
            Caller::Person,
            &social_care,
            json!({ "input": { "caseId": case, "expectedVersion": 1 } }),
        )
        .await;
    let acknowledged = &data["acknowledgeCase"]["case"];
    assert!(acknowledged["acknowledgedAt"].is_string(), "{acknowledged:#}");
    assert_eq!(acknowledged["viewerCan"]["accept"], false, "once per stage");
    let data = ex
        .run(
            "add-record",
            Caller::Person,
            &police,
            json!({ "input": {
                "caseId": case,
                "expectedVersion": 2,
                "kind": "DISCUSSION",
                "facts": "Spoke with the duty social worker; the decision stands.",
                "opinions": "A second incident meets the threshold.",
            }}),
        )
        .await;
    assert_eq!(data["addRecord"]["record"]["stage"], "informal");
    let data = ex
        .run(
            "escalate-case",
            Caller::Person,
            &police_manager,
            json!({ "input": { "caseId": case, "expectedVersion": 3, "reason": "UNRESOLVED" } }),
        )
        .await;
    let escalated = &data["escalateCase"]["case"];
    assert_eq!((&escalated["stage"], &escalated["version"]), (&json!("stage-1"), &json!(4)));

    // The police case system: its status poll, then the next one.
    let data = ex
        .run("status-poll", Caller::CasesRead, &police_system, json!({ "updatedAfter": null }))
        .await;
    let nodes = data["cases"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{data:#}");
    assert_eq!((&nodes[0]["id"], &nodes[0]["stage"]), (&json!(case), &json!("stage-1")));
    let seen = nodes[0]["updatedAt"].as_str().unwrap().to_owned();
    let data = ex
        .run("status-poll", Caller::CasesRead, &police_system, json!({ "updatedAfter": seen }))
        .await;
    assert_eq!(data["cases"]["nodes"], json!([]), "nothing changed since");
    // Its feed, from the start: each change once, in order.
    let data =
        ex.run("feed-follow", Caller::CasesRead, &police_system, json!({ "after": null })).await;
    let feed = &data["caseEvents"];
    let types: Vec<&str> = feed["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["CASE_RAISED", "CASE_ACKNOWLEDGED", "RECORD_ADDED", "CASE_ESCALATED"]);
    assert_eq!(feed["pageInfo"]["hasNextPage"], false);
    let first_cursor = feed["edges"][0]["cursor"].as_str().unwrap().to_owned();
    let stored = feed["pageInfo"]["endCursor"].as_str().unwrap().to_owned();
    // Its lookup by the child's reference.
    let data = ex
        .run(
            "case-by-child-reference",
            Caller::CasesRead,
            &police_system,
            json!({ "childReference": "SWP-2026-0042" }),
        )
        .await;
    assert_eq!(data["cases"]["totalCount"], 1);
    assert_eq!(data["cases"]["nodes"][0]["id"], case.as_str());
    assert_eq!(data["cases"]["nodes"][0]["receivingAgency"]["code"], "wb-swansea-csc");

    // The front end resolves it; the poll and the feed show it.
    let data = ex
        .run(
            "resolve-case",
            Caller::Person,
            &police_manager,
            json!({ "input": {
                "caseId": case,
                "expectedVersion": 4,
                "outcome": "Strategy discussion held; section 47 enquiry opened.",
                "learning": "A second incident prompts a fresh look at the referral.",
            }}),
        )
        .await;
    assert_eq!(data["resolveCase"]["case"]["status"], "RESOLVED");
    let data = ex
        .run("status-poll", Caller::CasesRead, &police_system, json!({ "updatedAfter": seen }))
        .await;
    assert_eq!(data["cases"]["nodes"][0]["status"], "RESOLVED", "{data:#}");
    let data =
        ex.run("feed-follow", Caller::CasesRead, &police_system, json!({ "after": stored })).await;
    let edges = data["caseEvents"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{data:#}");
    assert_eq!(edges[0]["node"]["type"], "CASE_RESOLVED");

    // A board reporting tool: the period around today.
    let western_bay = entity::partnership::Entity::find()
        .filter(entity::partnership::Column::Code.eq("western-bay"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let data = ex
        .run(
            "board-statistics",
            Caller::StatisticsRead,
            &board,
            json!({ "partnershipId": western_bay.id.to_string(), "from": at(-1), "to": at(1) }),
        )
        .await;
    let stats = &data["boardStatistics"];
    assert_eq!(
        (&stats["casesRaised"], &stats["casesResolved"]),
        (&json!(1), &json!(1)),
        "{stats:#}"
    );

    // Rotherham's challenge, raised with the same example: the chair's form
    // is owed first, and the case is due when it is.
    let chair = app.token(Role::SafeguardingLead, Some("ro-safeguarding-unit"), "rotherham");
    let cyps = agency_id(app, "ro-cyps").await;
    let data = ex
        .run(
            "raise-case",
            Caller::Person,
            &chair,
            json!({ "input": {
                "receivingAgencyId": cyps,
                "childReference": "RMBC-2026-0901",
                "category": "conference-practice",
                "route": "challenge",
                "summary": "Conference report not shared before the conference.",
            }}),
        )
        .await;
    let challenge = data["raiseCase"]["case"]["id"].as_str().unwrap().to_owned();
    let data =
        ex.run("rotherham-milestones", Caller::Person, &chair, json!({ "id": challenge })).await;
    let shown = &data["case"];
    assert_eq!(shown["nextMilestone"]["key"], "form", "{shown:#}");
    assert_eq!(shown["nextMilestone"]["owedBy"]["side"], "RAISING");
    assert_eq!(shown["dueOn"], shown["nextMilestone"]["dueOn"]);
    let keys: Vec<&str> = shown["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["form", "response"]);

    // The subscription, over WebSocket: from the feed's first cursor it
    // replays what came after (the acknowledgement first).
    let text = ex.check_token("live-case-events", Caller::CasesRead);
    let mut ws = Ws::connect(&format!("ws://{}/graphql", app.addr), &police_system).await;
    let variables = json!({ "after": first_cursor, "filter": { "caseId": case } });
    match ex.id("live-case-events") {
        None => ws.subscribe("1", text, variables).await,
        Some(id) => ws.subscribe_by_hash("1", id, variables).await,
    }
    let event = ws.event("1").await;
    assert_eq!(event["node"]["type"], "CASE_ACKNOWLEDGED", "{event:#}");
    assert_eq!(event["node"]["caseId"], case.as_str());

    let all: BTreeSet<String> = EXAMPLES.iter().map(|(n, _)| (*n).to_owned()).collect();
    assert_eq!(ex.ran, all, "every example ran");
}

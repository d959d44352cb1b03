//! The directory as a deployment keeps it (issue 15): a `directory:admin`
//! client changes its partnership's agencies over GraphQL, every change is
//! recorded, a deactivated agency keeps its cases but takes part in
//! nothing new and its tokens are refused; `escalations directory import`
//! and `export` read and write the directory file.

use std::process::Command;

use escalations::domain::role::Role;
use serde_json::{Value, json};

use crate::db_test;
use crate::helpers::TestApp;

const CREATE: &str = "mutation($input: CreateAgencyInput!) { createAgency(input: $input) { id code name kind active deactivatedAt partnership { code } } }";
const RENAME: &str =
    "mutation($input: RenameAgencyInput!) { renameAgency(input: $input) { id name active } }";
const DEACTIVATE: &str = "mutation($input: AgencyIdInput!) { deactivateAgency(input: $input) { id active deactivatedAt } }";
const REACTIVATE: &str = "mutation($input: AgencyIdInput!) { reactivateAgency(input: $input) { id active deactivatedAt } }";
const CHANGES: &str = "query($first: Int! = 20, $before: ID) { directoryChanges(first: $first, before: $before) { id at actorSub action agency { code } fields { field before after } } }";
const RAISE: &str =
    "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { id } } }";

fn code(err: &Value) -> &str {
    err["extensions"]["code"].as_str().unwrap_or("")
}

fn raise(receiving: &str, child: &str) -> Value {
    json!({ "input": { "receivingAgencyId": receiving, "childReference": child, "category": "other", "summary": "A disagreement." } })
}

db_test!(a_directory_client_creates_renames_deactivates_and_every_change_is_recorded, |app| {
    let admin = app.client_token("directory:admin", None, "western-bay");
    let created = app
        .gql_as_ok(
            &admin,
            CREATE,
            json!({ "input": { "code": "wb-housing", "name": "Swansea Housing", "kind": "HOUSING" } }),
        )
        .await;
    let agency = &created["createAgency"];
    assert_eq!(agency["code"], "wb-housing");
    assert_eq!(agency["kind"], "HOUSING");
    assert_eq!(agency["active"], true);
    assert_eq!(agency["deactivatedAt"], Value::Null);
    assert_eq!(agency["partnership"]["code"], "western-bay");
    let id = agency["id"].as_str().unwrap().to_owned();

    // Its people can act at once: the directory cache was told.
    let housing = app.token(Role::Manager, Some("wb-housing"), "western-bay");
    let police = app.agency_id("wb-police").await;
    let case =
        app.gql_as_ok(&housing, RAISE, raise(&police, "SH-1")).await["raiseCase"]["case"]["id"]
            .as_str()
            .unwrap()
            .to_owned();

    let renamed = app
        .gql_as_ok(
            &admin,
            RENAME,
            json!({ "input": { "agencyId": id, "name": "Swansea Council Housing" } }),
        )
        .await;
    assert_eq!(renamed["renameAgency"]["name"], "Swansea Council Housing");

    // Deactivated: it keeps its case, its tokens are refused, nobody
    // raises with it.
    let off = app.gql_as_ok(&admin, DEACTIVATE, json!({ "input": { "agencyId": id } })).await;
    assert_eq!(off["deactivateAgency"]["active"], false);
    assert!(off["deactivateAgency"]["deactivatedAt"].is_string());
    let refused = app.gql_as_err(&housing, "{ partnerships { code } }", json!({})).await;
    assert_eq!(code(&refused), "UNAUTHENTICATED", "{refused:#}");
    assert!(refused["message"].as_str().unwrap().contains("deactivated"), "{refused:#}");
    let police_manager = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let seen = app
        .gql_as_ok(
            &police_manager,
            "query($id: ID!) { case(id: $id) { id raisingAgency { code active } } }",
            json!({ "id": case }),
        )
        .await;
    assert_eq!(seen["case"]["raisingAgency"]["active"], false, "{seen:#}");
    let err = app.gql_as_err(&police_manager, RAISE, raise(&id, "SWP-9")).await;
    assert_eq!(code(&err), "BAD_USER_INPUT", "{err:#}");
    assert!(err["message"].as_str().unwrap().contains("deactivated"), "{err:#}");
    let again = app.gql_as_err(&admin, DEACTIVATE, json!({ "input": { "agencyId": id } })).await;
    assert_eq!(code(&again), "CONFLICT", "{again:#}");

    // Reactivated: its tokens work again.
    let on = app.gql_as_ok(&admin, REACTIVATE, json!({ "input": { "agencyId": id } })).await;
    assert_eq!(on["reactivateAgency"]["active"], true);
    assert_eq!(on["reactivateAgency"]["deactivatedAt"], Value::Null);
    app.gql_as_ok(&housing, "{ partnerships { code } }", json!({})).await;

    // Every change is recorded, newest first, with who and what.
    let changes = app.gql_as_ok(&admin, CHANGES, json!({ "first": 10 })).await;
    let list: Vec<&Value> =
        changes["directoryChanges"].as_array().unwrap().iter().take(4).collect();
    let actions: Vec<&str> = list.iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["agency_reactivated", "agency_deactivated", "agency_updated", "agency_created"],
        "{changes:#}"
    );
    assert!(
        list.iter().all(|c| c["actorSub"] == "client-1" && c["agency"]["code"] == "wb-housing")
    );
    assert_eq!(
        list[2]["fields"],
        json!([{ "field": "name", "before": "Swansea Housing", "after": "Swansea Council Housing" }])
    );
    assert!(
        list[3]["fields"]
            .as_array()
            .unwrap()
            .contains(&json!({ "field": "kind", "before": null, "after": "housing" }))
    );
    // Paging by the last id seen.
    let older =
        app.gql_as_ok(&admin, CHANGES, json!({ "first": 10, "before": list[1]["id"] })).await;
    let older: Vec<&str> = older["directoryChanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(older[..2], ["agency_updated", "agency_created"], "{older:?}");
    // The demo load's own rows follow, attributed to it.
    assert!(changes["directoryChanges"][4]["actorSub"] == "demo", "{changes:#}");
});

db_test!(directory_changes_are_refused_clearly_and_change_nothing, |app| {
    let admin = app.client_token("directory:admin", None, "western-bay");
    let create = |code: &str, name: &str| json!({ "input": { "code": code, "name": name, "kind": "OTHER" } });
    // Who: a person (even the board chair), another scope.
    for token in [
        app.token(Role::BoardChair, None, "western-bay"),
        app.token(Role::HeadOfService, Some("wb-police"), "western-bay"),
        app.client_token("cases:read", Some("wb-police"), "western-bay"),
        app.client_token("statistics:read", None, "western-bay"),
    ] {
        let err = app.gql_as_err(&token, CREATE, create("wb-new", "New")).await;
        assert_eq!(code(&err), "FORBIDDEN", "{err:#}");
        assert!(err["message"].as_str().unwrap().contains("directory:admin"), "{err:#}");
        let err = app.gql_as_err(&token, CHANGES, json!({})).await;
        assert_eq!(code(&err), "FORBIDDEN", "{err:#}");
    }
    let anonymous = app
        .gql("mutation { deactivateAgency(input: { agencyId: \"x\" }) { id } }", json!({}))
        .await;
    assert!(anonymous["errors"].is_array(), "{anonymous:#}");
    // What: a malformed code or name, a code taken in another partnership.
    for (input, field_code) in [
        (create("WB New", "New"), "BAD_USER_INPUT"),
        (create("wb-new", "  "), "BAD_USER_INPUT"),
        (create("ps-police", "Taken"), "CONFLICT"),
    ] {
        let err = app.gql_as_err(&admin, CREATE, input).await;
        assert_eq!(code(&err), field_code, "{err:#}");
    }
    // Another partnership's agency is not found; an unchanged name is a
    // conflict; a malformed id is bad input.
    let sussex = app.agency_id("ps-police").await;
    let err = app.gql_as_err(&admin, DEACTIVATE, json!({ "input": { "agencyId": sussex } })).await;
    assert_eq!(code(&err), "NOT_FOUND", "{err:#}");
    let ours = app.agency_id("wb-police").await;
    let name = app.gql_ok("{ partnerships { code agencies { code name } } }", json!({})).await;
    let police_name = name["partnerships"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["agencies"].as_array().unwrap())
        .find(|a| a["code"] == "wb-police")
        .unwrap()["name"]
        .clone();
    let err = app
        .gql_as_err(&admin, RENAME, json!({ "input": { "agencyId": ours, "name": police_name } }))
        .await;
    assert_eq!(code(&err), "CONFLICT", "{err:#}");
    let err = app.gql_as_err(&admin, DEACTIVATE, json!({ "input": { "agencyId": "nope" } })).await;
    assert_eq!(code(&err), "BAD_USER_INPUT", "{err:#}");
    let err = app.gql_as_err(&admin, CHANGES, json!({ "first": 101 })).await;
    assert_eq!(code(&err), "BAD_USER_INPUT", "{err:#}");
    // Nothing was written: the newest change is still the demo load's.
    let changes = app.gql_as_ok(&admin, CHANGES, json!({ "first": 1 })).await;
    assert_eq!(changes["directoryChanges"][0]["actorSub"], "demo", "{changes:#}");
    let still = app
        .gql_as_ok(
            &app.token(Role::Manager, Some("wb-police"), "western-bay"),
            "{ partnerships { code } }",
            json!({}),
        )
        .await;
    assert_eq!(still["partnerships"][0]["code"], "western-bay");
});

fn escalations(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_escalations"))
        .args(args)
        .env("DATABASE_URL", app.db_url())
        .env("RUST_LOG", "warn")
        .env("USER", "operator")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

db_test!(the_directory_file_is_imported_by_code_and_exported_back, |app| {
    let dir = tempfile::tempdir().unwrap();
    // Export what the demo load stored, and import it again: no change.
    let exported = dir.path().join("directory.toml");
    let (ok, _, err) =
        escalations(&app, &["directory", "export", "--output", exported.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out, err) = escalations(&app, &["directory", "import", exported.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("nothing to change"), "{out}");
    // Refuses to overwrite.
    let (ok, _, err) =
        escalations(&app, &["directory", "export", "--output", exported.to_str().unwrap()]);
    assert!(!ok && err.contains("creating"), "{err}");

    // A new partnership, a rename, a deactivation, and an agency left out.
    let text = r#"
[[partnership]]
code = "western-bay"
name = "Western Bay Safeguarding Children Board"
protocol = "western-bay"
calendar = "england-and-wales"
agencies = [
  { code = "wb-police", name = "Heddlu De Cymru", kind = "police" },
  { code = "wb-health", name = "Swansea Bay University Health Board", kind = "health", active = false },
]

[[partnership]]
code = "cardiff"
name = "Cardiff and Vale Regional Safeguarding Board"
protocol = "western-bay"
calendar = "england-and-wales"
agencies = [{ code = "cv-police", name = "South Wales Police (Cardiff)", kind = "police" }]
"#;
    let file = dir.path().join("changes.toml");
    std::fs::write(&file, text).unwrap();
    let (ok, out, err) =
        escalations(&app, &["directory", "import", "--dry-run", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    for line in [
        "update agency wb-police in western-bay; name \"South Wales Police\" -> \"Heddlu De Cymru\"",
        "deactivate agency wb-health in western-bay",
        "create partnership cardiff",
        "create agency cv-police in cardiff",
        "left out, kept as it is: agency wb-education of western-bay",
        "dry run: 4 changes, nothing written",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    // The dry run wrote nothing: the health board's people still act.
    let health = app.token(Role::Manager, Some("wb-health"), "western-bay");
    app.gql_as_ok(&health, "{ partnerships { code } }", json!({})).await;

    let (ok, out, err) = escalations(&app, &["directory", "import", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("4 changes written"), "{out}");
    // This server reads the directory again within DIRECTORY_CACHE_SECONDS;
    // the change came from another process, so its cache is emptied here
    // as its lifetime would.
    escalations::service::identity::changed();
    let err = app.gql_as_err(&health, "{ partnerships { code } }", json!({})).await;
    assert_eq!(code(&err), "UNAUTHENTICATED", "{err:#}");
    let cardiff = app.token(Role::Manager, Some("cv-police"), "cardiff");
    let data = app
        .gql_as_ok(
            &cardiff,
            "{ partnerships { code name agencies { code name active } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["partnerships"][0]["code"], "cardiff", "{data:#}");
    // Nothing was deleted: the left-out agency is still there, and every
    // change is recorded as the operator's.
    let admin = app.client_token("directory:admin", None, "western-bay");
    let changes = app.gql_as_ok(&admin, CHANGES, json!({})).await;
    let list = changes["directoryChanges"].as_array().unwrap();
    let ours: Vec<&str> = list
        .iter()
        .filter(|c| c["actorSub"] == "cli:operator")
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(ours, ["agency_deactivated", "agency_updated"], "{changes:#}");
    let (ok, out, _) = escalations(&app, &["directory", "export"]);
    assert!(ok);
    assert!(out.contains("code = \"wb-education\""), "{out}");
    assert!(out.contains("name = \"Heddlu De Cymru\""), "{out}");

    // A file with problems: every one reported, nothing written.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[[partnership]]
code = "western-bay"
name = "Western Bay"
protocol = "nowhere"
calendar = "england-and-wales"
agencies = [
  { code = "ps-police", name = "Moved", kind = "police" },
  { code = "wb-new", name = "New", kind = "army" },
]
"#,
    )
    .unwrap();
    let (ok, _, err) = escalations(&app, &["directory", "import", bad.to_str().unwrap()]);
    assert!(!ok);
    for problem in [
        "nothing was written",
        "protocol \"nowhere\" is not a protocol of this server",
        "(ps-police).code belongs to partnership pan-sussex",
        "(wb-new).kind \"army\" is not one of",
    ] {
        assert!(err.contains(problem), "{problem:?} missing from:\n{err}");
    }
    let (_, after, _) = escalations(&app, &["directory", "export"]);
    assert!(after.contains("name = \"Western Bay Safeguarding Children Board\""), "{after}");
});

db_test!(a_directory_client_pins_the_protocol_version_new_cases_take, |app| {
    let admin = app.client_token("directory:admin", None, "western-bay");
    let publisher = app.client_token("protocols:admin", None, "western-bay");
    let wb = app.gql_ok("{ partnerships { id code } }", json!({})).await["partnerships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "western-bay")
        .unwrap()["id"]
        .clone();
    let v2 = include_str!("../../src/domain/protocols/western_bay.toml").replacen(
        "\nversion = 1\n",
        "\nversion = 2\n",
        1,
    );
    app.gql_as_ok(&publisher, "mutation($p: ID!, $d: String!) { publishProtocolVersion(partnershipId: $p, definition: $d) { version } }", json!({ "p": wb, "d": v2 }))
        .await;
    const ADOPT: &str = "mutation($v: Int) { adoptProtocolVersion(version: $v) { code protocolId adoptedProtocolVersion } }";
    let police = app.token(Role::Manager, Some("wb-police"), "western-bay");
    let csc = app.agency_id("wb-swansea-csc").await;
    let version_of_new_case = |child: &'static str| {
        let (app, police, csc) = (&app, police.clone(), csc.clone());
        async move {
            app.gql_as_ok(&police, "mutation($input: RaiseCaseInput!) { raiseCase(input: $input) { case { protocolVersion } } }", raise(&csc, child))
                .await["raiseCase"]["case"]["protocolVersion"]
                .clone()
        }
    };
    assert_eq!(version_of_new_case("SWP-101").await, 2);
    let pinned = app.gql_as_ok(&admin, ADOPT, json!({ "v": 1 })).await;
    assert_eq!(
        pinned["adoptProtocolVersion"],
        json!({ "code": "western-bay", "protocolId": "western-bay", "adoptedProtocolVersion": 1 })
    );
    assert_eq!(version_of_new_case("SWP-102").await, 1);
    // Refused: an unknown version, a person, another scope; nothing changes.
    let err = app.gql_as_err(&admin, ADOPT, json!({ "v": 9 })).await;
    assert_eq!(code(&err), "BAD_USER_INPUT", "{err:#}");
    for token in [police.clone(), publisher.clone()] {
        let err = app.gql_as_err(&token, ADOPT, json!({ "v": 2 })).await;
        assert_eq!(code(&err), "FORBIDDEN", "{err:#}");
    }
    assert_eq!(version_of_new_case("SWP-103").await, 1);
    // Back to the newest.
    let newest = app.gql_as_ok(&admin, ADOPT, json!({ "v": null })).await;
    assert_eq!(newest["adoptProtocolVersion"]["adoptedProtocolVersion"], Value::Null);
    assert_eq!(version_of_new_case("SWP-104").await, 2);
    let changes = app.gql_as_ok(&admin, CHANGES, json!({ "first": 2 })).await;
    assert_eq!(
        changes["directoryChanges"],
        json!([
            { "id": changes["directoryChanges"][0]["id"], "at": changes["directoryChanges"][0]["at"], "actorSub": "client-1", "action": "protocol_adopted", "agency": null, "fields": [{ "field": "protocol_version", "before": "1", "after": null }] },
            { "id": changes["directoryChanges"][1]["id"], "at": changes["directoryChanges"][1]["at"], "actorSub": "client-1", "action": "protocol_adopted", "agency": null, "fields": [{ "field": "protocol_version", "before": null, "after": "1" }] },
        ])
    );
});

//! Partnerships and agencies.

use serde_json::json;

use crate::db_test;

db_test!(lists_the_five_seed_partnerships_with_their_agencies, |app| {
    let data = app.gql_ok("{ partnerships { code name protocolId calendar nation agencies { code name kind partnership { code } } } }", json!({})).await;
    let list = data["partnerships"].as_array().unwrap();
    let mut codes: Vec<&str> = list.iter().map(|p| p["code"].as_str().unwrap()).collect();
    codes.sort_unstable();
    assert_eq!(codes, ["leeds", "pan-sussex", "rotherham", "six-stage", "western-bay"]);
    for p in list {
        assert_eq!(
            p["code"], p["protocolId"],
            "each demo partnership adopts its own seed protocol"
        );
        assert_eq!(p["calendar"], "england-and-wales");
        assert_eq!(p["nation"], "ENGLAND_AND_WALES");
        let agencies = p["agencies"].as_array().unwrap();
        assert!(agencies.len() >= 5, "{p:#}");
        for a in agencies {
            assert_eq!(a["partnership"]["code"], p["code"]);
        }
        let names: Vec<&str> = agencies.iter().map(|a| a["name"].as_str().unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "agencies come by name");
    }
    let western_bay = list.iter().find(|p| p["code"] == "western-bay").unwrap();
    assert_eq!(western_bay["name"], "Western Bay Safeguarding Children Board");
    assert!(
        western_bay["agencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["code"] == "wb-police" && a["kind"] == "POLICE")
    );
});

db_test!(lists_the_agencies_of_one_partnership, |app| {
    let data = app.gql_ok("{ partnerships { id code } }", json!({})).await;
    let leeds =
        data["partnerships"].as_array().unwrap().iter().find(|p| p["code"] == "leeds").unwrap();
    let data = app
        .gql_ok(
            "query($id: ID!) { agencies(partnershipId: $id) { code } }",
            json!({ "id": leeds["id"] }),
        )
        .await;
    let codes: Vec<&str> =
        data["agencies"].as_array().unwrap().iter().map(|a| a["code"].as_str().unwrap()).collect();
    assert_eq!(codes.len(), 6);
    assert!(codes.iter().all(|c| c.starts_with("ld-")), "{codes:?}");
});

db_test!(an_unknown_partnership_is_not_found, |app| {
    let err = app
        .gql_err(
            "query($id: ID!) { agencies(partnershipId: $id) { code } }",
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(err["extensions"]["code"], "NOT_FOUND");
    assert_eq!(err["message"], "partnership not found");
});

db_test!(a_malformed_partnership_id_is_bad_input, |app| {
    let err = app.gql_err("{ agencies(partnershipId: \"western-bay\") { code } }", json!({})).await;
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(err["extensions"]["field"], "partnershipId");
});

// A partnership in Scotland or Northern Ireland shows its nation. None is in
// the demo directory (whose protocols all count England and Wales's working
// days), so these rows are written behind the API, as a directory import
// would write them.
db_test!(a_partnership_names_its_nation, |app| {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    for (code, calendar) in [("scot", "scotland"), ("ni", "northern-ireland")] {
        entity::partnership::Entity::insert(entity::partnership::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            code: Set(code.to_owned()),
            name: Set(format!("{code} partnership")),
            protocol_id: Set("rotherham".to_owned()),
            protocol_version: Set(None),
            calendar: Set(calendar.to_owned()),
            created_at: Set(chrono::Utc::now()),
        })
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    }
    let data = app.gql_ok("{ partnerships { code calendar nation } }", json!({})).await;
    let nation_of = |code: &str| {
        let list = data["partnerships"].as_array().unwrap();
        let p = list.iter().find(|p| p["code"] == code).unwrap();
        (p["calendar"].as_str().unwrap().to_owned(), p["nation"].as_str().unwrap().to_owned())
    };
    assert_eq!(nation_of("scot"), ("scotland".to_owned(), "SCOTLAND".to_owned()));
    assert_eq!(nation_of("ni"), ("northern-ireland".to_owned(), "NORTHERN_IRELAND".to_owned()));
    assert_eq!(
        nation_of("leeds"),
        ("england-and-wales".to_owned(), "ENGLAND_AND_WALES".to_owned())
    );
});

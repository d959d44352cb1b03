//! The custom scalars as a partner reads them: `Date` and `DateTime`, with
//! descriptions free of Rust names and strftime patterns, and the same
//! `@specifiedBy` URL in the exported SDL and in live introspection.

use async_graphql::parser::types::{ServiceDocument, TypeKind, TypeSystemDefinition};
use serde_json::json;

use crate::db_test;

const RFC3339: &str = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6";

/// What a description for partners must not hold.
const RUST_WORDS: [&str; 8] = ["Naive", "Utc", "chrono", "<", "%Y", "%m", "%d", "Implement"];

/// The custom scalars of the SDL: name, description, `@specifiedBy` URL.
fn sdl_scalars() -> Vec<(String, String, Option<String>)> {
    let sdl = escalations::graphql::export_sdl();
    let doc: ServiceDocument = async_graphql::parser::parse_schema(&sdl).unwrap();
    doc.definitions
        .iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) if matches!(t.node.kind, TypeKind::Scalar) => Some(t),
            _ => None,
        })
        .map(|t| {
            let url = t
                .node
                .directives
                .iter()
                .find(|d| d.node.name.node == "specifiedBy")
                .and_then(|d| d.node.get_argument("url"))
                .map(|v| match &v.node {
                    async_graphql::Value::String(s) => s.clone(),
                    other => panic!("specifiedBy url {other}"),
                });
            let description =
                t.node.description.as_ref().map(|d| d.node.clone()).unwrap_or_default();
            (t.node.name.node.to_string(), description, url)
        })
        .collect()
}

#[test]
fn the_sdl_names_date_and_date_time_with_their_specifications() {
    let scalars = sdl_scalars();
    let names: Vec<&str> = scalars.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["Date", "DateTime"], "the custom scalars, and no NaiveDate");
    for (name, description, url) in &scalars {
        assert_eq!(url.as_deref(), Some(RFC3339), "{name}");
        assert!(!description.is_empty(), "{name}");
        for word in RUST_WORDS {
            assert!(
                !description.contains(word),
                "{name}'s description holds {word:?}: {description}"
            );
        }
    }
}

db_test!(introspection_shows_the_same_scalars_as_the_sdl, |app| {
    let sdl = sdl_scalars();
    for (name, description, url) in sdl {
        let data = app
            .gql_ok(
                "query($n: String!) { __type(name: $n) { kind name description specifiedByURL } }",
                json!({ "n": name }),
            )
            .await;
        assert_eq!(
            data["__type"],
            json!({ "kind": "SCALAR", "name": name, "description": description, "specifiedByURL": url }),
            "{name}"
        );
    }
    let data = app.gql_ok("{ __type(name: \"NaiveDate\") { name } }", json!({})).await;
    assert_eq!(data["__type"], json!(null), "NaiveDate is gone");
});

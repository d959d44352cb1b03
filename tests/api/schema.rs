//! `schema.graphql` is the exported SDL, and everything in it is described.

use async_graphql::parser::types::{ServiceDocument, TypeKind, TypeSystemDefinition};

fn checked_in() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql at the top of the repository")
}

#[test]
fn schema_graphql_is_what_export_schema_prints() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_escalations"))
        .arg("export-schema")
        .output()
        .expect("run escalations export-schema");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed, escalations::graphql::export_sdl());
    assert!(
        printed == checked_in(),
        "schema.graphql has drifted from the code: run `cargo run -- export-schema > schema.graphql` and review the diff"
    );
}

/// Every type, field, argument, input field and enum value of our own has
/// a description (the built-in scalars and introspection types excepted).
#[test]
fn every_public_type_field_and_argument_is_described() {
    let doc: ServiceDocument = async_graphql::parser::parse_schema(checked_in()).unwrap();
    let builtin = ["String", "Int", "Float", "Boolean", "ID"];
    let mut missing = Vec::new();
    for def in &doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else { continue };
        let ty = &ty.node;
        let name = ty.name.node.as_str();
        if builtin.contains(&name) {
            continue;
        }
        if ty.description.is_none() {
            missing.push(name.to_owned());
        }
        match &ty.kind {
            TypeKind::Object(o) => {
                for f in &o.fields {
                    let f = &f.node;
                    if f.description.is_none() {
                        missing.push(format!("{name}.{}", f.name.node));
                    }
                    for a in &f.arguments {
                        if a.node.description.is_none() {
                            missing.push(format!("{name}.{}({})", f.name.node, a.node.name.node));
                        }
                    }
                }
            }
            TypeKind::Interface(o) => {
                for f in &o.fields {
                    if f.node.description.is_none() {
                        missing.push(format!("{name}.{}", f.node.name.node));
                    }
                }
            }
            TypeKind::InputObject(i) => {
                for f in &i.fields {
                    if f.node.description.is_none() {
                        missing.push(format!("{name}.{}", f.node.name.node));
                    }
                }
            }
            TypeKind::Enum(e) => {
                for v in &e.values {
                    if v.node.description.is_none() {
                        missing.push(format!("{name}.{}", v.node.value.node));
                    }
                }
            }
            TypeKind::Scalar | TypeKind::Union(_) => {}
        }
    }
    assert!(missing.is_empty(), "undocumented in the schema: {missing:#?}");
}

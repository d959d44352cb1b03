//! Trusted documents: the operations a deployment registered, each named
//! by the SHA-256 of its text, and the persisted-query extension by which a
//! request names one.
//!
//! The registry is a file in the format of Apollo's persisted-query
//! manifest (what `@apollo/generate-persisted-query-manifest` writes, and
//! what `escalations trusted-documents build DIR` writes from a folder of
//! `.graphql` files, [`build`]), read once at start ([`TrustedDocuments::
//! from_manifest`]): holding a [`TrustedDocuments`] proves that every
//! operation's `id` is the SHA-256 (lowercase hex) of its `body`, and that
//! the body parses and holds exactly the one operation its `name` and
//! `type` say. The server also holds every body to the document limits at
//! start (`check_limits`), so an operation that could never run stops the
//! start, named.
//!
//! A request names a document with Apollo's automatic-persisted-query
//! extension, `extensions.persistedQuery = {"version": 1, "sha256Hash":
//! "…"}`, in a POST body, the `extensions` parameter of a GET (JSON) or the
//! payload of a WebSocket `subscribe`. [`TrustedDocuments::resolve`] turns
//! it into the request's text before anything else looks at the request,
//! so the text then meets every limit, check and count that any text does:
//!
//! - a hash alone runs the registered body, or is `PERSISTED_QUERY_NOT_FOUND`;
//! - a hash with a `query` must be the query's SHA-256 (`BAD_USER_INPUT`,
//!   as Apollo Server says it: "provided sha does not match query"), and
//!   the query runs (an APQ client's second try), unless the server is in
//!   trusted-only mode and the hash is not registered: `PERSISTED_QUERY_NOT_FOUND`;
//! - a `version` other than 1, or an extension that is no object with a
//!   string hash, is `BAD_USER_INPUT`;
//! - in trusted-only mode (`TRUSTED_DOCUMENTS_ONLY`) a request without a
//!   hash is `PERSISTED_QUERY_ID_REQUIRED` (Apollo Router's code for it).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{ErrorExtensionValues, ServerError};
use sha2::{Digest, Sha256};

use crate::config::GraphqlArgs;
use crate::graphql::error::code;

/// The `format` of a persisted-query manifest.
pub const FORMAT: &str = "apollo-persisted-query-manifest";

/// The one `version` of the manifest format, and of the extension.
pub const VERSION: u32 = 1;

/// A persisted-query manifest, as a file holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The registered operations.
    pub operations: Vec<ManifestOperation>,
}

/// One registered operation of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestOperation {
    /// The SHA-256 of `body`, lowercase hex.
    pub id: String,
    /// The name of the operation `body` holds.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: Kind,
    /// The document's text, as clients send it (its hash is the `id`).
    pub body: String,
}

/// The type of a registered operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A query.
    Query,
    /// A mutation.
    Mutation,
    /// A subscription.
    Subscription,
}

impl From<OperationType> for Kind {
    fn from(ty: OperationType) -> Self {
        match ty {
            OperationType::Query => Kind::Query,
            OperationType::Mutation => Kind::Mutation,
            OperationType::Subscription => Kind::Subscription,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Query => "query",
            Kind::Mutation => "mutation",
            Kind::Subscription => "subscription",
        })
    }
}

/// Why a manifest was refused. Every reason about one operation names it.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not a manifest at all.
    #[error("not a persisted-query manifest: {0}")]
    NotJson(#[from] serde_json::Error),
    /// Another format, or another version of it.
    #[error("format {format:?} version {version}: expected {FORMAT:?} version {VERSION}")]
    Format {
        /// The `format` given.
        format: String,
        /// The `version` given.
        version: u32,
    },
    /// An `id` that is not the SHA-256 of its body.
    #[error("operation {name:?}: id {id:?} is not the SHA-256 of its body, which is {expected:?}")]
    WrongId {
        /// The operation's name.
        name: String,
        /// The `id` given.
        id: String,
        /// The body's SHA-256.
        expected: String,
    },
    /// A body that is not one named operation of the given name and type.
    #[error("operation {name:?}: {reason}")]
    Body {
        /// The operation's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The SHA-256 of `text`, lowercase hex: an operation's id.
pub fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// The one operation of `body`: its name and type, or why there is not
/// exactly one named operation (fragments may come with it).
fn sole_operation(body: &str) -> Result<(String, Kind), String> {
    let doc = async_graphql::parser::parse_query(body).map_err(|e| format!("not GraphQL: {e}"))?;
    match &doc.operations {
        DocumentOperations::Single(_) => Err("its operation has no name".to_owned()),
        DocumentOperations::Multiple(ops) if ops.len() == 1 => {
            let (name, op) = ops.iter().next().ok_or("no operation")?;
            Ok((name.to_string(), op.node.ty.into()))
        }
        DocumentOperations::Multiple(ops) => {
            Err(format!("{} operations in one document; one is registered per entry", ops.len()))
        }
    }
}

/// A registered document.
#[derive(Debug, Clone)]
struct Trusted {
    name: String,
    body: String,
}

/// The trusted documents by id, and whether only they run. Built only from
/// a manifest every operation of which is what it says (or empty).
#[derive(Debug, Clone, Default)]
pub struct TrustedDocuments {
    by_id: HashMap<String, Trusted>,
    only: bool,
}

impl TrustedDocuments {
    /// The documents of a manifest's text; `only`: refuse requests without
    /// a registered hash.
    pub fn from_manifest(text: &str, only: bool) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_json::from_str(text)?;
        if manifest.format != FORMAT || manifest.version != VERSION {
            return Err(ManifestError::Format {
                format: manifest.format,
                version: manifest.version,
            });
        }
        let mut by_id = HashMap::with_capacity(manifest.operations.len());
        for op in manifest.operations {
            let expected = sha256_hex(&op.body);
            if op.id != expected {
                return Err(ManifestError::WrongId { name: op.name, id: op.id, expected });
            }
            let body_error = |reason: String| ManifestError::Body { name: op.name.clone(), reason };
            let (name, ty) = sole_operation(&op.body).map_err(body_error)?;
            if name != op.name || ty != op.ty {
                return Err(body_error(format!(
                    "the body holds {ty} {name}, not {} {}",
                    op.ty, op.name
                )));
            }
            // The same id twice is the same body, name and type twice.
            by_id.insert(op.id, Trusted { name: op.name, body: op.body });
        }
        Ok(Self { by_id, only })
    }

    /// The documents of the manifest at `path`.
    pub fn load(path: &Path, only: bool) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).context("reading the manifest")?;
        Ok(Self::from_manifest(&text, only)?)
    }

    /// How many documents are registered.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether only the registered documents run.
    pub fn only(&self) -> bool {
        self.only
    }

    /// Holds every body to the document limits, so that an operation that
    /// could never run stops the start; the error names it and the limit.
    pub fn check_limits(&self, limits: &GraphqlArgs) -> anyhow::Result<()> {
        for doc in self.by_id.values() {
            if let Err(refused) = super::limits::check_document(limits, &doc.body) {
                anyhow::bail!(
                    "operation {:?} is over the document limit {}: {}",
                    doc.name,
                    refused.limit,
                    refused.message
                );
            }
        }
        Ok(())
    }

    /// Puts the text of the document a request names by hash into the
    /// request, or says why it may not run (see the module's rules).
    pub fn resolve(&self, req: &mut async_graphql::Request) -> Result<(), Refused> {
        let hash = match req.extensions.get("persistedQuery") {
            None | Some(async_graphql::Value::Null) => None,
            Some(value) => Some(requested_hash(value)?),
        };
        let Some(hash) = hash else {
            return if self.only { Err(Refused::IdRequired) } else { Ok(()) };
        };
        if !req.query.is_empty() {
            if sha256_hex(&req.query) != hash {
                return Err(Refused::BadInput {
                    field: "extensions.persistedQuery.sha256Hash",
                    message: "provided sha does not match query".to_owned(),
                });
            }
            return if self.only && !self.by_id.contains_key(&hash) {
                Err(Refused::NotFound)
            } else {
                Ok(())
            };
        }
        match self.by_id.get(&hash) {
            Some(doc) => {
                req.query.clone_from(&doc.body);
                Ok(())
            }
            None => Err(Refused::NotFound),
        }
    }
}

/// The hash of a `persistedQuery` extension of version 1.
fn requested_hash(value: &async_graphql::Value) -> Result<String, Refused> {
    use async_graphql::Value as V;
    let malformed = || Refused::BadInput {
        field: "extensions.persistedQuery",
        message: "extensions.persistedQuery must be an object with version 1 and sha256Hash, \
                  the SHA-256 of the document in lowercase hex"
            .to_owned(),
    };
    let V::Object(fields) = value else { return Err(malformed()) };
    match fields.get("version") {
        Some(V::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => {}
        _ => {
            return Err(Refused::BadInput {
                field: "extensions.persistedQuery.version",
                message: "Unsupported persisted query version: only version 1 is known".to_owned(),
            });
        }
    }
    match fields.get("sha256Hash") {
        Some(V::String(hash)) => Ok(hash.clone()),
        _ => Err(malformed()),
    }
}

/// Why a request's persisted query may not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The hash names no trusted document (and no query came with it, or
    /// only trusted documents run).
    NotFound,
    /// Only trusted documents run, and the request named none.
    IdRequired,
    /// A malformed extension, another version, or a hash that is not the
    /// query's.
    BadInput {
        /// The part of the request at fault, for `extensions.field`.
        field: &'static str,
        /// What to tell the caller.
        message: String,
    },
}

impl Refused {
    /// The error the caller gets.
    pub fn error(&self) -> ServerError {
        let (message, code, field) = match self {
            // Apollo Server's message: Apollo's clients know it by it.
            Refused::NotFound => {
                ("PersistedQueryNotFound".to_owned(), code::PERSISTED_QUERY_NOT_FOUND, None)
            }
            Refused::IdRequired => (
                "only trusted documents run here: send the operation's id as \
                 extensions.persistedQuery.sha256Hash, not its text"
                    .to_owned(),
                code::PERSISTED_QUERY_ID_REQUIRED,
                None,
            ),
            Refused::BadInput { field, message } => {
                (message.clone(), code::BAD_USER_INPUT, Some(*field))
            }
        };
        let mut err = ServerError::new(message, None);
        let ext = err.extensions.get_or_insert_with(ErrorExtensionValues::default);
        ext.set("code", code);
        if let Some(field) = field {
            ext.set("field", field);
        }
        err
    }
}

/// The manifest of the operations in `dir`'s `.graphql` files (not its
/// subfolders), in the order of their file names: each file holds one
/// named operation (with any fragments it spreads), registered with the
/// file's whole text as its body, so that its id is the file's SHA-256
/// (`sha256sum FILE`). A file that is not one named operation is refused,
/// named; so is a folder without any.
pub fn build(dir: &Path) -> anyhow::Result<Manifest> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "graphql") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    anyhow::ensure!(!files.is_empty(), "{} holds no .graphql file", dir.display());
    let mut operations = Vec::with_capacity(files.len());
    for path in files {
        let body = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let (name, ty) = sole_operation(&body)
            .map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))?;
        if let Some(other) = operations.iter().find(|o: &&ManifestOperation| o.name == name) {
            anyhow::bail!(
                "{}: operation {name} is already registered (id {})",
                path.display(),
                other.id
            );
        }
        operations.push(ManifestOperation { id: sha256_hex(&body), name, ty, body });
    }
    Ok(Manifest { format: FORMAT.to_owned(), version: VERSION, operations })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const POLL: &str = "query Poll { cases(first: 1) { totalCount } }";

    fn manifest(ops: &[(&str, &str, &str, &str)]) -> String {
        let operations: Vec<serde_json::Value> = ops
            .iter()
            .map(|(id, name, ty, body)| {
                serde_json::json!({ "id": id, "name": name, "type": ty, "body": body })
            })
            .collect();
        serde_json::json!({ "format": FORMAT, "version": 1, "operations": operations }).to_string()
    }

    /// The manifest's documents, or the start of the error's text.
    #[track_caller]
    fn check(text: &str, expected: Result<usize, &str>) {
        let got = TrustedDocuments::from_manifest(text, false)
            .map(|docs| docs.len())
            .map_err(|e| e.to_string());
        match (&got, expected) {
            (Ok(n), Ok(m)) if *n == m => {}
            (Err(e), Err(start)) if e.starts_with(start) => {}
            _ => panic!("{text}\n  got {got:?}\n  expected {expected:?}"),
        }
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        // The test vector of the empty string (FIPS 180-2).
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn manifests_are_parsed_and_each_operation_checked() {
        let id = sha256_hex(POLL);
        let sub = "subscription Live { caseEvents { cursor } }";
        let frag = "query WithFragment { ...F } fragment F on Query { __typename }";
        check(&manifest(&[]), Ok(0));
        check(&manifest(&[(&id, "Poll", "query", POLL)]), Ok(1));
        check(
            &manifest(&[
                (&id, "Poll", "query", POLL),
                (&sha256_hex(sub), "Live", "subscription", sub),
                (&sha256_hex(frag), "WithFragment", "query", frag),
            ]),
            Ok(3),
        );
        // The same entry twice is one document.
        check(&manifest(&[(&id, "Poll", "query", POLL), (&id, "Poll", "query", POLL)]), Ok(1));
        // A wrong id names its operation and the body's hash.
        check(
            &manifest(&[(&sha256_hex("other"), "Poll", "query", POLL)]),
            Err(&format!("operation \"Poll\": id \"{}\"", sha256_hex("other"))),
        );
        check(
            &manifest(&[(&id.to_uppercase(), "Poll", "query", POLL)]),
            Err("operation \"Poll\": id"),
        );
        // The body must be the one operation the entry names.
        check(
            &manifest(&[(&id, "Other", "query", POLL)]),
            Err("operation \"Other\": the body holds query Poll, not query Other"),
        );
        check(
            &manifest(&[(&id, "Poll", "mutation", POLL)]),
            Err("operation \"Poll\": the body holds query Poll, not mutation Poll"),
        );
        let broken = "query Poll { cases(";
        check(
            &manifest(&[(&sha256_hex(broken), "Poll", "query", broken)]),
            Err("operation \"Poll\": not GraphQL"),
        );
        let two = "query A { __typename } query B { __typename }";
        check(
            &manifest(&[(&sha256_hex(two), "A", "query", two)]),
            Err("operation \"A\": 2 operations"),
        );
        let anonymous = "{ __typename }";
        check(
            &manifest(&[(&sha256_hex(anonymous), "", "query", anonymous)]),
            Err("operation \"\": its operation has no name"),
        );
        // The format, its version, and the shape of an entry.
        check(
            &manifest(&[]).replace(FORMAT, "relay-persisted-queries"),
            Err("format \"relay-persisted-queries\" version 1"),
        );
        check(&manifest(&[]).replace("\"version\":1", "\"version\":2"), Err("format"));
        check(
            &manifest(&[(&id, "Poll", "query-ish", POLL)]),
            Err("not a persisted-query manifest"),
        );
        check("{\"format\": \"apollo-persisted-query-manifest\"}", Err("not a persisted-query"));
        check("[]", Err("not a persisted-query manifest"));
        // Fields Apollo's tools may add are ignored.
        let extra = manifest(&[(&id, "Poll", "query", POLL)])
            .replace("\"body\"", "\"clientName\":\"web\",\"body\"");
        check(&extra, Ok(1));
    }

    fn request(query: &str, persisted: Option<serde_json::Value>) -> async_graphql::Request {
        let mut req = async_graphql::Request::new(query);
        if let Some(p) = persisted {
            req.extensions
                .insert("persistedQuery".to_owned(), async_graphql::Value::from_json(p).unwrap());
        }
        req
    }

    fn hash(h: &str) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "version": 1, "sha256Hash": h }))
    }

    /// What `resolve` makes of a request: the text to run, or the code.
    #[track_caller]
    fn resolves(
        docs: &TrustedDocuments,
        mut req: async_graphql::Request,
        expected: Result<&str, &str>,
    ) {
        let got = docs.resolve(&mut req).map(|()| req.query.clone()).map_err(|r| {
            let err = r.error();
            match err.extensions.as_ref().and_then(|e| e.get("code")) {
                Some(async_graphql::Value::String(c)) => c.clone(),
                other => panic!("no code: {other:?}"),
            }
        });
        assert_eq!(got.as_deref().map_err(String::as_str), expected);
    }

    #[test]
    fn requests_name_documents_by_hash() {
        let id = sha256_hex(POLL);
        let text = manifest(&[(&id, "Poll", "query", POLL)]);
        let open = TrustedDocuments::from_manifest(&text, false).unwrap();
        let only = TrustedDocuments::from_manifest(&text, true).unwrap();
        let free = "{ __typename }";
        let unknown = sha256_hex("query Unknown { __typename }");
        for docs in [&open, &only] {
            // A registered hash runs its body; an unknown one is not found.
            resolves(docs, request("", hash(&id)), Ok(POLL));
            resolves(docs, request("", hash(&unknown)), Err("PERSISTED_QUERY_NOT_FOUND"));
            resolves(docs, request("", hash(&id.to_uppercase())), Err("PERSISTED_QUERY_NOT_FOUND"));
            // With the query: the hash must be the query's.
            resolves(docs, request(POLL, hash(&id)), Ok(POLL));
            resolves(docs, request(free, hash(&id)), Err("BAD_USER_INPUT"));
            // Version 1 only; an object with a string hash.
            let v2 = Some(serde_json::json!({ "version": 2, "sha256Hash": id }));
            resolves(docs, request("", v2), Err("BAD_USER_INPUT"));
            let no_version = Some(serde_json::json!({ "sha256Hash": id }));
            resolves(docs, request("", no_version), Err("BAD_USER_INPUT"));
            let number = Some(serde_json::json!({ "version": 1, "sha256Hash": 7 }));
            resolves(docs, request("", number), Err("BAD_USER_INPUT"));
            resolves(docs, request("", Some(serde_json::json!(id))), Err("BAD_USER_INPUT"));
        }
        // A free query, and one with its own unregistered hash (an APQ
        // client's second try), run unless only trusted documents do.
        resolves(&open, request(free, None), Ok(free));
        resolves(&open, request(free, Some(serde_json::Value::Null)), Ok(free));
        resolves(&open, request(free, hash(&sha256_hex(free))), Ok(free));
        resolves(&only, request(free, None), Err("PERSISTED_QUERY_ID_REQUIRED"));
        resolves(&only, request("", None), Err("PERSISTED_QUERY_ID_REQUIRED"));
        resolves(&only, request(free, hash(&sha256_hex(free))), Err("PERSISTED_QUERY_NOT_FOUND"));
        // Without a manifest nothing is registered.
        let none = TrustedDocuments::default();
        resolves(&none, request("", hash(&id)), Err("PERSISTED_QUERY_NOT_FOUND"));
        resolves(&none, request(POLL, hash(&id)), Ok(POLL));
        resolves(&none, request(POLL, None), Ok(POLL));
    }

    #[test]
    fn a_folder_of_operations_builds_a_manifest_that_loads() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "b-poll.graphql",
            "# A header comment.\nquery Poll { cases(first: 1) { totalCount } }\n",
        );
        write("a-live.graphql", "subscription Live { caseEvents { cursor } }");
        write("notes.txt", "not an operation");
        std::fs::create_dir(dir.path().join("sub.graphql")).unwrap();
        let built = build(dir.path()).unwrap();
        let names: Vec<(&str, Kind)> =
            built.operations.iter().map(|o| (o.name.as_str(), o.ty)).collect();
        assert_eq!(names, [("Live", Kind::Subscription), ("Poll", Kind::Query)]);
        let poll = &built.operations[1];
        assert!(poll.body.starts_with("# A header comment."), "the file's whole text");
        assert_eq!(
            poll.id,
            sha256_hex(&std::fs::read_to_string(dir.path().join("b-poll.graphql")).unwrap())
        );
        let text = serde_json::to_string_pretty(&built).unwrap();
        assert!(text.contains("\"format\": \"apollo-persisted-query-manifest\""), "{text}");
        assert!(text.contains("\"type\": \"subscription\""), "{text}");
        assert_eq!(TrustedDocuments::from_manifest(&text, true).unwrap().len(), 2);

        // A file that is not one named operation is refused, named.
        write("c-two.graphql", "query A { __typename } query B { __typename }");
        let err = build(dir.path()).unwrap_err().to_string();
        assert!(err.contains("c-two.graphql: 2 operations"), "{err}");
        write("c-two.graphql", "{ __typename }");
        let err = build(dir.path()).unwrap_err().to_string();
        assert!(err.contains("c-two.graphql: its operation has no name"), "{err}");
        write("c-two.graphql", "query Poll { __typename }");
        let err = build(dir.path()).unwrap_err().to_string();
        assert!(err.contains("c-two.graphql: operation Poll is already registered"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(build(empty.path()).unwrap_err().to_string().contains("holds no .graphql file"));
    }
}

//! The limits a GraphQL document is held to before anything of it runs,
//! each computed in time linear in the size of the text.
//!
//! In order: the text's lexical tokens and bracket nesting (one pass over
//! the bytes, stopping at the limit: `lexer`), so that the parser's work
//! and recursion are bounded; the parse; then one walk over the document in
//! which every fragment is measured once and remembered (`Walker`). The
//! walk refuses fragment cycles (a validation rule of the specification)
//! first, then measures each operation as if its fragments were written out
//! where they are spread: how deep it nests, how many aliases it has and how
//! many selections it has. That last number matters because async-graphql's
//! own passes (its validation visitors, depth, complexity and directive
//! checks, and the executor) walk fragments where they are spread, without
//! memory: a chain of fragments that each spread the next twice is small
//! text but doubles the work with every link. Holding the expanded
//! selections to `GRAPHQL_MAX_COST` bounds all of them, since every
//! selected field costs at least one; the exact cost, with list sizes, is
//! then counted by `graphql::cost` before execution.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::config::GraphqlArgs;

/// A document refused by a limit: what to tell the caller, which limit
/// (as `extensions.limit`), the measure and the most accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The message of the error.
    pub message: String,
    /// The limit's name, for `extensions.limit`.
    pub limit: &'static str,
    /// What was measured (a lower bound where counting stopped early).
    pub value: Option<usize>,
    /// The most accepted.
    pub max: Option<usize>,
    /// The argument or variable at fault, for `extensions.field`.
    pub field: Option<String>,
}

impl Refused {
    fn over(limit: &'static str, value: usize, max: usize, message: String) -> Self {
        Self { message, limit, value: Some(value), max: Some(max), field: None }
    }

    fn nul(field: &str) -> Self {
        Self {
            message: format!(
                "{field}: text may not contain the NUL character (U+0000); nothing was changed"
            ),
            limit: "nul",
            value: None,
            max: None,
            field: Some(field.to_owned()),
        }
    }
}

/// Refuses a NUL character anywhere in the variables: PostgreSQL cannot
/// store one in text, and no text of this domain has one, so it is refused
/// the same way on every database before anything runs.
pub fn refuse_nul_in_variables(variables: &async_graphql::Variables) -> Result<(), Refused> {
    for (name, value) in variables.iter() {
        if has_nul(value) {
            return Err(Refused::nul(name.as_str()));
        }
    }
    Ok(())
}

fn has_nul(value: &async_graphql::Value) -> bool {
    use async_graphql::Value as V;
    match value {
        V::String(s) => s.contains('\0'),
        V::List(items) => items.iter().any(has_nul),
        V::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// The first argument (or variable default) written in the document whose
/// text holds a NUL character, by name; each is looked at once.
fn nul_in_document(doc: &ExecutableDocument) -> Option<String> {
    use async_graphql_value::Value as V;
    fn value_has_nul(value: &V) -> bool {
        match value {
            V::String(s) => s.contains('\0'),
            V::List(items) => items.iter().any(value_has_nul),
            V::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || value_has_nul(v)),
            _ => false,
        }
    }
    fn in_set(set: &SelectionSet) -> Option<String> {
        set.items.iter().find_map(|item| match &item.node {
            Selection::Field(f) => f
                .node
                .arguments
                .iter()
                .find(|(_, v)| value_has_nul(&v.node))
                .map(|(name, _)| name.node.to_string())
                .or_else(|| {
                    f.node.directives.iter().find_map(|d| {
                        d.node
                            .arguments
                            .iter()
                            .find(|(_, v)| value_has_nul(&v.node))
                            .map(|(name, _)| name.node.to_string())
                    })
                })
                .or_else(|| in_set(&f.node.selection_set.node)),
            Selection::InlineFragment(f) => in_set(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => None,
        })
    }
    doc.operations
        .iter()
        .find_map(|(_, op)| {
            op.node
                .variable_definitions
                .iter()
                .find(|d| d.node.default_value.as_ref().is_some_and(|v| has_nul(&v.node)))
                .map(|d| d.node.name.node.to_string())
                .or_else(|| in_set(&op.node.selection_set.node))
        })
        .or_else(|| doc.fragments.values().find_map(|f| in_set(&f.node.selection_set.node)))
}

/// Holds the query text to the token and nesting limits, parses it, and
/// holds the document to the fragment, depth, alias and size limits.
/// `Ok(None)`: it does not parse (the caller then sees async-graphql's
/// syntax error; a document that does not parse can run nothing).
pub fn check_document(
    limits: &GraphqlArgs,
    query: &str,
) -> Result<Option<ExecutableDocument>, Refused> {
    let scan = lexer::scan(query, limits.max_tokens);
    if scan.tokens > limits.max_tokens {
        return Err(Refused::over(
            "tokens",
            scan.tokens,
            limits.max_tokens,
            format!("the query has more than {} tokens; send a smaller query", limits.max_tokens),
        ));
    }
    // Brackets are refused past this before parsing so that the parser's
    // recursion stays bounded; the depth limit then speaks precisely.
    let nesting = limits.max_depth.saturating_add(32);
    if scan.max_nesting > nesting {
        return Err(Refused::over(
            "nesting",
            scan.max_nesting,
            nesting,
            "the query is nested too deep".to_owned(),
        ));
    }
    let Ok(doc) = async_graphql::parser::parse_query(query) else { return Ok(None) };
    let shape = measure(&doc)?;
    if shape.selections > limits.max_cost {
        return Err(Refused::over(
            "cost",
            shape.selections,
            limits.max_cost,
            format!(
                "with its fragments written out the query has {} selections, so it costs at \
                 least that; at most {} is accepted",
                shape.selections, limits.max_cost
            ),
        ));
    }
    if shape.depth > limits.max_depth {
        return Err(Refused::over(
            "depth",
            shape.depth,
            limits.max_depth,
            format!(
                "the query is nested too deep ({} levels; at most {} are accepted)",
                shape.depth, limits.max_depth
            ),
        ));
    }
    if let Some(field) = nul_in_document(&doc) {
        return Err(Refused::nul(&field));
    }
    if shape.aliases > limits.max_aliases {
        return Err(Refused::over(
            "aliases",
            shape.aliases,
            limits.max_aliases,
            format!(
                "the query has {} aliases, counting each fragment where it is spread; at most {} \
                 are accepted",
                shape.aliases, limits.max_aliases
            ),
        ));
    }
    Ok(Some(doc))
}

/// What a selection set amounts to with its fragments written out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Shape {
    /// Deepest field nesting. The subtree of `__schema` and `__type` counts
    /// as one level: the standard introspection query (GraphiQL's,
    /// graphql-core's) nests `ofType` deeper than any query of ours needs,
    /// and its shape is fixed by the schema.
    depth: usize,
    /// Aliased fields.
    aliases: usize,
    /// Fields, fragment spreads and inline fragments.
    selections: usize,
}

impl Shape {
    /// Two shapes side by side (saturating: a measure past any limit is as
    /// good as infinite).
    fn beside(self, other: Shape) -> Shape {
        Shape {
            depth: self.depth.max(other.depth),
            aliases: self.aliases.saturating_add(other.aliases),
            selections: self.selections.saturating_add(other.selections),
        }
    }
}

/// Measures every operation of the document (they add up: async-graphql's
/// checks walk them all), after refusing fragment cycles.
fn measure(doc: &ExecutableDocument) -> Result<Shape, Refused> {
    let mut walker = Walker { doc, memo: HashMap::new(), path: Vec::new() };
    // Every fragment, used or not, so that a cycle anywhere is refused
    // before any other measure is taken.
    for name in doc.fragments.keys() {
        walker.fragment(name.as_str())?;
    }
    let mut total = Shape::default();
    for (_, op) in doc.operations.iter() {
        total = total.beside(walker.set(&op.node.selection_set.node)?);
    }
    Ok(total)
}

enum Memo {
    /// Being measured: met again, it is a cycle.
    Open,
    Done(Shape),
}

/// One walk over a document: each fragment is measured once.
struct Walker<'d> {
    doc: &'d ExecutableDocument,
    memo: HashMap<&'d str, Memo>,
    /// The fragments being measured, outermost first (to name a cycle).
    path: Vec<&'d str>,
}

impl<'d> Walker<'d> {
    fn set(&mut self, set: &'d SelectionSet) -> Result<Shape, Refused> {
        let mut shape = Shape::default();
        for item in &set.items {
            let one = match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let inner = self.set(&f.node.selection_set.node)?;
                    let depth =
                        if name == "__schema" || name == "__type" { 1 } else { 1 + inner.depth };
                    Shape {
                        depth,
                        aliases: inner.aliases.saturating_add(usize::from(f.node.alias.is_some())),
                        selections: inner.selections.saturating_add(1),
                    }
                }
                Selection::InlineFragment(f) => {
                    let inner = self.set(&f.node.selection_set.node)?;
                    Shape { selections: inner.selections.saturating_add(1), ..inner }
                }
                Selection::FragmentSpread(s) => {
                    let inner = self.fragment(s.node.fragment_name.node.as_str())?;
                    Shape { selections: inner.selections.saturating_add(1), ..inner }
                }
            };
            shape = shape.beside(one);
        }
        Ok(shape)
    }

    /// The shape of a fragment, measured the first time it is met. An
    /// unknown fragment measures nothing (validation names it).
    fn fragment(&mut self, name: &'d str) -> Result<Shape, Refused> {
        match self.memo.get(name) {
            Some(Memo::Done(shape)) => return Ok(*shape),
            Some(Memo::Open) => {
                let from = self.path.iter().position(|n| *n == name).unwrap_or(0);
                let mut cycle: Vec<&str> = self.path[from..].to_vec();
                cycle.push(name);
                return Err(Refused {
                    message: format!(
                        "the fragment {name} spreads itself ({}); fragments must not form cycles",
                        cycle.join(" → ")
                    ),
                    limit: "fragmentCycles",
                    value: None,
                    max: None,
                    field: None,
                });
            }
            None => {}
        }
        let Some((key, frag)) = self.doc.fragments.get_key_value(name) else {
            return Ok(Shape::default());
        };
        let key = key.as_str();
        self.memo.insert(key, Memo::Open);
        self.path.push(key);
        let shape = self.set(&frag.node.selection_set.node);
        self.path.pop();
        let shape = shape?;
        self.memo.insert(key, Memo::Done(shape));
        Ok(shape)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn limits() -> GraphqlArgs {
        GraphqlArgs { max_cost: 100_000, max_tokens: 100_000, ..GraphqlArgs::default() }
    }

    #[track_caller]
    fn shape(query: &str) -> Shape {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        measure(&doc).expect("measures")
    }

    #[track_caller]
    fn refused(query: &str) -> Refused {
        check_document(&limits(), query).expect_err("refused")
    }

    #[test]
    fn measures_fragments_where_they_are_spread() {
        #[track_caller]
        fn check(query: &str, depth: usize, aliases: usize, selections: usize) {
            assert_eq!(shape(query), Shape { depth, aliases, selections }, "{query}");
        }
        check("{ a }", 1, 0, 1);
        check("{ a { b c } x: d }", 2, 1, 4);
        // A fragment counts every time it is spread, plus the spread itself.
        check("{ ...F ...F } fragment F on Query { x: a { b } }", 2, 2, 6);
        check("{ a { ...F } } fragment F on A { b { c } }", 3, 0, 4);
        check("{ ... on Query { a } }", 1, 0, 2);
        // Introspection's subtree is one level deep, but all of it counts.
        check("{ __schema { types { name ofType { name } } } }", 1, 0, 5);
        // An unknown fragment measures nothing; validation names it.
        check("{ ...Nowhere }", 0, 0, 1);
        // Operations add up.
        check("query A { a } query B { b c }", 1, 0, 3);
    }

    #[test]
    fn refuses_fragment_cycles_and_names_them() {
        let err = refused("query{...A} fragment A on Query{...A ...A ...A ...A}");
        assert_eq!(err.limit, "fragmentCycles");
        assert!(err.message.contains("A → A"), "{}", err.message);
        let err = refused("{ a } fragment A on Query { ...B } fragment B on Query { b { ...A } }");
        assert_eq!(err.limit, "fragmentCycles");
        assert!(err.message.contains(" → "), "{}", err.message);
    }

    #[test]
    fn a_chain_of_doubling_fragments_is_measured_in_linear_time() {
        // 60 links, each spreading the next twice: 2^60 selections written
        // out. Measured once per fragment, it is refused at once.
        let mut q = String::from("{ ...F0 }");
        for i in 0..60 {
            q.push_str(&format!(" fragment F{i} on Query {{ ...F{} ...F{} }}", i + 1, i + 1));
        }
        q.push_str(" fragment F60 on Query { a }");
        let started = std::time::Instant::now();
        let err = refused(&q);
        assert_eq!(err.limit, "cost");
        assert!(err.value.unwrap() > 1 << 60, "{err:?}");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn limits_speak_in_their_order() {
        let tight = GraphqlArgs { max_tokens: 5, ..limits() };
        assert_eq!(check_document(&tight, "{ a b c d e f }").unwrap_err().limit, "tokens");
        let deep = format!("{}{}", "{ a ".repeat(50), "}".repeat(50));
        assert_eq!(refused(&deep).limit, "nesting");
        let deep = format!("{}{}", "{ a ".repeat(12), "}".repeat(12));
        assert_eq!(refused(&deep).limit, "depth");
        let aliases: String = (0..16).map(|i| format!("a{i}: a ")).collect();
        let err = refused(&format!("{{ {aliases} }}"));
        assert_eq!((err.limit, err.value, err.max), ("aliases", Some(16), Some(15)));
        // Aliases in a fragment count where it is spread.
        let err = refused(
            "{ ...F ...F } fragment F on Query { a: x b: x c: x d: x e: x f: x g: x h: x }",
        );
        assert_eq!((err.limit, err.value), ("aliases", Some(16)));
        let small = GraphqlArgs { max_cost: 3, ..limits() };
        assert_eq!(check_document(&small, "{ a b c d }").unwrap_err().limit, "cost");
        assert!(check_document(&limits(), "{ a { b } }").unwrap().is_some());
        assert!(check_document(&limits(), "{ a { ").unwrap().is_none(), "does not parse");
    }
}

/// Counts the lexical tokens of a GraphQL document, as the specification's
/// lexical grammar defines them (names, punctuators, numbers, strings and
/// block strings; whitespace, line ends, commas, comments and the BOM are
/// ignored), and the deepest nesting of `{`, `(` and `[`.
///
/// Written here rather than taken from a crate: async-graphql's parser has
/// no token limit and builds the whole tree first, the separate GraphQL
/// lexer crates pull in a parser stack of their own, and this needs only to
/// count, in one pass over the bytes, stopping at the limit. A text that is
/// not valid GraphQL is still counted (an unknown character is one token);
/// the parser reports what is wrong with it afterwards.
mod lexer {
    /// What a scan found.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Scan {
        /// Tokens, or `stop_after + 1` when there were more.
        pub tokens: usize,
        /// Deepest bracket nesting seen.
        pub max_nesting: usize,
    }

    /// Scans `src`, stopping once it has seen more than `stop_after` tokens.
    pub fn scan(src: &str, stop_after: usize) -> Scan {
        let b = src.as_bytes();
        let len = b.len();
        let (mut i, mut tokens, mut nesting, mut max_nesting) = (0, 0, 0usize, 0);
        while i < len {
            match b[i] {
                b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                    i += 1;
                    continue;
                }
                b'#' => {
                    while i < len && b[i] != b'\n' && b[i] != b'\r' {
                        i += 1;
                    }
                    continue;
                }
                // U+FEFF, the byte order mark, is ignored like whitespace.
                0xEF if b[i..].starts_with(&[0xEF, 0xBB, 0xBF]) => {
                    i += 3;
                    continue;
                }
                _ => {}
            }
            if tokens == stop_after {
                return Scan { tokens: tokens + 1, max_nesting };
            }
            tokens += 1;
            match b[i] {
                b'{' | b'(' | b'[' => {
                    nesting += 1;
                    max_nesting = max_nesting.max(nesting);
                    i += 1;
                }
                b'}' | b')' | b']' => {
                    nesting = nesting.saturating_sub(1);
                    i += 1;
                }
                b'.' if b[i..].starts_with(b"...") => i += 3,
                b'"' if b[i..].starts_with(b"\"\"\"") => {
                    i += 3;
                    while i < len {
                        if b[i..].starts_with(b"\\\"\"\"") {
                            i += 4;
                        } else if b[i..].starts_with(b"\"\"\"") {
                            i += 3;
                            break;
                        } else {
                            i += 1;
                        }
                    }
                }
                b'"' => {
                    i += 1;
                    while i < len {
                        match b[i] {
                            b'\\' => i += 2,
                            b'"' => {
                                i += 1;
                                break;
                            }
                            // An unterminated string ends at the line end.
                            b'\n' | b'\r' => break,
                            _ => i += 1,
                        }
                    }
                }
                b'_' | b'A'..=b'Z' | b'a'..=b'z' => {
                    i += 1;
                    while i < len && (b[i] == b'_' || b[i].is_ascii_alphanumeric()) {
                        i += 1;
                    }
                }
                b'-' | b'0'..=b'9' => {
                    i += 1;
                    while i < len {
                        match b[i] {
                            b'0'..=b'9' | b'.' | b'e' | b'E' => i += 1,
                            b'+' | b'-' if matches!(b[i - 1], b'e' | b'E') => i += 1,
                            _ => break,
                        }
                    }
                }
                // Any other character (a punctuator or something invalid)
                // is one token; step over all of its UTF-8 bytes.
                _ => {
                    i += src.get(i..).and_then(|s| s.chars().next()).map_or(1, char::len_utf8);
                }
            }
        }
        Scan { tokens, max_nesting }
    }

    #[cfg(test)]
    mod tests {
        use super::scan;

        fn count(src: &str) -> usize {
            scan(src, usize::MAX - 1).tokens
        }

        #[test]
        fn counts_the_tokens_of_the_lexical_grammar() {
            assert_eq!(count(""), 0);
            assert_eq!(count("  ,,\n\t# a comment { with [ brackets\n"), 0);
            // { a ( b : 1 ) }
            assert_eq!(count("{ a(b: 1) }"), 8);
            // query Q ( $ v : [ Int ! ] = [ 1 -2.5e+3 ] ) { ... on X { f } }
            assert_eq!(count("query Q($v: [Int!] = [1, -2.5e+3]) { ... on X { f } }"), 24);
            assert_eq!(count(r#"{ f(s: "a \" { b", t: """ x \""" { """) }"#), 11);
            assert_eq!(count("{ f @include(if: true) }"), 10);
            assert_eq!(count("\u{feff}{ é }"), 3);
        }

        #[test]
        fn stops_past_the_limit_and_measures_nesting() {
            let deep = "{ a ".repeat(50) + &"}".repeat(50);
            assert_eq!(scan(&deep, 10), super::Scan { tokens: 11, max_nesting: 5 });
            assert_eq!(scan(&deep, 1000).max_nesting, 50);
            // Brackets inside strings and comments do not nest.
            assert_eq!(scan("{ f(s: \"{{{[[[\") # (((\n }", 100).max_nesting, 2);
        }
    }
}

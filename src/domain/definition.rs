//! A protocol definition as a board writes it, checked whole before it is
//! published: every problem at once, each with where it is, a field path
//! (`routes[1].stages[2].time_limit_working_days`, indexes from 0 in the
//! order written) and the line and column (from 1) in the text.
//!
//! The rules are the built-ins' own ([`parse_protocol`]); this module only
//! locates what they report. It reads the text a second time as a spanned
//! TOML tree (`toml::de::DeTable`, the same parser's) and walks it: a
//! problem names routes, stages and milestones by id and key, which the
//! tree turns into indexes and a position. A path the text does not have
//! (a missing `time_limit_working_days`) is placed at the nearest table
//! that it does have.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::protocol::{Problem, Protocol, ProtocolError, parse_protocol};

/// One problem of a definition, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// What is wrong, in words.
    pub message: String,
    /// The field path, e.g. `routes[0].stages[2].allow.escalate`; empty
    /// when the problem is the document's as a whole.
    pub path: String,
    /// Line in the text, from 1; none when the parser gave no position.
    pub line: Option<u32>,
    /// Column (in characters) in the line, from 1.
    pub column: Option<u32>,
}

/// The outcome of checking a definition.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The protocol, when the definition has no problem.
    pub protocol: Option<Protocol>,
    /// Every problem, in the order the rules report them.
    pub problems: Vec<Located>,
}

/// Checks `text` as a protocol definition, with the validator of the
/// built-in protocols.
pub fn check(text: &str) -> Checked {
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = position(text, e.span());
            let problem =
                Located { message: first_line(e.message()), path: String::new(), line, column };
            return Checked { protocol: None, problems: vec![problem] };
        }
    };
    let tree = Node::Table(doc.get_ref());
    if let Err(e) = toml::from_str::<Protocol>(text) {
        let path = e.span().map(|s| path_at(&tree, s.start)).unwrap_or_default();
        let (line, column) = position(text, e.span());
        let problem =
            Located { message: first_line(e.message()), path: render(&path), line, column };
        return Checked { protocol: None, problems: vec![problem] };
    }
    match parse_protocol(text) {
        Ok(protocol) => Checked { protocol: Some(protocol), problems: Vec::new() },
        Err(ProtocolError::Invalid { problems, .. }) => {
            let problems = problems
                .iter()
                .map(|problem| {
                    let path = problem_path(problem, &tree);
                    let span = span_of(&tree, &path, doc.span());
                    let (line, column) = position(text, Some(span));
                    Located { message: problem.to_string(), path: render(&path), line, column }
                })
                .collect();
            Checked { protocol: None, problems }
        }
        Err(other) => Checked {
            protocol: None,
            problems: vec![Located {
                message: other.to_string(),
                path: String::new(),
                line: None,
                column: None,
            }],
        },
    }
}

fn first_line(message: &str) -> String {
    message.trim().lines().next().unwrap_or_default().to_owned()
}

/// The 1-based line and column of the start of `span` in `text`.
fn position(text: &str, span: Option<Range<usize>>) -> (Option<u32>, Option<u32>) {
    let Some(span) = span else { return (None, None) };
    let at = span.start.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (u32::try_from(line).ok(), u32::try_from(column).ok())
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_owned())
}

fn render(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A node of the spanned tree, borrowed.
#[derive(Clone, Copy)]
enum Node<'t, 'i> {
    Table(&'t DeTable<'i>),
    Array(&'t [Spanned<DeValue<'i>>]),
    Leaf,
}

impl<'t, 'i> Node<'t, 'i> {
    fn of(value: &'t DeValue<'i>) -> Self {
        match value {
            DeValue::Table(t) => Node::Table(t),
            DeValue::Array(a) => Node::Array(a),
            _ => Node::Leaf,
        }
    }

    /// The child at `seg`, with its span.
    fn child(self, seg: &Seg) -> Option<(Node<'t, 'i>, Range<usize>)> {
        match (self, seg) {
            (Node::Table(t), Seg::Key(k)) => {
                t.get(k.as_str()).map(|v| (Node::of(v.get_ref()), v.span()))
            }
            (Node::Array(a), Seg::Index(i)) => a.get(*i).map(|v| (Node::of(v.get_ref()), v.span())),
            _ => None,
        }
    }

    fn at(self, path: &[Seg]) -> Option<Node<'t, 'i>> {
        let mut node = self;
        for seg in path {
            node = node.child(seg)?.0;
        }
        Some(node)
    }

    fn str_field(self, name: &str) -> Option<&'t str> {
        match self {
            Node::Table(t) => match t.get(name).map(|v| v.get_ref()) {
                Some(DeValue::String(s)) => Some(s.as_ref()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The index of the `nth` (from 0) element of the array at `path` + `array`
/// whose `field` is `value`; `path` + `array` + index.
fn find(
    tree: &Node<'_, '_>,
    path: &[Seg],
    array: &str,
    field: &str,
    value: &str,
    nth: usize,
) -> Vec<Seg> {
    let mut out = path.to_vec();
    out.push(key(array));
    if let Some(Node::Array(items)) = tree.at(&out) {
        let hit = items
            .iter()
            .enumerate()
            .filter(|(_, v)| Node::of(v.get_ref()).str_field(field) == Some(value))
            .map(|(i, _)| i)
            .nth(nth);
        if let Some(i) = hit {
            out.push(Seg::Index(i));
        }
    }
    out
}

fn route(tree: &Node<'_, '_>, id: &str) -> Vec<Seg> {
    find(tree, &[], "routes", "id", id, 0)
}

fn stage(tree: &Node<'_, '_>, route_id: &str, stage_key: &str) -> Vec<Seg> {
    find(tree, &route(tree, route_id), "stages", "key", stage_key, 0)
}

fn then(mut path: Vec<Seg>, rest: &str) -> Vec<Seg> {
    path.extend(rest.split('.').filter(|s| !s.is_empty()).map(key));
    path
}

/// The first element (path) of any stage's `array` whose `field` is
/// `value`, across every route.
fn in_any_stage(tree: &Node<'_, '_>, array: Option<&str>, field: &str, value: &str) -> Vec<Seg> {
    let Some(Node::Array(routes)) = tree.at(&[key("routes")]) else { return vec![key("routes")] };
    for (r, route) in routes.iter().enumerate() {
        let Some(Node::Array(stages)) =
            Node::of(route.get_ref()).child(&key("stages")).map(|c| c.0)
        else {
            continue;
        };
        for s in 0..stages.len() {
            let at = vec![key("routes"), Seg::Index(r), key("stages"), Seg::Index(s)];
            let found = match array {
                None => (tree.at(&at).and_then(|n| n.str_field(field)) == Some(value))
                    .then(|| at.clone()),
                Some(array) => {
                    let path = find(tree, &at, array, field, value, 0);
                    matches!(path.last(), Some(Seg::Index(_))).then_some(path)
                }
            };
            if let Some(path) = found {
                return path;
            }
        }
    }
    vec![key("routes")]
}

/// The path of a `field` as the rules word it, e.g. `route main stage
/// stage-1 milestone form roles`, `category other name`, `rules.x.text`.
fn field_path(tree: &Node<'_, '_>, field: &str) -> Vec<Seg> {
    let words: Vec<&str> = field.split_whitespace().collect();
    let mut path: Vec<Seg> = Vec::new();
    let mut i = 0;
    let next = |i: usize| words.get(i + 1).copied().unwrap_or("");
    while i < words.len() {
        let w = words[i];
        match w {
            "route" if path.is_empty() => {
                path = route(tree, next(i));
                i += 2;
            }
            "stage" => {
                path = find(tree, &path, "stages", "key", next(i), 0);
                i += 2;
            }
            "milestone" => {
                path = find(tree, &path, "milestones", "key", next(i), 0);
                i += 2;
            }
            "participant" => {
                path = find(tree, &path, "participants", "agency_kind", next(i), 0);
                i += 2;
            }
            "category" if path.is_empty() => {
                path = find(tree, &path, "categories", "key", next(i), 0);
                i += 2;
            }
            "exclusion" if path.is_empty() => {
                path = find(tree, &path, "exclusions", "kind", next(i), 0);
                i += 2;
            }
            // `record text`: the record whose text is empty.
            "record" if next(i) == "text" => {
                path = find(tree, &path, "records", "text", "", 0);
                path.push(key("text"));
                i += 2;
            }
            // `question heading`: the group whose heading is empty.
            "question" if next(i) == "heading" => {
                path = find(tree, &path, "questions", "heading", "", 0);
                path.push(key("heading"));
                i += 2;
            }
            // `question`: an empty item of a group.
            "question" => {
                path = empty_question(tree, path);
                i += 1;
            }
            other => {
                path = then(path, other);
                i += 1;
            }
        }
    }
    path
}

fn empty_question(tree: &Node<'_, '_>, stage: Vec<Seg>) -> Vec<Seg> {
    let mut groups = stage;
    groups.push(key("questions"));
    if let Some(Node::Array(list)) = tree.at(&groups) {
        for (g, group) in list.iter().enumerate() {
            if let Some((Node::Array(items), _)) = Node::of(group.get_ref()).child(&key("items"))
                && let Some(n) = items
                    .iter()
                    .position(|item| matches!(item.get_ref(), DeValue::String(s) if s.is_empty()))
            {
                let mut path = groups.clone();
                path.extend([Seg::Index(g), key("items"), Seg::Index(n)]);
                return path;
            }
        }
    }
    groups
}

/// Where in the definition `problem` is.
fn problem_path(problem: &Problem, tree: &Node<'_, '_>) -> Vec<Seg> {
    use Problem as P;
    let allow = |route: &str, st: &str, action: &str| {
        then(stage(tree, route, st), &format!("allow.{action}"))
    };
    match problem {
        P::Empty { field }
        | P::RepeatedRole { field, .. }
        | P::NeverApplies { field, .. }
        | P::ZeroDays { field }
        | P::Malformed { field, .. } => field_path(tree, field),
        P::BadKey { what, value } => match *what {
            "protocol id" => vec![key("id")],
            "route id" => then(route(tree, value), "id"),
            "stage key" => then(in_any_stage(tree, None, "key", value), "key"),
            "category key" => then(find(tree, &[], "categories", "key", value, 0), "key"),
            "milestone key" => then(in_any_stage(tree, Some("milestones"), "key", value), "key"),
            _ => Vec::new(),
        },
        P::VersionZero => vec![key("version")],
        P::NoRoutes => vec![key("routes")],
        P::DuplicateRoute { route } => then(find(tree, &[], "routes", "id", route, 1), "id"),
        P::NoStages { route: r } => then(route(tree, r), "stages"),
        P::DuplicateStage { route: r, stage } => {
            then(find(tree, &route(tree, r), "stages", "key", stage, 1), "key")
        }
        P::NumberNotAscending { route, stage: s } => then(stage(tree, route, s), "number"),
        P::FirstStageNotEntry { route: r } => {
            let mut path = route(tree, r);
            path.extend([key("stages"), Seg::Index(0), key("entry")]);
            path
        }
        P::EntryWithoutRaise { route, stage } | P::RaiseAtNonEntry { route, stage } => {
            allow(route, stage, "raise")
        }
        P::StartHigherAtEntry { route, stage } => allow(route, stage, "start_higher"),
        P::NoEscalator { route, stage } | P::EscalateFromLast { route, stage } => {
            allow(route, stage, "escalate")
        }
        P::NothingToSkip { route, stage } => allow(route, stage, "skip_stage"),
        P::NoResolver { route, stage } => allow(route, stage, "resolve"),
        P::NoRecorder { route, stage } => allow(route, stage, "add_record"),
        P::ReportNotAvailable { route, stage } => allow(route, stage, "read_report"),
        P::NoLeadRoles { route, stage: s, side } => {
            then(stage(tree, route, s), &format!("{side}.roles"))
        }
        P::RepeatedAgencyKind { route: r, .. } => then(route(tree, r), "receiving_agency_kinds"),
        P::TimeLimitTooShort { route, stage: s } => {
            then(stage(tree, route, s), "time_limit_working_days")
        }
        P::RecordOfUnknownStage { route, stage: s, of_stage } => {
            then(find(tree, &stage(tree, route, s), "records", "of_stage", of_stage, 0), "of_stage")
        }
        P::DuplicateCategory { key: k } => then(find(tree, &[], "categories", "key", k, 1), "key"),
        P::NoOtherCategory => vec![key("categories")],
        P::DuplicateExclusion { kind } => {
            then(find(tree, &[], "exclusions", "kind", kind.as_str(), 1), "kind")
        }
        P::RuleUnknownRoute { rule, .. } => vec![key("rules"), key(rule), key("route")],
        P::RuleUnknownStage { rule, stage, .. } => {
            let at = vec![key("rules"), key(rule)];
            let field = ["to_stage", "restart_stage", "stage"]
                .into_iter()
                .find(|f| tree.at(&at).and_then(|n| n.str_field(f)) == Some(stage.as_str()))
                .unwrap_or("stage");
            then(at, field)
        }
        P::RuleOutOfRange { field, .. } => then(Vec::new(), field),
    }
}

/// The span of the deepest node of `path` the text has (the document's
/// when it has none of it).
fn span_of(tree: &Node<'_, '_>, path: &[Seg], whole: Range<usize>) -> Range<usize> {
    let mut node = *tree;
    let mut span = whole;
    for seg in path {
        match node.child(seg) {
            Some((child, s)) => {
                node = child;
                span = s;
            }
            None => break,
        }
    }
    span
}

/// The path of the deepest node at `offset`: the one whose span (its
/// key's or its value's) holds it, else the last one starting before it
/// (an array of tables has the span of its header only, so what its
/// tables hold lies after it).
fn path_at(tree: &Node<'_, '_>, offset: usize) -> Vec<Seg> {
    let mut path = Vec::new();
    let mut node = *tree;
    loop {
        let children: Vec<(Seg, Range<usize>, Node<'_, '_>)> = match node {
            Node::Table(t) => t
                .iter()
                .map(|(k, v)| {
                    let (ks, vs) = (k.span(), v.span());
                    (
                        key(k.get_ref()),
                        ks.start.min(vs.start)..ks.end.max(vs.end),
                        Node::of(v.get_ref()),
                    )
                })
                .collect(),
            Node::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Index(i), v.span(), Node::of(v.get_ref())))
                .collect(),
            Node::Leaf => break,
        };
        let holding = children.iter().find(|(_, span, _)| span.contains(&offset));
        let before = || {
            children
                .iter()
                .filter(|(_, span, child)| span.start <= offset && !matches!(child, Node::Leaf))
                .max_by_key(|(_, span, _)| span.start)
        };
        match holding.or_else(before) {
            Some((seg, _, child)) => {
                path.push(seg.clone());
                node = *child;
            }
            None => break,
        }
    }
    path
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::protocol::builtin_texts;

    fn western_bay() -> &'static str {
        builtin_texts()[0].1
    }

    /// The line (from 1) of the `n`th (from 0) line of `text` containing `needle`.
    fn line_of(text: &str, needle: &str, n: usize) -> u32 {
        let i =
            text.lines().enumerate().filter(|(_, l)| l.contains(needle)).nth(n).expect(needle).0;
        u32::try_from(i + 1).unwrap()
    }

    #[track_caller]
    fn check_problems(name: &str, text: &str, expected: &[(&str, u32)]) {
        let got = check(text);
        assert!(got.protocol.is_none(), "{name}: no protocol when there are problems");
        let got: Vec<(String, Option<u32>)> =
            got.problems.iter().map(|p| (p.path.clone(), p.line)).collect();
        let want: Vec<(String, Option<u32>)> =
            expected.iter().map(|(p, l)| ((*p).to_owned(), Some(*l))).collect();
        assert_eq!(got, want, "{name}");
    }

    #[test]
    fn every_built_in_definition_checks_clean() {
        for (file, text) in builtin_texts() {
            let got = check(text);
            assert_eq!(got.problems, Vec::new(), "{file}");
            assert!(got.protocol.is_some(), "{file}");
        }
    }

    /// Western Bay with five mistakes in different places.
    fn broken() -> String {
        western_bay()
            .replacen("version = 1", "version = 0", 1)
            .replacen("key = \"other\"", "key = \"Other\"", 1)
            .replacen("key = \"stage-1\"\nnumber = 1", "key = \"stage-1\"\nnumber = 0", 1)
            .replacen("key = \"stage-2\"\n", "key = \"stage-2\"\ntime_limit_working_days = 0\n", 1)
            .replacen("escalate = []", "escalate = [\"board_chair\"]", 1)
    }

    #[test]
    fn problems_are_located_by_path_and_line() {
        let text = broken();
        let got = check(&text);
        assert!(got.protocol.is_none());
        let rows: [(&str, u32); 6] = [
            ("version", line_of(&text, "version = 0", 0)),
            ("categories[7].key", line_of(&text, "key = \"Other\"", 0)),
            ("categories", line_of(&text, "categories = [", 0)),
            ("routes[0].stages[1].number", line_of(&text, "number = 0", 1)),
            (
                "routes[0].stages[2].time_limit_working_days",
                line_of(&text, "time_limit_working_days = 0", 0),
            ),
            (
                "routes[0].stages[4].allow.escalate",
                line_of(&text, "escalate = [\"board_chair\"]", 0),
            ),
        ];
        let paths: Vec<&str> = got.problems.iter().map(|p| p.path.as_str()).collect();
        for (path, line) in rows {
            let p = got
                .problems
                .iter()
                .find(|p| p.path == path)
                .unwrap_or_else(|| panic!("no problem at {path}; got {paths:?}"));
            assert_eq!(p.line, Some(line), "{path}: {}", p.message);
            assert!(p.column.is_some_and(|c| c >= 1), "{path}");
        }
    }

    #[test]
    fn one_problem_alone_is_the_only_one_listed() {
        let text = western_bay().replacen("version = 1", "version = 0", 1);
        check_problems("version zero", &text, &[("version", line_of(&text, "version = 0", 0))]);
        let text = western_bay().replacen("key = \"stage-3\"", "key = \"Stage 3\"", 1);
        let at = line_of(&text, "key = \"Stage 3\"", 0);
        let got = check(&text);
        let first = &got.problems[0];
        assert_eq!((first.path.as_str(), first.line), ("routes[0].stages[3].key", Some(at)));
    }

    #[test]
    fn a_syntax_error_gives_its_line_and_column() {
        let text = "id = \"x\"\nversion = = 1\n";
        let got = check(text);
        assert_eq!(got.problems.len(), 1);
        assert_eq!(got.problems[0].line, Some(2));
        assert_eq!(got.problems[0].path, "");
        assert!(got.problems[0].column.unwrap() >= 9);
    }

    #[test]
    fn a_shape_error_gives_its_path() {
        let text = western_bay().replacen(
            "key = \"stage-2\"\n",
            "key = \"stage-2\"\ntime_limit_working_days = \"ten\"\n",
            1,
        );
        let got = check(&text);
        assert_eq!(got.problems.len(), 1, "{:?}", got.problems);
        assert_eq!(got.problems[0].path, "routes[0].stages[2].time_limit_working_days");
        assert_eq!(got.problems[0].line, Some(line_of(&text, "\"ten\"", 0)));
    }
}

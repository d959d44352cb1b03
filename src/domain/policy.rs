//! The role-by-stage policy: may this role take this action on a case at
//! this stage of this protocol?
//!
//! The answer is protocol data (each stage's `[allow]` table, and the
//! protocol's `read_statistics`); [`decide`] only looks it up, so the same
//! function serves the mutations and a case's `viewerCan`. The expected
//! answers for every built-in protocol are kept in
//! `protocols/policy.matrix`, and a test holds the two equal.
//!
//! Conventions the callers keep (documented in `protocols/README.md`):
//! a skip from stage S to stage T needs `SkipStage` at S *and*
//! `StartHigher` at T; both need an immediate-risk justification, which is
//! the caller's to check.

use std::fmt;

use crate::domain::protocol::{Problem, Protocol, Route};
use crate::domain::role::Role;

/// Something a role may do to or with a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Open a case at this stage as its first stage, in the normal way
    /// (only at a route's entry stages).
    Raise,
    /// Add a record (discussion, meeting, letter, analysis...) to a case at
    /// this stage.
    AddRecord,
    /// Record an agency's view of the dispute at this stage.
    RecordView,
    /// Agree an action with an owner and a due date at this stage.
    AgreeAction,
    /// Move a case at this stage one stage up.
    Escalate,
    /// For the receiving side's lead: acknowledge a case at this stage.
    Accept,
    /// Resolve a case at this stage.
    Resolve,
    /// Withdraw a case at this stage (the raising side's decision).
    Withdraw,
    /// Open a case directly at this stage, which is not an entry stage,
    /// with an immediate-risk justification; also the target-side check of
    /// a skip.
    StartHigher,
    /// Move a case at this stage more than one stage up (immediate risk).
    SkipStage,
    /// Read the audit trail of a case at this stage.
    ReadAuditTrail,
    /// Read the Resolution of Professional Differences Report of a case at
    /// this stage.
    ReadReport,
    /// Read the partnership's statistics; decided per protocol, not per
    /// stage.
    ReadStatistics,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 13] = [
        Action::Raise,
        Action::AddRecord,
        Action::RecordView,
        Action::AgreeAction,
        Action::Escalate,
        Action::Accept,
        Action::Resolve,
        Action::Withdraw,
        Action::StartHigher,
        Action::SkipStage,
        Action::ReadAuditTrail,
        Action::ReadReport,
        Action::ReadStatistics,
    ];

    /// The snake_case name, as in the data files, e.g. `"start_higher"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Raise => "raise",
            Action::AddRecord => "add_record",
            Action::RecordView => "record_view",
            Action::AgreeAction => "agree_action",
            Action::Escalate => "escalate",
            Action::Accept => "accept",
            Action::Resolve => "resolve",
            Action::Withdraw => "withdraw",
            Action::StartHigher => "start_higher",
            Action::SkipStage => "skip_stage",
            Action::ReadAuditTrail => "read_audit_trail",
            Action::ReadReport => "read_report",
            Action::ReadStatistics => "read_statistics",
        }
    }

    /// The action named `s` exactly, if any.
    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side of the dispute may take an action at a stage: protocol data
/// beside the roles (a stage's `sides` table), so that "the safeguarding
/// lead for the agency that raised the professional difference will
/// contact…" is a rule, not a hope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Only the agency that raised the case.
    Raising,
    /// Only the agency that received it.
    Receiving,
    /// Either of the two.
    Either,
}

impl Side {
    /// The name, as in the data files and in `extensions.allowedSides`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Raising => "raising",
            Side::Receiving => "receiving",
            Side::Either => "either",
        }
    }

    /// The name `s` exactly, if any.
    pub fn parse(s: &str) -> Option<Side> {
        [Side::Raising, Side::Receiving, Side::Either].into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stage's `sides` table: the side that may take each action on a case
/// there. An action left out takes its default: the raising side
/// withdraws, the receiving side accepts, either side does the rest.
/// Actions that are not taken by a side of an existing case (raising,
/// starting higher, reading) have no entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSides {
    add_record: Option<Side>,
    record_view: Option<Side>,
    agree_action: Option<Side>,
    escalate: Option<Side>,
    skip_stage: Option<Side>,
    accept: Option<Side>,
    resolve: Option<Side>,
    withdraw: Option<Side>,
}

impl StageSides {
    /// The side that may take `action` here; `None` for an action no side
    /// rule applies to.
    pub fn side(&self, action: Action) -> Option<Side> {
        let (stated, default) = match action {
            Action::AddRecord => (self.add_record, Side::Either),
            Action::RecordView => (self.record_view, Side::Either),
            Action::AgreeAction => (self.agree_action, Side::Either),
            Action::Escalate => (self.escalate, Side::Either),
            Action::SkipStage => (self.skip_stage, Side::Either),
            Action::Accept => (self.accept, Side::Receiving),
            Action::Resolve => (self.resolve, Side::Either),
            Action::Withdraw => (self.withdraw, Side::Raising),
            Action::Raise
            | Action::StartHigher
            | Action::ReadAuditTrail
            | Action::ReadReport
            | Action::ReadStatistics => return None,
        };
        Some(stated.unwrap_or(default))
    }
}

/// Which side may take `action` on a case at `stage` of `route`: `None`
/// when no side rule applies (or the stage is unknown).
pub fn side(protocol: &Protocol, route: &str, stage: &str, action: Action) -> Option<Side> {
    protocol.stage(route, stage)?.sides().side(action)
}

/// Why an entry of a stage's `[allow]` table can never apply, whatever the
/// case: the protocol validator reports such an entry
/// ([`crate::domain::protocol::Problem::NeverApplies`]), so that no list
/// (and no `viewerCan` flag drawn from it) promises what the mutations
/// refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NeverApplies {
    /// The action is only ever one of the case's two agencies'
    /// ([`crate::domain::access::needs_a_party`]: recording a view), and the
    /// role acts for the board, for no agency ([`Role::acts_for_board`]).
    ActsForNoParty,
    /// A skip from the stage lands two or more stages above, which needs
    /// `start_higher` for the role at the stage it lands on (see the module
    /// documentation); no stage that far up lists the role.
    SkipLandsNowhere,
}

impl fmt::Display for NeverApplies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NeverApplies::ActsForNoParty => {
                "the action is one of the case's two agencies', and the role acts for the board"
            }
            NeverApplies::SkipLandsNowhere => {
                "a skip needs start_higher for the role at a stage two or more above, and none lists it"
            }
        })
    }
}

/// Reports every entry of `route`'s `[allow]` tables that can never apply
/// (see [`NeverApplies`]). Part of the protocol validation.
pub(crate) fn never_applies(route: &Route, p: &mut Vec<Problem>) {
    let stages = route.stages();
    for (i, stage) in stages.iter().enumerate() {
        let at =
            |action: Action| format!("route {} stage {} allow.{action}", route.id(), stage.key());
        let allow = stage.policy();
        for action in Action::ALL {
            if !crate::domain::access::needs_a_party(action) {
                continue;
            }
            for &role in allow.roles(action) {
                if role.acts_for_board() {
                    p.push(Problem::NeverApplies {
                        field: at(action),
                        role,
                        why: NeverApplies::ActsForNoParty,
                    });
                }
            }
        }
        // With fewer than two stages above, the skip itself is the problem
        // (`Problem::NothingToSkip`).
        let landings = stages.get(i + 2..).unwrap_or_default();
        if landings.is_empty() {
            continue;
        }
        for &role in allow.roles(Action::SkipStage) {
            if !landings.iter().any(|t| t.policy().roles(Action::StartHigher).contains(&role)) {
                p.push(Problem::NeverApplies {
                    field: at(Action::SkipStage),
                    role,
                    why: NeverApplies::SkipLandsNowhere,
                });
            }
        }
    }
}

/// The answer of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The role may take the action.
    Allowed,
    /// The role may not; `allowed_roles` are those that may (sorted, maybe
    /// empty), so an error message can name them.
    Denied {
        /// The roles that may take the action here.
        allowed_roles: Vec<Role>,
    },
}

impl Decision {
    /// Whether the decision is [`Decision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }
}

/// The roles that may take `action` at stage `stage` of route `route`
/// (sorted, without repeats; empty for an unknown route or stage).
pub fn allowed_roles(protocol: &Protocol, route: &str, stage: &str, action: Action) -> Vec<Role> {
    let roles = if action == Action::ReadStatistics {
        protocol.read_statistics()
    } else {
        match protocol.stage(route, stage) {
            Some(stage) => stage.policy().roles(action),
            None => return Vec::new(),
        }
    };
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    roles
}

/// May `role` take `action` on a case at stage `stage` of route `route` of
/// `protocol`?
///
/// An unknown route or stage is denied with an empty list.
/// `ReadStatistics` is partnership-wide: it ignores `route` and `stage`.
pub fn decide(
    protocol: &Protocol,
    route: &str,
    stage: &str,
    role: Role,
    action: Action,
) -> Decision {
    let roles = if action == Action::ReadStatistics {
        protocol.read_statistics()
    } else {
        match protocol.stage(route, stage) {
            Some(stage) => stage.policy().roles(action),
            None => {
                return Decision::Denied { allowed_roles: Vec::new() };
            }
        }
    };
    if roles.contains(&role) {
        Decision::Allowed
    } else {
        let mut allowed_roles = roles.to_vec();
        allowed_roles.sort();
        allowed_roles.dedup();
        Decision::Denied { allowed_roles }
    }
}

/// One row of a protocol's policy table: what `decide` and `side` answer
/// for one action at one stage, for every role; `policy.matrix` is these
/// rows for the built-in protocols, and [`render_table`] writes them in its
/// format (a test holds the two equal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRow {
    /// The route id; `*` for the protocol-wide `read_statistics`.
    pub route: String,
    /// The stage key; `*` for `read_statistics`.
    pub stage: String,
    /// The action.
    pub action: Action,
    /// Per role of [`Role::ALL`], in that order: whether it may.
    pub allowed: [bool; 5],
    /// The side that may, for an action taken by a side of the case.
    pub side: Option<Side>,
}

impl PolicyRow {
    /// The roles that may, in [`Role::ALL`] order.
    pub fn roles(&self) -> Vec<Role> {
        Role::ALL.into_iter().zip(self.allowed).filter_map(|(r, y)| y.then_some(r)).collect()
    }

    /// The row as a line of `policy.matrix`: the action, a mark per role
    /// (`Y` or `.`), then the side, e.g. `escalate Y Y Y Y . raising`.
    pub fn line(&self) -> String {
        let mut line = format!("{:<16}", self.action.as_str());
        for (i, y) in self.allowed.iter().enumerate() {
            line.push(' ');
            line.push(if *y { 'Y' } else { '.' });
            if i + 1 < self.allowed.len() {
                line.push(' ');
            }
        }
        if let Some(side) = self.side {
            line.push_str("  ");
            line.push_str(side.as_str());
        }
        line
    }
}

/// The policy table `protocol` implies: its `read_statistics` row, then
/// every action at every stage of every route, in file order.
pub fn table(protocol: &Protocol) -> Vec<PolicyRow> {
    let answer = |route: &str, stage: &str, action: Action| {
        Role::ALL.map(|role| decide(protocol, route, stage, role, action).is_allowed())
    };
    let mut rows = Vec::new();
    let (route, stage) = protocol
        .routes()
        .first()
        .and_then(|r| r.stages().first().map(|s| (r.id(), s.key())))
        .unwrap_or(("*", "*"));
    rows.push(PolicyRow {
        route: "*".to_owned(),
        stage: "*".to_owned(),
        action: Action::ReadStatistics,
        allowed: answer(route, stage, Action::ReadStatistics),
        side: None,
    });
    for r in protocol.routes() {
        for s in r.stages() {
            for action in Action::ALL {
                if action == Action::ReadStatistics {
                    continue;
                }
                rows.push(PolicyRow {
                    route: r.id().to_owned(),
                    stage: s.key().to_owned(),
                    action,
                    allowed: answer(r.id(), s.key(), action),
                    side: side(protocol, r.id(), s.key(), action),
                });
            }
        }
    }
    rows
}

/// `protocol`'s policy table in the format of `policy.matrix`: a
/// `[protocol route stage]` block per stage and one `[protocol * *]` for
/// `read_statistics`.
pub fn render_table(protocol: &Protocol) -> String {
    let mut out = format!("#{:15}pr ma sl hs bc\n", "");
    let mut block = None;
    for row in table(protocol) {
        let here = (row.route.clone(), row.stage.clone());
        if block.as_ref() != Some(&here) {
            if block.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("[{} {} {}]\n", protocol.id(), row.route, row.stage));
            block = Some(here);
        }
        out.push_str(row.line().trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::protocol::{builtin, parse_protocol};

    const MATRIX: &str = include_str!("protocols/policy.matrix");

    /// (protocol, route, stage, action) -> allowed, per role in `Role::ALL`
    /// order, and the side that may (for actions taken by a side).
    /// `read_statistics` is keyed with route and stage `*`.
    type Matrix = BTreeMap<(String, String, String, Action), Row>;

    /// One line of the matrix.
    type Row = ([bool; 5], Option<Side>);

    /// Whether an action is taken by a side of the case (its line names one).
    fn sided(action: Action) -> bool {
        StageSides::default().side(action).is_some()
    }

    /// Parses the matrix file; every malformed line is an error.
    fn parse_matrix(text: &str) -> Result<Matrix, Vec<String>> {
        let mut matrix = Matrix::new();
        let mut errors = Vec::new();
        let mut block: Option<(String, String, String)> = None;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                let parts: Vec<&str> = inner.split_whitespace().collect();
                block = match parts[..] {
                    [p, r, s] => Some((p.to_owned(), r.to_owned(), s.to_owned())),
                    _ => {
                        errors.push(format!("line {n}: a block is [protocol route stage]"));
                        None
                    }
                };
                continue;
            }
            let Some((p, r, s)) = &block else {
                errors.push(format!("line {n}: a row outside any block"));
                continue;
            };
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let Some(action) = tokens.first().and_then(|t| Action::parse(t)) else {
                errors.push(format!("line {n}: unknown action in {line:?}"));
                continue;
            };
            let protocol_wide = r == "*" && s == "*";
            if protocol_wide != (action == Action::ReadStatistics) {
                errors.push(format!(
                    "line {n}: read_statistics belongs in [{p} * *] blocks, and only it"
                ));
                continue;
            }
            let mut marks = &tokens[1..];
            let mut side = None;
            if sided(action) {
                side = marks.last().and_then(|t| Side::parse(t));
                if side.is_none() {
                    errors.push(format!("line {n}: {action} ends with the side that may"));
                    continue;
                }
                marks = &marks[..marks.len() - 1];
            }
            let mut row = [false; 5];
            if marks.len() != row.len() {
                errors.push(format!("line {n}: expected 5 marks, got {}", marks.len()));
                continue;
            }
            for (cell, mark) in row.iter_mut().zip(marks) {
                match *mark {
                    "Y" => *cell = true,
                    "." => *cell = false,
                    other => errors.push(format!("line {n}: mark {other:?} is not Y or .")),
                }
            }
            let key = (p.clone(), r.clone(), s.clone(), action);
            if matrix.insert(key, (row, side)).is_some() {
                errors.push(format!("line {n}: [{p} {r} {s}] {action} appears twice"));
            }
        }
        if errors.is_empty() { Ok(matrix) } else { Err(errors) }
    }

    /// Records a failure for each role where `decide` disagrees with the
    /// matrix row, and if a denial does not name exactly the roles `decide`
    /// allows.
    #[track_caller]
    fn check(
        failures: &mut Vec<String>,
        protocol: &Protocol,
        (route, stage): (&str, &str),
        action: Action,
        (expected, expected_side): Row,
    ) {
        if route != "*" {
            let got = side(protocol, route, stage, action);
            if got != expected_side {
                failures.push(format!(
                    "{} {route} {stage} {action}: matrix says side {expected_side:?}, the data {got:?}",
                    protocol.id(),
                ));
            }
        }
        let decisions = Role::ALL.map(|role| decide(protocol, route, stage, role, action));
        let allowed: Vec<Role> = Role::ALL
            .into_iter()
            .zip(&decisions)
            .filter_map(|(role, d)| d.is_allowed().then_some(role))
            .collect();
        for ((role, want), got) in Role::ALL.into_iter().zip(expected).zip(&decisions) {
            if got.is_allowed() != want {
                failures.push(format!(
                    "{} {route} {stage} {action} {role}: matrix says {}, decide says {got:?}",
                    protocol.id(),
                    if want { "Y" } else { "." },
                ));
            }
            if let Decision::Denied { allowed_roles } = got
                && *allowed_roles != allowed
            {
                failures.push(format!(
                    "{} {route} {stage} {action} {role}: denial names {allowed_roles:?}, but {allowed:?} are allowed",
                    protocol.id(),
                ));
            }
        }
    }

    #[test]
    fn the_rendered_table_is_the_matrix() {
        let protocols = builtin().unwrap();
        let rendered: String = protocols.iter().map(render_table).collect::<Vec<_>>().join("\n");
        let ours = parse_matrix(&rendered).unwrap();
        let file = parse_matrix(MATRIX).unwrap();
        assert_eq!(ours, file);
        assert!(mismatches(&protocols, &rendered).is_empty());
        for p in &protocols {
            let rows = table(p);
            let stages: usize = p.routes().iter().map(|r| r.stages().len()).sum();
            assert_eq!(rows.len(), 1 + stages * (Action::ALL.len() - 1), "{}", p.id());
        }
    }

    /// Every disagreement between the protocols and the matrix text, and
    /// every combination the matrix misses or invents.
    fn mismatches(protocols: &[Protocol], matrix_text: &str) -> Vec<String> {
        let mut matrix = match parse_matrix(matrix_text) {
            Ok(m) => m,
            Err(errors) => return errors,
        };
        let mut failures = Vec::new();
        for p in protocols {
            let wide = matrix.remove(&(
                p.id().to_owned(),
                "*".to_owned(),
                "*".to_owned(),
                Action::ReadStatistics,
            ));
            match wide {
                Some(row) => check(&mut failures, p, ("*", "*"), Action::ReadStatistics, row),
                None => failures.push(format!("matrix lacks [{} * *] read_statistics", p.id())),
            }
            for route in p.routes() {
                for stage in route.stages() {
                    let at = (route.id(), stage.key());
                    for action in Action::ALL {
                        if action == Action::ReadStatistics {
                            // Protocol-wide: every stage answers as the one row.
                            if let Some(row) = wide {
                                check(&mut failures, p, at, action, row);
                            }
                            continue;
                        }
                        let key = (
                            p.id().to_owned(),
                            route.id().to_owned(),
                            stage.key().to_owned(),
                            action,
                        );
                        match matrix.remove(&key) {
                            Some(row) => check(&mut failures, p, at, action, row),
                            None => failures.push(format!(
                                "matrix lacks [{} {} {}] {action}",
                                p.id(),
                                route.id(),
                                stage.key()
                            )),
                        }
                    }
                }
            }
        }
        for (p, r, s, action) in matrix.keys() {
            failures.push(format!("matrix has [{p} {r} {s}] {action}, which no protocol has"));
        }
        failures
    }

    #[test]
    fn decide_matches_the_expected_matrix() {
        let protocols = builtin().unwrap();
        let failures = mismatches(&protocols, MATRIX);
        assert!(
            failures.is_empty(),
            "{} mismatch(es) between the protocols and protocols/policy.matrix:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn matrix_test_catches_a_changed_mark() {
        let protocols = builtin().unwrap();
        let changed = MATRIX.replacen(
            "[western-bay main stage-2]\nraise            .  .  .  .  .\nadd_record       Y",
            "[western-bay main stage-2]\nraise            .  .  .  .  .\nadd_record       .",
            1,
        );
        assert_ne!(changed, MATRIX);
        let failures = mismatches(&protocols, &changed);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].starts_with("western-bay main stage-2 add_record practitioner"));
    }

    #[test]
    fn matrix_test_catches_a_changed_side() {
        let protocols = builtin().unwrap();
        let wb_stage_2 = "[western-bay main stage-2]\nraise            .  .  .  .  .\nadd_record       Y  Y  Y  .  .  either\nrecord_view      Y  Y  Y  .  .  either\nagree_action     Y  Y  Y  .  .  either\nescalate         .  .  Y  Y  .  ";
        assert!(MATRIX.contains(&format!("{wb_stage_2}raising")), "the block as written");
        for (side, failures) in [("either", 1), ("receiving", 1), ("sideways", 1)] {
            let changed =
                MATRIX.replacen(&format!("{wb_stage_2}raising"), &format!("{wb_stage_2}{side}"), 1);
            let found = mismatches(&protocols, &changed);
            assert_eq!(found.len(), failures, "{side}: {found:?}");
        }
        // The data changed and the matrix not: caught too.
        let mut changed = builtin().unwrap();
        let text = include_str!("protocols/western_bay.toml").replacen(
            "sides = { escalate = \"raising\" }",
            "sides = { escalate = \"either\" }",
            1,
        );
        changed[0] = parse_protocol(&text).unwrap();
        let found = mismatches(&changed, MATRIX);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("western-bay main informal escalate: matrix says side"));
    }

    #[test]
    fn matrix_test_catches_a_changed_protocol() {
        let mut protocols = builtin().unwrap();
        let text = include_str!("protocols/western_bay.toml").replacen(
            "escalate = [\"safeguarding_lead\", \"head_of_service\"]",
            "escalate = [\"head_of_service\"]",
            1,
        );
        protocols[0] = parse_protocol(&text).unwrap();
        let failures = mismatches(&protocols, MATRIX);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].starts_with("western-bay main stage-2 escalate safeguarding_lead"));
    }

    #[test]
    fn matrix_test_catches_gaps_and_extras() {
        let protocols = builtin().unwrap();
        let gap = MATRIX.replacen("read_report      .  .  .  .  .\n", "", 1);
        assert_eq!(
            mismatches(&protocols, &gap),
            ["matrix lacks [western-bay main informal] read_report"]
        );
        let extra = format!("{MATRIX}\n[western-bay main stage-9]\nraise . . . . .\n");
        assert_eq!(
            mismatches(&protocols, &extra),
            ["matrix has [western-bay main stage-9] raise, which no protocol has"]
        );
        let twice = format!("{MATRIX}\n[six-stage * *]\nread_statistics . . . . Y\n");
        assert_eq!(mismatches(&protocols, &twice).len(), 1);
        let bad = format!("{MATRIX}\n[six-stage main stage-1]\nraise Y Y\n");
        assert_eq!(mismatches(&protocols, &bad).len(), 1);
    }

    #[test]
    fn unknown_route_or_stage_is_denied_with_nobody() {
        let protocols = builtin().unwrap();
        let wb = &protocols[0];
        let nobody = Decision::Denied { allowed_roles: vec![] };
        for role in Role::ALL {
            assert_eq!(decide(wb, "main", "stage-9", role, Action::Resolve), nobody);
            assert_eq!(decide(wb, "other", "stage-1", role, Action::Resolve), nobody);
        }
    }

    #[test]
    fn denial_names_the_roles_that_may() {
        let protocols = builtin().unwrap();
        let wb = &protocols[0];
        assert_eq!(
            decide(wb, "main", "stage-2", Role::Practitioner, Action::Escalate),
            Decision::Denied { allowed_roles: vec![Role::SafeguardingLead, Role::HeadOfService] }
        );
        assert!(
            decide(wb, "main", "stage-2", Role::SafeguardingLead, Action::Escalate).is_allowed()
        );
    }

    #[test]
    fn statistics_ignore_route_and_stage() {
        let protocols = builtin().unwrap();
        for p in &protocols {
            assert!(decide(p, "", "", Role::BoardChair, Action::ReadStatistics).is_allowed());
            assert_eq!(
                decide(p, "nope", "nope", Role::Manager, Action::ReadStatistics),
                Decision::Denied { allowed_roles: vec![Role::BoardChair] }
            );
        }
    }

    #[test]
    fn actions_round_trip() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            assert_eq!(action.to_string(), action.as_str());
        }
        assert_eq!(Action::parse("Escalate"), None);
        assert_eq!(Action::parse("skip-stage"), None);
    }
}

//! The protocols as data: routes, ordered stages, who leads each stage,
//! time limits, required records, exclusions and the role-by-stage policy.
//!
//! Each built-in protocol is a TOML file under `protocols/`, embedded in
//! the binary and validated by [`builtin`]; the versions a deployment uses
//! are stored in the database (`service::protocols`), in the same format. A [`Protocol`] value is
//! always valid: its fields are private and the only ways to get one are
//! [`builtin`] and [`parse_protocol`], which validate. The file format and
//! the judgement calls behind each file are in `protocols/README.md`.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;

use crate::domain::agency::AgencyKind;
use crate::domain::policy::{Action, NeverApplies};
use crate::domain::role::Role;

/// The embedded protocol files, as (file name, contents).
const BUILTIN_FILES: [(&str, &str); 5] = [
    ("western_bay.toml", include_str!("protocols/western_bay.toml")),
    ("pan_sussex.toml", include_str!("protocols/pan_sussex.toml")),
    ("leeds.toml", include_str!("protocols/leeds.toml")),
    ("rotherham.toml", include_str!("protocols/rotherham.toml")),
    ("six_stage.toml", include_str!("protocols/six_stage.toml")),
];

/// Parses and validates every built-in protocol; call once at start.
///
/// Fails on the first file that does not parse or validate, or if two
/// files share an id.
pub fn builtin() -> Result<Vec<Protocol>, ProtocolError> {
    let mut protocols: Vec<Protocol> = Vec::with_capacity(BUILTIN_FILES.len());
    for (file, text) in BUILTIN_FILES {
        let protocol = parse_protocol(text).map_err(|error| ProtocolError::InFile {
            file: file.to_owned(),
            error: Box::new(error),
        })?;
        if protocols.iter().any(|p| p.id == protocol.id) {
            return Err(ProtocolError::DuplicateId(protocol.id));
        }
        protocols.push(protocol);
    }
    Ok(protocols)
}

/// The built-in definitions as written, as (file name, text): the library
/// a deployment starts from, stored as version 1 of each at start.
pub fn builtin_texts() -> [(&'static str, &'static str); 5] {
    BUILTIN_FILES
}

/// Parses one protocol from TOML text and validates it.
pub fn parse_protocol(toml_text: &str) -> Result<Protocol, ProtocolError> {
    let protocol: Protocol =
        toml::from_str(toml_text).map_err(|e| ProtocolError::Parse { message: e.to_string() })?;
    let problems = protocol.problems();
    if problems.is_empty() {
        Ok(protocol)
    } else {
        Err(ProtocolError::Invalid { id: protocol.id, problems })
    }
}

/// Why a protocol definition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The text is not TOML, or not shaped like a protocol (a missing or
    /// unknown key, an unknown role, a wrong type); the message says where.
    #[error("protocol is not well-formed: {message}")]
    Parse {
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// The protocol parsed but breaks one or more rules.
    #[error("protocol {id} is invalid: {}", join(problems))]
    Invalid {
        /// The protocol's id as written.
        id: String,
        /// Everything that is wrong, in file order.
        problems: Vec<Problem>,
    },
    /// A built-in file failed; `error` says how.
    #[error("built-in protocol file {file}: {error}")]
    InFile {
        /// The file name under `protocols/`.
        file: String,
        /// What was wrong with it.
        error: Box<ProtocolError>,
    },
    /// Two built-in protocols share an id.
    #[error("two built-in protocols have the id {0}")]
    DuplicateId(String),
}

fn join(problems: &[Problem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// One broken rule in a protocol definition. `route` and `stage` are ids
/// and keys as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A required text is empty.
    Empty {
        /// Where, e.g. `name` or `route main stage stage-1 raising_lead.wording`.
        field: String,
    },
    /// An id or key is not lowercase letters, digits and single hyphens.
    BadKey {
        /// Which kind of key (protocol id, route id, stage key, category key).
        what: &'static str,
        /// The key as written.
        value: String,
    },
    /// `version` is 0; versions start at 1.
    VersionZero,
    /// The protocol has no routes.
    NoRoutes,
    /// Two routes share an id.
    DuplicateRoute {
        /// The repeated id.
        route: String,
    },
    /// A route has no stages.
    NoStages {
        /// The route.
        route: String,
    },
    /// Two stages of one route share a key.
    DuplicateStage {
        /// The route.
        route: String,
        /// The repeated key.
        stage: String,
    },
    /// A stage's number is not greater than the one before it.
    NumberNotAscending {
        /// The route.
        route: String,
        /// The stage out of order.
        stage: String,
    },
    /// The first stage of a route is not an entry stage.
    FirstStageNotEntry {
        /// The route.
        route: String,
    },
    /// An entry stage lets nobody raise a case.
    EntryWithoutRaise {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// A stage that is not an entry stage lists roles for `raise`.
    RaiseAtNonEntry {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// An entry stage lists roles for `start_higher`, which only makes
    /// sense above the normal way in.
    StartHigherAtEntry {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// Nobody may escalate from a stage that has a stage above it.
    NoEscalator {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// The last stage of a route lists roles for `escalate`.
    EscalateFromLast {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// `skip_stage` is set at a stage with fewer than two stages above it.
    NothingToSkip {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// Nobody may resolve at a stage.
    NoResolver {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// Nobody may add a record at a stage.
    NoRecorder {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// A lead lists no roles.
    NoLeadRoles {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
        /// `raising_lead` or `receiving_lead`.
        side: &'static str,
    },
    /// A role appears twice in one list.
    RepeatedRole {
        /// Where, e.g. `route main stage stage-1 allow.escalate`.
        field: String,
        /// The repeated role.
        role: Role,
    },
    /// A route's `receiving_agency_kinds` lists a kind twice.
    RepeatedAgencyKind {
        /// The route.
        route: String,
        /// The repeated kind.
        kind: AgencyKind,
    },
    /// A policy entry that can never apply: `allow.<action>` lists a role
    /// that the rules of `domain::access` and `domain::workflow` never let
    /// take the action there (see `protocols/README.md`).
    NeverApplies {
        /// Where, e.g. `route main stage stage-4 allow.record_view`.
        field: String,
        /// The role listed in vain.
        role: Role,
        /// Why it can never apply.
        why: NeverApplies,
    },
    /// `read_report` lists roles at a stage where `report = "none"`.
    ReportNotAvailable {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// A time limit is zero.
    ZeroDays {
        /// Where, e.g. `route challenge stage stage-1 milestone form`.
        field: String,
    },
    /// A milestone or a `skip_for` is malformed: a repeated key, an
    /// `after` that names no earlier milestone, a record kind the stage
    /// does not list, no roles, `either` side; an `up_to` that is not at
    /// least two stages above.
    Malformed {
        /// Where, e.g. `route challenge stage stage-1 milestone form`.
        field: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The stage's overall limit is shorter than its longest chain of
    /// milestones, or missing while it has milestones.
    TimeLimitTooShort {
        /// The route.
        route: String,
        /// The stage.
        stage: String,
    },
    /// A required record refers to a stage that is not earlier in the route.
    RecordOfUnknownStage {
        /// The route.
        route: String,
        /// The stage holding the record.
        stage: String,
        /// The `of_stage` as written.
        of_stage: String,
    },
    /// Two categories share a key.
    DuplicateCategory {
        /// The repeated key.
        key: String,
    },
    /// The categories lack the catch-all `other`.
    NoOtherCategory,
    /// An exclusion kind is listed twice.
    DuplicateExclusion {
        /// The repeated kind.
        kind: ExclusionKind,
    },
    /// A rule names a route the protocol does not have.
    RuleUnknownRoute {
        /// The rule's name in the file.
        rule: &'static str,
        /// The route as written.
        route: String,
    },
    /// A rule names a stage its route does not have.
    RuleUnknownStage {
        /// The rule's name in the file.
        rule: &'static str,
        /// The route.
        route: String,
        /// The stage as written.
        stage: String,
    },
    /// A rule's number is out of range.
    RuleOutOfRange {
        /// The field, e.g. `rules.repeated_disagreement.count`.
        field: &'static str,
        /// The smallest allowed value.
        min: u32,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Empty { field } => write!(f, "{field} is empty"),
            Problem::BadKey { what, value } => write!(
                f,
                "{what} {value:?} must be lowercase letters and digits separated by single hyphens"
            ),
            Problem::VersionZero => write!(f, "version must be 1 or more"),
            Problem::NoRoutes => write!(f, "the protocol has no routes"),
            Problem::DuplicateRoute { route } => write!(f, "route {route} is defined twice"),
            Problem::NoStages { route } => write!(f, "route {route} has no stages"),
            Problem::DuplicateStage { route, stage } => {
                write!(f, "route {route}: stage {stage} is defined twice")
            }
            Problem::NumberNotAscending { route, stage } => write!(
                f,
                "route {route}: stage {stage} must have a higher number than the stage before it"
            ),
            Problem::FirstStageNotEntry { route } => {
                write!(f, "route {route}: the first stage must be an entry stage")
            }
            Problem::EntryWithoutRaise { route, stage } => write!(
                f,
                "route {route} stage {stage}: an entry stage must let at least one role raise"
            ),
            Problem::RaiseAtNonEntry { route, stage } => write!(
                f,
                "route {route} stage {stage}: only entry stages may list roles for raise (use start_higher)"
            ),
            Problem::StartHigherAtEntry { route, stage } => write!(
                f,
                "route {route} stage {stage}: start_higher must be empty at an entry stage"
            ),
            Problem::NoEscalator { route, stage } => {
                write!(f, "route {route} stage {stage}: at least one role must be able to escalate")
            }
            Problem::EscalateFromLast { route, stage } => {
                write!(f, "route {route} stage {stage}: the last stage cannot be escalated from")
            }
            Problem::NothingToSkip { route, stage } => {
                write!(f, "route {route} stage {stage}: skip_stage needs at least two stages above")
            }
            Problem::NoResolver { route, stage } => {
                write!(f, "route {route} stage {stage}: at least one role must be able to resolve")
            }
            Problem::NoRecorder { route, stage } => write!(
                f,
                "route {route} stage {stage}: at least one role must be able to add a record"
            ),
            Problem::NoLeadRoles { route, stage, side } => {
                write!(f, "route {route} stage {stage}: {side} lists no roles")
            }
            Problem::RepeatedRole { field, role } => write!(f, "{field} lists {role} twice"),
            Problem::RepeatedAgencyKind { route, kind } => {
                write!(f, "route {route}: receiving_agency_kinds lists {kind} twice")
            }
            Problem::NeverApplies { field, role, why } => {
                write!(f, "{field} lists {role}, which can never apply: {why}")
            }
            Problem::ReportNotAvailable { route, stage } => write!(
                f,
                "route {route} stage {stage}: read_report lists roles but report is \"none\""
            ),
            Problem::ZeroDays { field } => write!(f, "{field} must be at least 1 working day"),
            Problem::TimeLimitTooShort { route, stage } => write!(
                f,
                "route {route} stage {stage}: time_limit_working_days must be given and at least the longest chain of milestones"
            ),
            Problem::Malformed { field, problem } => write!(f, "{field}: {problem}"),
            Problem::RecordOfUnknownStage { route, stage, of_stage } => write!(
                f,
                "route {route} stage {stage}: a required record refers to {of_stage}, which is not an earlier stage"
            ),
            Problem::DuplicateCategory { key } => write!(f, "category {key} is defined twice"),
            Problem::NoOtherCategory => write!(f, "the categories must include \"other\""),
            Problem::DuplicateExclusion { kind } => {
                write!(f, "exclusion {} is listed twice", kind.as_str())
            }
            Problem::RuleUnknownRoute { rule, route } => {
                write!(f, "rules.{rule} names unknown route {route}")
            }
            Problem::RuleUnknownStage { rule, route, stage } => {
                write!(f, "rules.{rule} names unknown stage {stage} of route {route}")
            }
            Problem::RuleOutOfRange { field, min } => write!(f, "{field} must be at least {min}"),
        }
    }
}

fn default_due_soon() -> Vec<u8> {
    vec![50, 75]
}

/// A partnership's protocol for resolving professional differences, as one
/// version of one definition. Always valid.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    id: String,
    version: u32,
    name: String,
    source: String,
    calendar: String,
    description: String,
    #[serde(default)]
    notes: Vec<String>,
    read_statistics: Vec<Role>,
    /// When an open milestone is announced as due soon, in percent of its
    /// working days (service-desk SLAs warn at 50% and 75%).
    #[serde(default = "default_due_soon")]
    due_soon_percent: Vec<u8>,
    categories: Vec<Category>,
    #[serde(default)]
    exclusions: Vec<Exclusion>,
    #[serde(default)]
    rules: Rules,
    routes: Vec<Route>,
}

impl Protocol {
    /// Stable id, e.g. `"western-bay"`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Version of the definition, from 1; a case keeps the version it was
    /// raised under.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Human-readable name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which source document the definition follows, e.g. `"seed 000"`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The working-day calendar deadlines use, e.g. `"england-and-wales"`.
    pub fn calendar(&self) -> &str {
        &self.calendar
    }

    /// A short summary of the protocol.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Guidance from the source that the software does not enforce.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Roles that may read the partnership-wide statistics (decided at the
    /// protocol level, not per stage).
    pub fn read_statistics(&self) -> &[Role] {
        &self.read_statistics
    }

    /// When an open milestone is announced as due soon, in percent of its
    /// working days, ascending (default 50 and 75).
    pub fn due_soon_percent(&self) -> &[u8] {
        &self.due_soon_percent
    }

    /// Subject categories a case may be about; always includes `other`.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The category with this key, if any.
    pub fn category(&self, key: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.key == key)
    }

    /// Matters this protocol says are out of its scope, with where each
    /// belongs instead. A kind not listed is not excluded by this protocol.
    pub fn exclusions(&self) -> &[Exclusion] {
        &self.exclusions
    }

    /// The exclusion of this kind, if the protocol has one.
    pub fn exclusion(&self, kind: ExclusionKind) -> Option<&Exclusion> {
        self.exclusions.iter().find(|e| e.kind == kind)
    }

    /// Protocol-specific rules (repeated disagreements, family told, ...).
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The routes (situations) a case may follow; most protocols have one.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route with this id, if any.
    pub fn route(&self, id: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.id == id)
    }

    /// The stage `key` of route `route`, if both exist.
    pub fn stage(&self, route: &str, key: &str) -> Option<&Stage> {
        self.route(route)?.stage(key)
    }

    /// The stage after `key` in route `route`; `None` at the last stage or
    /// if either is unknown.
    pub fn next_stage(&self, route: &str, key: &str) -> Option<&Stage> {
        self.route(route)?.next_stage(key)
    }

    /// The stages of `route` where a case may be raised in the normal way;
    /// empty if the route is unknown.
    pub fn entry_stages(&self, route: &str) -> Vec<&Stage> {
        self.route(route).map(|r| r.stages.iter().filter(|s| s.entry).collect()).unwrap_or_default()
    }

    fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        key_ok(&mut p, "protocol id", &self.id);
        if self.version == 0 {
            p.push(Problem::VersionZero);
        }
        if self.due_soon_percent.iter().any(|&x| x == 0 || x >= 100)
            || self.due_soon_percent.windows(2).any(|w| w[0] >= w[1])
        {
            p.push(Problem::Malformed {
                field: "due_soon_percent".to_owned(),
                problem: "percentages between 1 and 99, ascending",
            });
        }
        for (field, value) in [
            ("name", &self.name),
            ("source", &self.source),
            ("calendar", &self.calendar),
            ("description", &self.description),
        ] {
            not_empty(&mut p, field, value);
        }
        roles_unique(&mut p, "read_statistics", &self.read_statistics);

        let mut keys = BTreeSet::new();
        for category in &self.categories {
            key_ok(&mut p, "category key", &category.key);
            not_empty(&mut p, &format!("category {} name", category.key), &category.name);
            if !keys.insert(category.key.as_str()) {
                p.push(Problem::DuplicateCategory { key: category.key.clone() });
            }
        }
        if !keys.contains("other") {
            p.push(Problem::NoOtherCategory);
        }

        let mut kinds = BTreeSet::new();
        for exclusion in &self.exclusions {
            let at = format!("exclusion {}", exclusion.kind.as_str());
            not_empty(&mut p, &format!("{at} text"), &exclusion.text);
            not_empty(&mut p, &format!("{at} redirect"), &exclusion.redirect);
            if !kinds.insert(exclusion.kind) {
                p.push(Problem::DuplicateExclusion { kind: exclusion.kind });
            }
        }

        if self.routes.is_empty() {
            p.push(Problem::NoRoutes);
        }
        let mut ids = BTreeSet::new();
        for route in &self.routes {
            if !ids.insert(route.id.as_str()) {
                p.push(Problem::DuplicateRoute { route: route.id.clone() });
            }
            route.problems(&mut p);
        }
        self.rules.problems(self, &mut p);
        p
    }
}

/// A situation-specific ladder of stages (Leeds has one per situation,
/// Rotherham a practice route and a challenge route; the others one).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    id: String,
    name: String,
    description: String,
    #[serde(default)]
    receiving_agency_kinds: Vec<AgencyKind>,
    stages: Vec<Stage>,
}

impl Route {
    /// Stable id, e.g. `"main"` or `"challenge"`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Human-readable name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When this route applies.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The kinds of agency a case on this route may be raised with (the
    /// receiving agency); empty when any kind may.
    pub fn receiving_agency_kinds(&self) -> &[AgencyKind] {
        &self.receiving_agency_kinds
    }

    /// Whether a case on this route may be raised with an agency of `kind`.
    pub fn admits_receiving(&self, kind: AgencyKind) -> bool {
        self.receiving_agency_kinds.is_empty() || self.receiving_agency_kinds.contains(&kind)
    }

    /// The stages in order, lowest first.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage with this key, if any.
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key == key)
    }

    /// The stage after `key`; `None` at the last stage or for an unknown key.
    pub fn next_stage(&self, key: &str) -> Option<&Stage> {
        let at = self.position(key)?;
        self.stages.get(at + 1)
    }

    /// The zero-based position of stage `key` in the route, if present;
    /// use it to compare how far apart two stages are.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.key == key)
    }

    fn problems(&self, p: &mut Vec<Problem>) {
        key_ok(p, "route id", &self.id);
        not_empty(p, &format!("route {} name", self.id), &self.name);
        not_empty(p, &format!("route {} description", self.id), &self.description);
        let mut kinds = BTreeSet::new();
        for &kind in &self.receiving_agency_kinds {
            if !kinds.insert(kind) {
                p.push(Problem::RepeatedAgencyKind { route: self.id.clone(), kind });
            }
        }
        crate::domain::policy::never_applies(self, p);
        let Some(first) = self.stages.first() else {
            p.push(Problem::NoStages { route: self.id.clone() });
            return;
        };
        if !first.entry {
            p.push(Problem::FirstStageNotEntry { route: self.id.clone() });
        }
        let count = self.stages.len();
        for (i, stage) in self.stages.iter().enumerate() {
            let earlier = &self.stages[..i];
            if earlier.iter().any(|s| s.key == stage.key) {
                p.push(Problem::DuplicateStage {
                    route: self.id.clone(),
                    stage: stage.key.clone(),
                });
            }
            if earlier.last().is_some_and(|prev| prev.number >= stage.number) {
                p.push(Problem::NumberNotAscending {
                    route: self.id.clone(),
                    stage: stage.key.clone(),
                });
            }
            stage.problems(&self.id, earlier, count - i - 1, p);
            if stage.escalate_on_breach {
                let field = format!("route {} stage {} escalate_on_breach", self.id, stage.key);
                if i + 1 == count {
                    p.push(Problem::Malformed {
                        field: field.clone(),
                        problem: "the last stage of a route has no stage to escalate to",
                    });
                }
                if stage.time_limit_working_days.is_none() && stage.milestones.is_empty() {
                    p.push(Problem::Malformed {
                        field,
                        problem: "the stage has no time limit or milestone that could be breached",
                    });
                }
            }
            if let Some(skip) = &stage.skip_for {
                let field = format!("route {} stage {} skip_for", self.id, stage.key);
                if self.position(&skip.up_to).is_none_or(|to| to < i + 2) {
                    p.push(Problem::Malformed {
                        field: field.clone(),
                        problem: "up_to must name a stage at least two above",
                    });
                }
                if skip.reasons.is_empty() {
                    p.push(Problem::Malformed { field, problem: "reasons lists none" });
                }
                if stage.allow.skip_stage.is_empty() {
                    p.push(Problem::Malformed {
                        field: format!("route {} stage {} skip_for", self.id, stage.key),
                        problem: "nobody may skip a stage here (allow.skip_stage is empty)",
                    });
                }
            }
        }
    }
}

/// Named reasons for which a case may move more than one stage up from a
/// stage without the immediate-risk justification, and how far (Rotherham's
/// challenge: no response in time, or an unsatisfactory one, goes to stage
/// 2 or 3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipFor {
    reasons: Vec<SkipReason>,
    up_to: String,
}

impl SkipFor {
    /// The reasons.
    pub fn reasons(&self) -> &[SkipReason] {
        &self.reasons
    }

    /// The highest stage such an escalation may reach.
    pub fn up_to(&self) -> &str {
        &self.up_to
    }
}

/// A reason named in a stage's `skip_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The stage's due date (its next open milestone's) has passed.
    Overdue,
    /// The stage did not resolve it (Rotherham: the response was
    /// unsatisfactory).
    Unresolved,
}

/// One step of a route.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    key: String,
    number: u32,
    name: String,
    description: String,
    #[serde(default)]
    entry: bool,
    raising_lead: Lead,
    receiving_lead: Lead,
    #[serde(default)]
    time_limit_working_days: Option<u32>,
    #[serde(default)]
    milestones: Vec<crate::domain::milestone::Milestone>,
    #[serde(default)]
    skip_for: Option<SkipFor>,
    #[serde(default)]
    records: Vec<RequiredRecord>,
    #[serde(default)]
    required_to_leave: Vec<RecordKind>,
    #[serde(default)]
    board_told: bool,
    #[serde(default)]
    report: ReportUse,
    #[serde(default)]
    escalator_states_timeframe: bool,
    #[serde(default)]
    escalate_on_breach: bool,
    #[serde(default)]
    questions: Vec<QuestionGroup>,
    #[serde(default)]
    notes: Vec<String>,
    allow: StagePolicy,
    #[serde(default)]
    sides: crate::domain::policy::StageSides,
    #[serde(default)]
    participants: Vec<Participant>,
}

impl Stage {
    /// Stable key within the route, e.g. `"stage-2"` or `"board-chair"`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The protocol's own number for the stage (Western Bay's informal
    /// discussion is 0); ascending within a route.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Human-readable name, e.g. `"Manager to manager"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What happens at the stage, close to the source's words.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether a case may be raised at this stage in the normal way.
    pub fn is_entry(&self) -> bool {
        self.entry
    }

    /// Who acts for the raising agency at this stage.
    pub fn raising_lead(&self) -> &Lead {
        &self.raising_lead
    }

    /// Who acts for the receiving agency at this stage or, at a partnership
    /// stage, who takes the matter for the partnership.
    pub fn receiving_lead(&self) -> &Lead {
        &self.receiving_lead
    }

    /// Working days the stage may take from the day it is reached, where
    /// the source gives a limit.
    pub fn time_limit_working_days(&self) -> Option<u32> {
        self.time_limit_working_days
    }

    /// The steps timed separately inside the stage, in order (Rotherham's
    /// challenge: the form, then the response); empty where the stage has
    /// one limit. See `domain::milestone`.
    pub fn milestones(&self) -> &[crate::domain::milestone::Milestone] {
        &self.milestones
    }

    /// The reasons for which a case may move more than one stage up from
    /// here without the immediate-risk justification, if any.
    pub fn skip_for(&self) -> Option<&SkipFor> {
        self.skip_for.as_ref()
    }

    /// What must be recorded at this stage.
    pub fn records(&self) -> &[RequiredRecord] {
        &self.records
    }

    /// The kinds of record a case must hold, written at this stage, before
    /// it is escalated from here (an escalation for immediate risk is not
    /// held up by them: the gap is flagged on the case instead).
    pub fn required_to_leave(&self) -> &[RecordKind] {
        &self.required_to_leave
    }

    /// Whether the board or partnership is told when a case reaches this
    /// stage.
    pub fn board_told(&self) -> bool {
        self.board_told
    }

    /// Whether the Resolution of Professional Differences Report is
    /// required or available at this stage.
    pub fn report(&self) -> ReportUse {
        self.report
    }

    /// Whether a breach of this stage's deadline (its time limit, or at a
    /// stage with milestones its next milestone) escalates the case to the
    /// next stage by itself, as a change by the system. Off in all five
    /// seeds (a person escalates; the breach is announced).
    pub fn escalate_on_breach(&self) -> bool {
        self.escalate_on_breach
    }

    /// Whether whoever raises or escalates to this stage must state the
    /// timeframe for resolution at it (Pan-Sussex).
    pub fn escalator_states_timeframe(&self) -> bool {
        self.escalator_states_timeframe
    }

    /// Questions the source asks the professionals to work through here.
    pub fn questions(&self) -> &[QuestionGroup] {
        &self.questions
    }

    /// Guidance from the source that the software does not enforce.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Which roles may take each action at this stage.
    pub fn policy(&self) -> &StagePolicy {
        &self.allow
    }

    /// Which side may take each action at this stage.
    pub fn sides(&self) -> &crate::domain::policy::StageSides {
        &self.sides
    }

    /// The agencies beyond the two parties that the protocol brings in at
    /// this stage (seed 004's stage 4: the local Child Protection Manager
    /// of children's social care), each of one agency kind; see
    /// [`Participant`].
    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }

    /// The participant the stage names for agencies of `kind`, if any.
    pub fn participant(&self, kind: AgencyKind) -> Option<&Participant> {
        self.participants.iter().find(|p| p.agency_kind == kind)
    }

    fn participant_problems(&self, at: &str, p: &mut Vec<Problem>) {
        let mut kinds = BTreeSet::new();
        for participant in &self.participants {
            let field = format!("{at} participant {}", participant.agency_kind);
            not_empty(p, &format!("{field} wording"), &participant.wording);
            let mut bad = |problem| p.push(Problem::Malformed { field: field.clone(), problem });
            if !kinds.insert(participant.agency_kind) {
                bad("the stage names this agency kind twice");
            }
            if participant.roles.is_empty() {
                bad("a participant names the roles that act for it");
            }
            if participant.added_by.is_empty() {
                bad("a participant names the roles that bring it in (added_by)");
            }
            if participant.roles.iter().any(|r| r.acts_for_board()) {
                bad("a participant acts for its agency; the board chair acts for the board");
            }
            if participant.may.iter().any(|a| !PARTICIPANT_ACTIONS.contains(a)) {
                bad("a participant may only add_record, read_audit_trail and read_report");
            }
            roles_unique(p, &format!("{field} roles"), &participant.roles);
            roles_unique(p, &format!("{field} added_by"), &participant.added_by);
        }
    }

    fn milestone_problems(&self, at: &str, p: &mut Vec<Problem>) {
        let mut seen: Vec<&str> = Vec::new();
        for m in &self.milestones {
            let field = format!("{at} milestone {}", m.key());
            key_ok(p, "milestone key", m.key());
            not_empty(p, &format!("{field} name"), m.name());
            let mut bad = |problem| p.push(Problem::Malformed { field: field.clone(), problem });
            if seen.contains(&m.key()) {
                bad("the key is used twice in the stage");
            }
            if let Some(after) = m.after_written()
                && after != "start"
                && !seen.contains(&after)
            {
                bad("after must be \"start\" or the key of an earlier milestone");
            }
            if m.side() == crate::domain::policy::Side::Either {
                bad("a milestone is owed by one side: raising or receiving");
            }
            if m.roles().is_empty() {
                bad("a milestone names the roles that owe it");
            }
            if !self.records.iter().any(|r| r.kind == m.record()) {
                bad("its record kind is not among the stage's records");
            }
            if m.within_working_days() == 0 {
                p.push(Problem::ZeroDays { field: field.clone() });
            }
            roles_unique(p, &format!("{field} roles"), m.roles());
            seen.push(m.key());
        }
    }

    fn problems(&self, route: &str, earlier: &[Stage], above: usize, p: &mut Vec<Problem>) {
        let at = format!("route {route} stage {}", self.key);
        let here = || (route.to_owned(), self.key.clone());
        key_ok(p, "stage key", &self.key);
        not_empty(p, &format!("{at} name"), &self.name);
        not_empty(p, &format!("{at} description"), &self.description);
        for (side, lead) in
            [("raising_lead", &self.raising_lead), ("receiving_lead", &self.receiving_lead)]
        {
            not_empty(p, &format!("{at} {side}.wording"), &lead.wording);
            if lead.roles.is_empty() {
                let (route, stage) = here();
                p.push(Problem::NoLeadRoles { route, stage, side });
            }
            roles_unique(p, &format!("{at} {side}.roles"), &lead.roles);
        }

        if self.time_limit_working_days == Some(0) {
            p.push(Problem::ZeroDays { field: format!("{at} time_limit_working_days") });
        }
        self.milestone_problems(&at, p);
        self.participant_problems(&at, p);
        let chain = crate::domain::milestone::longest_chain(&self.milestones);
        if chain > 0 && self.time_limit_working_days.is_none_or(|limit| limit < chain) {
            let (route, stage) = here();
            p.push(Problem::TimeLimitTooShort { route, stage });
        }

        for record in &self.records {
            not_empty(p, &format!("{at} record text"), &record.text);
            if let Some(of) = &record.of_stage
                && !earlier.iter().any(|s| &s.key == of)
            {
                let (route, stage) = here();
                p.push(Problem::RecordOfUnknownStage { route, stage, of_stage: of.clone() });
            }
        }
        for group in &self.questions {
            not_empty(p, &format!("{at} question heading"), &group.heading);
            for item in &group.items {
                not_empty(p, &format!("{at} question"), item);
            }
        }

        let allow = &self.allow;
        for action in Action::ALL {
            if action != Action::ReadStatistics {
                roles_unique(p, &format!("{at} allow.{}", action.as_str()), allow.roles(action));
            }
        }
        let rules: [(bool, ProblemAt); 9] = [
            (self.entry && allow.raise.is_empty(), |route, stage| Problem::EntryWithoutRaise {
                route,
                stage,
            }),
            (!self.entry && !allow.raise.is_empty(), |route, stage| Problem::RaiseAtNonEntry {
                route,
                stage,
            }),
            (self.entry && !allow.start_higher.is_empty(), |route, stage| {
                Problem::StartHigherAtEntry { route, stage }
            }),
            (above > 0 && allow.escalate.is_empty(), |route, stage| Problem::NoEscalator {
                route,
                stage,
            }),
            (above == 0 && !allow.escalate.is_empty(), |route, stage| Problem::EscalateFromLast {
                route,
                stage,
            }),
            (above < 2 && !allow.skip_stage.is_empty(), |route, stage| Problem::NothingToSkip {
                route,
                stage,
            }),
            (allow.resolve.is_empty(), |route, stage| Problem::NoResolver { route, stage }),
            (allow.add_record.is_empty(), |route, stage| Problem::NoRecorder { route, stage }),
            (self.report == ReportUse::None && !allow.read_report.is_empty(), |route, stage| {
                Problem::ReportNotAvailable { route, stage }
            }),
        ];
        for (broken, problem) in rules {
            if broken {
                let (route, stage) = here();
                p.push(problem(route, stage));
            }
        }
    }
}

/// Who leads a stage on one side: the roles it maps to, and the source's
/// own wording.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lead {
    roles: Vec<Role>,
    wording: String,
}

impl Lead {
    /// The roles that stand for this lead.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The source's own words for who leads.
    pub fn wording(&self) -> &str {
        &self.wording
    }
}

/// The actions a participant may be given (`may`): it adds its records
/// and reads; the course of the dispute (views, escalation, acceptance,
/// resolution, withdrawal) stays the two parties'.
pub const PARTICIPANT_ACTIONS: [Action; 3] =
    [Action::AddRecord, Action::ReadAuditTrail, Action::ReadReport];

/// An agency beyond the two parties that a stage brings into a case: of
/// one kind (`agency_kind`), acting through `roles`, brought in by a
/// party's (or the board chair's) `added_by` roles, and then taking the
/// actions of `may` on the case at any stage, as long as it takes part
/// (see `domain::access`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participant {
    agency_kind: AgencyKind,
    roles: Vec<Role>,
    added_by: Vec<Role>,
    #[serde(deserialize_with = "actions")]
    may: Vec<Action>,
    wording: String,
}

impl Participant {
    /// The kind of agency the stage brings in.
    pub fn agency_kind(&self) -> AgencyKind {
        self.agency_kind
    }

    /// The roles that act for the participant agency.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// The roles (of either party, or the board chair) that bring it in.
    pub fn added_by(&self) -> &[Role] {
        &self.added_by
    }

    /// What the participant's roles may do on the case (a subset of
    /// [`PARTICIPANT_ACTIONS`]).
    pub fn may(&self) -> &[Action] {
        &self.may
    }

    /// The source's own words for who joins.
    pub fn wording(&self) -> &str {
        &self.wording
    }
}

fn actions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Action>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|name| {
            Action::parse(name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown action {name:?}")))
        })
        .collect()
}

/// A record the protocol asks for at a stage.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredRecord {
    kind: RecordKind,
    text: String,
    #[serde(default)]
    of_stage: Option<String>,
}

impl RequiredRecord {
    /// What sort of record.
    pub fn kind(&self) -> RecordKind {
        self.kind
    }

    /// What it must contain, close to the source's words.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// If it is the record of an earlier stage passed on, that stage's key.
    pub fn of_stage(&self) -> Option<&str> {
        self.of_stage.as_deref()
    }
}

/// Sorts of record a protocol asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A written record of a discussion.
    Discussion,
    /// The record of a meeting.
    Meeting,
    /// A letter or written request.
    Letter,
    /// An analysis, e.g. of the risk to the child.
    Analysis,
    /// A challenge form (Rotherham).
    Form,
    /// A response to a form or letter.
    Response,
    /// The Resolution of Professional Differences Report.
    Report,
    /// A notification to someone who must be told.
    Notification,
}

impl RecordKind {
    /// The data-file spelling, e.g. `"analysis"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Discussion => "discussion",
            RecordKind::Meeting => "meeting",
            RecordKind::Letter => "letter",
            RecordKind::Analysis => "analysis",
            RecordKind::Form => "form",
            RecordKind::Response => "response",
            RecordKind::Report => "report",
            RecordKind::Notification => "notification",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [RecordKind; 8] = [
        RecordKind::Discussion,
        RecordKind::Meeting,
        RecordKind::Letter,
        RecordKind::Analysis,
        RecordKind::Form,
        RecordKind::Response,
        RecordKind::Report,
        RecordKind::Notification,
    ];

    /// The kind spelt `s` in the data files, if any.
    pub fn parse(s: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Whether the Resolution of Professional Differences Report is used at a
/// stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportUse {
    /// Not at this stage.
    #[default]
    None,
    /// It may be produced (derived from the case) and read.
    Available,
    /// The protocol requires it to be completed at this stage.
    Required,
}

/// A heading with the questions under it (seed 004's stage 1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuestionGroup {
    heading: String,
    items: Vec<String>,
}

impl QuestionGroup {
    /// The heading question.
    pub fn heading(&self) -> &str {
        &self.heading
    }

    /// The questions under it.
    pub fn items(&self) -> &[String] {
        &self.items
    }
}

/// Which roles may take each action at one stage: the `[allow]` table.
/// Every key is required, so a forgotten action is a parse error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagePolicy {
    raise: Vec<Role>,
    start_higher: Vec<Role>,
    add_record: Vec<Role>,
    record_view: Vec<Role>,
    agree_action: Vec<Role>,
    escalate: Vec<Role>,
    skip_stage: Vec<Role>,
    accept: Vec<Role>,
    resolve: Vec<Role>,
    withdraw: Vec<Role>,
    read_audit_trail: Vec<Role>,
    read_report: Vec<Role>,
}

impl StagePolicy {
    /// The roles that may take `action` at this stage, as listed in the
    /// file. `ReadStatistics` is protocol-wide (see
    /// [`Protocol::read_statistics`]) and yields an empty list here.
    pub fn roles(&self, action: Action) -> &[Role] {
        match action {
            Action::Raise => &self.raise,
            Action::StartHigher => &self.start_higher,
            Action::AddRecord => &self.add_record,
            Action::RecordView => &self.record_view,
            Action::AgreeAction => &self.agree_action,
            Action::Escalate => &self.escalate,
            Action::SkipStage => &self.skip_stage,
            Action::Accept => &self.accept,
            Action::Resolve => &self.resolve,
            Action::Withdraw => &self.withdraw,
            Action::ReadAuditTrail => &self.read_audit_trail,
            Action::ReadReport => &self.read_report,
            Action::ReadStatistics => &[],
        }
    }
}

/// A subject a case may be about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    key: String,
    name: String,
}

impl Category {
    /// Stable key, e.g. `"information-sharing"`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The source's wording.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A matter the protocol does not cover, and where it belongs instead.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    kind: ExclusionKind,
    text: String,
    redirect: String,
}

impl Exclusion {
    /// Which kind of matter.
    pub fn kind(&self) -> ExclusionKind {
        self.kind
    }

    /// What the source says about it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The procedure it belongs to instead, for the refusal's message.
    pub fn redirect(&self) -> &str {
        &self.redirect
    }
}

/// The kinds of matter a protocol may exclude (the raising triage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExclusionKind {
    /// A disagreement inside one agency.
    IntraAgency,
    /// A complaint about a named professional.
    ComplaintAboutProfessional,
    /// Use by a child, young person or family.
    ChildOrFamilyUse,
    /// No consensus at a child protection conference.
    ConferenceNonConsensus,
    /// A child on the register (with a plan) thought not adequately
    /// protected.
    RegisteredChildUnprotected,
}

impl ExclusionKind {
    /// Every kind, in declaration order.
    pub const ALL: [ExclusionKind; 5] = [
        ExclusionKind::IntraAgency,
        ExclusionKind::ComplaintAboutProfessional,
        ExclusionKind::ChildOrFamilyUse,
        ExclusionKind::ConferenceNonConsensus,
        ExclusionKind::RegisteredChildUnprotected,
    ];

    /// The data-file spelling, e.g. `"intra_agency"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExclusionKind::IntraAgency => "intra_agency",
            ExclusionKind::ComplaintAboutProfessional => "complaint_about_professional",
            ExclusionKind::ChildOrFamilyUse => "child_or_family_use",
            ExclusionKind::ConferenceNonConsensus => "conference_non_consensus",
            ExclusionKind::RegisteredChildUnprotected => "registered_child_unprotected",
        }
    }

    /// The kind spelled `s`, if any.
    pub fn parse(s: &str) -> Option<ExclusionKind> {
        ExclusionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Protocol-specific rules; each is absent unless the source has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    repeated_disagreement: Option<RepeatedDisagreement>,
    #[serde(default)]
    family_told: Option<FamilyTold>,
    #[serde(default)]
    step_down_check: Option<StepDownCheck>,
    #[serde(default)]
    conference_request_backing: Option<ConferenceRequestBacking>,
}

impl Rules {
    /// Pan-Sussex: similar disagreements repeating send a case to a stage.
    pub fn repeated_disagreement(&self) -> Option<&RepeatedDisagreement> {
        self.repeated_disagreement.as_ref()
    }

    /// Rotherham: the family is told of the challenge, a fact the chair
    /// records with its date.
    pub fn family_told(&self) -> Option<&FamilyTold> {
        self.family_told.as_ref()
    }

    /// Rotherham: the check after a step-down to child-in-need planning.
    pub fn step_down_check(&self) -> Option<&StepDownCheck> {
        self.step_down_check.as_ref()
    }

    /// Leeds: a backed request for a conference should normally be agreed.
    pub fn conference_request_backing(&self) -> Option<&ConferenceRequestBacking> {
        self.conference_request_backing.as_ref()
    }

    fn problems(&self, protocol: &Protocol, p: &mut Vec<Problem>) {
        let mut check = |rule: &'static str, route: &str, stage: Option<&str>, text: &str| {
            not_empty(p, &format!("rules.{rule}.text"), text);
            match (protocol.route(route), stage) {
                (None, _) => p.push(Problem::RuleUnknownRoute { rule, route: route.to_owned() }),
                (Some(r), Some(stage)) if r.stage(stage).is_none() => {
                    p.push(Problem::RuleUnknownStage {
                        rule,
                        route: route.to_owned(),
                        stage: stage.to_owned(),
                    });
                }
                _ => {}
            }
        };
        if let Some(r) = &self.repeated_disagreement {
            check("repeated_disagreement", &r.route, Some(&r.to_stage), &r.text);
        }
        if let Some(r) = &self.family_told {
            check("family_told", &r.route, None, &r.text);
        }
        if let Some(r) = &self.step_down_check {
            check("step_down_check", &r.route, Some(&r.restart_stage), &r.text);
        }
        if let Some(r) = &self.conference_request_backing {
            check("conference_request_backing", &r.route, Some(&r.stage), &r.text);
            roles_unique(p, "rules.conference_request_backing.backed_by", &r.backed_by);
            if r.backed_by.is_empty() {
                p.push(Problem::Empty {
                    field: "rules.conference_request_backing.backed_by".to_owned(),
                });
            }
        }
        if let Some(r) = &self.family_told {
            roles_unique(p, "rules.family_told.recorded_by", &r.recorded_by);
            if r.recorded_by.is_empty() {
                p.push(Problem::Empty { field: "rules.family_told.recorded_by".to_owned() });
            }
        }
        if let Some(r) = &self.step_down_check {
            roles_unique(p, "rules.step_down_check.recorded_by", &r.recorded_by);
            if r.recorded_by.is_empty() {
                p.push(Problem::Empty { field: "rules.step_down_check.recorded_by".to_owned() });
            }
        }
        if let Some(r) = &self.repeated_disagreement {
            if r.count < 2 {
                p.push(Problem::RuleOutOfRange {
                    field: "rules.repeated_disagreement.count",
                    min: 2,
                });
            }
            if r.window_days < 1 {
                p.push(Problem::RuleOutOfRange {
                    field: "rules.repeated_disagreement.window_days",
                    min: 1,
                });
            }
        }
        if let Some(r) = &self.step_down_check
            && r.after_days < 1
        {
            p.push(Problem::RuleOutOfRange { field: "rules.step_down_check.after_days", min: 1 });
        }
    }
}

/// Pan-Sussex: when `count` similar disagreements between the same agencies
/// are recorded within `window_days` calendar days, the matter goes to
/// `to_stage` of `route`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatedDisagreement {
    route: String,
    to_stage: String,
    count: u32,
    window_days: u32,
    text: String,
}

impl RepeatedDisagreement {
    /// The route the trigger applies to.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The stage the matter goes to.
    pub fn to_stage(&self) -> &str {
        &self.to_stage
    }

    /// How many similar disagreements (including the new one) trigger it.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Within how many calendar days.
    pub fn window_days(&self) -> u32 {
        self.window_days
    }

    /// The source's wording.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Rotherham: families are made aware of the challenges raised; that the
/// family was told, and when, is a fact recorded on the case by
/// `recorded_by` of `side` (`domain::access::may_record_family_told`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyTold {
    route: String,
    recorded_by: Vec<Role>,
    side: crate::domain::policy::Side,
    text: String,
}

impl FamilyTold {
    /// The route whose cases the family is told of.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The roles that record that the family was told.
    pub fn recorded_by(&self) -> &[Role] {
        &self.recorded_by
    }

    /// The side of the case they record it for (a board chair, on no
    /// side, is not held back by it, as in `domain::access::check`).
    pub fn side(&self) -> crate::domain::policy::Side {
        self.side
    }

    /// The source's wording.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Rotherham: a conference's step-down from a child protection plan to
/// child-in-need planning is recorded on a case of `route` by
/// `recorded_by` of `side` (`domain::access::may_record_step_down`), and
/// `after_days` calendar days after the conference the same people record
/// their check that a multi-agency CiN meeting took place and a CiN plan is
/// in place; if not, a new case is raised at `restart_stage` of `route`
/// between the same agencies (`domain::step_down`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDownCheck {
    route: String,
    restart_stage: String,
    after_days: u32,
    recorded_by: Vec<Role>,
    side: crate::domain::policy::Side,
    text: String,
}

impl StepDownCheck {
    /// The route whose cases record a step-down, and the route a failed
    /// check starts.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The roles that record the step-down and its check.
    pub fn recorded_by(&self) -> &[Role] {
        &self.recorded_by
    }

    /// The side of the case they record it for (a board chair, on no
    /// side, is not held back by it, as in `domain::access::check`).
    pub fn side(&self) -> crate::domain::policy::Side {
        self.side
    }

    /// The stage a failed check starts at.
    pub fn restart_stage(&self) -> &str {
        &self.restart_stage
    }

    /// Calendar days after the conference (six weeks: 42).
    pub fn after_days(&self) -> u32 {
        self.after_days
    }

    /// The source's wording.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Leeds: a request for a child protection conference backed by one of
/// `backed_by` should normally be agreed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConferenceRequestBacking {
    route: String,
    stage: String,
    backed_by: Vec<Role>,
    text: String,
}

impl ConferenceRequestBacking {
    /// The route of conference requests.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The stage where the backing applies.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// Roles whose backing makes the request normally agreed.
    pub fn backed_by(&self) -> &[Role] {
        &self.backed_by
    }

    /// The source's wording.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Builds a stage's problem from its route id and stage key.
type ProblemAt = fn(String, String) -> Problem;

fn not_empty(p: &mut Vec<Problem>, field: &str, value: &str) {
    if value.trim().is_empty() {
        p.push(Problem::Empty { field: field.to_owned() });
    }
}

fn key_ok(p: &mut Vec<Problem>, what: &'static str, value: &str) {
    let ok = !value.is_empty()
        && value.split('-').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if !ok {
        p.push(Problem::BadKey { what, value: value.to_owned() });
    }
}

fn roles_unique(p: &mut Vec<Problem>, field: &str, roles: &[Role]) {
    let mut seen = BTreeSet::new();
    for role in roles {
        if !seen.insert(*role) {
            p.push(Problem::RepeatedRole { field: field.to_owned(), role: *role });
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn protocols() -> Vec<Protocol> {
        builtin().expect("the built-in protocols are valid")
    }

    fn protocol(id: &str) -> Protocol {
        protocols().into_iter().find(|p| p.id() == id).expect("known protocol")
    }

    #[test]
    fn builtin_loads_all_five() {
        let ps = protocols();
        let ids: Vec<&str> = ps.iter().map(Protocol::id).collect();
        assert_eq!(ids, ["western-bay", "pan-sussex", "leeds", "rotherham", "six-stage"]);
        let sources: Vec<&str> = ps.iter().map(Protocol::source).collect();
        assert_eq!(sources, ["seed 000", "seed 001", "seed 002", "seed 003", "seed 004"]);
        for p in &ps {
            assert_eq!(p.version(), 1, "{}", p.id());
            assert_eq!(p.calendar(), "england-and-wales", "{}", p.id());
            assert!(p.category("other").is_some(), "{}", p.id());
        }
    }

    #[track_caller]
    fn check_stages(protocol: &str, route: &str, expected: &[&str]) {
        let p = super::tests::protocol(protocol);
        let keys: Vec<&str> =
            p.route(route).expect("known route").stages().iter().map(Stage::key).collect();
        assert_eq!(keys, expected, "{protocol} {route}");
    }

    #[test]
    fn routes_have_the_sources_stages() {
        check_stages(
            "western-bay",
            "main",
            &["informal", "stage-1", "stage-2", "stage-3", "stage-4"],
        );
        let six = ["stage-1", "stage-2", "stage-3", "stage-4", "stage-5", "stage-6"];
        check_stages("pan-sussex", "main", &six);
        check_stages("six-stage", "main", &six);
        let tail = ["board-representative", "board-manager", "board-chair"];
        let with_tail = |head: &[&'static str]| [head, &tail[..]].concat();
        check_stages(
            "leeds",
            "referral-enquiry",
            &with_tail(&["professionals", "first-line-managers", "senior-managers"]),
        );
        check_stages("leeds", "conference-request", &with_tail(&["request", "senior-support"]));
        check_stages(
            "leeds",
            "conference-dissent",
            &["line-management", "board-manager", "board-chair"],
        );
        check_stages(
            "leeds",
            "protection-plan",
            &with_tail(&["first-line-managers", "senior-managers"]),
        );
        check_stages(
            "rotherham",
            "practice",
            &["stage-1", "stage-2", "stage-3", "stage-4", "practice-review-group"],
        );
        check_stages("rotherham", "challenge", &["stage-1", "stage-2", "stage-3", "stage-4"]);
    }

    #[track_caller]
    fn check_next(p: &Protocol, route: &str, key: &str, expected: Option<&str>) {
        assert_eq!(
            p.next_stage(route, key).map(Stage::key),
            expected,
            "next_stage({route:?}, {key:?}) of {}",
            p.id()
        );
    }

    #[test]
    fn next_stage_lookups() {
        let wb = protocol("western-bay");
        check_next(&wb, "main", "informal", Some("stage-1"));
        check_next(&wb, "main", "stage-3", Some("stage-4"));
        check_next(&wb, "main", "stage-4", None);
        check_next(&wb, "main", "stage-9", None);
        check_next(&wb, "nope", "informal", None);
        let leeds = protocol("leeds");
        check_next(&leeds, "conference-dissent", "line-management", Some("board-manager"));
        check_next(&leeds, "conference-request", "senior-support", Some("board-representative"));
        check_next(&leeds, "referral-enquiry", "board-chair", None);
        let rotherham = protocol("rotherham");
        check_next(&rotherham, "practice", "stage-4", Some("practice-review-group"));
        check_next(&rotherham, "challenge", "stage-3", Some("stage-4"));
    }

    #[track_caller]
    fn check_entries(p: &Protocol, route: &str, expected: &[&str]) {
        let keys: Vec<&str> = p.entry_stages(route).into_iter().map(Stage::key).collect();
        assert_eq!(keys, expected, "entry_stages({route:?}) of {}", p.id());
    }

    #[test]
    fn entry_stage_lookups() {
        check_entries(&protocol("western-bay"), "main", &["informal"]);
        check_entries(&protocol("western-bay"), "nope", &[]);
        check_entries(&protocol("pan-sussex"), "main", &["stage-1"]);
        let leeds = protocol("leeds");
        check_entries(&leeds, "conference-request", &["request", "senior-support"]);
        check_entries(&leeds, "protection-plan", &["first-line-managers"]);
        check_entries(&protocol("rotherham"), "challenge", &["stage-1"]);
        check_entries(&protocol("six-stage"), "main", &["stage-1"]);
    }

    #[test]
    fn stage_and_route_lookups() {
        let wb = protocol("western-bay");
        assert_eq!(wb.route("main").map(Route::id), Some("main"));
        assert!(wb.route("challenge").is_none());
        assert_eq!(wb.stage("main", "stage-2").map(Stage::number), Some(2));
        assert_eq!(wb.stage("main", "informal").map(Stage::number), Some(0));
        assert!(wb.stage("main", "stage-5").is_none());
        assert_eq!(wb.route("main").and_then(|r| r.position("stage-3")), Some(3));
    }

    #[test]
    fn western_bay_records_and_report() {
        let wb = protocol("western-bay");
        let s2 = wb.stage("main", "stage-2").unwrap();
        let kinds: Vec<(RecordKind, Option<&str>)> =
            s2.records().iter().map(|r| (r.kind(), r.of_stage())).collect();
        assert_eq!(
            kinds,
            [
                (RecordKind::Discussion, Some("stage-1")),
                (RecordKind::Analysis, None),
                (RecordKind::Discussion, None),
            ]
        );
        assert_eq!(s2.raising_lead().roles(), [Role::SafeguardingLead]);
        let s3 = wb.stage("main", "stage-3").unwrap();
        assert_eq!(s3.report(), ReportUse::Required);
        assert!(s3.board_told());
        assert!(s3.records().iter().any(|r| r.kind() == RecordKind::Report
            && r.text().contains("WBSCB Administrator")));
        assert_eq!(wb.stage("main", "stage-2").unwrap().report(), ReportUse::None);
        for kind in ExclusionKind::ALL {
            assert!(wb.exclusion(kind).is_some(), "{kind:?}");
        }
        assert!(
            wb.exclusion(ExclusionKind::ComplaintAboutProfessional)
                .unwrap()
                .redirect()
                .contains("complaints procedure")
        );
    }

    #[test]
    fn pan_sussex_timeframes_and_repeated_disagreements() {
        let ps = protocol("pan-sussex");
        for stage in ps.route("main").unwrap().stages() {
            assert!(stage.escalator_states_timeframe(), "{}", stage.key());
            assert_eq!(stage.time_limit_working_days(), None);
        }
        let rule = ps.rules().repeated_disagreement().unwrap();
        assert_eq!((rule.route(), rule.to_stage()), ("main", "stage-5"));
        assert_eq!((rule.count(), rule.window_days()), (3, 365));
        // Seniority is not one line: heads of service before safeguarding leads.
        assert_eq!(
            ps.stage("main", "stage-3").unwrap().raising_lead().roles(),
            [Role::HeadOfService]
        );
        assert_eq!(
            ps.stage("main", "stage-4").unwrap().raising_lead().roles(),
            [Role::SafeguardingLead]
        );
        let keys: Vec<&str> = ps.categories().iter().map(Category::key).collect();
        assert_eq!(keys.len(), 8);
        assert!(keys.contains(&"information-sharing"));
    }

    /// A stage's overall limit and its milestones as (key, side, days,
    /// after, record).
    #[track_caller]
    fn check_limits(
        p: &Protocol,
        stage: &str,
        limit: Option<u32>,
        expected: &[(&str, &str, u32, &str, &str)],
    ) {
        use crate::domain::milestone::After;
        let s = p.stage("challenge", stage).unwrap();
        assert_eq!(s.time_limit_working_days(), limit, "{stage}");
        let ms = s.milestones();
        let got: Vec<(&str, &str, u32, &str, &str)> = ms
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let after = match m.after(i.checked_sub(1).map(|j| &ms[j])) {
                    After::Start => "start",
                    After::Milestone(k) => k,
                };
                (m.key(), m.side().as_str(), m.within_working_days(), after, m.record().as_str())
            })
            .collect();
        assert_eq!(got, expected, "{stage}");
    }

    #[test]
    fn rotherham_challenge_limits_and_rules() {
        let r = protocol("rotherham");
        let form = |days, after| ("form", "raising", days, after, "form");
        let response = |days| ("response", "receiving", days, "form", "response");
        check_limits(&r, "stage-1", Some(13), &[form(3, "start"), response(10)]);
        check_limits(&r, "stage-2", Some(7), &[form(2, "start"), response(5)]);
        check_limits(
            &r,
            "stage-3",
            Some(5),
            &[("director", "raising", 1, "start", "notification"), form(1, "start"), response(4)],
        );
        check_limits(&r, "stage-4", None, &[]);
        assert_eq!(r.rules().family_told().unwrap().route(), "challenge");
        let check = r.rules().step_down_check().unwrap();
        assert_eq!(
            (check.route(), check.restart_stage(), check.after_days()),
            ("challenge", "stage-1", 42)
        );
        assert_eq!(
            (check.recorded_by(), check.side()),
            (&[Role::SafeguardingLead][..], crate::domain::policy::Side::Raising)
        );
    }

    #[test]
    fn leeds_backing_and_six_stage_questions() {
        let leeds = protocol("leeds");
        let backing = leeds.rules().conference_request_backing().unwrap();
        assert_eq!((backing.route(), backing.stage()), ("conference-request", "senior-support"));
        assert_eq!(backing.backed_by(), [Role::HeadOfService, Role::SafeguardingLead]);
        assert!(leeds.exclusions().is_empty());
        // The decision to convene a conference rests with children's social
        // care: requests are raised with it; the other routes name no kind.
        for route in leeds.routes() {
            let kinds = route.receiving_agency_kinds();
            match route.id() {
                "conference-request" => assert_eq!(kinds, [AgencyKind::ChildrensSocialCare]),
                other => assert!(kinds.is_empty(), "{other}"),
            }
        }

        let six = protocol("six-stage");
        let questions = six.stage("main", "stage-1").unwrap().questions();
        assert_eq!(questions.len(), 5);
        assert_eq!(questions.iter().map(|g| g.items().len()).sum::<usize>(), 13);
        assert_eq!(
            six.stage("main", "stage-4").unwrap().receiving_lead().wording(),
            "The Child Protection Manager in the local area"
        );
    }

    #[test]
    fn exclusion_kinds_round_trip() {
        for kind in ExclusionKind::ALL {
            assert_eq!(ExclusionKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ExclusionKind::parse("complaint"), None);
    }

    /// A small valid protocol; each line a test changes carries a tag.
    const BASE: &str = r#"
id = "test"
version = 1
name = "Test"
source = "test"
calendar = "england-and-wales"
description = "A test protocol."
read_statistics = ["board_chair"]
categories = [{ key = "other", name = "Other" }]

[[routes]]
id = "main"
name = "Main"
description = "The main route."

[[routes.stages]]
key = "one"
number = 1
name = "One"
description = "First."
entry = true
raising_lead = { roles = ["practitioner"], wording = "P" }
receiving_lead = { roles = ["practitioner"], wording = "P" }
# extra one

[routes.stages.allow]
raise = ["practitioner"]
start_higher = [] # one
add_record = ["practitioner"]
record_view = []
agree_action = []
escalate = ["practitioner"] # one
skip_stage = [] # one
accept = []
resolve = ["practitioner"] # one
withdraw = []
read_audit_trail = []
read_report = [] # one

[[routes.stages]]
key = "two"
number = 2 # two
name = "Two"
description = "Second."
raising_lead = { roles = ["manager"], wording = "M" }
receiving_lead = { roles = ["manager"], wording = "M" }
# extra two

[routes.stages.allow]
raise = [] # two
start_higher = []
add_record = ["manager"]
record_view = []
agree_action = []
escalate = ["manager"]
skip_stage = [] # two
accept = []
resolve = ["manager"] # two
withdraw = []
read_audit_trail = []
read_report = []

[[routes.stages]]
key = "three"
number = 3
name = "Three"
description = "Third."
raising_lead = { roles = ["board_chair"], wording = "B" }
receiving_lead = { roles = ["board_chair"], wording = "B" }

[routes.stages.allow]
raise = []
start_higher = [] # three
add_record = ["board_chair"]
record_view = [] # three
agree_action = []
escalate = [] # three
skip_stage = []
accept = [] # three
resolve = ["board_chair"]
withdraw = [] # three
read_audit_trail = []
read_report = []
"#;

    /// What a broken file must produce.
    enum Expect {
        /// Parses and validates.
        Valid,
        /// A parse error whose message contains this.
        ParseMentions(&'static str),
        /// Exactly these problems.
        Problems(Vec<Problem>),
    }

    #[track_caller]
    fn check(name: &str, edits: &[(&str, &str)], expected: Expect) {
        let mut text = BASE.to_owned();
        for (from, to) in edits {
            assert!(text.contains(from), "{name}: BASE lacks {from:?}");
            text = text.replacen(from, to, 1);
        }
        check_text(name, &text, expected);
    }

    #[test]
    fn a_stage_names_its_participants_well() {
        use Expect::{ParseMentions, Problems, Valid};
        const OK: &str = r#"{ agency_kind = "childrens_social_care", roles = ["safeguarding_lead"], added_by = ["manager"], may = ["add_record"], wording = "CPM" }"#;
        let at = |edit: &str| vec![("# extra two", format!("participants = [{edit}]"))];
        #[track_caller]
        fn row(name: &str, edits: Vec<(&str, String)>, expected: Expect) {
            let edits: Vec<(&str, &str)> = edits.iter().map(|(a, b)| (*a, b.as_str())).collect();
            check(name, &edits, expected);
        }
        let malformed = |problem| {
            Problems(vec![Problem::Malformed {
                field: "route main stage two participant childrens_social_care".to_owned(),
                problem,
            }])
        };
        row("a participant", at(OK), Valid);
        row("none", at(""), Valid);
        row(
            "a kind twice",
            at(&format!("{OK}, {OK}")),
            malformed("the stage names this agency kind twice"),
        );
        row(
            "no roles",
            at(&OK.replace(r#"roles = ["safeguarding_lead"]"#, "roles = []")),
            malformed("a participant names the roles that act for it"),
        );
        row(
            "no one brings it in",
            at(&OK.replace(r#"added_by = ["manager"]"#, "added_by = []")),
            malformed("a participant names the roles that bring it in (added_by)"),
        );
        row(
            "a board chair for an agency",
            at(&OK.replace("\"safeguarding_lead\"]", "\"board_chair\"]")),
            malformed("a participant acts for its agency; the board chair acts for the board"),
        );
        row(
            "steering the dispute",
            at(&OK.replace(r#"may = ["add_record"]"#, r#"may = ["escalate"]"#)),
            malformed("a participant may only add_record, read_audit_trail and read_report"),
        );
        row(
            "an unknown action",
            at(&OK.replace(r#"may = ["add_record"]"#, r#"may = ["convene"]"#)),
            ParseMentions("unknown action \"convene\""),
        );
        row(
            "an unknown kind",
            at(&OK.replace("childrens_social_care", "council")),
            ParseMentions("council"),
        );
        row(
            "no wording",
            at(&OK.replace(r#"wording = "CPM""#, r#"wording = " ""#)),
            Problems(vec![Problem::Empty {
                field: "route main stage two participant childrens_social_care wording".to_owned(),
            }]),
        );
    }

    #[track_caller]
    fn check_text(name: &str, text: &str, expected: Expect) {
        let got = parse_protocol(text);
        match (expected, got) {
            (Expect::Valid, Ok(_)) => {}
            (Expect::ParseMentions(part), Err(ProtocolError::Parse { message })) => {
                assert!(message.contains(part), "{name}: {message:?} lacks {part:?}");
            }
            (Expect::Problems(want), Err(ProtocolError::Invalid { problems, .. })) => {
                assert_eq!(problems, want, "{name}");
            }
            (_, got) => panic!("{name}: unexpected result {got:?}"),
        }
    }

    fn at(stage: &str) -> (String, String) {
        ("main".to_owned(), stage.to_owned())
    }

    #[test]
    fn validation_table() {
        use Expect::*;
        check("base is valid", &[], Valid);
        check("not toml", &[("id = \"test\"", "id = ")], ParseMentions("line"));
        check(
            "unknown role",
            &[("resolve = [\"practitioner\"] # one", "resolve = [\"boss\"]")],
            ParseMentions("boss"),
        );
        check(
            "missing action key",
            &[("read_report = [] # one", "")],
            ParseMentions("read_report"),
        );
        check("unknown key", &[("# extra one", "colour = \"red\"")], ParseMentions("colour"));
        check(
            "version zero",
            &[("version = 1", "version = 0")],
            Problems(vec![Problem::VersionZero]),
        );
        check(
            "bad id",
            &[("id = \"test\"", "id = \"Test Protocol\"")],
            Problems(vec![Problem::BadKey {
                what: "protocol id",
                value: "Test Protocol".to_owned(),
            }]),
        );
        check(
            "empty name",
            &[("name = \"Test\"", "name = \" \"")],
            Problems(vec![Problem::Empty { field: "name".to_owned() }]),
        );
        check(
            "no other category",
            &[("key = \"other\"", "key = \"misc\"")],
            Problems(vec![Problem::NoOtherCategory]),
        );
        let (route, stage) = at("one");
        check(
            "duplicate stage key",
            &[("key = \"two\"", "key = \"one\"")],
            Problems(vec![Problem::DuplicateStage { route, stage }]),
        );
        let (route, stage) = at("two");
        check(
            "numbers not ascending",
            &[("number = 2 # two", "number = 1")],
            Problems(vec![Problem::NumberNotAscending { route, stage }]),
        );
        let (route, stage) = at("one");
        check(
            "nobody escalates",
            &[("escalate = [\"practitioner\"] # one", "escalate = []")],
            Problems(vec![Problem::NoEscalator { route, stage }]),
        );
        let (route, stage) = at("three");
        check(
            "escalate from the last stage",
            &[("escalate = [] # three", "escalate = [\"board_chair\"]")],
            Problems(vec![Problem::EscalateFromLast { route, stage }]),
        );
        let (route, stage) = at("two");
        check(
            "nobody resolves",
            &[("resolve = [\"manager\"] # two", "resolve = []")],
            Problems(vec![Problem::NoResolver { route, stage }]),
        );
        let (route, stage) = at("two");
        check(
            "raise above the entry",
            &[("raise = [] # two", "raise = [\"manager\"]")],
            Problems(vec![Problem::RaiseAtNonEntry { route, stage }]),
        );
        let (route, stage) = at("one");
        check(
            "start higher at the entry",
            &[("start_higher = [] # one", "start_higher = [\"manager\"]")],
            Problems(vec![Problem::StartHigherAtEntry { route, stage }]),
        );
        let (route, stage) = at("one");
        check(
            "first stage not an entry",
            &[("entry = true", "")],
            Problems(vec![
                Problem::FirstStageNotEntry { route: route.clone() },
                Problem::RaiseAtNonEntry { route, stage },
            ]),
        );
        let (route, stage) = at("two");
        check(
            "skip with one stage above",
            &[("skip_stage = [] # two", "skip_stage = [\"manager\"]")],
            Problems(vec![Problem::NothingToSkip { route, stage }]),
        );
        check(
            "skip with two stages above",
            &[
                ("skip_stage = [] # one", "skip_stage = [\"manager\"]"),
                ("start_higher = [] # three", "start_higher = [\"manager\"]"),
            ],
            Valid,
        );
        // Entries that can never apply (`policy::NeverApplies`).
        check(
            "skip that lands nowhere",
            &[("skip_stage = [] # one", "skip_stage = [\"manager\"]")],
            Problems(vec![Problem::NeverApplies {
                field: "route main stage one allow.skip_stage".to_owned(),
                role: Role::Manager,
                why: NeverApplies::SkipLandsNowhere,
            }]),
        );
        check(
            "skip that lands for another role only",
            &[
                ("skip_stage = [] # one", "skip_stage = [\"practitioner\", \"manager\"]"),
                ("start_higher = [] # three", "start_higher = [\"manager\"]"),
            ],
            Problems(vec![Problem::NeverApplies {
                field: "route main stage one allow.skip_stage".to_owned(),
                role: Role::Practitioner,
                why: NeverApplies::SkipLandsNowhere,
            }]),
        );
        check(
            "a chair recording a view",
            &[("record_view = [] # three", "record_view = [\"board_chair\"]")],
            Problems(vec![Problem::NeverApplies {
                field: "route main stage three allow.record_view".to_owned(),
                role: Role::BoardChair,
                why: NeverApplies::ActsForNoParty,
            }]),
        );
        check(
            "a chair withdrawing and accepting, on no side",
            &[
                ("accept = [] # three", "accept = [\"board_chair\"]"),
                ("withdraw = [] # three", "withdraw = [\"board_chair\"]"),
            ],
            Valid,
        );
        check(
            "a route naming its receiving agencies' kind",
            &[(
                "description = \"The main route.\"",
                "description = \"The main route.\"\nreceiving_agency_kinds = [\"childrens_social_care\"]",
            )],
            Valid,
        );
        check(
            "a kind named twice",
            &[(
                "description = \"The main route.\"",
                "description = \"The main route.\"\nreceiving_agency_kinds = [\"health\", \"police\", \"health\"]",
            )],
            Problems(vec![Problem::RepeatedAgencyKind {
                route: "main".to_owned(),
                kind: AgencyKind::Health,
            }]),
        );
        check(
            "an unknown kind",
            &[(
                "description = \"The main route.\"",
                "description = \"The main route.\"\nreceiving_agency_kinds = [\"nhs\"]",
            )],
            ParseMentions("nhs"),
        );
        check(
            "zero-day limit",
            &[("# extra two", "time_limit_working_days = 0")],
            Problems(vec![Problem::ZeroDays {
                field: "route main stage two time_limit_working_days".to_owned(),
            }]),
        );
        const RECORDS: &str =
            "records = [{ kind = \"form\", text = \"F\" }, { kind = \"response\", text = \"R\" }]";
        let milestones =
            |limit: &str, list: &str| format!("{limit}\n{RECORDS}\nmilestones = [{list}]");
        const FORM: &str = "{ key = \"form\", name = \"F\", side = \"raising\", roles = [\"manager\"], within_working_days = 3, record = \"form\" }";
        const RESPONSE: &str = "{ key = \"response\", name = \"R\", side = \"receiving\", roles = [\"manager\"], within_working_days = 10, record = \"response\" }";
        let (route, stage) = at("two");
        check(
            "limit shorter than the milestones' chain",
            &[(
                "# extra two",
                &milestones("time_limit_working_days = 5", &format!("{FORM}, {RESPONSE}")),
            )],
            Problems(vec![Problem::TimeLimitTooShort { route, stage }]),
        );
        check(
            "limit covering the chain",
            &[(
                "# extra two",
                &milestones("time_limit_working_days = 13", &format!("{FORM}, {RESPONSE}")),
            )],
            Valid,
        );
        check(
            "two milestones from the start: the chain is the longer",
            &[(
                "# extra two",
                &milestones(
                    "time_limit_working_days = 10",
                    &format!("{FORM}, {}", RESPONSE.replace("record", "after = \"start\", record")),
                ),
            )],
            Valid,
        );
        let field = || "route main stage two milestone response".to_owned();
        for (name, edit, problem) in [
            (
                "after a later or unknown milestone",
                RESPONSE.replace("record", "after = \"later\", record"),
                "after must be \"start\" or the key of an earlier milestone",
            ),
            (
                "owed by either side",
                RESPONSE.replace("receiving", "either"),
                "a milestone is owed by one side: raising or receiving",
            ),
            (
                "owed by no role",
                RESPONSE.replace("[\"manager\"]", "[]"),
                "a milestone names the roles that owe it",
            ),
            (
                "completed by a record the stage does not list",
                RESPONSE.replace("record = \"response\"", "record = \"meeting\""),
                "its record kind is not among the stage's records",
            ),
        ] {
            check(
                name,
                &[(
                    "# extra two",
                    &milestones("time_limit_working_days = 13", &format!("{FORM}, {edit}")),
                )],
                Problems(vec![Problem::Malformed { field: field(), problem }]),
            );
        }
        check(
            "a key used twice",
            &[(
                "# extra two",
                &milestones(
                    "time_limit_working_days = 13",
                    &format!(
                        "{FORM}, {}",
                        RESPONSE.replace("\"response\", name", "\"form\", name")
                    ),
                ),
            )],
            Problems(vec![Problem::Malformed {
                field: "route main stage two milestone form".to_owned(),
                problem: "the key is used twice in the stage",
            }]),
        );
        check(
            "a zero-day milestone",
            &[(
                "# extra two",
                &milestones(
                    "time_limit_working_days = 13",
                    &format!("{FORM}, {}", RESPONSE.replace("= 10", "= 0")),
                ),
            )],
            Problems(vec![Problem::ZeroDays { field: field() }]),
        );
        let (route, stage) = at("two");
        check(
            "record of a later stage",
            &[(
                "# extra two",
                "records = [{ kind = \"discussion\", of_stage = \"three\", text = \"x\" }]",
            )],
            Problems(vec![Problem::RecordOfUnknownStage {
                route,
                stage,
                of_stage: "three".to_owned(),
            }]),
        );
        check(
            "record of an earlier stage",
            &[(
                "# extra two",
                "records = [{ kind = \"analysis\", of_stage = \"one\", text = \"x\" }]",
            )],
            Valid,
        );
        check(
            "repeated role",
            &[(
                "resolve = [\"practitioner\"] # one",
                "resolve = [\"practitioner\", \"practitioner\"]",
            )],
            Problems(vec![Problem::RepeatedRole {
                field: "route main stage one allow.resolve".to_owned(),
                role: Role::Practitioner,
            }]),
        );
        let (route, stage) = at("one");
        check(
            "report read where there is none",
            &[("read_report = [] # one", "read_report = [\"board_chair\"]")],
            Problems(vec![Problem::ReportNotAvailable { route, stage }]),
        );
        check(
            "rule on an unknown route",
            &[
                ("# extra one", ""),
                (
                    "categories = [{ key = \"other\", name = \"Other\" }]",
                    "categories = [{ key = \"other\", name = \"Other\" }]\n[rules.family_told]\nroute = \"challenge\"\nrecorded_by = [\"manager\"]\nside = \"raising\"\ntext = \"t\"",
                ),
            ],
            Problems(vec![Problem::RuleUnknownRoute {
                rule: "family_told",
                route: "challenge".to_owned(),
            }]),
        );
        let family_told = |rule: &str| {
            format!(
                "categories = [{{ key = \"other\", name = \"Other\" }}]\n[rules.family_told]\nroute = \"main\"\n{rule}text = \"t\""
            )
        };
        let categories = "categories = [{ key = \"other\", name = \"Other\" }]";
        let with = family_told("recorded_by = [\"manager\"]\nside = \"raising\"\n");
        check("family told, recorded by a side's role", &[(categories, &with)], Valid);
        let with = family_told("recorded_by = []\nside = \"raising\"\n");
        check(
            "family told, recorded by nobody",
            &[(categories, &with)],
            Problems(vec![Problem::Empty { field: "rules.family_told.recorded_by".to_owned() }]),
        );
        let with = family_told("recorded_by = [\"manager\"]\n");
        check("family told, on no side", &[(categories, &with)], ParseMentions("side"));
        let step_down = |rule: &str| {
            format!(
                "categories = [{{ key = \"other\", name = \"Other\" }}]\n[rules.step_down_check]\nroute = \"main\"\nrestart_stage = \"one\"\nafter_days = 42\n{rule}text = \"t\""
            )
        };
        let with = step_down("recorded_by = [\"manager\"]\nside = \"raising\"\n");
        check("step-down check, recorded by a side's role", &[(categories, &with)], Valid);
        let with = step_down("recorded_by = []\nside = \"raising\"\n");
        check(
            "step-down check, recorded by nobody",
            &[(categories, &with)],
            Problems(vec![Problem::Empty {
                field: "rules.step_down_check.recorded_by".to_owned(),
            }]),
        );
        let with = step_down("recorded_by = [\"manager\"]\n");
        check("step-down check, on no side", &[(categories, &with)], ParseMentions("side"));
        let (route, stage) = at("one");
        check(
            "every problem is listed",
            &[
                ("version = 1", "version = 0"),
                ("resolve = [\"practitioner\"] # one", "resolve = []"),
            ],
            Problems(vec![Problem::VersionZero, Problem::NoResolver { route, stage }]),
        );

        let route_part = &BASE[BASE.find("[[routes]]").unwrap()..];
        check_text(
            "duplicate route",
            &format!("{BASE}\n{route_part}"),
            Problems(vec![Problem::DuplicateRoute { route: "main".to_owned() }]),
        );
    }

    #[test]
    fn invalid_protocol_error_reads_clearly() {
        let text = BASE.replacen("escalate = [\"practitioner\"] # one", "escalate = []", 1);
        let error = parse_protocol(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "protocol test is invalid: route main stage one: at least one role must be able to escalate"
        );
    }
}

/// Protocol files are text from outside the code: whatever they hold,
/// parsing answers `Ok` or `Err` and never panics.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    /// One edit of a valid file.
    #[derive(Debug, Clone)]
    enum Edit {
        RemoveLine(usize),
        ReplaceLine(usize, String),
        DuplicateLine(usize),
        SwapLines(usize, usize),
        /// Every number on the line becomes this text.
        Renumber(usize, String),
        Truncate(usize),
        Insert(usize, String),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let text = prop_oneof![
            "\\PC{0,40}",
            Just(String::new()),
            Just("[[routes]]".to_owned()),
            Just("[[routes.stages]]".to_owned()),
            Just("key = \"\"".to_owned()),
            Just("}{][\"'\\".to_owned()),
        ];
        let number = prop_oneof![
            Just("0".to_owned()),
            Just("-1".to_owned()),
            Just("99999999999999999999".to_owned()),
            Just("1.5".to_owned()),
            Just("\"x\"".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
        ];
        prop_oneof![
            any::<usize>().prop_map(Edit::RemoveLine),
            (any::<usize>(), text.clone()).prop_map(|(i, t)| Edit::ReplaceLine(i, t)),
            any::<usize>().prop_map(Edit::DuplicateLine),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
            (any::<usize>(), number).prop_map(|(i, n)| Edit::Renumber(i, n)),
            any::<usize>().prop_map(Edit::Truncate),
            (any::<usize>(), text).prop_map(|(i, t)| Edit::Insert(i, t)),
        ]
    }

    fn apply(text: &str, edit: &Edit) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let n = lines.len().max(1);
        match edit {
            Edit::RemoveLine(i) => {
                lines.remove(i % n);
            }
            Edit::ReplaceLine(i, t) => lines[i % n] = t.clone(),
            Edit::DuplicateLine(i) => {
                let line = lines[i % n].clone();
                lines.insert(i % n, line);
            }
            Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
            Edit::Renumber(i, num) => {
                let line = &lines[i % n];
                let mut out = String::new();
                let mut in_number = false;
                for c in line.chars() {
                    if c.is_ascii_digit() {
                        if !in_number {
                            out.push_str(num);
                        }
                        in_number = true;
                    } else {
                        in_number = false;
                        out.push(c);
                    }
                }
                lines[i % n] = out;
            }
            Edit::Truncate(at) => {
                let joined = lines.join("\n");
                let mut at = at % (joined.len() + 1);
                while !joined.is_char_boundary(at) {
                    at -= 1;
                }
                return joined[..at].to_owned();
            }
            Edit::Insert(i, t) => lines.insert(i % (lines.len() + 1), t.clone()),
        }
        lines.join("\n")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = parse_protocol(&text);
        }

        #[test]
        fn arbitrary_bytes_as_text_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_protocol(&String::from_utf8_lossy(&bytes));
        }

        /// A few edits of a built-in file: an answer every time; when it is
        /// still accepted, the result is a valid protocol all the same.
        #[test]
        fn edited_builtin_files_never_panic(
            file in 0..BUILTIN_FILES.len(),
            edits in prop::collection::vec(edit(), 1..4),
        ) {
            let mut text = BUILTIN_FILES[file].1.to_owned();
            for e in &edits {
                text = apply(&text, e);
            }
            if let Ok(p) = parse_protocol(&text) {
                prop_assert!(p.problems().is_empty());
            }
        }
    }
}

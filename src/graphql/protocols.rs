//! The protocols this server knows: what a front end needs to offer the
//! right routes, stages, categories and exclusions; every stored version
//! with who published it; checking a definition (`validateProtocol`),
//! publishing one (`publishProtocolVersion`) and what changed between two
//! versions (`protocolDiff`).

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use sea_orm::DatabaseConnection;

use super::directory::{AgencyKind, Partnership};
use super::error::{GqlResult, bad_input};
use super::records::RecordKind;
use super::scalars::DateTime;
use super::workflow::ExclusionKind;
use crate::domain::actor::Viewer;
use crate::domain::ids::PartnershipId;
use crate::domain::policy::Action;
use crate::domain::protocol as p;
use crate::service::protocols::{self as service, Library, Publisher, Stored};

/// A partnership's protocol for resolving professional differences (one
/// version of it; a case keeps the version it was raised under).
pub struct Protocol(Stored);

/// A partnership's protocol for resolving professional differences (one
/// version of it, as published; a case keeps the version it was raised
/// under, and a published version is never edited or deleted).
#[Object]
impl Protocol {
    /// When this version was published (stored; for a built-in one, when
    /// this server first stored it).
    async fn published_at(&self) -> DateTime {
        DateTime(self.0.published_at)
    }
    /// Who published it: the publishing client's subject, `cli:<user>` for
    /// the command line, or `builtin` for the built-in library.
    async fn published_by(&self) -> &str {
        &self.0.published_by
    }
    /// The SHA-256 of the definition's text exactly as published
    /// (lowercase hex).
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// The partnership that published this version; null for the
    /// built-in library.
    async fn partnership(&self) -> Option<Partnership> {
        self.0.partnership.clone().map(Partnership)
    }
    /// The policy table this version implies: who may take each action at
    /// each stage, and which side (the rows of the built-ins'
    /// `policy.matrix`).
    async fn policy(&self) -> Vec<PolicyRow> {
        crate::domain::policy::table(&self.0.protocol).into_iter().map(PolicyRow::from).collect()
    }
    /// Stable id, e.g. `western-bay`.
    async fn id(&self) -> &str {
        self.0.protocol.id()
    }
    /// Version of the definition.
    async fn version(&self) -> u32 {
        self.0.protocol.version()
    }
    /// Name.
    async fn name(&self) -> &str {
        self.0.protocol.name()
    }
    /// The source document it models.
    async fn source(&self) -> &str {
        self.0.protocol.source()
    }
    /// Working-day calendar of its deadlines.
    async fn calendar(&self) -> &str {
        self.0.protocol.calendar()
    }
    /// What the protocol is for.
    async fn description(&self) -> &str {
        self.0.protocol.description()
    }
    /// Subject categories a case may have.
    async fn categories(&self) -> Vec<Category<'_>> {
        self.0.protocol.categories().iter().map(Category).collect()
    }
    /// Matters the protocol excludes, with where each belongs instead.
    async fn exclusions(&self) -> Vec<Exclusion<'_>> {
        self.0.protocol.exclusions().iter().map(Exclusion).collect()
    }
    /// Routes through the protocol (most have one, `main`).
    async fn routes(&self) -> Vec<Route<'_>> {
        self.0.protocol.routes().iter().map(Route).collect()
    }
}

/// A subject category.
pub struct Category<'a>(&'a p::Category);

/// A subject category.
#[Object]
impl Category<'_> {
    /// Key, as `raiseCase` takes it.
    async fn key(&self) -> &str {
        self.0.key()
    }
    /// Name.
    async fn name(&self) -> &str {
        self.0.name()
    }
}

/// A matter the protocol does not cover.
pub struct Exclusion<'a>(&'a p::Exclusion);

/// A matter the protocol does not cover.
#[Object]
impl Exclusion<'_> {
    /// Which matter.
    async fn kind(&self) -> ExclusionKind {
        self.0.kind().into()
    }
    /// The protocol's words.
    async fn text(&self) -> &str {
        self.0.text()
    }
    /// Where it belongs instead.
    async fn redirect(&self) -> &str {
        self.0.redirect()
    }
}

/// An ordered ladder of stages.
pub struct Route<'a>(&'a p::Route);

/// An ordered ladder of stages.
#[Object]
impl Route<'_> {
    /// Id, as `raiseCase` takes it.
    async fn id(&self) -> &str {
        self.0.id()
    }
    /// Name.
    async fn name(&self) -> &str {
        self.0.name()
    }
    /// When this route applies.
    async fn description(&self) -> &str {
        self.0.description()
    }
    /// The kinds of agency a case on this route is raised with (its
    /// receiving agency); empty when any kind may be. `raiseCase` refuses
    /// another kind with `BAD_USER_INPUT` on `receivingAgencyId` (Leeds:
    /// a request for a child protection conference goes to children's
    /// social care, with whom the decision rests).
    async fn receiving_agency_kinds(&self) -> Vec<AgencyKind> {
        self.0.receiving_agency_kinds().iter().map(|&k| k.into()).collect()
    }
    /// The stages, lowest first.
    async fn stages(&self) -> Vec<Stage<'_>> {
        self.0.stages().iter().map(Stage).collect()
    }
}

/// One step of the ladder.
pub struct Stage<'a>(&'a p::Stage);

/// One step of the ladder.
#[Object]
impl Stage<'_> {
    /// Key, e.g. `stage-2`.
    async fn key(&self) -> &str {
        self.0.key()
    }
    /// Number in the protocol's own numbering.
    async fn number(&self) -> u32 {
        self.0.number()
    }
    /// Name.
    async fn name(&self) -> &str {
        self.0.name()
    }
    /// What happens at this stage.
    async fn description(&self) -> &str {
        self.0.description()
    }
    /// Whether a case may be raised here in the normal way.
    async fn is_entry(&self) -> bool {
        self.0.is_entry()
    }
    /// Time limit in working days, where the protocol gives one.
    async fn time_limit_working_days(&self) -> Option<u32> {
        self.0.time_limit_working_days()
    }
    /// The steps timed separately inside this stage, in order (Rotherham's
    /// challenge: the form, then the response); empty where the stage has
    /// one time limit. A case at the stage is due by its next open
    /// milestone.
    async fn milestones(&self) -> Vec<StageMilestone<'_>> {
        let ms = self.0.milestones();
        ms.iter()
            .enumerate()
            .map(|(i, m)| StageMilestone { m, previous: i.checked_sub(1).map(|j| &ms[j]) })
            .collect()
    }
    /// Reasons for which a case may go up more than one stage from here
    /// without the immediate-risk justification, and how far; null where
    /// only immediate risk skips stages.
    async fn skip_for(&self) -> Option<SkipFor<'_>> {
        self.0.skip_for().map(SkipFor)
    }
    /// Whether the board is told when a case reaches this stage.
    async fn board_told(&self) -> bool {
        self.0.board_told()
    }
    /// Whether whoever escalates must state the timeframe for resolution.
    async fn escalator_states_timeframe(&self) -> bool {
        self.0.escalator_states_timeframe()
    }
    /// Whether a breach of this stage's deadline (its time limit, or one of
    /// its milestones) moves the case to the next stage by itself, as a
    /// change by the system (`CASE_ESCALATED`, audit actor
    /// `system:timers`); false where a person escalates and the breach is
    /// only announced (all five seed protocols).
    async fn escalates_on_breach(&self) -> bool {
        self.0.escalate_on_breach()
    }
    /// Who leads on the raising side, in the protocol's words.
    async fn raising_lead(&self) -> &str {
        self.0.raising_lead().wording()
    }
    /// Who leads on the receiving side, in the protocol's words.
    async fn receiving_lead(&self) -> &str {
        self.0.receiving_lead().wording()
    }
    /// The agencies beyond the two parties this stage brings into a case
    /// (`joinCase`), one per agency kind; empty where it brings in none.
    async fn participants(&self) -> Vec<StageParticipant<'_>> {
        self.0.participants().iter().map(StageParticipant).collect()
    }
    /// Kinds of record the protocol asks for at this stage.
    async fn required_records(&self) -> Vec<RecordKind> {
        self.0.records().iter().map(|r| r.kind().into()).collect()
    }
    /// The questions the protocol asks the professionals to work through
    /// at this stage (empty where it asks none).
    async fn questions(&self) -> Vec<QuestionGroup> {
        questions_of(self.0)
    }
    /// Who may take each action on a case at this stage: the roles, and
    /// for an action taken by a side of the case, which side. A case's
    /// `viewerCan` applies the same rule to the caller.
    async fn permissions(&self) -> Vec<StagePermission> {
        CASE_ACTIONS_AT_STAGE
            .into_iter()
            .map(|action| {
                let mut roles: Vec<Role> =
                    self.0.policy().roles(action).iter().map(|&r| r.into()).collect();
                roles.dedup();
                StagePermission {
                    action: action.into(),
                    roles,
                    side: self.0.sides().side(action).map(Into::into),
                }
            })
            .collect()
    }
}

/// The actions a stage's permissions list, in a stable order.
const CASE_ACTIONS_AT_STAGE: [Action; 12] = [
    Action::Raise,
    Action::StartHigher,
    Action::AddRecord,
    Action::RecordView,
    Action::AgreeAction,
    Action::Escalate,
    Action::SkipStage,
    Action::Accept,
    Action::Resolve,
    Action::Withdraw,
    Action::ReadAuditTrail,
    Action::ReadReport,
];

/// The questions of a stage, as the API shows them.
pub(crate) fn questions_of(stage: &p::Stage) -> Vec<QuestionGroup> {
    stage
        .questions()
        .iter()
        .map(|q| QuestionGroup { heading: q.heading().to_owned(), items: q.items().to_vec() })
        .collect()
}

/// A question the protocol asks at a stage, with the questions under it.
#[derive(SimpleObject, Clone)]
pub struct QuestionGroup {
    /// The heading question.
    pub heading: String,
    /// The questions under it (may be empty).
    pub items: Vec<String>,
}

/// Who may take one action at a stage.
#[derive(SimpleObject)]
pub struct StagePermission {
    /// The action.
    pub action: PolicyAction,
    /// The roles that may take it (empty: nobody).
    pub roles: Vec<Role>,
    /// Which side of the case may take it; null for actions no side rule
    /// applies to (raising a case, starting higher, reading).
    pub side: Option<Side>,
}

/// Something a role may do to or with a case.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::policy::Action")]
pub enum PolicyAction {
    /// Raise a case at this stage (an entry stage).
    Raise,
    /// Add a record.
    AddRecord,
    /// Record an agency's view.
    RecordView,
    /// Agree an action.
    AgreeAction,
    /// Escalate one stage up.
    Escalate,
    /// Acknowledge the case (the receiving side).
    Accept,
    /// Resolve the case.
    Resolve,
    /// Withdraw the case.
    Withdraw,
    /// Start a case at this stage, or be skipped to it (immediate risk).
    StartHigher,
    /// Skip stages upward from here (immediate risk).
    SkipStage,
    /// Read the audit trail.
    ReadAuditTrail,
    /// Read the Resolution of Professional Differences Report.
    ReadReport,
    /// Read the partnership's statistics (decided for the whole protocol).
    ReadStatistics,
}

/// An agency beyond the two parties that a stage brings into a case.
pub struct StageParticipant<'a>(&'a crate::domain::protocol::Participant);

/// An agency beyond the two parties that a stage brings into a case: its
/// kind, who acts for it, who brings it in and what it may do, at any
/// stage, while it takes part.
#[Object]
impl StageParticipant<'_> {
    /// The kind of agency brought in.
    async fn agency_kind(&self) -> AgencyKind {
        self.0.agency_kind().into()
    }
    /// The roles that act for it.
    async fn roles(&self) -> Vec<Role> {
        self.0.roles().iter().map(|&r| r.into()).collect()
    }
    /// The roles, of either party (or the board chair where named), that
    /// bring it in with `joinCase`.
    async fn added_by(&self) -> Vec<Role> {
        self.0.added_by().iter().map(|&r| r.into()).collect()
    }
    /// What its roles may do on the case while it takes part.
    async fn may(&self) -> Vec<PolicyAction> {
        self.0.may().iter().map(|&a| a.into()).collect()
    }
    /// Who joins, in the protocol's words.
    async fn wording(&self) -> &str {
        self.0.wording()
    }
}

/// A step timed separately inside a stage.
pub struct StageMilestone<'a> {
    m: &'a crate::domain::milestone::Milestone,
    previous: Option<&'a crate::domain::milestone::Milestone>,
}

/// A step timed separately inside a stage: who owes it, its limit, and the
/// record that completes it.
#[Object]
impl StageMilestone<'_> {
    /// Key within the stage, e.g. `form`.
    async fn key(&self) -> &str {
        self.m.key()
    }
    /// What is owed, in the protocol's words.
    async fn name(&self) -> &str {
        self.m.name()
    }
    /// The side that owes it.
    async fn side(&self) -> Side {
        self.m.side().into()
    }
    /// The roles of that side that owe it.
    async fn roles(&self) -> Vec<Role> {
        self.m.roles().iter().map(|&r| r.into()).collect()
    }
    /// Its limit in working days, counted from `after`.
    async fn within_working_days(&self) -> u32 {
        self.m.within_working_days()
    }
    /// Where its clock starts: `start` (the day the stage is reached) or
    /// the key of the milestone whose completion starts it.
    async fn after(&self) -> &str {
        match self.m.after(self.previous) {
            crate::domain::milestone::After::Start => "start",
            crate::domain::milestone::After::Milestone(key) => key,
        }
    }
    /// The kind of record that completes it, written by its side's agency.
    async fn record_kind(&self) -> RecordKind {
        self.m.record().into()
    }
}

/// Reasons that move a case more than one stage up without the
/// immediate-risk justification.
pub struct SkipFor<'a>(&'a p::SkipFor);

/// Reasons that move a case more than one stage up without the
/// immediate-risk justification (Rotherham's challenge: an overdue or
/// unsatisfactory response goes to stage 2 or 3).
#[Object]
impl SkipFor<'_> {
    /// The escalation reasons that may skip stages from here.
    async fn reasons(&self) -> Vec<super::workflow::EscalationReason> {
        use super::workflow::EscalationReason as R;
        self.0
            .reasons()
            .iter()
            .map(|r| match r {
                p::SkipReason::Overdue => R::Overdue,
                p::SkipReason::Unresolved => R::Unresolved,
            })
            .collect()
    }
    /// The highest stage key such an escalation may reach.
    async fn up_to(&self) -> &str {
        self.0.up_to()
    }
}

/// A role a person's token carries.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::role::Role")]
pub enum Role {
    /// A front-line professional.
    Practitioner,
    /// A line manager, supervisor or team manager.
    Manager,
    /// A named or designated safeguarding lead (or the protocol's
    /// equivalent).
    SafeguardingLead,
    /// A head of service or equivalent senior manager.
    HeadOfService,
    /// The chair of the safeguarding partnership or board.
    BoardChair,
}

/// Which side of a case may take an action.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::policy::Side")]
pub enum Side {
    /// Only the agency that raised the case.
    Raising,
    /// Only the agency that received it.
    Receiving,
    /// Either of the two.
    Either,
}

/// One row of a protocol's policy table: who may take one action at one
/// stage, and which side of the case.
#[derive(SimpleObject)]
pub struct PolicyRow {
    /// The route id; `*` for the protocol-wide statistics row.
    pub route: String,
    /// The stage key; `*` for the protocol-wide statistics row.
    pub stage: String,
    /// The action.
    pub action: PolicyAction,
    /// The roles that may.
    pub roles: Vec<Role>,
    /// The side of the case that may, for an action taken by a side.
    pub side: Option<Side>,
    /// The row as a line of the policy matrix: the action, a mark per
    /// role (practitioner, manager, safeguarding lead, head of service,
    /// board chair: `Y` may, `.` may not), then the side.
    pub line: String,
}

impl From<crate::domain::policy::PolicyRow> for PolicyRow {
    fn from(row: crate::domain::policy::PolicyRow) -> Self {
        Self {
            roles: row.roles().into_iter().map(Role::from).collect(),
            line: row.line().trim_end().to_owned(),
            side: row.side.map(Side::from),
            action: PolicyAction::from(row.action),
            route: row.route,
            stage: row.stage,
        }
    }
}

/// One problem of a protocol definition, with where it is.
#[derive(SimpleObject)]
pub struct ProtocolProblem {
    /// What is wrong.
    pub message: String,
    /// The field path, e.g. `routes[0].stages[2].time_limit_working_days`
    /// (indexes from 0, in the order written); empty for a problem of the
    /// text as a whole (a syntax error).
    pub path: String,
    /// The line in the definition, from 1; null when unknown.
    pub line: Option<u32>,
    /// The column in that line, from 1; null when unknown.
    pub column: Option<u32>,
}

impl From<crate::domain::definition::Located> for ProtocolProblem {
    fn from(p: crate::domain::definition::Located) -> Self {
        Self { message: p.message, path: p.path, line: p.line, column: p.column }
    }
}

/// What `validateProtocol` found.
#[derive(SimpleObject)]
pub struct ProtocolValidation {
    /// Whether the definition has no problem (it may be published as the
    /// next version of its protocol).
    pub valid: bool,
    /// Every problem, in the order the rules report them; empty when
    /// valid.
    pub problems: Vec<ProtocolProblem>,
    /// The definition's protocol id, when valid.
    pub protocol_id: Option<String>,
    /// The definition's version, when valid.
    pub version: Option<u32>,
    /// The policy table the definition implies, when valid: who may take
    /// each action at each stage, and which side.
    pub policy: Vec<PolicyRow>,
}

/// The kind of one change between two versions of a protocol.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::protocol_diff::ChangeKind")]
pub enum ProtocolChangeKind {
    /// A route the older version lacks.
    RouteAdded,
    /// A route the newer version lacks.
    RouteRemoved,
    /// A stage (by key) the older version's route lacks.
    StageAdded,
    /// A stage the newer version's route lacks.
    StageRemoved,
    /// A stage keeps its key under another name.
    StageRenamed,
    /// A stage's time limit in working days changed, came or went.
    TimeLimitChanged,
    /// The roles of a stage's raising or receiving lead changed.
    LeadRolesChanged,
    /// The side of the case that may take an action at a stage changed.
    SideChanged,
    /// A milestone (by key) the older stage lacks.
    MilestoneAdded,
    /// A milestone the newer stage lacks.
    MilestoneRemoved,
    /// A milestone's days, start, record, side or roles changed.
    MilestoneChanged,
    /// Whether reaching the stage tells the board changed.
    BoardToldChanged,
    /// A row of the policy table the older version lacks.
    PolicyRowAdded,
    /// A row of the policy table the newer version lacks (a changed row is
    /// one removed and one added).
    PolicyRowRemoved,
}

/// One change from the older version of a protocol to the newer.
#[derive(SimpleObject)]
pub struct ProtocolChange {
    /// What changed.
    pub kind: ProtocolChangeKind,
    /// Where, as a field path of the newer version (of the older one for
    /// what was removed), e.g. `routes[0].stages[2].time_limit_working_days`.
    pub path: String,
    /// The route concerned.
    pub route: String,
    /// The stage concerned, if one.
    pub stage: Option<String>,
    /// The value before, if there was one (a policy row as a line of the
    /// policy matrix).
    pub before: Option<String>,
    /// The value after, if there is one.
    pub after: Option<String>,
}

impl From<crate::domain::protocol_diff::Change> for ProtocolChange {
    fn from(c: crate::domain::protocol_diff::Change) -> Self {
        Self {
            kind: c.kind.into(),
            path: c.path,
            route: c.route,
            stage: c.stage,
            before: c.before,
            after: c.after,
        }
    }
}

/// Refuses an anonymous caller.
fn signed_in(ctx: &Context<'_>) -> Result<()> {
    match ctx.data::<Viewer>()? {
        Viewer::Actor(_) => Ok(()),
        Viewer::Anonymous => super::workflow::actor(ctx).map(|_| ()),
    }
}

/// The protocol query.
#[derive(Default)]
pub struct ProtocolQuery;

#[Object]
impl ProtocolQuery {
    /// Every stored protocol version, by id then version: the built-in
    /// library and the versions partnerships have published.
    async fn protocols(&self, ctx: &Context<'_>) -> Result<Vec<Protocol>> {
        let db = ctx.data::<DatabaseConnection>()?;
        let library = ctx.data::<Arc<Library>>()?;
        Ok(service::list(db, library).await.gql()?.into_iter().map(Protocol).collect())
    }

    /// Checks a protocol definition (TOML, in the format of the built-in
    /// protocols) with the validator of the built-ins, storing nothing:
    /// every problem at once, each with its field path, line and column,
    /// and, when it is valid, the policy table it implies, so a board can
    /// read who may do what before it publishes. Any signed-in caller.
    async fn validate_protocol(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The definition, as TOML text.")] definition: String,
    ) -> Result<ProtocolValidation> {
        signed_in(ctx)?;
        let checked = crate::domain::definition::check(&definition);
        let (protocol_id, version, policy) = match &checked.protocol {
            Some(p) => (
                Some(p.id().to_owned()),
                Some(p.version()),
                crate::domain::policy::table(p).into_iter().map(PolicyRow::from).collect(),
            ),
            None => (None, None, Vec::new()),
        };
        Ok(ProtocolValidation {
            valid: checked.problems.is_empty(),
            problems: checked.problems.into_iter().map(ProtocolProblem::from).collect(),
            protocol_id,
            version,
            policy,
        })
    }

    /// What changed from one stored version of a protocol to another:
    /// stages added, removed or renamed, time limits, leads' roles, sides,
    /// milestones, whether the board is told, and the policy table's rows
    /// added and removed. `NOT_FOUND` when either version is not stored.
    /// Any signed-in caller.
    async fn protocol_diff(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The protocol id, e.g. `western-bay`.")] id: String,
        #[graphql(desc = "The older version.")] from: i32,
        #[graphql(desc = "The newer version.")] to: i32,
    ) -> Result<Vec<ProtocolChange>> {
        signed_in(ctx)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let library = ctx.data::<Arc<Library>>()?;
        let (a, b) = service::pair(db, library, &id, from, to).await.gql()?;
        Ok(crate::domain::protocol_diff::diff(&a, &b)
            .into_iter()
            .map(ProtocolChange::from)
            .collect())
    }
}

/// Publishing protocol versions.
#[derive(Default)]
pub struct ProtocolMutation;

#[Object]
impl ProtocolMutation {
    /// Publishes a definition as the next version of the partnership's
    /// protocol, for a machine client with the `protocols:admin` scope of
    /// that partnership (anyone else: `FORBIDDEN`). It is checked by the
    /// validator of the built-ins: with problems, `BAD_USER_INPUT` with
    /// every one in `extensions.problems` (message, path, line, column)
    /// and nothing stored. Its `id` must be the partnership's protocol
    /// (else `BAD_USER_INPUT`) and its `version` the next one (else
    /// `CONFLICT`, naming the expected version). Once stored it is never
    /// edited or deleted; new cases of the partnership are raised under it
    /// (unless the partnership has pinned an adopted version), while open
    /// cases keep the version they were raised under.
    async fn publish_protocol_version(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The partnership whose protocol this is a version of.")]
        partnership_id: ID,
        #[graphql(desc = "The definition, as TOML text.")] definition: String,
    ) -> Result<Protocol> {
        let actor = super::workflow::actor(ctx)?;
        let partnership: PartnershipId = partnership_id
            .parse()
            .map_err(|_| bad_input("partnershipId", "not a valid identifier"))?;
        let db = ctx.data::<DatabaseConnection>()?;
        let library = ctx.data::<Arc<Library>>()?;
        let published =
            service::publish(db, library, Publisher::Client(actor, partnership), &definition)
                .await
                .gql()?;
        Ok(Protocol(published.stored))
    }
}

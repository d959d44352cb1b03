//! Mutations of the case lifecycle. Each takes an input object and returns
//! a payload; every refusal is a typed error and changes nothing.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use sea_orm::DatabaseConnection;

use super::case::Case;
use super::error::{GqlResult, bad_input};
use crate::domain::actor::{Actor, Viewer};
use crate::domain::ids::{AgencyId, CaseId, ChildReference};
use crate::domain::protocol::ExclusionKind as DomainExclusion;
use crate::domain::workflow::EscalationReason as DomainReason;
use crate::http::RequestId;
use crate::service::change::{CaseChange, Frame, Keyed};
use crate::service::protocols::Library;
use crate::service::{ServiceError, workflow};

/// Matters a protocol may exclude; declaring one that the partnership's
/// protocol excludes refuses the case with `OUT_OF_SCOPE` and
/// `extensions.redirect` naming where it belongs.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::protocol::ExclusionKind")]
pub enum ExclusionKind {
    /// A disagreement inside one agency.
    IntraAgency,
    /// A complaint about a named professional.
    ComplaintAboutProfessional,
    /// Use by a child, young person or family.
    ChildOrFamilyUse,
    /// No consensus at a child protection conference.
    ConferenceNonConsensus,
    /// A child on the register thought not adequately protected.
    RegisteredChildUnprotected,
}

/// Why a case goes up a stage.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::workflow::EscalationReason")]
pub enum EscalationReason {
    /// The stage did not resolve the difference.
    Unresolved,
    /// The stage's due date has passed.
    Overdue,
    /// A child may be at immediate risk: allows skipping stages, with
    /// `immediateRiskJustification` and a role the protocol allows.
    ImmediateRisk,
    /// Similar disagreements between the same two agencies keep being
    /// raised: where the protocol has a repeated-disagreement rule
    /// (Pan-Sussex step 5), the case goes straight to the rule's stage, with
    /// no immediate-risk justification, once enough similar cases (the same
    /// two agencies either way round, the same category, raised within the
    /// rule's window, this one included, withdrawn ones not counted) have
    /// been raised; otherwise `BAD_USER_INPUT` says how many there are and
    /// how many are needed. The count and window are the protocol's settings.
    RepeatedDisagreement,
}

/// Raise a professional difference with another agency of your partnership.
#[derive(InputObject)]
pub struct RaiseCaseInput {
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The agency whose decision or action you dispute (same partnership,
    /// another agency than yours, of a kind the route takes: see
    /// `Route.receivingAgencyKinds`).
    pub receiving_agency_id: ID,
    /// The child's pseudonymous reference: an agency case number such as
    /// `SWP-2026-0042` or `CP/2025/118`, never a name: ASCII letters and
    /// digits with one `-` or `/` between them, at least one digit, no
    /// spaces, at most 40 characters.
    pub child_reference: String,
    /// Subject category key of the partnership's protocol (see `protocols`).
    pub category: String,
    /// Route id; defaults to the protocol's first route.
    pub route: Option<String>,
    /// Stage key to start at; defaults to the route's first entry stage.
    /// Starting higher needs `immediateRiskJustification` and a role the
    /// protocol allows.
    pub stage: Option<String>,
    /// What is disputed, facts kept apart from opinions. Free text: access
    /// to it is logged; it is never written to the server log.
    pub summary: String,
    /// Why the child may be at immediate risk (needed to start higher).
    pub immediate_risk_justification: Option<String>,
    /// The timeframe for resolution at the first stage, in working days
    /// (1 to 250): required where the case starts above the entry stage at
    /// a stage whose protocol asks the escalator to state it (Pan-Sussex);
    /// the stage's due date where it has no limit of its own.
    pub timeframe_working_days: Option<i32>,
    /// Exclusion triage: the matters this difference is about, if any.
    #[graphql(default)]
    pub exclusion_triage: Vec<ExclusionKind>,
}

/// Move a case up one stage (or more, for immediate risk).
#[derive(InputObject)]
pub struct EscalateCaseInput {
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The case.
    pub case_id: ID,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// Why.
    pub reason: EscalationReason,
    /// Target stage key, only to skip stages (immediate risk).
    pub to_stage: Option<String>,
    /// Why the child may be at immediate risk (needed to skip).
    pub immediate_risk_justification: Option<String>,
    /// The timeframe for resolution at the new stage, in working days
    /// (required where the protocol asks the escalator to state it, e.g.
    /// Pan-Sussex).
    pub timeframe_working_days: Option<i32>,
}

/// Resolve a case with its outcome.
#[derive(InputObject)]
pub struct ResolveCaseInput {
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The case.
    pub case_id: ID,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// The outcome agreed.
    pub outcome: String,
    /// Learning for the partnership.
    pub learning: Option<String>,
}

/// Withdraw a case (the raising agency).
#[derive(InputObject)]
pub struct WithdrawCaseInput {
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The case.
    pub case_id: ID,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
    /// Why it is withdrawn.
    pub reason: String,
}

/// Acknowledge a case at its current stage (the receiving side).
#[derive(InputObject)]
pub struct AcknowledgeCaseInput {
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// The case.
    pub case_id: ID,
    /// The version you last saw; a stale one is `CONFLICT`.
    pub expected_version: Option<i32>,
}

/// The result of a change to a case.
#[derive(SimpleObject)]
pub struct CasePayload {
    /// The case after the change.
    pub case: Case,
}

/// The verified caller of a mutation.
pub(crate) fn actor<'a>(ctx: &'a Context<'_>) -> Result<&'a Actor> {
    match ctx.data::<Viewer>()? {
        Viewer::Actor(a) => Ok(a),
        // Anonymous callers never reach a mutation (the HTTP layer refuses
        // them); this is the belt to that brace.
        Viewer::Anonymous => Err(ServiceError::forbidden(
            "a token is required",
            crate::domain::access::Allowed::roles(crate::domain::role::Role::ALL.to_vec()),
        ))
        .gql(),
    }
}

/// The change frame of this request: its caller, pool, catalog and id.
fn frame<'a>(ctx: &'a Context<'_>) -> Result<Frame<'a>> {
    let actor = actor(ctx)?;
    let (db, protocols, request_id) = shared(ctx)?;
    Ok(Frame { db, protocols, actor, request_id })
}

/// Parses a mutation's input into its change and runs it through the
/// change frame, the one write path.
pub(crate) async fn run_change<C: CaseChange>(
    ctx: &Context<'_>,
    input: impl TryInto<Keyed<C>, Error = async_graphql::Error>,
) -> Result<C::Output> {
    let frame = frame(ctx)?;
    frame.run(input.try_into()?).await.gql()
}

/// A case id argument or input field, parsed.
pub(crate) fn case_id(id: &ID, field: &'static str) -> Result<CaseId> {
    id.parse().map_err(|_| bad_input(field, "not a valid identifier"))
}

fn child_reference(text: &str) -> Result<ChildReference> {
    ChildReference::parse(text).map_err(|e| bad_input("childReference", e.to_string()))
}

pub(crate) fn version(v: Option<i32>) -> Result<Option<i32>> {
    match v {
        Some(v) if v < 1 => Err(bad_input("expectedVersion", "versions start at 1")),
        v => Ok(v),
    }
}

fn not_empty(field: &'static str, text: &str) -> Result<()> {
    if text.trim().is_empty() { Err(bad_input(field, "must not be empty")) } else { Ok(()) }
}

impl TryFrom<RaiseCaseInput> for Keyed<workflow::RaiseInput> {
    type Error = async_graphql::Error;

    fn try_from(input: RaiseCaseInput) -> Result<Self> {
        let receiving: AgencyId = input
            .receiving_agency_id
            .parse()
            .map_err(|_| bad_input("receivingAgencyId", "not a valid identifier"))?;
        if input.summary.trim().is_empty() {
            return Err(bad_input("summary", "must say what is disputed"));
        }
        let change = workflow::RaiseInput {
            receiving_agency: receiving,
            child_reference: child_reference(&input.child_reference)?,
            category: input.category,
            route: input.route,
            stage: input.stage,
            summary: input.summary,
            immediate_risk_justification: input.immediate_risk_justification,
            timeframe_working_days: timeframe(input.timeframe_working_days)?,
            declared: input.exclusion_triage.into_iter().map(DomainExclusion::from).collect(),
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

/// A stated timeframe: 1 to 250 working days.
fn timeframe(days: Option<i32>) -> Result<Option<u32>> {
    days.map(|d| {
        u32::try_from(d)
            .ok()
            .filter(|d| (1..=250).contains(d))
            .ok_or_else(|| bad_input("timeframeWorkingDays", "between 1 and 250 working days"))
    })
    .transpose()
}

impl TryFrom<EscalateCaseInput> for Keyed<workflow::EscalateInput> {
    type Error = async_graphql::Error;

    fn try_from(input: EscalateCaseInput) -> Result<Self> {
        let timeframe = timeframe(input.timeframe_working_days)?;
        let change = workflow::EscalateInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: version(input.expected_version)?,
            reason: DomainReason::from(input.reason),
            to_stage: input.to_stage,
            immediate_risk_justification: input.immediate_risk_justification,
            timeframe_working_days: timeframe,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<ResolveCaseInput> for Keyed<workflow::Close> {
    type Error = async_graphql::Error;

    fn try_from(input: ResolveCaseInput) -> Result<Self> {
        let close = workflow::CloseInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: version(input.expected_version)?,
            outcome: input.outcome,
            learning: input.learning,
        };
        not_empty("outcome", &close.outcome)?;
        let change = workflow::Close { resolved: true, input: close };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<WithdrawCaseInput> for Keyed<workflow::Close> {
    type Error = async_graphql::Error;

    fn try_from(input: WithdrawCaseInput) -> Result<Self> {
        let close = workflow::CloseInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: version(input.expected_version)?,
            outcome: input.reason,
            learning: None,
        };
        not_empty("reason", &close.outcome)?;
        let change = workflow::Close { resolved: false, input: close };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

impl TryFrom<AcknowledgeCaseInput> for Keyed<workflow::AcknowledgeInput> {
    type Error = async_graphql::Error;

    fn try_from(input: AcknowledgeCaseInput) -> Result<Self> {
        let change = workflow::AcknowledgeInput {
            case: case_id(&input.case_id, "caseId")?,
            expected_version: version(input.expected_version)?,
        };
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

/// The lifecycle mutations.
#[derive(Default)]
pub struct WorkflowMutation;

#[Object]
impl WorkflowMutation {
    /// Raise a professional difference. Refused with `OUT_OF_SCOPE` (and
    /// `extensions.redirect`) for matters the protocol excludes, including a
    /// dispute inside one agency.
    async fn raise_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to raise.")] input: RaiseCaseInput,
    ) -> Result<CasePayload> {
        Ok(CasePayload { case: Case(run_change::<workflow::RaiseInput>(ctx, input).await?) })
    }

    /// Escalate a case: one stage up with a reason; skipping stages needs
    /// the immediate-risk reason, a justification and a role the protocol
    /// allows.
    async fn escalate_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to escalate.")] input: EscalateCaseInput,
    ) -> Result<CasePayload> {
        Ok(CasePayload { case: Case(run_change::<workflow::EscalateInput>(ctx, input).await?) })
    }

    /// Resolve a case with its outcome.
    async fn resolve_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to resolve.")] input: ResolveCaseInput,
    ) -> Result<CasePayload> {
        Ok(CasePayload { case: Case(run_change::<workflow::Close>(ctx, input).await?) })
    }

    /// Withdraw a case (the raising agency).
    async fn withdraw_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to withdraw.")] input: WithdrawCaseInput,
    ) -> Result<CasePayload> {
        Ok(CasePayload { case: Case(run_change::<workflow::Close>(ctx, input).await?) })
    }

    /// Acknowledge a case at its current stage: the receiving side says it
    /// has the matter (`viewerCan.accept`; the roles are the stage's
    /// `accept` list). Shown as `Case.acknowledgedAt` until the case moves
    /// up; once per stage (again is `CONFLICT`). It starts no deadline.
    async fn acknowledge_case(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to acknowledge.")] input: AcknowledgeCaseInput,
    ) -> Result<CasePayload> {
        Ok(CasePayload { case: Case(run_change::<workflow::AcknowledgeInput>(ctx, input).await?) })
    }
}

/// The pool, the protocol library and the request id.
pub(crate) fn shared<'a>(
    ctx: &'a Context<'_>,
) -> Result<(&'a DatabaseConnection, &'a Library, Option<&'a str>)> {
    let db = ctx.data::<DatabaseConnection>()?;
    let catalog = ctx.data::<Arc<Library>>()?;
    let request_id = ctx.data::<RequestId>()?.0.as_deref();
    Ok((db, catalog, request_id))
}

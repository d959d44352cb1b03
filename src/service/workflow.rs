//! The case lifecycle: raise, escalate, resolve, withdraw. Each is a
//! [`CaseChange`]: it asks the domain whether and how the case changes and
//! returns the case as it is to be; the change frame loads, stores it with
//! a version check and its audit event, and commits. A stale or concurrent
//! change finds the version moved and is refused with `Conflict`.

use entity::{agency, case};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use super::audit::AuditAction;
use super::cases::{Case, CaseStatus};
use super::change::{About, CaseChange, Ctx, Decided, Target};
use super::{ServiceError, case_row, records};
use crate::domain::agency::AgencyKind;
use crate::domain::ids::{AgencyId, CaseId, ChildReference};
use crate::domain::policy::Action;
use crate::domain::protocol::ExclusionKind;
use crate::domain::workflow::{Escalate, EscalationReason, RaiseCase, plan_escalation, plan_raise};

/// `raiseCase`, parsed.
#[derive(Debug, Clone)]
pub struct RaiseInput {
    /// The agency whose decision is disputed.
    pub receiving_agency: AgencyId,
    /// The child's pseudonymous reference.
    pub child_reference: ChildReference,
    /// Subject category key.
    pub category: String,
    /// Route id.
    pub route: Option<String>,
    /// Stage to start at.
    pub stage: Option<String>,
    /// What is disputed (free text, never logged).
    pub summary: String,
    /// Why starting higher cannot wait.
    pub immediate_risk_justification: Option<String>,
    /// The timeframe for resolution stated (working days).
    pub timeframe_working_days: Option<u32>,
    /// Matters declared in the exclusion triage.
    pub declared: Vec<ExclusionKind>,
}

/// Raises a case for the caller's agency.
impl CaseChange for RaiseInput {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "raiseCase",
            action: AuditAction::Raise,
            target: Target::New { case_of: |c| c.id },
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        _: Option<&case::Model>,
    ) -> Result<Decided<Case>, ServiceError> {
        let actor = ctx.actor;
        let raising = actor.agency.ok_or_else(|| {
            ServiceError::bad_input("raisingAgencyId", "the token names no agency")
        })?;
        let receiving = agency::Entity::find_by_id(self.receiving_agency.uuid())
            .filter(agency::Column::PartnershipId.eq(actor.partnership.uuid()))
            .one(ctx.txn)
            .await?
            .ok_or_else(|| {
                ServiceError::bad_input("receivingAgencyId", "no such agency in your partnership")
            })?;
        crate::domain::directory::takes_new_work(receiving.active)
            .map_err(|why| ServiceError::bad_input("receivingAgencyId", why))?;
        // The token was checked against a cache another process's
        // deactivation may not have reached yet: the raising agency's own
        // row decides.
        let raising_row = agency::Entity::find_by_id(raising.uuid())
            .one(ctx.txn)
            .await?
            .ok_or(ServiceError::NotFound("agency"))?;
        crate::domain::directory::takes_new_work(raising_row.active)
            .map_err(|why| ServiceError::forbidden(why, Default::default()))?;
        let partnership = entity::partnership::Entity::find_by_id(actor.partnership.uuid())
            .one(ctx.txn)
            .await?
            .ok_or(ServiceError::NotFound("partnership"))?;
        // The partnership's adopted version (else its newest), read in the
        // raise's transaction.
        let protocol = ctx.protocols.for_new_cases(ctx.txn, &partnership).await?;
        let protocol = &*protocol;
        let now = ctx.now;
        let plan = plan_raise(
            protocol,
            actor,
            &RaiseCase {
                same_agency: AgencyId::from_uuid(receiving.id) == raising,
                receiving_kind: AgencyKind::parse(&receiving.kind).unwrap_or(AgencyKind::Other),
                category: &self.category,
                route: self.route.as_deref(),
                stage: self.stage.as_deref(),
                immediate_risk_justification: self.immediate_risk_justification.as_deref(),
                timeframe_working_days: self.timeframe_working_days,
                declared: &self.declared,
            },
            now.date_naive(),
        )?;
        let mut model = new_case(
            protocol,
            &plan,
            NewCase {
                partnership: actor.partnership.uuid(),
                raising: raising.uuid(),
                receiving: receiving.id,
                child_reference: self.child_reference.as_str().to_owned(),
                category: self.category.clone(),
                summary: self.summary.clone(),
            },
            now,
        );
        let mut audit = raise_audit(&plan, &model.category, raising, receiving.id);
        flag_if_repeated(ctx.txn, protocol, &mut model, &mut audit, now).await?;
        Ok(Decided { case: model, audit, output: Box::new(case_output), raises: None })
    }
}

/// Who and what a new case is about.
pub(crate) struct NewCase {
    /// Its partnership.
    pub partnership: uuid::Uuid,
    /// The raising agency.
    pub raising: uuid::Uuid,
    /// The receiving agency.
    pub receiving: uuid::Uuid,
    /// The child's reference.
    pub child_reference: String,
    /// The category key.
    pub category: String,
    /// What is disputed.
    pub summary: String,
}

/// The row of a case raised `now` under `protocol` as `plan` says: open,
/// at its first stage, nothing recorded on it yet.
pub(crate) fn new_case(
    protocol: &crate::domain::protocol::Protocol,
    plan: &crate::domain::workflow::RaisePlan,
    about: NewCase,
    now: chrono::DateTime<chrono::Utc>,
) -> case::Model {
    case::Model {
        id: CaseId::new().uuid(),
        partnership_id: about.partnership,
        protocol_id: protocol.id().to_owned(),
        protocol_version: i32::try_from(protocol.version()).unwrap_or(i32::MAX),
        route: plan.route.clone(),
        stage: plan.stage.clone(),
        status: CaseStatus::Open.as_str().to_owned(),
        raising_agency_id: about.raising,
        receiving_agency_id: about.receiving,
        child_reference: about.child_reference,
        category: about.category,
        summary: about.summary,
        version: 1,
        raised_at: now,
        updated_at: now,
        stage_entered_at: Some(now),
        due_on: plan.due_on,
        acknowledged_at: None,
        family_told_on: None,
        step_down_conference_on: None,
        step_down_checked_at: None,
        step_down_cin_meeting_held: None,
        step_down_cin_plan_in_place: None,
        step_down_follow_up_id: None,
        follows_case_id: None,
        repeated_similar_cases: None,
    }
}

/// A new case that crosses its protocol's repeated-disagreement threshold
/// is flagged as it is raised (on the rule's route; the rule's window),
/// in its row and its raise's audit data.
pub(crate) async fn flag_if_repeated(
    txn: &impl sea_orm::ConnectionTrait,
    protocol: &crate::domain::protocol::Protocol,
    model: &mut case::Model,
    audit: &mut serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ServiceError> {
    if let Some(rule) =
        protocol.rules().repeated_disagreement().filter(|r| r.route() == model.route)
    {
        let similar = similar_cases(txn, model, rule.window_days(), now).await?;
        if similar >= rule.count() {
            model.repeated_similar_cases = Some(i32::try_from(similar).unwrap_or(i32::MAX));
            audit["similar_cases"] = json!(similar);
        }
    }
    Ok(())
}

/// The audit data of a raise (also written by `seed-demo --cases`, which
/// must leave the same trail as people do).
pub fn raise_audit(
    plan: &crate::domain::workflow::RaisePlan,
    category: &str,
    raising: impl std::fmt::Display,
    receiving: impl std::fmt::Display,
) -> serde_json::Value {
    json!({
        "route": plan.route,
        "stage": plan.stage,
        "category": category,
        "raising_agency_id": raising.to_string(),
        "receiving_agency_id": receiving.to_string(),
        "due_on": plan.due_on,
        "started_higher": plan.started_higher,
        "board_told": plan.reaching.board_told,
        "milestones": milestones_audit(&plan.reaching),
        "backed_request": plan.reaching.backed_request,
    })
}

/// The audit data of an escalation from `from_stage` (see [`raise_audit`]).
pub fn escalation_audit(
    plan: &crate::domain::workflow::EscalationPlan,
    from_stage: &str,
    reason: EscalationReason,
    timeframe_working_days: Option<u32>,
    similar_cases: Option<u32>,
) -> serde_json::Value {
    json!({
        "from_stage": from_stage,
        "to_stage": plan.stage,
        "reason": reason.as_str(),
        "timeframe_working_days": timeframe_working_days,
        "due_on": plan.due_on,
        "similar_cases": similar_cases,
        "board_told": plan.reaching.board_told,
        "milestones": milestones_audit(&plan.reaching),
        "backed_request": plan.reaching.backed_request,
        "missing_records": plan.missing_records.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
    })
}

/// The milestones whose clocks started with the stage: `{key: due_on}`.
fn milestones_audit(reaching: &crate::domain::workflow::Reaching) -> serde_json::Value {
    reaching.milestones.iter().map(|(key, due)| (key.clone(), json!(due))).collect()
}

/// The result of a lifecycle change: the case as stored.
fn case_output(case: &case::Model) -> Result<Case, ServiceError> {
    Case::try_from(case.clone())
}

/// `escalateCase`, parsed.
#[derive(Debug, Clone)]
pub struct EscalateInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case has moved since.
    pub expected_version: Option<i32>,
    /// Why.
    pub reason: EscalationReason,
    /// Target stage, to skip.
    pub to_stage: Option<String>,
    /// Needed to skip.
    pub immediate_risk_justification: Option<String>,
    /// The timeframe stated by the escalator.
    pub timeframe_working_days: Option<u32>,
}

/// Moves a case up.
impl CaseChange for EscalateInput {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "escalateCase",
            action: AuditAction::Escalate,
            target: Target::case(self.case, self.expected_version),
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<Case>, ServiceError> {
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        let protocol = case_row::protocol_of(ctx.catalog, row)?;
        let now = ctx.now;
        let similar = match protocol.rules().repeated_disagreement() {
            Some(rule) if self.reason == EscalationReason::RepeatedDisagreement => {
                Some(similar_cases(ctx.txn, row, rule.window_days(), now).await?)
            }
            _ => None,
        };
        // The kinds of record written at the current stage, read only where
        // the stage requires some before a case leaves it.
        let requires = protocol
            .stage(&row.route, &row.stage)
            .is_some_and(|here| !here.required_to_leave().is_empty());
        let recorded_here =
            if requires { records::kinds_at_stage(ctx.txn, row).await? } else { Vec::new() };
        let plan = plan_escalation(
            protocol,
            &case_row::facts(row, ctx.participants),
            ctx.actor,
            &Escalate {
                reason: self.reason,
                to_stage: self.to_stage.as_deref(),
                immediate_risk_justification: self.immediate_risk_justification.as_deref(),
                timeframe_working_days: self.timeframe_working_days,
                due_on: row.due_on,
                similar_cases: similar,
                recorded_here: &recorded_here,
            },
            now.date_naive(),
        )?;
        records::flag_missing(ctx.txn, row, &plan.missing_records, now).await?;
        let audit =
            escalation_audit(&plan, &row.stage, self.reason, self.timeframe_working_days, similar);
        // An escalation for a repeated disagreement flags the case too.
        let repeated = match similar {
            Some(n) if self.reason == EscalationReason::RepeatedDisagreement => {
                Some(i32::try_from(n).unwrap_or(i32::MAX))
            }
            _ => row.repeated_similar_cases,
        };
        let case = case::Model {
            stage: plan.stage,
            stage_entered_at: Some(now),
            due_on: plan.due_on,
            acknowledged_at: None,
            repeated_similar_cases: repeated,
            updated_at: now,
            ..row.clone()
        };
        Ok(Decided { case, audit, output: Box::new(case_output), raises: None })
    }
}

/// The escalation a breach makes by itself where the case's protocol turns
/// it on at its stage (`escalate_on_breach`): made by the server
/// ([`crate::domain::actor::Actor::system`]) when the timer announcing the
/// breach fires, in that timer's transaction (`Frame::run_in`), through the
/// same frame as every change. `decide_and_write` refuses (and the timer
/// still fires, announcing the breach) unless the case is still open at
/// the stage the timer was for and the protocol says so.
#[derive(Debug, Clone)]
pub struct BreachEscalation {
    /// The case.
    pub case: CaseId,
    /// Its version when the timer fired (in the same transaction).
    pub expected_version: i32,
    /// The stage whose deadline passed.
    pub stage: String,
}

impl CaseChange for BreachEscalation {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "escalateOnBreach",
            action: AuditAction::Escalate,
            target: Target::case(self.case, Some(self.expected_version)),
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<Case>, ServiceError> {
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        if !ctx.actor.is_system() {
            return Err(ServiceError::Internal("only the server escalates on a breach".into()));
        }
        if row.status != CaseStatus::Open.as_str() || row.stage != self.stage {
            return Err(ServiceError::Conflict("the case has moved since its deadline".into()));
        }
        let protocol = case_row::protocol_of(ctx.catalog, row)?;
        let recorded_here = records::kinds_at_stage(ctx.txn, row).await?;
        let now = ctx.now;
        let plan = crate::domain::workflow::plan_breach_escalation(
            protocol,
            &row.route,
            &row.stage,
            &recorded_here,
            now.date_naive(),
        )?
        .ok_or_else(|| ServiceError::Conflict("the stage does not escalate on a breach".into()))?;
        records::flag_missing(ctx.txn, row, &plan.missing_records, now).await?;
        let mut audit = escalation_audit(&plan, &row.stage, EscalationReason::Overdue, None, None);
        audit["automatic"] = json!(true);
        let case = case::Model {
            stage: plan.stage,
            stage_entered_at: Some(now),
            due_on: plan.due_on,
            acknowledged_at: None,
            updated_at: now,
            ..row.clone()
        };
        Ok(Decided { case, audit, output: Box::new(case_output), raises: None })
    }
}

/// How many cases are "similar" to `row` for the repeated-disagreement
/// rule, `row` included: one `COUNT` inside the escalation's transaction.
///
/// Similar means: the same partnership, the same two agencies **either way
/// round** (the seed speaks of disagreements between agencies, and a
/// pattern is no less one for being raised from both sides), the same
/// category, raised within the last `window_days` days, and not withdrawn
/// (a withdrawn case was taken back by its raiser, and counting it would
/// let raising and withdrawing manufacture the trigger). Open and resolved
/// cases both count: a disagreement that was resolved still happened.
/// `row` itself counts even when it was raised before the window.
async fn similar_cases(
    txn: &impl sea_orm::ConnectionTrait,
    row: &case::Model,
    window_days: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u32, ServiceError> {
    let since = now - chrono::Duration::days(i64::from(window_days));
    let (a, b) = (row.raising_agency_id, row.receiving_agency_id);
    let others = case::Entity::find()
        .filter(case::Column::PartnershipId.eq(row.partnership_id))
        .filter(case::Column::Category.eq(row.category.as_str()))
        .filter(case::Column::Id.ne(row.id))
        .filter(case::Column::Status.ne(CaseStatus::Withdrawn.as_str()))
        .filter(case::Column::RaisedAt.gte(since))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(case::Column::RaisingAgencyId.eq(a))
                        .add(case::Column::ReceivingAgencyId.eq(b)),
                )
                .add(
                    Condition::all()
                        .add(case::Column::RaisingAgencyId.eq(b))
                        .add(case::Column::ReceivingAgencyId.eq(a)),
                ),
        )
        .count(txn)
        .await?;
    Ok(u32::try_from(others).unwrap_or(u32::MAX).saturating_add(1))
}

/// `resolveCase` / `withdrawCase`, parsed.
#[derive(Debug, Clone)]
pub struct CloseInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case has moved since.
    pub expected_version: Option<i32>,
    /// The outcome (resolve) or the reason (withdraw); free text.
    pub outcome: String,
    /// Learning for the partnership (resolve).
    pub learning: Option<String>,
}

/// Closes a case: resolved with an outcome, or withdrawn by the raising side.
#[derive(Debug, Clone)]
pub struct Close {
    /// Resolved (else withdrawn).
    pub resolved: bool,
    /// What the caller sent.
    pub input: CloseInput,
}

impl CaseChange for Close {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: if self.resolved { "resolveCase" } else { "withdrawCase" },
            action: if self.resolved { AuditAction::Resolve } else { AuditAction::Withdraw },
            target: Target::case(self.input.case, self.input.expected_version),
        }
    }

    fn fingerprint(&self) -> &dyn std::fmt::Debug {
        &self.input
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<Case>, ServiceError> {
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        let action = if self.resolved { Action::Resolve } else { Action::Withdraw };
        case_row::permit(ctx.catalog, row, ctx.participants, ctx.actor, action)?;
        let now = ctx.now;
        let status = if self.resolved { CaseStatus::Resolved } else { CaseStatus::Withdrawn };
        let audit = json!({
            "stage": row.stage,
            "status": status.as_str(),
            "days_open": (now - row.raised_at).num_days(),
            "outcome": self.input.outcome,
            "learning": self.input.learning,
        });
        let case = case::Model {
            status: status.as_str().to_owned(),
            due_on: None,
            updated_at: now,
            ..row.clone()
        };
        Ok(Decided { case, audit, output: Box::new(case_output), raises: None })
    }
}

/// `acknowledgeCase`, parsed.
#[derive(Debug, Clone)]
pub struct AcknowledgeInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case has moved since.
    pub expected_version: Option<i32>,
}

/// The receiving side acknowledges the case at its current stage: shown
/// on the case (`acknowledgedAt`) until it moves up; once per stage.
///
/// It starts no clock: Rotherham's response is due 10 working days after
/// the chair's form is sent (see the protocols' README), so a receiver
/// cannot hold a deadline back by not acknowledging.
impl CaseChange for AcknowledgeInput {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "acknowledgeCase",
            action: AuditAction::Acknowledge,
            target: Target::case(self.case, self.expected_version),
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<Case>, ServiceError> {
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        // Once per stage: `access::check` refuses a second (`CONFLICT`).
        case_row::permit(ctx.catalog, row, ctx.participants, ctx.actor, Action::Accept)?;
        let audit = json!({ "stage": row.stage });
        let case =
            case::Model { acknowledged_at: Some(ctx.now), updated_at: ctx.now, ..row.clone() };
        Ok(Decided { case, audit, output: Box::new(case_output), raises: None })
    }
}

//! The case lifecycle: raise, escalate, resolve, withdraw. Each use case
//! runs in one transaction: load, ask the domain, write the case with a
//! version check, append the audit event, commit. A stale or concurrent
//! change finds the version moved and is refused with `Conflict`.

use super::events;
use crate::domain::event::EventType;
use entity::{agency, case};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter,
};
use serde_json::json;

use super::cases::{Case, CaseStatus};
use super::idempotency::{self, Idempotency};
use super::{ServiceError, audit, tx};
use crate::domain::access::check;
use crate::domain::actor::Actor;
use crate::domain::catalog::Catalog;
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
    /// Matters declared in the exclusion triage.
    pub declared: Vec<ExclusionKind>,
}

/// Raises a case for the caller's agency.
#[tracing::instrument(skip_all, fields(actor.role = ?actor.role))]
pub async fn raise(
    db: &DatabaseConnection,
    catalog: &Catalog,
    actor: &Actor,
    request_id: Option<&str>,
    idem: Option<&Idempotency>,
    input: RaiseInput,
) -> Result<Case, ServiceError> {
    if let Some(first) = idempotency::replay(db, actor, idem, |c: &Case| c.id).await? {
        return Ok(first);
    }
    let raising = actor
        .agency
        .ok_or_else(|| ServiceError::bad_input("raisingAgencyId", "the token names no agency"))?;
    let txn = tx::begin_write(db).await?;
    let receiving = agency::Entity::find_by_id(input.receiving_agency.uuid())
        .filter(agency::Column::PartnershipId.eq(actor.partnership.uuid()))
        .one(&txn)
        .await?
        .ok_or_else(|| {
            ServiceError::bad_input("receivingAgencyId", "no such agency in your partnership")
        })?;
    let partnership = entity::partnership::Entity::find_by_id(actor.partnership.uuid())
        .one(&txn)
        .await?
        .ok_or(ServiceError::NotFound("partnership"))?;
    let protocol = catalog
        .latest(&partnership.protocol_id)
        .ok_or_else(|| ServiceError::UnknownProtocol(partnership.protocol_id.clone()))?;
    let now = audit::now();
    let plan = plan_raise(
        protocol,
        actor,
        &RaiseCase {
            same_agency: AgencyId::from_uuid(receiving.id) == raising,
            category: &input.category,
            route: input.route.as_deref(),
            stage: input.stage.as_deref(),
            immediate_risk_justification: input.immediate_risk_justification.as_deref(),
            declared: &input.declared,
        },
        now.date_naive(),
    )?;
    let id = CaseId::new();
    let model = case::Model {
        id: id.uuid(),
        partnership_id: actor.partnership.uuid(),
        protocol_id: protocol.id().to_owned(),
        protocol_version: i32::try_from(protocol.version()).unwrap_or(i32::MAX),
        route: plan.route.clone(),
        stage: plan.stage.clone(),
        status: CaseStatus::Open.as_str().to_owned(),
        raising_agency_id: raising.uuid(),
        receiving_agency_id: receiving.id,
        child_reference: input.child_reference.into_string(),
        category: input.category,
        summary: input.summary,
        version: 1,
        raised_at: now,
        updated_at: now,
        stage_entered_at: Some(now),
        due_on: plan.due_on,
    };
    case::Entity::insert(case::ActiveModel {
        id: Set(model.id),
        partnership_id: Set(model.partnership_id),
        protocol_id: Set(model.protocol_id.clone()),
        protocol_version: Set(model.protocol_version),
        route: Set(model.route.clone()),
        stage: Set(model.stage.clone()),
        status: Set(model.status.clone()),
        raising_agency_id: Set(model.raising_agency_id),
        receiving_agency_id: Set(model.receiving_agency_id),
        child_reference: Set(model.child_reference.clone()),
        category: Set(model.category.clone()),
        summary: Set(model.summary.clone()),
        version: Set(1),
        raised_at: Set(now),
        updated_at: Set(now),
        stage_entered_at: Set(Some(now)),
        due_on: Set(plan.due_on),
    })
    .exec_without_returning(&txn)
    .await?;
    let data = json!({
        "route": plan.route,
        "stage": plan.stage,
        "category": model.category,
        "raising_agency_id": raising.to_string(),
        "receiving_agency_id": receiving.id.to_string(),
        "due_on": plan.due_on,
        "started_higher": plan.started_higher,
        "board_told": plan.reaching.board_told,
        "family_told": plan.reaching.family_told,
        "form_due_on": plan.reaching.form_due_on,
        "director_told_by": plan.reaching.director_told_by,
        "backed_request": plan.reaching.backed_request,
    });
    audit::append(&txn, id, 1, audit::GENESIS, now, actor, "raise", request_id, data).await?;
    events::append(
        &txn,
        events::Change {
            kind: EventType::CaseRaised,
            case: &model,
            existed: false,
            stage_after: &model.stage,
            status_after: &model.status,
            version_after: 1,
            at: now,
            request_id,
        },
    )
    .await?;
    let raised = Case::try_from(model)?;
    idempotency::remember(&txn, actor, idem, &raised).await?;
    txn.commit().await?;
    tracing::info!(case.id = %id, "case raised");
    Ok(raised)
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
#[tracing::instrument(skip_all, fields(case.id = %input.case))]
pub async fn escalate(
    db: &DatabaseConnection,
    catalog: &Catalog,
    actor: &Actor,
    request_id: Option<&str>,
    idem: Option<&Idempotency>,
    input: EscalateInput,
) -> Result<Case, ServiceError> {
    if let Some(first) = idempotency::replay(db, actor, idem, |c: &Case| c.id).await? {
        return Ok(first);
    }
    let txn = tx::begin_write(db).await?;
    let row = tx::load_for_change(&txn, actor, input.case, input.expected_version).await?;
    let protocol = tx::protocol_of(catalog, &row)?;
    let now = audit::now();
    let similar = match protocol.rules().repeated_disagreement() {
        Some(rule) if input.reason == EscalationReason::RepeatedDisagreement => {
            Some(similar_cases(&txn, &row, rule.window_days(), now).await?)
        }
        _ => None,
    };
    let plan = plan_escalation(
        protocol,
        &tx::facts(&row),
        actor,
        &Escalate {
            reason: input.reason,
            to_stage: input.to_stage.as_deref(),
            immediate_risk_justification: input.immediate_risk_justification.as_deref(),
            timeframe_working_days: input.timeframe_working_days,
            due_on: row.due_on,
            similar_cases: similar,
        },
        now.date_naive(),
    )?;
    tx::bump_version(
        &txn,
        &row,
        vec![
            (case::Column::Stage, Expr::value(plan.stage.clone())),
            (case::Column::StageEnteredAt, Expr::value(now)),
            (case::Column::DueOn, Expr::value(plan.due_on)),
            (case::Column::UpdatedAt, Expr::value(now)),
        ],
    )
    .await?;
    let prev = audit::last_hash(&txn, input.case).await?;
    let data = json!({
        "from_stage": row.stage,
        "to_stage": plan.stage,
        "reason": input.reason.as_str(),
        "timeframe_working_days": input.timeframe_working_days,
        "due_on": plan.due_on,
        "similar_cases": similar,
        "board_told": plan.reaching.board_told,
        "family_told": plan.reaching.family_told,
        "form_due_on": plan.reaching.form_due_on,
        "director_told_by": plan.reaching.director_told_by,
        "backed_request": plan.reaching.backed_request,
    });
    audit::append(
        &txn,
        input.case,
        row.version + 1,
        &prev,
        now,
        actor,
        "escalate",
        request_id,
        data,
    )
    .await?;
    events::append(
        &txn,
        events::Change {
            kind: EventType::CaseEscalated,
            case: &row,
            existed: true,
            stage_after: &plan.stage,
            status_after: &row.status,
            version_after: row.version + 1,
            at: now,
            request_id,
        },
    )
    .await?;
    let updated = reload(&txn, input.case).await?;
    idempotency::remember(&txn, actor, idem, &updated).await?;
    txn.commit().await?;
    Ok(updated)
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
#[tracing::instrument(skip_all, fields(case.id = %input.case, resolved))]
pub async fn close(
    db: &DatabaseConnection,
    catalog: &Catalog,
    actor: &Actor,
    request_id: Option<&str>,
    resolved: bool,
    idem: Option<&Idempotency>,
    input: CloseInput,
) -> Result<Case, ServiceError> {
    if let Some(first) = idempotency::replay(db, actor, idem, |c: &Case| c.id).await? {
        return Ok(first);
    }
    if input.outcome.trim().is_empty() {
        return Err(ServiceError::bad_input(
            if resolved { "outcome" } else { "reason" },
            "must not be empty",
        ));
    }
    let txn = tx::begin_write(db).await?;
    let row = tx::load_for_change(&txn, actor, input.case, input.expected_version).await?;
    let protocol = tx::protocol_of(catalog, &row)?;
    let action = if resolved { Action::Resolve } else { Action::Withdraw };
    check(protocol, &tx::facts(&row), actor, action)
        .map_err(|r| ServiceError::from(crate::domain::workflow::WorkflowError::from(r)))?;
    let now = audit::now();
    let status = if resolved { CaseStatus::Resolved } else { CaseStatus::Withdrawn };
    tx::bump_version(
        &txn,
        &row,
        vec![
            (case::Column::Status, Expr::value(status.as_str())),
            (case::Column::DueOn, Expr::value(Option::<chrono::NaiveDate>::None)),
            (case::Column::UpdatedAt, Expr::value(now)),
        ],
    )
    .await?;
    let prev = audit::last_hash(&txn, input.case).await?;
    let data = json!({
        "stage": row.stage,
        "status": status.as_str(),
        "days_open": (now - row.raised_at).num_days(),
        "outcome": input.outcome,
        "learning": input.learning,
    });
    let name = if resolved { "resolve" } else { "withdraw" };
    audit::append(&txn, input.case, row.version + 1, &prev, now, actor, name, request_id, data)
        .await?;
    let kind = if resolved { EventType::CaseResolved } else { EventType::CaseWithdrawn };
    events::append(
        &txn,
        events::Change {
            kind,
            case: &row,
            existed: true,
            stage_after: &row.stage,
            status_after: status.as_str(),
            version_after: row.version + 1,
            at: now,
            request_id,
        },
    )
    .await?;
    let updated = reload(&txn, input.case).await?;
    idempotency::remember(&txn, actor, idem, &updated).await?;
    txn.commit().await?;
    Ok(updated)
}

async fn reload(txn: &impl sea_orm::ConnectionTrait, id: CaseId) -> Result<Case, ServiceError> {
    case::Entity::find_by_id(id.uuid())
        .one(txn)
        .await?
        .ok_or(ServiceError::NotFound("case"))?
        .try_into()
}

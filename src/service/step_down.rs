//! `recordStepDown` and `recordStepDownCheck` (Rotherham's step-down
//! check): [`CaseChange`]s that set the step-down columns of the case row.
//! The domain decides who may, which days and what a check does
//! ([`crate::domain::step_down`]). A check that is not evidenced raises the
//! new challenge in the same change ([`Decided::raises`]): the check and
//! the new case, each with its audit event and its event, commit together
//! or not at all, and each names the other (`step_down_follow_up_id`,
//! `follows_case_id`).
//!
//! On a closed case the row's `updated_at` is left as it is (as feedback
//! leaves it): it is the closing time the statistics count from. The
//! change is in the feed either way.
//!
//! `recordStepDown` writes the check's reminder (`STEP_DOWN_CHECK_DUE`,
//! `timers::schedule_step_down`) and `recordStepDownCheck` removes it if it
//! has not fired, each in its own transaction.

use chrono::{DateTime, NaiveDate, Utc};
use entity::case;
use serde_json::json;

use super::audit::AuditAction;
use super::cases::{Case, CaseStatus};
use super::change::{About, CaseChange, Ctx, Decided, Raised, Target};
use super::workflow::{NewCase, flag_if_repeated, new_case, raise_audit};
use super::{ServiceError, case_row};
use crate::domain::ids::CaseId;
use crate::domain::step_down::{
    Finding, Recorded, follow_up_summary, plan_step_down, plan_step_down_check,
};

/// `recordStepDown`, parsed.
#[derive(Debug, Clone)]
pub struct RecordStepDownInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// The day of the conference that decided the step-down.
    pub conference_on: NaiveDate,
}

/// `recordStepDownCheck`, parsed.
#[derive(Debug, Clone)]
pub struct RecordStepDownCheckInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// What the chair found.
    pub finding: Finding,
}

/// The step-down a row shows, as the domain judges it.
fn recorded(row: &case::Model) -> Option<Recorded> {
    row.step_down_conference_on.map(|conference_on| Recorded {
        conference_on,
        checked_on: row.step_down_checked_at.map(|at| at.date_naive()),
    })
}

/// `now` on an open case; a closed case keeps its closing time.
fn touched(row: &case::Model, now: DateTime<Utc>) -> DateTime<Utc> {
    if row.status == CaseStatus::Open.as_str() { now } else { row.updated_at }
}

/// Records the conference's step-down; the case shows the latest day until
/// the check.
impl CaseChange for RecordStepDownInput {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "recordStepDown",
            action: AuditAction::RecordStepDown,
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
        let plan = plan_step_down(
            protocol,
            &case_row::facts(row, ctx.participants),
            ctx.actor,
            self.conference_on,
            recorded(row),
            ctx.now.date_naive(),
        )?;
        let audit = json!({
            "stage": row.stage,
            "status": row.status,
            "conference_on": self.conference_on,
            "check_due_on": plan.check_due_on,
            "replaces": plan.replaces,
        });
        let case = case::Model {
            step_down_conference_on: Some(self.conference_on),
            updated_at: touched(row, ctx.now),
            ..row.clone()
        };
        // The reminder, replacing that of a day recorded before.
        super::timers::schedule_step_down(ctx.txn, &case, plan.check_due_on).await?;
        Ok(Decided { case, audit, output: Box::new(|c| Case::try_from(c.clone())), raises: None })
    }
}

/// Records the chair's check of the step-down; when not evidenced, raises
/// the new challenge at the rule's stage between the same two agencies,
/// about the same child and category.
impl CaseChange for RecordStepDownCheckInput {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "recordStepDownCheck",
            action: AuditAction::RecordStepDownCheck,
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
        let plan = plan_step_down_check(
            protocol,
            &case_row::facts(row, ctx.participants),
            ctx.actor,
            self.finding,
            recorded(row),
            ctx.now.date_naive(),
        )?;
        // The new case continues this case's process: raised under the
        // same protocol version, whose rule raised it.
        let raises = match &plan.follow_up {
            None => None,
            Some(follow_up) => {
                let mut new = new_case(
                    protocol,
                    follow_up,
                    NewCase {
                        partnership: row.partnership_id,
                        raising: row.raising_agency_id,
                        receiving: row.receiving_agency_id,
                        child_reference: row.child_reference.clone(),
                        category: row.category.clone(),
                        summary: follow_up_summary(plan.conference_on, self.finding),
                    },
                    ctx.now,
                );
                new.follows_case_id = Some(row.id);
                let mut audit = raise_audit(
                    follow_up,
                    &row.category,
                    row.raising_agency_id,
                    row.receiving_agency_id,
                );
                audit["follows_case_id"] = json!(row.id.to_string());
                flag_if_repeated(ctx.txn, protocol, &mut new, &mut audit, ctx.now).await?;
                Some(Raised { case: new, audit })
            }
        };
        // Checked: nothing to remind of any more.
        super::timers::cancel_step_down(ctx.txn, row.id).await?;
        let follow_up_id = raises.as_ref().map(|r| r.case.id);
        let audit = json!({
            "stage": row.stage,
            "status": row.status,
            "conference_on": plan.conference_on,
            "check_due_on": plan.check_due_on,
            "cin_meeting_held": self.finding.cin_meeting_held,
            "cin_plan_in_place": self.finding.cin_plan_in_place,
            "evidenced": plan.evidenced,
            "follow_up_case_id": follow_up_id.map(|id| id.to_string()),
        });
        let case = case::Model {
            step_down_checked_at: Some(ctx.now),
            step_down_cin_meeting_held: Some(self.finding.cin_meeting_held),
            step_down_cin_plan_in_place: Some(self.finding.cin_plan_in_place),
            step_down_follow_up_id: follow_up_id,
            updated_at: touched(row, ctx.now),
            ..row.clone()
        };
        Ok(Decided { case, audit, output: Box::new(|c| Case::try_from(c.clone())), raises })
    }
}

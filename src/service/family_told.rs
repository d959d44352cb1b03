//! `recordFamilyTold`: the day the family was told of a case (Rotherham's
//! challenge), a [`CaseChange`] that sets the case row's `family_told_on`.
//! The domain decides who may and which dates
//! ([`crate::domain::family_told::plan_family_told`]); the audit event keeps
//! the date recorded and the one it replaced.

use entity::case;
use serde_json::json;

use super::audit::AuditAction;
use super::cases::Case;
use super::change::{About, CaseChange, Ctx, Decided, Target};
use super::{ServiceError, case_row};
use crate::domain::family_told::{RecordFamilyTold, plan_family_told};
use crate::domain::ids::CaseId;

/// `recordFamilyTold`, parsed.
#[derive(Debug, Clone)]
pub struct RecordFamilyToldInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// The day the family was told.
    pub told_on: chrono::NaiveDate,
}

/// Records the day the family was told; the case shows the latest.
impl CaseChange for RecordFamilyToldInput {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "recordFamilyTold",
            action: AuditAction::RecordFamilyTold,
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
        let replaces = plan_family_told(
            protocol,
            &case_row::facts(row, ctx.participants),
            ctx.actor,
            &RecordFamilyTold {
                told_on: self.told_on,
                raised_on: row.raised_at.date_naive(),
                recorded: row.family_told_on,
            },
            ctx.now.date_naive(),
        )?;
        let audit = json!({ "stage": row.stage, "told_on": self.told_on, "replaces": replaces });
        let case =
            case::Model { family_told_on: Some(self.told_on), updated_at: ctx.now, ..row.clone() };
        Ok(Decided { case, audit, output: Box::new(|c| Case::try_from(c.clone())), raises: None })
    }
}

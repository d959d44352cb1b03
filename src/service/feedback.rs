//! Feedback: once a case is closed, each of its two agencies may say, once,
//! how well the process worked. It feeds the board statistics.
//!
//! Giving feedback is a change of the case: a new version and a
//! `give_feedback` audit event, in the same transaction as the row. The
//! case's `updated_at` is left alone: for a closed case it is the closing
//! time, which the statistics count time to resolution from.

use chrono::{DateTime, Utc};
use entity::{case, feedback};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, SqlErr};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ServiceError;
use super::audit::AuditAction;
use super::change::{About, CaseChange, Ctx, Decided, Target};
use crate::domain::access;
use crate::domain::ids::CaseId;

/// Feedback as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// Identifier.
    pub id: uuid::Uuid,
    /// The case.
    pub case_id: uuid::Uuid,
    /// The agency that gave it.
    pub agency_id: uuid::Uuid,
    /// Whether the agency thinks the difference was resolved.
    pub resolved: bool,
    /// How long it felt, 1 (far too long) to 5 (quick).
    pub felt_duration_rating: Option<i32>,
    /// Whether the agency would use the process again.
    pub would_use_again: bool,
    /// Free comment.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What `giveFeedback` returns: the feedback and the case's new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Given {
    /// The feedback stored.
    pub feedback: Feedback,
    /// The case's version after the change.
    pub case_version: i32,
}

/// `giveFeedback`, parsed.
#[derive(Debug, Clone)]
pub struct GiveFeedbackInput {
    /// The case.
    pub case: CaseId,
    /// Was the difference resolved, in the agency's view.
    pub resolved: bool,
    /// 1 (far too long) to 5 (quick).
    pub felt_duration_rating: Option<i32>,
    /// Would the agency use the process again.
    pub would_use_again: bool,
    /// Free comment (trimmed when stored; empty means none).
    pub comment: Option<String>,
}

/// Stores the caller's agency's feedback on a closed case.
///
/// Refusals: a token without a role or without an agency (a board chair, a
/// machine client) is `Forbidden`; a case the caller's agency is not party
/// to is `NotFound`; an open case, or a second feedback of the same agency,
/// is `Conflict`. (A rating outside 1 to 5 is refused as `BadInput` when
/// the input is parsed.)
impl CaseChange for GiveFeedbackInput {
    type Output = Given;

    fn about(&self) -> About<Given> {
        About {
            operation: "giveFeedback",
            action: AuditAction::GiveFeedback,
            target: Target::case(self.case, None),
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<Given>, ServiceError> {
        // Visibility first (the frame loaded the case the caller may see): a
        // case outside the caller's scope does not exist, whatever else is
        // wrong with the request.
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        let actor = ctx.actor;
        let agency =
            access::may_give_feedback(&super::case_row::facts(row, ctx.participants), actor)?;
        let already = feedback::Entity::find()
            .filter(feedback::Column::CaseId.eq(row.id))
            .filter(feedback::Column::AgencyId.eq(agency.uuid()))
            .one(ctx.txn)
            .await?
            .is_some();
        if already {
            return Err(already_given());
        }
        let given = Feedback {
            id: uuid::Uuid::now_v7(),
            case_id: row.id,
            agency_id: agency.uuid(),
            resolved: self.resolved,
            felt_duration_rating: self.felt_duration_rating,
            would_use_again: self.would_use_again,
            comment: self
                .comment
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
            created_at: ctx.now,
        };
        let insert = feedback::Entity::insert(feedback::ActiveModel {
            id: Set(given.id),
            case_id: Set(given.case_id),
            agency_id: Set(given.agency_id),
            resolved: Set(given.resolved),
            felt_duration_rating: Set(given.felt_duration_rating),
            would_use_again: Set(given.would_use_again),
            comment: Set(given.comment.clone()),
            author_sub: Set(actor.sub.clone()),
            created_at: Set(given.created_at),
        })
        .exec_without_returning(ctx.txn)
        .await;
        match insert {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(already_given());
            }
            Err(e) => return Err(e.into()),
        }
        // The comment is free text and stays out of the trail.
        let audit = json!({
            "feedback_id": given.id,
            "agency_id": given.agency_id,
            "resolved": given.resolved,
            "felt_duration_rating": given.felt_duration_rating,
            "would_use_again": given.would_use_again,
        });
        // A new version, but not a new `updated_at`: a closed case's
        // `updated_at` is its closing time.
        let output = Box::new(move |case: &case::Model| {
            Ok(Given { feedback: given, case_version: case.version })
        });
        Ok(Decided { case: row.clone(), audit, output, raises: None })
    }
}

fn already_given() -> ServiceError {
    ServiceError::Conflict("your agency has already given feedback on this case".into())
}

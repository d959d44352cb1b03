//! Agencies taking part in a case beyond its two parties (issue 12): who
//! takes part (`current`, for the permission facts; `of_cases`, the
//! `Case.participants` list of a page in one statement), the scope every
//! read of cases repeats (`participating`, a subquery), and `joinCase` and
//! `leaveCase`, [`CaseChange`]s whose rule is
//! [`crate::domain::access::may_join`] and
//! [`crate::domain::access::may_leave`]. A participation is a row from its
//! joining to its leaving (`left_at`, set once); joining again after
//! leaving is a new row, so the list keeps every spell.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{case, case_participant};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use serde_json::json;

use super::audit::AuditAction;
use super::cases::Case;
use super::change::{About, CaseChange, Ctx, Decided, Target};
use super::{ServiceError, case_row};
use crate::domain::access::{self, Joined, Joining, ParticipantRefusal};
use crate::domain::actor::Actor;
use crate::domain::agency::AgencyKind;
use crate::domain::ids::{AgencyId, CaseId, PartnershipId};

/// One spell of an agency's part in a case, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Participant {
    /// The agency.
    pub agency_id: AgencyId,
    /// Its kind when it joined.
    pub agency_kind: AgencyKind,
    /// The stage it joined at.
    pub stage: String,
    /// When it joined.
    pub joined_at: DateTime<Utc>,
    /// When it left; `None` while it takes part.
    pub left_at: Option<DateTime<Utc>>,
}

impl Participant {
    /// As permissions see it (while it takes part).
    pub fn joined(&self) -> Option<Joined> {
        self.left_at.is_none().then(|| Joined {
            agency: self.agency_id,
            kind: self.agency_kind,
            stage: self.stage.clone(),
        })
    }
}

impl TryFrom<case_participant::Model> for Participant {
    type Error = ServiceError;

    fn try_from(m: case_participant::Model) -> Result<Self, ServiceError> {
        let agency_kind = AgencyKind::parse(&m.agency_kind).ok_or_else(|| {
            ServiceError::Internal(format!("unknown agency kind {:?}", m.agency_kind))
        })?;
        Ok(Self {
            agency_id: AgencyId::from_uuid(m.agency_id),
            agency_kind,
            stage: m.stage,
            joined_at: m.joined_at,
            left_at: m.left_at,
        })
    }
}

/// The cases `agency` takes part in now, as a subquery of case ids: the
/// part of a caller's scope beyond the cases its agency is party to
/// (`cases::visibility_condition`, `events`' feed).
pub fn participating(agency: AgencyId) -> SelectStatement {
    Query::select()
        .column(case_participant::Column::CaseId)
        .from(case_participant::Entity)
        .and_where(case_participant::Column::AgencyId.eq(agency.uuid()))
        .and_where(case_participant::Column::LeftAt.is_null())
        .to_owned()
}

/// Who takes part in the case now (for its permission facts).
pub async fn current(
    db: &impl ConnectionTrait,
    case: uuid::Uuid,
) -> Result<Vec<Joined>, ServiceError> {
    let rows = case_participant::Entity::find()
        .filter(case_participant::Column::CaseId.eq(case))
        .filter(case_participant::Column::LeftAt.is_null())
        .all(db)
        .await?;
    rows.into_iter()
        .map(|m| Ok(Participant::try_from(m)?.joined()))
        .filter_map(Result::transpose)
        .collect()
}

/// Every spell of every participant of `cases` that `actor` may see, in
/// order of joining, in one statement (the caller's scope repeated inside
/// it, as `records` does).
pub async fn of_cases(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
) -> Result<HashMap<CaseId, Vec<Participant>>, ServiceError> {
    if cases.is_empty() {
        return Ok(HashMap::new());
    }
    let visible = case::Entity::find()
        .select_only()
        .column(case::Column::Id)
        .filter(case::Column::Id.is_in(cases.iter().map(|c| c.uuid())))
        .filter(super::cases::visibility_condition(actor.case_visibility()))
        .into_query();
    let rows = case_participant::Entity::find()
        .filter(case_participant::Column::CaseId.in_subquery(visible))
        .order_by_asc(case_participant::Column::JoinedAt)
        .order_by_asc(case_participant::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<CaseId, Vec<Participant>> = HashMap::new();
    for row in rows {
        let case = CaseId::from_uuid(row.case_id);
        out.entry(case).or_default().push(row.try_into()?);
    }
    Ok(out)
}

impl From<ParticipantRefusal> for ServiceError {
    fn from(refusal: ParticipantRefusal) -> Self {
        use ParticipantRefusal as R;
        match refusal {
            R::NotVisible => Self::NotFound("case"),
            r @ R::NoneNamed { .. } => Self::bad_input("caseId", r.to_string()),
            r @ (R::OtherPartnership | R::AParty | R::WrongKind { .. } | R::NotJoined) => {
                Self::bad_input("agencyId", r.to_string())
            }
            r @ (R::Closed | R::AlreadyJoined) => Self::Conflict(r.to_string()),
            r @ (R::NoRole { .. } | R::Forbidden { .. }) => {
                let allowed = r.allowed().unwrap_or_default();
                Self::forbidden(r.to_string(), allowed)
            }
        }
    }
}

/// `joinCase`, parsed: bring `agency` into the case.
#[derive(Debug, Clone)]
pub struct JoinInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// The agency brought in.
    pub agency: AgencyId,
}

/// Brings an agency the case's stage names into the case.
impl CaseChange for JoinInput {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "joinCase",
            action: AuditAction::JoinCase,
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
        let agency = entity::agency::Entity::find_by_id(self.agency.uuid())
            .one(ctx.txn)
            .await?
            .ok_or_else(|| ServiceError::bad_input("agencyId", "no such agency"))?;
        crate::domain::directory::takes_new_work(agency.active)
            .map_err(|why| ServiceError::bad_input("agencyId", why))?;
        let kind = AgencyKind::parse(&agency.kind).ok_or_else(|| {
            ServiceError::Internal(format!("unknown agency kind {:?}", agency.kind))
        })?;
        let joining = Joining {
            agency: self.agency,
            partnership: PartnershipId::from_uuid(agency.partnership_id),
            kind,
        };
        access::may_join(protocol, &case_row::facts(row, ctx.participants), ctx.actor, &joining)?;
        case_participant::Model {
            id: uuid::Uuid::now_v7(),
            case_id: row.id,
            agency_id: self.agency.uuid(),
            agency_kind: kind.as_str().to_owned(),
            stage: row.stage.clone(),
            joined_at: ctx.now,
            joined_by_sub: ctx.actor.sub.clone(),
            left_at: None,
            left_by_sub: None,
        }
        .into_active_model()
        .reset_all()
        .insert(ctx.txn)
        .await?;
        let audit =
            json!({ "stage": row.stage, "agency": self.agency, "agency_kind": kind.as_str() });
        let case = case::Model { updated_at: ctx.now, ..row.clone() };
        Ok(Decided { case, audit, output: Box::new(|c| Case::try_from(c.clone())), raises: None })
    }
}

/// `leaveCase`, parsed: end `agency`'s part in the case.
#[derive(Debug, Clone)]
pub struct LeaveInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// The agency that leaves.
    pub agency: AgencyId,
}

/// Ends an agency's part in a case: from then on it sees the case no more.
impl CaseChange for LeaveInput {
    type Output = Case;

    fn about(&self) -> About<Case> {
        About {
            operation: "leaveCase",
            action: AuditAction::LeaveCase,
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
        access::may_leave(
            protocol,
            &case_row::facts(row, ctx.participants),
            ctx.actor,
            self.agency,
        )?;
        let left = case_participant::Entity::update_many()
            .col_expr(case_participant::Column::LeftAt, Expr::value(ctx.now))
            .col_expr(case_participant::Column::LeftBySub, Expr::value(ctx.actor.sub.clone()))
            .filter(case_participant::Column::CaseId.eq(row.id))
            .filter(case_participant::Column::AgencyId.eq(self.agency.uuid()))
            .filter(case_participant::Column::LeftAt.is_null())
            .exec(ctx.txn)
            .await?;
        if left.rows_affected != 1 {
            return Err(ServiceError::Internal("a participation to end was not found once".into()));
        }
        let audit = json!({ "stage": row.stage, "agency": self.agency });
        // A closed case keeps its closing time (the statistics count from
        // it), as feedback leaves it; the feed carries the change.
        let updated_at = if row.status == super::cases::CaseStatus::Open.as_str() {
            ctx.now
        } else {
            row.updated_at
        };
        let case = case::Model { updated_at, ..row.clone() };
        Ok(Decided { case, audit, output: Box::new(|c| Case::try_from(c.clone())), raises: None })
    }
}

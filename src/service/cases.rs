//! Cases: the professional differences themselves.

use chrono::{DateTime, NaiveDate, Utc};
use entity::case;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::ServiceError;
use crate::domain::actor::CaseVisibility;
use crate::domain::ids::{AgencyId, CaseId, ChildReference, PartnershipId};

/// Whether a case is still being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CaseStatus {
    /// Raised and not yet closed.
    Open,
    /// Closed with an outcome.
    Resolved,
    /// Closed by the raising side without an outcome.
    Withdrawn,
}

impl CaseStatus {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Resolved, Self::Withdrawn].into_iter().find(|v| v.as_str() == s)
    }
}

/// A case as the API shows it (serialisable: an idempotent mutation keeps
/// its first result).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Case {
    /// Identifier.
    pub id: CaseId,
    /// The partnership whose protocol governs it.
    pub partnership_id: PartnershipId,
    /// The protocol it was raised under.
    pub protocol_id: String,
    /// The version of that protocol.
    pub protocol_version: i32,
    /// The route through the protocol.
    pub route: String,
    /// The stage it is at.
    pub stage: String,
    /// Open, resolved or withdrawn.
    pub status: CaseStatus,
    /// The agency that raised the difference.
    pub raising_agency_id: AgencyId,
    /// The agency whose decision or action is disputed.
    pub receiving_agency_id: AgencyId,
    /// The child's pseudonymous reference (agency case numbers, never a name).
    pub child_reference: String,
    /// Subject category.
    pub category: String,
    /// Optimistic-concurrency version, raised by every change.
    pub version: i32,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it reached its current stage.
    pub stage_entered_at: Option<DateTime<Utc>>,
    /// When the current stage is due, if it has a time limit.
    pub due_on: Option<NaiveDate>,
    /// When the receiving side acknowledged it at its current stage.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Similar cases when it crossed the repeated-disagreement threshold.
    pub repeated_similar_cases: Option<i32>,
    /// What is disputed (free text; reading it is logged).
    pub summary: String,
    /// The day the family was told of the case, once recorded (Rotherham's
    /// challenge). Defaulted so that a result stored before it existed
    /// still replays.
    #[serde(default)]
    pub family_told_on: Option<NaiveDate>,
    /// The conference's step-down to child-in-need planning and its check,
    /// once recorded (Rotherham's challenge); defaulted like
    /// `family_told_on`.
    #[serde(default)]
    pub step_down: Option<StepDown>,
    /// The case whose step-down check raised this one.
    #[serde(default)]
    pub follows: Option<CaseId>,
}

/// A step-down recorded on a case, and its check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepDown {
    /// The day of the conference that decided it.
    pub conference_on: NaiveDate,
    /// The chair's check, once recorded.
    pub check: Option<StepDownCheck>,
    /// The case the check raised, when it was not evidenced.
    pub follow_up: Option<CaseId>,
}

/// The chair's check of a step-down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepDownCheck {
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// What the chair found.
    pub cin_meeting_held: bool,
    /// What the chair found.
    pub cin_plan_in_place: bool,
}

impl StepDown {
    /// As the domain judges it.
    pub fn recorded(&self) -> crate::domain::step_down::Recorded {
        crate::domain::step_down::Recorded {
            conference_on: self.conference_on,
            checked_on: self.check.map(|c| c.at.date_naive()),
        }
    }

    /// The step-down of a case row, if one is recorded.
    fn of(m: &case::Model) -> Result<Option<Self>, ServiceError> {
        let Some(conference_on) = m.step_down_conference_on else { return Ok(None) };
        let check = match (
            m.step_down_checked_at,
            m.step_down_cin_meeting_held,
            m.step_down_cin_plan_in_place,
        ) {
            (None, _, _) => None,
            (Some(at), Some(cin_meeting_held), Some(cin_plan_in_place)) => {
                Some(StepDownCheck { at, cin_meeting_held, cin_plan_in_place })
            }
            _ => return Err(ServiceError::Internal("a step-down check without findings".into())),
        };
        Ok(Some(Self {
            conference_on,
            check,
            follow_up: m.step_down_follow_up_id.map(CaseId::from_uuid),
        }))
    }
}

impl Case {
    /// The facts its permissions depend on (as `case_row::facts` of its
    /// row), with who takes part in it beyond its parties.
    pub fn facts<'a>(
        &'a self,
        participants: &'a [crate::domain::access::Joined],
    ) -> crate::domain::access::CaseFacts<'a> {
        crate::domain::access::CaseFacts {
            partnership: self.partnership_id,
            raising: self.raising_agency_id,
            receiving: self.receiving_agency_id,
            route: &self.route,
            stage: &self.stage,
            open: self.status == CaseStatus::Open,
            acknowledged: self.acknowledged_at.is_some(),
            participants,
        }
    }
}

impl TryFrom<case::Model> for Case {
    type Error = ServiceError;

    fn try_from(m: case::Model) -> Result<Self, ServiceError> {
        let status = CaseStatus::parse(&m.status)
            .ok_or_else(|| ServiceError::Internal(format!("unknown case status {:?}", m.status)))?;
        let step_down = StepDown::of(&m)?;
        Ok(Self {
            id: CaseId::from_uuid(m.id),
            partnership_id: PartnershipId::from_uuid(m.partnership_id),
            protocol_id: m.protocol_id,
            protocol_version: m.protocol_version,
            route: m.route,
            stage: m.stage,
            status,
            raising_agency_id: AgencyId::from_uuid(m.raising_agency_id),
            receiving_agency_id: AgencyId::from_uuid(m.receiving_agency_id),
            child_reference: m.child_reference,
            category: m.category,
            version: m.version,
            raised_at: m.raised_at,
            updated_at: m.updated_at,
            stage_entered_at: m.stage_entered_at,
            due_on: m.due_on,
            acknowledged_at: m.acknowledged_at,
            repeated_similar_cases: m.repeated_similar_cases,
            summary: m.summary,
            family_told_on: m.family_told_on,
            step_down,
            follows: m.follows_case_id.map(CaseId::from_uuid),
        })
    }
}

/// The SQL form of a caller's case visibility: for an agency's caller, the
/// cases it is party to or takes part in now (a subquery on
/// `case_participant`, inside the same statement, so a page costs what it
/// did).
pub fn visibility_condition(visibility: CaseVisibility) -> Condition {
    match visibility {
        // No row matches.
        CaseVisibility::None => Condition::all().add(Expr::cust("1 = 0")),
        CaseVisibility::Partnership(p) => {
            Condition::all().add(case::Column::PartnershipId.eq(p.uuid()))
        }
        CaseVisibility::Parties { partnership, agency } => {
            Condition::all().add(case::Column::PartnershipId.eq(partnership.uuid())).add(
                Condition::any()
                    .add(case::Column::RaisingAgencyId.eq(agency.uuid()))
                    .add(case::Column::ReceivingAgencyId.eq(agency.uuid()))
                    .add(case::Column::Id.in_subquery(super::participants::participating(agency))),
            )
        }
    }
}

/// One case by id, if the caller may see it; otherwise `NotFound`, exactly
/// as if it did not exist.
pub async fn get(
    db: &impl ConnectionTrait,
    visibility: CaseVisibility,
    id: CaseId,
) -> Result<Case, ServiceError> {
    case::Entity::find_by_id(id.uuid())
        .filter(visibility_condition(visibility))
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("case"))?
        .try_into()
}

/// The cases among `ids` the caller may see, in one statement, in no
/// particular order; an id the caller may not see is simply absent, exactly
/// like an unknown one.
pub async fn get_many(
    db: &impl ConnectionTrait,
    visibility: CaseVisibility,
    ids: &[CaseId],
) -> Result<Vec<Case>, ServiceError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    case::Entity::find()
        .filter(case::Column::Id.is_in(ids.iter().map(|id| id.uuid())))
        .filter(visibility_condition(visibility))
        .all(db)
        .await?
        .into_iter()
        .map(Case::try_from)
        .collect()
}

/// Filters of the case list; every one is optional.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only this status.
    pub status: Option<CaseStatus>,
    /// Only cases at this stage key.
    pub stage: Option<String>,
    /// Only open cases past (true) or not past (false) their due date.
    pub overdue: Option<bool>,
    /// Only cases this agency raised or received.
    pub agency: Option<AgencyId>,
    /// Only this subject category.
    pub category: Option<String>,
    /// Raised at or after.
    pub raised_from: Option<DateTime<Utc>>,
    /// Raised before.
    pub raised_to: Option<DateTime<Utc>>,
    /// Changed strictly after (`updated_at` later than this).
    pub updated_after: Option<DateTime<Utc>>,
    /// Only cases about this child reference (exact match).
    pub child_reference: Option<ChildReference>,
}

/// The order of the case list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseOrder {
    /// Newest raised first, then by id, descending.
    #[default]
    RaisedAt,
    /// Least recently changed first, then by id, ascending: a poller
    /// following changes reads them oldest first.
    UpdatedAt,
}

/// Where a page of the case list starts: after this case in the list's
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    /// The previous page's last case's time in the list's order: its
    /// raising time ([`CaseOrder::RaisedAt`]) or its last change
    /// ([`CaseOrder::UpdatedAt`]).
    pub at: DateTime<Utc>,
    /// Its id.
    pub id: CaseId,
}

fn filter_condition(
    visibility: CaseVisibility,
    filter: &CaseFilter,
    today: NaiveDate,
) -> Condition {
    let mut cond = visibility_condition(visibility);
    if let Some(status) = filter.status {
        cond = cond.add(case::Column::Status.eq(status.as_str()));
    }
    if let Some(stage) = &filter.stage {
        cond = cond.add(case::Column::Stage.eq(stage.as_str()));
    }
    if let Some(overdue) = filter.overdue {
        let open = case::Column::Status.eq(CaseStatus::Open.as_str());
        cond = if overdue {
            cond.add(open).add(case::Column::DueOn.lt(today))
        } else {
            cond.add(
                Condition::any()
                    .add(case::Column::Status.ne(CaseStatus::Open.as_str()))
                    .add(case::Column::DueOn.is_null())
                    .add(case::Column::DueOn.gte(today)),
            )
        };
    }
    if let Some(agency) = filter.agency {
        cond = cond.add(
            Condition::any()
                .add(case::Column::RaisingAgencyId.eq(agency.uuid()))
                .add(case::Column::ReceivingAgencyId.eq(agency.uuid())),
        );
    }
    if let Some(category) = &filter.category {
        cond = cond.add(case::Column::Category.eq(category.as_str()));
    }
    if let Some(from) = filter.raised_from {
        cond = cond.add(case::Column::RaisedAt.gte(from));
    }
    if let Some(to) = filter.raised_to {
        cond = cond.add(case::Column::RaisedAt.lt(to));
    }
    if let Some(after) = filter.updated_after {
        cond = cond.add(case::Column::UpdatedAt.gt(after));
    }
    if let Some(reference) = &filter.child_reference {
        cond = cond.add(case::Column::ChildReference.eq(reference.as_str()));
    }
    cond
}

/// One page of the caller's cases matching `filter` in `order`, at most
/// `limit`, starting after `after`; and whether more follow. Scope,
/// filters and the page are all applied in SQL (keyset pagination).
pub async fn page(
    db: &impl ConnectionTrait,
    visibility: CaseVisibility,
    filter: &CaseFilter,
    today: NaiveDate,
    order: CaseOrder,
    after: Option<After>,
    limit: u64,
) -> Result<(Vec<Case>, bool), ServiceError> {
    let mut cond = filter_condition(visibility, filter, today);
    let query = match order {
        CaseOrder::RaisedAt => {
            if let Some(a) = after {
                // The first bound is redundant but sargable: without it
                // PostgreSQL reads the index from the partnership's first
                // (last) case and filters the OR below row by row.
                cond = cond.add(case::Column::RaisedAt.lte(a.at)).add(
                    Condition::any().add(case::Column::RaisedAt.lt(a.at)).add(
                        Condition::all()
                            .add(case::Column::RaisedAt.eq(a.at))
                            .add(case::Column::Id.lt(a.id.uuid())),
                    ),
                );
            }
            case::Entity::find()
                .filter(cond)
                .order_by_desc(case::Column::RaisedAt)
                .order_by_desc(case::Column::Id)
        }
        CaseOrder::UpdatedAt => {
            if let Some(a) = after {
                // The same redundant bound as above.
                cond = cond.add(case::Column::UpdatedAt.gte(a.at)).add(
                    Condition::any().add(case::Column::UpdatedAt.gt(a.at)).add(
                        Condition::all()
                            .add(case::Column::UpdatedAt.eq(a.at))
                            .add(case::Column::Id.gt(a.id.uuid())),
                    ),
                );
            }
            case::Entity::find()
                .filter(cond)
                .order_by_asc(case::Column::UpdatedAt)
                .order_by_asc(case::Column::Id)
        }
    };
    let mut rows = query.limit(limit + 1).all(db).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((rows.into_iter().map(Case::try_from).collect::<Result<_, _>>()?, more))
}

/// How many of the caller's cases match `filter`.
pub async fn count(
    db: &impl ConnectionTrait,
    visibility: CaseVisibility,
    filter: &CaseFilter,
    today: NaiveDate,
) -> Result<u64, ServiceError> {
    use sea_orm::PaginatorTrait;
    Ok(case::Entity::find().filter(filter_condition(visibility, filter, today)).count(db).await?)
}

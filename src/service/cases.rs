//! Cases: the professional differences themselves.

use chrono::{DateTime, Utc};
use entity::case;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use super::ServiceError;
use crate::domain::actor::CaseVisibility;
use crate::domain::ids::{AgencyId, CaseId, PartnershipId};

/// Whether a case is still being worked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A case as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl TryFrom<case::Model> for Case {
    type Error = ServiceError;

    fn try_from(m: case::Model) -> Result<Self, ServiceError> {
        let status = CaseStatus::parse(&m.status).ok_or_else(|| {
            ServiceError::Db(sea_orm::DbErr::Type(format!("unknown case status {:?}", m.status)))
        })?;
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
        })
    }
}

/// The SQL form of a caller's case visibility.
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
                    .add(case::Column::ReceivingAgencyId.eq(agency.uuid())),
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

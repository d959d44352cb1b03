//! Partnerships and their agencies.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{agency, partnership};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};

use super::ServiceError;
use crate::domain::agency::AgencyKind;
use crate::domain::ids::{AgencyId, PartnershipId};

/// A partnership as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partnership {
    /// Identifier.
    pub id: PartnershipId,
    /// Stable short code, as carried by tokens.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Identifier of the protocol it has adopted.
    pub protocol_id: String,
    /// Identifier of its working-day calendar.
    pub calendar: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// An agency as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    /// Identifier.
    pub id: AgencyId,
    /// The partnership it belongs to.
    pub partnership_id: PartnershipId,
    /// Stable short code, as carried by tokens.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Sector.
    pub kind: AgencyKind,
}

impl From<partnership::Model> for Partnership {
    fn from(m: partnership::Model) -> Self {
        Self {
            id: PartnershipId::from_uuid(m.id),
            code: m.code,
            name: m.name,
            protocol_id: m.protocol_id,
            calendar: m.calendar,
            created_at: m.created_at,
        }
    }
}

impl From<agency::Model> for Agency {
    fn from(m: agency::Model) -> Self {
        Self {
            id: AgencyId::from_uuid(m.id),
            partnership_id: PartnershipId::from_uuid(m.partnership_id),
            code: m.code,
            name: m.name,
            // Kinds are written only by this service; an unknown spelling
            // means a newer version wrote it, so show it as `Other`.
            kind: AgencyKind::parse(&m.kind).unwrap_or(AgencyKind::Other),
        }
    }
}

/// Every partnership by name, or only one.
pub async fn partnerships(
    db: &impl ConnectionTrait,
    only: Option<PartnershipId>,
) -> Result<Vec<Partnership>, ServiceError> {
    let mut query = partnership::Entity::find().order_by_asc(partnership::Column::Name);
    if let Some(id) = only {
        query = query.filter(partnership::Column::Id.eq(id.uuid()));
    }
    let rows = query.all(db).await?;
    Ok(rows.into_iter().map(Partnership::from).collect())
}

/// Partnerships by id (for batch loading).
pub async fn partnerships_by_id(
    db: &impl ConnectionTrait,
    ids: &[PartnershipId],
) -> Result<HashMap<PartnershipId, Partnership>, ServiceError> {
    let rows = partnership::Entity::find()
        .filter(partnership::Column::Id.is_in(ids.iter().map(|id| id.uuid())))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|m| (PartnershipId::from_uuid(m.id), m.into())).collect())
}

/// The agencies of several partnerships at once, each list by name.
pub async fn agencies_of(
    db: &impl ConnectionTrait,
    partnerships: &[PartnershipId],
) -> Result<HashMap<PartnershipId, Vec<Agency>>, ServiceError> {
    let rows = agency::Entity::find()
        .filter(agency::Column::PartnershipId.is_in(partnerships.iter().map(|id| id.uuid())))
        .order_by_asc(agency::Column::Name)
        .order_by_asc(agency::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<PartnershipId, Vec<Agency>> = HashMap::new();
    for row in rows {
        let a = Agency::from(row);
        out.entry(a.partnership_id).or_default().push(a);
    }
    Ok(out)
}

/// Agencies by id (for batch loading).
pub async fn agencies_by_id(
    db: &impl ConnectionTrait,
    ids: &[AgencyId],
) -> Result<HashMap<AgencyId, Agency>, ServiceError> {
    let rows = agency::Entity::find()
        .filter(agency::Column::Id.is_in(ids.iter().map(|id| id.uuid())))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|m| (AgencyId::from_uuid(m.id), m.into())).collect())
}

/// The agencies of one partnership, by name; `NotFound` when there is no
/// such partnership.
pub async fn agencies(
    db: &impl ConnectionTrait,
    partnership: PartnershipId,
) -> Result<Vec<Agency>, ServiceError> {
    if partnership::Entity::find_by_id(partnership.uuid()).one(db).await?.is_none() {
        return Err(ServiceError::NotFound("partnership"));
    }
    Ok(agencies_of(db, &[partnership]).await?.remove(&partnership).unwrap_or_default())
}

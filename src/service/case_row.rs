//! Reading a case row the caller may see, at the version they expect, with
//! the facts permissions depend on and its protocol: shared by the reads and
//! the change frame.

use entity::case;
use sea_orm::{ConnectionTrait, EntityTrait, QueryFilter};

use super::ServiceError;
use super::cases::{CaseStatus, visibility_condition};
use crate::domain::access::{CaseFacts, Joined};
use crate::domain::actor::Actor;
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AgencyId, CaseId, PartnershipId};
use crate::domain::protocol::Protocol;

/// The case row if the caller may see it (else `NotFound`), at the version
/// they expect (else `Conflict`).
pub async fn load_visible(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: CaseId,
    expected_version: Option<i32>,
) -> Result<case::Model, ServiceError> {
    let row = case::Entity::find_by_id(id.uuid())
        .filter(visibility_condition(actor.case_visibility()))
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("case"))?;
    expect_version(&row, expected_version)?;
    Ok(row)
}

/// `Conflict` unless `row` is at the `expected` version (if any).
pub fn expect_version(row: &case::Model, expected: Option<i32>) -> Result<(), ServiceError> {
    match expected {
        Some(v) if v != row.version => Err(ServiceError::Conflict(format!(
            "the case has changed: it is at version {}, not {v}",
            row.version
        ))),
        _ => Ok(()),
    }
}

/// The facts of a row that permissions depend on, with who takes part in
/// it beyond its parties.
pub fn facts<'a>(row: &'a case::Model, participants: &'a [Joined]) -> CaseFacts<'a> {
    CaseFacts {
        partnership: PartnershipId::from_uuid(row.partnership_id),
        raising: AgencyId::from_uuid(row.raising_agency_id),
        receiving: AgencyId::from_uuid(row.receiving_agency_id),
        route: &row.route,
        stage: &row.stage,
        open: row.status == CaseStatus::Open.as_str(),
        acknowledged: row.acknowledged_at.is_some(),
        participants,
    }
}

/// The protocol version the case was raised under.
pub fn protocol_of<'a>(
    catalog: &'a Catalog,
    row: &case::Model,
) -> Result<&'a Protocol, ServiceError> {
    catalog
        .get(&row.protocol_id, u32::try_from(row.protocol_version).unwrap_or(0))
        .ok_or_else(|| ServiceError::UnknownProtocol(row.protocol_id.clone()))
}

/// Asks [`crate::domain::access::check`] whether `actor` may take `action`
/// on the case `row`; on yes, the case's protocol (for what the use case
/// decides next).
pub fn permit<'c>(
    catalog: &'c Catalog,
    row: &case::Model,
    participants: &[Joined],
    actor: &Actor,
    action: crate::domain::policy::Action,
) -> Result<&'c Protocol, ServiceError> {
    let protocol = protocol_of(catalog, row)?;
    crate::domain::access::check(protocol, &facts(row, participants), actor, action)?;
    Ok(protocol)
}

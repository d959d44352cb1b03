//! Pieces every changing use case shares: the write transaction, loading a
//! case the caller may see at the version they expect, and its protocol.

use entity::case;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use super::ServiceError;
use super::cases::{CaseStatus, visibility_condition};
use crate::domain::access::CaseFacts;
use crate::domain::actor::Actor;
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AgencyId, CaseId, PartnershipId};
use crate::domain::protocol::Protocol;

/// A write transaction. On SQLite it takes the write lock at BEGIN
/// (IMMEDIATE), so two writers queue on the busy timeout instead of one
/// failing when it upgrades a read lock; PostgreSQL ignores the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, ServiceError> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?)
}

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
    if let Some(v) = expected_version
        && v != row.version
    {
        return Err(ServiceError::Conflict(format!(
            "the case has changed: it is at version {}, not {v}",
            row.version
        )));
    }
    Ok(row)
}

/// The facts of a row that permissions depend on.
pub fn facts(row: &case::Model) -> CaseFacts<'_> {
    CaseFacts {
        partnership: PartnershipId::from_uuid(row.partnership_id),
        raising: AgencyId::from_uuid(row.raising_agency_id),
        receiving: AgencyId::from_uuid(row.receiving_agency_id),
        route: &row.route,
        stage: &row.stage,
        open: row.status == CaseStatus::Open.as_str(),
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

/// Raises the case's version (and sets `changes`) only if nobody changed it
/// since it was read; otherwise `Conflict`. Returns the new version, which
/// is also the sequence number of the change's audit event.
pub async fn bump_version(
    txn: &impl ConnectionTrait,
    row: &case::Model,
    changes: Vec<(case::Column, sea_orm::sea_query::SimpleExpr)>,
) -> Result<i32, ServiceError> {
    use sea_orm::ColumnTrait;
    use sea_orm::sea_query::Expr;
    let mut update = case::Entity::update_many()
        .col_expr(case::Column::Version, Expr::value(row.version + 1))
        .filter(case::Column::Id.eq(row.id))
        .filter(case::Column::Version.eq(row.version));
    for (col, value) in changes {
        update = update.col_expr(col, value);
    }
    if update.exec(txn).await?.rows_affected != 1 {
        return Err(ServiceError::Conflict(
            "the case was changed by someone else; reload it".into(),
        ));
    }
    Ok(row.version + 1)
}

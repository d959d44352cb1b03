//! Idempotency keys: a mutation retried with the same key and the same input
//! returns the first result without a second change; the same key with a
//! different input is `Conflict`. The first result is stored in the same
//! transaction as the change, so a change and its key commit together.
//!
//! A key belongs to the caller's scope: the token's issuer and subject and
//! the partnership and agency it acts for. The same key sent from another
//! scope (the same `sub` in another partnership or agency) is another key:
//! it runs as a new request, with every check. Within the scope, the first
//! result is returned only while its case is still visible to the caller
//! (a role can change between the first call and a retry); otherwise the
//! case is `NotFound`, as it would be to any read.

use chrono::Utc;
use entity::idempotency_key;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, SqlErr};
use serde::{Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::domain::actor::Actor;
use crate::domain::ids::CaseId;
use crate::service::{ServiceError, case_row};

/// The key of one mutation call with what identifies its input.
#[derive(Debug, Clone)]
pub(super) struct Idempotency {
    key: String,
    operation: &'static str,
    fingerprint: String,
}

impl Idempotency {
    /// `key` as the caller sent it (1 to 128 characters), for `operation`,
    /// whose parsed input `input` is fingerprinted through its `Debug` form.
    pub(super) fn new(
        key: Option<String>,
        operation: &'static str,
        input: &dyn std::fmt::Debug,
    ) -> Result<Option<Self>, ServiceError> {
        let Some(key) = key else { return Ok(None) };
        if key.is_empty() || key.len() > 128 {
            return Err(ServiceError::bad_input("idempotencyKey", "1 to 128 characters"));
        }
        let digest = Sha256::digest(format!("{operation}\n{input:?}").as_bytes());
        let fingerprint = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(Self { key, operation, fingerprint }))
    }
}

/// The primary key of `idem` in `actor`'s scope.
fn scoped(actor: &Actor, idem: &Idempotency) -> (String, String, uuid::Uuid, uuid::Uuid, String) {
    (
        actor.issuer.clone(),
        actor.sub.clone(),
        actor.partnership.uuid(),
        actor.agency.map_or(uuid::Uuid::nil(), |a| a.uuid()),
        idem.key.clone(),
    )
}

/// The first result of this call, if it was made before in the caller's
/// scope and the case it concerns (`case_of` the result) is still visible
/// to the caller.
pub(super) async fn replay<T: DeserializeOwned>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    idem: Option<&Idempotency>,
    case_of: impl FnOnce(&T) -> CaseId,
) -> Result<Option<T>, ServiceError> {
    let Some(idem) = idem else { return Ok(None) };
    let Some(row) = idempotency_key::Entity::find_by_id(scoped(actor, idem)).one(db).await? else {
        return Ok(None);
    };
    if row.operation != idem.operation || row.fingerprint != idem.fingerprint {
        return Err(ServiceError::Conflict(
            "this idempotency key was used for a different request".into(),
        ));
    }
    let first: T = serde_json::from_str(&row.result)
        .map_err(|e| ServiceError::Internal(format!("idempotent result: {e}")))?;
    case_row::load_visible(db, actor, case_of(&first), None).await?;
    Ok(Some(first))
}

/// Stores the result with the change, inside its transaction.
pub(super) async fn remember<T: Serialize>(
    txn: &impl ConnectionTrait,
    actor: &Actor,
    idem: Option<&Idempotency>,
    result: &T,
) -> Result<(), ServiceError> {
    let Some(idem) = idem else { return Ok(()) };
    let json = serde_json::to_string(result)
        .map_err(|e| ServiceError::Internal(format!("idempotent result: {e}")))?;
    let (issuer, actor_sub, partnership_id, agency_id, key) = scoped(actor, idem);
    let insert = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        issuer: Set(issuer),
        actor_sub: Set(actor_sub),
        partnership_id: Set(partnership_id),
        agency_id: Set(agency_id),
        key: Set(key),
        operation: Set(idem.operation.to_owned()),
        fingerprint: Set(idem.fingerprint.clone()),
        result: Set(json),
        created_at: Set(Utc::now()),
    })
    .exec_without_returning(txn)
    .await;
    match insert {
        Ok(_) => Ok(()),
        // The same key committed meanwhile by a concurrent request: this one
        // rolls back; a retry gets the first result.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Err(
            ServiceError::Conflict("a request with this idempotency key is being processed".into()),
        ),
        Err(e) => Err(e.into()),
    }
}

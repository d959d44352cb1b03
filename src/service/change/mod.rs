//! The change frame: the one write path of a case. Every mutation that
//! changes a case is a [`CaseChange`] run by [`Frame::run`], which, in order:
//!
//! 1. checks the idempotency key and replays a first result made in the
//!    caller's scope (issuer, subject, partnership, agency), while its case
//!    is still visible to the caller;
//! 2. begins the write transaction (on SQLite `IMMEDIATE`: the write lock
//!    is taken at `BEGIN`);
//! 3. loads the case the caller may see, locked until commit (`FOR UPDATE`
//!    on PostgreSQL), at the version the caller expects, with the protocol
//!    version it was raised under (`protocols::Library::covering`: loaded
//!    from the database when another process published it); a raise has
//!    no case to load, and takes its version in step 4;
//! 4. lets the use case decide (its domain rule) and write its own rows
//!    ([`CaseChange::decide_and_write`]): it returns the case as it is to
//!    be, the data of its audit event and how to build its result;
//! 5. stores the case: a new case is inserted at version 1, a changed one
//!    updated with its version raised by one, only if nobody changed it
//!    since step 3 (else `Conflict`);
//! 6. appends the audit event, numbered by the new version and chained to
//!    the case's previous event; when the use case raised a second case
//!    beside it ([`Decided::raises`]: a step-down check that finds no plan
//!    starts the challenge again), inserts that one at version 1 with its
//!    own first audit event;
//! 7. appends the change's event (`events::append`: ids and states, for
//!    the change feed; a second, `BOARD_NOTIFIED`, when the case reached a
//!    stage that tells the board), replaces the case's stage timers
//!    (`timers::sync`) and whom it waits on (`awaiting::sync`), then the
//!    same for the raised case (its `CASE_RAISED`);
//! 8. builds the result from the stored case and remembers it under the
//!    idempotency key;
//! 9. commits, then tells this process's subscription hub
//!    (`events::committed`; on PostgreSQL the append's `NOTIFY` tells every
//!    process).
//!
//! The whole attempt is retried (see [`retry`]) after a transient database
//! failure; nothing of a failed attempt is visible, as it rolled back whole.
//! A use case gets the transaction by reference, so it can write in it but
//! neither commit it nor begin another: "every change writes its audit
//! event and its event in the same transaction" holds by construction. Appending audit
//! events and idempotent results is private to this module.

mod idempotency;
pub mod retry;

use std::fmt::Debug;

use chrono::{DateTime, Utc};
use entity::{case, case_event};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, IntoActiveModel, Iterable, ModelTrait, QueryFilter, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cases::CaseStatus;
use super::cases::visibility_condition;
use super::protocols::Library;
use super::{ServiceError, audit, case_row, events};
use crate::domain::actor::Actor;
use crate::domain::board;
use crate::domain::catalog::Catalog;
use crate::domain::event::EventType;
use crate::domain::ids::CaseId;
use audit::AuditAction;
use idempotency::Idempotency;

/// Which case a change is made to.
#[derive(Debug, Clone, Copy)]
pub enum Target<O> {
    /// A new case (raising one): nothing to load. `case_of` finds the case
    /// in a first result, for the replay's visibility check.
    New {
        /// The case a result concerns.
        case_of: fn(&O) -> CaseId,
    },
    /// An existing case, which the caller must be able to see.
    Case {
        /// The case.
        id: CaseId,
        /// Refuse with `Conflict` unless the case is at this version.
        expected_version: Option<i32>,
    },
}

impl<O> Target<O> {
    /// An existing case, at `expected_version` if given.
    pub fn case(id: CaseId, expected_version: Option<i32>) -> Self {
        Self::Case { id, expected_version }
    }
}

/// What a use case is given to decide and write with.
pub struct Ctx<'a> {
    /// The change's transaction: write in it; the frame commits it.
    pub txn: &'a DatabaseTransaction,
    /// The protocols known when the change began, with the case's own
    /// version among them.
    pub catalog: &'a Catalog,
    /// The library, for a version the catalog lacks (a raise takes the
    /// partnership's adopted version: `Library::for_new_cases`).
    pub protocols: &'a Library,
    /// Who makes the change.
    pub actor: &'a Actor,
    /// The time of the change (its rows and its audit event).
    pub now: DateTime<Utc>,
    /// Who takes part in the case beyond its parties, as loaded with it
    /// (for its permission facts: `case_row::facts`); empty for a raise.
    pub participants: &'a [crate::domain::access::Joined],
}

/// What a change is: its mutation, its audit action and its case.
#[derive(Debug, Clone, Copy)]
pub struct About<O> {
    /// The mutation's name, part of the idempotency fingerprint
    /// (`raiseCase`, …).
    pub operation: &'static str,
    /// The audit event's action.
    pub action: AuditAction,
    /// The case changed.
    pub target: Target<O>,
}

/// Builds a change's result from the case as stored (at its new version).
pub type Output<O> = Box<dyn FnOnce(&case::Model) -> Result<O, ServiceError> + Send>;

/// A result known before the case is stored.
pub fn ready<O: Send + 'static>(output: O) -> Output<O> {
    Box::new(move |_| Ok(output))
}

/// What a use case decided and wrote.
pub struct Decided<O> {
    /// The case as it is to be after the change (for a raise, the new
    /// case). The frame stores what differs from the loaded row and sets
    /// the version.
    pub case: case::Model,
    /// The data of the change's audit event: ids and states, plus the
    /// outcome and learning of a closing (the trail is read under
    /// `ReadAuditTrail`, and its reads are logged).
    pub audit: serde_json::Value,
    /// The result, once the case is stored.
    pub output: Output<O>,
    /// A new case the change raises besides changing `case` (a step-down
    /// check that finds no child-in-need plan): stored by the frame in the
    /// same transaction, as a raise is, with its own audit trail and event.
    pub raises: Option<Raised>,
}

/// A case raised by a change to another case ([`Decided::raises`]).
pub struct Raised {
    /// The new case (its version is set by the frame).
    pub case: case::Model,
    /// The data of its `raise` audit event.
    pub audit: serde_json::Value,
}

/// One kind of change to a case: a use case run by [`Frame::run`].
pub trait CaseChange: Debug + Sync {
    /// What the mutation returns (and an idempotent replay returns again).
    type Output: Serialize + DeserializeOwned + Send;

    /// Its mutation, audit action and case.
    fn about(&self) -> About<Self::Output>;

    /// The parsed input the idempotency fingerprint is taken over.
    fn fingerprint(&self) -> &dyn Debug
    where
        Self: Sized,
    {
        self
    }

    /// Applies the domain rule to `row` (the loaded case; `None` for a new
    /// one) and writes the use case's own rows in `ctx.txn`. A refusal
    /// rolls the whole change back.
    fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> impl Future<Output = Result<Decided<Self::Output>, ServiceError>> + Send;
}

/// Who runs changes, with what: the frame of one request.
#[derive(Clone, Copy)]
pub struct Frame<'a> {
    /// The pool.
    pub db: &'a DatabaseConnection,
    /// The protocols.
    pub protocols: &'a Library,
    /// The caller.
    pub actor: &'a Actor,
    /// The request's id, kept in the audit event.
    pub request_id: Option<&'a str>,
}

/// A parsed change with the idempotency key it was sent with.
#[derive(Debug)]
pub struct Keyed<C> {
    /// The caller's idempotency key, as sent.
    pub key: Option<String>,
    /// The change.
    pub change: C,
}

impl Frame<'_> {
    /// Runs `change` (see the module documentation for the steps), retried
    /// after a transient database failure.
    #[tracing::instrument(skip_all, fields(change.operation = keyed.change.about().operation))]
    pub async fn run<C: CaseChange>(&self, keyed: Keyed<C>) -> Result<C::Output, ServiceError> {
        let change = &keyed.change;
        let operation = change.about().operation;
        let idem = Idempotency::new(keyed.key, operation, change.fingerprint())?;
        retry::retrying(|| self.attempt(idem.as_ref(), change)).await
    }

    async fn attempt<C: CaseChange>(
        &self,
        idem: Option<&Idempotency>,
        change: &C,
    ) -> Result<C::Output, ServiceError> {
        let About { action, target, .. } = change.about();
        let case_of = |first: &C::Output| match target {
            Target::New { case_of } => case_of(first),
            Target::Case { id, .. } => id,
        };
        if let Some(first) = idempotency::replay(self.db, self.actor, idem, case_of).await? {
            return Ok(first);
        }
        let txn = begin_write(self.db).await?;
        let (output, id, raised) = self.write(&txn, idem, change).await?;
        txn.commit().await?;
        // Deliveries of the event may be due: wake this process's worker.
        super::webhooks::outbox::committed();
        // Subscribers may follow it: tell this process's hub.
        events::committed();
        tracing::info!(case.id = %id, action = action.as_str(), "case changed");
        if let Some(new) = raised {
            tracing::info!(case.id = %new, follows = %id, "case raised by a change to another");
        }
        Ok(output)
    }

    /// Runs `change` in `txn`, a write transaction its caller began (with
    /// `begin_write`) and commits, for a change the server makes as part of
    /// another write: a timer's escalation on breach, written with the
    /// timer's firing so that neither happens without the other. Steps 3
    /// to 8 of the module documentation; no idempotency key, and no retry
    /// of its own (the caller's transaction fails whole). The caller tells
    /// the webhook worker and the hub after its commit.
    pub(crate) async fn run_in<C: CaseChange>(
        &self,
        txn: &DatabaseTransaction,
        change: &C,
    ) -> Result<C::Output, ServiceError> {
        let (output, id, _) = self.write(txn, None, change).await?;
        tracing::info!(case.id = %id, action = change.about().action.as_str(), actor = %self.actor.sub, "case changed by the server");
        Ok(output)
    }

    /// Steps 3 to 8 in `txn`: returns the result, the case's id and the
    /// id of a case raised beside it.
    async fn write<C: CaseChange>(
        &self,
        txn: &DatabaseTransaction,
        idem: Option<&Idempotency>,
        change: &C,
    ) -> Result<(C::Output, CaseId, Option<uuid::Uuid>), ServiceError> {
        let About { action, target, .. } = change.about();
        let row = match target {
            Target::New { .. } => None,
            Target::Case { id, expected_version } => {
                Some(load_for_change(txn, self.actor, id, expected_version).await?)
            }
        };
        let participants = match &row {
            Some(row) => super::participants::current(txn, row.id).await?,
            None => Vec::new(),
        };
        // The case's own version, loaded if another process published it.
        let catalog = match &row {
            Some(row) => {
                self.protocols.covering(txn, &row.protocol_id, row.protocol_version).await?
            }
            None => self.protocols.current(),
        };
        let ctx = Ctx {
            txn,
            catalog: &catalog,
            protocols: self.protocols,
            actor: self.actor,
            now: audit::now(),
            participants: &participants,
        };
        let Decided { case: mut next, audit: data, output, raises } =
            change.decide_and_write(&ctx, row.as_ref()).await?;
        let id = CaseId::from_uuid(next.id);
        // A raise may have loaded its version into the library.
        let catalog =
            self.protocols.covering(txn, &next.protocol_id, next.protocol_version).await?;
        let prev_hash = match &row {
            None => {
                next.version = 1;
                case::Entity::insert(next.clone().into_active_model().reset_all())
                    .exec_without_returning(txn)
                    .await?;
                audit::GENESIS.to_owned()
            }
            Some(row) => {
                if next.id != row.id {
                    return Err(ServiceError::Internal("a change swapped its case".into()));
                }
                next.version = bump_version(txn, row, &next).await?;
                audit::last_hash(txn, id).await?
            }
        };
        append_audit(txn, &next, &prev_hash, &ctx, action, self.request_id, &data).await?;
        let raised = match raises {
            Some(raised) => Some(self.store_raised(txn, &ctx, raised).await?),
            None => None,
        };
        // The events last (their lock is held to the commit), the changed
        // case's first.
        self.append_events(txn, &catalog, action, row.as_ref(), &next, ctx.now).await?;
        super::timers::sync(txn, &catalog, row.as_ref(), &next).await?;
        super::awaiting::sync(txn, &catalog, &next).await?;
        if let Some(new) = &raised {
            self.append_events(txn, &catalog, AuditAction::Raise, None, new, ctx.now).await?;
            super::timers::sync(txn, &catalog, None, new).await?;
            super::awaiting::sync(txn, &catalog, new).await?;
        }
        let output = output(&next)?;
        idempotency::remember(txn, self.actor, idem, &output).await?;
        Ok((output, id, raised.map(|new| new.id)))
    }

    /// Appends the event of `after`'s change (from `before`, none for a
    /// raise) and, when the case reached a stage whose protocol tells the
    /// board, a second, `BOARD_NOTIFIED`.
    async fn append_events(
        &self,
        txn: &DatabaseTransaction,
        catalog: &Catalog,
        action: AuditAction,
        before: Option<&case::Model>,
        after: &case::Model,
        now: DateTime<Utc>,
    ) -> Result<(), ServiceError> {
        events::append(txn, action.event_type(), before, after, now, self.request_id).await?;
        if after.status == CaseStatus::Open.as_str()
            && board::tells_board(
                case_row::protocol_of(catalog, after)?,
                &after.route,
                before.map(|r| r.stage.as_str()),
                &after.stage,
            )
        {
            let told = EventType::BoardNotified;
            events::append(txn, told, Some(after), after, now, self.request_id).await?;
        }
        Ok(())
    }

    /// Stores a case raised beside the one changed, as a raise is stored:
    /// at version 1, with its first audit event (its event and timers
    /// follow with the changed case's).
    async fn store_raised(
        &self,
        txn: &DatabaseTransaction,
        ctx: &Ctx<'_>,
        raised: Raised,
    ) -> Result<case::Model, ServiceError> {
        let Raised { case: mut new, audit: data } = raised;
        new.version = 1;
        case::Entity::insert(new.clone().into_active_model().reset_all())
            .exec_without_returning(txn)
            .await?;
        append_audit(txn, &new, audit::GENESIS, ctx, AuditAction::Raise, self.request_id, &data)
            .await?;
        Ok(new)
    }
}

/// A write transaction. On SQLite it takes the write lock at BEGIN
/// (IMMEDIATE), so two writers queue on the busy timeout instead of one
/// failing when it upgrades a read lock; PostgreSQL ignores the mode.
pub(crate) async fn begin_write(
    db: &DatabaseConnection,
) -> Result<DatabaseTransaction, ServiceError> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?)
}

/// The case row if the caller may see it (else `NotFound`), at the version
/// they expect (else `Conflict`). On PostgreSQL the row is locked (`FOR
/// UPDATE`) until commit, so a change made without `expectedVersion` waits
/// for a concurrent one instead of failing on the version check; SQLite
/// already holds the database's write lock.
async fn load_for_change(
    txn: &DatabaseTransaction,
    actor: &Actor,
    id: CaseId,
    expected_version: Option<i32>,
) -> Result<case::Model, ServiceError> {
    use sea_orm::QuerySelect;
    let mut query =
        case::Entity::find_by_id(id.uuid()).filter(visibility_condition(actor.case_visibility()));
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    let row = query.one(txn).await?.ok_or(ServiceError::NotFound("case"))?;
    super::case_row::expect_version(&row, expected_version)?;
    Ok(row)
}

/// Stores what differs between `row` and `next`, raising the version by
/// one, only if nobody changed the case since it was read; otherwise
/// `Conflict`. Returns the new version, which is also the sequence number
/// of the change's audit event.
async fn bump_version(
    txn: &impl ConnectionTrait,
    row: &case::Model,
    next: &case::Model,
) -> Result<i32, ServiceError> {
    let mut update = case::Entity::update_many()
        .col_expr(case::Column::Version, Expr::value(row.version + 1))
        .filter(case::Column::Id.eq(row.id))
        .filter(case::Column::Version.eq(row.version));
    for col in case::Column::iter() {
        let value = next.get(col);
        if !matches!(col, case::Column::Version) && value != row.get(col) {
            update = update.col_expr(col, Expr::value(value));
        }
    }
    if update.exec(txn).await?.rows_affected != 1 {
        return Err(ServiceError::Conflict(
            "the case was changed by someone else; reload it".into(),
        ));
    }
    Ok(row.version + 1)
}

/// Appends the audit event of `case`'s change to its new version, after
/// `prev_hash`.
async fn append_audit(
    txn: &DatabaseTransaction,
    case: &case::Model,
    prev_hash: &str,
    ctx: &Ctx<'_>,
    action: AuditAction,
    request_id: Option<&str>,
    data: &serde_json::Value,
) -> Result<(), ServiceError> {
    let mut model = case_event::Model {
        id: uuid::Uuid::now_v7(),
        case_id: case.id,
        seq: case.version,
        at: ctx.now,
        actor_sub: ctx.actor.sub.clone(),
        actor_role: ctx.actor.role.map(|r| r.as_str().to_owned()),
        actor_agency_id: ctx.actor.acting_agency().map(|a| a.uuid()),
        action: action.as_str().to_owned(),
        request_id: request_id.map(str::to_owned),
        data: data.to_string(),
        prev_hash: prev_hash.to_owned(),
        hash: String::new(),
    };
    model.hash = audit::event_hash(prev_hash, &model);
    case_event::Entity::insert(model.into_active_model().reset_all())
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

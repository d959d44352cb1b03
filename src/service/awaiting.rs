//! Who each open case waits on, kept for the queues (issue 13).
//!
//! - **Written with the change.** The change frame calls [`sync`] in every
//!   change's transaction: the case's rows of `awaiting` are replaced by
//!   those `domain::awaiting` gives for the case as it now is (none once
//!   it is closed). A row is a party (raising, receiving, board), a role,
//!   the party's agency, the milestone owed and the due instant.
//! - **Read as a queue.** [`queue`] is a person's queue: the open cases
//!   awaiting the caller's role at the caller's agency (for a board chair,
//!   the board of the caller's partnership), soonest due first (no due
//!   date last), a page at a time by keyset on (due instant, case id): one
//!   statement for the page, one for the cases, one for the counts when
//!   asked.
//! - **Backfilled once.** Cases written before the table existed (or by
//!   the bulk loader) have no rows: [`backfill`] computes them for every
//!   open case without any, a batch at a time; `serve` runs it in the
//!   background at start and `seed-demo --cases` at its end.

use chrono::{DateTime, Utc};
use entity::{awaiting, case};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::ServiceError;
use super::cases::CaseStatus;
use crate::domain::actor::Actor;
use crate::domain::awaiting::{self as rule, Awaited, Next};
use crate::domain::catalog::Catalog;
use crate::domain::ids::CaseId;
use crate::domain::milestone;
use crate::domain::protocol::Protocol;

/// Whom the case `row` waits on, in the transaction `txn` (which reads its
/// records at the stage when the stage has milestones).
pub(crate) async fn of<'p>(
    txn: &impl ConnectionTrait,
    protocol: &'p Protocol,
    row: &case::Model,
) -> Result<Vec<Awaited<'p>>, ServiceError> {
    if row.status != CaseStatus::Open.as_str() {
        return Ok(Vec::new());
    }
    let facts = super::case_row::facts(row, &[]);
    let timed = protocol.stage(&row.route, &row.stage).is_some_and(|s| !s.milestones().is_empty());
    let next = if timed {
        let written = super::records::written_at_stage(txn, row).await?;
        let entered = row.stage_entered_at.unwrap_or(row.raised_at);
        let standings = super::records::milestone_standings(
            protocol, &row.route, &row.stage, entered, &written,
        )?;
        milestone::next_open(&standings).map(|s| Next { milestone: s.milestone, due_on: s.due_on })
    } else {
        None
    };
    Ok(rule::awaiting(protocol, &facts, next, row.due_on))
}

/// The instant a due day ends, in milliseconds; `i64::MAX` for none.
fn sort_ms(due_on: Option<chrono::NaiveDate>) -> i64 {
    due_on.map_or(i64::MAX, |d| crate::domain::deadline::due_at(d).timestamp_millis())
}

/// Replaces the case's rows by whom it now waits on, in the change's
/// transaction.
pub(crate) async fn sync(
    txn: &impl ConnectionTrait,
    catalog: &Catalog,
    after: &case::Model,
) -> Result<(), ServiceError> {
    awaiting::Entity::delete_many().filter(awaiting::Column::CaseId.eq(after.id)).exec(txn).await?;
    let protocol = super::case_row::protocol_of(catalog, after)?;
    let awaited = of(txn, protocol, after).await?;
    insert(txn, after, &awaited).await
}

async fn insert(
    txn: &impl ConnectionTrait,
    row: &case::Model,
    awaited: &[Awaited<'_>],
) -> Result<(), ServiceError> {
    let facts = super::case_row::facts(row, &[]);
    let rows: Vec<awaiting::ActiveModel> = awaited
        .iter()
        .flat_map(|a| {
            a.roles.iter().map(move |r| awaiting::ActiveModel {
                case_id: Set(row.id),
                party: Set(a.party.as_str().to_owned()),
                role: Set(r.as_str().to_owned()),
                partnership_id: Set(row.partnership_id),
                agency_id: Set(a.party.agency(&facts).map(|x| x.uuid())),
                milestone: Set(a.milestone.map(|m| m.key().to_owned())),
                due_on: Set(a.due_on),
                sort_ms: Set(sort_ms(a.due_on)),
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    awaiting::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

/// Cases a backfill batch takes.
const BACKFILL_BATCH: u64 = 500;

/// Writes the rows of every open case that has none, a batch at a time;
/// returns how many cases it wrote for. Safe to run in several processes
/// at once: a case's rows are written in one transaction, and a batch that
/// finds a case already written by another skips it.
pub async fn backfill(
    db: &sea_orm::DatabaseConnection,
    catalog: &Catalog,
) -> Result<usize, ServiceError> {
    use sea_orm::TransactionTrait;
    let mut done = 0;
    let mut after: Option<uuid::Uuid> = None;
    loop {
        let mut find = case::Entity::find()
            .filter(case::Column::Status.eq(CaseStatus::Open.as_str()))
            .filter(case::Column::Id.not_in_subquery(
                Query::select().column(awaiting::Column::CaseId).from(awaiting::Entity).to_owned(),
            ))
            .order_by_asc(case::Column::Id)
            .limit(BACKFILL_BATCH);
        if let Some(a) = after {
            find = find.filter(case::Column::Id.gt(a));
        }
        let batch = find.all(db).await?;
        let Some(last) = batch.last() else { return Ok(done) };
        after = Some(last.id);
        let txn = db.begin().await?;
        for row in &batch {
            let protocol = super::case_row::protocol_of(catalog, row)?;
            let held = awaiting::Entity::find()
                .filter(awaiting::Column::CaseId.eq(row.id))
                .one(&txn)
                .await?;
            if held.is_some() {
                continue;
            }
            let awaited = of(&txn, protocol, row).await?;
            insert(&txn, row, &awaited).await?;
            done += 1;
        }
        txn.commit().await?;
    }
}

/// Where a queue page starts: after this (due instant, case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueAfter {
    /// The previous page's last entry's due instant in milliseconds.
    pub sort_ms: i64,
    /// Its case.
    pub case: CaseId,
}

/// One entry of a queue: the case, by when it is due.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    /// The case.
    pub case: super::cases::Case,
    /// Its place in the queue.
    pub at: QueueAfter,
}

/// Whose queue: the rows awaiting the caller (`None` for a caller with no
/// role or, acting for an agency, with no agency: an empty queue).
fn mine(actor: &Actor) -> Option<Condition> {
    let role = actor.role?;
    let mut cond = Condition::all()
        .add(awaiting::Column::PartnershipId.eq(actor.partnership.uuid()))
        .add(awaiting::Column::Role.eq(role.as_str()));
    if actor.acts_for_board() {
        cond = cond
            .add(awaiting::Column::Party.eq(rule::Party::Board.as_str()))
            .add(awaiting::Column::AgencyId.is_null());
    } else {
        cond = cond.add(awaiting::Column::AgencyId.eq(actor.acting_agency()?.uuid()));
    }
    Some(cond)
}

/// A page of the caller's queue, at most `limit`, after `after`; and
/// whether more follow. Two statements.
pub async fn queue(
    db: &impl ConnectionTrait,
    actor: &Actor,
    after: Option<QueueAfter>,
    limit: u64,
) -> Result<(Vec<QueueEntry>, bool), ServiceError> {
    let Some(mut cond) = mine(actor) else { return Ok((Vec::new(), false)) };
    if let Some(a) = after {
        cond = cond.add(awaiting::Column::SortMs.gte(a.sort_ms)).add(
            Condition::any().add(awaiting::Column::SortMs.gt(a.sort_ms)).add(
                Condition::all()
                    .add(awaiting::Column::SortMs.eq(a.sort_ms))
                    .add(awaiting::Column::CaseId.gt(a.case.uuid())),
            ),
        );
    }
    #[derive(FromQueryResult)]
    struct Place {
        case_id: uuid::Uuid,
        sort_ms: i64,
    }
    let places: Vec<Place> = awaiting::Entity::find()
        .select_only()
        .column(awaiting::Column::CaseId)
        .column(awaiting::Column::SortMs)
        .filter(cond)
        .order_by_asc(awaiting::Column::SortMs)
        .order_by_asc(awaiting::Column::CaseId)
        .limit(limit + 1)
        .into_model::<Place>()
        .all(db)
        .await?;
    let more = places.len() as u64 > limit;
    let places = &places[..places.len().min(usize::try_from(limit).unwrap_or(usize::MAX))];
    let ids: Vec<CaseId> = places.iter().map(|p| CaseId::from_uuid(p.case_id)).collect();
    let mut found = super::cases::get_many(db, actor.case_visibility(), &ids).await?;
    let mut out = Vec::with_capacity(places.len());
    for p in places {
        if let Some(i) = found.iter().position(|c| c.id.uuid() == p.case_id) {
            out.push(QueueEntry {
                case: found.swap_remove(i),
                at: QueueAfter { sort_ms: p.sort_ms, case: CaseId::from_uuid(p.case_id) },
            });
        }
    }
    Ok((out, more))
}

/// How many cases are in the caller's queue, and how many of them are past
/// their due instant at `now`. One statement.
pub async fn counts(
    db: &impl ConnectionTrait,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(u64, u64), ServiceError> {
    let Some(cond) = mine(actor) else { return Ok((0, 0)) };
    #[derive(FromQueryResult)]
    struct Counts {
        total: i64,
        overdue: Option<i64>,
    }
    let now_ms = now.timestamp_millis();
    let got = awaiting::Entity::find()
        .select_only()
        .column_as(awaiting::Column::CaseId.count(), "total")
        .column_as(
            // An integer, written into the text: no placeholder syntax
            // differs between the backends.
            Expr::cust(format!("SUM(CASE WHEN sort_ms < {now_ms} THEN 1 ELSE 0 END)")),
            "overdue",
        )
        .filter(cond)
        .into_model::<Counts>()
        .one(db)
        .await?;
    let (total, overdue) = got.map_or((0, 0), |c| (c.total, c.overdue.unwrap_or(0)));
    Ok((u64::try_from(total).unwrap_or(0), u64::try_from(overdue).unwrap_or(0)))
}

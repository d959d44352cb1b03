//! Timers: deadlines that announce themselves (issue 13, first part).
//!
//! - **Written with the change.** Every change to a case goes through the
//!   write frame, which calls [`sync`] in its transaction: when the case's
//!   due date, stage or status moved (at a stage with milestones: on every
//!   change), its unfired timers are replaced by those its state now calls
//!   for. An overdue timer fires at the end of the due day in the United Kingdom
//!   (`deadline::due_at`, the instant `Case.dueAt` shows, plus a second):
//!   `MILESTONE_OVERDUE` for each open milestone at a stage with
//!   milestones, with `MILESTONE_DUE_SOON` at the start of its due-soon
//!   days (the protocol's `due_soon_percent` of its working days: 50% and
//!   75% by default), and `STAGE_OVERDUE` elsewhere. No timer lives only in
//!   memory.
//! - **Fired once, anywhere.** A scheduler runs in every `serve` process
//!   ([`run`]): every `TIMER_POLL_INTERVAL` it claims the due timers (a
//!   claim is a lease, taken with `FOR UPDATE SKIP LOCKED` on PostgreSQL
//!   so that two processes never take the same timer; SQLite is one
//!   process) and fires each in one transaction: it appends the timer's
//!   event to the case's event log (so the feed, webhooks and subscriptions
//!   carry it) and marks the timer fired, only if it is still unfired. A
//!   process that dies mid-fire leaves its claim to expire (twice the poll
//!   interval); another takes the timer then. A timer that fires more than
//!   a poll interval late (after downtime) fires once, with how late kept
//!   on its row.
//! - **Time** is `audit::now`, the clock of changes (which tests move).
//!
//! A job-queue crate was not used for the reasons given in
//! `webhooks::worker` (the `sqlx` major, and a job written in the change's
//! own transaction).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::{case, timer};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, Statement, TransactionTrait,
};
use tokio::sync::watch;

use super::ServiceError;
use super::cases::CaseStatus;
use crate::config::TimerArgs;
use crate::domain::catalog::Catalog;
use crate::domain::event::EventType;
use crate::domain::milestone;

/// Timers one sweep claims at a time.
const SWEEP_BATCH: i64 = 100;

/// Replaces the unfired timers of the case `after` (changed from `before`,
/// none for a raise) by those its state calls for, in the change's
/// transaction:
/// - at a stage with milestones, for each open milestone whose clock has
///   started: `MILESTONE_DUE_SOON` at the start of each of its due-soon
///   days still to come (the protocol's `due_soon_percent`) and
///   `MILESTONE_OVERDUE` once its due day is over;
/// - elsewhere, `STAGE_OVERDUE` once the case's due day is over;
/// - nothing for a closed case.
///
/// Away from milestones, nothing is written when neither the due date,
/// the stage nor the status moved; at a stage with milestones every change
/// recomputes them (a record may complete one that is not the next).
pub(crate) async fn sync(
    txn: &impl ConnectionTrait,
    catalog: &Catalog,
    before: Option<&case::Model>,
    after: &case::Model,
) -> Result<(), ServiceError> {
    let protocol = super::case_row::protocol_of(catalog, after)?;
    let timed =
        protocol.stage(&after.route, &after.stage).is_some_and(|s| !s.milestones().is_empty());
    if let Some(b) = before
        && !timed
        && b.due_on == after.due_on
        && b.stage == after.stage
        && b.status == after.status
    {
        return Ok(());
    }
    if before.is_some() {
        timer::Entity::delete_many()
            .filter(timer::Column::CaseId.eq(after.id))
            .filter(timer::Column::FiredAt.is_null())
            .exec(txn)
            .await?;
    }
    if after.status != CaseStatus::Open.as_str() {
        return Ok(());
    }
    let now = super::audit::now();
    let mut timers: Vec<(EventType, Option<String>, DateTime<Utc>)> = Vec::new();
    if timed {
        let written = super::records::written_at_stage(txn, after).await?;
        let entered = after.stage_entered_at.unwrap_or(after.raised_at);
        let standings = super::records::milestone_standings(
            protocol,
            &after.route,
            &after.stage,
            entered,
            &written,
        )?;
        let calendar = crate::domain::calendar::Calendar::for_id(protocol.calendar())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        for st in standings.iter().filter(|s| s.completed_at.is_none()) {
            let (Some(from), Some(due)) = (st.from, st.due_on) else { continue };
            let key = Some(st.milestone.key().to_owned());
            let soon = milestone::due_soon_days(
                calendar,
                from,
                st.milestone.within_working_days(),
                protocol.due_soon_percent(),
            )
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
            for day in soon {
                let at = starts(day);
                if at > now {
                    timers.push((EventType::MilestoneDueSoon, key.clone(), at));
                }
            }
            timers.push((EventType::MilestoneOverdue, key, fires_at(due)));
        }
    } else if let Some(due) = after.due_on {
        timers.push((EventType::StageOverdue, None, fires_at(due)));
    }
    if timers.is_empty() {
        return Ok(());
    }
    let rows = timers.into_iter().map(|(kind, milestone, at)| timer::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        case_id: Set(after.id),
        kind: Set(kind.as_str().to_owned()),
        stage: Set(after.stage.clone()),
        milestone: Set(milestone),
        fires_at: Set(at),
        fired_at: Set(None),
        late_ms: Set(None),
        claim_owner: Set(None),
        claim_until_ms: Set(None),
    });
    timer::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

/// The first second of `day` in the United Kingdom.
fn starts(day: chrono::NaiveDate) -> DateTime<Utc> {
    fires_at(day - chrono::Duration::days(1))
}

/// When a deadline due on `due` is overdue: the second after the end of
/// that day in the United Kingdom.
pub fn fires_at(due: chrono::NaiveDate) -> DateTime<Utc> {
    crate::domain::deadline::due_at(due) + chrono::Duration::seconds(1)
}

/// Runs the scheduler until `stop` turns true (or its sender is dropped).
pub async fn run(
    db: DatabaseConnection,
    settings: Arc<TimerArgs>,
    mut stop: watch::Receiver<bool>,
) {
    let me = uuid::Uuid::now_v7();
    tracing::debug!(scheduler = %me, "timer scheduler started");
    loop {
        if *stop.borrow() {
            break;
        }
        if let Err(err) = sweep(&db, me, settings.timer_poll_interval).await {
            tracing::warn!(error = %err, "firing timers failed");
        }
        tokio::select! {
            r = stop.changed() => if r.is_err() { break },
            () = tokio::time::sleep(settings.timer_poll_interval) => {},
        }
    }
    tracing::debug!(scheduler = %me, "timer scheduler stopped");
}

/// Claims and fires the due timers, a batch at a time, until none is due;
/// returns how many fired.
pub async fn sweep(
    db: &DatabaseConnection,
    me: uuid::Uuid,
    interval: Duration,
) -> Result<usize, ServiceError> {
    let mut fired = 0;
    loop {
        let claimed = claim(db, me, interval).await?;
        if claimed.is_empty() {
            return Ok(fired);
        }
        for id in claimed {
            if fire(db, id, me, interval).await? {
                fired += 1;
            }
        }
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Leases up to [`SWEEP_BATCH`] due, unfired timers whose claim is free or
/// has run out (twice the interval).
async fn claim(
    db: &DatabaseConnection,
    me: uuid::Uuid,
    interval: Duration,
) -> Result<Vec<uuid::Uuid>, ServiceError> {
    let backend = db.get_database_backend();
    let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE timer SET claim_owner = $1, claim_until_ms = $2 \
         WHERE id IN (SELECT t.id FROM timer t \
           WHERE t.fired_at IS NULL AND t.fires_at <= $3 \
           AND (t.claim_until_ms IS NULL OR t.claim_until_ms < $4) \
           ORDER BY t.fires_at LIMIT $5 {lock}) \
         RETURNING id"
    );
    let now = super::audit::now();
    let lease = i64::try_from((2 * interval).as_millis()).unwrap_or(i64::MAX / 2).max(1000);
    let sql = if backend == DatabaseBackend::Sqlite { sql.replace('$', "?") } else { sql };
    let values: Vec<sea_orm::Value> = vec![
        me.into(),
        (millis(now) + lease).into(),
        now.into(),
        millis(now).into(),
        SWEEP_BATCH.into(),
    ];
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter().map(|r| r.try_get::<uuid::Uuid>("", "id").map_err(Into::into)).collect()
}

/// Fires one claimed timer: its event and its mark, in one transaction,
/// only if it is still unfired and still ours. False when it was not.
async fn fire(
    db: &DatabaseConnection,
    id: uuid::Uuid,
    me: uuid::Uuid,
    interval: Duration,
) -> Result<bool, ServiceError> {
    let txn = db.begin().await?;
    let Some(t) = timer::Entity::find_by_id(id).one(&txn).await? else { return Ok(false) };
    if t.fired_at.is_some() || t.claim_owner != Some(me) {
        return Ok(false);
    }
    let now = super::audit::now();
    let late = (now - t.fires_at).num_milliseconds();
    let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    let marked = timer::Entity::update_many()
        .col_expr(timer::Column::FiredAt, Expr::value(now))
        .col_expr(timer::Column::LateMs, Expr::value((late > interval_ms).then_some(late)))
        .filter(timer::Column::Id.eq(id))
        .filter(timer::Column::FiredAt.is_null())
        .exec(&txn)
        .await?;
    if marked.rows_affected != 1 {
        return Ok(false);
    }
    let kind = EventType::parse(&t.kind)
        .ok_or_else(|| ServiceError::Internal(format!("unknown timer kind {:?}", t.kind)))?;
    // The case as it is: a timer's event moves nothing (same version).
    if let Some(case) = case::Entity::find_by_id(t.case_id).one(&txn).await?
        && case.status == CaseStatus::Open.as_str()
        && case.stage == t.stage
    {
        super::events::append(&txn, kind, Some(&case), &case, now, None).await?;
        if late > interval_ms {
            tracing::info!(case.id = %case.id, timer = t.kind, late_ms = late, "a late timer fired");
        }
    }
    txn.commit().await?;
    super::webhooks::outbox::committed();
    super::events::committed();
    Ok(true)
}

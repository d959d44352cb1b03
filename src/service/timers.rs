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
//! - **Written by their use case**, in its transaction: an agreed action's
//!   ([`schedule_action`], removed by [`cancel_action`]) and a step-down
//!   check's (`STEP_DOWN_CHECK_DUE` at the start of the day the check is
//!   due, [`schedule_step_down`], removed when the check is recorded,
//!   [`cancel_step_down`]). [`sync`] replaces only a stage's timers, so
//!   these outlive the stage; a step-down check's outlives the case's
//!   closing too, and fires whatever the case's state.
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
    EntityTrait, QueryFilter, Statement,
};
use tokio::sync::watch;

use super::ServiceError;
use super::cases::CaseStatus;
use super::protocols::Library;
use crate::config::TimerArgs;
use crate::domain::actor::Actor;
use crate::domain::catalog::Catalog;
use crate::domain::event::EventType;
use crate::domain::ids::{CaseId, PartnershipId};
use crate::domain::milestone;

/// Timers one sweep claims at a time.
const SWEEP_BATCH: i64 = 100;

/// The timers of a stage's deadlines, which [`sync`] owns: replaced
/// whenever the stage's deadlines move, gone with the stage.
const STAGE_KINDS: [EventType; 3] =
    [EventType::MilestoneDueSoon, EventType::MilestoneOverdue, EventType::StageOverdue];

/// The timers of an agreed action: written by `agreeAction`
/// ([`schedule_action`]), removed by `completeAction` ([`cancel_action`])
/// or when the case closes; they outlive the stage the action was agreed
/// at.
const ACTION_KINDS: [EventType; 2] = [EventType::ActionDueSoon, EventType::ActionOverdue];

/// The timer of a step-down's check: written by `recordStepDown`
/// ([`schedule_step_down`]), removed by `recordStepDownCheck`
/// ([`cancel_step_down`]). It outlives the stage and the status of its
/// case (a step-down is often recorded on a closed case, and the check is
/// due six weeks later whatever the case did since): [`sync`] never
/// removes it, and it fires whatever the case's state.
const STEP_DOWN_KINDS: [EventType; 1] = [EventType::StepDownCheckDue];

fn kinds(list: &[EventType]) -> Vec<&'static str> {
    list.iter().map(|k| k.as_str()).collect()
}

/// One timer to write.
struct Planned {
    kind: EventType,
    milestone: Option<String>,
    action: Option<uuid::Uuid>,
    deadline: DateTime<Utc>,
    at: DateTime<Utc>,
}

async fn insert(
    txn: &impl ConnectionTrait,
    case: &case::Model,
    stage: &str,
    planned: Vec<Planned>,
) -> Result<(), ServiceError> {
    if planned.is_empty() {
        return Ok(());
    }
    let rows = planned.into_iter().map(|p| timer::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        case_id: Set(case.id),
        kind: Set(p.kind.as_str().to_owned()),
        stage: Set(stage.to_owned()),
        milestone: Set(p.milestone),
        fires_at: Set(p.at),
        fired_at: Set(None),
        late_ms: Set(None),
        claim_owner: Set(None),
        claim_until_ms: Set(None),
        action_id: Set(p.action),
        deadline_at: Set(Some(p.deadline)),
    });
    timer::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

/// The due-soon timers of a deadline due on `due`, whose clock of
/// `within` working days started on `from`, still to come after `now`
/// (the protocol's `due_soon_percent`), and its overdue timer.
#[allow(clippy::too_many_arguments)]
fn plan_deadline(
    calendar: &crate::domain::calendar::Calendar,
    percent: &[u8],
    from: chrono::NaiveDate,
    within: u32,
    due: chrono::NaiveDate,
    now: DateTime<Utc>,
    (soon, overdue): (EventType, EventType),
    (milestone, action): (Option<String>, Option<uuid::Uuid>),
) -> Result<Vec<Planned>, ServiceError> {
    let deadline = crate::domain::deadline::due_at(due);
    let days = milestone::due_soon_days(calendar, from, within, percent)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let mut planned: Vec<Planned> = days
        .into_iter()
        .map(starts)
        .filter(|at| *at > now)
        .map(|at| Planned { kind: soon, milestone: milestone.clone(), action, deadline, at })
        .collect();
    planned.push(Planned { kind: overdue, milestone, action, deadline, at: fires_at(due) });
    Ok(planned)
}

/// Replaces the unfired timers of the stage of the case `after` (changed
/// from `before`, none for a raise) by those its state calls for, in the
/// change's transaction:
/// - at a stage with milestones, for each open milestone whose clock has
///   started: `MILESTONE_DUE_SOON` at the start of each of its due-soon
///   days still to come (the protocol's `due_soon_percent`) and
///   `MILESTONE_OVERDUE` once its due day is over;
/// - elsewhere, `STAGE_OVERDUE` once the case's due day is over;
/// - nothing for a closed case, whose agreed actions' timers go too.
///
/// Away from milestones, nothing is written when neither the due date,
/// the stage nor the status moved; at a stage with milestones every change
/// recomputes them (a record may complete one that is not the next).
/// Timers of other kinds (an agreed action's) are left alone while the
/// case is open.
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
    let open = after.status == CaseStatus::Open.as_str();
    if before.is_some() {
        let mut replaced = kinds(&STAGE_KINDS);
        if !open {
            replaced.extend(kinds(&ACTION_KINDS));
        }
        timer::Entity::delete_many()
            .filter(timer::Column::CaseId.eq(after.id))
            .filter(timer::Column::FiredAt.is_null())
            .filter(timer::Column::Kind.is_in(replaced))
            .exec(txn)
            .await?;
    }
    if !open {
        return Ok(());
    }
    let now = super::audit::now();
    let calendar = crate::domain::calendar::Calendar::for_id(protocol.calendar())
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let mut planned: Vec<Planned> = Vec::new();
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
        for st in standings.iter().filter(|s| s.completed_at.is_none()) {
            let (Some(from), Some(due)) = (st.from, st.due_on) else { continue };
            planned.extend(plan_deadline(
                calendar,
                protocol.due_soon_percent(),
                from,
                st.milestone.within_working_days(),
                due,
                now,
                (EventType::MilestoneDueSoon, EventType::MilestoneOverdue),
                (Some(st.milestone.key().to_owned()), None),
            )?);
        }
    } else if let Some(due) = after.due_on {
        let deadline = crate::domain::deadline::due_at(due);
        planned.push(Planned {
            kind: EventType::StageOverdue,
            milestone: None,
            action: None,
            deadline,
            at: fires_at(due),
        });
    }
    insert(txn, after, &after.stage, planned).await
}

/// Writes the timers of an action agreed on `case` now, due on `due`, in
/// the `agreeAction` transaction: `ACTION_DUE_SOON` at the start of the
/// working days at the protocol's `due_soon_percent` of the working days
/// from today to the due day (none when that leaves no day before it),
/// and `ACTION_OVERDUE` once the due day is over.
pub(crate) async fn schedule_action(
    txn: &impl ConnectionTrait,
    catalog: &Catalog,
    case: &case::Model,
    action: uuid::Uuid,
    due: chrono::NaiveDate,
) -> Result<(), ServiceError> {
    let protocol = super::case_row::protocol_of(catalog, case)?;
    let calendar = crate::domain::calendar::Calendar::for_id(protocol.calendar())
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let now = super::audit::now();
    let today = now.date_naive();
    let within = calendar
        .working_days_between(today, due)
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    let within = u32::try_from(within.max(0)).unwrap_or(u32::MAX);
    let planned = plan_deadline(
        calendar,
        protocol.due_soon_percent(),
        today,
        within,
        due,
        now,
        (EventType::ActionDueSoon, EventType::ActionOverdue),
        (None, Some(action)),
    )?;
    insert(txn, case, &case.stage, planned).await
}

/// Removes the unfired timers of an agreed action (it was completed), in
/// the `completeAction` transaction.
pub(crate) async fn cancel_action(
    txn: &impl ConnectionTrait,
    action: uuid::Uuid,
) -> Result<(), ServiceError> {
    timer::Entity::delete_many()
        .filter(timer::Column::ActionId.eq(action))
        .filter(timer::Column::FiredAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// Writes the timer of the check of a step-down recorded on `case`, due on
/// `due`, in the `recordStepDown` transaction, replacing the one of a
/// step-down recorded before (a correction of the conference's day):
/// `STEP_DOWN_CHECK_DUE` at the start of the due day in the United Kingdom
/// (at once, when that has passed: the step-down was recorded late).
pub(crate) async fn schedule_step_down(
    txn: &impl ConnectionTrait,
    case: &case::Model,
    due: chrono::NaiveDate,
) -> Result<(), ServiceError> {
    cancel_step_down(txn, case.id).await?;
    let planned = Planned {
        kind: EventType::StepDownCheckDue,
        milestone: None,
        action: None,
        deadline: crate::domain::deadline::due_at(due),
        at: starts(due),
    };
    insert(txn, case, &case.stage, vec![planned]).await
}

/// Removes the unfired timer of the check of `case`'s step-down (the check
/// was recorded), in the `recordStepDownCheck` transaction.
pub(crate) async fn cancel_step_down(
    txn: &impl ConnectionTrait,
    case: uuid::Uuid,
) -> Result<(), ServiceError> {
    timer::Entity::delete_many()
        .filter(timer::Column::CaseId.eq(case))
        .filter(timer::Column::Kind.is_in(kinds(&STEP_DOWN_KINDS)))
        .filter(timer::Column::FiredAt.is_null())
        .exec(txn)
        .await?;
    Ok(())
}

/// Whether a timer's event still applies to the case as it is now: a
/// stage's timer while the case is open at that stage; an agreed action's
/// while the case is open (completing the action removes its timers); any
/// other kind always, a step-down check's among them, whatever the case's
/// stage or status (recording the check removes it).
fn still_applies(t: &timer::Model, case: &case::Model) -> bool {
    let open = case.status == CaseStatus::Open.as_str();
    let kind = t.kind.as_str();
    if kinds(&STAGE_KINDS).contains(&kind) {
        open && case.stage == t.stage
    } else if kinds(&ACTION_KINDS).contains(&kind) {
        open
    } else {
        // A step-down check's (`STEP_DOWN_KINDS`), and any other kind.
        true
    }
}

/// Whether firing a timer of `kind` for `case` (open, at the timer's
/// stage: `still_applies`) escalates it: a breach of its stage's deadline
/// (`STAGE_OVERDUE`, or a milestone's `MILESTONE_OVERDUE`) at a stage whose
/// protocol turns `escalate_on_breach` on, with a stage above it.
fn breach_escalates(
    catalog: &Catalog,
    kind: EventType,
    case: &case::Model,
) -> Result<bool, ServiceError> {
    if !matches!(kind, EventType::StageOverdue | EventType::MilestoneOverdue)
        || case.status != CaseStatus::Open.as_str()
    {
        return Ok(false);
    }
    let protocol = super::case_row::protocol_of(catalog, case)?;
    Ok(protocol.stage(&case.route, &case.stage).is_some_and(|s| s.escalate_on_breach())
        && protocol.next_stage(&case.route, &case.stage).is_some())
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
    protocols: Arc<Library>,
    settings: Arc<TimerArgs>,
    mut stop: watch::Receiver<bool>,
) {
    let me = uuid::Uuid::now_v7();
    tracing::debug!(scheduler = %me, "timer scheduler started");
    loop {
        if *stop.borrow() {
            break;
        }
        if let Err(err) = sweep(&db, &protocols, me, settings.timer_poll_interval).await {
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
    protocols: &Library,
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
            if fire(db, protocols, id, me, interval).await? {
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
/// Where the breach of a stage's deadline escalates by itself
/// ([`breach_escalates`]), the escalation is made in the same transaction,
/// by the server, through the change frame: the timer fires and the case
/// moves together or not at all.
async fn fire(
    db: &DatabaseConnection,
    protocols: &Library,
    id: uuid::Uuid,
    me: uuid::Uuid,
    interval: Duration,
) -> Result<bool, ServiceError> {
    let txn = super::change::begin_write(db).await?;
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
        && still_applies(&t, &case)
    {
        let detail = super::events::Detail {
            milestone: t.milestone.clone(),
            action: t.action_id,
            deadline: t.deadline_at,
            late_ms: (late > interval_ms).then_some(late),
        };
        super::events::append_with(&txn, kind, Some(&case), &case, now, None, detail).await?;
        if late > interval_ms {
            tracing::info!(case.id = %case.id, timer = t.kind, late_ms = late, "a late timer fired");
        }
        let catalog = protocols.covering(&txn, &case.protocol_id, case.protocol_version).await?;
        if breach_escalates(&catalog, kind, &case)? {
            let actor = Actor::system(PartnershipId::from_uuid(case.partnership_id));
            let frame = super::change::Frame { db, protocols, actor: &actor, request_id: None };
            let change = super::workflow::BreachEscalation {
                case: CaseId::from_uuid(case.id),
                expected_version: case.version,
                stage: case.stage.clone(),
            };
            frame.run_in(&txn, &change).await?;
        }
    }
    txn.commit().await?;
    super::webhooks::outbox::committed();
    super::events::committed();
    Ok(true)
}

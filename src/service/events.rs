//! The event log and the change feed.
//!
//! Every change to a case appends its event (`append`), in the
//! transaction of the change and its audit event: an event of a change that
//! rolls back never exists. A change that brings a case to a stage whose
//! protocol tells the board appends a second, `BOARD_NOTIFIED`
//! (`domain::board::tells_board`); a timer appends its own, with its
//! [`Detail`]. Events carry ids and states only.
//!
//! The feed (`feed`) must give a poller that follows its cursor every event
//! it may see exactly once, in a stable order, while several processes
//! write to one PostgreSQL. A plain sequence is not enough by itself: a
//! transaction that took `seq` 10 can commit after one that took 11, and a
//! reader that has seen 11 would skip 10 for ever. So events are appended
//! one transaction at a time: on PostgreSQL the append first takes a
//! transaction-scoped advisory lock ([`APPEND_LOCK`]), held until commit,
//! and only then draws its `seq`. The transaction holding the lock commits
//! before the next can draw a number, so `seq` is commit order, and a
//! reader that sees an event sees every event before it. The append is the
//! last write of a change (only the idempotent result and the commit
//! follow), so the lock is held briefly and waited for only by other
//! changes' appends; every lock a change takes on its case comes before
//! it, so no cycle can form. SQLite has one writer at a time (write
//! transactions begin `IMMEDIATE`), which gives the same order for free.
//!
//! The same transaction writes the event's webhook deliveries (the outbox,
//! `webhooks::outbox::enqueue`), under the same lock.
//!
//! The alternative, PostgreSQL's snapshot functions (show only events older
//! than every transaction still in flight), was tried first: transaction ids
//! are the whole cluster's, so any write in another database of the cluster
//! held the feed back.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{case, change_event};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::ServiceError;
use crate::domain::actor::{Actor, CaseVisibility};
use crate::domain::event::EventType;
use crate::domain::ids::{AgencyId, CaseId, PartnershipId};

/// One event of the feed.
#[derive(Debug, Clone)]
pub struct Event {
    /// Where it stands in the feed.
    pub cursor: Cursor,
    /// Its id.
    pub id: uuid::Uuid,
    /// What happened.
    pub kind: EventType,
    /// The case.
    pub case: CaseId,
    /// The case's partnership.
    pub partnership: PartnershipId,
    /// The raising agency.
    pub raising: AgencyId,
    /// The receiving agency.
    pub receiving: AgencyId,
    /// The stage before the change (none for a raise).
    pub stage_before: Option<String>,
    /// The stage after it.
    pub stage_after: String,
    /// The case's status after it.
    pub status: super::cases::CaseStatus,
    /// The case's version after it.
    pub version: i32,
    /// When.
    pub at: DateTime<Utc>,
    /// The request that made it.
    pub request_id: Option<String>,
    /// A timer's detail (empty for other events).
    pub detail: Detail,
}

/// A place in the feed: after the event with this sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// The event's sequence number.
    pub seq: i64,
}

/// The key of the advisory lock that appends take on PostgreSQL (any fixed
/// number; this one spells "events").
pub const APPEND_LOCK: i64 = 0x6576_656e_7473;

/// What a timer's event says beyond the case: the milestone or agreed
/// action it is about, the deadline it announces, and how late it fired
/// (only when later than a sweep's interval). Empty for every other event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detail {
    /// The milestone's key.
    pub milestone: Option<String>,
    /// The agreed action's id.
    pub action: Option<uuid::Uuid>,
    /// The deadline: ahead for a due-soon event, passed for an overdue one.
    pub deadline: Option<DateTime<Utc>>,
    /// How late the timer fired, in milliseconds.
    pub late_ms: Option<i64>,
}

/// Appends the event of a change, in the change's own transaction: the
/// case `before` it (none for a raise) and `after` it, as stored.
pub(crate) async fn append(
    txn: &impl ConnectionTrait,
    kind: EventType,
    before: Option<&case::Model>,
    after: &case::Model,
    at: DateTime<Utc>,
    request_id: Option<&str>,
) -> Result<(), ServiceError> {
    append_with(txn, kind, before, after, at, request_id, Detail::default()).await
}

/// [`append`] with a timer's [`Detail`].
pub(crate) async fn append_with(
    txn: &impl ConnectionTrait,
    kind: EventType,
    before: Option<&case::Model>,
    after: &case::Model,
    at: DateTime<Utc>,
    request_id: Option<&str>,
    detail: Detail,
) -> Result<(), ServiceError> {
    take_append_lock(txn).await?;
    let mut event = change_event::Model {
        seq: 0,
        id: uuid::Uuid::now_v7(),
        kind: kind.as_str().to_owned(),
        case_id: after.id,
        partnership_id: after.partnership_id,
        raising_agency_id: after.raising_agency_id,
        receiving_agency_id: after.receiving_agency_id,
        stage_before: before.map(|b| b.stage.clone()),
        stage_after: after.stage.clone(),
        status: after.status.clone(),
        case_version: after.version,
        at,
        request_id: request_id.map(str::to_owned),
        milestone: detail.milestone,
        action_id: detail.action,
        deadline_at: detail.deadline,
        late_ms: detail.late_ms,
    };
    let mut row = event.clone().into_active_model();
    row.seq = sea_orm::ActiveValue::NotSet;
    event.seq = change_event::Entity::insert(row).exec(txn).await?.last_insert_id;
    // The webhooks' outbox, in the same transaction.
    super::webhooks::outbox::enqueue(txn, &event).await?;
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        // Delivered to listeners at commit, never for a rollback; only the
        // position travels (a payload holds at most 8000 bytes), each
        // listening process reads the events from the log.
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [NOTIFY_CHANNEL.into(), event.seq.to_string().into()],
        ))
        .await?;
    }
    Ok(())
}

/// The PostgreSQL channel on which each append announces its `seq`
/// (`service::hub` listens).
pub const NOTIFY_CHANNEL: &str = "escalations_events";

/// The newest event of the log, if any (one statement).
pub async fn head(db: &impl ConnectionTrait) -> Result<Option<Cursor>, ServiceError> {
    let seq: Option<i64> = change_event::Entity::find()
        .select_only()
        .column_as(change_event::Column::Seq.max(), "seq")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten();
    Ok(seq.map(|seq| Cursor { seq }))
}

/// Commits of changes in this process, counted: the frame bumps it after
/// each commit, and on SQLite (one process's database) it is how the
/// subscription hub hears of new events. It carries no data: a hub reads
/// the log's head from its own database.
static COMMITS: std::sync::LazyLock<tokio::sync::watch::Sender<u64>> =
    std::sync::LazyLock::new(|| tokio::sync::watch::Sender::new(0));

/// A change has committed in this process.
pub(crate) fn committed() {
    COMMITS.send_modify(|n| *n = n.wrapping_add(1));
}

/// Wakes on every commit of a change in this process.
pub fn commits() -> tokio::sync::watch::Receiver<u64> {
    COMMITS.subscribe()
}

/// Takes the lock under which events are appended, until the end of the
/// transaction (PostgreSQL; SQLite's writer already holds the database).
pub(crate) async fn take_append_lock(txn: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_raw(sea_orm::Statement::from_string(
            DatabaseBackend::Postgres,
            format!("SELECT pg_advisory_xact_lock({APPEND_LOCK})"),
        ))
        .await?;
    }
    Ok(())
}

/// What a page of the feed is limited to.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these types (all when empty).
    pub types: Vec<EventType>,
    /// Only this case's events.
    pub case: Option<CaseId>,
}

/// The events the caller may see after `after`, oldest first, at most
/// `first` of them, and whether more follow (one statement).
pub async fn feed(
    db: &impl ConnectionTrait,
    actor: &Actor,
    after: Option<Cursor>,
    first: u64,
    filter: &Filter,
) -> Result<(Vec<Event>, bool), ServiceError> {
    let mut query = change_event::Entity::find()
        .filter(visibility_condition(actor.case_visibility()))
        .order_by_asc(change_event::Column::Seq)
        .limit(first + 1);
    if let Some(a) = after {
        query = query.filter(change_event::Column::Seq.gt(a.seq));
    }
    if !filter.types.is_empty() {
        query =
            query.filter(change_event::Column::Kind.is_in(filter.types.iter().map(|t| t.as_str())));
    }
    if let Some(case) = filter.case {
        query = query.filter(change_event::Column::CaseId.eq(case.uuid()));
    }
    let mut rows = query.all(db).await?;
    let more = rows.len() as u64 > first;
    rows.truncate(usize::try_from(first).unwrap_or(usize::MAX));
    let events = rows.into_iter().map(Event::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok((events, more))
}

/// For each of `cases`, a page of its events (a case's timeline), oldest
/// first, after `after`, at most `limit`, and whether more follow. One
/// statement for all the cases, numbered per case with `ROW_NUMBER() OVER
/// (PARTITION BY case_id ...)` as a page of records is; scoped like the
/// feed. Cases without a visible event are missing from the map.
pub async fn case_pages(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
    after: Option<Cursor>,
    limit: u64,
) -> Result<HashMap<CaseId, (Vec<Event>, bool)>, ServiceError> {
    use sea_orm::sea_query::{Alias, Asterisk, ExprTrait, Order, Query};
    use sea_orm::{FromQueryResult, QueryTrait};
    if cases.is_empty() {
        return Ok(HashMap::new());
    }
    let mut inner = change_event::Entity::find()
        .filter(visibility_condition(actor.case_visibility()))
        .filter(change_event::Column::CaseId.is_in(cases.iter().map(|c| c.uuid())))
        .column_as(
            Expr::cust(r#"ROW_NUMBER() OVER (PARTITION BY "case_id" ORDER BY "seq")"#),
            "rn",
        );
    if let Some(a) = after {
        inner = inner.filter(change_event::Column::Seq.gt(a.seq));
    }
    let rn = Alias::new("rn");
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner.into_query(), Alias::new("numbered"))
        .and_where(Expr::col(rn.clone()).lte(limit + 1))
        .order_by(Alias::new("case_id"), Order::Asc)
        .order_by(rn, Order::Asc)
        .to_owned();
    let statement = db.get_database_backend().build(&outer);
    let rows = change_event::Model::find_by_statement(statement).all(db).await?;
    let mut out: HashMap<CaseId, (Vec<Event>, bool)> = HashMap::new();
    for row in rows {
        let (list, more) = out.entry(CaseId::from_uuid(row.case_id)).or_default();
        if list.len() as u64 == limit {
            *more = true;
        } else {
            list.push(Event::try_from(row)?);
        }
    }
    Ok(out)
}

/// The events the caller may see, as a condition on the event's own
/// columns (the parties are kept with each event), and, for an agency's
/// caller, the events of the cases it takes part in now (all of them,
/// before its joining too: it reads the case whole).
fn visibility_condition(visibility: CaseVisibility) -> Condition {
    match visibility {
        CaseVisibility::None => Condition::all().add(Expr::cust("1 = 0")),
        CaseVisibility::Partnership(p) => {
            Condition::all().add(change_event::Column::PartnershipId.eq(p.uuid()))
        }
        CaseVisibility::Parties { partnership, agency } => {
            Condition::all().add(change_event::Column::PartnershipId.eq(partnership.uuid())).add(
                Condition::any()
                    .add(change_event::Column::RaisingAgencyId.eq(agency.uuid()))
                    .add(change_event::Column::ReceivingAgencyId.eq(agency.uuid()))
                    .add(
                        change_event::Column::CaseId
                            .in_subquery(super::participants::participating(agency)),
                    ),
            )
        }
    }
}

impl TryFrom<change_event::Model> for Event {
    type Error = ServiceError;

    fn try_from(m: change_event::Model) -> Result<Self, Self::Error> {
        let kind = EventType::parse(&m.kind)
            .ok_or_else(|| ServiceError::Internal(format!("unknown event type {:?}", m.kind)))?;
        Ok(Event {
            cursor: Cursor { seq: m.seq },
            id: m.id,
            kind,
            case: CaseId::from_uuid(m.case_id),
            partnership: PartnershipId::from_uuid(m.partnership_id),
            raising: AgencyId::from_uuid(m.raising_agency_id),
            receiving: AgencyId::from_uuid(m.receiving_agency_id),
            stage_before: m.stage_before,
            stage_after: m.stage_after,
            status: super::cases::CaseStatus::parse(&m.status)
                .ok_or_else(|| ServiceError::Internal(format!("unknown status {:?}", m.status)))?,
            version: m.case_version,
            at: m.at,
            request_id: m.request_id,
            detail: Detail {
                milestone: m.milestone,
                action: m.action_id,
                deadline: m.deadline_at,
                late_ms: m.late_ms,
            },
        })
    }
}

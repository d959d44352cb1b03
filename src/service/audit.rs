//! The append-only audit trail: each event carries the SHA-256 of the
//! event before it on the same case, so any edit or deletion breaks the
//! chain. Events are only ever inserted.

use chrono::{DateTime, SubsecRound, Utc};
use entity::case_event;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ServiceError;
use crate::domain::actor::Actor;
use crate::domain::ids::CaseId;

/// The hash before a case's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Now, at the precision both databases keep (microseconds), so a stored
/// time reads back equal and its hash verifies: the clock of every change
/// and of every "today" a deadline is measured against.
pub fn now() -> DateTime<Utc> {
    let shift = CLOCK_SHIFT_MICROS.load(std::sync::atomic::Ordering::Relaxed);
    (Utc::now() + chrono::Duration::microseconds(shift)).trunc_subsecs(6)
}

/// How far [`now`] is moved from the system clock (tests only).
static CLOCK_SHIFT_MICROS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Tests only: moves this process's clock (see [`now`]) so that it reads
/// `at` now, or back to the system clock with `None`. Nothing outside
/// the test suite calls it (the server has no setting for it); it is
/// process-wide, so the tests that call it run under nextest, one process
/// per test. Tokens are still checked against the system clock.
#[doc(hidden)]
pub fn set_clock_for_tests(at: Option<DateTime<Utc>>) {
    let shift = at.map_or(0, |at| (at - Utc::now()).num_microseconds().unwrap_or(0));
    CLOCK_SHIFT_MICROS.store(shift, std::sync::atomic::Ordering::Relaxed);
}

#[derive(Serialize)]
struct Hashed<'a> {
    case_id: String,
    seq: i32,
    at: String,
    actor_sub: &'a str,
    actor_role: Option<&'a str>,
    actor_agency_id: Option<String>,
    action: &'a str,
    request_id: Option<&'a str>,
    data: &'a str,
}

/// The hash of an event given the one before.
pub fn event_hash(prev_hash: &str, e: &case_event::Model) -> String {
    let body = Hashed {
        case_id: e.case_id.to_string(),
        seq: e.seq,
        at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        actor_sub: &e.actor_sub,
        actor_role: e.actor_role.as_deref(),
        actor_agency_id: e.actor_agency_id.map(|a| a.to_string()),
        action: &e.action,
        request_id: e.request_id.as_deref(),
        data: &e.data,
    };
    let json = serde_json::to_string(&body).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(json.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a change did: the `action` of its audit event. The stored
/// spelling ([`AuditAction::as_str`]) is hashed into the chain, so it never
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A case raised.
    Raise,
    /// A case moved up.
    Escalate,
    /// A case resolved.
    Resolve,
    /// A case withdrawn.
    Withdraw,
    /// A record added.
    AddRecord,
    /// An agency's view recorded.
    RecordView,
    /// An action agreed.
    AgreeAction,
    /// An agency's feedback given.
    GiveFeedback,
    /// The case acknowledged by the receiving side at its stage.
    Acknowledge,
    /// The day the family was told recorded (Rotherham's challenge).
    RecordFamilyTold,
    /// An agreed action recorded done by its owner.
    CompleteAction,
    /// A conference's step-down to child-in-need planning recorded
    /// (Rotherham's challenge).
    RecordStepDown,
    /// The check of a step-down recorded.
    RecordStepDownCheck,
    /// An agency beyond the two parties brought into the case.
    JoinCase,
    /// An agency's part in the case ended.
    LeaveCase,
}

impl AuditAction {
    /// The type of the change's event in the feed.
    pub const fn event_type(self) -> crate::domain::event::EventType {
        use crate::domain::event::EventType as E;
        match self {
            Self::Raise => E::CaseRaised,
            Self::Escalate => E::CaseEscalated,
            Self::Resolve => E::CaseResolved,
            Self::Withdraw => E::CaseWithdrawn,
            Self::AddRecord => E::RecordAdded,
            Self::RecordView => E::ViewRecorded,
            Self::AgreeAction => E::ActionAgreed,
            Self::GiveFeedback => E::FeedbackGiven,
            Self::Acknowledge => E::CaseAcknowledged,
            Self::RecordFamilyTold => E::FamilyToldRecorded,
            Self::CompleteAction => E::ActionCompleted,
            Self::RecordStepDown => E::StepDownRecorded,
            Self::RecordStepDownCheck => E::StepDownChecked,
            Self::JoinCase => E::ParticipantJoined,
            Self::LeaveCase => E::ParticipantLeft,
        }
    }
}

impl AuditAction {
    /// Every action.
    pub const ALL: [Self; 15] = [
        Self::Raise,
        Self::Escalate,
        Self::Resolve,
        Self::Withdraw,
        Self::AddRecord,
        Self::RecordView,
        Self::AgreeAction,
        Self::GiveFeedback,
        Self::Acknowledge,
        Self::RecordFamilyTold,
        Self::CompleteAction,
        Self::RecordStepDown,
        Self::RecordStepDownCheck,
        Self::JoinCase,
        Self::LeaveCase,
    ];

    /// The stored spelling (`case_event.action`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Raise => "raise",
            Self::Escalate => "escalate",
            Self::Resolve => "resolve",
            Self::Withdraw => "withdraw",
            Self::AddRecord => "add_record",
            Self::RecordView => "record_view",
            Self::AgreeAction => "agree_action",
            Self::GiveFeedback => "give_feedback",
            Self::Acknowledge => "acknowledge",
            Self::RecordFamilyTold => "record_family_told",
            Self::CompleteAction => "complete_action",
            Self::RecordStepDown => "record_step_down",
            Self::RecordStepDownCheck => "record_step_down_check",
            Self::JoinCase => "join_case",
            Self::LeaveCase => "leave_case",
        }
    }

    /// The action of a stored spelling.
    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == stored)
    }
}

/// The first broken link of the whole trail, if any: events are read in
/// (case, seq) order, a page of 10,000 at a time (memory stays flat however
/// long the trail), and each hash is recomputed.
pub async fn verify(db: &impl ConnectionTrait) -> Result<Option<String>, ServiceError> {
    use sea_orm::{ColumnTrait, Condition, QueryFilter, QuerySelect};
    const PAGE: u64 = 10_000;
    let mut prev: Option<(uuid::Uuid, i32, String)> = None;
    loop {
        let mut query = case_event::Entity::find();
        if let Some((case, seq, _)) = &prev {
            query = query.filter(
                Condition::any().add(case_event::Column::CaseId.gt(*case)).add(
                    Condition::all()
                        .add(case_event::Column::CaseId.eq(*case))
                        .add(case_event::Column::Seq.gt(*seq)),
                ),
            );
        }
        let events = query
            .order_by_asc(case_event::Column::CaseId)
            .order_by_asc(case_event::Column::Seq)
            .limit(PAGE)
            .all(db)
            .await?;
        for e in &events {
            let (expected_prev, expected_seq) = match &prev {
                Some((case, seq, hash)) if *case == e.case_id => (hash.as_str(), seq + 1),
                _ => (GENESIS, 1),
            };
            if e.seq != expected_seq {
                return Ok(Some(format!(
                    "case {} event {}: expected event {expected_seq}",
                    e.case_id, e.seq
                )));
            }
            if e.prev_hash != expected_prev {
                return Ok(Some(format!(
                    "case {} event {}: previous hash does not match",
                    e.case_id, e.seq
                )));
            }
            if event_hash(&e.prev_hash, e) != e.hash {
                return Ok(Some(format!(
                    "case {} event {}: content does not match its hash",
                    e.case_id, e.seq
                )));
            }
            prev = Some((e.case_id, e.seq, e.hash.clone()));
        }
        if (events.len() as u64) < PAGE {
            break;
        }
    }
    // A chain cut at its end still links; every change raised the case's
    // version by one, so the version counts the events there must be.
    let sql = "SELECT c.id AS id, c.version AS version, COUNT(e.id) AS events FROM \"case\" c \
               LEFT JOIN case_event e ON e.case_id = c.id GROUP BY c.id, c.version \
               HAVING COUNT(e.id) <> c.version LIMIT 1";
    let backend = db.get_database_backend();
    if let Some(row) = db.query_one_raw(sea_orm::Statement::from_string(backend, sql)).await? {
        let id: uuid::Uuid = row.try_get("", "id")?;
        let version: i32 = row.try_get("", "version")?;
        let events: i64 = row.try_get("", "events")?;
        return Ok(Some(format!(
            "case {id}: version {version} but {events} events (events are missing)"
        )));
    }
    Ok(None)
}

/// The hash of a case's latest event.
pub async fn last_hash(db: &impl ConnectionTrait, case: CaseId) -> Result<String, ServiceError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(case_event::Entity::find()
        .filter(case_event::Column::CaseId.eq(case.uuid()))
        .order_by_desc(case_event::Column::Seq)
        .one(db)
        .await?
        .map_or_else(|| GENESIS.to_owned(), |e| e.hash))
}

/// A page of a case's trail, oldest first, after event `after_seq`, at most
/// `limit`, for a caller the protocol allows to read it; and whether more
/// follow.
pub async fn trail(
    db: &impl ConnectionTrait,
    protocols: &super::protocols::Library,
    actor: &Actor,
    case: CaseId,
    after_seq: Option<i32>,
    limit: u64,
) -> Result<(Vec<case_event::Model>, bool), ServiceError> {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let row = super::case_row::load_visible(db, actor, case, None).await?;
    let participants = super::participants::current(db, row.id).await?;
    let catalog = protocols.covering(db, &row.protocol_id, row.protocol_version).await?;
    super::case_row::permit(
        &catalog,
        &row,
        &participants,
        actor,
        crate::domain::policy::Action::ReadAuditTrail,
    )?;
    let mut events = case_event::Entity::find()
        .filter(case_event::Column::CaseId.eq(case.uuid()))
        .filter(case_event::Column::Seq.gt(after_seq.unwrap_or(0)))
        .order_by_asc(case_event::Column::Seq)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = events.len() as u64 > limit;
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((events, more))
}

/// How many events a case's trail has (the caller was already checked).
pub async fn trail_count(db: &impl ConnectionTrait, case: CaseId) -> Result<u64, ServiceError> {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    Ok(case_event::Entity::find()
        .filter(case_event::Column::CaseId.eq(case.uuid()))
        .count(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::AuditAction::{self, *};

    /// The stored spellings are hashed into every chain: a renamed one
    /// would break every stored trail.
    #[track_caller]
    fn check(action: AuditAction, stored: &str) {
        assert_eq!(action.as_str(), stored);
        assert_eq!(AuditAction::parse(stored), Some(action));
    }

    #[test]
    fn stored_spellings_never_change() {
        check(Raise, "raise");
        check(Escalate, "escalate");
        check(Resolve, "resolve");
        check(Withdraw, "withdraw");
        check(AddRecord, "add_record");
        check(RecordView, "record_view");
        check(AgreeAction, "agree_action");
        check(GiveFeedback, "give_feedback");
        check(Acknowledge, "acknowledge");
        check(RecordFamilyTold, "record_family_told");
        check(JoinCase, "join_case");
        check(LeaveCase, "leave_case");
        check(CompleteAction, "complete_action");
        check(RecordStepDown, "record_step_down");
        check(RecordStepDownCheck, "record_step_down_check");
        assert_eq!(AuditAction::ALL.len(), 15, "a new action needs its row here");
        assert_eq!(AuditAction::parse("Raise"), None);
    }
}

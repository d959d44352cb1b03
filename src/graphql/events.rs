//! The change feed: `caseEvents`, every change to the cases the caller may
//! see, oldest first, a page at a time, and the subscription of the same
//! name, which gives the same events live (`service::hub`). Ordering and
//! exactly-once delivery are `service::events`'s.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, Subscription};
use futures_util::{Stream, StreamExt as _};
use sea_orm::DatabaseConnection;

use crate::graphql::scalars::DateTime;

use super::case::{CaseStatus, PageInfo};
use super::error::{GqlResult, bad_input};
use crate::domain::actor::Viewer;
use crate::domain::event::EventType;
use crate::domain::ids::CaseId;
use crate::graphql::cost;
use crate::service::events::{self, Cursor, Filter};
use crate::service::hub::{self, Hub, Start};

/// What happened to a case.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::event::EventType")]
pub enum CaseEventType {
    /// The case was raised.
    CaseRaised,
    /// The case moved to a higher stage.
    CaseEscalated,
    /// The case was closed with an agreed outcome.
    CaseResolved,
    /// The case was withdrawn by the raising side.
    CaseWithdrawn,
    /// A record was written on the case.
    RecordAdded,
    /// An agency recorded its view.
    ViewRecorded,
    /// An action was agreed.
    ActionAgreed,
    /// An agency gave feedback on the closed case.
    FeedbackGiven,
    /// The receiving side acknowledged the case at its stage
    /// (`acknowledgeCase`).
    CaseAcknowledged,
    /// The day the family was told of the case was recorded (Rotherham's
    /// challenge: `recordFamilyTold`; `Case.familyToldOn`).
    FamilyToldRecorded,
    /// An open milestone of the case is due soon: the start of the working
    /// day at each of the protocol's fractions of its working days (50%
    /// and 75% by default; announced by a timer within
    /// `TIMER_POLL_INTERVAL`).
    MilestoneDueSoon,
    /// An open milestone of the case passed its due date (announced by a
    /// timer within `TIMER_POLL_INTERVAL`).
    MilestoneOverdue,
    /// The case's stage passed its due date (a stage without milestones;
    /// announced by a timer within `TIMER_POLL_INTERVAL`).
    StageOverdue,
    /// The owner agency recorded an agreed action done
    /// (`completeAction`).
    ActionCompleted,
    /// An open agreed action is due soon: the start of the working day at
    /// each of the protocol's fractions of the working days from its
    /// agreement to its due day (a timer; `actionId` names it).
    ActionDueSoon,
    /// An open agreed action passed its due date (a timer; `actionId`
    /// names it).
    ActionOverdue,
    /// The case reached a stage at which the protocol tells the board or
    /// its business unit (`Stage.boardTold`: Western Bay's report to the
    /// board administrator at stage 3, Rotherham's business unit at stage
    /// 3 and the Practice Review Group at stage 4, …). A board chair's
    /// token and `statistics:read` webhooks of the partnership receive it.
    BoardNotified,
    /// A conference's step-down to Child in Need planning was recorded on
    /// the case (Rotherham's challenge: `recordStepDown`;
    /// `Case.stepDown`).
    StepDownRecorded,
    /// The chair's check of the case's step-down was recorded
    /// (`recordStepDownCheck`); when it is not evidenced a new case follows
    /// it, with its own `CASE_RAISED` (`Case.stepDown.followUpCase`).
    StepDownChecked,
    /// The check of the case's step-down is due: the start of the day six
    /// weeks after the conference in the United Kingdom
    /// (`Case.stepDown.checkDueOn`), announced by a timer within
    /// `TIMER_POLL_INTERVAL` whatever the case's stage or status (a
    /// step-down is often recorded on a closed case), once, unless the
    /// check was recorded before (`deadlineAt`: the end of that day).
    StepDownCheckDue,
    /// An agency beyond the two parties was brought into the case at a
    /// stage that names it (`joinCase`; `Case.participants`).
    ParticipantJoined,
    /// An agency's part in the case ended (`leaveCase`).
    ParticipantLeft,
}

/// Which events a page of the feed holds.
#[derive(InputObject, Default)]
pub struct CaseEventFilter {
    /// Only events of these types (all when absent or empty).
    pub types: Option<Vec<CaseEventType>>,
    /// Only the events of this case.
    pub case_id: Option<ID>,
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct CaseEvent(events::Event);

/// One change to a case: ids and states only, never free text. Read the
/// details with `case(id)`.
#[Object]
impl CaseEvent {
    /// Opaque identifier of the event.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What happened.
    async fn r#type(&self) -> CaseEventType {
        self.0.kind.into()
    }

    /// The case.
    async fn case_id(&self) -> ID {
        ID(self.0.case.to_string())
    }

    /// The case's partnership.
    async fn partnership_id(&self) -> ID {
        ID(self.0.partnership.to_string())
    }

    /// The agency raising the professional difference.
    async fn raising_agency_id(&self) -> ID {
        ID(self.0.raising.to_string())
    }

    /// The agency receiving it.
    async fn receiving_agency_id(&self) -> ID {
        ID(self.0.receiving.to_string())
    }

    /// The stage before the change (null for a raise).
    async fn stage_before(&self) -> Option<&str> {
        self.0.stage_before.as_deref()
    }

    /// The stage after the change.
    async fn stage_after(&self) -> &str {
        &self.0.stage_after
    }

    /// The case's status after the change.
    async fn status(&self) -> CaseStatus {
        self.0.status.into()
    }

    /// The case's version after the change.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the change was made.
    async fn at(&self) -> DateTime {
        self.0.at.into()
    }

    /// The request that made it (its `x-request-id`; null for an event of
    /// a timer).
    async fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// For `MILESTONE_DUE_SOON` and `MILESTONE_OVERDUE`: the key of the
    /// milestone (as `Case.milestones` gives it); null otherwise.
    async fn milestone(&self) -> Option<&str> {
        self.0.detail.milestone.as_deref()
    }

    /// For `ACTION_DUE_SOON` and `ACTION_OVERDUE`: the agreed action
    /// (`AgreedAction.id`); null otherwise.
    async fn action_id(&self) -> Option<ID> {
        self.0.detail.action.map(|a| ID(a.to_string()))
    }

    /// For an event of a timer: the deadline it announces, the instant
    /// `dueAt` shows (ahead for a due-soon event, passed for an overdue
    /// one; for `STEP_DOWN_CHECK_DUE` the end of the check's due day);
    /// null for other events.
    async fn deadline_at(&self) -> Option<DateTime> {
        self.0.detail.deadline.map(Into::into)
    }

    /// For an event of a timer that fired later than a sweep's interval
    /// after its time (the server was down): how late, in whole seconds.
    /// Null when it fired on time, and for other events.
    async fn late_seconds(&self) -> Option<i64> {
        self.0.detail.late_ms.map(|ms| ms / 1000)
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct CaseEventEdge(events::Event);

/// An event with its place in the feed.
#[Object]
impl CaseEventEdge {
    /// Pass as `after` to continue after this event.
    async fn cursor(&self) -> String {
        encode(self.0.cursor)
    }

    /// The event.
    async fn node(&self) -> CaseEvent {
        CaseEvent(self.0.clone())
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct CaseEventConnection {
    pub(crate) events: Vec<events::Event>,
    pub(crate) has_next_page: bool,
    pub(crate) has_previous_page: bool,
}

/// A page of the change feed (Relay-style connection).
#[Object]
impl CaseEventConnection {
    /// The events of this page with their cursors.
    async fn edges(&self) -> Vec<CaseEventEdge> {
        self.events.iter().cloned().map(CaseEventEdge).collect()
    }

    /// The events of this page.
    async fn nodes(&self) -> Vec<CaseEvent> {
        self.events.iter().cloned().map(CaseEvent).collect()
    }

    /// Where this page stands. Store `endCursor` and ask again with it as
    /// `after`; an empty page keeps the cursor you sent.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.events.first().map(|e| encode(e.cursor)),
            end_cursor: self.events.last().map(|e| encode(e.cursor)),
        }
    }
}

/// The change feed's root field.
#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// Every change to the cases the caller may see (as `cases`: an agency's
    /// people and `cases:read` clients the cases it raised or received, a
    /// board chair the partnership's), oldest first. Follow `endCursor`:
    /// every event is seen exactly once, in a stable order, also while
    /// several server processes write; a change's event is there as soon as
    /// the change is.
    #[graphql(complexity = "cost::page(first, child_complexity)")]
    async fn case_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(desc = "Page size, 1 to 100.", default = 50)] first: i32,
        #[graphql(desc = "Which events.")] filter: Option<CaseEventFilter>,
    ) -> Result<CaseEventConnection> {
        if !(1..=100).contains(&first) {
            return Err(bad_input("first", "between 1 and 100"));
        }
        let (after, filter) = parse(after, filter)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let (events, has_next_page) = match ctx.data::<Viewer>()? {
            Viewer::Actor(actor) => {
                let first = u64::try_from(first).unwrap_or(50);
                events::feed(db, actor, after, first, &filter).await.gql()?
            }
            Viewer::Anonymous => (Vec::new(), false),
        };
        Ok(CaseEventConnection { events, has_next_page, has_previous_page: after.is_some() })
    }
}

/// The cursor and filter of `caseEvents` (the query's and the
/// subscription's), parsed.
fn parse(
    after: Option<String>,
    filter: Option<CaseEventFilter>,
) -> Result<(Option<Cursor>, Filter)> {
    let after = match after {
        None => None,
        Some(c) => Some(decode(&c).ok_or_else(|| bad_input("after", "not a cursor of this list"))?),
    };
    let filter = filter.unwrap_or_default();
    let case = match filter.case_id {
        None => None,
        Some(id) => Some(
            id.parse::<CaseId>()
                .map_err(|_| bad_input("filter.caseId", "not a valid identifier"))?,
        ),
    };
    let filter = Filter {
        types: filter.types.unwrap_or_default().into_iter().map(EventType::from).collect(),
        case,
    };
    Ok((after, filter))
}

/// The live change feed's root field.
#[derive(Default)]
pub struct EventsSubscription;

#[Subscription]
impl EventsSubscription {
    /// The events of `caseEvents`, live: every change to the cases the
    /// caller may see, each checked against the caller's scope, in order,
    /// as it commits, on whichever server process it was made. With
    /// `after` (an `endCursor` or an edge's `cursor` of the query
    /// `caseEvents`), first every event the feed holds after it, then live
    /// ones, with no gap and no duplicate between the two: read a case,
    /// note the feed's `endCursor`, subscribe with it. Over WebSocket only
    /// (`graphql-transport-ws`).
    async fn case_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Start after this cursor (replay, then live); from now when absent.")]
        after: Option<String>,
        #[graphql(desc = "Which events.")] filter: Option<CaseEventFilter>,
    ) -> Result<impl Stream<Item = Result<CaseEventEdge>> + use<>> {
        let (after, filter) = parse(after, filter)?;
        let Viewer::Actor(actor) = ctx.data::<Viewer>()? else {
            return Err(crate::service::ServiceError::forbidden(
                "a token is required",
                crate::domain::access::Allowed::default(),
            ))
            .gql();
        };
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let hub = ctx.data::<Arc<Hub>>()?;
        let start = after.map_or(Start::Now, Start::After);
        let events = hub::follow(db, hub, actor.clone(), filter, start).await.gql()?;
        Ok(events.map(|e| e.map(CaseEventEdge).gql()))
    }
}

/// A cursor: the event's sequence number, in hexadecimal.
pub(crate) fn encode(c: Cursor) -> String {
    format!("e{:x}", c.seq)
}

pub(crate) fn decode(cursor: &str) -> Option<Cursor> {
    let seq = cursor.strip_prefix('e')?;
    if seq.is_empty() || seq.len() > 15 || !seq.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Cursor { seq: i64::from_str_radix(seq, 16).ok()? })
}

#[cfg(test)]
mod tests {
    use super::{Cursor, decode, encode};

    #[test]
    fn cursors_read_back_and_nothing_else_does() {
        for c in [Cursor { seq: 1 }, Cursor { seq: 9_000_000_001 }] {
            assert_eq!(decode(&encode(c)), Some(c));
        }
        for bad in ["", "1", "e", "ex", "e-1", "e1111111111111111"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}

//! Who must act next: `Case.awaiting` (the `Awaiting` type) and the
//! caller's queue, `myQueue`. Both follow `domain::awaiting`; the queue
//! reads the rows the change frame keeps (`service::awaiting`).

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, Result};

use super::case::{Case, PageInfo, hex, prefetch, unhex};
use super::directory::{Agency, load_agency};
use super::error::{GqlResult, bad_input};
use crate::domain::awaiting::Party;
use crate::domain::ids::{AgencyId, CaseId};
use crate::graphql::scalars::{Date, DateTime};
use crate::service::awaiting::{self, QueueAfter, QueueEntry};

/// Whom a case waits on.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::awaiting::Party")]
pub enum AwaitedParty {
    /// The raising agency.
    Raising,
    /// The receiving agency.
    Receiving,
    /// The board, for the partnership (its chair).
    Board,
}

/// One party an open case waits on, by the same rule as `viewerCan`:
/// every role listed may take the awaited action now.
pub struct Awaiting {
    pub(crate) party: Party,
    pub(crate) agency: Option<AgencyId>,
    pub(crate) roles: Vec<crate::domain::role::Role>,
    pub(crate) milestone: Option<String>,
    pub(crate) due_on: Option<chrono::NaiveDate>,
}

/// One party an open case waits on, by the same rule as `viewerCan`:
/// every role listed may take the awaited action now. At a stage with
/// milestones, the side that owes the next open milestone (its record);
/// otherwise each side's lead at the stage (or the board at a board
/// stage), to resolve or escalate.
#[Object]
impl Awaiting {
    /// Which party.
    async fn party(&self) -> AwaitedParty {
        self.party.into()
    }

    /// The party's agency (null for the board).
    async fn agency(&self, ctx: &Context<'_>) -> Result<Option<Agency>> {
        match self.agency {
            None => Ok(None),
            Some(id) => load_agency(ctx, id).await.map(Some),
        }
    }

    /// The roles of that party that must act (any one of them).
    async fn roles(&self) -> Vec<super::protocols::Role> {
        self.roles.iter().map(|&r| r.into()).collect()
    }

    /// The key of the milestone owed (see `Case.milestones`); null when
    /// the case waits on the stage's leads.
    async fn milestone(&self) -> Option<&str> {
        self.milestone.as_deref()
    }

    /// By when: the milestone's due day, or the case's.
    async fn due_on(&self) -> Option<Date> {
        self.due_on.map(Into::into)
    }

    /// The instant it is due: the end of `dueOn` in the United Kingdom.
    async fn due_at(&self) -> Option<DateTime> {
        self.due_on.map(|d| crate::domain::deadline::due_at(d).into())
    }

    /// Past `dueAt` on the server's clock.
    async fn overdue(&self) -> bool {
        self.due_on
            .is_some_and(|d| crate::domain::deadline::due_at(d) < crate::service::audit::now())
    }
}

const QUEUE_PREFIX: &str = "q|";

fn encode(at: QueueAfter) -> String {
    hex(&format!("{QUEUE_PREFIX}{}|{}", at.sort_ms, at.case))
}

fn decode(cursor: &str) -> Option<QueueAfter> {
    let raw = unhex(cursor)?;
    let (ms, id) = raw.strip_prefix(QUEUE_PREFIX)?.split_once('|')?;
    Some(QueueAfter {
        sort_ms: ms.parse().ok()?,
        case: CaseId::from_uuid(uuid::Uuid::try_parse(id).ok()?),
    })
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct QueueEdge(QueueEntry);

/// A case of the queue with its place.
#[Object]
impl QueueEdge {
    /// Pass as `after` to continue after this case.
    async fn cursor(&self) -> String {
        encode(self.0.at)
    }

    /// The case.
    async fn node(&self) -> Case {
        Case(self.0.case.clone())
    }
}

/// GraphQL wrapper; the description is on the `#[Object]` impl.
pub struct QueueConnection {
    entries: Vec<QueueEntry>,
    has_next_page: bool,
    has_previous_page: bool,
}

/// A page of the caller's queue (Relay-style connection): the open cases
/// waiting on the caller's role at the caller's agency, soonest due first.
#[Object]
impl QueueConnection {
    /// The cases of this page with their cursors.
    async fn edges(&self, ctx: &Context<'_>) -> Result<Vec<QueueEdge>> {
        let nodes: Vec<_> = self.entries.iter().map(|e| e.case.clone()).collect();
        prefetch(ctx, &ctx.look_ahead().field("node"), &nodes).await?;
        Ok(self.entries.iter().cloned().map(QueueEdge).collect())
    }

    /// The cases of this page.
    async fn nodes(&self, ctx: &Context<'_>) -> Result<Vec<Case>> {
        let nodes: Vec<_> = self.entries.iter().map(|e| e.case.clone()).collect();
        prefetch(ctx, &ctx.look_ahead(), &nodes).await?;
        Ok(nodes.into_iter().map(Case).collect())
    }

    /// Where this page stands in the queue.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.entries.first().map(|e| encode(e.at)),
            end_cursor: self.entries.last().map(|e| encode(e.at)),
        }
    }

    /// How many cases the whole queue holds (one more statement with
    /// `overdueCount`, run only when asked).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(counts(ctx).await?.0)
    }

    /// How many of them are past their due instant now.
    async fn overdue_count(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(counts(ctx).await?.1)
    }
}

/// The queue's two counts, read once per request.
async fn counts(ctx: &Context<'_>) -> Result<(u64, u64)> {
    let actor = super::workflow::actor(ctx)?;
    let cache = ctx.data::<super::loaders::Loaders>()?;
    let db = ctx.data::<sea_orm::DatabaseConnection>()?;
    cache
        .queue_counts
        .get_or_try_init(|| awaiting::counts(db, actor, crate::service::audit::now()))
        .await
        .copied()
        .gql()
}

/// The queue's root field.
#[derive(Default)]
pub struct QueueQuery;

#[Object]
impl QueueQuery {
    /// The open cases waiting on you: on your role at your agency (a board
    /// chair: on the board of your partnership), soonest due first, cases
    /// without a due date last, with how many there are and how many are
    /// overdue. A case is here exactly when its `awaiting` lists your
    /// party and role. Empty for a machine client without a role. A page
    /// costs a constant number of statements.
    async fn my_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100.", default = 20)] first: i32,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<QueueConnection> {
        if !(1..=100).contains(&first) {
            return Err(bad_input("first", "between 1 and 100"));
        }
        let after = match after {
            None => None,
            Some(c) => {
                Some(decode(&c).ok_or_else(|| bad_input("after", "not a cursor of this list"))?)
            }
        };
        let actor = super::workflow::actor(ctx)?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        let limit = u64::try_from(first).unwrap_or(20);
        let (entries, has_next_page) = awaiting::queue(db, actor, after, limit).await.gql()?;
        Ok(QueueConnection { entries, has_next_page, has_previous_page: after.is_some() })
    }
}

/// `Case.awaiting`, computed from the case as the reader sees it.
pub(crate) fn awaiting_of(
    catalog: &Arc<crate::domain::catalog::Catalog>,
    c: &crate::service::cases::Case,
    next: Option<(&str, Option<chrono::NaiveDate>)>,
) -> Result<Vec<Awaiting>> {
    let protocol = catalog
        .get(&c.protocol_id, u32::try_from(c.protocol_version).unwrap_or(0))
        .ok_or(crate::service::ServiceError::UnknownProtocol(c.protocol_id.clone()))
        .gql()?;
    // Whom a case waits on is its parties and the board, never a
    // participant.
    let facts = c.facts(&[]);
    let next = next.and_then(|(key, due_on)| {
        protocol
            .stage(&c.route, &c.stage)
            .and_then(|s| s.milestones().iter().find(|m| m.key() == key))
            .map(|milestone| crate::domain::awaiting::Next { milestone, due_on })
    });
    Ok(crate::domain::awaiting::awaiting(protocol, &facts, next, c.due_on)
        .into_iter()
        .map(|a| Awaiting {
            party: a.party,
            agency: a.party.agency(&facts),
            roles: a.roles,
            milestone: a.milestone.map(|m| m.key().to_owned()),
            due_on: a.due_on,
        })
        .collect())
}

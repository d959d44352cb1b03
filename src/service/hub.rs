//! The subscription hub: how this process learns that the event log has
//! grown, and how each live `caseEvents` subscription follows it.
//!
//! The hub knows one number, the newest `seq` it has heard of (a
//! `watch` channel, so a burst of changes wakes a subscriber once). It
//! hears of it
//!
//! - on PostgreSQL, from `LISTEN` on a connection of its own: every append
//!   does `pg_notify` with its `seq` inside the change's transaction, so
//!   the notification is delivered at commit, to every process on the
//!   database, and never for a change that rolled back. When the listening
//!   connection is lost, the hub connects and listens again, then reads
//!   the log's head and publishes it: whatever committed in the gap wakes
//!   the subscribers, who read it from the log.
//! - on SQLite (a file, one process), from the change frame's commits in
//!   this process (`events::commits`), after which it reads the head.
//!
//! It never carries events. Each subscription ([`follow`]) keeps its own
//! cursor and, when the head passes what it has checked, reads the feed
//! (`events::feed`, scoped by the subscriber's actor exactly like the
//! polled `caseEvents`) after that cursor. So a subscription with `after`
//! replays the log and goes live without a gap or a duplicate, by
//! construction: replay and live are the same reads of one cursor; and
//! what a subscriber is shown is only what its token could read.
//!
//! Subscribers who would run the same read share it ([`Reads`]): the feed
//! depends on the caller only through `Actor::case_visibility`, so the
//! page read for one subscriber is the page of every subscriber with the
//! same visibility, filter, cursor and checked head (a thousand people of
//! one agency cost one statement per change, not a thousand). A
//! subscription holds at most one page of events; one whose consumer is
//! slow is simply read from less often (the transport drops a consumer that
//! stops taking messages), so nothing is buffered without bound.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::Stream;
use sea_orm::{DatabaseBackend, DatabaseConnection};
use tokio::sync::{OnceCell, watch};

use super::ServiceError;
use super::events::{self, Cursor, Event, Filter};
use crate::domain::actor::{Actor, CaseVisibility};

/// Events a subscription reads from the log at once.
const PAGE: u64 = 100;

/// Wait before listening again after the listening connection was lost
/// (doubling up to [`MAX_BACKOFF`]).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The newest event this process has heard of, and who follows it.
pub struct Hub {
    head: watch::Sender<i64>,
    reads: Arc<Reads>,
    /// Listening connections (re-)established, for tests and metrics.
    listens: AtomicU64,
    /// Ends the hub's task when the hub is dropped.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("head", &*self.head.borrow()).finish_non_exhaustive()
    }
}

impl Hub {
    /// Reads the log's head and starts hearing of new events (a task that
    /// ends with the hub).
    pub async fn start(db: DatabaseConnection) -> Result<Arc<Hub>, ServiceError> {
        // The hub's own reads (the head, now and then) share the pool but
        // are not counted as requests' statements in `/metrics`.
        let db = match db.get_database_backend() {
            DatabaseBackend::Postgres => sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(
                db.get_postgres_connection_pool().clone(),
            ),
            _ => sea_orm::SqlxSqliteConnector::from_sqlx_sqlite_pool(
                db.get_sqlite_connection_pool().clone(),
            ),
        };
        let head = events::head(&db).await?.map_or(0, |c| c.seq);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let hub = Arc::new(Hub {
            head: watch::Sender::new(head),
            reads: Arc::default(),
            listens: AtomicU64::new(0),
            _stop: stop,
        });
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            let hear = async {
                match db.get_database_backend() {
                    DatabaseBackend::Postgres => listen(&db, &weak).await,
                    _ => follow_commits(&db, &weak).await,
                }
            };
            tokio::select! {
                () = hear => {}
                _ = stopped => {}
            }
        });
        Ok(hub)
    }

    /// The newest `seq` heard of, and a receiver that wakes when it grows.
    pub fn watch(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// How many times the listening connection was established (1 after a
    /// start on PostgreSQL, more after reconnections; 0 on SQLite).
    pub fn listens(&self) -> u64 {
        self.listens.load(Ordering::Relaxed)
    }

    fn publish(&self, seq: i64) {
        self.head.send_if_modified(|head| {
            let grew = seq > *head;
            if grew {
                *head = seq;
            }
            grew
        });
    }

    /// Publishes the log's head, read now.
    async fn catch_up(&self, db: &DatabaseConnection) -> Result<(), ServiceError> {
        if let Some(c) = events::head(db).await? {
            self.publish(c.seq);
        }
        Ok(())
    }
}

/// PostgreSQL: `LISTEN` on a dedicated connection, again after every loss.
///
/// The connection is not the requests' pool's: `PgListener` keeps the
/// connection it takes for good, and one taken from that pool would leave
/// requests one fewer (of four by default). It comes from a pool of its
/// own, of one, with the same connect options.
async fn listen(db: &DatabaseConnection, hub: &std::sync::Weak<Hub>) {
    use sea_orm::sqlx::postgres::{PgListener, PgPoolOptions};
    let own = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with((*db.get_postgres_connection_pool().connect_options()).clone());
    let mut backoff = FIRST_BACKOFF;
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&own).await?;
            listener.listen(events::NOTIFY_CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(l) => l,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for new events; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let Some(h) = hub.upgrade() else { return };
        h.listens.fetch_add(1, Ordering::Relaxed);
        // Listening now: whatever committed before is in the log.
        if let Err(err) = h.catch_up(db).await {
            tracing::warn!(error = %err, "cannot read the head of the event log");
        }
        drop(h);
        backoff = FIRST_BACKOFF;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let Some(h) = hub.upgrade() else { return };
                    match n.payload().parse::<i64>() {
                        Ok(seq) => h.publish(seq),
                        // Not ours: read the head instead.
                        Err(_) => {
                            let _ = h.catch_up(db).await;
                        }
                    }
                }
                Ok(None) => {
                    tracing::warn!(
                        "the connection listening for new events was lost; listening again"
                    );
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "listening for new events failed; listening again");
                    break;
                }
            }
        }
    }
}

/// SQLite: after every commit of this process, read the head.
async fn follow_commits(db: &DatabaseConnection, hub: &std::sync::Weak<Hub>) {
    let mut commits = events::commits();
    // Anything committed before the subscription to commits is in the log.
    commits.mark_changed();
    while commits.changed().await.is_ok() {
        let Some(h) = hub.upgrade() else { return };
        if let Err(err) = h.catch_up(db).await {
            tracing::warn!(error = %err, "cannot read the head of the event log");
        }
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// After this event: the log's events after it first, then live.
    After(Cursor),
    /// With the events appended from now on.
    Now,
}

/// The events `actor` may see, `start`ing where asked, for as long as the
/// stream is polled: a page of the feed is read whenever the hub's head
/// passes what this subscription has checked. Ends after an error.
pub async fn follow(
    db: DatabaseConnection,
    hub: &Hub,
    actor: Actor,
    filter: Filter,
    start: Start,
) -> Result<impl Stream<Item = Result<Event, ServiceError>> + Send + use<>, ServiceError> {
    let head = hub.watch();
    let (cursor, checked) = match start {
        // Everything after the cursor is unchecked: read at once.
        Start::After(c) => (Some(c), i64::MIN),
        Start::Now => {
            let now = events::head(&db).await?;
            (now, now.map_or(0, |c| c.seq))
        }
    };
    let state = Following {
        reads: hub.reads.clone(),
        db,
        actor,
        filter,
        cursor,
        checked,
        head,
        page: VecDeque::new(),
        more: false,
        failed: false,
    };
    Ok(futures_util::stream::unfold(state, Following::next))
}

/// What identifies a read of the feed: who may see what (the only part
/// of the caller the feed depends on), the filter, the cursor, and the
/// head the reader had checked before reading.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReadKey {
    visibility: CaseVisibility,
    types: Vec<crate::domain::event::EventType>,
    case: Option<crate::domain::ids::CaseId>,
    after: Option<i64>,
    head: i64,
}

type Page = (Arc<[Event]>, bool);

type Pages = HashMap<ReadKey, Arc<OnceCell<Page>>>;

/// Reads of the feed in progress or just done, shared by the subscribers
/// who would run the same one (single flight). Only reads at the newest
/// head are kept: a reader at an older head reads for itself.
#[derive(Default)]
struct Reads {
    /// The newest head read at, and the reads at it.
    pages: std::sync::Mutex<(i64, Pages)>,
}

impl Reads {
    /// The page of `key`, read once by whoever asks first (a failed read
    /// is not shared: the next asker tries again).
    async fn page(
        &self,
        key: ReadKey,
        read: impl Future<Output = Result<Page, ServiceError>>,
    ) -> Result<Page, ServiceError> {
        let cell = {
            let mut pages = self.pages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (newest, map) = &mut *pages;
            if key.head > *newest {
                *newest = key.head;
                map.clear();
            }
            if key.head < *newest { None } else { Some(map.entry(key).or_default().clone()) }
        };
        match cell {
            Some(cell) => cell.get_or_try_init(|| read).await.cloned(),
            None => read.await,
        }
    }
}

struct Following {
    reads: Arc<Reads>,
    db: DatabaseConnection,
    actor: Actor,
    filter: Filter,
    /// The last event given (or the start).
    cursor: Option<Cursor>,
    /// The head up to which the log has been read.
    checked: i64,
    head: watch::Receiver<i64>,
    page: VecDeque<Event>,
    /// The last read filled its page: read again before waiting.
    more: bool,
    failed: bool,
}

impl Following {
    async fn next(mut self) -> Option<(Result<Event, ServiceError>, Self)> {
        loop {
            if let Some(e) = self.page.pop_front() {
                return Some((Ok(e), self));
            }
            if self.failed {
                return None;
            }
            if !self.more {
                let head = *self.head.borrow_and_update();
                if head <= self.checked {
                    // The hub is gone only when the server stops.
                    self.head.changed().await.ok()?;
                    continue;
                }
                // Every event up to `head` has committed (the head is
                // heard of after commit), and `seq` is commit order: one
                // read after the cursor sees all of them.
                self.checked = head;
            }
            let key = ReadKey {
                visibility: self.actor.case_visibility(),
                types: self.filter.types.clone(),
                case: self.filter.case,
                after: self.cursor.map(|c| c.seq),
                head: self.checked,
            };
            let read = async {
                let (events, more) =
                    events::feed(&self.db, &self.actor, self.cursor, PAGE, &self.filter).await?;
                Ok((Arc::from(events), more))
            };
            match self.reads.page(key, read).await {
                Ok((events, more)) => {
                    if let Some(last) = events.last() {
                        self.cursor = Some(last.cursor);
                    }
                    self.more = more;
                    self.page.extend(events.iter().cloned());
                }
                Err(err) => {
                    self.failed = true;
                    return Some((Err(err), self));
                }
            }
        }
    }
}

//! DataLoaders: batch the nested lookups of one request into one query each.
//! A fresh set is attached to every request, so nothing is cached across
//! callers.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::DatabaseConnection;

use crate::domain::actor::{Actor, Viewer};
use crate::domain::ids::{AgencyId, CaseId, PartnershipId};
use crate::service::records::FreeText;
use crate::service::{ServiceError, cases, directory, events, participants, records};

/// Loads agencies by id.
pub struct AgencyLoader(DatabaseConnection);
/// Loads partnerships by id.
pub struct PartnershipLoader(DatabaseConnection);
/// Loads the agencies of partnerships.
pub struct AgenciesOfPartnershipLoader(DatabaseConnection);

/// Error type of the loaders: cloned to every waiting field.
pub type LoadError = Arc<ServiceError>;

impl Loader<AgencyId> for AgencyLoader {
    type Value = directory::Agency;
    type Error = LoadError;

    async fn load(&self, keys: &[AgencyId]) -> Result<HashMap<AgencyId, Self::Value>, Self::Error> {
        directory::agencies_by_id(&self.0, keys).await.map_err(Arc::new)
    }
}

impl Loader<PartnershipId> for PartnershipLoader {
    type Value = directory::Partnership;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PartnershipId],
    ) -> Result<HashMap<PartnershipId, Self::Value>, Self::Error> {
        directory::partnerships_by_id(&self.0, keys).await.map_err(Arc::new)
    }
}

impl Loader<PartnershipId> for AgenciesOfPartnershipLoader {
    type Value = Vec<directory::Agency>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PartnershipId],
    ) -> Result<HashMap<PartnershipId, Self::Value>, Self::Error> {
        directory::agencies_of(&self.0, keys).await.map_err(Arc::new)
    }
}

/// What the case loaders share: the pool and the one caller they read for.
/// Every case loader repeats the caller's scope in its statement and returns
/// nothing for an anonymous caller (who sees no case).
pub struct Reader {
    db: DatabaseConnection,
    actor: Option<Actor>,
    request_id: Option<String>,
}

/// The first page of records of cases: one statement per batch and page
/// arguments (`first`, `after`), whatever the number of cases.
pub struct RecordPageLoader(Arc<Reader>);
/// How many records cases have.
pub struct RecordCountLoader(Arc<Reader>);
/// The latest record of cases (only that one row per case is read).
pub struct LastRecordLoader(Arc<Reader>);
/// The agencies' views of cases.
pub struct ViewsLoader(Arc<Reader>);
/// The agreed actions of cases.
pub struct ActionsLoader(Arc<Reader>);
/// The records cases left a stage without.
pub struct MissingRecordsLoader(Arc<Reader>);

/// Each case's records as its milestones see them (kind, author agency,
/// time; no free text): one statement per page.
pub struct WrittenRecordsLoader(Arc<Reader>);
/// The first page of events of cases (their timelines): one statement per
/// batch and page arguments.
pub struct EventPageLoader(Arc<Reader>);
/// Cases by id, as the caller may see them (a case another links to).
pub struct CaseLoader(Arc<Reader>);
/// Who takes part in cases beyond their parties (every spell).
pub struct ParticipantsLoader(Arc<Reader>);
/// Writes the access log: loading `(case, free text)` writes its row, all
/// of a batch in one INSERT; the request cache keeps it to one row per case
/// and free text per request, however often the field is asked for.
pub struct ReadLogLoader(Arc<Reader>);

/// A page of one case's list (its records, its events): the case, the page
/// size, and the cursor `A` the page starts after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageKey<A> {
    /// The case.
    pub case: CaseId,
    /// Page size.
    pub limit: u64,
    /// Where the page starts: after this.
    pub after: Option<A>,
}

/// A page of a case's records.
pub type RecordPageKey = PageKey<records::RecordsAfter>;
/// A page of a case's events.
pub type EventPageKey = PageKey<events::Cursor>;

/// The cases of `keys` grouped by page size and cursor: each group is read
/// in one statement, and a document can ask for only so many groups,
/// whatever the number of cases.
fn page_groups<A: Copy + Eq + std::hash::Hash>(
    keys: &[PageKey<A>],
) -> HashMap<(u64, Option<A>), Vec<CaseId>> {
    let mut groups: HashMap<(u64, Option<A>), Vec<CaseId>> = HashMap::new();
    for k in keys {
        groups.entry((k.limit, k.after)).or_default().push(k.case);
    }
    groups
}

/// Files the pages read for one group under their keys (a case with none
/// gets an empty page).
fn file_pages<A: Copy + Eq + std::hash::Hash, T>(
    out: &mut HashMap<PageKey<A>, (Vec<T>, bool)>,
    (limit, after): (u64, Option<A>),
    cases: Vec<CaseId>,
    mut pages: HashMap<CaseId, (Vec<T>, bool)>,
) {
    for case in cases {
        let page = pages.remove(&case).unwrap_or_else(|| (Vec::new(), false));
        out.insert(PageKey { case, limit, after }, page);
    }
}

impl Loader<RecordPageKey> for RecordPageLoader {
    type Value = (Vec<records::Record>, bool);
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[RecordPageKey],
    ) -> Result<HashMap<RecordPageKey, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        let mut out = HashMap::new();
        for ((limit, after), cases) in page_groups(keys) {
            let pages = records::record_pages(&self.0.db, actor, &cases, after, limit)
                .await
                .map_err(Arc::new)?;
            file_pages(&mut out, (limit, after), cases, pages);
        }
        Ok(out)
    }
}

impl Loader<EventPageKey> for EventPageLoader {
    type Value = (Vec<events::Event>, bool);
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[EventPageKey],
    ) -> Result<HashMap<EventPageKey, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        let mut out = HashMap::new();
        for ((limit, after), cases) in page_groups(keys) {
            let pages = events::case_pages(&self.0.db, actor, &cases, after, limit)
                .await
                .map_err(Arc::new)?;
            file_pages(&mut out, (limit, after), cases, pages);
        }
        Ok(out)
    }
}

impl Loader<CaseId> for RecordCountLoader {
    type Value = u64;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        let counts = records::record_counts(&self.0.db, actor, keys).await.map_err(Arc::new)?;
        Ok(keys.iter().map(|k| (*k, counts.get(k).copied().unwrap_or(0))).collect())
    }
}

impl Loader<CaseId> for LastRecordLoader {
    type Value = records::Record;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        records::latest_records(&self.0.db, actor, keys).await.map_err(Arc::new)
    }
}

impl Loader<CaseId> for ViewsLoader {
    type Value = Vec<records::View>;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        records::views_of(&self.0.db, actor, keys).await.map_err(Arc::new)
    }
}

impl Loader<CaseId> for ActionsLoader {
    type Value = Vec<records::AgreedAction>;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        records::actions_of(&self.0.db, actor, keys).await.map_err(Arc::new)
    }
}

impl Loader<CaseId> for MissingRecordsLoader {
    type Value = Vec<records::MissingRecord>;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        records::missing_records_of(&self.0.db, actor, keys).await.map_err(Arc::new)
    }
}

impl Loader<CaseId> for WrittenRecordsLoader {
    type Value = Vec<records::WrittenRecord>;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        records::written_records_of(&self.0.db, actor, keys).await.map_err(Arc::new)
    }
}

impl Loader<CaseId> for CaseLoader {
    type Value = cases::Case;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        let found =
            cases::get_many(&self.0.db, actor.case_visibility(), keys).await.map_err(Arc::new)?;
        Ok(found.into_iter().map(|c| (c.id, c)).collect())
    }
}

impl Loader<CaseId> for ParticipantsLoader {
    type Value = Vec<participants::Participant>;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        participants::of_cases(&self.0.db, actor, keys).await.map_err(Arc::new)
    }
}

impl Loader<(CaseId, FreeText)> for ReadLogLoader {
    type Value = ();
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(CaseId, FreeText)],
    ) -> Result<HashMap<(CaseId, FreeText), Self::Value>, Self::Error> {
        let Some(actor) = &self.0.actor else { return Ok(HashMap::new()) };
        records::log_reads(&self.0.db, actor, keys, self.0.request_id.as_deref())
            .await
            .map_err(Arc::new)?;
        Ok(keys.iter().map(|k| (*k, ())).collect())
    }
}

/// The loaders of one request (each caches what it loaded for the request).
pub struct Loaders {
    /// Agencies by id.
    pub agency: DataLoader<AgencyLoader, HashMapCache>,
    /// Partnerships by id.
    pub partnership: DataLoader<PartnershipLoader, HashMapCache>,
    /// Agencies of a partnership.
    pub agencies_of: DataLoader<AgenciesOfPartnershipLoader, HashMapCache>,
    /// A page of a case's records.
    pub record_page: DataLoader<RecordPageLoader, HashMapCache>,
    /// How many records a case has.
    pub record_count: DataLoader<RecordCountLoader, HashMapCache>,
    /// The latest record of a case.
    pub last_record: DataLoader<LastRecordLoader, HashMapCache>,
    /// The views of a case.
    pub views: DataLoader<ViewsLoader, HashMapCache>,
    /// The agreed actions of a case.
    pub actions: DataLoader<ActionsLoader, HashMapCache>,
    /// The records a case left a stage without.
    pub missing_records: DataLoader<MissingRecordsLoader, HashMapCache>,
    /// Records as milestones see them, by case.
    pub written_records: DataLoader<WrittenRecordsLoader, HashMapCache>,
    /// A page of a case's events.
    pub event_page: DataLoader<EventPageLoader, HashMapCache>,
    /// Cases by id (the cases others link to).
    pub case: DataLoader<CaseLoader, HashMapCache>,
    /// Who takes part in a case beyond its parties.
    pub participants: DataLoader<ParticipantsLoader, HashMapCache>,
    /// The access log of the request's reads of free text.
    pub read_log: DataLoader<ReadLogLoader, HashMapCache>,
    /// The caller's queue's counts (`myQueue`'s `totalCount` and
    /// `overdueCount`), read once.
    pub queue_counts: tokio::sync::OnceCell<(u64, u64)>,
    /// The loads under way, stopped with the request.
    _tasks: Tasks,
}

/// The batch loads a request has started. DataLoader runs each in a task
/// of its own; when the request ends early (its caller went away, or it
/// timed out) they are aborted with it, so that a client cannot leave work
/// running in the pool beyond its requests in flight.
/// Each loader's spawner holds a clone; the last one to go (with the
/// `Loaders` of the request) aborts what is still running.
/// Each runs in the span of the request that made the loaders, so that
/// its statements are the request's (in its trace, when exported).
#[derive(Clone)]
struct Tasks(Arc<TaskList>);

struct TaskList(std::sync::Mutex<Vec<tokio::task::AbortHandle>>, tracing::Span);

impl Tasks {
    fn in_current_span() -> Self {
        Self(Arc::new(TaskList(std::sync::Mutex::default(), tracing::Span::current())))
    }

    fn spawn(&self, load: futures_util::future::BoxFuture<'static, ()>) {
        let load = tracing::Instrument::instrument(load, self.0.1.clone());
        let handle = tokio::spawn(load).abort_handle();
        let mut tasks = self.0.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }
}

impl Drop for TaskList {
    fn drop(&mut self) {
        let tasks = self.0.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        for task in tasks.iter() {
            task.abort();
        }
    }
}

fn loader<T: Loader<K>, K>(inner: T, tasks: &Tasks) -> DataLoader<T, HashMapCache>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
{
    let tasks = tasks.clone();
    DataLoader::with_cache(inner, move |load| tasks.spawn(load), HashMapCache::default())
}

impl Loaders {
    /// A fresh set over the pool, for one caller.
    pub fn new(db: &DatabaseConnection, viewer: &Viewer, request_id: Option<&str>) -> Self {
        let actor = match viewer {
            Viewer::Actor(a) => Some(a.clone()),
            Viewer::Anonymous => None,
        };
        let reader =
            Arc::new(Reader { db: db.clone(), actor, request_id: request_id.map(str::to_owned) });
        let tasks = Tasks::in_current_span();
        Self {
            agency: loader(AgencyLoader(db.clone()), &tasks),
            partnership: loader(PartnershipLoader(db.clone()), &tasks),
            agencies_of: loader(AgenciesOfPartnershipLoader(db.clone()), &tasks),
            record_page: loader(RecordPageLoader(reader.clone()), &tasks),
            record_count: loader(RecordCountLoader(reader.clone()), &tasks),
            last_record: loader(LastRecordLoader(reader.clone()), &tasks),
            views: loader(ViewsLoader(reader.clone()), &tasks),
            actions: loader(ActionsLoader(reader.clone()), &tasks),
            missing_records: loader(MissingRecordsLoader(reader.clone()), &tasks),
            written_records: loader(WrittenRecordsLoader(reader.clone()), &tasks),
            event_page: loader(EventPageLoader(reader.clone()), &tasks),
            case: loader(CaseLoader(reader.clone()), &tasks),
            participants: loader(ParticipantsLoader(reader.clone()), &tasks),
            read_log: loader(ReadLogLoader(reader), &tasks),
            queue_counts: tokio::sync::OnceCell::new(),
            _tasks: tasks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Tasks;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set when dropped: a task's future is dropped when it is aborted.
    struct Dropped(Arc<AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn loads_still_running_are_aborted_with_the_request() {
        let tasks = Tasks::in_current_span();
        let spawner = tasks.clone();
        let (stopped, done) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let guard = Dropped(stopped.clone());
        spawner.spawn(Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        }));
        let finished = done.clone();
        spawner.spawn(Box::pin(async move { finished.store(true, Ordering::SeqCst) }));
        tokio::task::yield_now().await;
        assert!(done.load(Ordering::SeqCst), "a load runs");
        drop(spawner);
        assert!(!stopped.load(Ordering::SeqCst), "a clone is still held");
        drop(tasks);
        for _ in 0..100 {
            if stopped.load(Ordering::SeqCst) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the pending load was not aborted");
    }
}

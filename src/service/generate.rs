//! Data for size: `seed-demo --cases N` generates N cases over the five demo
//! partnerships, each with its audit trail, for the board statistics, the
//! paginated lists and the benchmark.
//!
//! Every case is planned by the domain itself (`plan_raise`,
//! `plan_escalation`, `access::check`), on the day each step happened, by
//! an actor whose role the stage allows: routes, stages, categories, due
//! dates (working days of the protocol's calendar) and the audit events are
//! what the service would have written had people done it by hand. Only the
//! storage differs: rows go in with multi-row INSERTs, `batch_size` cases
//! per transaction, while a blocking thread generates the next batch.
//!
//! The spread (the constants below):
//! - partnerships by [`PARTNERSHIP_SHARES`]; the raising agency by its kind
//!   ([`raise_weight`]: health, schools and police raise most), the
//!   receiving one too ([`receive_weight`]: mostly children's social care),
//!   never the same agency;
//! - a route's first route in 60% of cases, the others share the rest; the
//!   route's first entry stage in 85% (the others share the rest);
//!   categories in the protocol's order with a decreasing weight, `other`
//!   rarely;
//! - each stage climbed with probability [`CLIMB`] (so about 70% stay at
//!   the stage they were raised at and 1 in 40 or so climbs three stages);
//! - 70% resolved, 10% withdrawn, 20% open;
//! - raised over the last `years` years, the newest days twice as likely
//!   as the oldest; closed cases end before today; open cases are at their
//!   stage since 1 to 30 working days (up to twice its time limit where it
//!   has one, so about half of those are overdue), and 10% since 40 to 200
//!   working days;
//! - a stage lasts 2 to 10 working days (more higher up), or up to a third
//!   over its limit where it has one (the escalation is then `overdue`);
//!   Pan-Sussex escalators state a timeframe of 5 to 15 working days;
//! - child references `GEN-000001` on from the generated cases already
//!   stored, and a short neutral summary from the category: never a name.
//!
//! Reproducible: the same seed, stored data and day give the same rows
//! (ids included: UUID v7 of the event's time with the generator's bits).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use entity::{agency, case, case_event, change_event, partnership};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use serde_json::json;

use super::audit::{self, AuditAction};
use super::cases::CaseStatus;
use crate::domain::access::{CaseFacts, check};
use crate::domain::actor::Actor;
use crate::domain::agency::AgencyKind;
use crate::domain::calendar::Calendar;
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AgencyId, PartnershipId};
use crate::domain::policy::Action;
use crate::domain::protocol::{Protocol, Stage};
use crate::domain::role::Role;
use crate::domain::workflow::{Escalate, EscalationReason, RaiseCase, plan_escalation, plan_raise};

/// The issuer of the generated actors (they hold no token).
const GENERATOR_ISSUER: &str = "escalations-generate";
/// The prefix of generated child references.
pub const REFERENCE_PREFIX: &str = "GEN-";

/// Progress is reported every this many cases.
pub const PROGRESS_EVERY: u64 = 100_000;

/// The demo partnerships (by code) and their share of the cases.
pub const PARTNERSHIP_SHARES: [(&str, f64); 5] = [
    ("western-bay", 0.20),
    ("pan-sussex", 0.32),
    ("leeds", 0.24),
    ("rotherham", 0.14),
    ("six-stage", 0.10),
];

/// Share of resolved cases.
pub const RESOLVED: f64 = 0.70;
/// Share of withdrawn cases.
pub const WITHDRAWN: f64 = 0.10;
/// Chance of climbing each further stage.
pub const CLIMB: f64 = 0.30;
/// Chance that a route's first route is taken.
const FIRST_ROUTE: f64 = 0.60;
/// Chance that a route's first entry stage is taken when it has several.
const FIRST_ENTRY: f64 = 0.85;
/// Chance that an open case has been stuck for a long time.
const STUCK: f64 = 0.10;
/// Chance that an escalation is made from the raising side (else the
/// receiving side).
const RAISING_SIDE_ESCALATES: f64 = 0.75;
/// Chance that a resolution records learning.
const LEARNING: f64 = 0.5;

/// Rows per INSERT statement: 18 columns × 1,000, 12 × 2,000 and 12 × 2,000
/// stay under SQLite's 32,766 bound parameters (PostgreSQL allows 65,535).
const CASE_ROWS: usize = 1_000;
const EVENT_ROWS: usize = 2_000;
const CHANGE_ROWS: usize = 2_000;

const OUTCOMES: [&str; 6] = [
    "The receiving agency reviewed its decision after discussion between the leads.",
    "The original decision was upheld and its reasons explained and accepted.",
    "A strategy discussion was convened and a joint plan agreed.",
    "Further assessment agreed, led by the receiving agency.",
    "Information shared between the agencies resolved the difference.",
    "A multi-agency meeting agreed the next steps.",
];

const LEARNING_NOTES: [&str; 4] = [
    "Share the reasons for threshold decisions in writing at the time.",
    "Escalate earlier when a response is not received.",
    "Invite every agency involved to the strategy discussion.",
    "Record the agreed plan where both agencies can see it.",
];

const WITHDRAW_REASONS: [&str; 4] = [
    "Resolved informally between the practitioners.",
    "Raised in error.",
    "Circumstances changed; the difference no longer applies.",
    "Taken forward through another procedure.",
];

/// How much a kind of agency raises differences.
pub fn raise_weight(kind: &str) -> f64 {
    match AgencyKind::parse(kind) {
        Some(AgencyKind::Health | AgencyKind::Education) => 3.0,
        Some(AgencyKind::Police) => 2.5,
        Some(AgencyKind::ChildrensSocialCare) => 1.5,
        _ => 1.0,
    }
}

/// How much a kind of agency receives them.
pub fn receive_weight(kind: &str) -> f64 {
    match AgencyKind::parse(kind) {
        Some(AgencyKind::ChildrensSocialCare) => 5.0,
        Some(AgencyKind::Police | AgencyKind::Health) => 2.0,
        Some(AgencyKind::Education) => 1.0,
        _ => 0.7,
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How many cases.
    pub cases: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// Cases per transaction.
    pub batch_size: usize,
    /// Raising dates spread over the last this many years.
    pub years: u32,
    /// At most this many transactions at once (the pool's size).
    pub max_writers: usize,
}

/// How far a generation has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Cases stored.
    pub cases: u64,
    /// Audit events stored.
    pub events: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

impl Progress {
    /// Cases per second so far.
    pub fn rate(&self) -> f64 {
        self.cases as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Generates `options.cases` cases into a database holding the demo
/// directory, calling `on_progress` every [`PROGRESS_EVERY`] cases. Each
/// call adds cases; nothing stored is changed.
pub async fn generate(
    db: &DatabaseConnection,
    catalog: &Catalog,
    options: &Options,
    mut on_progress: impl FnMut(&Progress),
) -> anyhow::Result<Progress> {
    let started = Instant::now();
    let mut done = Progress::default();
    if options.cases == 0 {
        return Ok(done);
    }
    ensure!(options.batch_size > 0, "the batch size must be at least 1");
    let world = World::load(db, catalog).await?;
    let already = case::Entity::find()
        .filter(case::Column::ChildReference.starts_with(REFERENCE_PREFIX))
        .count(db)
        .await
        .context("counting the generated cases already stored")?;
    let mut generator = Generator::new(world, options.seed, options.years, already, audit::now())?;

    // Generation (hashing, calendars) on a blocking thread overlaps the
    // database's work on the batches before. PostgreSQL takes the batches
    // on several connections at once (its per-row work, foreign keys and
    // indexes, is what bounds the rate); SQLite has one writer anyway.
    let writers = match db.get_database_backend() {
        DbBackend::Postgres => {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get).clamp(2, 4)
        }
        _ => 1,
    }
    .min(options.max_writers.max(1));
    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(writers + 1);
    let (total, batch_size) = (options.cases, options.batch_size as u64);
    let producer = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut left = total;
        while left > 0 {
            let n = left.min(batch_size);
            let batch = generator.batch(n)?;
            if tx.blocking_send(batch).is_err() {
                // The writers stopped, and say why.
                return Ok(());
            }
            left -= n;
        }
        Ok(())
    });
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let (done_tx, mut done_rx) =
        tokio::sync::mpsc::unbounded_channel::<anyhow::Result<(u64, u64)>>();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (db, rx, done_tx) = (db.clone(), Arc::clone(&rx), done_tx.clone());
        set.spawn(async move {
            loop {
                let next = rx.lock().await.recv().await;
                let Some(batch) = next else { return };
                let counts = (batch.cases.len() as u64, batch.events.len() as u64);
                let written = write(&db, batch).await.context("inserting generated cases");
                let failed = written.is_err();
                let _ = done_tx.send(written.map(|()| counts));
                if failed {
                    return;
                }
            }
        });
    }
    drop((rx, done_tx));
    let mut next_report = PROGRESS_EVERY;
    while let Some(written) = done_rx.recv().await {
        let (cases, events) = match written {
            Ok(counts) => counts,
            Err(err) => {
                set.abort_all();
                return Err(err);
            }
        };
        done.cases += cases;
        done.events += events;
        done.elapsed = started.elapsed();
        while done.cases >= next_report {
            on_progress(&done);
            next_report += PROGRESS_EVERY;
        }
    }
    while let Some(joined) = set.join_next().await {
        joined.context("a writer task failed")?;
    }
    producer.await.context("the generator thread failed")??;
    ensure!(done.cases == total, "generated {} cases of {total}", done.cases);
    done.elapsed = started.elapsed();
    Ok(done)
}

/// One transaction's rows.
#[derive(Debug, Default)]
struct Batch {
    cases: Vec<case::Model>,
    events: Vec<case_event::Model>,
    changes: Vec<change_event::ActiveModel>,
}

async fn write(db: &DatabaseConnection, batch: Batch) -> Result<(), sea_orm::DbErr> {
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    let mut cases = batch.cases.into_iter().peekable();
    while cases.peek().is_some() {
        let rows: Vec<case::ActiveModel> =
            cases.by_ref().take(CASE_ROWS).map(IntoActiveModel::into_active_model).collect();
        case::Entity::insert_many(rows).exec_without_returning(&txn).await?;
    }
    let mut events = batch.events.into_iter().peekable();
    while events.peek().is_some() {
        let rows: Vec<case_event::ActiveModel> =
            events.by_ref().take(EVENT_ROWS).map(IntoActiveModel::into_active_model).collect();
        case_event::Entity::insert_many(rows).exec_without_returning(&txn).await?;
    }
    // The change feed's order is commit order: the same lock as the
    // frame's appends (see `events`), taken for the batch's last writes.
    super::events::take_append_lock(&txn).await?;
    let mut changes = batch.changes.into_iter().peekable();
    while changes.peek().is_some() {
        let rows: Vec<change_event::ActiveModel> = changes.by_ref().take(CHANGE_ROWS).collect();
        change_event::Entity::insert_many(rows).exec_without_returning(&txn).await?;
    }
    txn.commit().await
}

/// SplitMix64 (Steele, Lea and Flood, 2014). Written here rather than taken
/// from `rand`: the data must be the same for a given seed on every build
/// (a crate may change its generators between versions), and a few lines
/// need no extra dependency. Not for anything secret.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n); n > 0 (the bias of the multiply-shift is below
    /// 2^-40 for the small n used here).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in [lo, hi].
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below((hi.max(lo) - lo) as usize + 1) as u32
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index drawn in proportion to `weights` (not empty, positive sum).
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }

    fn bytes10(&mut self) -> [u8; 10] {
        let a = self.next_u64().to_le_bytes();
        let b = self.next_u64().to_le_bytes();
        [a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], b[0], b[1]]
    }

    /// A UUID v7 for `at` with the generator's random bits.
    fn uuid_v7(&mut self, at: DateTime<Utc>) -> uuid::Uuid {
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &self.bytes10()).into_uuid()
    }
}

/// The stored directory the cases are spread over.
#[derive(Debug, Clone)]
struct World {
    areas: Vec<Arc<Area>>,
    weights: Vec<f64>,
}

/// One partnership with what the generator draws from.
#[derive(Debug, Clone)]
struct Area {
    id: PartnershipId,
    code: String,
    protocol: Protocol,
    calendar: &'static Calendar,
    agencies: Vec<(AgencyId, String)>,
    kinds: Vec<AgencyKind>,
    raise_weights: Vec<f64>,
    receive_weights: Vec<f64>,
    route_weights: Vec<f64>,
    category_weights: Vec<f64>,
}

impl World {
    async fn load(db: &DatabaseConnection, catalog: &Catalog) -> anyhow::Result<World> {
        let codes = PARTNERSHIP_SHARES.map(|(code, _)| code);
        let partnerships = partnership::Entity::find()
            .filter(partnership::Column::Code.is_in(codes))
            .order_by_asc(partnership::Column::Code)
            .all(db)
            .await?;
        let agencies = agency::Entity::find()
            .filter(agency::Column::PartnershipId.is_in(partnerships.iter().map(|p| p.id)))
            .filter(agency::Column::Active.eq(true))
            .order_by_asc(agency::Column::Code)
            .all(db)
            .await?;
        World::new(catalog, &partnerships, &agencies)
    }

    /// The demo partnerships among `partnerships` that have at least two
    /// agencies, with their newest protocols.
    fn new(
        catalog: &Catalog,
        partnerships: &[partnership::Model],
        agencies: &[agency::Model],
    ) -> anyhow::Result<World> {
        let mut world = World { areas: Vec::new(), weights: Vec::new() };
        for (code, share) in PARTNERSHIP_SHARES {
            let Some(p) = partnerships.iter().find(|p| p.code == code) else { continue };
            let protocol = catalog
                .latest(&p.protocol_id)
                .with_context(|| format!("partnership {code}: unknown protocol {}", p.protocol_id))?
                .clone();
            let calendar = Calendar::for_id(protocol.calendar())?;
            let own: Vec<&agency::Model> =
                agencies.iter().filter(|a| a.partnership_id == p.id).collect();
            if own.len() < 2 {
                continue;
            }
            let routes = protocol.routes().len();
            let route_weights = (0..routes)
                .map(|i| match i {
                    _ if routes == 1 => 1.0,
                    0 => FIRST_ROUTE,
                    _ => (1.0 - FIRST_ROUTE) / (routes - 1) as f64,
                })
                .collect();
            let category_weights = protocol
                .categories()
                .iter()
                .enumerate()
                .map(|(i, c)| if c.key() == "other" { 0.4 } else { 1.0 / (1.0 + 0.25 * i as f64) })
                .collect();
            world.areas.push(Arc::new(Area {
                id: PartnershipId::from_uuid(p.id),
                code: p.code.clone(),
                calendar,
                agencies: own.iter().map(|a| (AgencyId::from_uuid(a.id), a.code.clone())).collect(),
                kinds: own
                    .iter()
                    .map(|a| AgencyKind::parse(&a.kind).unwrap_or(AgencyKind::Other))
                    .collect(),
                raise_weights: own.iter().map(|a| raise_weight(&a.kind)).collect(),
                receive_weights: own.iter().map(|a| receive_weight(&a.kind)).collect(),
                route_weights,
                category_weights,
                protocol,
            }));
            world.weights.push(share);
        }
        if world.areas.is_empty() {
            bail!("no demo partnership with two agencies is stored: load the demo directory first");
        }
        Ok(world)
    }
}

/// Produces cases, one after the other, from a seed.
struct Generator {
    world: World,
    rng: Rng,
    now: DateTime<Utc>,
    today: NaiveDate,
    window_days: i64,
    next_number: u64,
}

impl Generator {
    /// `already` generated cases are stored; numbering goes on from them
    /// and the seed is mixed with it so a second run adds different cases.
    fn new(
        world: World,
        seed: u64,
        years: u32,
        already: u64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Generator> {
        ensure!(years >= 1, "--years must be at least 1");
        let today = now.date_naive();
        let window_days = i64::from(years) * 365;
        let first = today - TimeDelta::days(window_days);
        for area in &world.areas {
            let calendar = area.calendar;
            ensure!(
                calendar.covers(first) && calendar.covers(today),
                "the calendar {} covers the years {}..={}, not {first}..{today}: ask for fewer --years",
                calendar.id(),
                calendar.covered_years().start(),
                calendar.covered_years().end(),
            );
        }
        let mut mix = Rng::new(seed ^ already.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Ok(Generator {
            world,
            rng: Rng::new(mix.next_u64()),
            now,
            today,
            window_days,
            next_number: already + 1,
        })
    }

    fn batch(&mut self, n: u64) -> anyhow::Result<Batch> {
        let mut batch = Batch::default();
        for _ in 0..n {
            let case = self.case(&mut batch.events, &mut batch.changes)?;
            batch.cases.push(case);
        }
        Ok(batch)
    }

    /// A day's time between 08:00 and 17:30.
    fn time_on(&mut self, day: NaiveDate) -> DateTime<Utc> {
        let secs = 8 * 3600 + self.rng.below(9 * 3600 + 1800) as u32;
        day.and_time(NaiveTime::from_num_seconds_from_midnight_opt(secs, 0).unwrap_or_default())
            .and_utc()
    }

    /// Days before today of a raising date: density rising linearly from
    /// the start of the window to today, where it is twice as high.
    fn age_days(&mut self) -> i64 {
        // Inverse of F(t) = (t + t²/2) / 1.5 on [0, 1], t = 1 being today.
        let t = (1.0 + 3.0 * self.rng.unit()).sqrt() - 1.0;
        ((1.0 - t) * self.window_days as f64) as i64
    }

    /// One case; its events are appended to `events`.
    fn case(
        &mut self,
        events: &mut Vec<case_event::Model>,
        changes: &mut Vec<change_event::ActiveModel>,
    ) -> anyhow::Result<case::Model> {
        let area_index = self.rng.weighted(&self.world.weights);
        // Shared out of `self.world` so the helpers below may borrow `self`.
        let area = Arc::clone(&self.world.areas[area_index]);
        let rng = &mut self.rng;
        let protocol = &area.protocol;
        let raising = rng.weighted(&area.raise_weights);
        let mut receiving = loop {
            let r = rng.weighted(&area.receive_weights);
            if r != raising {
                break r;
            }
        };
        let mut route = &protocol.routes()[rng.weighted(&area.route_weights)];
        // A route that names the kinds of agency it is raised with (Leeds's
        // conference requests go to children's social care) takes one of
        // those; when the raising agency is the only one, another route.
        if !route.admits_receiving(area.kinds[receiving]) {
            let fits: Vec<usize> = (0..area.agencies.len())
                .filter(|&i| i != raising && route.admits_receiving(area.kinds[i]))
                .collect();
            if fits.is_empty() {
                let kind = area.kinds[receiving];
                route = protocol
                    .routes()
                    .iter()
                    .find(|r| r.admits_receiving(kind))
                    .with_context(|| format!("no route of {} takes {kind}", protocol.id()))?;
            } else {
                receiving = *rng.pick(&fits);
            }
        }
        let stages = route.stages();
        let entries: Vec<usize> = (0..stages.len()).filter(|&i| stages[i].is_entry()).collect();
        let start = match entries.as_slice() {
            [] => bail!("route {} of {} has no entry stage", route.id(), protocol.id()),
            [only] => *only,
            [first, rest @ ..] => {
                if rng.chance(FIRST_ENTRY) {
                    *first
                } else {
                    *rng.pick(rest)
                }
            }
        };
        let category = &protocol.categories()[rng.weighted(&area.category_weights)];
        let status = match rng.unit() {
            u if u < RESOLVED => CaseStatus::Resolved,
            u if u < RESOLVED + WITHDRAWN => CaseStatus::Withdrawn,
            _ => CaseStatus::Open,
        };
        let mut top = start;
        while top + 1 < stages.len() && rng.chance(CLIMB) {
            top += 1;
        }

        // Per stage reached: the timeframe its escalator states (where the
        // protocol asks for one), its limit, and the working days spent.
        let reached = &stages[start..=top];
        let mut timeframes = Vec::with_capacity(reached.len());
        let mut spans = Vec::with_capacity(reached.len());
        for (j, stage) in reached.iter().enumerate() {
            let timeframe = (j > 0
                && (reached[j - 1].escalator_states_timeframe()
                    || stage.escalator_states_timeframe()))
            .then(|| rng.range(5, 15));
            let limit = stage.time_limit_working_days().or(timeframe);
            let last = j + 1 == reached.len();
            let span = if last && status == CaseStatus::Open {
                match limit {
                    _ if rng.chance(STUCK) => rng.range(40, 200),
                    Some(limit) => rng.range(1, 2 * limit),
                    None => rng.range(1, 30),
                }
            } else {
                match limit {
                    Some(limit) => rng.range(1, limit + limit.div_ceil(3)),
                    None => rng.range(2, 10 + 5 * j as u32),
                }
            };
            timeframes.push(timeframe);
            spans.push(span);
        }

        // The raising day: open cases count back from today; closed ones
        // are drawn from the window and end before today.
        let calendar = area.calendar;
        let total: u32 = spans.iter().sum();
        let raised_day = if status == CaseStatus::Open {
            back(calendar, self.today, total)?
        } else {
            let drawn = self.today - TimeDelta::days(self.age_days());
            let drawn = calendar.add_working_days(drawn, 0)?;
            drawn.min(back(calendar, self.today, total + 1)?)
        };

        let (raising_id, raising_code) = area.agencies[raising].clone();
        let (receiving_id, receiving_code) = area.agencies[receiving].clone();
        let sides = Sides {
            area: &area,
            raising: (raising_id, &raising_code),
            receiving: (receiving_id, &receiving_code),
        };
        let case_id_at = self.time_on(raised_day);
        let case_id = self.rng.uuid_v7(case_id_at);
        let mut chain = Chain {
            case_id,
            parties: (area.id.uuid(), raising_id.uuid(), receiving_id.uuid()),
            events,
            changes,
            prev: audit::GENESIS.to_owned(),
            seq: 0,
        };
        let first = chain.events.len();

        // Raise.
        let mut day = raised_day;
        let raised_at = case_id_at;
        let entry = &stages[start];
        let actor = self.actor(&sides, entry, Action::Raise, Side::Raising)?;
        let plan = plan_raise(
            protocol,
            &actor,
            &RaiseCase {
                same_agency: false,
                receiving_kind: area.kinds[receiving],
                category: category.key(),
                route: Some(route.id()),
                stage: Some(entry.key()),
                immediate_risk_justification: None,
                timeframe_working_days: None,
                declared: &[],
            },
            day,
        )?;
        let mut due_on = plan.due_on;
        chain.push(
            &mut self.rng,
            raised_at,
            &actor,
            AuditAction::Raise,
            (None, &plan.stage, CaseStatus::Open),
            super::workflow::raise_audit(&plan, category.key(), raising_id, receiving_id),
        );
        let mut stage_entered_at = raised_at;

        // One escalation per stage climbed.
        for j in 1..reached.len() {
            let (from, to) = (&reached[j - 1], &reached[j]);
            day = calendar.add_working_days(day, spans[j - 1])?;
            let at = self.time_on(day);
            let reason = if due_on.is_some_and(|due| day > due) {
                EscalationReason::Overdue
            } else {
                EscalationReason::Unresolved
            };
            // The side the protocol lets escalate here (Western Bay: the
            // raising side's).
            let side = match crate::domain::policy::side(
                protocol,
                route.id(),
                from.key(),
                Action::Escalate,
            ) {
                Some(crate::domain::policy::Side::Raising) => Side::Raising,
                _ => Side::Either,
            };
            let actor = self.actor(&sides, from, Action::Escalate, side)?;
            let plan = plan_escalation(
                protocol,
                &sides.facts(route.id(), from.key(), true),
                &actor,
                &Escalate {
                    reason,
                    to_stage: None,
                    immediate_risk_justification: None,
                    timeframe_working_days: timeframes[j],
                    due_on,
                    similar_cases: None,
                    // The generator writes no records: it takes the ones a
                    // stage requires as kept (in the agencies' own files).
                    recorded_here: from.required_to_leave(),
                },
                day,
            )?;
            ensure!(plan.stage == to.key(), "escalated to {} instead of {}", plan.stage, to.key());
            chain.push(
                &mut self.rng,
                at,
                &actor,
                AuditAction::Escalate,
                (Some(from.key()), &plan.stage, CaseStatus::Open),
                super::workflow::escalation_audit(&plan, from.key(), reason, timeframes[j], None),
            );
            due_on = plan.due_on;
            stage_entered_at = at;
        }

        // Resolution or withdrawal.
        let stage = &stages[top];
        let mut status = status;
        if status != CaseStatus::Open {
            day = calendar.add_working_days(day, spans[spans.len() - 1])?;
            let at = self.time_on(day);
            let withdrawer = (status == CaseStatus::Withdrawn)
                .then(|| self.actor(&sides, stage, Action::Withdraw, Side::Raising))
                .and_then(Result::ok);
            let (action, actor) = match withdrawer {
                Some(actor) => (Action::Withdraw, actor),
                None => {
                    status = CaseStatus::Resolved;
                    (Action::Resolve, self.actor(&sides, stage, Action::Resolve, Side::Either)?)
                }
            };
            check(protocol, &sides.facts(route.id(), stage.key(), true), &actor, action)?;
            let rng = &mut self.rng;
            let (name, outcome, learning) = if action == Action::Resolve {
                let learning = rng.chance(LEARNING).then(|| *rng.pick(&LEARNING_NOTES));
                (AuditAction::Resolve, *rng.pick(&OUTCOMES), learning)
            } else {
                (AuditAction::Withdraw, *rng.pick(&WITHDRAW_REASONS), None)
            };
            chain.push(
                &mut self.rng,
                at,
                &actor,
                name,
                (Some(stage.key()), stage.key(), status),
                json!({
                    "stage": stage.key(),
                    "status": status.as_str(),
                    "days_open": (at - raised_at).num_days(),
                    "outcome": outcome,
                    "learning": learning,
                }),
            );
            due_on = None;
        }

        let version = chain.seq;
        let updated_at = chain.events[chain.events.len() - 1].at;
        debug_assert!(chain.events.len() - first == version as usize);
        debug_assert!(updated_at < self.now);
        let number = self.next_number;
        self.next_number += 1;
        Ok(case::Model {
            id: case_id,
            partnership_id: area.id.uuid(),
            protocol_id: protocol.id().to_owned(),
            protocol_version: i32::try_from(protocol.version()).unwrap_or(i32::MAX),
            route: route.id().to_owned(),
            stage: stage.key().to_owned(),
            status: status.as_str().to_owned(),
            raising_agency_id: raising_id.uuid(),
            receiving_agency_id: receiving_id.uuid(),
            child_reference: format!("{REFERENCE_PREFIX}{number:06}"),
            category: category.key().to_owned(),
            summary: summary(category.key(), category.name()),
            version,
            raised_at,
            updated_at,
            stage_entered_at: Some(stage_entered_at),
            due_on,
            acknowledged_at: None,
            repeated_similar_cases: None,
            // Generated cases record no family told (as no records).
            family_told_on: None,
            step_down_conference_on: None,
            step_down_checked_at: None,
            step_down_cin_meeting_held: None,
            step_down_cin_plan_in_place: None,
            step_down_follow_up_id: None,
            follows_case_id: None,
        })
    }

    /// Someone the stage lets take `action`, acting for `side` (a board
    /// chair acts for no agency). `Withdraw` is the raising side's, never
    /// a board chair's here.
    fn actor(
        &mut self,
        sides: &Sides<'_>,
        stage: &Stage,
        action: Action,
        side: Side,
    ) -> anyhow::Result<Actor> {
        let roles: Vec<Role> = stage
            .policy()
            .roles(action)
            .iter()
            .copied()
            .filter(|r| !(action == Action::Withdraw && *r == Role::BoardChair))
            .collect();
        ensure!(!roles.is_empty(), "nobody may {} at {}", action.as_str(), stage.key());
        let role = *self.rng.pick(&roles);
        let area = sides.area;
        if role == Role::BoardChair {
            return Ok(Actor {
                issuer: GENERATOR_ISSUER.into(),
                sub: format!("gen-{}-board-chair", area.code),
                role: Some(role),
                scopes: Default::default(),
                partnership: area.id,
                agency: None,
            });
        }
        let (agency, code) = match side {
            Side::Raising => sides.raising,
            Side::Either if self.rng.chance(RAISING_SIDE_ESCALATES) => sides.raising,
            Side::Either => sides.receiving,
        };
        let person = self.rng.range(1, 12);
        Ok(Actor {
            issuer: GENERATOR_ISSUER.into(),
            sub: format!("gen-{code}-{}-{person:02}", role.as_str().replace('_', "-")),
            role: Some(role),
            scopes: Default::default(),
            partnership: area.id,
            agency: Some(agency),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Side {
    Raising,
    Either,
}

/// The two agencies of a case being generated.
struct Sides<'a> {
    area: &'a Area,
    raising: (AgencyId, &'a str),
    receiving: (AgencyId, &'a str),
}

impl Sides<'_> {
    fn facts<'s>(&self, route: &'s str, stage: &'s str, open: bool) -> CaseFacts<'s> {
        CaseFacts {
            partnership: self.area.id,
            raising: self.raising.0,
            receiving: self.receiving.0,
            route,
            stage,
            open,
            acknowledged: false,
            participants: &[],
        }
    }
}

/// A case's audit events being built, each hashed after the one before,
/// and the change events that go with them.
struct Chain<'e> {
    case_id: uuid::Uuid,
    /// Partnership, raising and receiving agency.
    parties: (uuid::Uuid, uuid::Uuid, uuid::Uuid),
    events: &'e mut Vec<case_event::Model>,
    changes: &'e mut Vec<change_event::ActiveModel>,
    prev: String,
    seq: i32,
}

impl Chain<'_> {
    fn push(
        &mut self,
        rng: &mut Rng,
        at: DateTime<Utc>,
        actor: &Actor,
        action: AuditAction,
        (stage_before, stage_after, status): (Option<&str>, &str, CaseStatus),
        data: serde_json::Value,
    ) {
        self.seq += 1;
        let (partnership, raising, receiving) = self.parties;
        self.changes.push(change_event::ActiveModel {
            id: Set(rng.uuid_v7(at)),
            kind: Set(action.event_type().as_str().to_owned()),
            case_id: Set(self.case_id),
            partnership_id: Set(partnership),
            raising_agency_id: Set(raising),
            receiving_agency_id: Set(receiving),
            stage_before: Set(stage_before.map(str::to_owned)),
            stage_after: Set(stage_after.to_owned()),
            status: Set(status.as_str().to_owned()),
            case_version: Set(self.seq),
            at: Set(at),
            request_id: Set(None),
            ..Default::default()
        });
        let mut event = case_event::Model {
            id: rng.uuid_v7(at),
            case_id: self.case_id,
            seq: self.seq,
            at,
            actor_sub: actor.sub.clone(),
            actor_role: actor.role.map(|r| r.as_str().to_owned()),
            actor_agency_id: actor.agency.map(AgencyId::uuid),
            action: action.as_str().to_owned(),
            request_id: None,
            data: data.to_string(),
            prev_hash: std::mem::take(&mut self.prev),
            hash: String::new(),
        };
        event.hash = audit::event_hash(&event.prev_hash, &event);
        self.prev = event.hash.clone();
        self.events.push(event);
    }
}

/// The working day `n` (at least 1) working days before `day`: adding `n`
/// working days to it reaches `day`, or the last working day before it.
fn back(calendar: &Calendar, mut day: NaiveDate, n: u32) -> anyhow::Result<NaiveDate> {
    let mut counted = 0;
    while counted < n.max(1) {
        day = day.pred_opt().context("date out of range")?;
        if calendar.is_working_day(day) {
            counted += 1;
        }
    }
    Ok(day)
}

/// A short neutral summary from a category's name: its first clause.
fn summary(key: &str, name: &str) -> String {
    let topic = name.split([',', '(', ';']).next().unwrap_or(name).trim();
    let mut chars = topic.chars();
    let topic = match chars.next() {
        _ if key == "other" => "a matter outside the listed categories".to_owned(),
        Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
        None => "the plan for the child".to_owned(),
    };
    format!("Generated demo case: the agencies disagree about {topic}.")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A directory like the demo one: each partnership with agencies of
    /// several kinds.
    fn world() -> World {
        let catalog = Catalog::builtin().unwrap();
        let now = Utc::now();
        let kinds = ["police", "health", "childrens_social_care", "education", "housing"];
        let mut partnerships = Vec::new();
        let mut agencies = Vec::new();
        for (n, (code, _)) in PARTNERSHIP_SHARES.iter().enumerate() {
            let id = uuid::Uuid::from_u128(n as u128 + 1);
            partnerships.push(partnership::Model {
                id,
                code: (*code).to_owned(),
                name: (*code).to_owned(),
                protocol_id: (*code).to_owned(),
                protocol_version: None,
                calendar: "england-and-wales".to_owned(),
                created_at: now,
            });
            for (k, kind) in kinds.iter().enumerate() {
                agencies.push(agency::Model {
                    id: uuid::Uuid::from_u128(((n as u128 + 1) << 16) + k as u128),
                    partnership_id: id,
                    code: format!("{code}-{kind}"),
                    name: format!("{code} {kind}"),
                    kind: (*kind).to_owned(),
                    created_at: now,
                    active: true,
                    deactivated_at: None,
                });
            }
        }
        World::new(&catalog, &partnerships, &agencies).unwrap()
    }

    fn fixed_now() -> DateTime<Utc> {
        "2026-11-23T11:00:00Z".parse().unwrap()
    }

    fn generate(seed: u64, n: u64) -> Batch {
        let mut g = Generator::new(world(), seed, 3, 0, fixed_now()).unwrap();
        g.batch(n).unwrap()
    }

    #[test]
    fn generate_is_reproducible_for_a_seed() {
        let a = generate(7, 300);
        let b = generate(7, 300);
        assert_eq!(a.cases, b.cases);
        assert_eq!(a.events, b.events);
        let c = generate(8, 300);
        assert_ne!(a.cases, c.cases);
        // A second run over the first one's cases numbers on and differs.
        let mut g = Generator::new(world(), 7, 3, 300, fixed_now()).unwrap();
        let d = g.batch(300).unwrap();
        assert_eq!(d.cases[0].child_reference, "GEN-000301");
        assert!(a.cases.iter().all(|x| d.cases.iter().all(|y| x.id != y.id)));
    }

    #[test]
    fn generate_spreads_cases_as_designed() {
        let catalog = Catalog::builtin().unwrap();
        let batch = generate(20_261_123, 20_000);
        let now = fixed_now();
        let today = now.date_naive();
        let n = batch.cases.len() as f64;
        let share = |f: &dyn Fn(&case::Model) -> bool| {
            batch.cases.iter().filter(|c| f(c)).count() as f64 / n
        };
        let resolved = share(&|c| c.status == "resolved");
        let withdrawn = share(&|c| c.status == "withdrawn");
        let open = share(&|c| c.status == "open");
        assert!((resolved - 0.70).abs() < 0.02, "resolved {resolved}");
        assert!((withdrawn - 0.10).abs() < 0.02, "withdrawn {withdrawn}");
        assert!((open - 0.20).abs() < 0.02, "open {open}");
        let overdue = share(&|c| c.status == "open" && c.due_on.is_some_and(|d| d < today));
        assert!(overdue > 0.005, "overdue {overdue}");

        let mut by_partnership: BTreeMap<uuid::Uuid, usize> = BTreeMap::new();
        let mut climbed = [0usize; 8];
        for c in &batch.cases {
            *by_partnership.entry(c.partnership_id).or_default() += 1;
            let protocol = catalog.get(&c.protocol_id, c.protocol_version as u32).unwrap();
            let route = protocol.route(&c.route).unwrap();
            let at = route.position(&c.stage).expect("a stage of the route");
            let entry = route.stages().iter().position(|s| s.is_entry()).unwrap();
            climbed[at.saturating_sub(entry).min(7)] += 1;
            assert!(protocol.category(&c.category).is_some());
            assert_ne!(c.raising_agency_id, c.receiving_agency_id);
            assert!(c.raised_at <= c.updated_at && c.updated_at < now);
            assert!(c.raised_at.date_naive() >= today - TimeDelta::days(3 * 365));
            assert!(c.child_reference.starts_with("GEN-"));
            if c.status != "open" {
                assert_eq!(c.due_on, None);
            }
        }
        assert_eq!(by_partnership.len(), 5);
        // Most stay where they were raised; few climb three stages.
        assert!(climbed[0] as f64 / n > 0.6, "{climbed:?}");
        assert!(climbed[3] > 0 && (climbed[3] as f64 / n) < 0.05, "{climbed:?}");

        // More cases in the newest year than in the oldest.
        let year = |c: &case::Model| (now - c.raised_at).num_days() / 365;
        let newest = batch.cases.iter().filter(|c| year(c) == 0).count();
        let oldest = batch.cases.iter().filter(|c| year(c) == 2).count();
        assert!(newest > oldest * 3 / 2, "newest {newest}, oldest {oldest}");
    }

    #[test]
    fn generated_events_chain_and_match_their_case() {
        let batch = generate(3, 2_000);
        let mut events: BTreeMap<uuid::Uuid, Vec<&case_event::Model>> = BTreeMap::new();
        for e in &batch.events {
            events.entry(e.case_id).or_default().push(e);
        }
        for c in &batch.cases {
            let trail = &events[&c.id];
            assert_eq!(trail.len(), c.version as usize);
            assert_eq!(trail[0].action, "raise");
            assert_eq!(trail[0].at, c.raised_at);
            assert_eq!(trail.last().unwrap().at, c.updated_at);
            let mut prev = audit::GENESIS.to_owned();
            for (i, e) in trail.iter().enumerate() {
                assert_eq!(e.seq, i as i32 + 1);
                assert_eq!(e.prev_hash, prev);
                assert_eq!(audit::event_hash(&prev, e), e.hash);
                if i > 0 {
                    assert!(e.at > trail[i - 1].at);
                }
                prev = e.hash.clone();
            }
            let last = trail.last().unwrap().action.as_str();
            let expected = match c.status.as_str() {
                "resolved" => "resolve",
                "withdrawn" => "withdraw",
                _ => last,
            };
            assert_eq!(last, expected);
            if c.status == "open" {
                assert!(matches!(last, "raise" | "escalate"));
            }
            let escalations = trail.iter().filter(|e| e.action == "escalate").count();
            assert_eq!(escalations + 1 + usize::from(c.status != "open"), trail.len());
        }
    }

    #[test]
    fn generate_summaries_are_short_and_neutral() {
        assert_eq!(
            summary(
                "referral-response",
                "Response to a referral, e.g. whether to undertake a section 47 enquiry"
            ),
            "Generated demo case: the agencies disagree about response to a referral."
        );
        assert_eq!(
            summary("other", "Other (the list is not exclusive)"),
            "Generated demo case: the agencies disagree about a matter outside the listed categories."
        );
    }
}

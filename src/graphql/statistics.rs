//! Board statistics and the agencies' feedback that feeds them.

use crate::graphql::cost;
use crate::graphql::scalars::DateTime;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use sea_orm::DatabaseConnection;

use super::case::CaseStatus;
use super::directory::{Agency, load_agency};
use super::error::{GqlResult, bad_input};
use super::workflow::{actor, case_id, run_change, shared};
use crate::domain::ids::{AgencyId, PartnershipId};
use crate::service::change::Keyed;
use crate::service::{feedback, statistics};

/// The statistics a board reports for one period. Each part is a field of
/// its own, computed by the database only when asked for.
pub struct BoardStatistics(statistics::Board);

/// Statistics statements scan a partnership's cases; a board tool asking for
/// every part runs many at once. At most this many run at the same time in
/// the process (half the pool), so reports queue among themselves instead
/// of starving case lookups of connections.
static STATEMENT_SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.max(1))
    });

/// A statistics statement's slot and the pool, held for one statement.
struct Gate<'a> {
    _slot: tokio::sync::SemaphorePermit<'static>,
    db: &'a DatabaseConnection,
}

async fn gate<'a>(ctx: &'a Context<'_>) -> Result<Gate<'a>> {
    let db = ctx.data::<DatabaseConnection>()?;
    let slot =
        STATEMENT_SLOTS.acquire().await.map_err(|_| async_graphql::Error::new("internal error"))?;
    Ok(Gate { _slot: slot, db })
}

/// The statistics a board reports for one period `[from, to)` (from
/// included, to excluded). "Cases of the period" are the partnership's cases
/// raised in it. Each part is a field of its own, computed by the database
/// only when asked for. Dates and months are UTC. No free text and no
/// child's reference appear in any statistic.
#[Object]
impl BoardStatistics {
    /// Start of the period (included).
    async fn from(&self) -> DateTime {
        self.0.from.into()
    }

    /// End of the period (excluded).
    async fn to(&self) -> DateTime {
        self.0.to.into()
    }

    /// Cases raised in the period.
    async fn cases_raised(&self, ctx: &Context<'_>) -> Result<u64> {
        statistics::cases_raised(gate(ctx).await?.db, &self.0).await.gql()
    }

    /// Cases open at the end of the period: raised before `to` and not
    /// closed (resolved or withdrawn) before `to`.
    async fn cases_open_at_end(&self, ctx: &Context<'_>) -> Result<u64> {
        statistics::cases_open_at_end(gate(ctx).await?.db, &self.0).await.gql()
    }

    /// Cases closed as resolved in the period (whenever they were raised).
    async fn cases_resolved(&self, ctx: &Context<'_>) -> Result<u64> {
        statistics::cases_resolved(gate(ctx).await?.db, &self.0).await.gql()
    }

    /// Cases of the period by the highest stage they reached (their current
    /// stage: stages only go up), per route; biggest count first, then by
    /// route and stage.
    async fn by_stage_reached(&self, ctx: &Context<'_>) -> Result<Vec<StageCount>> {
        let list = statistics::by_stage_reached(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(list
            .into_iter()
            .map(|s| StageCount { route: s.route, stage: s.stage, count: s.count })
            .collect())
    }

    /// Cases of the period by raising and receiving agency; biggest count
    /// first.
    async fn by_agency_pair(&self, ctx: &Context<'_>) -> Result<Vec<AgencyPairCount>> {
        let list = statistics::by_agency_pair(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(list.into_iter().map(AgencyPairCount).collect())
    }

    /// Cases of the period by subject category; biggest count first, then
    /// by key.
    async fn by_category(&self, ctx: &Context<'_>) -> Result<Vec<CategoryCount>> {
        let list = statistics::by_category(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(list.into_iter().map(|k| CategoryCount { category: k.key, count: k.count }).collect())
    }

    /// Cases of the period by route; biggest count first, then by id.
    async fn by_route(&self, ctx: &Context<'_>) -> Result<Vec<RouteCount>> {
        let list = statistics::by_route(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(list.into_iter().map(|k| RouteCount { route: k.key, count: k.count }).collect())
    }

    /// Cases of the period by their current status: every status, zeros
    /// included, in the order open, resolved, withdrawn.
    async fn by_outcome(&self, ctx: &Context<'_>) -> Result<Vec<OutcomeCount>> {
        let list = statistics::by_outcome(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(list
            .into_iter()
            .map(|(status, count)| OutcomeCount { status: status.into(), count })
            .collect())
    }

    /// Working days from raising to resolution of the cases resolved in the
    /// period, with the partnership's calendar.
    async fn time_to_resolution(&self, ctx: &Context<'_>) -> Result<TimeToResolution> {
        let r = statistics::time_to_resolution(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(TimeToResolution {
            count: r.count,
            median_working_days: r.median,
            p90_working_days: r.p90,
        })
    }

    /// Cases open now (whatever the period).
    async fn open_now(&self, ctx: &Context<'_>) -> Result<u64> {
        statistics::open_now(gate(ctx).await?.db, &self.0).await.gql()
    }

    /// Cases open now whose current stage was due before today (UTC),
    /// whatever the period.
    async fn overdue_now(&self, ctx: &Context<'_>) -> Result<u64> {
        let today = crate::service::audit::now().date_naive();
        statistics::overdue_now(gate(ctx).await?.db, &self.0, today).await.gql()
    }

    /// Cases raised and resolved per calendar month (UTC) of the period,
    /// oldest first, every month listed (zeros included); a partial first or
    /// last month counts only its part inside the period. At most 1200
    /// months.
    async fn monthly_trend(&self, ctx: &Context<'_>) -> Result<Vec<MonthCount>> {
        let list = statistics::monthly_trend(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(list
            .into_iter()
            .map(|m| MonthCount { month: m.month, raised: m.raised, resolved: m.resolved })
            .collect())
    }

    /// The partnership's agencies that raised at least one case in the
    /// period, by name.
    async fn agencies_that_raise(&self, ctx: &Context<'_>) -> Result<Vec<Agency>> {
        let list = statistics::agencies_raising(gate(ctx).await?.db, &self.0, true).await.gql()?;
        Ok(list.into_iter().map(Agency).collect())
    }

    /// The partnership's agencies that raised no case in the period, by
    /// name.
    async fn agencies_that_never_raise(&self, ctx: &Context<'_>) -> Result<Vec<Agency>> {
        let list = statistics::agencies_raising(gate(ctx).await?.db, &self.0, false).await.gql()?;
        Ok(list.into_iter().map(Agency).collect())
    }

    /// The pairs of agencies and categories with similar disagreements
    /// raised again and again in the period (the Pan-Sussex step-5
    /// pattern), counted by the rule of the trigger and of
    /// `Case.repeatedDisagreement`: the same two agencies either way round,
    /// the same category, not withdrawn, at least the protocol's threshold
    /// (its rule's count; 2 without a rule). Biggest count first.
    async fn repeated_disagreements(&self, ctx: &Context<'_>) -> Result<Vec<RepeatedDisagreement>> {
        let list = statistics::repeated_disagreements(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(list.into_iter().map(RepeatedDisagreement).collect())
    }

    /// The agencies' feedback on the cases closed (resolved or withdrawn)
    /// in the period. Counts only: comments never appear here.
    async fn feedback(&self, ctx: &Context<'_>) -> Result<FeedbackSummary> {
        let f = statistics::feedback_summary(gate(ctx).await?.db, &self.0).await.gql()?;
        Ok(FeedbackSummary {
            count: f.count,
            resolved_yes: f.resolved_yes,
            would_use_again_yes: f.would_use_again_yes,
            average_felt_duration: f.average_felt_duration,
        })
    }
}

/// Cases that reached a stage.
#[derive(SimpleObject)]
pub struct StageCount {
    /// The route.
    pub route: String,
    /// The stage key, e.g. `stage-2`.
    pub stage: String,
    /// How many cases.
    pub count: u64,
}

/// Cases about a subject category.
#[derive(SimpleObject)]
pub struct CategoryCount {
    /// The category key of the protocol.
    pub category: String,
    /// How many cases.
    pub count: u64,
}

/// Cases on a route.
#[derive(SimpleObject)]
pub struct RouteCount {
    /// The route id.
    pub route: String,
    /// How many cases.
    pub count: u64,
}

/// Cases with a status.
#[derive(SimpleObject)]
pub struct OutcomeCount {
    /// The status.
    pub status: CaseStatus,
    /// How many cases.
    pub count: u64,
}

/// Time to resolution in working days: the working days after the day a
/// case was raised up to and including the day it was resolved (UTC days;
/// weekends and the partnership's bank holidays excluded; 0 when resolved
/// the day it was raised). Percentiles are nearest-rank: the value at rank
/// ⌈p/100 × count⌉ of the values sorted ascending, always an observed
/// value, so every database gives the same answer.
#[derive(SimpleObject)]
pub struct TimeToResolution {
    /// How many cases were resolved in the period.
    pub count: u64,
    /// Nearest-rank median (rank ⌈count / 2⌉); null when no case.
    pub median_working_days: Option<i64>,
    /// Nearest-rank 90th percentile (rank ⌈0.9 × count⌉); null when no
    /// case.
    pub p90_working_days: Option<i64>,
}

/// Cases raised and resolved in one month.
#[derive(SimpleObject)]
pub struct MonthCount {
    /// The month, `YYYY-MM` (UTC).
    pub month: String,
    /// Cases raised in the month.
    pub raised: u64,
    /// Cases resolved in the month.
    pub resolved: u64,
}

/// The agencies' feedback on the process, in numbers.
#[derive(SimpleObject)]
pub struct FeedbackSummary {
    /// How many feedbacks were given (at most two per case).
    pub count: u64,
    /// How many said the difference was resolved.
    pub resolved_yes: u64,
    /// How many would use the process again.
    pub would_use_again_yes: u64,
    /// Mean of the felt-duration ratings given (1 far too long, 5 quick);
    /// null when none gave one.
    pub average_felt_duration: Option<f64>,
}

/// Cases from one agency to another.
pub struct AgencyPairCount(statistics::PairCount);

/// Cases from one agency to another.
#[Object]
impl AgencyPairCount {
    /// The agency that raised them.
    async fn raising_agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.raising).await
    }
    /// The agency that received them.
    async fn receiving_agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.receiving).await
    }
    /// How many cases.
    async fn count(&self) -> u64 {
        self.0.count
    }
}

/// Repeated cases between two agencies about one category.
pub struct RepeatedDisagreement(statistics::PairCount);

/// Repeated cases between two agencies, either way round, about one
/// category.
#[Object]
impl RepeatedDisagreement {
    /// The two agencies, whichever raised each case.
    async fn agencies(&self, ctx: &Context<'_>) -> Result<Vec<Agency>> {
        Ok(vec![load_agency(ctx, self.0.raising).await?, load_agency(ctx, self.0.receiving).await?])
    }
    /// One of the two agencies (the first of `agencies`).
    #[graphql(deprecation = "The cases are counted either way round: use `agencies`.")]
    async fn raising_agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.raising).await
    }
    /// The other agency (the second of `agencies`).
    #[graphql(deprecation = "The cases are counted either way round: use `agencies`.")]
    async fn receiving_agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, self.0.receiving).await
    }
    /// The category key.
    async fn category(&self) -> &str {
        self.0.category.as_deref().unwrap_or_default()
    }
    /// How many cases (at least the threshold).
    async fn count(&self) -> u64 {
        self.0.count
    }
}

/// Board statistics.
#[derive(Default)]
pub struct StatisticsQuery;

#[Object]
impl StatisticsQuery {
    /// The statistics of a partnership for the period `[from, to)`. Only
    /// for the roles the partnership's protocol allows to read statistics
    /// (board chairs) and `statistics:read` clients of that partnership;
    /// others are `FORBIDDEN` (the message names the roles that may), and
    /// another partnership is `NOT_FOUND`. `from` must be before `to`.
    #[graphql(complexity = "cost::STATISTICS + child_complexity")]
    async fn board_statistics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Identifier of the partnership.")] partnership_id: ID,
        #[graphql(desc = "Start of the period (included).")] from: DateTime,
        #[graphql(desc = "End of the period (excluded).")] to: DateTime,
    ) -> Result<BoardStatistics> {
        let actor = actor(ctx)?;
        let id: PartnershipId = partnership_id
            .parse()
            .map_err(|_| bad_input("partnershipId", "not a valid identifier"))?;
        let (db, protocols, _) = shared(ctx)?;
        let board = statistics::authorize(db, protocols, actor, id, from.0, to.0).await.gql()?;
        Ok(BoardStatistics(board))
    }
}

/// An agency's feedback on how well the process worked for a closed case.
pub struct Feedback(feedback::Feedback);

/// An agency's feedback on how well the process worked for a closed case.
#[Object]
impl Feedback {
    /// Opaque identifier.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Identifier of the case.
    async fn case_id(&self) -> ID {
        ID(self.0.case_id.to_string())
    }
    /// The agency that gave it.
    async fn agency(&self, ctx: &Context<'_>) -> Result<Agency> {
        load_agency(ctx, AgencyId::from_uuid(self.0.agency_id)).await
    }
    /// Whether the agency thinks the difference was resolved.
    async fn resolved(&self) -> bool {
        self.0.resolved
    }
    /// How long it felt, 1 (far too long) to 5 (quick).
    async fn felt_duration_rating(&self) -> Option<i32> {
        self.0.felt_duration_rating
    }
    /// Whether the agency would use the process again.
    async fn would_use_again(&self) -> bool {
        self.0.would_use_again
    }
    /// The free comment, if any.
    async fn comment(&self) -> Option<&str> {
        self.0.comment.as_deref()
    }
    /// When it was given.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// Your agency's feedback on a resolved or withdrawn case.
#[derive(InputObject)]
pub struct GiveFeedbackInput {
    /// The case (resolved or withdrawn; your agency raised or received it).
    pub case_id: ID,
    /// Optional idempotency key (1 to 128 characters, unique per caller): a
    /// retry with the same key and input returns the first result without
    /// a second change; the same key with another input is `CONFLICT`.
    pub idempotency_key: Option<String>,
    /// Was the difference resolved, in your agency's view?
    pub resolved: bool,
    /// How long it felt, 1 (far too long) to 5 (quick).
    pub felt_duration_rating: Option<i32>,
    /// Would your agency use the process again?
    pub would_use_again: bool,
    /// A free comment. Free text: it never appears in statistics.
    pub comment: Option<String>,
}

/// The result of `giveFeedback`.
#[derive(SimpleObject)]
pub struct GiveFeedbackPayload {
    /// The feedback stored.
    pub feedback: Feedback,
    /// The case's version after the change.
    pub case_version: i32,
}

impl TryFrom<GiveFeedbackInput> for Keyed<feedback::GiveFeedbackInput> {
    type Error = async_graphql::Error;

    fn try_from(input: GiveFeedbackInput) -> Result<Self> {
        let change = feedback::GiveFeedbackInput {
            case: case_id(&input.case_id, "caseId")?,
            resolved: input.resolved,
            felt_duration_rating: input.felt_duration_rating,
            would_use_again: input.would_use_again,
            comment: input.comment,
        };
        if let Some(r) = change.felt_duration_rating
            && !(1..=5).contains(&r)
        {
            return Err(bad_input("feltDurationRating", "1 (far too long) to 5 (quick)"));
        }
        Ok(Keyed { key: input.idempotency_key, change })
    }
}

/// Feedback mutations.
#[derive(Default)]
pub struct FeedbackMutation;

#[Object]
impl FeedbackMutation {
    /// Give your agency's feedback on how well the process worked, once the
    /// case is resolved or withdrawn: once per agency (a second time is
    /// `CONFLICT`, as is an open case). For people of the raising or
    /// receiving agency; a token without an agency (a board chair) or
    /// without a role is `FORBIDDEN`, another agency's case `NOT_FOUND`.
    async fn give_feedback(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The feedback.")] input: GiveFeedbackInput,
    ) -> Result<GiveFeedbackPayload> {
        let given = run_change::<feedback::GiveFeedbackInput>(ctx, input).await?;
        Ok(GiveFeedbackPayload {
            feedback: Feedback(given.feedback),
            case_version: given.case_version,
        })
    }
}

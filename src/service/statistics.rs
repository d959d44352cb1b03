//! Board statistics: what a partnership reports about how its agencies work
//! together, computed by the database.
//!
//! Every statistic is one aggregate statement (`COUNT`, `GROUP BY`,
//! `HAVING`, sub-selects) over the `case` (or `feedback`) table, filtered by
//! partnership and period in SQL; no case row is loaded into memory. Only
//! two things are finished in Rust, over rows already aggregated by the
//! database:
//! - time to resolution: the database groups the resolved cases by their
//!   (raised date, resolved date) pair with a count, so at most one row per
//!   distinct pair comes back, however many cases there are; Rust counts the
//!   working days of each pair with the partnership's calendar (bank
//!   holidays are data, not SQL) and takes the nearest-rank percentiles over
//!   the weighted values. SQLite has no `percentile_disc`; doing it here
//!   gives the same answer on both backends by construction.
//! - the monthly trend: the database counts per month; Rust lists every month
//!   of the period, with zeros where the database had no row.
//!
//! Dates and months are UTC. Date and month truncation is the one place the
//! SQL differs by backend (`strftime` on SQLite, `to_char` on PostgreSQL).
//!
//! No statistic carries free text or a child's reference: only counts,
//! stage, route and category keys, statuses and agencies.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use entity::{agency, case, feedback, partnership};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, IdenStatic, JoinType,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait,
};

use super::ServiceError;
use super::cases::CaseStatus;
use super::directory::Agency;
use super::protocols::Library;
use crate::domain::actor::Actor;
use crate::domain::calendar::Calendar;
use crate::domain::ids::{AgencyId, PartnershipId};

/// The longest monthly trend answered, in months (100 years).
pub const MAX_TREND_MONTHS: usize = 1200;

/// What one statistics request is about, once access has been checked: one
/// partnership and the period `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// The partnership.
    pub partnership: PartnershipId,
    /// Its working-day calendar's id.
    pub calendar: String,
    /// Start of the period (included).
    pub from: DateTime<Utc>,
    /// End of the period (excluded).
    pub to: DateTime<Utc>,
    /// Similar cases that make a repeated disagreement
    /// (`domain::board::repeated_threshold` of its protocol).
    pub repeated_at_least: u32,
}

/// Checks that `actor` may read the statistics of `partnership` and returns
/// what the statistics need.
///
/// Another partnership (or none) is `NotFound`, exactly as if it did not
/// exist. Within its own partnership a caller needs a role the protocol's
/// `read_statistics` list names (board chairs in every built-in protocol),
/// or the `statistics:read` scope; anyone else is `Forbidden`, naming the
/// roles that may. `from` must be before `to`.
pub async fn authorize(
    db: &impl ConnectionTrait,
    protocols: &Library,
    actor: &Actor,
    partnership: PartnershipId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Board, ServiceError> {
    if actor.partnership != partnership {
        return Err(ServiceError::NotFound("partnership"));
    }
    let row = partnership::Entity::find_by_id(partnership.uuid())
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("partnership"))?;
    // Who reads the statistics is the rule of the version the partnership
    // works under now (its adopted one, else the newest).
    let protocol = protocols.for_new_cases(db, &row).await?;
    let protocol = &*protocol;
    if let Err(allowed) = crate::domain::access::may_read_statistics(protocol, actor) {
        let roles = &allowed;
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let who = match actor.role {
            Some(role) => format!("a {role}"),
            None => "a client without the statistics:read scope".to_owned(),
        };
        let may = if roles.is_empty() { "no role".to_owned() } else { roles.join(", ") };
        return Err(ServiceError::forbidden(
            format!(
                "{who} may not read_statistics of this partnership; roles that may: {may} \
                 (and clients with the statistics:read scope)"
            ),
            crate::domain::access::Allowed::roles(allowed),
        ));
    }
    if from >= to {
        return Err(ServiceError::bad_input("from", "must be before `to`"));
    }
    Ok(Board {
        partnership,
        calendar: row.calendar,
        from,
        to,
        repeated_at_least: crate::domain::board::repeated_threshold(protocol),
    })
}

/// A count per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCount {
    /// The key (a category, route or stage key).
    pub key: String,
    /// How many cases.
    pub count: u64,
}

/// Cases per route and stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCount {
    /// The route.
    pub route: String,
    /// The stage key.
    pub stage: String,
    /// How many cases.
    pub count: u64,
}

/// Cases between a raising and a receiving agency (maybe about one category).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairCount {
    /// The agency that raised them.
    pub raising: AgencyId,
    /// The agency that received them.
    pub receiving: AgencyId,
    /// The category, for repeated disagreements.
    pub category: Option<String>,
    /// How many cases.
    pub count: u64,
}

/// Time to resolution in working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resolution {
    /// How many cases were resolved in the period.
    pub count: u64,
    /// Nearest-rank median, if any case.
    pub median: Option<i64>,
    /// Nearest-rank 90th percentile, if any case.
    pub p90: Option<i64>,
}

/// One month of the trend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    /// `YYYY-MM`.
    pub month: String,
    /// Cases raised in the month (and in the period).
    pub raised: u64,
    /// Cases resolved in the month (and in the period).
    pub resolved: u64,
}

/// The agencies' feedback on the cases closed in the period.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FeedbackSummary {
    /// How many agencies gave feedback.
    pub count: u64,
    /// How many said the difference was resolved.
    pub resolved_yes: u64,
    /// How many would use the process again.
    pub would_use_again_yes: u64,
    /// Mean of the felt-duration ratings given (1 far too long, 5 quick).
    pub average_felt_duration: Option<f64>,
}

fn n(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

fn partnership_is(b: &Board) -> Condition {
    Condition::all().add(case::Column::PartnershipId.eq(b.partnership.uuid()))
}

/// Cases of the partnership raised in the period: "the cases of the period".
fn raised_in(b: &Board) -> Condition {
    partnership_is(b).add(case::Column::RaisedAt.gte(b.from)).add(case::Column::RaisedAt.lt(b.to))
}

/// Cases of the partnership closed as resolved in the period. A closed
/// case's `updated_at` is its closing time (nothing changes it afterwards).
fn resolved_in(b: &Board) -> Condition {
    partnership_is(b)
        .add(case::Column::Status.eq(CaseStatus::Resolved.as_str()))
        .add(case::Column::UpdatedAt.gte(b.from))
        .add(case::Column::UpdatedAt.lt(b.to))
}

async fn count_cases(db: &impl ConnectionTrait, cond: Condition) -> Result<u64, ServiceError> {
    let count: Option<i64> = case::Entity::find()
        .select_only()
        .column_as(case::Column::Id.count(), "n")
        .filter(cond)
        .into_tuple()
        .one(db)
        .await?;
    Ok(count.map_or(0, n))
}

/// Cases raised in the period.
pub async fn cases_raised(db: &impl ConnectionTrait, b: &Board) -> Result<u64, ServiceError> {
    count_cases(db, raised_in(b)).await
}

/// Cases open at the end of the period: raised before `to` and not closed
/// before `to` (still open, or closed at or after `to`).
pub async fn cases_open_at_end(db: &impl ConnectionTrait, b: &Board) -> Result<u64, ServiceError> {
    let cond = partnership_is(b).add(case::Column::RaisedAt.lt(b.to)).add(
        Condition::any()
            .add(case::Column::Status.eq(CaseStatus::Open.as_str()))
            .add(case::Column::UpdatedAt.gte(b.to)),
    );
    count_cases(db, cond).await
}

/// Cases closed as resolved in the period.
pub async fn cases_resolved(db: &impl ConnectionTrait, b: &Board) -> Result<u64, ServiceError> {
    count_cases(db, resolved_in(b)).await
}

/// Cases open now.
pub async fn open_now(db: &impl ConnectionTrait, b: &Board) -> Result<u64, ServiceError> {
    count_cases(db, partnership_is(b).add(case::Column::Status.eq(CaseStatus::Open.as_str()))).await
}

/// Cases open now whose current stage was due before `today`.
pub async fn overdue_now(
    db: &impl ConnectionTrait,
    b: &Board,
    today: NaiveDate,
) -> Result<u64, ServiceError> {
    let cond = partnership_is(b)
        .add(case::Column::Status.eq(CaseStatus::Open.as_str()))
        .add(case::Column::DueOn.lt(today));
    count_cases(db, cond).await
}

/// Biggest count first, then by key.
fn by_count_then_key<K: Ord>(mut list: Vec<(K, u64)>) -> Vec<(K, u64)> {
    list.sort_by(|(ka, ca), (kb, cb)| cb.cmp(ca).then_with(|| ka.cmp(kb)));
    list
}

async fn count_by(
    db: &impl ConnectionTrait,
    b: &Board,
    column: case::Column,
) -> Result<Vec<KeyCount>, ServiceError> {
    let rows: Vec<(String, i64)> = case::Entity::find()
        .select_only()
        .column(column)
        .column_as(case::Column::Id.count(), "n")
        .filter(raised_in(b))
        .group_by(column)
        .into_tuple()
        .all(db)
        .await?;
    let list = rows.into_iter().map(|(k, c)| (k, n(c))).collect();
    Ok(by_count_then_key(list).into_iter().map(|(key, count)| KeyCount { key, count }).collect())
}

/// Cases of the period by subject category, biggest first.
pub async fn by_category(
    db: &impl ConnectionTrait,
    b: &Board,
) -> Result<Vec<KeyCount>, ServiceError> {
    count_by(db, b, case::Column::Category).await
}

/// Cases of the period by route, biggest first.
pub async fn by_route(db: &impl ConnectionTrait, b: &Board) -> Result<Vec<KeyCount>, ServiceError> {
    count_by(db, b, case::Column::Route).await
}

/// Cases of the period by the highest stage they reached, which is their
/// current stage (stages only go up), biggest first.
pub async fn by_stage_reached(
    db: &impl ConnectionTrait,
    b: &Board,
) -> Result<Vec<StageCount>, ServiceError> {
    let rows: Vec<(String, String, i64)> = case::Entity::find()
        .select_only()
        .column(case::Column::Route)
        .column(case::Column::Stage)
        .column_as(case::Column::Id.count(), "n")
        .filter(raised_in(b))
        .group_by(case::Column::Route)
        .group_by(case::Column::Stage)
        .into_tuple()
        .all(db)
        .await?;
    let list = rows.into_iter().map(|(r, s, c)| ((r, s), n(c))).collect();
    Ok(by_count_then_key(list)
        .into_iter()
        .map(|((route, stage), count)| StageCount { route, stage, count })
        .collect())
}

/// Cases of the period by their current status; all three statuses, zeros
/// included, in the order open, resolved, withdrawn.
pub async fn by_outcome(
    db: &impl ConnectionTrait,
    b: &Board,
) -> Result<Vec<(CaseStatus, u64)>, ServiceError> {
    let rows: Vec<(String, i64)> = case::Entity::find()
        .select_only()
        .column(case::Column::Status)
        .column_as(case::Column::Id.count(), "n")
        .filter(raised_in(b))
        .group_by(case::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let counts: HashMap<String, i64> = rows.into_iter().collect();
    Ok([CaseStatus::Open, CaseStatus::Resolved, CaseStatus::Withdrawn]
        .into_iter()
        .map(|s| (s, counts.get(s.as_str()).copied().map_or(0, n)))
        .collect())
}

/// Cases of the period by (raising, receiving) agency, biggest first.
pub async fn by_agency_pair(
    db: &impl ConnectionTrait,
    b: &Board,
) -> Result<Vec<PairCount>, ServiceError> {
    let rows: Vec<(uuid::Uuid, uuid::Uuid, i64)> = case::Entity::find()
        .select_only()
        .column(case::Column::RaisingAgencyId)
        .column(case::Column::ReceivingAgencyId)
        .column_as(case::Column::Id.count(), "n")
        .filter(raised_in(b))
        .group_by(case::Column::RaisingAgencyId)
        .group_by(case::Column::ReceivingAgencyId)
        .into_tuple()
        .all(db)
        .await?;
    let list = rows.into_iter().map(|(r, v, c)| ((r, v), n(c))).collect();
    Ok(by_count_then_key(list)
        .into_iter()
        .map(|((r, v), count)| PairCount {
            raising: AgencyId::from_uuid(r),
            receiving: AgencyId::from_uuid(v),
            category: None,
            count,
        })
        .collect())
}

/// The pairs of agencies, either way round, and categories with at least
/// the protocol's threshold of similar cases raised in the period (the
/// Pan-Sussex step-5 pattern, counted by the rule of the trigger: the same
/// two agencies either way round, the same category, not withdrawn; see
/// `domain::board::repeated_threshold`), biggest first. `raising` is the
/// lesser id of the pair and `receiving` the other.
pub async fn repeated_disagreements(
    db: &impl ConnectionTrait,
    b: &Board,
) -> Result<Vec<PairCount>, ServiceError> {
    // Counted per direction in the database (a row per pair, direction
    // and category), summed either way round here.
    let rows: Vec<(uuid::Uuid, uuid::Uuid, String, i64)> = case::Entity::find()
        .select_only()
        .column(case::Column::RaisingAgencyId)
        .column(case::Column::ReceivingAgencyId)
        .column(case::Column::Category)
        .column_as(case::Column::Id.count(), "n")
        .filter(raised_in(b))
        .filter(case::Column::Status.ne(CaseStatus::Withdrawn.as_str()))
        .group_by(case::Column::RaisingAgencyId)
        .group_by(case::Column::ReceivingAgencyId)
        .group_by(case::Column::Category)
        .into_tuple()
        .all(db)
        .await?;
    let mut pairs: std::collections::BTreeMap<(uuid::Uuid, uuid::Uuid, String), u64> =
        std::collections::BTreeMap::new();
    for (r, v, k, c) in rows {
        let (x, y) = crate::domain::board::between(r, v);
        *pairs.entry((x, y, k)).or_default() += n(c);
    }
    let list =
        pairs.into_iter().filter(|(_, count)| *count >= u64::from(b.repeated_at_least)).collect();
    Ok(by_count_then_key(list)
        .into_iter()
        .map(|((r, v, k), count)| PairCount {
            raising: AgencyId::from_uuid(r),
            receiving: AgencyId::from_uuid(v),
            category: Some(k),
            count,
        })
        .collect())
}

/// The agencies of the partnership that raised a case in the period
/// (`raised`), or that raised none, by name.
pub async fn agencies_raising(
    db: &impl ConnectionTrait,
    b: &Board,
    raised: bool,
) -> Result<Vec<Agency>, ServiceError> {
    let raisers = case::Entity::find()
        .select_only()
        .column(case::Column::RaisingAgencyId)
        .filter(raised_in(b))
        .into_query();
    let cond = if raised {
        agency::Column::Id.in_subquery(raisers)
    } else {
        agency::Column::Id.not_in_subquery(raisers)
    };
    let rows = agency::Entity::find()
        .filter(agency::Column::PartnershipId.eq(b.partnership.uuid()))
        .filter(cond)
        .order_by_asc(agency::Column::Name)
        .order_by_asc(agency::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Agency::from).collect())
}

/// How a timestamp column is truncated to text, in UTC.
#[derive(Debug, Clone, Copy)]
enum Trunc {
    /// `YYYY-MM-DD`.
    Day,
    /// `YYYY-MM`.
    Month,
}

/// `column` of `case` truncated to a day or a month, as `YYYY-MM-DD` or
/// `YYYY-MM` text in UTC. The only backend-specific SQL here: SQLite has
/// `strftime`, PostgreSQL `to_char`. No bound value, so a `GROUP BY` on the
/// same expression matches the select list on PostgreSQL.
fn utc_text(
    backend: DbBackend,
    column: case::Column,
    trunc: Trunc,
) -> Result<SimpleExpr, ServiceError> {
    let table = case::Entity.as_str();
    let col = column.as_str();
    match backend {
        DbBackend::Sqlite => {
            let fmt = match trunc {
                Trunc::Day => "%Y-%m-%d",
                Trunc::Month => "%Y-%m",
            };
            Ok(Expr::cust(format!("strftime('{fmt}', \"{table}\".\"{col}\")")))
        }
        DbBackend::Postgres => {
            let fmt = match trunc {
                Trunc::Day => "YYYY-MM-DD",
                Trunc::Month => "YYYY-MM",
            };
            Ok(Expr::cust(format!("to_char(\"{table}\".\"{col}\" AT TIME ZONE 'UTC', '{fmt}')")))
        }
        other => {
            Err(ServiceError::Internal(format!("statistics are not implemented for {other:?}")))
        }
    }
}

/// The nearest-rank `pct` percentile of weighted values sorted ascending:
/// the value at rank `ceil(pct / 100 × total)` (1-based, at least 1), i.e.
/// the smallest value with at least `pct`% of the observations at or below
/// it. Always one of the observed values, so no interpolation can make two
/// backends differ.
pub fn nearest_rank(sorted: &[(i64, u64)], pct: u64) -> Option<i64> {
    let total: u64 = sorted.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let rank = (pct.saturating_mul(total)).div_ceil(100).max(1);
    let mut seen = 0;
    for (value, weight) in sorted {
        seen += weight;
        if seen >= rank {
            return Some(*value);
        }
    }
    sorted.last().map(|(v, _)| *v)
}

fn parse_day(s: &str) -> Result<NaiveDate, ServiceError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| ServiceError::Internal(format!("bad day {s:?}: {e}")))
}

/// Working days from raising to resolution of the cases resolved in the
/// period: the working days after the raised date up to and including the
/// resolved date (UTC dates; weekends and the partnership's bank holidays
/// excluded; 0 when resolved the day it was raised).
pub async fn time_to_resolution(
    db: &impl ConnectionTrait,
    b: &Board,
) -> Result<Resolution, ServiceError> {
    let backend = db.get_database_backend();
    let raised_on = utc_text(backend, case::Column::RaisedAt, Trunc::Day)?;
    let resolved_on = utc_text(backend, case::Column::UpdatedAt, Trunc::Day)?;
    // One row per distinct (raised date, resolved date), however many cases.
    let rows: Vec<(String, String, i64)> = case::Entity::find()
        .select_only()
        .column_as(raised_on.clone(), "raised_on")
        .column_as(resolved_on.clone(), "resolved_on")
        .column_as(case::Column::Id.count(), "n")
        .filter(resolved_in(b))
        .group_by(raised_on)
        .group_by(resolved_on)
        .into_tuple()
        .all(db)
        .await?;
    let calendar =
        Calendar::for_id(&b.calendar).map_err(|e| ServiceError::Internal(e.to_string()))?;
    let mut values = Vec::with_capacity(rows.len());
    for (raised, resolved, count) in rows {
        let days = calendar
            .working_days_between(parse_day(&raised)?, parse_day(&resolved)?)
            .map_err(|e| {
                ServiceError::bad_input(
                    "from",
                    format!("working days are only counted within the calendar's years: {e}"),
                )
            })?;
        values.push((days, n(count)));
    }
    values.sort_unstable();
    Ok(Resolution {
        count: values.iter().map(|(_, w)| w).sum(),
        median: nearest_rank(&values, 50),
        p90: nearest_rank(&values, 90),
    })
}

/// The months `[from, to)` touches, as `YYYY-MM`, oldest first.
pub fn months_of(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<String>, ServiceError> {
    let mut month = from.date_naive().with_day(1);
    let last = (to - chrono::TimeDelta::microseconds(1)).date_naive();
    let mut out = Vec::new();
    while let Some(m) = month
        && m <= last
    {
        if out.len() >= MAX_TREND_MONTHS {
            return Err(ServiceError::bad_input(
                "to",
                format!("a monthly trend covers at most {MAX_TREND_MONTHS} months"),
            ));
        }
        out.push(format!("{:04}-{:02}", m.year(), m.month()));
        month = m.checked_add_months(Months::new(1));
    }
    Ok(out)
}

async fn per_month(
    db: &impl ConnectionTrait,
    column: case::Column,
    cond: Condition,
) -> Result<HashMap<String, u64>, ServiceError> {
    let month = utc_text(db.get_database_backend(), column, Trunc::Month)?;
    let rows: Vec<(String, i64)> = case::Entity::find()
        .select_only()
        .column_as(month.clone(), "month")
        .column_as(case::Column::Id.count(), "n")
        .filter(cond)
        .group_by(month)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(m, c)| (m, n(c))).collect())
}

/// Cases raised and resolved per month of the period, every month listed
/// (zeros included), oldest first. A partial first or last month counts
/// only its part inside the period.
pub async fn monthly_trend(
    db: &impl ConnectionTrait,
    b: &Board,
) -> Result<Vec<Month>, ServiceError> {
    let months = months_of(b.from, b.to)?;
    let raised = per_month(db, case::Column::RaisedAt, raised_in(b)).await?;
    let resolved = per_month(db, case::Column::UpdatedAt, resolved_in(b)).await?;
    Ok(months
        .into_iter()
        .map(|m| Month {
            raised: raised.get(&m).copied().unwrap_or(0),
            resolved: resolved.get(&m).copied().unwrap_or(0),
            month: m,
        })
        .collect())
}

/// The feedback the agencies gave on the partnership's cases closed
/// (resolved or withdrawn) in the period. Counts only: comments are free
/// text and never appear.
pub async fn feedback_summary(
    db: &impl ConnectionTrait,
    b: &Board,
) -> Result<FeedbackSummary, ServiceError> {
    let table = feedback::Entity.as_str();
    let count_true = |col: feedback::Column| {
        // A boolean column is truthy on both backends (SQLite keeps 0/1).
        Expr::cust(format!("COUNT(CASE WHEN \"{table}\".\"{}\" THEN 1 END)", col.as_str()))
    };
    let closed = partnership_is(b)
        .add(case::Column::Status.ne(CaseStatus::Open.as_str()))
        .add(case::Column::UpdatedAt.gte(b.from))
        .add(case::Column::UpdatedAt.lt(b.to));
    let row: Option<(i64, i64, i64, Option<i64>, i64)> = feedback::Entity::find()
        .select_only()
        .column_as(feedback::Column::Id.count(), "n")
        .column_as(count_true(feedback::Column::Resolved), "resolved_yes")
        .column_as(count_true(feedback::Column::WouldUseAgain), "again_yes")
        .column_as(feedback::Column::FeltDurationRating.sum(), "rating_sum")
        .column_as(feedback::Column::FeltDurationRating.count(), "rating_n")
        .join(JoinType::InnerJoin, feedback::Relation::Case.def())
        .filter(closed)
        .into_tuple()
        .one(db)
        .await?;
    let Some((count, resolved_yes, again_yes, rating_sum, rating_n)) = row else {
        return Ok(FeedbackSummary::default());
    };
    #[allow(clippy::cast_precision_loss)]
    let average = (rating_n > 0).then(|| rating_sum.unwrap_or(0) as f64 / rating_n as f64);
    Ok(FeedbackSummary {
        count: n(count),
        resolved_yes: n(resolved_yes),
        would_use_again_yes: n(again_yes),
        average_felt_duration: average,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        // 1, 3, 3, 5, 15, 19 as weighted values.
        let v = [(1, 1), (3, 2), (5, 1), (15, 1), (19, 1)];
        assert_eq!(nearest_rank(&v, 50), Some(3), "rank ceil(3.0) = 3");
        assert_eq!(nearest_rank(&v, 90), Some(19), "rank ceil(5.4) = 6");
        assert_eq!(nearest_rank(&v, 0), Some(1), "rank at least 1");
        assert_eq!(nearest_rank(&v, 100), Some(19));
        assert_eq!(nearest_rank(&[(7, 1)], 50), Some(7));
        assert_eq!(nearest_rank(&[(1, 1), (2, 1)], 50), Some(1), "no interpolation");
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[(4, 0)], 50), None);
        // Ten values 1..=10: p90 is the 9th.
        let ten: Vec<(i64, u64)> = (1..=10).map(|x| (x, 1)).collect();
        assert_eq!(nearest_rank(&ten, 90), Some(9));
        assert_eq!(nearest_rank(&ten, 50), Some(5));
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn months_of_a_period() {
        assert_eq!(
            months_of(t("2025-04-01T00:00:00Z"), t("2025-07-01T00:00:00Z")).unwrap(),
            ["2025-04", "2025-05", "2025-06"],
            "the end is excluded"
        );
        assert_eq!(
            months_of(t("2024-12-31T23:00:00Z"), t("2025-01-01T00:00:01Z")).unwrap(),
            ["2024-12", "2025-01"]
        );
        assert_eq!(
            months_of(t("2025-02-10T00:00:00Z"), t("2025-02-11T00:00:00Z")).unwrap(),
            ["2025-02"]
        );
        assert!(months_of(t("1900-01-01T00:00:00Z"), t("2100-01-01T00:00:00Z")).is_err());
    }

    #[test]
    fn day_and_month_sql_per_backend() {
        use sea_orm::sea_query::{PostgresQueryBuilder, Query, SqliteQueryBuilder};
        let sql = |backend, trunc| {
            let e = utc_text(backend, case::Column::RaisedAt, trunc).unwrap();
            let q = Query::select().expr(e).to_owned();
            match backend {
                DbBackend::Sqlite => q.to_string(SqliteQueryBuilder),
                _ => q.to_string(PostgresQueryBuilder),
            }
        };
        assert_eq!(
            sql(DbBackend::Sqlite, Trunc::Day),
            r#"SELECT strftime('%Y-%m-%d', "case"."raised_at")"#
        );
        assert_eq!(
            sql(DbBackend::Postgres, Trunc::Month),
            r#"SELECT to_char("case"."raised_at" AT TIME ZONE 'UTC', 'YYYY-MM')"#
        );
        assert!(utc_text(DbBackend::MySql, case::Column::RaisedAt, Trunc::Day).is_err());
    }
}

//! Working-day calendars: which days count towards a protocol stage's time
//! limit, per nation.
//!
//! A working day is a Monday to Friday that is not a bank holiday of the
//! partnership's nation: England and Wales (one list for both), Scotland or
//! Northern Ireland ([`Nation`]).
//!
//! # Where the bank holidays come from
//!
//! - **Published years**: GOV.UK's list, `calendars/bank-holidays.json`, in
//!   GOV.UK's own format (the file <https://www.gov.uk/bank-holidays.json>
//!   serves: the three divisions in one object), embedded at compile time.
//!   Refreshing it is downloading that file over this path and rebuilding,
//!   or pointing `BANK_HOLIDAYS_FILE` at a newer download, which
//!   [`install`] reads at start instead (its years replace the embedded
//!   ones; embedded years it no longer lists stay).
//! - **Later years**, up to [`LAST_COMPUTED_YEAR`]: the statutory rules and
//!   the usual proclamations ([`computed_holidays`]), with substitute days.
//!   A published year always wins over the rules, since a proclamation can
//!   move or add a day (2020's VE day, 2022's jubilee and state funeral,
//!   2023's coronation).
//!
//! Every calendar covers a stated range of years ([`Calendar::covered_years`]):
//! from the first published year to the horizon. The deadline functions
//! return [`CalendarError::OutOfRange`] for dates outside it rather than
//! pretending those years have no bank holidays. Nothing is fetched at run
//! time.
//!
//! # Why no crate
//!
//! Hand-written on purpose, after evaluating the candidates (2026-11):
//! - `govuk-bank-holidays` 0.3 ships an offline GOV.UK list (2012-2028),
//!   but depends unconditionally on `reqwest` (TLS, hyper, tokio) for its
//!   download path: far too heavy for pure domain code.
//! - `business` 0.1 is a single "experimental" release with no holiday
//!   data at all, and pulls in the deprecated `serde_yaml`; its arithmetic
//!   is the few lines below.
//! - `bdays` 0.1 has Brazilian, US and German calendars, none for the UK.
//!
//! The Easter computus is a dozen lines of arithmetic, tested against
//! published Good Fridays and an independent table, so it takes no crate
//! either.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::OnceLock;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use serde::Deserialize;

/// GOV.UK's list of bank holidays, as embedded; see the module doc.
const EMBEDDED_LIST: &str = include_str!("calendars/bank-holidays.json");

/// The last year whose bank holidays the computed rules answer for. Past it
/// a date is [`CalendarError::OutOfRange`]: the rules are a forecast, and
/// seventy-odd years ahead is as far as a deadline can sensibly reach.
pub const LAST_COMPUTED_YEAR: i32 = 2099;

/// A nation whose bank holidays a [`Calendar`] knows. The variants are
/// GOV.UK's three divisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nation {
    /// England and Wales, which share one list of bank holidays.
    EnglandAndWales,
    /// Scotland.
    Scotland,
    /// Northern Ireland.
    NorthernIreland,
}

impl Nation {
    /// Every nation with a calendar.
    pub const ALL: [Nation; 3] =
        [Nation::EnglandAndWales, Nation::Scotland, Nation::NorthernIreland];

    /// The stable string id of this nation's calendar, GOV.UK's division
    /// name: `"england-and-wales"`, `"scotland"` or `"northern-ireland"`.
    pub fn id(self) -> &'static str {
        match self {
            Nation::EnglandAndWales => "england-and-wales",
            Nation::Scotland => "scotland",
            Nation::NorthernIreland => "northern-ireland",
        }
    }

    /// The nation whose calendar id is `id`.
    ///
    /// # Errors
    /// [`CalendarError::UnknownCalendar`] when no nation has that id.
    pub fn from_id(id: &str) -> Result<Nation, CalendarError> {
        Nation::ALL
            .into_iter()
            .find(|n| n.id() == id)
            .ok_or_else(|| CalendarError::UnknownCalendar(id.to_owned()))
    }

    /// This nation's calendar.
    ///
    /// # Errors
    /// [`CalendarError::InvalidList`] if the embedded list does not parse (a
    /// bug, caught by the tests).
    pub fn calendar(self) -> Result<&'static Calendar, CalendarError> {
        Ok(calendars()?.get(self))
    }

    fn index(self) -> usize {
        match self {
            Nation::EnglandAndWales => 0,
            Nation::Scotland => 1,
            Nation::NorthernIreland => 2,
        }
    }
}

impl fmt::Display for Nation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Errors from looking up a calendar or counting working days.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// No calendar has this id.
    #[error("unknown calendar {0:?}")]
    UnknownCalendar(String),
    /// A date falls in a year whose bank holidays the calendar does not know.
    #[error(
        "{date} is outside the years covered by the calendar ({}..={})",
        .covered.start(),
        .covered.end()
    )]
    OutOfRange {
        /// The first date met that is not covered.
        date: NaiveDate,
        /// The years the calendar covers.
        covered: RangeInclusive<i32>,
    },
    /// A list of bank holidays in GOV.UK's format is malformed.
    #[error("invalid list of bank holidays: {0}")]
    InvalidList(String),
    /// [`install`] was called after the calendars were first used (or twice).
    #[error("the bank holidays were already loaded; a list can only be installed at start")]
    AlreadyLoaded,
    /// A partnership names one calendar and its protocol another.
    #[error(
        "partnership {partnership:?} names the calendar {calendar:?}, but its protocol {protocol:?} counts working days with {protocol_calendar:?}"
    )]
    Mismatch {
        /// The partnership's code.
        partnership: String,
        /// The partnership's calendar id.
        calendar: String,
        /// The adopted protocol's id.
        protocol: String,
        /// The protocol's calendar id.
        protocol_calendar: String,
    },
}

/// Checks a partnership's calendar against its adopted protocol's: both must
/// name the same known nation, because deadlines are counted with the
/// protocol's calendar and statistics with the partnership's. Loaders of the
/// directory call this for every partnership they write.
///
/// # Errors
/// [`CalendarError::UnknownCalendar`] for an unknown id;
/// [`CalendarError::Mismatch`] when the two differ.
pub fn check_partnership_calendar(
    partnership: &str,
    calendar: &str,
    protocol: &str,
    protocol_calendar: &str,
) -> Result<Nation, CalendarError> {
    let nation = Nation::from_id(calendar)?;
    if calendar != protocol_calendar {
        return Err(CalendarError::Mismatch {
            partnership: partnership.to_owned(),
            calendar: calendar.to_owned(),
            protocol: protocol.to_owned(),
            protocol_calendar: protocol_calendar.to_owned(),
        });
    }
    Ok(nation)
}

/// The calendars in use: the embedded list, unless [`install`] put another
/// in place at start. Kept as a `Result` so that a bad embedded list
/// surfaces as an error at the call site instead of a panic.
static CALENDARS: OnceLock<Result<Calendars, String>> = OnceLock::new();

fn calendars() -> Result<&'static Calendars, CalendarError> {
    CALENDARS
        .get_or_init(|| Calendars::from_lists(None).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|reason| CalendarError::InvalidList(format!("embedded list: {reason}")))
}

/// Puts the calendars built from `list` (GOV.UK's `bank-holidays.json`
/// format) in place of the embedded list, for the life of the process. Its
/// years replace the embedded list's; embedded years it does not list stay.
/// Call it at start, before any calendar is used.
///
/// # Errors
/// [`CalendarError::InvalidList`] naming what is wrong with `list`;
/// [`CalendarError::AlreadyLoaded`] when the calendars are already in use.
pub fn install(list: &str) -> Result<&'static Calendars, CalendarError> {
    let built = Calendars::from_lists(Some(list))?;
    CALENDARS.set(Ok(built)).map_err(|_| CalendarError::AlreadyLoaded)?;
    calendars()
}

/// The calendars of every nation, built from one list.
#[derive(Debug)]
pub struct Calendars([Calendar; 3]);

impl Calendars {
    /// The calendar of `nation`.
    pub fn get(&self, nation: Nation) -> &Calendar {
        &self.0[nation.index()]
    }

    /// Builds the calendars from the embedded list, with `newer` (if any)
    /// replacing the years it lists.
    fn from_lists(newer: Option<&str>) -> Result<Calendars, CalendarError> {
        let embedded = parse_list(EMBEDDED_LIST)
            .map_err(|e| CalendarError::InvalidList(format!("embedded list: {e}")))?;
        let newer = newer.map(parse_list).transpose().map_err(CalendarError::InvalidList)?;
        let [ew, sc, ni] = embedded;
        let mut merged =
            [(Nation::EnglandAndWales, ew), (Nation::Scotland, sc), (Nation::NorthernIreland, ni)];
        if let Some(newer) = newer {
            for ((_, old), new) in merged.iter_mut().zip(newer) {
                old.holidays.retain(|d, _| !new.years.contains(&d.year()));
                old.years.retain(|y| !new.years.contains(y));
                old.holidays.extend(new.holidays);
                old.years.extend(new.years);
            }
        }
        let built = merged.map(|(nation, published)| Calendar::build(nation, published));
        let [ew, sc, ni] = built;
        Ok(Calendars([ew?, sc?, ni?]))
    }
}

/// One nation's working-day calendar: weekends and that nation's bank
/// holidays are not working days.
#[derive(Debug)]
pub struct Calendar {
    nation: Nation,
    covered: RangeInclusive<i32>,
    published: BTreeSet<i32>,
    holidays: BTreeMap<NaiveDate, String>,
}

impl Calendar {
    /// The calendar with id `id`, e.g. `"england-and-wales"`.
    ///
    /// # Errors
    /// [`CalendarError::UnknownCalendar`] for an unknown id;
    /// [`CalendarError::InvalidList`] if the embedded list is malformed.
    pub fn for_id(id: &str) -> Result<&'static Calendar, CalendarError> {
        Nation::from_id(id)?.calendar()
    }

    /// This calendar's id, e.g. `"england-and-wales"`.
    pub fn id(&self) -> &str {
        self.nation.id()
    }

    /// The nation this calendar belongs to.
    pub fn nation(&self) -> Nation {
        self.nation
    }

    /// The years whose bank holidays this calendar knows: from the first
    /// year of the published list to [`LAST_COMPUTED_YEAR`] (or the list's
    /// last year, if later).
    pub fn covered_years(&self) -> RangeInclusive<i32> {
        self.covered.clone()
    }

    /// The years whose bank holidays come from the published list; the
    /// other covered years are computed from the rules.
    pub fn published_years(&self) -> impl Iterator<Item = i32> + '_ {
        self.published.iter().copied()
    }

    /// Whether `d` falls in a covered year.
    pub fn covers(&self, d: NaiveDate) -> bool {
        self.covered.contains(&d.year())
    }

    /// Whether `d` is a bank holiday.
    ///
    /// Outside [`Calendar::covered_years`] this is always `false` because
    /// the holidays are unknown there; use [`Calendar::covers`] (or the
    /// fallible deadline functions) where that matters.
    pub fn is_bank_holiday(&self, d: NaiveDate) -> bool {
        self.holidays.contains_key(&d)
    }

    /// The name of the bank holiday on `d`, if it is one, e.g. "Boxing Day
    /// (substitute day)".
    pub fn bank_holiday_name(&self, d: NaiveDate) -> Option<&str> {
        self.holidays.get(&d).map(String::as_str)
    }

    /// The bank holidays in covered years, published and computed, in date
    /// order.
    pub fn bank_holidays(&self) -> impl Iterator<Item = (NaiveDate, &str)> + '_ {
        self.holidays.iter().map(|(d, name)| (*d, name.as_str()))
    }

    /// Whether `d` is a working day: Monday to Friday and not a bank holiday.
    ///
    /// Outside [`Calendar::covered_years`] only weekends are excluded (bank
    /// holidays are unknown there); [`Calendar::try_is_working_day`] returns
    /// an error instead.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.is_bank_holiday(d)
    }

    /// Like [`Calendar::is_working_day`], but refuses uncovered dates.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when `d` is not in a covered year.
    pub fn try_is_working_day(&self, d: NaiveDate) -> Result<bool, CalendarError> {
        self.ensure_covered(d)?;
        Ok(self.is_working_day(d))
    }

    /// The date that is `n` working days after `start`.
    ///
    /// Convention: `start` itself is never counted; the result is the
    /// `n`-th working day strictly after `start`. So a Friday + 1 is the
    /// following Monday (if that is not a bank holiday), whether or not the
    /// start is itself a working day. For `n = 0` the result is `start` if
    /// it is a working day, else the next working day after it.
    ///
    /// A 3-working-day limit starting Thursday 2025-05-01 ends on Wednesday
    /// 2025-05-07: Friday 2, (weekend, bank holiday Monday 5), Tuesday 6,
    /// Wednesday 7.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when `start` or any day up to the
    /// result is outside [`Calendar::covered_years`].
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        self.ensure_covered(start)?;
        if n == 0 && self.is_working_day(start) {
            return Ok(start);
        }
        // For n = 0 on a non-working day we want the first working day after
        // start, which is exactly what counting to 1 gives.
        let target = n.max(1);
        let mut day = start;
        let mut counted = 0;
        // Terminates: every step either counts a day or moves towards the
        // end of the covered range, past which `next_covered` fails.
        while counted < target {
            day = self.next_covered(day)?;
            if self.is_working_day(day) {
                counted += 1;
            }
        }
        Ok(day)
    }

    /// The number of working days after `from` up to and including `to`:
    /// the days `d` with `from < d <= to`.
    ///
    /// When `to` is before `from` the result is negative:
    /// `working_days_between(a, b) == -working_days_between(b, a)`.
    /// It is zero when they are equal. For a working day `from`,
    /// `working_days_between(from, add_working_days(from, n)?) == n`.
    ///
    /// # Errors
    /// [`CalendarError::OutOfRange`] when either date is outside
    /// [`Calendar::covered_years`].
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<i64, CalendarError> {
        self.ensure_covered(from)?;
        self.ensure_covered(to)?;
        let (low, high, sign) = if from <= to { (from, to, 1) } else { (to, from, -1) };
        // Both ends are covered, so every day in between is too; the span is
        // a case's weeks in practice and at most the covered years (some
        // 30,000 days), so a plain walk is cheap and obviously right.
        let count = low
            .iter_days()
            .skip(1)
            .take_while(|d| *d <= high)
            .filter(|d| self.is_working_day(*d))
            .count();
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        Ok(sign * count)
    }

    fn ensure_covered(&self, d: NaiveDate) -> Result<(), CalendarError> {
        if self.covers(d) { Ok(()) } else { Err(self.out_of_range(d)) }
    }

    fn out_of_range(&self, date: NaiveDate) -> CalendarError {
        CalendarError::OutOfRange { date, covered: self.covered_years() }
    }

    /// The day after `d`, if it is still covered.
    fn next_covered(&self, d: NaiveDate) -> Result<NaiveDate, CalendarError> {
        match d.succ_opt() {
            Some(next) if self.covers(next) => Ok(next),
            Some(next) => Err(self.out_of_range(next)),
            // Past chrono's last date: report the last representable one.
            None => Err(self.out_of_range(d)),
        }
    }

    /// The calendar of `nation` from its published years, with every other
    /// covered year computed from the rules.
    fn build(nation: Nation, published: Published) -> Result<Calendar, CalendarError> {
        let Published { years, mut holidays } = published;
        let (Some(&first), Some(&last)) = (years.first(), years.last()) else {
            return Err(CalendarError::InvalidList(format!("{nation}: lists no bank holidays")));
        };
        let covered = first..=last.max(LAST_COMPUTED_YEAR);
        for year in covered.clone().filter(|y| !years.contains(y)) {
            let computed = computed_holidays(nation, year).ok_or_else(|| {
                CalendarError::InvalidList(format!("{nation}: cannot compute the year {year}"))
            })?;
            holidays.extend(computed);
        }
        Ok(Calendar { nation, covered, published: years, holidays })
    }
}

/// One division of a published list: the years it covers and their bank
/// holidays.
#[derive(Debug)]
struct Published {
    years: BTreeSet<i32>,
    holidays: BTreeMap<NaiveDate, String>,
}

/// A division of GOV.UK's `bank-holidays.json`. Fields GOV.UK adds later
/// (like today's `bunting`) are ignored.
#[derive(Debug, Deserialize)]
struct GovukDivision {
    division: String,
    events: Vec<GovukEvent>,
}

/// One bank holiday in GOV.UK's format; `notes` is `"Substitute day"` on a
/// substitute.
#[derive(Debug, Deserialize)]
struct GovukEvent {
    title: String,
    date: String,
    #[serde(default)]
    notes: String,
}

/// Parses a list in GOV.UK's format into its three divisions, in
/// [`Nation::ALL`] order. Errors name the division and the event (1-based).
fn parse_list(text: &str) -> Result<[Published; 3], String> {
    let mut divisions: BTreeMap<String, GovukDivision> = serde_json::from_str(text)
        .map_err(|e| format!("not in GOV.UK's bank-holidays.json format: {e}"))?;
    if let Some(unknown) = divisions.keys().find(|k| Nation::from_id(k).is_err()) {
        return Err(format!(
            "unknown division {unknown:?} (GOV.UK's are england-and-wales, scotland and northern-ireland)"
        ));
    }
    let mut division = |nation: Nation| -> Result<Published, String> {
        let division = divisions
            .remove(nation.id())
            .ok_or_else(|| format!("no {:?} division", nation.id()))?;
        parse_division(nation, division).map_err(|e| format!("{nation}: {e}"))
    };
    Ok([
        division(Nation::EnglandAndWales)?,
        division(Nation::Scotland)?,
        division(Nation::NorthernIreland)?,
    ])
}

fn parse_division(nation: Nation, division: GovukDivision) -> Result<Published, String> {
    if division.division != nation.id() {
        return Err(format!("its `division` says {:?}", division.division));
    }
    let mut holidays = BTreeMap::new();
    for (index, event) in division.events.into_iter().enumerate() {
        let n = index + 1;
        let date = NaiveDate::parse_from_str(&event.date, "%Y-%m-%d")
            .map_err(|e| format!("event {n}: bad date {:?}: {e}", event.date))?;
        let title = event.title.trim();
        if title.is_empty() {
            return Err(format!("event {n} ({date}) has no title"));
        }
        // GOV.UK lists a holiday that falls on a weekend on its substitute
        // weekday, so a weekend date can only be a mistake.
        if is_weekend(date) {
            return Err(format!("event {n}: {date} is a {}", date.weekday()));
        }
        let notes = event.notes.trim();
        let name = if notes.is_empty() {
            title.to_owned()
        } else {
            format!("{title} ({})", notes.to_lowercase())
        };
        if holidays.insert(date, name).is_some() {
            return Err(format!("event {n}: {date} is listed twice"));
        }
    }
    let (Some((first, _)), Some((last, _))) =
        (holidays.first_key_value(), holidays.last_key_value())
    else {
        return Err("lists no bank holidays".to_owned());
    };
    let years = first.year()..=last.year();
    // Every year has a bank holiday in January (New Year's Day or its
    // substitute, 1 to 4 January) and in December (Christmas Day): a year
    // without one is a truncated or partial list, whose missing holidays
    // would silently count as working days.
    for year in years.clone() {
        for (month, holiday) in [(1, "January (New Year's Day)"), (12, "December (Christmas Day)")]
        {
            if !holidays.keys().any(|d| d.year() == year && d.month() == month) {
                return Err(format!(
                    "{year} lists no holiday in {holiday}: the list is incomplete"
                ));
            }
        }
    }
    Ok(Published { years: years.collect(), holidays })
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The bank holidays of `nation` in `year` by the rules, used for the
/// covered years the published list does not reach:
///
/// - all: New Year's Day (1 January), Good Friday, early May (first Monday
///   of May), spring (last Monday of May), Christmas Day and Boxing Day;
/// - England and Wales, Northern Ireland: Easter Monday; summer on the last
///   Monday of August;
/// - Scotland: 2 January, St Andrew's Day (30 November); summer on the first
///   Monday of August; no Easter Monday;
/// - Northern Ireland: St Patrick's Day (17 March), Battle of the Boyne
///   (12 July).
///
/// A day-of-the-month holiday that falls on a weekend is taken on the first
/// weekday after it that is not already a bank holiday (so Christmas on a
/// Saturday gives Monday 27 and Boxing Day Tuesday 28; in Scotland, New
/// Year's Day on a Sunday gives Tuesday 3, 2 January keeping Monday 2).
///
/// `None` only for a year chrono cannot represent.
pub fn computed_holidays(nation: Nation, year: i32) -> Option<Vec<(NaiveDate, String)>> {
    let ymd = |month, day| NaiveDate::from_ymd_opt(year, month, day);
    let first_monday = |month| NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, 1);
    let last_monday = |month| {
        NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, 5)
            .or_else(|| NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, 4))
    };
    let scotland = nation == Nation::Scotland;
    let northern_ireland = nation == Nation::NorthernIreland;

    let easter = easter_sunday(year)?;
    let mut days: Vec<(NaiveDate, String)> =
        vec![(easter.checked_sub_days(Days::new(2))?, "Good Friday".to_owned())];
    if !scotland {
        days.push((easter.checked_add_days(Days::new(1))?, "Easter Monday".to_owned()));
    }
    days.push((first_monday(5)?, "Early May bank holiday".to_owned()));
    days.push((last_monday(5)?, "Spring bank holiday".to_owned()));
    let summer = if scotland { first_monday(8)? } else { last_monday(8)? };
    days.push((summer, "Summer bank holiday".to_owned()));

    // Days of the month, in date order (the order substitutes are taken in).
    let mut fixed = vec![(ymd(1, 1)?, "New Year’s Day")];
    if scotland {
        fixed.push((ymd(1, 2)?, "2nd January"));
    }
    if northern_ireland {
        fixed.push((ymd(3, 17)?, "St Patrick’s Day"));
        fixed.push((ymd(7, 12)?, "Battle of the Boyne (Orangemen’s Day)"));
    }
    if scotland {
        fixed.push((ymd(11, 30)?, "St Andrew’s Day"));
    }
    fixed.push((ymd(12, 25)?, "Christmas Day"));
    fixed.push((ymd(12, 26)?, "Boxing Day"));
    // Those on weekdays keep their day; only then do the others take the
    // first free weekday after theirs.
    let (on_weekdays, on_weekends): (Vec<_>, Vec<_>) =
        fixed.into_iter().partition(|(d, _)| !is_weekend(*d));
    days.extend(on_weekdays.into_iter().map(|(d, name)| (d, name.to_owned())));
    for (date, name) in on_weekends {
        let mut day = date;
        while is_weekend(day) || days.iter().any(|(taken, _)| *taken == day) {
            day = day.succ_opt()?;
        }
        days.push((day, format!("{name} (substitute day)")));
    }
    days.sort();
    Some(days)
}

/// Easter Sunday of `year` in the Gregorian calendar: the anonymous
/// algorithm (Meeus/Jones/Butcher). `None` only for a year chrono cannot
/// represent.
fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let h = (19 * a + b - b / 4 - (b - (b + 8) / 25 + 1) / 3 + 15).rem_euclid(30);
    let l = (32 + 2 * (b % 4) + 2 * (c / 4) - h - c % 4).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const EW: &str = "england-and-wales";
    const SC: &str = "scotland";
    const NI: &str = "northern-ireland";

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// What a row asks a calendar (or the registry).
    enum Op {
        /// `add_working_days(start, n)`.
        Add(&'static str, u32),
        /// `working_days_between(from, to)`.
        Between(&'static str, &'static str),
        /// `is_working_day(date)`.
        Working(&'static str),
        /// `is_bank_holiday(date)`.
        Holiday(&'static str),
        /// `bank_holiday_name(date)`, `""` for none.
        Name(&'static str),
        /// `Calendar::for_id(id)`, answering with the calendar's id.
        Lookup(&'static str),
    }

    /// What the row expects back.
    enum Want {
        Date(&'static str),
        Days(i64),
        Bool(bool),
        Text(&'static str),
        /// `OutOfRange` naming this date.
        OutOfRange(&'static str),
        /// `UnknownCalendar` naming this id.
        UnknownCalendar(&'static str),
    }

    /// Asks the calendar `id` the row's question.
    #[track_caller]
    fn check(id: &str, name: &str, op: Op, want: Want) {
        let cal = Calendar::for_id(id).unwrap();
        // Answers are compared as text so that one assertion covers every
        // kind of row.
        let got: Result<String, CalendarError> = match op {
            Op::Add(start, n) => cal.add_working_days(d(start), n).map(|x| x.to_string()),
            Op::Between(from, to) => {
                cal.working_days_between(d(from), d(to)).map(|x| x.to_string())
            }
            Op::Working(date) => Ok(cal.is_working_day(d(date)).to_string()),
            Op::Holiday(date) => Ok(cal.is_bank_holiday(d(date)).to_string()),
            Op::Name(date) => Ok(cal.bank_holiday_name(d(date)).unwrap_or_default().to_owned()),
            Op::Lookup(id) => Calendar::for_id(id).map(|c| c.id().to_owned()),
        };
        let want: Result<String, CalendarError> = match want {
            Want::Date(s) | Want::Text(s) => Ok(s.to_owned()),
            Want::Days(n) => Ok(n.to_string()),
            Want::Bool(b) => Ok(b.to_string()),
            Want::OutOfRange(date) => {
                Err(CalendarError::OutOfRange { date: d(date), covered: 2018..=2099 })
            }
            Want::UnknownCalendar(id) => Err(CalendarError::UnknownCalendar(id.to_owned())),
        };
        assert_eq!(got, want, "{id}: row {name:?}");
    }

    // One row per line reads as a table; rustfmt would split each call.
    #[rustfmt::skip]
    #[test]
    fn england_and_wales_rows() {
        use Op::*;
        use Want::*;
        // Ordinary weeks.
        check(EW, "tue + 1 => wed", Add("2025-03-11", 1), Date("2025-03-12"));
        check(EW, "mon + 4 => fri", Add("2025-03-10", 4), Date("2025-03-14"));
        check(EW, "fri + 1 => mon", Add("2025-03-14", 1), Date("2025-03-17"));
        check(EW, "thu + 5 => next thu", Add("2025-03-13", 5), Date("2025-03-20"));
        check(EW, "mon + 10 => fortnight", Add("2025-03-03", 10), Date("2025-03-17"));
        check(EW, "a plain wednesday", Working("2025-03-12"), Bool(true));
        // Weekends as start dates: the start is not counted either way.
        check(EW, "sat is not working", Working("2025-03-15"), Bool(false));
        check(EW, "sat + 1 => mon", Add("2025-03-15", 1), Date("2025-03-17"));
        check(EW, "sun + 1 => mon", Add("2025-03-16", 1), Date("2025-03-17"));
        check(EW, "sat + 2 => tue", Add("2025-03-15", 2), Date("2025-03-18"));
        // n = 0.
        check(EW, "0 on a weekday => itself", Add("2025-03-12", 0), Date("2025-03-12"));
        check(EW, "0 on a sat => mon", Add("2025-03-15", 0), Date("2025-03-17"));
        check(EW, "0 on bank holiday mon => tue", Add("2025-05-05", 0), Date("2025-05-06"));
        check(EW, "0 on good friday => tue", Add("2025-04-18", 0), Date("2025-04-22"));
        // Christmas, Boxing Day and their substitutes.
        check(EW, "xmas eve 2021 + 1 => 29th", Add("2021-12-24", 1), Date("2021-12-29"));
        check(EW, "xmas eve 2024 + 1 => 27th", Add("2024-12-24", 1), Date("2024-12-27"));
        check(EW, "fri 2020-12-24 + 1 => tue 29th", Add("2020-12-24", 1), Date("2020-12-29"));
        check(EW, "fri 2022-12-23 + 1 => wed 28th", Add("2022-12-23", 1), Date("2022-12-28"));
        check(EW, "2022-12-30 + 1 => 2023-01-03", Add("2022-12-30", 1), Date("2023-01-03"));
        check(EW, "2021-12-31 + 1 => 2022-01-04", Add("2021-12-31", 1), Date("2022-01-04"));
        check(EW, "2021-12-27 is a substitute", Holiday("2021-12-27"), Bool(true));
        check(EW, "its name", Name("2021-12-27"), Text("Christmas Day (substitute day)"));
        check(EW, "sat 2021-12-25 is no holiday", Holiday("2021-12-25"), Bool(false));
        check(EW, "2026-12-28 boxing substitute", Working("2026-12-28"), Bool(false));
        // Easter.
        check(EW, "thu before easter + 1 => tue", Add("2025-04-17", 1), Date("2025-04-22"));
        check(EW, "good friday 2024", Working("2024-03-29"), Bool(false));
        check(EW, "easter monday 2024", Working("2024-04-01"), Bool(false));
        check(EW, "easter monday 2019 + 1 => tue", Add("2019-04-22", 1), Date("2019-04-23"));
        // May bank holidays.
        check(EW, "rotherham: thu 2025-05-01 + 3", Add("2025-05-01", 3), Date("2025-05-07"));
        check(EW, "early may 2025 is mon 5th", Holiday("2025-05-05"), Bool(true));
        check(EW, "2020 early may moved to VE day", Working("2020-05-08"), Bool(false));
        check(EW, "2020-05-04 not a holiday", Working("2020-05-04"), Bool(true));
        check(EW, "fri before spring 2025 + 1", Add("2025-05-23", 1), Date("2025-05-27"));
        check(EW, "spring 2026", Holiday("2026-05-25"), Bool(true));
        // One-offs of 2022 and 2023.
        check(EW, "2022 jubilee: wed + 1 => mon", Add("2022-06-01", 1), Date("2022-06-06"));
        check(EW, "2022-05-30 not a holiday", Working("2022-05-30"), Bool(true));
        check(EW, "state funeral: fri + 1 => tue", Add("2022-09-16", 1), Date("2022-09-20"));
        check(EW, "coronation: fri + 1 => tue", Add("2023-05-05", 1), Date("2023-05-09"));
        check(EW, "coronation month", Between("2023-04-28", "2023-05-31"), Days(20));
        check(EW, "coronation's name", Name("2023-05-08"), Text("Bank holiday for the coronation of King Charles III"));
        // August: the last Monday.
        check(EW, "summer 2025: fri + 1 => tue", Add("2025-08-22", 1), Date("2025-08-26"));
        check(EW, "first monday of august 2025 works", Working("2025-08-04"), Bool(true));
        // Not England and Wales holidays.
        check(EW, "2 january 2025 works", Working("2025-01-02"), Bool(true));
        check(EW, "st andrew's sub 2025 works", Working("2025-12-01"), Bool(true));
        check(EW, "st patrick's 2025 works", Working("2025-03-17"), Bool(true));
        check(EW, "boyne sub 2025 works", Working("2025-07-14"), Bool(true));
        // Computed years, as the data file derived them before the rules
        // (2029-2030), and later.
        check(EW, "new year 2029", Holiday("2029-01-01"), Bool(true));
        check(EW, "good friday 2029", Holiday("2029-03-30"), Bool(true));
        check(EW, "easter monday 2029", Holiday("2029-04-02"), Bool(true));
        check(EW, "early may 2029", Holiday("2029-05-07"), Bool(true));
        check(EW, "spring 2029", Holiday("2029-05-28"), Bool(true));
        check(EW, "summer 2029", Holiday("2029-08-27"), Bool(true));
        check(EW, "summer 2030", Holiday("2030-08-26"), Bool(true));
        check(EW, "good friday 2030", Holiday("2030-04-19"), Bool(true));
        check(EW, "2033: new year sat => mon 3rd", Name("2033-01-03"), Text("New Year’s Day (substitute day)"));
        check(EW, "2032: xmas sat, boxing sun", Add("2032-12-24", 1), Date("2032-12-29"));
        check(EW, "2038: the latest easter", Between("2038-04-22", "2038-04-27"), Days(1));
        // working_days_between.
        check(EW, "between: same day", Between("2025-03-12", "2025-03-12"), Days(0));
        check(EW, "between: next day", Between("2025-03-12", "2025-03-13"), Days(1));
        check(EW, "between: fri to mon", Between("2025-03-14", "2025-03-17"), Days(1));
        check(EW, "between: sat to sun", Between("2025-03-15", "2025-03-16"), Days(0));
        check(EW, "between: rotherham", Between("2025-05-01", "2025-05-07"), Days(3));
        check(EW, "between: negative", Between("2025-05-07", "2025-05-01"), Days(-3));
        check(EW, "between: across xmas 2021", Between("2021-12-24", "2021-12-29"), Days(1));
        check(EW, "between: all of 2025", Between("2024-12-31", "2025-12-31"), Days(253));
        // 2040 (computed): 261 weekdays less 8 bank holidays.
        check(EW, "between: all of 2040", Between("2039-12-31", "2040-12-31"), Days(253));
        // Out of range.
        check(EW, "add: start in 2017", Add("2017-12-29", 1), OutOfRange("2017-12-29"));
        check(EW, "add: runs past 2099", Add("2099-12-30", 5), OutOfRange("2100-01-01"));
        check(EW, "add: start in 2100", Add("2100-01-04", 0), OutOfRange("2100-01-04"));
        check(EW, "add: last covered day", Add("2099-12-30", 1), Date("2099-12-31"));
        check(EW, "between: to 2100", Between("2025-01-01", "2100-01-01"), OutOfRange("2100-01-01"));
        check(EW, "between: from 2017", Between("2017-01-01", "2025-01-01"), OutOfRange("2017-01-01"));
        // Calendar ids.
        check(EW, "known id", Lookup(EW), Text(EW));
        check(EW, "known: scotland", Lookup(SC), Text(SC));
        check(EW, "known: northern ireland", Lookup(NI), Text(NI));
        check(EW, "unknown: wales alone", Lookup("wales"), UnknownCalendar("wales"));
        check(EW, "unknown: empty", Lookup(""), UnknownCalendar(""));
        check(EW, "unknown: case matters", Lookup("England-and-Wales"), UnknownCalendar("England-and-Wales"));
        check(EW, "unknown: underscore", Lookup("northern_ireland"), UnknownCalendar("northern_ireland"));
    }

    #[rustfmt::skip]
    #[test]
    fn scotland_rows() {
        use Op::*;
        use Want::*;
        // 2 January, and its substitute.
        check(SC, "2 january 2025", Name("2025-01-02"), Text("2nd January"));
        check(SC, "31 dec + 1 => 3 jan", Add("2024-12-31", 1), Date("2025-01-03"));
        check(SC, "2021: 2nd sat => mon 4th", Name("2021-01-04"), Text("2nd January (substitute day)"));
        check(SC, "2022: new year sat => mon 3rd", Name("2022-01-03"), Text("New Year’s Day (substitute day)"));
        check(SC, "2022: 2nd sun => tue 4th", Name("2022-01-04"), Text("2nd January (substitute day)"));
        check(SC, "2022: fri 31 dec + 1 => wed 5th", Add("2021-12-31", 1), Date("2022-01-05"));
        check(SC, "2023: 2nd is mon itself", Name("2023-01-02"), Text("2nd January"));
        check(SC, "2023: new year sun => tue 3rd", Name("2023-01-03"), Text("New Year’s Day (substitute day)"));
        check(SC, "2033 (computed): sat => mon 3rd", Name("2033-01-03"), Text("New Year’s Day (substitute day)"));
        check(SC, "2033 (computed): sun => tue 4th", Name("2033-01-04"), Text("2nd January (substitute day)"));
        check(SC, "2034 (computed): mon 2nd itself", Name("2034-01-02"), Text("2nd January"));
        check(SC, "2034 (computed): sun => tue 3rd", Name("2034-01-03"), Text("New Year’s Day (substitute day)"));
        check(SC, "2027: 2nd sat => mon 4th", Holiday("2027-01-04"), Bool(true));
        // St Andrew's Day, and its substitute on the Monday.
        check(SC, "st andrew's 2026 (mon)", Name("2026-11-30"), Text("St Andrew’s Day"));
        check(SC, "st andrew's 2023 (thu)", Holiday("2023-11-30"), Bool(true));
        check(SC, "2024: sat => mon 2 dec", Name("2024-12-02"), Text("St Andrew’s Day (substitute day)"));
        check(SC, "2025: sun => mon 1 dec", Name("2025-12-01"), Text("St Andrew’s Day (substitute day)"));
        check(SC, "2025: fri 28 nov + 1 => tue 2 dec", Add("2025-11-28", 1), Date("2025-12-02"));
        check(SC, "2025: the week", Between("2025-11-28", "2025-12-05"), Days(4));
        check(SC, "2019: sat => mon 2 dec", Holiday("2019-12-02"), Bool(true));
        check(SC, "2030 (computed): sat => mon 2 dec", Name("2030-12-02"), Text("St Andrew’s Day (substitute day)"));
        check(SC, "2031 (computed): sun => mon 1 dec", Name("2031-12-01"), Text("St Andrew’s Day (substitute day)"));
        // Good Friday but no Easter Monday.
        check(SC, "good friday 2025", Holiday("2025-04-18"), Bool(true));
        check(SC, "easter monday 2025 works", Working("2025-04-21"), Bool(true));
        check(SC, "thu before easter + 1 => mon", Add("2025-04-17", 1), Date("2025-04-21"));
        check(SC, "easter monday 2035 (computed) works", Working("2035-03-26"), Bool(true));
        // August: the first Monday, not the last.
        check(SC, "summer 2025 is 4 aug", Name("2025-08-04"), Text("Summer bank holiday"));
        check(SC, "last monday of august works", Working("2025-08-25"), Bool(true));
        check(SC, "summer 2040 (computed)", Holiday("2040-08-06"), Bool(true));
        // The one-offs were in Scotland too.
        check(SC, "2020: VE day", Holiday("2020-05-08"), Bool(true));
        check(SC, "2022: jubilee", Between("2022-06-01", "2022-06-06"), Days(1));
        check(SC, "2022: state funeral", Holiday("2022-09-19"), Bool(true));
        check(SC, "2023: coronation", Holiday("2023-05-08"), Bool(true));
        // Not Scotland's.
        check(SC, "st patrick's works", Working("2025-03-17"), Bool(true));
        // Whole years: 2025 has 261 weekdays, 2040 too.
        check(SC, "all of 2025: 9 holidays", Between("2024-12-31", "2025-12-31"), Days(252));
        check(SC, "all of 2040: 9 holidays", Between("2039-12-31", "2040-12-31"), Days(252));
        check(SC, "2 january 2018, the first year", Working("2018-01-02"), Bool(false));
        check(SC, "add: start in 2017", Add("2017-12-29", 1), OutOfRange("2017-12-29"));
        check(SC, "add: runs past 2099", Add("2099-12-30", 5), OutOfRange("2100-01-01"));
    }

    #[rustfmt::skip]
    #[test]
    fn northern_ireland_rows() {
        use Op::*;
        use Want::*;
        // St Patrick's Day, and its substitute.
        check(NI, "st patrick's 2025 (mon)", Name("2025-03-17"), Text("St Patrick’s Day"));
        check(NI, "fri 14 mar 2025 + 1 => tue", Add("2025-03-14", 1), Date("2025-03-18"));
        check(NI, "2018: sat => mon 19th", Name("2018-03-19"), Text("St Patrick’s Day (substitute day)"));
        check(NI, "2019: sun => mon 18th", Holiday("2019-03-18"), Bool(true));
        check(NI, "2024: sun => mon 18th", Name("2024-03-18"), Text("St Patrick’s Day (substitute day)"));
        check(NI, "2029 (computed): sat => mon 19th", Name("2029-03-19"), Text("St Patrick’s Day (substitute day)"));
        check(NI, "2030 (computed): sun => mon 18th", Name("2030-03-18"), Text("St Patrick’s Day (substitute day)"));
        // The Battle of the Boyne, and its substitute.
        check(NI, "boyne 2024 (fri)", Name("2024-07-12"), Text("Battle of the Boyne (Orangemen’s Day)"));
        check(NI, "2025: sat => mon 14th", Name("2025-07-14"), Text("Battle of the Boyne (Orangemen’s Day) (substitute day)"));
        check(NI, "2025: fri 11 jul + 1 => tue", Add("2025-07-11", 1), Date("2025-07-15"));
        check(NI, "2020: sun => mon 13th", Holiday("2020-07-13"), Bool(true));
        check(NI, "2026: sun => mon 13th", Holiday("2026-07-13"), Bool(true));
        check(NI, "2031 (computed): sat => mon 14th", Name("2031-07-14"), Text("Battle of the Boyne (Orangemen’s Day) (substitute day)"));
        check(NI, "2037 (computed): sun => mon 13th", Holiday("2037-07-13"), Bool(true));
        // Easter Monday and the last Monday of August, as in England and Wales.
        check(NI, "easter monday 2025", Holiday("2025-04-21"), Bool(true));
        check(NI, "summer 2025 is 25 aug", Holiday("2025-08-25"), Bool(true));
        check(NI, "first monday of august works", Working("2025-08-04"), Bool(true));
        // The one-offs were in Northern Ireland too.
        check(NI, "2020: VE day", Holiday("2020-05-08"), Bool(true));
        check(NI, "2022: state funeral", Add("2022-09-16", 1), Date("2022-09-20"));
        check(NI, "2023: coronation", Holiday("2023-05-08"), Bool(true));
        // Not Northern Ireland's.
        check(NI, "2 january works", Working("2025-01-02"), Bool(true));
        check(NI, "st andrew's sub works", Working("2025-12-01"), Bool(true));
        // Whole years.
        check(NI, "all of 2025: 10 holidays", Between("2024-12-31", "2025-12-31"), Days(251));
        check(NI, "all of 2040: 10 holidays", Between("2039-12-31", "2040-12-31"), Days(251));
        check(NI, "add: start in 2017", Add("2017-12-29", 1), OutOfRange("2017-12-29"));
        check(NI, "between: to 2100", Between("2099-01-01", "2100-01-01"), OutOfRange("2100-01-01"));
    }

    #[test]
    fn the_embedded_list_covers_2018_to_2028_and_the_rules_the_rest() {
        for nation in Nation::ALL {
            let cal = nation.calendar().unwrap();
            assert_eq!(cal.id(), nation.id());
            assert_eq!(Calendar::for_id(nation.id()).unwrap().nation(), nation);
            assert_eq!(cal.covered_years(), 2018..=LAST_COMPUTED_YEAR, "{nation}");
            assert_eq!(
                cal.published_years().collect::<Vec<_>>(),
                (2018..=2028).collect::<Vec<_>>()
            );
            assert_eq!(
                cal.try_is_working_day(d("2100-01-04")),
                Err(CalendarError::OutOfRange { date: d("2100-01-04"), covered: 2018..=2099 })
            );
            assert_eq!(cal.try_is_working_day(d("2099-01-05")), Ok(true));
            // Every bank holiday is on a weekday, and every year has them.
            for year in cal.covered_years() {
                let days: Vec<NaiveDate> =
                    cal.bank_holidays().map(|(x, _)| x).filter(|x| x.year() == year).collect();
                assert!(days.iter().all(|x| !is_weekend(*x)), "{nation} {year}");
                assert!(days.len() >= 8, "{nation} {year}: {days:?}");
            }
        }
    }

    /// The one-offs and moves GOV.UK lists that the rules cannot know, the
    /// same in every nation: (year, the rule's date it replaces, the
    /// listed date and name).
    const ONE_OFFS: [(i32, Option<&str>, &str, &str); 5] = [
        (2020, Some("2020-05-04"), "2020-05-08", "Early May bank holiday (VE day)"),
        (2022, Some("2022-05-30"), "2022-06-02", "Spring bank holiday"),
        (2022, None, "2022-06-03", "Platinum Jubilee bank holiday"),
        (2022, None, "2022-09-19", "Bank Holiday for the State Funeral of Queen Elizabeth II"),
        (2023, None, "2023-05-08", "Bank holiday for the coronation of King Charles III"),
    ];

    /// Each rule against GOV.UK's list: in every published year of every
    /// nation, the computed holidays (dates and names) are the listed ones
    /// except for the named one-offs.
    #[test]
    fn the_rules_reproduce_every_published_year_but_the_one_offs() {
        for nation in Nation::ALL {
            let cal = nation.calendar().unwrap();
            for year in cal.published_years() {
                let mut expected: BTreeMap<NaiveDate, String> =
                    computed_holidays(nation, year).unwrap().into_iter().collect();
                for (_, replaced, listed, name) in ONE_OFFS.iter().filter(|o| o.0 == year) {
                    if let Some(replaced) = replaced {
                        assert!(expected.remove(&d(replaced)).is_some(), "{nation} {year}");
                    }
                    expected.insert(d(listed), (*name).to_owned());
                }
                let listed: BTreeMap<NaiveDate, String> = cal
                    .bank_holidays()
                    .filter(|(x, _)| x.year() == year)
                    .map(|(x, name)| (x, name.to_owned()))
                    .collect();
                assert_eq!(listed, expected, "{nation} {year}");
            }
        }
    }

    /// How many bank holidays each rule gives a nation in a year without
    /// one-offs: substitutes never swallow a holiday.
    #[test]
    fn every_computed_year_has_each_nations_number_of_holidays() {
        for (nation, count) in
            [(Nation::EnglandAndWales, 8), (Nation::Scotland, 9), (Nation::NorthernIreland, 10)]
        {
            for year in 2018..=LAST_COMPUTED_YEAR {
                let days = computed_holidays(nation, year).unwrap();
                assert_eq!(days.len(), count, "{nation} {year}: {days:?}");
                assert!(days.windows(2).all(|w| w[0].0 < w[1].0), "{nation} {year}: {days:?}");
                assert!(days.iter().all(|(x, _)| !is_weekend(*x) && x.year() == year));
            }
        }
    }

    #[test]
    fn easter_by_the_computus() {
        // Easter Sunday, two days after GOV.UK's Good Fridays, and later
        // years from an independent implementation (python-dateutil's
        // `easter`), among them the latest possible (25 April 2038) and
        // an early one (25 March 2035).
        let published = Nation::EnglandAndWales
            .calendar()
            .unwrap()
            .bank_holidays()
            .filter(|(x, name)| *name == "Good Friday" && x.year() <= 2028)
            .map(|(x, _)| x + Days::new(2))
            .collect::<Vec<_>>();
        assert_eq!(published.len(), 11);
        let later = [
            "2035-03-25",
            "2038-04-25",
            "2041-04-21",
            "2049-04-18",
            "2057-04-22",
            "2073-03-26",
            "2099-04-12",
        ];
        for sunday in published.into_iter().chain(later.map(d)) {
            assert_eq!(easter_sunday(sunday.year()), Some(sunday));
        }
    }

    #[test]
    fn add_and_between_agree() {
        for nation in Nation::ALL {
            let cal = nation.calendar().unwrap();
            let mut start = d("2018-01-01");
            while start < d("2032-12-01") {
                for n in 0..25 {
                    let due = cal.add_working_days(start, n).unwrap();
                    assert!(cal.is_working_day(due), "{nation} {start} + {n}");
                    let back = cal.working_days_between(start, due).unwrap();
                    let expected =
                        if cal.is_working_day(start) { i64::from(n) } else { i64::from(n.max(1)) };
                    assert_eq!(back, expected, "{nation} {start} + {n} = {due}");
                    assert_eq!(cal.working_days_between(due, start).unwrap(), -back);
                }
                start = start + Days::new(5);
            }
        }
    }

    /// A small valid list: New Year's Day and Christmas Day of `year` in
    /// every division.
    fn small_list(year: i32) -> serde_json::Value {
        let weekday = |month, day| {
            let mut x = NaiveDate::from_ymd_opt(year, month, day).unwrap();
            while is_weekend(x) {
                x = x.succ_opt().unwrap();
            }
            x.to_string()
        };
        let events = serde_json::json!([
            { "title": "New Year’s Day", "date": weekday(1, 1), "notes": "", "bunting": true },
            { "title": "Christmas Day", "date": weekday(12, 25), "notes": "", "bunting": true },
        ]);
        let mut list = serde_json::Map::new();
        for nation in Nation::ALL {
            list.insert(
                nation.id().to_owned(),
                serde_json::json!({ "division": nation.id(), "events": events }),
            );
        }
        serde_json::Value::Object(list)
    }

    #[test]
    fn a_malformed_list_is_refused_saying_where() {
        assert!(parse_list(&small_list(2025).to_string()).is_ok());
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit, &str); 11] = [
            (
                "not json",
                |v| *v = serde_json::json!("<html>"),
                "not in GOV.UK's bank-holidays.json format",
            ),
            (
                "no scotland",
                |v| {
                    v.as_object_mut().unwrap().remove("scotland");
                },
                "no \"scotland\" division",
            ),
            (
                "unknown division",
                |v| {
                    v["wales"] = v["scotland"].clone();
                },
                "unknown division \"wales\"",
            ),
            (
                "division says another",
                |v| v["scotland"]["division"] = "england-and-wales".into(),
                "scotland: its `division` says \"england-and-wales\"",
            ),
            (
                "no events",
                |v| v["northern-ireland"]["events"] = serde_json::json!([]),
                "northern-ireland: lists no bank holidays",
            ),
            (
                "events missing",
                |v| {
                    v["scotland"].as_object_mut().unwrap().remove("events");
                },
                "not in GOV.UK's",
            ),
            (
                "bad date",
                |v| v["scotland"]["events"][1]["date"] = "2025-02-30".into(),
                "scotland: event 2: bad date \"2025-02-30\"",
            ),
            (
                "weekend",
                |v| v["england-and-wales"]["events"][1]["date"] = "2025-12-27".into(),
                "england-and-wales: event 2: 2025-12-27 is a Sat",
            ),
            (
                "twice",
                |v| v["scotland"]["events"][1]["date"] = v["scotland"]["events"][0]["date"].clone(),
                "scotland: event 2: 2025-01-01 is listed twice",
            ),
            (
                "no title",
                |v| v["scotland"]["events"][0]["title"] = " ".into(),
                "scotland: event 1 (2025-01-01) has no title",
            ),
            (
                "no christmas",
                |v| v["scotland"]["events"][1]["date"] = "2025-11-28".into(),
                "scotland: 2025 lists no holiday in December",
            ),
        ];
        for (name, edit, want) in cases {
            let mut list = small_list(2025);
            edit(&mut list);
            let err = parse_list(&list.to_string()).unwrap_err();
            assert!(err.starts_with(want), "{name}: {err}");
        }
        // A gap: a year between two listed ones without its holidays.
        let mut list = small_list(2025);
        let later = small_list(2027);
        for nation in Nation::ALL {
            let more = later[nation.id()]["events"].as_array().unwrap().clone();
            list[nation.id()]["events"].as_array_mut().unwrap().extend(more);
        }
        let err = parse_list(&list.to_string()).unwrap_err();
        assert!(err.starts_with("england-and-wales: 2026 lists no holiday in January"), "{err}");
        // The error as the start-up reports it.
        let err = Calendars::from_lists(Some("{")).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid list of bank holidays: not in GOV.UK's"),
            "{err}"
        );
    }

    #[test]
    fn a_newer_list_replaces_the_years_it_lists_and_keeps_the_others() {
        // A made-up 2029 (only New Year's Day and Christmas) stands for a
        // newer download; 2100 extends the covered years past the horizon.
        let mut list = small_list(2029);
        let far = small_list(2100);
        for nation in Nation::ALL {
            let more = far[nation.id()]["events"].as_array().unwrap().clone();
            list[nation.id()]["events"].as_array_mut().unwrap().extend(more);
        }
        // 2030-2099 missing between them is a gap, refused.
        assert!(parse_list(&list.to_string()).is_err());
        let calendars = Calendars::from_lists(Some(&small_list(2029).to_string())).unwrap();
        let sc = calendars.get(Nation::Scotland);
        assert_eq!(sc.covered_years(), 2018..=2099);
        assert_eq!(sc.published_years().collect::<Vec<_>>(), (2018..=2029).collect::<Vec<_>>());
        // 2029 is now the list's: Good Friday (30 March) is not in it.
        assert!(sc.is_working_day(d("2029-03-30")));
        assert!(!sc.is_working_day(d("2029-01-01")));
        // The embedded years stay, and 2030 is computed.
        assert_eq!(sc.bank_holiday_name(d("2022-06-03")), Some("Platinum Jubilee bank holiday"));
        assert!(sc.is_bank_holiday(d("2030-12-02")));
        // A list reaching past the horizon extends the covered years.
        let mut long = serde_json::Map::new();
        for nation in Nation::ALL {
            let mut events = Vec::new();
            for year in 2099..=2101 {
                events.extend(small_list(year)[nation.id()]["events"].as_array().unwrap().clone());
            }
            long.insert(
                nation.id().to_owned(),
                serde_json::json!({ "division": nation.id(), "events": events }),
            );
        }
        let calendars =
            Calendars::from_lists(Some(&serde_json::Value::Object(long).to_string())).unwrap();
        let ni = calendars.get(Nation::NorthernIreland);
        assert_eq!(ni.covered_years(), 2018..=2101);
        assert!(ni.try_is_working_day(d("2101-03-17")).unwrap());
        assert!(ni.try_is_working_day(d("2102-01-02")).is_err());
    }

    #[test]
    fn install_takes_a_list_only_before_the_calendars_are_used() {
        // The same data as the embedded list, so that whichever test of the
        // process ran first, every calendar answers the same.
        let first = install(EMBEDDED_LIST);
        assert!(matches!(first, Ok(_) | Err(CalendarError::AlreadyLoaded)), "{first:?}");
        assert_eq!(install(EMBEDDED_LIST).unwrap_err(), CalendarError::AlreadyLoaded);
        assert_eq!(Nation::Scotland.calendar().unwrap().covered_years(), 2018..=2099);
        assert!(matches!(install("{"), Err(CalendarError::InvalidList(_))));
    }

    #[test]
    fn a_partnership_and_its_protocol_must_name_one_known_calendar() {
        assert_eq!(check_partnership_calendar("p", SC, "proto", SC), Ok(Nation::Scotland));
        assert_eq!(
            check_partnership_calendar("p", "wales", "proto", "wales"),
            Err(CalendarError::UnknownCalendar("wales".to_owned()))
        );
        let err = check_partnership_calendar("p", NI, "proto", EW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partnership \"p\" names the calendar \"northern-ireland\", but its protocol \"proto\" counts working days with \"england-and-wales\""
        );
    }

    #[test]
    fn nation_ids_round_trip() {
        for nation in Nation::ALL {
            assert_eq!(Nation::from_id(nation.id()), Ok(nation));
            assert_eq!(nation.to_string(), nation.id());
            assert_eq!(Nation::ALL[nation.index()], nation);
        }
        assert_eq!(
            CalendarError::OutOfRange { date: d("2100-01-01"), covered: 2018..=2099 }.to_string(),
            "2100-01-01 is outside the years covered by the calendar (2018..=2099)"
        );
    }
}

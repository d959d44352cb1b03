//! Working-day calendars: which days count towards a protocol stage's time
//! limit, per nation.
//!
//! A working day is a Monday to Friday that is not a bank holiday of the
//! partnership's nation. Each nation's bank holidays come from a data file
//! under `calendars/`, embedded at compile time and parsed once; nothing is
//! fetched at run time.
//!
//! Every calendar covers a stated range of years ([`Calendar::covered_years`]).
//! The deadline functions return [`CalendarError::OutOfRange`] for dates
//! outside it rather than pretending those years have no bank holidays.
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
//! The England and Wales list in `calendars/england_and_wales.txt` is the
//! GOV.UK list for 2018-2028 plus 2029-2030 derived from the usual rules.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate, Weekday};

/// Embedded bank holidays of England and Wales; see the file's header for
/// its format and source.
const ENGLAND_AND_WALES_DATA: &str = include_str!("calendars/england_and_wales.txt");

/// A nation whose bank holidays a [`Calendar`] knows.
///
/// Only England and Wales for now; Scotland and Northern Ireland have
/// different bank holidays and would each get a variant and a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nation {
    /// England and Wales, which share one list of bank holidays.
    EnglandAndWales,
}

impl Nation {
    /// Every nation with a calendar.
    pub const ALL: [Nation; 1] = [Nation::EnglandAndWales];

    /// The stable string id of this nation's calendar, e.g.
    /// `"england-and-wales"` (the GOV.UK division name).
    pub fn id(self) -> &'static str {
        match self {
            Nation::EnglandAndWales => "england-and-wales",
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
    /// [`CalendarError::InvalidData`] if the embedded data file does not
    /// parse (a bug, caught by the tests).
    pub fn calendar(self) -> Result<&'static Calendar, CalendarError> {
        // One lazily parsed static per nation. The parse result is kept, not
        // unwrapped, so that bad embedded data surfaces as an error at the
        // call site instead of a panic.
        static ENGLAND_AND_WALES: LazyLock<Result<Calendar, String>> =
            LazyLock::new(|| Calendar::parse(Nation::EnglandAndWales, ENGLAND_AND_WALES_DATA));
        let loaded = match self {
            Nation::EnglandAndWales => &*ENGLAND_AND_WALES,
        };
        loaded.as_ref().map_err(|reason| CalendarError::InvalidData {
            calendar: self.id(),
            reason: reason.clone(),
        })
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
    /// The calendar's embedded data file is malformed (a bug).
    #[error("bank-holiday data of calendar {calendar:?} is invalid: {reason}")]
    InvalidData {
        /// The calendar's id.
        calendar: &'static str,
        /// What is wrong, with the line number.
        reason: String,
    },
}

/// One nation's working-day calendar: weekends and that nation's bank
/// holidays are not working days.
#[derive(Debug)]
pub struct Calendar {
    nation: Nation,
    covered: RangeInclusive<i32>,
    holidays: BTreeMap<NaiveDate, &'static str>,
}

impl Calendar {
    /// The calendar with id `id`, e.g. `"england-and-wales"`.
    ///
    /// # Errors
    /// [`CalendarError::UnknownCalendar`] for an unknown id;
    /// [`CalendarError::InvalidData`] if the embedded data is malformed.
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

    /// The years whose bank holidays this calendar lists completely.
    pub fn covered_years(&self) -> RangeInclusive<i32> {
        self.covered.clone()
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

    /// The name of the bank holiday on `d`, if it is one.
    pub fn bank_holiday_name(&self, d: NaiveDate) -> Option<&str> {
        self.holidays.get(&d).copied()
    }

    /// The bank holidays in covered years, in date order.
    pub fn bank_holidays(&self) -> impl Iterator<Item = (NaiveDate, &str)> + '_ {
        self.holidays.iter().map(|(d, name)| (*d, *name))
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
        // at most the covered years, a few thousand days, so a plain walk is
        // cheap and obviously right.
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

    /// Parses a data file: a `covers FIRST..=LAST` line, then one
    /// `YYYY-MM-DD  Name` line per bank holiday, `#` comments and blank
    /// lines allowed. Errors name the 1-based line.
    fn parse(nation: Nation, text: &'static str) -> Result<Calendar, String> {
        let mut covered: Option<RangeInclusive<i32>> = None;
        let mut holidays = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            if let Some(range) = line.strip_prefix("covers ") {
                if covered.is_some() {
                    return Err(format!("line {line_no}: second `covers` line"));
                }
                covered = Some(parse_years(range.trim()).ok_or_else(|| {
                    format!("line {line_no}: expected `covers FIRST..=LAST`, got {line:?}")
                })?);
                continue;
            }
            let Some(range) = &covered else {
                return Err(format!("line {line_no}: holiday before the `covers` line"));
            };
            let (date, name) =
                line.split_once(char::is_whitespace).map(|(d, n)| (d, n.trim())).ok_or_else(
                    || format!("line {line_no}: expected `YYYY-MM-DD  Name`, got {line:?}"),
                )?;
            let date = NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|e| format!("line {line_no}: bad date {date:?}: {e}"))?;
            if name.is_empty() {
                return Err(format!("line {line_no}: {date} has no name"));
            }
            if !range.contains(&date.year()) {
                return Err(format!("line {line_no}: {date} is outside covers {range:?}"));
            }
            // Bank holidays that fall on a weekend are moved to a substitute
            // weekday, so a weekend date can only be a typo.
            if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
                return Err(format!("line {line_no}: {date} is a {}", date.weekday()));
            }
            // Sorted order makes the file easy to review and catches
            // duplicates and most transpositions.
            if let Some((last, _)) = holidays.last_key_value()
                && *last >= date
            {
                return Err(format!("line {line_no}: {date} is not after {last}"));
            }
            holidays.insert(date, name);
        }
        let covered = covered.ok_or("no `covers` line")?;
        // A covered year without any holiday means the file was not extended
        // along with its `covers` line.
        if let Some(year) = covered.clone().find(|y| !holidays.keys().any(|d| d.year() == *y)) {
            return Err(format!("covered year {year} lists no bank holidays"));
        }
        Ok(Calendar { nation, covered, holidays })
    }
}

/// Parses `FIRST..=LAST` into a non-empty range of years.
fn parse_years(s: &str) -> Option<RangeInclusive<i32>> {
    let (first, last) = s.split_once("..=")?;
    let first: i32 = first.trim().parse().ok()?;
    let last: i32 = last.trim().parse().ok()?;
    (first <= last).then_some(first..=last)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const EW: &str = "england-and-wales";

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// What a row asks the England and Wales calendar (or the registry).
    enum Op {
        /// `add_working_days(start, n)`.
        Add(&'static str, u32),
        /// `working_days_between(from, to)`.
        Between(&'static str, &'static str),
        /// `is_working_day(date)`.
        Working(&'static str),
        /// `is_bank_holiday(date)`.
        Holiday(&'static str),
        /// `Calendar::for_id(id)`, answering with the calendar's id.
        Lookup(&'static str),
    }

    /// What the row expects back.
    enum Want {
        Date(&'static str),
        Days(i64),
        Bool(bool),
        Id(&'static str),
        /// `OutOfRange` naming this date.
        OutOfRange(&'static str),
        /// `UnknownCalendar` naming this id.
        UnknownCalendar(&'static str),
    }

    #[track_caller]
    fn check(name: &str, op: Op, want: Want) {
        let cal = Calendar::for_id(EW).unwrap();
        // Answers are compared as text so that one assertion covers every
        // kind of row.
        let got: Result<String, CalendarError> = match op {
            Op::Add(start, n) => cal.add_working_days(d(start), n).map(|x| x.to_string()),
            Op::Between(from, to) => {
                cal.working_days_between(d(from), d(to)).map(|x| x.to_string())
            }
            Op::Working(date) => Ok(cal.is_working_day(d(date)).to_string()),
            Op::Holiday(date) => Ok(cal.is_bank_holiday(d(date)).to_string()),
            Op::Lookup(id) => Calendar::for_id(id).map(|c| c.id().to_owned()),
        };
        let want: Result<String, CalendarError> = match want {
            Want::Date(s) | Want::Id(s) => Ok(s.to_owned()),
            Want::Days(n) => Ok(n.to_string()),
            Want::Bool(b) => Ok(b.to_string()),
            Want::OutOfRange(date) => {
                Err(CalendarError::OutOfRange { date: d(date), covered: 2018..=2030 })
            }
            Want::UnknownCalendar(id) => Err(CalendarError::UnknownCalendar(id.to_owned())),
        };
        assert_eq!(got, want, "row {name:?}");
    }

    // One row per line reads as a table; rustfmt would split each call.
    #[rustfmt::skip]
    #[test]
    fn rows() {
        use Op::*;
        use Want::*;
        // Ordinary weeks.
        check("tue + 1 => wed", Add("2025-03-11", 1), Date("2025-03-12"));
        check("mon + 4 => fri", Add("2025-03-10", 4), Date("2025-03-14"));
        check("fri + 1 => mon", Add("2025-03-14", 1), Date("2025-03-17"));
        check("thu + 5 => next thu", Add("2025-03-13", 5), Date("2025-03-20"));
        check("mon + 10 => fortnight", Add("2025-03-03", 10), Date("2025-03-17"));
        check("a plain wednesday", Working("2025-03-12"), Bool(true));
        // Weekends as start dates: the start is not counted either way.
        check("sat is not working", Working("2025-03-15"), Bool(false));
        check("sat + 1 => mon", Add("2025-03-15", 1), Date("2025-03-17"));
        check("sun + 1 => mon", Add("2025-03-16", 1), Date("2025-03-17"));
        check("sat + 2 => tue", Add("2025-03-15", 2), Date("2025-03-18"));
        // n = 0.
        check("0 on a weekday => itself", Add("2025-03-12", 0), Date("2025-03-12"));
        check("0 on a sat => mon", Add("2025-03-15", 0), Date("2025-03-17"));
        check("0 on bank holiday mon => tue", Add("2025-05-05", 0), Date("2025-05-06"));
        check("0 on good friday => tue", Add("2025-04-18", 0), Date("2025-04-22"));
        // Christmas, Boxing Day and their substitutes.
        check("xmas eve 2021 + 1 => 29th", Add("2021-12-24", 1), Date("2021-12-29"));
        check("xmas eve 2024 + 1 => 27th", Add("2024-12-24", 1), Date("2024-12-27"));
        check("fri 2020-12-24 + 1 => tue 29th", Add("2020-12-24", 1), Date("2020-12-29"));
        check("fri 2022-12-23 + 1 => wed 28th", Add("2022-12-23", 1), Date("2022-12-28"));
        check("2022-12-30 + 1 => 2023-01-03", Add("2022-12-30", 1), Date("2023-01-03"));
        check("2021-12-31 + 1 => 2022-01-04", Add("2021-12-31", 1), Date("2022-01-04"));
        check("2021-12-27 is a substitute", Holiday("2021-12-27"), Bool(true));
        check("sat 2021-12-25 is no holiday", Holiday("2021-12-25"), Bool(false));
        check("2026-12-28 boxing substitute", Working("2026-12-28"), Bool(false));
        // Easter.
        check("thu before easter + 1 => tue", Add("2025-04-17", 1), Date("2025-04-22"));
        check("good friday 2024", Working("2024-03-29"), Bool(false));
        check("easter monday 2024", Working("2024-04-01"), Bool(false));
        check("easter monday 2019 + 1 => tue", Add("2019-04-22", 1), Date("2019-04-23"));
        // May bank holidays.
        check("rotherham: thu 2025-05-01 + 3", Add("2025-05-01", 3), Date("2025-05-07"));
        check("early may 2025 is mon 5th", Holiday("2025-05-05"), Bool(true));
        check("2020 early may moved to VE day", Working("2020-05-08"), Bool(false));
        check("2020-05-04 not a holiday", Working("2020-05-04"), Bool(true));
        check("fri before spring 2025 + 1", Add("2025-05-23", 1), Date("2025-05-27"));
        check("spring 2026", Holiday("2026-05-25"), Bool(true));
        // One-offs of 2022 and 2023.
        check("2022 jubilee: wed + 1 => mon", Add("2022-06-01", 1), Date("2022-06-06"));
        check("2022-05-30 not a holiday", Working("2022-05-30"), Bool(true));
        check("state funeral: fri + 1 => tue", Add("2022-09-16", 1), Date("2022-09-20"));
        check("coronation: fri + 1 => tue", Add("2023-05-05", 1), Date("2023-05-09"));
        check("coronation month", Between("2023-04-28", "2023-05-31"), Days(20));
        // August.
        check("summer 2025: fri + 1 => tue", Add("2025-08-22", 1), Date("2025-08-26"));
        check("summer 2030", Holiday("2030-08-26"), Bool(true));
        // working_days_between.
        check("between: same day", Between("2025-03-12", "2025-03-12"), Days(0));
        check("between: next day", Between("2025-03-12", "2025-03-13"), Days(1));
        check("between: fri to mon", Between("2025-03-14", "2025-03-17"), Days(1));
        check("between: sat to sun", Between("2025-03-15", "2025-03-16"), Days(0));
        check("between: rotherham", Between("2025-05-01", "2025-05-07"), Days(3));
        check("between: negative", Between("2025-05-07", "2025-05-01"), Days(-3));
        check("between: across xmas 2021", Between("2021-12-24", "2021-12-29"), Days(1));
        check("between: all of 2025", Between("2024-12-31", "2025-12-31"), Days(253));
        // Out of range.
        check("add: start in 2017", Add("2017-12-29", 1), OutOfRange("2017-12-29"));
        check("add: runs past 2030", Add("2030-12-30", 5), OutOfRange("2031-01-01"));
        check("add: start in 2031", Add("2031-01-02", 0), OutOfRange("2031-01-02"));
        check("add: last covered day", Add("2030-12-30", 1), Date("2030-12-31"));
        check("between: to 2031", Between("2025-01-01", "2031-01-01"), OutOfRange("2031-01-01"));
        check("between: from 2017", Between("2017-01-01", "2025-01-01"), OutOfRange("2017-01-01"));
        // Calendar ids.
        check("known id", Lookup(EW), Id(EW));
        check("unknown: scotland", Lookup("scotland"), UnknownCalendar("scotland"));
        check("unknown: empty", Lookup(""), UnknownCalendar(""));
        check("unknown: case matters", Lookup("England-and-Wales"), UnknownCalendar("England-and-Wales"));
    }

    #[test]
    fn embedded_data_parses() {
        for nation in Nation::ALL {
            let cal = nation.calendar().unwrap();
            assert_eq!(cal.id(), nation.id());
            assert_eq!(Calendar::for_id(nation.id()).unwrap().nation(), nation);
        }
        let cal = Calendar::for_id(EW).unwrap();
        assert_eq!(cal.covered_years(), 2018..=2030);
        assert_eq!(
            cal.bank_holiday_name(d("2023-05-08")),
            Some("Bank holiday for the coronation of King Charles III")
        );
        assert_eq!(cal.try_is_working_day(d("2031-01-06")), Err(cal.out_of_range(d("2031-01-06"))));
        assert_eq!(cal.try_is_working_day(d("2030-01-07")), Ok(true));
    }

    /// Recomputes England and Wales bank holidays from the usual rules and
    /// the known exceptions, to catch typos in the data file.
    #[test]
    fn england_and_wales_follows_the_rules() {
        let cal = Calendar::for_id(EW).unwrap();
        for year in cal.covered_years() {
            let mut expected = usual_holidays(year);
            match year {
                2020 => {
                    // Early May moved to Friday 8 May for VE Day's 75th.
                    expected.retain(|x| *x != d("2020-05-04"));
                    expected.push(d("2020-05-08"));
                }
                2022 => {
                    // Spring moved to Thursday 2 June, plus the Platinum
                    // Jubilee and the State Funeral.
                    expected.retain(|x| *x != d("2022-05-30"));
                    expected.extend([d("2022-06-02"), d("2022-06-03"), d("2022-09-19")]);
                }
                2023 => expected.push(d("2023-05-08")),
                _ => {}
            }
            expected.sort();
            let listed: Vec<NaiveDate> =
                cal.bank_holidays().map(|(x, _)| x).filter(|x| x.year() == year).collect();
            assert_eq!(listed, expected, "{year}");
        }
    }

    fn usual_holidays(year: i32) -> Vec<NaiveDate> {
        let ymd = |m, day| NaiveDate::from_ymd_opt(year, m, day).unwrap();
        let easter = easter_sunday(year);
        let first_monday_may =
            NaiveDate::from_weekday_of_month_opt(year, 5, Weekday::Mon, 1).unwrap();
        let last_monday = |m: u32| {
            ymd(m + 1, 1).iter_days().rev().skip(1).find(|x| x.weekday() == Weekday::Mon).unwrap()
        };
        // New Year's Day and Christmas Day move to the next free weekday
        // when on a weekend; Boxing Day to the weekday after Christmas's.
        let next_weekday = |mut x: NaiveDate| {
            while matches!(x.weekday(), Weekday::Sat | Weekday::Sun) {
                x = x.succ_opt().unwrap();
            }
            x
        };
        let christmas = next_weekday(ymd(12, 25));
        let boxing = next_weekday(ymd(12, 26).max(christmas.succ_opt().unwrap()));
        vec![
            next_weekday(ymd(1, 1)),
            easter - chrono::Days::new(2),
            easter + chrono::Days::new(1),
            first_monday_may,
            last_monday(5),
            last_monday(8),
            christmas,
            boxing,
        ]
    }

    /// Anonymous Gregorian algorithm (Meeus/Jones/Butcher).
    fn easter_sunday(year: i32) -> NaiveDate {
        let a = year % 19;
        let b = year / 100;
        let c = year % 100;
        let h = (19 * a + b - b / 4 - (b - (b + 8) / 25 + 1) / 3 + 15) % 30;
        let l = (32 + 2 * (b % 4) + 2 * (c / 4) - h - c % 4) % 7;
        let m = (a + 11 * h + 22 * l) / 451;
        let month = (h + l - 7 * m + 114) / 31;
        let day = (h + l - 7 * m + 114) % 31 + 1;
        NaiveDate::from_ymd_opt(year, month.try_into().unwrap(), day.try_into().unwrap()).unwrap()
    }

    #[test]
    fn add_and_between_agree() {
        let cal = Calendar::for_id(EW).unwrap();
        let mut start = d("2018-01-01");
        while start < d("2030-11-01") {
            for n in 0..25 {
                let due = cal.add_working_days(start, n).unwrap();
                assert!(cal.is_working_day(due), "{start} + {n}");
                let back = cal.working_days_between(start, due).unwrap();
                let expected =
                    if cal.is_working_day(start) { i64::from(n) } else { i64::from(n.max(1)) };
                assert_eq!(back, expected, "{start} + {n} = {due}");
                assert_eq!(cal.working_days_between(due, start).unwrap(), -back);
            }
            start = start + chrono::Days::new(3);
        }
    }

    #[test]
    fn malformed_data_is_an_error() {
        let cases: [(&str, &'static str, &str); 9] = [
            ("no covers", "2025-01-01 New Year's Day\n", "line 1: holiday before"),
            ("covers missing", "# nothing\n", "no `covers` line"),
            ("bad covers", "covers 2025-2026\n", "line 1: expected `covers"),
            ("reversed covers", "covers 2026..=2025\n", "line 1: expected `covers"),
            ("bad date", "covers 2025..=2025\n2025-02-30 Nope\n", "line 2: bad date"),
            ("no name", "covers 2025..=2025\n2025-01-01\n", "line 2: expected"),
            ("weekend", "covers 2025..=2025\n2025-01-04 Saturday\n", "line 2: 2025-01-04 is a Sat"),
            (
                "unsorted",
                "covers 2025..=2025\n2025-12-25 A\n2025-01-01 B\n",
                "line 3: 2025-01-01 is not after",
            ),
            ("uncovered year empty", "covers 2025..=2026\n2025-01-01 A\n", "covered year 2026"),
        ];
        for (name, text, want) in cases {
            let err = Calendar::parse(Nation::EnglandAndWales, text).unwrap_err();
            assert!(err.starts_with(want), "{name}: {err}");
        }
        let err = Calendar::parse(Nation::EnglandAndWales, "covers 2025..=2025\n2024-01-01 A\n")
            .unwrap_err();
        assert!(err.contains("outside covers"), "{err}");
    }

    #[test]
    fn nation_ids_round_trip() {
        for nation in Nation::ALL {
            assert_eq!(Nation::from_id(nation.id()), Ok(nation));
            assert_eq!(nation.to_string(), nation.id());
        }
        assert_eq!(
            CalendarError::OutOfRange { date: d("2031-01-01"), covered: 2018..=2030 }.to_string(),
            "2031-01-01 is outside the years covered by the calendar (2018..=2030)"
        );
    }
}

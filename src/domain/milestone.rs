//! Milestones inside a stage: the steps a protocol times separately, each
//! owed by one side, each with its own limit in working days counted from
//! the stage's start or from the completion of an earlier milestone, and
//! each completed by a record of a named kind written by the side that
//! owes it.
//!
//! Rotherham's challenge stages are the case in point (seed 003): at stage
//! 1 the Conference Chair completes the form within 3 working days and the
//! line manager responds within 10 working days of receiving it. One due
//! date of 13 days would hide which of the two is late.
//!
//! The rules, as pure functions over the stage's milestones and the
//! records written at the stage:
//! - A milestone counted from the stage's start is due that many working
//!   days after the day the stage was reached; one counted from another
//!   milestone is due that many working days after the day the other was
//!   completed, and has no due date until then.
//! - A milestone is completed by the first record, in the order written,
//!   of its kind by its side's agency not already taken by an earlier
//!   milestone (a record completes at most one milestone; a record of the
//!   other side, or of another kind, completes none).
//! - The case's due date is the next open milestone's: the first, in the
//!   protocol's order, not completed; none once all are completed.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::calendar::{Calendar, CalendarError};
use super::policy::Side;
use super::protocol::RecordKind;
use super::role::Role;

/// One milestone of a stage, as the protocol data gives it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Milestone {
    key: String,
    name: String,
    /// Which side owes it: `raising` or `receiving`.
    side: Side,
    /// Which roles of that side owe it (the source's words, as roles).
    roles: Vec<Role>,
    within_working_days: u32,
    /// `start` (the default for the first milestone) or an earlier
    /// milestone's key (the default for the others: the one before).
    #[serde(default)]
    after: Option<String>,
    /// The kind of record that completes it.
    record: RecordKind,
}

/// Where a milestone's clock starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After<'a> {
    /// The day the stage was reached.
    Start,
    /// The day this earlier milestone was completed.
    Milestone(&'a str),
}

impl Milestone {
    /// Stable key within the stage, e.g. `"form"`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is owed, e.g. `"The Stage 1 Form, sent to the practitioner and Line Manager"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The side that owes it.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The roles of that side that owe it.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Its limit, in working days from where its clock starts.
    pub fn within_working_days(&self) -> u32 {
        self.within_working_days
    }

    /// The kind of record that completes it.
    pub fn record(&self) -> RecordKind {
        self.record
    }

    /// Where its clock starts, given the milestone before it in the stage
    /// (`None` for the first).
    pub fn after<'a>(&'a self, previous: Option<&'a Milestone>) -> After<'a> {
        match (self.after.as_deref(), previous) {
            (Some("start"), _) | (None, None) => After::Start,
            (Some(key), _) => After::Milestone(key),
            (None, Some(prev)) => After::Milestone(prev.key()),
        }
    }

    /// The `after` as written in the data (for validation).
    pub(crate) fn after_written(&self) -> Option<&str> {
        self.after.as_deref()
    }
}

/// A record written at the stage, as far as milestones care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Its kind.
    pub kind: RecordKind,
    /// The side of its author's agency (`None`: neither party's, e.g. a
    /// board chair's).
    pub side: Option<Side>,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// Where one milestone stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing<'a> {
    /// The milestone.
    pub milestone: &'a Milestone,
    /// The day its clock started: the stage's start, or the completion of
    /// the milestone it waits for (`None` while that is open).
    pub from: Option<NaiveDate>,
    /// When it is due: `None` while the milestone its clock waits for is
    /// open.
    pub due_on: Option<NaiveDate>,
    /// When the record that completed it was written.
    pub completed_at: Option<DateTime<Utc>>,
}

impl Standing<'_> {
    /// Still open and past its due date on `today`.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.completed_at.is_none() && self.due_on.is_some_and(|due| today > due)
    }
}

/// Where each of a stage's milestones stands, in the protocol's order,
/// for a stage reached on `started_on` with the records `written` at it
/// (in any order).
pub fn standings<'a>(
    calendar: &Calendar,
    milestones: &'a [Milestone],
    started_on: NaiveDate,
    written: &[Written],
) -> Result<Vec<Standing<'a>>, CalendarError> {
    let mut records: Vec<&Written> = written.iter().collect();
    records.sort_by_key(|w| w.at);
    let mut taken = vec![false; records.len()];
    let mut out: Vec<Standing<'a>> = Vec::with_capacity(milestones.len());
    for (i, m) in milestones.iter().enumerate() {
        let from = match m.after(i.checked_sub(1).map(|p| &milestones[p])) {
            After::Start => Some(started_on),
            After::Milestone(key) => out
                .iter()
                .find(|s| s.milestone.key() == key)
                .and_then(|s| s.completed_at)
                .map(|at| at.date_naive()),
        };
        let due_on = match from {
            Some(day) => Some(calendar.add_working_days(day, m.within_working_days)?),
            None => None,
        };
        let done = records
            .iter()
            .enumerate()
            .find(|(j, w)| !taken[*j] && w.kind == m.record && w.side == Some(m.side))
            .map(|(j, w)| (j, w.at));
        let completed_at = done.map(|(j, at)| {
            taken[j] = true;
            at
        });
        out.push(Standing { milestone: m, from, due_on, completed_at });
    }
    Ok(out)
}

/// The days on which a milestone whose clock started on `from`, with a
/// limit of `within` working days, is announced as due soon: for each
/// percentage `p` (ascending), the working day `ceil(p × within / 100)`
/// after `from`, kept when it is before the due day (a short limit may
/// leave none, and two percentages may fall on one day: it is told once).
pub fn due_soon_days(
    calendar: &Calendar,
    from: NaiveDate,
    within: u32,
    percent: &[u8],
) -> Result<Vec<NaiveDate>, CalendarError> {
    let mut days: Vec<NaiveDate> = Vec::new();
    for &p in percent {
        let n = (u32::from(p) * within).div_ceil(100);
        if n == 0 || n >= within {
            continue;
        }
        let day = calendar.add_working_days(from, n)?;
        if days.last() != Some(&day) {
            days.push(day);
        }
    }
    Ok(days)
}

/// The next open milestone: the first not completed.
pub fn next_open<'s, 'a>(standings: &'s [Standing<'a>]) -> Option<&'s Standing<'a>> {
    standings.iter().find(|s| s.completed_at.is_none())
}

/// The case's due date at a stage with milestones: the next open
/// milestone's (`None` once all are completed, or while the next waits for
/// a clock that has not started).
pub fn due_on(standings: &[Standing<'_>]) -> Option<NaiveDate> {
    next_open(standings).and_then(|s| s.due_on)
}

/// The longest chain of limits through the milestones, in working days
/// (what the stage takes at most when each is met on its last day).
pub fn longest_chain(milestones: &[Milestone]) -> u32 {
    let mut ends: Vec<(&str, u32)> = Vec::new();
    for (i, m) in milestones.iter().enumerate() {
        let start = match m.after(i.checked_sub(1).map(|p| &milestones[p])) {
            After::Start => 0,
            After::Milestone(key) => {
                ends.iter().find(|(k, _)| *k == key).map_or(0, |(_, end)| *end)
            }
        };
        ends.push((m.key(), start + m.within_working_days));
    }
    ends.iter().map(|(_, end)| *end).max().unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn milestone(
        key: &str,
        side: Side,
        days: u32,
        after: Option<&str>,
        record: RecordKind,
    ) -> Milestone {
        Milestone {
            key: key.into(),
            name: key.into(),
            side,
            roles: vec![Role::Manager],
            within_working_days: days,
            after: after.map(Into::into),
            record,
        }
    }

    /// Rotherham's stage 1 challenge: the form (chair) in 3, the response
    /// (line manager) 10 after the form.
    fn stage_1() -> Vec<Milestone> {
        vec![
            milestone("form", Side::Raising, 3, None, RecordKind::Form),
            milestone("response", Side::Receiving, 10, None, RecordKind::Response),
        ]
    }

    /// Rotherham's stage 3: the director told in 1 and the form in 1, both
    /// from the start; the response 4 after the form.
    fn stage_3() -> Vec<Milestone> {
        vec![
            milestone("director", Side::Raising, 1, None, RecordKind::Notification),
            milestone("form", Side::Raising, 1, Some("start"), RecordKind::Form),
            milestone("response", Side::Receiving, 4, Some("form"), RecordKind::Response),
        ]
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 11, 0, 0).unwrap()
    }

    fn w(kind: RecordKind, side: Option<Side>, when: DateTime<Utc>) -> Written {
        Written { kind, side, at: when }
    }

    type Row = (String, Option<NaiveDate>, Option<DateTime<Utc>>);
    /// A milestone's key, due date and completion, as expected.
    type Expected = (&'static str, Option<NaiveDate>, Option<DateTime<Utc>>);

    #[track_caller]
    fn check(
        name: &str,
        ms: &[Milestone],
        started: NaiveDate,
        written: &[Written],
        expected: &[Expected],
        due: Option<NaiveDate>,
    ) {
        let cal = Calendar::for_id("england-and-wales").unwrap();
        let got = standings(cal, ms, started, written).unwrap();
        let rows: Vec<Row> =
            got.iter().map(|s| (s.milestone.key.clone(), s.due_on, s.completed_at)).collect();
        let expected: Vec<Row> =
            expected.iter().map(|(k, due, done)| ((*k).to_owned(), *due, *done)).collect();
        assert_eq!(rows, expected, "{name}");
        assert_eq!(due_on(&got), due, "{name}: the case's due date");
    }

    #[test]
    fn milestones_count_from_the_start_or_from_the_one_they_wait_for() {
        use RecordKind::{Form, Notification, Response};
        use Side::{Raising, Receiving};
        // Thursday 2025-04-17, before Good Friday and Easter Monday: the
        // form is due three working days later, on Thursday 24 April.
        check(
            "nothing written",
            &stage_1(),
            day(2025, 4, 17),
            &[],
            &[("form", Some(day(2025, 4, 24)), None), ("response", None, None)],
            Some(day(2025, 4, 24)),
        );
        // The form on Tuesday 22 April: the response is due ten working
        // days after, Wednesday 7 May (the early May bank holiday on the 5th).
        check(
            "the form written",
            &stage_1(),
            day(2025, 4, 17),
            &[w(Form, Some(Raising), at(2025, 4, 22))],
            &[
                ("form", Some(day(2025, 4, 24)), Some(at(2025, 4, 22))),
                ("response", Some(day(2025, 5, 7)), None),
            ],
            Some(day(2025, 5, 7)),
        );
        check(
            "both written: nothing is due",
            &stage_1(),
            day(2025, 4, 17),
            &[
                w(Response, Some(Receiving), at(2025, 4, 30)),
                w(Form, Some(Raising), at(2025, 4, 22)),
            ],
            &[
                ("form", Some(day(2025, 4, 24)), Some(at(2025, 4, 22))),
                ("response", Some(day(2025, 5, 7)), Some(at(2025, 4, 30))),
            ],
            None,
        );
        check(
            "a form by the wrong side, a response by nobody's agency: neither counts",
            &stage_1(),
            day(2025, 4, 17),
            &[w(Form, Some(Receiving), at(2025, 4, 18)), w(Response, None, at(2025, 4, 18))],
            &[("form", Some(day(2025, 4, 24)), None), ("response", None, None)],
            Some(day(2025, 4, 24)),
        );
        check(
            "a late form still starts the response's clock",
            &stage_1(),
            day(2025, 4, 17),
            &[w(Form, Some(Raising), at(2025, 4, 28))],
            &[
                ("form", Some(day(2025, 4, 24)), Some(at(2025, 4, 28))),
                ("response", Some(day(2025, 5, 13)), None),
            ],
            Some(day(2025, 5, 13)),
        );
        // Stage 3 reached on Monday 2 June 2025.
        check(
            "two clocks from the start",
            &stage_3(),
            day(2025, 6, 2),
            &[],
            &[
                ("director", Some(day(2025, 6, 3)), None),
                ("form", Some(day(2025, 6, 3)), None),
                ("response", None, None),
            ],
            Some(day(2025, 6, 3)),
        );
        check(
            "one record completes one milestone: two notifications, the second not the form's",
            &stage_3(),
            day(2025, 6, 2),
            &[
                w(Notification, Some(Raising), at(2025, 6, 2)),
                w(Notification, Some(Raising), at(2025, 6, 3)),
            ],
            &[
                ("director", Some(day(2025, 6, 3)), Some(at(2025, 6, 2))),
                ("form", Some(day(2025, 6, 3)), None),
                ("response", None, None),
            ],
            Some(day(2025, 6, 3)),
        );
        check(
            "the form before the director's notification: the next open is the director's",
            &stage_3(),
            day(2025, 6, 2),
            &[w(Form, Some(Raising), at(2025, 6, 3))],
            &[
                ("director", Some(day(2025, 6, 3)), None),
                ("form", Some(day(2025, 6, 3)), Some(at(2025, 6, 3))),
                ("response", Some(day(2025, 6, 9)), None),
            ],
            Some(day(2025, 6, 3)),
        );
    }

    #[test]
    fn overdue_is_open_and_past_its_date() {
        let cal = Calendar::for_id("england-and-wales").unwrap();
        let ms = stage_1();
        let s = standings(cal, &ms, day(2025, 4, 17), &[]).unwrap();
        assert!(!s[0].overdue(day(2025, 4, 24)), "due today");
        assert!(s[0].overdue(day(2025, 4, 25)), "a day late");
        assert!(!s[1].overdue(day(2030, 1, 1)), "no clock yet: never overdue");
        let done = standings(
            cal,
            &ms,
            day(2025, 4, 17),
            &[w(RecordKind::Form, Some(Side::Raising), at(2025, 4, 25))],
        )
        .unwrap();
        assert!(!done[0].overdue(day(2025, 4, 28)), "completed late is not overdue");
    }

    #[test]
    fn due_soon_falls_on_working_days_before_the_due_day() {
        let cal = Calendar::for_id("england-and-wales").unwrap();
        let days =
            |from, within, percent: &[u8]| due_soon_days(cal, from, within, percent).unwrap();
        // The response's 10 working days from Tuesday 29 December 2026
        // (due Wednesday 13 January): 50% is the 5th working day (New
        // Year's Day skipped), Wednesday 6 January; 75% the 8th (7.5 up),
        // Monday 11 January.
        assert_eq!(days(day(2026, 12, 29), 10, &[50, 75]), [day(2027, 1, 6), day(2027, 1, 11)]);
        // The form's 3 days from Thursday 24 December: 50% is the 2nd
        // working day (Christmas and Boxing Day skipped), Wednesday 30th;
        // 75% is the 3rd, the due day itself: not told.
        assert_eq!(days(day(2026, 12, 24), 3, &[50, 75]), [day(2026, 12, 30)]);
        // One day: nothing before the due day.
        assert!(days(day(2027, 6, 2), 1, &[50, 75]).is_empty());
        // Two percentages on one day: told once.
        assert_eq!(days(day(2027, 6, 2), 2, &[50, 75]), [day(2027, 6, 3)]);
    }

    #[test]
    fn the_longest_chain_follows_the_clocks() {
        assert_eq!(longest_chain(&stage_1()), 13);
        assert_eq!(longest_chain(&stage_3()), 5);
        assert_eq!(longest_chain(&[]), 0);
    }
}

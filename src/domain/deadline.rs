//! Where a stage stands against its due date, in working days.

use chrono::NaiveDate;

use super::calendar::{Calendar, CalendarError};

/// A stage's standing against its due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Working days from today to the due date: 0 on the day it is due,
    /// negative once it has passed.
    pub working_days_remaining: i64,
    /// The due date has passed (the stage may be escalated as overdue).
    pub overdue: bool,
}

/// The standing of a stage due on `due_on`, seen on `today`.
pub fn standing(
    calendar: &Calendar,
    due_on: NaiveDate,
    today: NaiveDate,
) -> Result<Standing, CalendarError> {
    Ok(Standing {
        working_days_remaining: calendar.working_days_between(today, due_on)?,
        overdue: today > due_on,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(name: &str, due: (i32, u32, u32), today: (i32, u32, u32), expected: (i64, bool)) {
        let cal = Calendar::for_id("england-and-wales").unwrap();
        let d = |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let got = standing(cal, d(due), d(today)).unwrap();
        assert_eq!((got.working_days_remaining, got.overdue), expected, "{name}");
    }

    #[test]
    fn standing_against_the_due_date() {
        check("due today", (2025, 5, 7), (2025, 5, 7), (0, false));
        check("two working days left", (2025, 5, 9), (2025, 5, 7), (2, false));
        check("across the early May bank holiday", (2025, 5, 7), (2025, 5, 1), (3, false));
        check("a day late", (2025, 5, 7), (2025, 5, 8), (-1, true));
        check("late over a weekend", (2025, 5, 9), (2025, 5, 12), (-1, true));
    }
}

/// The instant a stage due on `due_on` is due: the end of that day in the
/// United Kingdom (23:59:59 London time, BST or GMT).
///
/// Written out rather than taken from a time-zone crate: the whole tz
/// database would be built in for one zone whose rule (BST from 01:00 UTC
/// on the last Sunday of March to 01:00 UTC on the last Sunday of October)
/// has held since 1996.
pub fn due_at(due_on: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    use chrono::{Datelike, Duration, NaiveTime, TimeZone, Utc, Weekday};
    let last_sunday = |month: u32| {
        let first_of_next = if month == 12 {
            NaiveDate::from_ymd_opt(due_on.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(due_on.year(), month + 1, 1)
        };
        let mut d = first_of_next.unwrap_or(due_on) - Duration::days(1);
        while d.weekday() != Weekday::Sun {
            d -= Duration::days(1);
        }
        d
    };
    let local_end = due_on.and_time(NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default());
    // At 23:59:59 local time the change (at 01:00 UTC) has happened on the
    // day itself, so a day is in summer time from the last Sunday of March
    // up to the day before the last Sunday of October.
    let bst = due_on >= last_sunday(3) && due_on < last_sunday(10);
    let offset_hours = if bst { 1 } else { 0 };
    Utc.from_utc_datetime(&(local_end - Duration::hours(offset_hours)))
}

#[cfg(test)]
mod due_at_tests {
    use super::*;

    #[track_caller]
    fn check(name: &str, day: &str, expected: &str) {
        let d: NaiveDate = day.parse().unwrap_or_default();
        assert_eq!(due_at(d).to_rfc3339(), expected, "{name}");
    }

    #[test]
    fn the_end_of_the_day_in_london() {
        check("winter", "2025-01-15", "2025-01-15T23:59:59+00:00");
        check("summer", "2025-07-01", "2025-07-01T22:59:59+00:00");
        check("the day BST starts", "2025-03-30", "2025-03-30T22:59:59+00:00");
        check("the day before BST starts", "2025-03-29", "2025-03-29T23:59:59+00:00");
        check("the day BST ends", "2025-10-26", "2025-10-26T23:59:59+00:00");
        check("the day before BST ends", "2025-10-25", "2025-10-25T22:59:59+00:00");
    }
}

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

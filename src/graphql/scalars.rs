//! The API's own scalars, `Date` and `DateTime`, named and described for
//! partners (async-graphql's chrono scalars are `NaiveDate` and
//! `DateTime`, described with Rust types and strftime patterns), each with
//! its `@specifiedBy` URL. A value that is not one is refused during
//! validation (`is_valid`), so a bad date in a literal or a variable is
//! `BAD_USER_INPUT` before anything runs.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{NaiveDate, SecondsFormat, Utc};

/// A calendar date, written `YYYY-MM-DD` (RFC 3339's full-date), e.g.
/// `2026-03-31`. Due dates are dates in England and Wales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub NaiveDate);

/// A calendar date, written `YYYY-MM-DD` (RFC 3339's full-date), e.g.
/// `2026-03-31`.
#[Scalar(name = "Date", specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => parse_date(s).map(Date).ok_or_else(|| {
                InputValueError::custom("a date is written YYYY-MM-DD, e.g. 2026-03-31")
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if parse_date(s).is_some())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    // Exactly ten characters: chrono alone would take `2026-3-1`.
    (s.len() == 10).then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()).flatten()
}

impl From<NaiveDate> for Date {
    fn from(d: NaiveDate) -> Self {
        Date(d)
    }
}

/// An instant, written as RFC 3339's date-time with its offset from UTC,
/// e.g. `2026-03-31T09:30:00Z` or `2026-03-31T10:30:00+01:00`. The server
/// answers in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// An instant, written as RFC 3339's date-time with its offset from UTC,
/// e.g. `2026-03-31T09:30:00Z` or `2026-03-31T10:30:00+01:00`. The server
/// answers in UTC.
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://www.rfc-editor.org/rfc/rfc3339#section-5.6"
)]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => parse_date_time(s).map(DateTime).ok_or_else(|| {
                InputValueError::custom(
                    "an instant is written as an RFC 3339 date-time with its offset, e.g. \
                     2026-03-31T09:30:00Z",
                )
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if parse_date_time(s).is_some())
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, false))
    }
}

fn parse_date_time(s: &str) -> Option<chrono::DateTime<Utc>> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

impl From<chrono::DateTime<Utc>> for DateTime {
    fn from(t: chrono::DateTime<Utc>) -> Self {
        DateTime(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn date(input: &str, expected: Option<&str>) {
        let got = Date::parse(Value::String(input.into())).ok().map(|d| d.to_value());
        assert_eq!(got, expected.map(|e| Value::String(e.into())), "{input}");
        assert_eq!(Date::is_valid(&Value::String(input.into())), expected.is_some(), "{input}");
    }

    #[track_caller]
    fn instant(input: &str, expected: Option<&str>) {
        let got = DateTime::parse(Value::String(input.into())).ok().map(|d| d.to_value());
        assert_eq!(got, expected.map(|e| Value::String(e.into())), "{input}");
        assert_eq!(DateTime::is_valid(&Value::String(input.into())), expected.is_some(), "{input}");
    }

    #[test]
    fn dates_are_full_dates_only() {
        date("2026-03-31", Some("2026-03-31"));
        date("2024-02-29", Some("2024-02-29"));
        date("2026-02-29", None);
        date("2026-3-1", None);
        date("31/03/2026", None);
        date("2026-03-31T00:00:00Z", None);
        date("", None);
        assert!(!Date::is_valid(&Value::Number(20260331.into())));
    }

    #[test]
    fn instants_need_an_offset_and_answer_in_utc() {
        instant("2026-03-31T09:30:00Z", Some("2026-03-31T09:30:00+00:00"));
        instant("2026-03-31T10:30:00+01:00", Some("2026-03-31T09:30:00+00:00"));
        instant("2026-03-31T09:30:00.250Z", Some("2026-03-31T09:30:00.250+00:00"));
        instant("2026-03-31T09:30:00", None);
        instant("2026-03-31", None);
        instant("yesterday", None);
        assert!(!DateTime::is_valid(&Value::Boolean(true)));
    }
}

//! Typed identifiers. Inside they are UUID v7 (time-ordered, so indexes stay
//! compact); across the API they are opaque strings. [`ChildReference`], the
//! agencies' own case number for the child, is parsed here too.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps a stored identifier.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID inside, for persistence.
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Uuid::try_parse(s.trim()).map(Self).map_err(|_| InvalidId)
            }
        }
    };
}

/// The text given is not an identifier of this service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid identifier")]
pub struct InvalidId;

id_type!(
    /// Identifies a partnership.
    PartnershipId
);
id_type!(
    /// Identifies an agency.
    AgencyId
);
id_type!(
    /// Identifies a case.
    CaseId
);

/// The longest child reference, in characters.
pub const CHILD_REFERENCE_MAX_CHARS: usize = 40;

/// The pseudonymous reference of the child a case is about: an agency case
/// number (`SWP-2026-0042`, `CP/2025/118`, `GEN-000001`), never a name.
///
/// The rule: 1 to [`CHILD_REFERENCE_MAX_CHARS`] characters, ASCII letters and
/// digits in segments joined by one `-` or `/` (none leading, trailing or
/// doubled), with at least one digit. Spaces are refused, so a name with a
/// number (`John Smith 1`) is not a reference; surrounding whitespace is
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChildReference(String);

/// Why a text is not a [`ChildReference`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidChildReference {
    /// Nothing but whitespace.
    #[error("an agency case number is required, e.g. SWP-2026-0042")]
    Empty,
    /// Longer than [`CHILD_REFERENCE_MAX_CHARS`].
    #[error("at most {CHILD_REFERENCE_MAX_CHARS} characters")]
    TooLong,
    /// A character other than an ASCII letter, a digit, `-` or `/` (a space,
    /// for one).
    #[error(
        "an agency case number, never a name: letters and digits, with - or / between them, no spaces"
    )]
    Character,
    /// A separator at the start or end, or two in a row.
    #[error("- and / go between letters or digits, one at a time")]
    Separator,
    /// No digit at all.
    #[error("an agency case number has at least one digit")]
    NoDigit,
}

impl ChildReference {
    /// Checks `text` against the rule.
    pub fn parse(text: &str) -> Result<Self, InvalidChildReference> {
        let t = text.trim();
        if t.is_empty() {
            return Err(InvalidChildReference::Empty);
        }
        if t.chars().count() > CHILD_REFERENCE_MAX_CHARS {
            return Err(InvalidChildReference::TooLong);
        }
        let separator = |c: char| matches!(c, '-' | '/');
        if !t.chars().all(|c| c.is_ascii_alphanumeric() || separator(c)) {
            return Err(InvalidChildReference::Character);
        }
        if t.split(separator).any(str::is_empty) {
            return Err(InvalidChildReference::Separator);
        }
        if !t.chars().any(|c| c.is_ascii_digit()) {
            return Err(InvalidChildReference::NoDigit);
        }
        Ok(Self(t.to_owned()))
    }

    /// The reference as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The reference as text, for persistence.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl FromStr for ChildReference {
    type Err = InvalidChildReference;

    fn from_str(s: &str) -> Result<Self, InvalidChildReference> {
        Self::parse(s)
    }
}

impl fmt::Display for ChildReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let id = CaseId::new();
        assert_eq!(id.to_string().parse::<CaseId>().unwrap(), id);
    }

    #[test]
    fn refuses_what_is_not_an_id() {
        for bad in ["", "case-1", "1234", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"] {
            assert_eq!(bad.parse::<CaseId>(), Err(InvalidId), "{bad:?}");
        }
    }

    #[track_caller]
    fn check(name: &str, text: &str, expected: Result<&str, InvalidChildReference>) {
        let got = ChildReference::parse(text);
        assert_eq!(got.as_ref().map(ChildReference::as_str), expected.as_ref().copied(), "{name}");
    }

    #[test]
    fn child_references_are_agency_case_numbers() {
        use InvalidChildReference::*;
        let forty = format!("A-{}", "1".repeat(38));
        let forty_one = format!("A-{}", "1".repeat(39));
        let rows: &[(&str, &str, Result<&str, InvalidChildReference>)] = &[
            ("a police reference", "SWP-2026-0042", Ok("SWP-2026-0042")),
            ("a generated one", "GEN-000001", Ok("GEN-000001")),
            ("slashes", "CP/2025/118", Ok("CP/2025/118")),
            ("short", "C-1", Ok("C-1")),
            ("digits only", "20260042", Ok("20260042")),
            ("lower case", "lth-2026-0101", Ok("lth-2026-0101")),
            ("surrounding space ignored", "  SWP-1 ", Ok("SWP-1")),
            ("forty characters", &forty, Ok(forty.as_str())),
            ("forty-one characters", &forty_one, Err(TooLong)),
            ("a name with a number", "John Smith 1", Err(Character)),
            ("a name", "Jane Smith", Err(Character)),
            ("underscores", "SWP_2026_1", Err(Character)),
            ("dots", "J.Smith.1", Err(Character)),
            ("an accented letter", "É-1", Err(Character)),
            ("a NUL", "SWP-1\u{0}", Err(Character)),
            ("a tab inside", "SWP\t1", Err(Character)),
            ("empty", "", Err(Empty)),
            ("blank", "   ", Err(Empty)),
            ("leading separator", "-SWP-1", Err(Separator)),
            ("trailing separator", "SWP-1/", Err(Separator)),
            ("doubled separator", "SWP--1", Err(Separator)),
            ("no digit", "SWP-ABC", Err(NoDigit)),
        ];
        for (name, text, expected) in rows {
            check(name, text, *expected);
        }
    }
}

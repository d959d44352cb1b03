//! What kind of organisation an agency is.

use std::fmt;

/// The sector an agency belongs to; used for filtering and statistics, and
/// by a protocol route that names the kinds of agency it is raised with
/// (spelt as stored, e.g. `childrens_social_care`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AgencyKind {
    /// A police force or one of its units.
    Police,
    /// An NHS body: health board, trust, integrated care board, GP practice.
    Health,
    /// Children's social care of a local authority.
    ChildrensSocialCare,
    /// Schools, colleges and education services.
    Education,
    /// The probation service.
    Probation,
    /// Housing providers.
    Housing,
    /// Voluntary and community organisations.
    Voluntary,
    /// Anything else.
    Other,
}

impl AgencyKind {
    /// Every kind, in a stable order.
    pub const ALL: [AgencyKind; 8] = [
        Self::Police,
        Self::Health,
        Self::ChildrensSocialCare,
        Self::Education,
        Self::Probation,
        Self::Housing,
        Self::Voluntary,
        Self::Other,
    ];

    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Police => "police",
            Self::Health => "health",
            Self::ChildrensSocialCare => "childrens_social_care",
            Self::Education => "education",
            Self::Probation => "probation",
            Self::Housing => "housing",
            Self::Voluntary => "voluntary",
            Self::Other => "other",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for AgencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for kind in AgencyKind::ALL {
            assert_eq!(AgencyKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(AgencyKind::parse("Police"), None);
    }

    #[test]
    fn protocol_files_spell_kinds_as_stored() {
        for kind in AgencyKind::ALL {
            let read: AgencyKind =
                serde_json::from_value(serde_json::Value::from(kind.as_str())).unwrap();
            assert_eq!(read, kind);
        }
        assert!(serde_json::from_value::<AgencyKind>("csc".into()).is_err());
    }
}

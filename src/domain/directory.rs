//! The directory's rules (issue 15): what importing a directory file
//! changes, and what one change by a directory administrator may do.
//!
//! A directory file is TOML, the format of `data/demo/partnerships.toml`
//! (the demo's is just one such file): partnerships by `code` with their
//! name, adopted protocol and calendar, each with its agencies by `code`
//! (name, kind, and optionally `active`). Importing matches rows by code,
//! creates what is new and updates what differs; **nothing is deleted**:
//! an agency the file leaves out is reported and kept, and only
//! `active = false` deactivates one (`active = true` reactivates it; left
//! out, its state is kept). A deactivated agency keeps its cases and
//! history, raises nothing new and its tokens are refused.
//!
//! Pure: the service loads the current directory, asks [`plan_import`] or
//! the single-change rules, and writes the returned changes with one
//! `directory_change` row each.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::agency::AgencyKind;

/// A directory file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFile {
    /// The partnerships, each with its agencies.
    #[serde(default)]
    pub partnership: Vec<PartnershipEntry>,
}

/// One partnership of a directory file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnershipEntry {
    /// Stable code, as tokens carry it.
    pub code: String,
    /// Display name.
    pub name: String,
    /// The id of the protocol it has adopted.
    pub protocol: String,
    /// Its working-day calendar (its nation's), e.g. `england-and-wales`.
    pub calendar: String,
    /// Its agencies.
    #[serde(default)]
    pub agencies: Vec<AgencyEntry>,
}

/// One agency of a directory file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgencyEntry {
    /// Stable code, unique across every partnership, as tokens carry it.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Sector, spelt as stored (`police`, `childrens_social_care`, ...).
    pub kind: String,
    /// `false` deactivates the agency, `true` reactivates it; left out, a
    /// new agency is active and a stored one keeps its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// The directory as stored, as [`plan_import`] compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Adopted protocol id.
    pub protocol: String,
    /// Calendar id.
    pub calendar: String,
    /// Its agencies.
    pub agencies: Vec<ExistingAgency>,
}

/// A stored agency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingAgency {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Sector.
    pub kind: AgencyKind,
    /// Not deactivated.
    pub active: bool,
}

/// A value before and after a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved<T> {
    /// As stored.
    pub before: T,
    /// As it is to be.
    pub after: T,
}

fn moved<T: PartialEq + Clone>(before: &T, after: &T) -> Option<Moved<T>> {
    (before != after).then(|| Moved { before: before.clone(), after: after.clone() })
}

/// One change to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new partnership.
    CreatePartnership {
        /// Code.
        code: String,
        /// Name.
        name: String,
        /// Adopted protocol id.
        protocol: String,
        /// Calendar id.
        calendar: String,
    },
    /// A partnership's name, protocol or calendar changes.
    UpdatePartnership {
        /// Code.
        code: String,
        /// The name, where it changes.
        name: Option<Moved<String>>,
        /// The adopted protocol, where it changes.
        protocol: Option<Moved<String>>,
        /// The calendar, where it changes.
        calendar: Option<Moved<String>>,
    },
    /// A new agency.
    CreateAgency {
        /// Its partnership's code.
        partnership: String,
        /// Code.
        code: String,
        /// Name.
        name: String,
        /// Sector.
        kind: AgencyKind,
        /// Created active (false: created deactivated).
        active: bool,
    },
    /// An agency's name or kind changes.
    UpdateAgency {
        /// Its partnership's code.
        partnership: String,
        /// Code.
        code: String,
        /// The name, where it changes.
        name: Option<Moved<String>>,
        /// The kind, where it changes.
        kind: Option<Moved<AgencyKind>>,
    },
    /// An agency is deactivated.
    DeactivateAgency {
        /// Its partnership's code.
        partnership: String,
        /// Code.
        code: String,
    },
    /// A deactivated agency is made active again.
    ReactivateAgency {
        /// Its partnership's code.
        partnership: String,
        /// Code.
        code: String,
    },
}

impl Change {
    /// The action's stored name (`directory_change.action`).
    pub fn action(&self) -> &'static str {
        match self {
            Self::CreatePartnership { .. } => "partnership_created",
            Self::UpdatePartnership { .. } => "partnership_updated",
            Self::CreateAgency { .. } => "agency_created",
            Self::UpdateAgency { .. } => "agency_updated",
            Self::DeactivateAgency { .. } => "agency_deactivated",
            Self::ReactivateAgency { .. } => "agency_reactivated",
        }
    }

    /// Whether the change only adds (what loading the demo does to a
    /// directory that already holds rows).
    pub fn only_adds(&self) -> bool {
        matches!(self, Self::CreatePartnership { .. } | Self::CreateAgency { .. })
    }

    /// The partnership it concerns.
    pub fn partnership(&self) -> &str {
        match self {
            Self::CreatePartnership { code, .. } | Self::UpdatePartnership { code, .. } => code,
            Self::CreateAgency { partnership, .. }
            | Self::UpdateAgency { partnership, .. }
            | Self::DeactivateAgency { partnership, .. }
            | Self::ReactivateAgency { partnership, .. } => partnership,
        }
    }

    /// The agency it concerns, if any.
    pub fn agency(&self) -> Option<&str> {
        match self {
            Self::CreatePartnership { .. } | Self::UpdatePartnership { .. } => None,
            Self::CreateAgency { code, .. }
            | Self::UpdateAgency { code, .. }
            | Self::DeactivateAgency { code, .. }
            | Self::ReactivateAgency { code, .. } => Some(code),
        }
    }

    /// What the change stores in its `directory_change` row: the values
    /// set, or each changed field's before and after.
    pub fn data(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Self::CreatePartnership { name, protocol, calendar, .. } => {
                json!({ "name": name, "protocol": protocol, "calendar": calendar })
            }
            Self::UpdatePartnership { name, protocol, calendar, .. } => {
                json!({ "name": name, "protocol": protocol, "calendar": calendar })
            }
            Self::CreateAgency { name, kind, active, .. } => {
                json!({ "name": name, "kind": kind.as_str(), "active": active })
            }
            Self::UpdateAgency { name, kind, .. } => json!({
                "name": name,
                "kind": kind.as_ref().map(|k| Moved { before: k.before.as_str(), after: k.after.as_str() }),
            }),
            Self::DeactivateAgency { .. } => {
                json!({ "active": Moved { before: true, after: false } })
            }
            Self::ReactivateAgency { .. } => {
                json!({ "active": Moved { before: false, after: true } })
            }
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn field<T: fmt::Debug>(
            f: &mut fmt::Formatter<'_>,
            what: &str,
            m: &Option<Moved<T>>,
        ) -> fmt::Result {
            match m {
                Some(m) => write!(f, "; {what} {:?} -> {:?}", m.before, m.after),
                None => Ok(()),
            }
        }
        match self {
            Self::CreatePartnership { code, name, protocol, calendar } => write!(
                f,
                "create partnership {code} ({name:?}, protocol {protocol}, calendar {calendar})"
            ),
            Self::UpdatePartnership { code, name, protocol, calendar } => {
                write!(f, "update partnership {code}")?;
                field(f, "name", name)?;
                field(f, "protocol", protocol)?;
                field(f, "calendar", calendar)
            }
            Self::CreateAgency { partnership, code, name, kind, active } => write!(
                f,
                "create agency {code} in {partnership} ({name:?}, {kind}{})",
                if *active { "" } else { ", deactivated" }
            ),
            Self::UpdateAgency { partnership, code, name, kind } => {
                write!(f, "update agency {code} in {partnership}")?;
                field(f, "name", name)?;
                field(
                    f,
                    "kind",
                    &kind
                        .as_ref()
                        .map(|k| Moved { before: k.before.as_str(), after: k.after.as_str() }),
                )
            }
            Self::DeactivateAgency { partnership, code } => {
                write!(f, "deactivate agency {code} in {partnership}")
            }
            Self::ReactivateAgency { partnership, code } => {
                write!(f, "reactivate agency {code} in {partnership}")
            }
        }
    }
}

/// What an import would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPlan {
    /// The changes, in file order (a partnership before its agencies).
    pub changes: Vec<Change>,
    /// Stored agencies the file leaves out of their partnership, as
    /// (partnership, agency): kept as they are, and reported.
    pub left_out: Vec<(String, String)>,
}

/// What the directory knows that a file must agree with: the protocols
/// and calendars this server has.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    /// Protocol ids, each with the calendars its versions count working
    /// days with (a partnership's must be its protocol's:
    /// `calendar::check_partnership_calendar`).
    pub protocols: &'a BTreeMap<String, BTreeSet<String>>,
    /// Calendar ids.
    pub calendars: &'a [&'a str],
}

/// Whether `code` is a well-formed directory code: 1 to 64 lowercase
/// letters, digits and single inner hyphens (what tokens carry).
pub fn code_problem(code: &str) -> Option<&'static str> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !code.starts_with('-')
        && !code.ends_with('-')
        && !code.contains("--");
    (!ok).then_some("must be 1 to 64 lowercase letters, digits and single hyphens, e.g. wb-police")
}

/// Whether `name` is a usable display name: not blank, at most 200
/// characters.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("must not be empty")
    } else if name.chars().count() > 200 {
        Some("must be at most 200 characters")
    } else {
        None
    }
}

/// Plans importing `file` over `current`: every problem at once
/// (`Err`), or the changes and the agencies left out. Rules: codes well
/// formed and unique in the file (agency codes across every partnership);
/// names not empty; kinds, protocols and calendars known; an agency code
/// stored under another partnership cannot move.
pub fn plan_import(
    current: &[Existing],
    file: &DirectoryFile,
    known: Known<'_>,
) -> Result<ImportPlan, Vec<String>> {
    let mut problems = Vec::new();
    let stored: BTreeMap<&str, &Existing> = current.iter().map(|p| (p.code.as_str(), p)).collect();
    let home: BTreeMap<&str, (&str, &ExistingAgency)> = current
        .iter()
        .flat_map(|p| p.agencies.iter().map(move |a| (a.code.as_str(), (p.code.as_str(), a))))
        .collect();
    let mut seen_p = BTreeSet::new();
    let mut seen_a = BTreeSet::new();
    let mut plan = ImportPlan::default();
    for (i, p) in file.partnership.iter().enumerate() {
        let at = format!("partnership[{i}] ({})", p.code);
        if let Some(why) = code_problem(&p.code) {
            problems.push(format!("{at}.code {why}"));
        }
        if !seen_p.insert(p.code.as_str()) {
            problems.push(format!("{at}.code is listed twice"));
        }
        if let Some(why) = name_problem(&p.name) {
            problems.push(format!("{at}.name {why}"));
        }
        let calendar_known = known.calendars.contains(&p.calendar.as_str());
        if !calendar_known {
            problems.push(format!(
                "{at}.calendar {:?} is not a calendar of this server (known: {})",
                p.calendar,
                known.calendars.join(", ")
            ));
        }
        match known.protocols.get(&p.protocol) {
            None => {
                let ids: Vec<&str> = known.protocols.keys().map(String::as_str).collect();
                problems.push(format!(
                    "{at}.protocol {:?} is not a protocol of this server (known: {})",
                    p.protocol,
                    ids.join(", ")
                ));
            }
            Some(calendars) if calendar_known => {
                // Every version: a case keeps the version it was raised under.
                for protocol_calendar in calendars {
                    if let Err(e) = super::calendar::check_partnership_calendar(
                        &p.code,
                        &p.calendar,
                        &p.protocol,
                        protocol_calendar,
                    ) {
                        problems.push(format!("{at}.calendar: {e}"));
                    }
                }
            }
            Some(_) => {}
        }
        match stored.get(p.code.as_str()) {
            None => plan.changes.push(Change::CreatePartnership {
                code: p.code.clone(),
                name: p.name.clone(),
                protocol: p.protocol.clone(),
                calendar: p.calendar.clone(),
            }),
            Some(old) => {
                let (name, protocol, calendar) = (
                    moved(&old.name, &p.name),
                    moved(&old.protocol, &p.protocol),
                    moved(&old.calendar, &p.calendar),
                );
                if name.is_some() || protocol.is_some() || calendar.is_some() {
                    plan.changes.push(Change::UpdatePartnership {
                        code: p.code.clone(),
                        name,
                        protocol,
                        calendar,
                    });
                }
            }
        }
        for (j, a) in p.agencies.iter().enumerate() {
            let at = format!("{at}.agencies[{j}] ({})", a.code);
            if let Some(why) = code_problem(&a.code) {
                problems.push(format!("{at}.code {why}"));
            }
            if !seen_a.insert(a.code.as_str()) {
                problems.push(format!(
                    "{at}.code is listed twice (agency codes are unique across partnerships)"
                ));
            }
            if let Some(why) = name_problem(&a.name) {
                problems.push(format!("{at}.name {why}"));
            }
            let Some(kind) = AgencyKind::parse(&a.kind) else {
                let kinds: Vec<&str> = AgencyKind::ALL.iter().map(|k| k.as_str()).collect();
                problems.push(format!("{at}.kind {:?} is not one of {}", a.kind, kinds.join(", ")));
                continue;
            };
            match home.get(a.code.as_str()) {
                Some((owner, _)) if *owner != p.code => problems.push(format!(
                    "{at}.code belongs to partnership {owner}; an agency cannot move between partnerships"
                )),
                Some((_, old)) => {
                    let (name, kind) = (moved(&old.name, &a.name), moved(&old.kind, &kind));
                    if name.is_some() || kind.is_some() {
                        plan.changes.push(Change::UpdateAgency {
                            partnership: p.code.clone(),
                            code: a.code.clone(),
                            name,
                            kind,
                        });
                    }
                    match (old.active, a.active) {
                        (true, Some(false)) => plan.changes.push(Change::DeactivateAgency {
                            partnership: p.code.clone(),
                            code: a.code.clone(),
                        }),
                        (false, Some(true)) => plan.changes.push(Change::ReactivateAgency {
                            partnership: p.code.clone(),
                            code: a.code.clone(),
                        }),
                        _ => {}
                    }
                }
                None => plan.changes.push(Change::CreateAgency {
                    partnership: p.code.clone(),
                    code: a.code.clone(),
                    name: a.name.clone(),
                    kind,
                    active: a.active.unwrap_or(true),
                }),
            }
        }
        if let Some(old) = stored.get(p.code.as_str()) {
            for a in &old.agencies {
                if !p.agencies.iter().any(|e| e.code == a.code) {
                    plan.left_out.push((p.code.clone(), a.code.clone()));
                }
            }
        }
    }
    if problems.is_empty() { Ok(plan) } else { Err(problems) }
}

/// The directory file of `current`: what `escalations directory export`
/// writes, which [`plan_import`] reads back as no change. Every agency
/// states `active`.
pub fn export(current: &[Existing]) -> DirectoryFile {
    DirectoryFile {
        partnership: current
            .iter()
            .map(|p| PartnershipEntry {
                code: p.code.clone(),
                name: p.name.clone(),
                protocol: p.protocol.clone(),
                calendar: p.calendar.clone(),
                agencies: p
                    .agencies
                    .iter()
                    .map(|a| AgencyEntry {
                        code: a.code.clone(),
                        name: a.name.clone(),
                        kind: a.kind.as_str().to_owned(),
                        active: Some(a.active),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Why a single directory change by an administrator is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryRefusal {
    /// A code or name is malformed.
    #[error("{field}: {why}")]
    Malformed {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// The agency is already in the state asked for.
    #[error("the agency is already {0}")]
    AlreadySo(&'static str),
    /// Nothing would change.
    #[error("the agency is already called that")]
    Unchanged,
}

/// Whether an agency may take part in something new (raise a case, be
/// raised with, join one): not once it is deactivated. Its existing cases
/// carry on, and their history stays.
pub fn takes_new_work(active: bool) -> Result<(), &'static str> {
    if active {
        Ok(())
    } else {
        Err("the agency has been deactivated: it keeps its cases and history, but takes part \
             in nothing new")
    }
}

/// Checks a new agency's code and name.
pub fn check_new_agency(code: &str, name: &str) -> Result<(), DirectoryRefusal> {
    if let Some(why) = code_problem(code) {
        return Err(DirectoryRefusal::Malformed { field: "code", why });
    }
    if let Some(why) = name_problem(name) {
        return Err(DirectoryRefusal::Malformed { field: "name", why });
    }
    Ok(())
}

/// Checks a rename.
pub fn check_rename(old: &str, new: &str) -> Result<(), DirectoryRefusal> {
    if let Some(why) = name_problem(new) {
        return Err(DirectoryRefusal::Malformed { field: "name", why });
    }
    if old == new {
        return Err(DirectoryRefusal::Unchanged);
    }
    Ok(())
}

/// Checks turning an agency `active` (true) or not, from `was`.
pub fn check_activation(was: bool, active: bool) -> Result<(), DirectoryRefusal> {
    match (was, active) {
        (true, true) => Err(DirectoryRefusal::AlreadySo("active")),
        (false, false) => Err(DirectoryRefusal::AlreadySo("deactivated")),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn known() -> (BTreeMap<String, BTreeSet<String>>, Vec<&'static str>) {
        let ew = || BTreeSet::from(["england-and-wales".to_owned()]);
        (
            [("western-bay".to_owned(), ew()), ("leeds".to_owned(), ew())].into_iter().collect(),
            vec!["england-and-wales", "scotland"],
        )
    }

    fn stored() -> Vec<Existing> {
        vec![Existing {
            code: "wb".into(),
            name: "Western Bay".into(),
            protocol: "western-bay".into(),
            calendar: "england-and-wales".into(),
            agencies: vec![
                ExistingAgency {
                    code: "wb-police".into(),
                    name: "Police".into(),
                    kind: AgencyKind::Police,
                    active: true,
                },
                ExistingAgency {
                    code: "wb-health".into(),
                    name: "Health".into(),
                    kind: AgencyKind::Health,
                    active: true,
                },
                ExistingAgency {
                    code: "wb-old".into(),
                    name: "Old".into(),
                    kind: AgencyKind::Other,
                    active: false,
                },
            ],
        }]
    }

    fn file(text: &str) -> DirectoryFile {
        toml::from_str(text).unwrap()
    }

    fn plan(text: &str) -> Result<ImportPlan, Vec<String>> {
        let (protocols, calendars) = known();
        plan_import(&stored(), &file(text), Known { protocols: &protocols, calendars: &calendars })
    }

    const SAME: &str = r#"
[[partnership]]
code = "wb"
name = "Western Bay"
protocol = "western-bay"
calendar = "england-and-wales"
agencies = [
  { code = "wb-police", name = "Police", kind = "police" },
  { code = "wb-health", name = "Health", kind = "health" },
  { code = "wb-old", name = "Old", kind = "other" },
]
"#;

    #[test]
    fn the_same_directory_changes_nothing_and_an_export_reads_back_as_no_change() {
        assert_eq!(plan(SAME).unwrap(), ImportPlan::default());
        let exported = toml::to_string(&export(&stored())).unwrap();
        assert_eq!(plan(&exported).unwrap(), ImportPlan::default(), "{exported}");
        // The export states each agency's state.
        assert!(exported.contains("active = false"), "{exported}");
    }

    /// (what, the agencies' lines, the changes shown, the agencies left out).
    type ImportCase<'a> = (&'a str, &'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);

    #[rustfmt::skip]
    #[test]
    fn an_import_creates_updates_and_never_deletes() {
        let cases: &[ImportCase<'_>] = &[
            ("a rename and a new agency",
             r#"wb-police", name = "South Wales Police", kind = "police" },
  { code = "wb-health", name = "Health", kind = "health" },
  { code = "wb-old", name = "Old", kind = "other" },
  { code = "wb-school", name = "School", kind = "education" },"#,
             &["update agency wb-police in wb; name \"Police\" -> \"South Wales Police\"",
               "create agency wb-school in wb (\"School\", education)"], &[]),
            ("an agency left out is reported, not removed",
             r#"wb-police", name = "Police", kind = "police" },"#,
             &[], &[("wb", "wb-health"), ("wb", "wb-old")]),
            ("active = false deactivates; active = true reactivates",
             r#"wb-police", name = "Police", kind = "police", active = false },
  { code = "wb-health", name = "Health", kind = "health", active = true },
  { code = "wb-old", name = "Old", kind = "other", active = true },"#,
             &["deactivate agency wb-police in wb", "reactivate agency wb-old in wb"], &[]),
            ("a kind changes",
             r#"wb-police", name = "Police", kind = "police" },
  { code = "wb-health", name = "Health", kind = "other" },
  { code = "wb-old", name = "Old", kind = "other" },"#,
             &["update agency wb-health in wb; kind \"health\" -> \"other\""], &[]),
        ];
        for (what, agencies, changes, left_out) in cases {
            let text = format!(
                "[[partnership]]\ncode = \"wb\"\nname = \"Western Bay\"\nprotocol = \"western-bay\"\ncalendar = \"england-and-wales\"\nagencies = [\n  {{ code = \"{agencies}\n]\n"
            );
            let got = plan(&text).unwrap_or_else(|p| panic!("{what}: {p:?}"));
            let shown: Vec<String> = got.changes.iter().map(ToString::to_string).collect();
            assert_eq!(shown, *changes, "{what}");
            let left: Vec<(&str, &str)> = got.left_out.iter().map(|(p, a)| (p.as_str(), a.as_str())).collect();
            assert_eq!(left, *left_out, "{what}");
        }
    }

    #[test]
    fn a_new_partnership_and_a_changed_one() {
        let text = SAME
            .replace("name = \"Western Bay\"", "name = \"Western Bay SCB\"")
            .replace("protocol = \"western-bay\"", "protocol = \"leeds\"")
            + r#"
[[partnership]]
code = "leeds"
name = "Leeds"
protocol = "leeds"
calendar = "england-and-wales"
agencies = [{ code = "l-police", name = "West Yorkshire Police", kind = "police", active = false }]
"#;
        let shown: Vec<String> =
            plan(&text).unwrap().changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "update partnership wb; name \"Western Bay\" -> \"Western Bay SCB\"; protocol \"western-bay\" -> \"leeds\"",
                "create partnership leeds (\"Leeds\", protocol leeds, calendar england-and-wales)",
                "create agency l-police in leeds (\"West Yorkshire Police\", police, deactivated)",
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_and_nothing_is_planned() {
        let text = r#"
[[partnership]]
code = "Bad Code"
name = " "
protocol = "nowhere"
calendar = "mars"
agencies = [
  { code = "wb-police", name = "Police", kind = "police" },
  { code = "x", name = "X", kind = "army" },
  { code = "x", name = "", kind = "other" },
]
"#;
        let problems = plan(text).unwrap_err();
        let expect = [
            "partnership[0] (Bad Code).code must be 1 to 64 lowercase",
            "partnership[0] (Bad Code).name must not be empty",
            "partnership[0] (Bad Code).calendar \"mars\" is not a calendar of this server (known: england-and-wales, scotland)",
            "partnership[0] (Bad Code).protocol \"nowhere\" is not a protocol of this server (known: leeds, western-bay)",
            "agencies[0] (wb-police).code belongs to partnership wb; an agency cannot move",
            "agencies[1] (x).kind \"army\" is not one of police, health",
            "agencies[2] (x).code is listed twice",
            "agencies[2] (x).name must not be empty",
        ];
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
        for (got, want) in problems.iter().zip(expect) {
            assert!(got.contains(want), "{got:?} should contain {want:?}");
        }
        // A partnership's calendar must be its protocol's.
        let scottish = SAME.replace("calendar = \"england-and-wales\"", "calendar = \"scotland\"");
        assert_eq!(
            plan(&scottish).unwrap_err(),
            [
                "partnership[0] (wb).calendar: partnership \"wb\" names the calendar \"scotland\", but its protocol \"western-bay\" counts working days with \"england-and-wales\""
            ]
        );
        // Unknown keys are parse errors.
        assert!(
            toml::from_str::<DirectoryFile>(
                "[[partnership]]\ncode='a'\nname='a'\nprotocol='a'\ncalendar='a'\ncolour='red'\n"
            )
            .is_err()
        );
    }

    #[rustfmt::skip]
    #[test]
    fn codes_and_names_and_single_changes() {
        for (code, ok) in [("wb-police", true), ("a", true), ("a1-b2", true), ("", false), ("-a", false), ("a-", false), ("a--b", false), ("A", false), ("a_b", false), ("a b", false), (&"a".repeat(65) as &str, false)] {
            assert_eq!(code_problem(code).is_none(), ok, "{code:?}");
        }
        assert_eq!(check_new_agency("wb-x", "X"), Ok(()));
        assert_eq!(check_new_agency("WB", "X"), Err(DirectoryRefusal::Malformed { field: "code", why: code_problem("WB").unwrap() }));
        assert_eq!(check_new_agency("wb-x", "  "), Err(DirectoryRefusal::Malformed { field: "name", why: "must not be empty" }));
        assert_eq!(check_rename("A", "B"), Ok(()));
        assert_eq!(check_rename("A", "A"), Err(DirectoryRefusal::Unchanged));
        assert_eq!(check_rename("A", &"n".repeat(201)), Err(DirectoryRefusal::Malformed { field: "name", why: "must be at most 200 characters" }));
        assert_eq!(takes_new_work(true), Ok(()));
        assert!(takes_new_work(false).unwrap_err().contains("deactivated"));
        assert_eq!(check_activation(true, false), Ok(()));
        assert_eq!(check_activation(false, true), Ok(()));
        assert_eq!(check_activation(true, true), Err(DirectoryRefusal::AlreadySo("active")));
        assert_eq!(check_activation(false, false), Err(DirectoryRefusal::AlreadySo("deactivated")));
    }
}

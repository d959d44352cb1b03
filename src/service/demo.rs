//! The demo directory: the five seed partnerships and their agencies,
//! from `data/demo/partnerships.toml` (embedded in the binary).
//!
//! A partnership's `calendar` must be its adopted protocol's: deadlines are
//! counted with the protocol's calendar and statistics with the
//! partnership's, so a directory where they differ is refused
//! ([`crate::domain::calendar::check_partnership_calendar`]).

use chrono::Utc;
use entity::{agency, partnership};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use serde::Deserialize;

use super::ServiceError;
use crate::domain::agency::AgencyKind;
use crate::domain::calendar::check_partnership_calendar;
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AgencyId, PartnershipId};

const DEMO_DIRECTORY: &str = include_str!("../../data/demo/partnerships.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Directory {
    partnership: Vec<DemoPartnership>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoPartnership {
    code: String,
    name: String,
    protocol: String,
    calendar: String,
    agencies: Vec<DemoAgency>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoAgency {
    code: String,
    name: String,
    kind: String,
}

/// What a demo load did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    /// Partnerships inserted (existing ones are left alone).
    pub partnerships_added: usize,
    /// Agencies inserted.
    pub agencies_added: usize,
}

fn directory() -> Result<Directory, ServiceError> {
    parse_directory(DEMO_DIRECTORY)
}

fn parse_directory(text: &str) -> Result<Directory, ServiceError> {
    let dir: Directory = toml::from_str(text)
        .map_err(|e| ServiceError::bad_input("demo directory", e.to_string()))?;
    let catalog = Catalog::builtin().map_err(|e| ServiceError::Internal(e.to_string()))?;
    for p in &dir.partnership {
        let mut versions = catalog.all().filter(|v| v.id() == p.protocol).peekable();
        if versions.peek().is_none() {
            return Err(ServiceError::bad_input(
                "demo directory",
                format!("partnership {} adopts the unknown protocol {:?}", p.code, p.protocol),
            ));
        }
        // Every version: a case keeps the version it was raised under.
        for version in versions {
            check_partnership_calendar(&p.code, &p.calendar, &p.protocol, version.calendar())
                .map_err(|e| ServiceError::bad_input("demo directory", e.to_string()))?;
        }
        for a in &p.agencies {
            if AgencyKind::parse(&a.kind).is_none() {
                return Err(ServiceError::bad_input(
                    "demo directory",
                    format!("agency {} has unknown kind {:?}", a.code, a.kind),
                ));
            }
        }
    }
    Ok(dir)
}

/// Loads the demo directory in one transaction. Idempotent: partnerships and
/// agencies are matched by code, and nothing already stored is changed.
pub async fn seed_directory(db: &DatabaseConnection) -> Result<SeedReport, ServiceError> {
    let dir = directory()?;
    let txn = db.begin().await?;
    let mut report = SeedReport::default();
    let now = Utc::now();
    for p in dir.partnership {
        let existing = partnership::Entity::find()
            .filter(partnership::Column::Code.eq(&p.code))
            .one(&txn)
            .await?;
        let partnership_id = match existing {
            Some(row) => row.id,
            None => {
                let id = PartnershipId::new().uuid();
                partnership::Entity::insert(partnership::ActiveModel {
                    id: Set(id),
                    code: Set(p.code.clone()),
                    name: Set(p.name.clone()),
                    protocol_id: Set(p.protocol.clone()),
                    calendar: Set(p.calendar.clone()),
                    created_at: Set(now),
                })
                .exec_without_returning(&txn)
                .await?;
                report.partnerships_added += 1;
                id
            }
        };
        for a in p.agencies {
            let exists = agency::Entity::find()
                .filter(agency::Column::Code.eq(&a.code))
                .one(&txn)
                .await?
                .is_some();
            if exists {
                continue;
            }
            agency::Entity::insert(agency::ActiveModel {
                id: Set(AgencyId::new().uuid()),
                partnership_id: Set(partnership_id),
                code: Set(a.code),
                name: Set(a.name),
                kind: Set(a.kind),
                created_at: Set(now),
            })
            .exec_without_returning(&txn)
            .await?;
            report.agencies_added += 1;
        }
    }
    txn.commit().await?;
    Ok(report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn demo_directory_parses_with_five_partnerships_of_distinct_codes() {
        let dir = directory().unwrap();
        assert_eq!(dir.partnership.len(), 5);
        let mut codes: Vec<&str> = dir
            .partnership
            .iter()
            .flat_map(|p| p.agencies.iter().map(|a| a.code.as_str()))
            .collect();
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "agency codes must be unique");
    }

    fn refusal(calendar: &str, protocol: &str) -> String {
        let text = format!(
            "[[partnership]]\ncode = \"p\"\nname = \"P\"\nprotocol = \"{protocol}\"\ncalendar = \"{calendar}\"\nagencies = []\n"
        );
        match parse_directory(&text) {
            Err(ServiceError::BadInput { message, .. }) => message,
            other => panic!("{calendar} / {protocol}: {other:?}"),
        }
    }

    #[test]
    fn a_partnership_whose_calendar_is_not_its_protocols_is_refused() {
        let ok = "[[partnership]]\ncode = \"p\"\nname = \"P\"\nprotocol = \"rotherham\"\ncalendar = \"england-and-wales\"\nagencies = []\n";
        assert_eq!(parse_directory(ok).unwrap().partnership.len(), 1);
        assert_eq!(
            refusal("scotland", "rotherham"),
            "partnership \"p\" names the calendar \"scotland\", but its protocol \"rotherham\" counts working days with \"england-and-wales\""
        );
        assert_eq!(refusal("wales", "rotherham"), "unknown calendar \"wales\"");
        assert_eq!(
            refusal("england-and-wales", "nowhere"),
            "partnership p adopts the unknown protocol \"nowhere\""
        );
    }
}

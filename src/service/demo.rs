//! The demo directory: the five seed partnerships and their agencies,
//! from `data/demo/partnerships.toml` (embedded in the binary).

use chrono::Utc;
use entity::{agency, partnership};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use serde::Deserialize;

use super::ServiceError;
use crate::domain::agency::AgencyKind;
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
    let dir: Directory = toml::from_str(DEMO_DIRECTORY)
        .map_err(|e| ServiceError::bad_input("demo directory", e.to_string()))?;
    for p in &dir.partnership {
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
                    protocol_version: Set(None),
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
#[allow(clippy::unwrap_used)]
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
}

//! The demo directory: the five seed partnerships and their agencies,
//! from `data/demo/partnerships.toml` (embedded in the binary), a
//! directory file like any other (`escalations directory import`), loaded
//! by adding only what is missing.

use sea_orm::DatabaseConnection;

use super::ServiceError;
use super::directory::{ImportMode, import};
use crate::domain::catalog::Catalog;
use crate::domain::directory::Change;

/// The demo directory file.
pub const DEMO_DIRECTORY: &str = include_str!("../../data/demo/partnerships.toml");

/// Who the demo load's directory changes are attributed to.
const DEMO_ACTOR: &str = "demo";

/// What a demo load did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    /// Partnerships inserted (existing ones are left alone).
    pub partnerships_added: usize,
    /// Agencies inserted.
    pub agencies_added: usize,
}

/// Loads the demo directory in one transaction. Idempotent: partnerships and
/// agencies are matched by code, and nothing already stored is changed
/// (a rename or a deactivation made since stays).
pub async fn seed_directory(
    db: &DatabaseConnection,
    catalog: &Catalog,
) -> Result<SeedReport, ServiceError> {
    let report = import(db, catalog, DEMO_DIRECTORY, DEMO_ACTOR, ImportMode::AddOnly).await?;
    let count = |f: fn(&Change) -> bool| report.changes.iter().filter(|c| f(c)).count();
    Ok(SeedReport {
        partnerships_added: count(|c| matches!(c, Change::CreatePartnership { .. })),
        agencies_added: count(|c| matches!(c, Change::CreateAgency { .. })),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::directory::DirectoryFile;

    #[test]
    fn demo_directory_parses_with_five_partnerships_of_distinct_codes() {
        let dir: DirectoryFile = toml::from_str(DEMO_DIRECTORY).unwrap();
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

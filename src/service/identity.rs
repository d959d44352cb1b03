//! Resolves the partnership and agency codes of a verified token to ids.
//!
//! The directory changes rarely and every request needs it, so resolved
//! partnerships are cached in memory; a miss (an unknown code, or an agency
//! added since) reloads from the database. Nothing is cached negatively.
//! A change to the directory in this process ([`changed`]) empties the
//! cache at once; one made by another process (or the command line) is
//! seen once the entry is older than the cache's lifetime
//! (`DIRECTORY_CACHE_SECONDS`, 30 by default): a deactivated agency's
//! tokens are refused from then on.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Raised by every change to the directory in this process.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Tells this process's caches that the directory changed (after the
/// change's commit).
pub fn changed() {
    GENERATION.fetch_add(1, Ordering::Release);
}

use entity::{agency, partnership};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::ServiceError;
use crate::domain::ids::{AgencyId, PartnershipId};

#[derive(Debug, Clone)]
struct Entry {
    id: PartnershipId,
    /// Each agency's id and whether it is active.
    agencies: HashMap<String, (AgencyId, bool)>,
    loaded: Instant,
    generation: u64,
}

/// What the codes of a token name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// Both found, the agency (if any) inside the partnership.
    Found {
        /// The partnership.
        partnership: PartnershipId,
        /// The agency.
        agency: Option<AgencyId>,
    },
    /// No partnership has that code.
    UnknownPartnership,
    /// The partnership has no agency with that code.
    UnknownAgency,
    /// The agency was deactivated: its tokens are refused.
    DeactivatedAgency,
}

/// Cache of partnership and agency codes.
#[derive(Debug)]
pub struct DirectoryCache {
    entries: RwLock<HashMap<String, Entry>>,
    lifetime: Duration,
}

impl Default for DirectoryCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(30))
    }
}

impl DirectoryCache {
    /// A cache whose entries are read again once older than `lifetime`.
    pub fn new(lifetime: Duration) -> Self {
        Self { entries: RwLock::default(), lifetime }
    }

    fn lookup(&self, partnership: &str, agency: Option<&str>) -> Option<Resolved> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(partnership)?;
        if entry.generation != GENERATION.load(Ordering::Acquire)
            || entry.loaded.elapsed() > self.lifetime
        {
            return None;
        }
        match agency {
            None => Some(Resolved::Found { partnership: entry.id, agency: None }),
            Some(code) => entry.agencies.get(code).map(|&(a, active)| {
                if active {
                    Resolved::Found { partnership: entry.id, agency: Some(a) }
                } else {
                    Resolved::DeactivatedAgency
                }
            }),
        }
    }

    /// Resolves the codes, reading the database on a miss.
    pub async fn resolve(
        &self,
        db: &impl ConnectionTrait,
        partnership_code: &str,
        agency_code: Option<&str>,
    ) -> Result<Resolved, ServiceError> {
        if let Some(found) = self.lookup(partnership_code, agency_code) {
            return Ok(found);
        }
        let generation = GENERATION.load(Ordering::Acquire);
        let Some(p) = partnership::Entity::find()
            .filter(partnership::Column::Code.eq(partnership_code))
            .one(db)
            .await?
        else {
            return Ok(Resolved::UnknownPartnership);
        };
        let agencies = agency::Entity::find()
            .filter(agency::Column::PartnershipId.eq(p.id))
            .all(db)
            .await?
            .into_iter()
            .map(|a| (a.code, (AgencyId::from_uuid(a.id), a.active)))
            .collect();
        let entry = Entry {
            id: PartnershipId::from_uuid(p.id),
            agencies,
            loaded: Instant::now(),
            generation,
        };
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partnership_code.to_owned(), entry);
        // Read from what was just loaded (a change since may already have
        // made the entry stale for the next lookup, not for this one).
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = entries.get(partnership_code) else {
            return Ok(Resolved::UnknownPartnership);
        };
        Ok(match agency_code {
            None => Resolved::Found { partnership: entry.id, agency: None },
            Some(code) => match entry.agencies.get(code) {
                Some(&(a, true)) => Resolved::Found { partnership: entry.id, agency: Some(a) },
                Some(&(_, false)) => Resolved::DeactivatedAgency,
                None => Resolved::UnknownAgency,
            },
        })
    }
}

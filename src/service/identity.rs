//! Resolves the partnership and agency codes of a verified token to ids.
//!
//! The directory changes rarely and every request needs it, so resolved
//! partnerships are cached in memory; a miss (an unknown code, or an agency
//! added since) reloads from the database. Nothing is cached negatively.

use std::collections::HashMap;
use std::sync::RwLock;

use entity::{agency, partnership};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::ServiceError;
use crate::domain::ids::{AgencyId, PartnershipId};

#[derive(Debug, Clone)]
struct Entry {
    id: PartnershipId,
    agencies: HashMap<String, AgencyId>,
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
}

/// Cache of partnership and agency codes.
#[derive(Debug, Default)]
pub struct DirectoryCache {
    entries: RwLock<HashMap<String, Entry>>,
}

impl DirectoryCache {
    fn lookup(&self, partnership: &str, agency: Option<&str>) -> Option<Resolved> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(partnership)?;
        match agency {
            None => Some(Resolved::Found { partnership: entry.id, agency: None }),
            Some(code) => entry
                .agencies
                .get(code)
                .map(|a| Resolved::Found { partnership: entry.id, agency: Some(*a) }),
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
            .map(|a| (a.code, AgencyId::from_uuid(a.id)))
            .collect();
        let entry = Entry { id: PartnershipId::from_uuid(p.id), agencies };
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partnership_code.to_owned(), entry);
        Ok(self.lookup(partnership_code, agency_code).unwrap_or(Resolved::UnknownAgency))
    }
}

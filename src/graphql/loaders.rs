//! DataLoaders: batch the nested lookups of one request into one query each.
//! A fresh set is attached to every request, so nothing is cached across
//! callers.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use sea_orm::DatabaseConnection;

use crate::domain::actor::{Actor, Viewer};
use crate::domain::ids::{AgencyId, CaseId, PartnershipId};
use crate::service::{ServiceError, directory, records};

/// Loads agencies by id.
pub struct AgencyLoader(DatabaseConnection);
/// Loads partnerships by id.
pub struct PartnershipLoader(DatabaseConnection);
/// Loads the agencies of partnerships.
pub struct AgenciesOfPartnershipLoader(DatabaseConnection);

/// Error type of the loaders: cloned to every waiting field.
pub type LoadError = Arc<ServiceError>;

impl Loader<AgencyId> for AgencyLoader {
    type Value = directory::Agency;
    type Error = LoadError;

    async fn load(&self, keys: &[AgencyId]) -> Result<HashMap<AgencyId, Self::Value>, Self::Error> {
        directory::agencies_by_id(&self.0, keys).await.map_err(Arc::new)
    }
}

impl Loader<PartnershipId> for PartnershipLoader {
    type Value = directory::Partnership;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PartnershipId],
    ) -> Result<HashMap<PartnershipId, Self::Value>, Self::Error> {
        directory::partnerships_by_id(&self.0, keys).await.map_err(Arc::new)
    }
}

impl Loader<PartnershipId> for AgenciesOfPartnershipLoader {
    type Value = Vec<directory::Agency>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PartnershipId],
    ) -> Result<HashMap<PartnershipId, Self::Value>, Self::Error> {
        directory::agencies_of(&self.0, keys).await.map_err(Arc::new)
    }
}

/// Loads the latest record of cases, for one caller (the read is logged).
pub struct LastRecordLoader {
    db: DatabaseConnection,
    actor: Option<Actor>,
    request_id: Option<String>,
}

impl Loader<CaseId> for LastRecordLoader {
    type Value = records::Record;
    type Error = LoadError;

    async fn load(&self, keys: &[CaseId]) -> Result<HashMap<CaseId, Self::Value>, Self::Error> {
        let Some(actor) = &self.actor else { return Ok(HashMap::new()) };
        records::last_records(&self.db, actor, keys, self.request_id.as_deref())
            .await
            .map_err(Arc::new)
    }
}

/// The loaders of one request (each caches what it loaded for the request).
pub struct Loaders {
    /// Agencies by id.
    pub agency: DataLoader<AgencyLoader, HashMapCache>,
    /// Partnerships by id.
    pub partnership: DataLoader<PartnershipLoader, HashMapCache>,
    /// Agencies of a partnership.
    pub agencies_of: DataLoader<AgenciesOfPartnershipLoader, HashMapCache>,
    /// The latest record of a case.
    pub last_record: DataLoader<LastRecordLoader, HashMapCache>,
}

impl Loaders {
    /// A fresh set over the pool, for one caller.
    pub fn new(db: &DatabaseConnection, viewer: &Viewer, request_id: Option<&str>) -> Self {
        let actor = match viewer {
            Viewer::Actor(a) => Some(a.clone()),
            Viewer::Anonymous => None,
        };
        Self {
            last_record: DataLoader::with_cache(
                LastRecordLoader {
                    db: db.clone(),
                    actor,
                    request_id: request_id.map(str::to_owned),
                },
                tokio::spawn,
                HashMapCache::default(),
            ),
            agency: DataLoader::with_cache(
                AgencyLoader(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            partnership: DataLoader::with_cache(
                PartnershipLoader(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
            agencies_of: DataLoader::with_cache(
                AgenciesOfPartnershipLoader(db.clone()),
                tokio::spawn,
                HashMapCache::default(),
            ),
        }
    }
}

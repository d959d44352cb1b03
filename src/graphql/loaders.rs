//! DataLoaders: batch the nested lookups of one request into one query each.
//! A fresh set is attached to every request, so nothing is cached across
//! callers.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;

use crate::domain::ids::{AgencyId, PartnershipId};
use crate::service::{ServiceError, directory};

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

/// The loaders of one request.
pub struct Loaders {
    /// Agencies by id.
    pub agency: DataLoader<AgencyLoader>,
    /// Partnerships by id.
    pub partnership: DataLoader<PartnershipLoader>,
    /// Agencies of a partnership.
    pub agencies_of: DataLoader<AgenciesOfPartnershipLoader>,
}

impl Loaders {
    /// A fresh set over the pool.
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            agency: DataLoader::new(AgencyLoader(db.clone()), tokio::spawn),
            partnership: DataLoader::new(PartnershipLoader(db.clone()), tokio::spawn),
            agencies_of: DataLoader::new(AgenciesOfPartnershipLoader(db.clone()), tokio::spawn),
        }
    }
}

//! The protocols this server knows, by id and version: an immutable
//! snapshot. `service::protocols::Library` holds the current one and swaps
//! in a larger one when a version is published or found in the database.

use std::sync::Arc;

use super::protocol::{Protocol, ProtocolError, builtin};

/// Every protocol definition known, each validated once.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    protocols: Vec<Arc<Protocol>>,
}

impl Catalog {
    /// The built-in protocols (the five seeds).
    pub fn builtin() -> Result<Self, ProtocolError> {
        Ok(Self { protocols: builtin()?.into_iter().map(Arc::new).collect() })
    }

    /// This catalog with `more` added, except the (id, version) pairs it
    /// already has: a known version is never replaced.
    pub fn with(&self, more: impl IntoIterator<Item = Arc<Protocol>>) -> Self {
        let mut protocols = self.protocols.clone();
        for p in more {
            if !protocols.iter().any(|q| q.id() == p.id() && q.version() == p.version()) {
                protocols.push(p);
            }
        }
        Self { protocols }
    }

    /// Whether the catalog has this version of this protocol.
    pub fn contains(&self, id: &str, version: u32) -> bool {
        self.get(id, version).is_some()
    }

    /// One version of one protocol; a case keeps the version it was raised
    /// under.
    pub fn get(&self, id: &str, version: u32) -> Option<&Protocol> {
        self.get_shared(id, version).map(|p| &**p)
    }

    /// One version of one protocol, shared.
    pub fn get_shared(&self, id: &str, version: u32) -> Option<&Arc<Protocol>> {
        self.protocols.iter().find(|p| p.id() == id && p.version() == version)
    }

    /// The newest version of a protocol this catalog knows. New cases take
    /// the partnership's adopted version, read from the database
    /// (`service::protocols::Library::for_new_cases`); this is for tests
    /// and the built-in library.
    pub fn latest(&self, id: &str) -> Option<&Protocol> {
        self.protocols.iter().filter(|p| p.id() == id).max_by_key(|p| p.version()).map(|p| &**p)
    }

    /// Every version of one protocol, oldest first.
    pub fn versions<'c>(&'c self, id: &'c str) -> impl Iterator<Item = &'c Protocol> + 'c {
        self.all().filter(move |p| p.id() == id)
    }

    /// Every definition, by id then version.
    pub fn all(&self) -> impl Iterator<Item = &Protocol> {
        self.all_shared().map(|p| &**p)
    }

    /// Every definition, shared, by id then version.
    pub fn all_shared(&self) -> impl Iterator<Item = &Arc<Protocol>> {
        let mut list: Vec<&Arc<Protocol>> = self.protocols.iter().collect();
        list.sort_by(|a, b| a.id().cmp(b.id()).then(a.version().cmp(&b.version())));
        list.into_iter()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_seed_protocol_by_id_and_version() {
        let catalog = Catalog::builtin().unwrap();
        for id in ["western-bay", "pan-sussex", "leeds", "rotherham", "six-stage"] {
            let latest = catalog.latest(id).unwrap();
            assert_eq!(catalog.get(id, latest.version()).unwrap().id(), id);
        }
        assert!(catalog.get("western-bay", 999).is_none());
        assert!(catalog.latest("nowhere").is_none());
        assert_eq!(catalog.all().count(), 5);
    }

    #[test]
    fn adding_keeps_known_versions_and_adds_new_ones() {
        let catalog = Catalog::builtin().unwrap();
        let wb = catalog.get_shared("western-bay", 1).unwrap().clone();
        let same = catalog.with([wb.clone()]);
        assert_eq!(same.all().count(), 5);
        let (_, text) = crate::domain::protocol::builtin_texts()[0];
        assert!(text.contains("id = \"western-bay\""));
        let v2 =
            crate::domain::protocol::parse_protocol(&text.replace("version = 1", "version = 2"))
                .unwrap();
        let more = catalog.with([Arc::new(v2)]);
        assert_eq!(more.all().count(), 6);
        assert_eq!(more.latest("western-bay").unwrap().version(), 2);
        assert_eq!(more.versions("western-bay").map(Protocol::version).collect::<Vec<_>>(), [1, 2]);
        assert!(more.contains("western-bay", 1) && !catalog.contains("western-bay", 2));
    }
}

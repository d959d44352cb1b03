//! The protocols this server knows, by id and version.

use super::protocol::{Protocol, ProtocolError, builtin};

/// Every protocol definition, validated once at start.
#[derive(Debug, Clone)]
pub struct Catalog {
    protocols: Vec<Protocol>,
}

impl Catalog {
    /// The built-in protocols (the five seeds).
    pub fn builtin() -> Result<Self, ProtocolError> {
        Ok(Self { protocols: builtin()? })
    }

    /// One version of one protocol; a case keeps the version it was raised
    /// under.
    pub fn get(&self, id: &str, version: u32) -> Option<&Protocol> {
        self.protocols.iter().find(|p| p.id() == id && p.version() == version)
    }

    /// The newest version of a protocol, for new cases.
    pub fn latest(&self, id: &str) -> Option<&Protocol> {
        self.protocols.iter().filter(|p| p.id() == id).max_by_key(|p| p.version())
    }

    /// Every definition, by id then version.
    pub fn all(&self) -> impl Iterator<Item = &Protocol> {
        let mut list: Vec<&Protocol> = self.protocols.iter().collect();
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
}

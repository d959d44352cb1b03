//! Protocols as data the partnership owns: every published version is a
//! row of `protocol_version`, kept exactly as published and never edited
//! or deleted (a trigger refuses both on each backend); the five built-in
//! files are stored as version 1 at start when absent ([`seed_builtin`]).
//!
//! [`Library`] holds this process's catalog, an immutable
//! `Arc<Catalog>` behind a read lock taken only to clone the `Arc`, and
//! swaps in a larger one when a version is published here or found in the
//! database. Other processes on the same database learn of a version at
//! the first use that needs it: a case naming a version the catalog lacks
//! reloads ([`Library::covering`]), and a new case reads the version it
//! takes (the partnership's adopted one, else its protocol's newest) from
//! the database inside the raise's transaction ([`Library::for_new_cases`]).
//! A version once known is never replaced, so a case keeps the definition
//! it was raised under.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use entity::{partnership, protocol_version};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

use super::ServiceError;
use super::directory::Partnership;
use crate::domain::actor::Actor;
use crate::domain::catalog::Catalog;
use crate::domain::definition;
use crate::domain::ids::PartnershipId;
use crate::domain::protocol::{Protocol, builtin_texts, parse_protocol};

/// Who publishes the built-in versions.
pub const BUILTIN: &str = "builtin";

/// This process's protocols: the catalog, swapped whole when it grows.
#[derive(Debug, Default)]
pub struct Library {
    current: RwLock<Arc<Catalog>>,
}

impl Library {
    /// A library of exactly `catalog` (tests, and the built-ins before the
    /// database is read).
    pub fn new(catalog: Catalog) -> Self {
        Self { current: RwLock::new(Arc::new(catalog)) }
    }

    /// Every version stored in the database, parsed and validated. A
    /// stored version that no longer validates stops the start: cases
    /// depend on it.
    pub async fn load(db: &impl ConnectionTrait) -> Result<Self, ServiceError> {
        let library = Self::new(Catalog::default());
        library.reload(db).await?;
        Ok(library)
    }

    /// The catalog now.
    pub fn current(&self) -> Arc<Catalog> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Adds `more` to the catalog (known versions are kept as they are)
    /// and returns the catalog after.
    fn add(&self, more: Vec<Arc<Protocol>>) -> Arc<Catalog> {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if more.iter().any(|p| !guard.contains(p.id(), p.version())) {
            *guard = Arc::new(guard.with(more));
        }
        guard.clone()
    }

    /// Reads the versions the catalog lacks from the database and adds
    /// them.
    pub async fn reload(&self, db: &impl ConnectionTrait) -> Result<Arc<Catalog>, ServiceError> {
        let known = self.current();
        let keys: Vec<(String, i32)> = protocol_version::Entity::find()
            .select_only()
            .column(protocol_version::Column::ProtocolId)
            .column(protocol_version::Column::Version)
            .into_tuple()
            .all(db)
            .await?;
        let missing: Vec<(String, i32)> = keys
            .into_iter()
            .filter(|(id, v)| !known.contains(id, u32::try_from(*v).unwrap_or(0)))
            .collect();
        if missing.is_empty() {
            return Ok(known);
        }
        let mut more = Vec::with_capacity(missing.len());
        for (id, version) in missing {
            let Some(row) =
                protocol_version::Entity::find_by_id((id.clone(), version)).one(db).await?
            else {
                continue;
            };
            more.push(Arc::new(parse_stored(&row)?));
        }
        tracing::info!(protocols.added = more.len(), "protocol versions loaded from the database");
        Ok(self.add(more))
    }

    /// A catalog that has `id` at `version`, reloading once when this one
    /// lacks it (another process published it); `UnknownProtocol` when
    /// the database lacks it too.
    pub async fn covering(
        &self,
        db: &impl ConnectionTrait,
        id: &str,
        version: i32,
    ) -> Result<Arc<Catalog>, ServiceError> {
        self.ensure(db, [(id, version)]).await
    }

    /// A catalog that has every one of `versions`, reloading once when
    /// this one lacks any.
    pub async fn ensure<'a>(
        &self,
        db: &impl ConnectionTrait,
        versions: impl IntoIterator<Item = (&'a str, i32)>,
    ) -> Result<Arc<Catalog>, ServiceError> {
        let wanted: Vec<(&str, u32)> =
            versions.into_iter().map(|(id, v)| (id, u32::try_from(v).unwrap_or(0))).collect();
        let catalog = self.current();
        if wanted.iter().all(|(id, v)| catalog.contains(id, *v)) {
            return Ok(catalog);
        }
        let catalog = self.reload(db).await?;
        match wanted.iter().find(|(id, v)| !catalog.contains(id, *v)) {
            None => Ok(catalog),
            Some((id, _)) => Err(ServiceError::UnknownProtocol((*id).to_owned())),
        }
    }

    /// The protocol a new case of `partnership` is raised under: its
    /// adopted version, else the newest stored version of its protocol
    /// (read in `db`, the raise's transaction), else the newest this
    /// catalog knows.
    pub async fn for_new_cases(
        &self,
        db: &impl ConnectionTrait,
        partnership: &partnership::Model,
    ) -> Result<Arc<Protocol>, ServiceError> {
        let id = partnership.protocol_id.as_str();
        let version = match partnership.protocol_version {
            Some(v) => Some(v),
            None => newest_stored(db, id).await?,
        };
        let catalog = match version {
            Some(v) => self.covering(db, id, v).await?,
            None => self.current(),
        };
        let found = match version {
            Some(v) => catalog.get_shared(id, u32::try_from(v).unwrap_or(0)).cloned(),
            None => catalog.latest(id).and_then(|p| catalog.get_shared(id, p.version()).cloned()),
        };
        found.ok_or_else(|| ServiceError::UnknownProtocol(id.to_owned()))
    }
}

/// The newest stored version of protocol `id`, if any.
async fn newest_stored(db: &impl ConnectionTrait, id: &str) -> Result<Option<i32>, ServiceError> {
    let newest: Option<Option<i32>> = protocol_version::Entity::find()
        .select_only()
        .column_as(protocol_version::Column::Version.max(), "v")
        .filter(protocol_version::Column::ProtocolId.eq(id))
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten())
}

fn parse_stored(row: &protocol_version::Model) -> Result<Protocol, ServiceError> {
    let protocol = parse_protocol(&row.definition).map_err(|e| {
        ServiceError::Internal(format!(
            "stored protocol {} version {} does not validate: {e}",
            row.protocol_id, row.version
        ))
    })?;
    if protocol.id() != row.protocol_id || i64::from(protocol.version()) != i64::from(row.version) {
        return Err(ServiceError::Internal(format!(
            "stored protocol {} version {} defines {} version {}",
            row.protocol_id,
            row.version,
            protocol.id(),
            protocol.version()
        )));
    }
    Ok(protocol)
}

/// The SHA-256 of a definition, lowercase hex.
pub fn sha256(text: &str) -> String {
    crate::http::trusted::sha256_hex(text)
}

/// What [`seed_builtin`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    /// Built-in versions stored now.
    pub stored: Vec<(String, u32)>,
    /// Built-in versions whose stored text differs from the binary's: the
    /// stored one is kept (and used).
    pub differing: Vec<(String, u32)>,
}

/// Stores each built-in definition as its version (1) when the database
/// lacks that version; one that is stored with other text is kept, and
/// reported (a warning in the log): the stored version wins, always.
pub async fn seed_builtin(db: &DatabaseConnection) -> Result<SeedReport, ServiceError> {
    let mut report = SeedReport::default();
    let txn = db.begin().await?;
    for (file, text) in builtin_texts() {
        let protocol = parse_protocol(text)
            .map_err(|e| ServiceError::Internal(format!("built-in {file}: {e}")))?;
        let key = (protocol.id().to_owned(), protocol.version());
        let version = i32::try_from(protocol.version()).unwrap_or(i32::MAX);
        let stored =
            protocol_version::Entity::find_by_id((key.0.clone(), version)).one(&txn).await?;
        match stored {
            Some(row) if row.definition == text => {}
            Some(_) => {
                tracing::warn!(
                    protocol.id = %key.0,
                    protocol.version = key.1,
                    "the stored definition differs from the built-in file; the stored one is used"
                );
                report.differing.push(key);
            }
            None => {
                insert(&txn, &protocol, text, None, BUILTIN, Utc::now()).await?;
                report.stored.push(key);
            }
        }
    }
    txn.commit().await?;
    Ok(report)
}

async fn insert(
    db: &impl ConnectionTrait,
    protocol: &Protocol,
    text: &str,
    partnership: Option<PartnershipId>,
    by: &str,
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    protocol_version::Entity::insert(protocol_version::ActiveModel {
        protocol_id: Set(protocol.id().to_owned()),
        version: Set(i32::try_from(protocol.version()).unwrap_or(i32::MAX)),
        partnership_id: Set(partnership.map(|p| p.uuid())),
        definition: Set(text.to_owned()),
        sha256: Set(sha256(text)),
        published_at: Set(at),
        published_by: Set(by.to_owned()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// One stored version, as the API lists it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The definition, parsed.
    pub protocol: Arc<Protocol>,
    /// The partnership that published it; none for a built-in.
    pub partnership: Option<Partnership>,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// Who published it: a client's `sub`, `cli:<user>` or `builtin`.
    pub published_by: String,
    /// The SHA-256 of its text as published.
    pub sha256: String,
}

/// A row of the listing: id, version, partnership, sha256, when, by whom.
type ListedRow = (String, i32, Option<uuid::Uuid>, String, DateTime<Utc>, String);

/// Every stored version, by id then version.
pub async fn list(
    db: &impl ConnectionTrait,
    library: &Library,
) -> Result<Vec<Stored>, ServiceError> {
    let rows: Vec<ListedRow> = protocol_version::Entity::find()
        .select_only()
        .columns([
            protocol_version::Column::ProtocolId,
            protocol_version::Column::Version,
            protocol_version::Column::PartnershipId,
            protocol_version::Column::Sha256,
            protocol_version::Column::PublishedAt,
            protocol_version::Column::PublishedBy,
        ])
        .order_by_asc(protocol_version::Column::ProtocolId)
        .order_by_asc(protocol_version::Column::Version)
        .into_tuple()
        .all(db)
        .await?;
    let catalog = library.ensure(db, rows.iter().map(|r| (r.0.as_str(), r.1))).await?;
    let owners: Vec<uuid::Uuid> = rows.iter().filter_map(|r| r.2).collect();
    let partnerships: Vec<Partnership> = if owners.is_empty() {
        Vec::new()
    } else {
        partnership::Entity::find()
            .filter(partnership::Column::Id.is_in(owners))
            .all(db)
            .await?
            .into_iter()
            .map(Partnership::from)
            .collect()
    };
    rows.into_iter()
        .map(|(id, version, owner, sha256, published_at, published_by)| {
            let protocol = catalog
                .get_shared(&id, u32::try_from(version).unwrap_or(0))
                .cloned()
                .ok_or_else(|| ServiceError::UnknownProtocol(id.clone()))?;
            let partnership =
                owner.and_then(|o| partnerships.iter().find(|p| p.id.uuid() == o).cloned());
            Ok(Stored { protocol, partnership, published_at, published_by, sha256 })
        })
        .collect()
}

/// Two stored versions of protocol `id`, for a diff; `NotFound` when
/// either is not stored.
pub async fn pair(
    db: &impl ConnectionTrait,
    library: &Library,
    id: &str,
    from: i32,
    to: i32,
) -> Result<(Arc<Protocol>, Arc<Protocol>), ServiceError> {
    let stored: Vec<i32> = protocol_version::Entity::find()
        .select_only()
        .column(protocol_version::Column::Version)
        .filter(protocol_version::Column::ProtocolId.eq(id))
        .filter(protocol_version::Column::Version.is_in([from, to]))
        .into_tuple()
        .all(db)
        .await?;
    if !stored.contains(&from) || !stored.contains(&to) {
        return Err(ServiceError::NotFound("protocol version"));
    }
    let catalog = library.ensure(db, [(id, from), (id, to)]).await?;
    let get = |v: i32| {
        catalog
            .get_shared(id, u32::try_from(v).unwrap_or(0))
            .cloned()
            .ok_or_else(|| ServiceError::UnknownProtocol(id.to_owned()))
    };
    Ok((get(from)?, get(to)?))
}

/// A version just published.
#[derive(Debug, Clone)]
pub struct Published {
    /// The stored version.
    pub stored: Stored,
}

/// Who publishes, and for which partnership.
#[derive(Debug, Clone, Copy)]
pub enum Publisher<'a> {
    /// A machine client over the API (checked by
    /// `domain::access::may_publish_protocol`).
    Client(&'a Actor, PartnershipId),
    /// The command line, by partnership code: `cli:<user>`.
    Cli {
        /// The partnership's code.
        partnership: &'a str,
        /// The user running the command.
        user: &'a str,
    },
}

/// Publishes `text` as the next version of the partnership's protocol:
/// checked by the validator of the built-ins (every problem,
/// `InvalidProtocol`); its `id` must be the partnership's protocol and its
/// `version` the next one (else `Conflict`, naming the expected version);
/// a protocol that another partnership also uses or has published is not
/// this partnership's to publish (`Conflict`). Stored in one transaction,
/// then added to this process's catalog; new cases of the partnership take
/// it unless it has pinned an adopted version.
#[tracing::instrument(skip_all)]
pub async fn publish(
    db: &DatabaseConnection,
    library: &Library,
    publisher: Publisher<'_>,
    text: &str,
) -> Result<Published, ServiceError> {
    let (by, partnership_row) = match publisher {
        Publisher::Client(actor, partnership) => {
            crate::domain::access::may_publish_protocol(actor, partnership).map_err(|refusal| {
                ServiceError::forbidden(refusal.to_string(), Default::default())
            })?;
            let row = partnership::Entity::find_by_id(partnership.uuid())
                .one(db)
                .await?
                .ok_or(ServiceError::NotFound("partnership"))?;
            (actor.sub.clone(), row)
        }
        Publisher::Cli { partnership, user } => {
            let row = partnership::Entity::find()
                .filter(partnership::Column::Code.eq(partnership))
                .one(db)
                .await?
                .ok_or(ServiceError::NotFound("partnership"))?;
            (format!("cli:{user}"), row)
        }
    };
    let checked = definition::check(text);
    let Some(protocol) = checked.protocol else {
        return Err(ServiceError::InvalidProtocol(checked.problems));
    };
    if protocol.id() != partnership_row.protocol_id {
        return Err(ServiceError::bad_input(
            "definition",
            format!(
                "the definition's id is {:?}; this partnership's protocol is {:?}",
                protocol.id(),
                partnership_row.protocol_id
            ),
        ));
    }
    let owner = PartnershipId::from_uuid(partnership_row.id);
    // On SQLite the write lock is taken at BEGIN, so two publishes queue;
    // on PostgreSQL the key decides between them.
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    let sharing = partnership::Entity::find()
        .filter(partnership::Column::ProtocolId.eq(protocol.id()))
        .filter(partnership::Column::Id.ne(partnership_row.id))
        .count(&txn)
        .await?;
    let published_elsewhere = protocol_version::Entity::find()
        .filter(protocol_version::Column::ProtocolId.eq(protocol.id()))
        .filter(protocol_version::Column::PartnershipId.is_not_null())
        .filter(protocol_version::Column::PartnershipId.ne(partnership_row.id))
        .count(&txn)
        .await?;
    if sharing > 0 || published_elsewhere > 0 {
        return Err(ServiceError::Conflict(format!(
            "protocol {} is also another partnership's; a partnership publishes versions of a \
             protocol only it uses",
            protocol.id()
        )));
    }
    let expected = newest_stored(&txn, protocol.id()).await?.unwrap_or(0) + 1;
    if i64::from(protocol.version()) != i64::from(expected) {
        return Err(ServiceError::Conflict(format!(
            "the next version of {} is {expected}, not {}",
            protocol.id(),
            protocol.version()
        )));
    }
    let now = super::audit::now();
    match insert(&txn, &protocol, text, Some(owner), &by, now).await {
        Ok(()) => {}
        // A concurrent publish of the same version took the key first.
        Err(ServiceError::Db(e))
            if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            return Err(ServiceError::Conflict(format!(
                "version {expected} of {} was published meanwhile",
                protocol.id()
            )));
        }
        Err(e) => return Err(e),
    }
    txn.commit().await?;
    let protocol = Arc::new(protocol);
    library.add(vec![protocol.clone()]);
    tracing::info!(
        protocol.id = %protocol.id(),
        protocol.version = protocol.version(),
        partnership.code = %partnership_row.code,
        published_by = %by,
        "protocol version published"
    );
    Ok(Published {
        stored: Stored {
            protocol,
            partnership: Some(Partnership::from(partnership_row)),
            published_at: now,
            published_by: by,
            sha256: sha256(text),
        },
    })
}

/// Sets (or, with `None`, clears) the protocol version `partnership` has
/// adopted for its new cases; the version must be stored. Cleared, new
/// cases take the newest.
pub async fn adopt(
    db: &impl ConnectionTrait,
    library: &Library,
    partnership: PartnershipId,
    version: Option<u32>,
) -> Result<(), ServiceError> {
    let row = partnership::Entity::find_by_id(partnership.uuid())
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("partnership"))?;
    let version = match version {
        None => None,
        Some(v) => {
            let v = i32::try_from(v)
                .map_err(|_| ServiceError::bad_input("version", "no such version"))?;
            library.covering(db, &row.protocol_id, v).await.map_err(|e| match e {
                ServiceError::UnknownProtocol(_) => ServiceError::bad_input(
                    "version",
                    format!("{} has no version {v}", row.protocol_id),
                ),
                other => other,
            })?;
            Some(v)
        }
    };
    partnership::Entity::update_many()
        .col_expr(partnership::Column::ProtocolVersion, Expr::value(version))
        .filter(partnership::Column::Id.eq(row.id))
        .exec(db)
        .await?;
    tracing::info!(
        partnership.code = %row.code,
        protocol.id = %row.protocol_id,
        protocol.version = ?version,
        "adopted protocol version set"
    );
    Ok(())
}

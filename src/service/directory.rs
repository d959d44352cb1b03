//! Partnerships and their agencies.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{agency, partnership};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::ServiceError;
use crate::domain::agency::AgencyKind;
use crate::domain::calendar::Nation;
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AgencyId, PartnershipId};

/// A partnership as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partnership {
    /// Identifier.
    pub id: PartnershipId,
    /// Stable short code, as carried by tokens.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Identifier of the protocol it has adopted.
    pub protocol_id: String,
    /// The protocol version new cases take, where the partnership pinned
    /// one (null: its protocol's newest).
    pub protocol_version: Option<i32>,
    /// Identifier of its working-day calendar.
    pub calendar: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// An agency as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agency {
    /// Identifier.
    pub id: AgencyId,
    /// The partnership it belongs to.
    pub partnership_id: PartnershipId,
    /// Stable short code, as carried by tokens.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Sector.
    pub kind: AgencyKind,
    /// Not deactivated.
    pub active: bool,
    /// When it was deactivated, while it is.
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl From<partnership::Model> for Partnership {
    fn from(m: partnership::Model) -> Self {
        Self {
            id: PartnershipId::from_uuid(m.id),
            code: m.code,
            name: m.name,
            protocol_id: m.protocol_id,
            protocol_version: m.protocol_version,
            calendar: m.calendar,
            created_at: m.created_at,
        }
    }
}

impl From<agency::Model> for Agency {
    fn from(m: agency::Model) -> Self {
        Self {
            id: AgencyId::from_uuid(m.id),
            partnership_id: PartnershipId::from_uuid(m.partnership_id),
            code: m.code,
            name: m.name,
            // Kinds are written only by this service; an unknown spelling
            // means a newer version wrote it, so show it as `Other`.
            kind: AgencyKind::parse(&m.kind).unwrap_or(AgencyKind::Other),
            active: m.active,
            deactivated_at: m.deactivated_at,
        }
    }
}

/// Every partnership by name, or only one.
pub async fn partnerships(
    db: &impl ConnectionTrait,
    only: Option<PartnershipId>,
) -> Result<Vec<Partnership>, ServiceError> {
    let mut query = partnership::Entity::find().order_by_asc(partnership::Column::Name);
    if let Some(id) = only {
        query = query.filter(partnership::Column::Id.eq(id.uuid()));
    }
    let rows = query.all(db).await?;
    Ok(rows.into_iter().map(Partnership::from).collect())
}

/// Partnerships by id (for batch loading).
pub async fn partnerships_by_id(
    db: &impl ConnectionTrait,
    ids: &[PartnershipId],
) -> Result<HashMap<PartnershipId, Partnership>, ServiceError> {
    let rows = partnership::Entity::find()
        .filter(partnership::Column::Id.is_in(ids.iter().map(|id| id.uuid())))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|m| (PartnershipId::from_uuid(m.id), m.into())).collect())
}

/// The agencies of several partnerships at once, each list by name.
pub async fn agencies_of(
    db: &impl ConnectionTrait,
    partnerships: &[PartnershipId],
) -> Result<HashMap<PartnershipId, Vec<Agency>>, ServiceError> {
    let rows = agency::Entity::find()
        .filter(agency::Column::PartnershipId.is_in(partnerships.iter().map(|id| id.uuid())))
        .order_by_asc(agency::Column::Name)
        .order_by_asc(agency::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<PartnershipId, Vec<Agency>> = HashMap::new();
    for row in rows {
        let a = Agency::from(row);
        out.entry(a.partnership_id).or_default().push(a);
    }
    Ok(out)
}

/// Agencies by id (for batch loading).
pub async fn agencies_by_id(
    db: &impl ConnectionTrait,
    ids: &[AgencyId],
) -> Result<HashMap<AgencyId, Agency>, ServiceError> {
    let rows = agency::Entity::find()
        .filter(agency::Column::Id.is_in(ids.iter().map(|id| id.uuid())))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|m| (AgencyId::from_uuid(m.id), m.into())).collect())
}

/// The agencies of one partnership, by name; `NotFound` when there is no
/// such partnership.
pub async fn agencies(
    db: &impl ConnectionTrait,
    partnership: PartnershipId,
) -> Result<Vec<Agency>, ServiceError> {
    if partnership::Entity::find_by_id(partnership.uuid()).one(db).await?.is_none() {
        return Err(ServiceError::NotFound("partnership"));
    }
    Ok(agencies_of(db, &[partnership]).await?.remove(&partnership).unwrap_or_default())
}

/// What an import did, or would do with `--dry-run`.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The changes, in file order.
    pub changes: Vec<crate::domain::directory::Change>,
    /// Stored agencies the file left out (kept as they are).
    pub left_out: Vec<(String, String)>,
    /// Whether the changes were written.
    pub applied: bool,
}

/// How [`import`] treats what it plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Write every change.
    Apply,
    /// Write nothing: only report.
    DryRun,
    /// Write only creations: what loading the demo directory does, so
    /// that a demo database keeps the changes made to it since.
    AddOnly,
}

/// The stored directory, as [`crate::domain::directory`] compares it:
/// partnerships and agencies by code.
pub async fn existing(
    db: &impl ConnectionTrait,
) -> Result<Vec<crate::domain::directory::Existing>, ServiceError> {
    use crate::domain::directory::{Existing, ExistingAgency};
    let ps = partnership::Entity::find().order_by_asc(partnership::Column::Code).all(db).await?;
    let agencies = agency::Entity::find().order_by_asc(agency::Column::Code).all(db).await?;
    let mut by_partnership: HashMap<uuid::Uuid, Vec<ExistingAgency>> = HashMap::new();
    for a in agencies {
        by_partnership.entry(a.partnership_id).or_default().push(ExistingAgency {
            kind: AgencyKind::parse(&a.kind).unwrap_or(AgencyKind::Other),
            code: a.code,
            name: a.name,
            active: a.active,
        });
    }
    Ok(ps
        .into_iter()
        .map(|p| Existing {
            agencies: by_partnership.remove(&p.id).unwrap_or_default(),
            code: p.code,
            name: p.name,
            protocol: p.protocol_id,
            calendar: p.calendar,
        })
        .collect())
}

/// The directory file of what is stored (`escalations directory export`).
pub async fn export(db: &impl ConnectionTrait) -> Result<String, ServiceError> {
    let file = crate::domain::directory::export(&existing(db).await?);
    toml::to_string(&file).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// Imports a directory file (TOML text) in one transaction: plans it over
/// what is stored (`domain::directory::plan_import`: every problem at
/// once, as `BadInput`), then, unless `mode` says otherwise, writes each
/// change with its `directory_change` row, attributed to `actor_sub`.
pub async fn import(
    db: &DatabaseConnection,
    catalog: &Catalog,
    text: &str,
    actor_sub: &str,
    mode: ImportMode,
) -> Result<ImportReport, ServiceError> {
    use crate::domain::directory::{DirectoryFile, Known, plan_import};
    let file: DirectoryFile =
        toml::from_str(text).map_err(|e| ServiceError::bad_input("directory", e.to_string()))?;
    let mut protocols: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for p in catalog.all() {
        protocols.entry(p.id().to_owned()).or_default().insert(p.calendar().to_owned());
    }
    let calendars: Vec<&str> = Nation::ALL.iter().map(|n| n.id()).collect();
    let txn = db.begin().await?;
    let current = existing(&txn).await?;
    let plan = plan_import(&current, &file, Known { protocols: &protocols, calendars: &calendars })
        .map_err(|problems| ServiceError::bad_input("directory", problems.join("\n")))?;
    let changes: Vec<_> = match mode {
        ImportMode::AddOnly => plan.changes.into_iter().filter(|c| c.only_adds()).collect(),
        ImportMode::Apply | ImportMode::DryRun => plan.changes,
    };
    let applied = mode != ImportMode::DryRun;
    if applied {
        let now = super::audit::now();
        for change in &changes {
            apply(&txn, change, actor_sub, now).await?;
        }
        txn.commit().await?;
    }
    Ok(ImportReport { changes, left_out: plan.left_out, applied })
}

/// Writes one planned change and its `directory_change` row.
async fn apply(
    txn: &impl ConnectionTrait,
    change: &crate::domain::directory::Change,
    actor_sub: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    use crate::domain::directory::Change as C;
    use sea_orm::ActiveValue::Set;
    use sea_orm::sea_query::Expr;
    let partnership_id = match change {
        C::CreatePartnership { code, name, protocol, calendar } => {
            let id = PartnershipId::new().uuid();
            partnership::Entity::insert(partnership::ActiveModel {
                id: Set(id),
                code: Set(code.clone()),
                name: Set(name.clone()),
                protocol_id: Set(protocol.clone()),
                protocol_version: Set(None),
                calendar: Set(calendar.clone()),
                created_at: Set(now),
            })
            .exec_without_returning(txn)
            .await?;
            id
        }
        other => {
            partnership::Entity::find()
                .filter(partnership::Column::Code.eq(other.partnership()))
                .one(txn)
                .await?
                .ok_or(ServiceError::NotFound("partnership"))?
                .id
        }
    };
    let mut agency_id = None;
    match change {
        C::CreatePartnership { .. } => {}
        C::UpdatePartnership { name, protocol, calendar, .. } => {
            let mut update = partnership::Entity::update_many()
                .filter(partnership::Column::Id.eq(partnership_id));
            if let Some(m) = name {
                update = update.col_expr(partnership::Column::Name, Expr::value(m.after.clone()));
            }
            if let Some(m) = protocol {
                update =
                    update.col_expr(partnership::Column::ProtocolId, Expr::value(m.after.clone()));
            }
            if let Some(m) = calendar {
                update =
                    update.col_expr(partnership::Column::Calendar, Expr::value(m.after.clone()));
            }
            update.exec(txn).await?;
        }
        C::CreateAgency { code, name, kind, active, .. } => {
            let id = AgencyId::new().uuid();
            agency::Entity::insert(agency::ActiveModel {
                id: Set(id),
                partnership_id: Set(partnership_id),
                code: Set(code.clone()),
                name: Set(name.clone()),
                kind: Set(kind.as_str().to_owned()),
                created_at: Set(now),
                active: Set(*active),
                deactivated_at: Set((!active).then_some(now)),
            })
            .exec_without_returning(txn)
            .await?;
            agency_id = Some(id);
        }
        C::UpdateAgency { code, name, kind, .. } => {
            let id = agency_by_code(txn, code).await?;
            let mut update = agency::Entity::update_many().filter(agency::Column::Id.eq(id));
            if let Some(m) = name {
                update = update.col_expr(agency::Column::Name, Expr::value(m.after.clone()));
            }
            if let Some(m) = kind {
                update = update.col_expr(agency::Column::Kind, Expr::value(m.after.as_str()));
            }
            update.exec(txn).await?;
            agency_id = Some(id);
        }
        C::DeactivateAgency { code, .. } | C::ReactivateAgency { code, .. } => {
            let id = agency_by_code(txn, code).await?;
            let active = matches!(change, C::ReactivateAgency { .. });
            agency::Entity::update_many()
                .col_expr(agency::Column::Active, Expr::value(active))
                .col_expr(
                    agency::Column::DeactivatedAt,
                    Expr::value(if active { None } else { Some(now) }),
                )
                .filter(agency::Column::Id.eq(id))
                .exec(txn)
                .await?;
            agency_id = Some(id);
        }
    }
    entity::directory_change::Entity::insert(entity::directory_change::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        at: Set(now),
        actor_sub: Set(actor_sub.to_owned()),
        partnership_id: Set(partnership_id),
        agency_id: Set(agency_id),
        action: Set(change.action().to_owned()),
        data: Set(change.data().to_string()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

async fn agency_by_code(
    txn: &impl ConnectionTrait,
    code: &str,
) -> Result<uuid::Uuid, ServiceError> {
    Ok(agency::Entity::find()
        .filter(agency::Column::Code.eq(code))
        .one(txn)
        .await?
        .ok_or(ServiceError::NotFound("agency"))?
        .id)
}

/// One change a directory administrator makes to its partnership's
/// agencies.
#[derive(Debug, Clone)]
pub enum AdminChange {
    /// A new agency.
    Create {
        /// Its code, unique across every partnership.
        code: String,
        /// Its name.
        name: String,
        /// Its sector.
        kind: AgencyKind,
    },
    /// A new name.
    Rename {
        /// The agency.
        agency: AgencyId,
        /// Its new name.
        name: String,
    },
    /// Deactivate (`false`) or reactivate (`true`).
    SetActive {
        /// The agency.
        agency: AgencyId,
        /// Active from now on?
        active: bool,
    },
}

/// Makes one change to the caller's partnership's agencies, in one
/// transaction with its `directory_change` row, attributed to the
/// caller's `sub`: only a `directory:admin` client
/// (`access::may_administer_directory`); an agency of another partnership
/// is not found. Returns the agency as it now is.
pub async fn administer(
    db: &DatabaseConnection,
    actor: &crate::domain::actor::Actor,
    change: AdminChange,
) -> Result<Agency, ServiceError> {
    use crate::domain::directory::{self as rules, Change, DirectoryRefusal, Moved};
    let partnership_id = crate::domain::access::may_administer_directory(actor)
        .map_err(|r| ServiceError::forbidden(r.to_string(), Default::default()))?;
    let refused = |r: DirectoryRefusal| match r {
        DirectoryRefusal::Malformed { field, why } => ServiceError::bad_input(field, why),
        other => ServiceError::Conflict(other.to_string()),
    };
    let txn = db.begin().await?;
    let p = partnership::Entity::find_by_id(partnership_id.uuid())
        .one(&txn)
        .await?
        .ok_or(ServiceError::NotFound("partnership"))?;
    let ours = |id: AgencyId| {
        agency::Entity::find_by_id(id.uuid())
            .filter(agency::Column::PartnershipId.eq(p.id))
            .one(&txn)
    };
    let (planned, code) = match change {
        AdminChange::Create { code, name, kind } => {
            rules::check_new_agency(&code, &name).map_err(refused)?;
            let taken = agency::Entity::find()
                .filter(agency::Column::Code.eq(&code))
                .one(&txn)
                .await?
                .is_some();
            if taken {
                return Err(ServiceError::Conflict(format!(
                    "an agency with code {code} exists (codes are unique across partnerships)"
                )));
            }
            let planned = Change::CreateAgency {
                partnership: p.code.clone(),
                code: code.clone(),
                name,
                kind,
                active: true,
            };
            (planned, code)
        }
        AdminChange::Rename { agency: id, name } => {
            let a = ours(id).await?.ok_or(ServiceError::NotFound("agency"))?;
            rules::check_rename(&a.name, &name).map_err(refused)?;
            let planned = Change::UpdateAgency {
                partnership: p.code.clone(),
                code: a.code.clone(),
                name: Some(Moved { before: a.name, after: name }),
                kind: None,
            };
            (planned, a.code)
        }
        AdminChange::SetActive { agency: id, active } => {
            let a = ours(id).await?.ok_or(ServiceError::NotFound("agency"))?;
            rules::check_activation(a.active, active).map_err(refused)?;
            let (partnership, code) = (p.code.clone(), a.code.clone());
            let planned = if active {
                Change::ReactivateAgency { partnership, code }
            } else {
                Change::DeactivateAgency { partnership, code }
            };
            (planned, a.code)
        }
    };
    apply(&txn, &planned, &actor.sub, super::audit::now()).await?;
    let stored = agency::Entity::find()
        .filter(agency::Column::Code.eq(&code))
        .one(&txn)
        .await?
        .ok_or(ServiceError::NotFound("agency"))?;
    txn.commit().await?;
    super::identity::changed();
    tracing::info!(partnership = %p.code, agency = %code, action = planned.action(), "directory changed");
    Ok(stored.into())
}

/// One stored directory change, as the API shows it.
#[derive(Debug, Clone)]
pub struct DirectoryChangeRow {
    /// Identifier (ordered by time).
    pub id: uuid::Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the token's `sub`, `cli:<user>` or `demo`.
    pub actor_sub: String,
    /// The agency changed, if an agency was.
    pub agency_id: Option<AgencyId>,
    /// What (`agency_deactivated`, ...).
    pub action: String,
    /// Each field changed: (field, before, after), values as text.
    pub fields: Vec<(String, Option<String>, Option<String>)>,
}

/// The newest directory changes of the caller's partnership first, `first`
/// of them after the change `after` (exclusive): only for a
/// `directory:admin` client.
pub async fn changes(
    db: &impl ConnectionTrait,
    actor: &crate::domain::actor::Actor,
    first: u64,
    after: Option<uuid::Uuid>,
) -> Result<Vec<DirectoryChangeRow>, ServiceError> {
    use entity::directory_change as dc;
    use sea_orm::QuerySelect;
    let partnership = crate::domain::access::may_administer_directory(actor)
        .map_err(|r| ServiceError::forbidden(r.to_string(), Default::default()))?;
    let mut query = dc::Entity::find()
        .filter(dc::Column::PartnershipId.eq(partnership.uuid()))
        .order_by_desc(dc::Column::Id)
        .limit(first);
    if let Some(after) = after {
        query = query.filter(dc::Column::Id.lt(after));
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    };
    Ok(query
        .all(db)
        .await?
        .into_iter()
        .map(|row| {
            let data: serde_json::Value =
                serde_json::from_str(&row.data).unwrap_or(serde_json::Value::Null);
            let fields = data
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| match (v.get("before"), v.get("after")) {
                            (Some(b), Some(a)) => (k.clone(), text(b), text(a)),
                            _ => (k.clone(), None, text(v)),
                        })
                        .collect()
                })
                .unwrap_or_default();
            DirectoryChangeRow {
                id: row.id,
                at: row.at,
                actor_sub: row.actor_sub,
                agency_id: row.agency_id.map(AgencyId::from_uuid),
                action: row.action,
                fields,
            }
        })
        .collect())
}

/// Pins the protocol version new cases of `partnership` take (`None`: its
/// protocol's newest), in one transaction with its `directory_change` row
/// (`protocol_adopted`), attributed to `actor_sub`; `protocols::adopt`
/// checks the version exists. Open cases keep theirs.
pub async fn adopt_protocol_version(
    db: &DatabaseConnection,
    library: &super::protocols::Library,
    partnership: PartnershipId,
    version: Option<u32>,
    actor_sub: &str,
) -> Result<Partnership, ServiceError> {
    use sea_orm::ActiveValue::Set;
    let txn = db.begin().await?;
    let before = partnership::Entity::find_by_id(partnership.uuid())
        .one(&txn)
        .await?
        .ok_or(ServiceError::NotFound("partnership"))?;
    super::protocols::adopt(&txn, library, partnership, version).await?;
    let after = partnership::Entity::find_by_id(partnership.uuid())
        .one(&txn)
        .await?
        .ok_or(ServiceError::NotFound("partnership"))?;
    let data = serde_json::json!({
        "protocol_version": { "before": before.protocol_version, "after": after.protocol_version },
    });
    entity::directory_change::Entity::insert(entity::directory_change::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        at: Set(super::audit::now()),
        actor_sub: Set(actor_sub.to_owned()),
        partnership_id: Set(partnership.uuid()),
        agency_id: Set(None),
        action: Set("protocol_adopted".to_owned()),
        data: Set(data.to_string()),
    })
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(after.into())
}

//! Records, agencies' views and agreed actions: what is written at a stage.
//! Each addition is a change of the case (new version, audit event) in one
//! transaction; nothing is edited, a correction is a new record.

use chrono::{DateTime, NaiveDate, Utc};
use entity::{access_log, agency, agency_view, agreed_action, case, case_record};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::idempotency::{self, Idempotency};
use super::{ServiceError, audit, tx};
use crate::domain::access::check;
use crate::domain::actor::Actor;
use crate::domain::catalog::Catalog;
use crate::domain::ids::{AgencyId, CaseId};
use crate::domain::policy::Action;
use crate::domain::protocol::RecordKind;
use crate::domain::workflow::WorkflowError;

/// A record as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Identifier.
    pub id: uuid::Uuid,
    /// The case.
    pub case_id: uuid::Uuid,
    /// Stage it was written at.
    pub stage: String,
    /// Kind (stored spelling).
    pub kind: String,
    /// Facts.
    pub facts: String,
    /// Opinions, kept apart from the facts.
    pub opinions: String,
    /// Who took part.
    pub attendees: Vec<String>,
    /// The record this one corrects.
    pub corrects: Option<uuid::Uuid>,
    /// The author's agency.
    pub author_agency_id: Option<uuid::Uuid>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<case_record::Model> for Record {
    fn from(m: case_record::Model) -> Self {
        Self {
            id: m.id,
            case_id: m.case_id,
            stage: m.stage,
            kind: m.kind,
            facts: m.facts,
            opinions: m.opinions,
            attendees: serde_json::from_str(&m.attendees).unwrap_or_default(),
            corrects: m.corrects_id,
            author_agency_id: m.author_agency_id,
            created_at: m.created_at,
        }
    }
}

/// An agency's view as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Identifier.
    pub id: uuid::Uuid,
    /// The agency whose view it is.
    pub agency_id: uuid::Uuid,
    /// Stage.
    pub stage: String,
    /// The view.
    pub view: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An agreed action as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreedAction {
    /// Identifier.
    pub id: uuid::Uuid,
    /// Stage.
    pub stage: String,
    /// What is to be done.
    pub description: String,
    /// The agency that owns it.
    pub owner_agency_id: uuid::Uuid,
    /// By when.
    pub due_on: NaiveDate,
    /// When agreed.
    pub created_at: DateTime<Utc>,
}

/// `addRecord`, parsed.
#[derive(Debug, Clone)]
pub struct AddRecordInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// Kind.
    pub kind: RecordKind,
    /// Facts.
    pub facts: String,
    /// Opinions.
    pub opinions: String,
    /// Attendees.
    pub attendees: Vec<String>,
    /// The record corrected.
    pub corrects: Option<uuid::Uuid>,
}

fn refused(r: crate::domain::access::Refusal) -> ServiceError {
    ServiceError::from(WorkflowError::from(r))
}

/// Adds a record at the case's current stage.
#[tracing::instrument(skip_all, fields(case.id = %input.case))]
pub async fn add_record(
    db: &DatabaseConnection,
    catalog: &Catalog,
    actor: &Actor,
    request_id: Option<&str>,
    idem: Option<&Idempotency>,
    input: AddRecordInput,
) -> Result<Record, ServiceError> {
    if let Some(first) = idempotency::replay(db, actor, idem, |_| input.case).await? {
        return Ok(first);
    }
    let txn = tx::begin_write(db).await?;
    let row = tx::load_for_change(&txn, actor, input.case, input.expected_version).await?;
    check(tx::protocol_of(catalog, &row)?, &tx::facts(&row), actor, Action::AddRecord)
        .map_err(refused)?;
    if let Some(corrected) = input.corrects {
        let exists = case_record::Entity::find_by_id(corrected)
            .filter(case_record::Column::CaseId.eq(row.id))
            .one(&txn)
            .await?
            .is_some();
        if !exists {
            return Err(ServiceError::bad_input("corrects", "no such record on this case"));
        }
    }
    let now = audit::now();
    let model = case_record::Model {
        id: uuid::Uuid::now_v7(),
        case_id: row.id,
        stage: row.stage.clone(),
        kind: input.kind.as_str().to_owned(),
        facts: input.facts,
        opinions: input.opinions,
        attendees: serde_json::to_string(&input.attendees).unwrap_or_else(|_| "[]".into()),
        corrects_id: input.corrects,
        author_sub: actor.sub.clone(),
        author_agency_id: actor.agency.map(|a| a.uuid()),
        created_at: now,
    };
    case_record::Entity::insert(case_record::ActiveModel {
        id: Set(model.id),
        case_id: Set(model.case_id),
        stage: Set(model.stage.clone()),
        kind: Set(model.kind.clone()),
        facts: Set(model.facts.clone()),
        opinions: Set(model.opinions.clone()),
        attendees: Set(model.attendees.clone()),
        corrects_id: Set(model.corrects_id),
        author_sub: Set(model.author_sub.clone()),
        author_agency_id: Set(model.author_agency_id),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    let seq =
        tx::bump_version(&txn, &row, vec![(case::Column::UpdatedAt, Expr::value(now))]).await?;
    let prev = audit::last_hash(&txn, input.case).await?;
    let data = json!({ "record_id": model.id, "kind": model.kind, "stage": model.stage, "corrects": model.corrects_id });
    audit::append(&txn, input.case, seq, &prev, now, actor, "add_record", request_id, data).await?;
    let record = Record::from(model);
    idempotency::remember(&txn, actor, idem, &record).await?;
    txn.commit().await?;
    Ok(record)
}

/// `recordAgencyView`, parsed.
#[derive(Debug, Clone)]
pub struct RecordViewInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// The caller's agency's position.
    pub view: String,
}

/// Records the caller's agency's view at the current stage.
#[tracing::instrument(skip_all, fields(case.id = %input.case))]
pub async fn record_view(
    db: &DatabaseConnection,
    catalog: &Catalog,
    actor: &Actor,
    request_id: Option<&str>,
    idem: Option<&Idempotency>,
    input: RecordViewInput,
) -> Result<View, ServiceError> {
    if let Some(first) = idempotency::replay(db, actor, idem, |_| input.case).await? {
        return Ok(first);
    }
    let txn = tx::begin_write(db).await?;
    // Visibility first: a case outside the caller's scope does not exist.
    let row = tx::load_for_change(&txn, actor, input.case, input.expected_version).await?;
    let agency = actor.agency.ok_or_else(|| {
        ServiceError::Forbidden("a view is an agency's; the token names no agency".into())
    })?;
    check(tx::protocol_of(catalog, &row)?, &tx::facts(&row), actor, Action::RecordView)
        .map_err(refused)?;
    let now = audit::now();
    let view = View {
        id: uuid::Uuid::now_v7(),
        agency_id: agency.uuid(),
        stage: row.stage.clone(),
        view: input.view,
        created_at: now,
    };
    agency_view::Entity::insert(agency_view::ActiveModel {
        id: Set(view.id),
        case_id: Set(row.id),
        agency_id: Set(view.agency_id),
        stage: Set(view.stage.clone()),
        view: Set(view.view.clone()),
        author_sub: Set(actor.sub.clone()),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    let seq =
        tx::bump_version(&txn, &row, vec![(case::Column::UpdatedAt, Expr::value(now))]).await?;
    let prev = audit::last_hash(&txn, input.case).await?;
    let data = json!({ "view_id": view.id, "agency_id": view.agency_id, "stage": view.stage });
    audit::append(&txn, input.case, seq, &prev, now, actor, "record_view", request_id, data)
        .await?;
    idempotency::remember(&txn, actor, idem, &view).await?;
    txn.commit().await?;
    Ok(view)
}

/// `agreeAction`, parsed.
#[derive(Debug, Clone)]
pub struct AgreeActionInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// What is to be done.
    pub description: String,
    /// Owner agency (one of the two parties).
    pub owner: AgencyId,
    /// Due date.
    pub due_on: NaiveDate,
}

/// Agrees an action with an owner and a due date at the current stage.
#[tracing::instrument(skip_all, fields(case.id = %input.case))]
pub async fn agree_action(
    db: &DatabaseConnection,
    catalog: &Catalog,
    actor: &Actor,
    request_id: Option<&str>,
    idem: Option<&Idempotency>,
    input: AgreeActionInput,
) -> Result<AgreedAction, ServiceError> {
    if let Some(first) = idempotency::replay(db, actor, idem, |_| input.case).await? {
        return Ok(first);
    }
    let txn = tx::begin_write(db).await?;
    let row = tx::load_for_change(&txn, actor, input.case, input.expected_version).await?;
    check(tx::protocol_of(catalog, &row)?, &tx::facts(&row), actor, Action::AgreeAction)
        .map_err(refused)?;
    let owner_ok = agency::Entity::find_by_id(input.owner.uuid())
        .filter(agency::Column::PartnershipId.eq(row.partnership_id))
        .one(&txn)
        .await?
        .is_some();
    if !owner_ok {
        return Err(ServiceError::bad_input(
            "ownerAgencyId",
            "no such agency in the case's partnership",
        ));
    }
    let now = audit::now();
    if input.due_on < now.date_naive() {
        return Err(ServiceError::bad_input("dueOn", "must not be in the past"));
    }
    let action = AgreedAction {
        id: uuid::Uuid::now_v7(),
        stage: row.stage.clone(),
        description: input.description,
        owner_agency_id: input.owner.uuid(),
        due_on: input.due_on,
        created_at: now,
    };
    agreed_action::Entity::insert(agreed_action::ActiveModel {
        id: Set(action.id),
        case_id: Set(row.id),
        stage: Set(action.stage.clone()),
        description: Set(action.description.clone()),
        owner_agency_id: Set(action.owner_agency_id),
        due_on: Set(action.due_on),
        author_sub: Set(actor.sub.clone()),
        created_at: Set(now),
    })
    .exec_without_returning(&txn)
    .await?;
    let seq =
        tx::bump_version(&txn, &row, vec![(case::Column::UpdatedAt, Expr::value(now))]).await?;
    let prev = audit::last_hash(&txn, input.case).await?;
    let data = json!({ "action_id": action.id, "owner_agency_id": action.owner_agency_id, "due_on": action.due_on });
    audit::append(&txn, input.case, seq, &prev, now, actor, "agree_action", request_id, data)
        .await?;
    idempotency::remember(&txn, actor, idem, &action).await?;
    txn.commit().await?;
    Ok(action)
}

/// Logs that `actor` read the free text (`what`) of a case.
pub async fn log_read(
    db: &impl ConnectionTrait,
    actor: &Actor,
    case: CaseId,
    what: &str,
    request_id: Option<&str>,
) -> Result<(), ServiceError> {
    access_log::Entity::insert(access_log::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        case_id: Set(case.uuid()),
        actor_sub: Set(actor.sub.clone()),
        actor_agency_id: Set(actor.agency.map(|a| a.uuid())),
        what: Set(what.to_owned()),
        request_id: Set(request_id.map(str::to_owned)),
        at: Set(audit::now()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A page of the records of a case, oldest first (ties by id), after the
/// record `after` (its time and id), at most `limit`; and whether more
/// follow. The read is logged.
pub async fn records(
    db: &impl ConnectionTrait,
    actor: &Actor,
    case: CaseId,
    request_id: Option<&str>,
    after: Option<(DateTime<Utc>, uuid::Uuid)>,
    limit: u64,
) -> Result<(Vec<Record>, bool), ServiceError> {
    use sea_orm::{Condition, QuerySelect};
    tx::load_visible(db, actor, case, None).await?;
    let mut query = case_record::Entity::find().filter(case_record::Column::CaseId.eq(case.uuid()));
    if let Some((at, id)) = after {
        query = query.filter(
            Condition::any().add(case_record::Column::CreatedAt.gt(at)).add(
                Condition::all()
                    .add(case_record::Column::CreatedAt.eq(at))
                    .add(case_record::Column::Id.gt(id)),
            ),
        );
    }
    let mut rows = query
        .order_by_asc(case_record::Column::CreatedAt)
        .order_by_asc(case_record::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    log_read(db, actor, case, "records", request_id).await?;
    Ok((rows.into_iter().map(Record::from).collect(), more))
}

/// How many records a case has (the caller already sees the case).
pub async fn records_count(db: &impl ConnectionTrait, case: CaseId) -> Result<u64, ServiceError> {
    use sea_orm::PaginatorTrait;
    Ok(case_record::Entity::find()
        .filter(case_record::Column::CaseId.eq(case.uuid()))
        .count(db)
        .await?)
}

/// The views of a case, oldest first; the read is logged.
pub async fn views(
    db: &impl ConnectionTrait,
    actor: &Actor,
    case: CaseId,
    request_id: Option<&str>,
) -> Result<Vec<View>, ServiceError> {
    tx::load_visible(db, actor, case, None).await?;
    let rows = agency_view::Entity::find()
        .filter(agency_view::Column::CaseId.eq(case.uuid()))
        .order_by_asc(agency_view::Column::CreatedAt)
        .order_by_asc(agency_view::Column::Id)
        .all(db)
        .await?;
    log_read(db, actor, case, "views", request_id).await?;
    Ok(rows
        .into_iter()
        .map(|m| View {
            id: m.id,
            agency_id: m.agency_id,
            stage: m.stage,
            view: m.view,
            created_at: m.created_at,
        })
        .collect())
}

/// The agreed actions of a case, by due date.
pub async fn actions(
    db: &impl ConnectionTrait,
    actor: &Actor,
    case: CaseId,
) -> Result<Vec<AgreedAction>, ServiceError> {
    tx::load_visible(db, actor, case, None).await?;
    let rows = agreed_action::Entity::find()
        .filter(agreed_action::Column::CaseId.eq(case.uuid()))
        .order_by_asc(agreed_action::Column::DueOn)
        .order_by_asc(agreed_action::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| AgreedAction {
            id: m.id,
            stage: m.stage,
            description: m.description,
            owner_agency_id: m.owner_agency_id,
            due_on: m.due_on,
            created_at: m.created_at,
        })
        .collect())
}

/// The latest record of each of `cases` (one query), and one access-log row
/// per case for reading it (one statement).
pub async fn last_records(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
    request_id: Option<&str>,
) -> Result<std::collections::HashMap<CaseId, Record>, ServiceError> {
    use std::collections::HashMap;
    if cases.is_empty() {
        return Ok(HashMap::new());
    }
    // The caller already sees these cases (they come from a scoped list or
    // lookup); the filter repeats the scope so no other case's text leaks.
    let visible: Vec<uuid::Uuid> = case::Entity::find()
        .filter(case::Column::Id.is_in(cases.iter().map(|c| c.uuid())))
        .filter(super::cases::visibility_condition(actor.case_visibility()))
        .all(db)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let rows = case_record::Entity::find()
        .filter(case_record::Column::CaseId.is_in(visible.iter().copied()))
        .order_by_asc(case_record::Column::CreatedAt)
        .order_by_asc(case_record::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<CaseId, Record> = HashMap::new();
    for row in rows {
        out.insert(CaseId::from_uuid(row.case_id), row.into());
    }
    if !out.is_empty() {
        let now = audit::now();
        access_log::Entity::insert_many(out.keys().map(|id| access_log::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            case_id: Set(id.uuid()),
            actor_sub: Set(actor.sub.clone()),
            actor_agency_id: Set(actor.agency.map(|a| a.uuid())),
            what: Set("last_record".to_owned()),
            request_id: Set(request_id.map(str::to_owned)),
            at: Set(now),
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(out)
}

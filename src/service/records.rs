//! Records, agencies' views and agreed actions: what is written at a stage.
//! Each addition is a [`CaseChange`] (a new version and an audit event, in
//! the change frame's one transaction); nothing is edited, a correction is
//! a new record.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{access_log, agency_view, agreed_action, case, case_record, missing_record};
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::SelectStatement;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::audit::AuditAction;
use super::cases::CaseStatus;
use super::change::{About, CaseChange, Ctx, Decided, Target, ready};
use super::{ServiceError, audit, case_row};
use crate::domain::access::{MOST_ACTIONS_PER_CASE, MOST_VIEWS_PER_CASE, has_room, owner_is_party};
use crate::domain::actor::Actor;
use crate::domain::ids::{AgencyId, CaseId};
use crate::domain::milestone;
use crate::domain::policy::{Action, Side};
use crate::domain::protocol::RecordKind;

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
    /// When the owner agency recorded it done (`completeAction`).
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<agreed_action::Model> for AgreedAction {
    fn from(m: agreed_action::Model) -> Self {
        Self {
            id: m.id,
            stage: m.stage,
            description: m.description,
            owner_agency_id: m.owner_agency_id,
            due_on: m.due_on,
            created_at: m.created_at,
            completed_at: m.completed_at,
        }
    }
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

/// A change of a case whose only column to move is `updated_at`.
fn touched(row: &case::Model, now: DateTime<Utc>) -> case::Model {
    case::Model { updated_at: now, ..row.clone() }
}

/// Adds a record at the case's current stage.
impl CaseChange for AddRecordInput {
    type Output = Record;

    fn about(&self) -> About<Record> {
        About {
            operation: "addRecord",
            action: AuditAction::AddRecord,
            target: Target::case(self.case, self.expected_version),
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<Record>, ServiceError> {
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        let protocol =
            case_row::permit(ctx.catalog, row, ctx.participants, ctx.actor, Action::AddRecord)?;
        if let Some(corrected) = self.corrects {
            let exists = case_record::Entity::find_by_id(corrected)
                .filter(case_record::Column::CaseId.eq(row.id))
                .one(ctx.txn)
                .await?
                .is_some();
            if !exists {
                return Err(ServiceError::bad_input("corrects", "no such record on this case"));
            }
        }
        let model = case_record::Model {
            id: uuid::Uuid::now_v7(),
            case_id: row.id,
            stage: row.stage.clone(),
            kind: self.kind.as_str().to_owned(),
            facts: self.facts.clone(),
            opinions: self.opinions.clone(),
            attendees: serde_json::to_string(&self.attendees).unwrap_or_else(|_| "[]".into()),
            corrects_id: self.corrects,
            author_sub: ctx.actor.sub.clone(),
            author_agency_id: ctx.actor.acting_agency().map(|a| a.uuid()),
            created_at: ctx.now,
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
            created_at: Set(model.created_at),
        })
        .exec_without_returning(ctx.txn)
        .await?;
        let mut case = touched(row, ctx.now);
        let mut audit = json!({ "record_id": model.id, "kind": model.kind, "stage": model.stage, "corrects": model.corrects_id });
        // At a stage with milestones a record may complete one: the case's
        // due date moves to the next open milestone's.
        let timed =
            protocol.stage(&row.route, &row.stage).is_some_and(|s| !s.milestones().is_empty());
        if timed && row.status == CaseStatus::Open.as_str() {
            let written = written_at_stage(ctx.txn, row).await?;
            case.due_on = milestone_due_on(protocol, row, &written)?;
            if case.due_on != row.due_on {
                audit["due_on"] = json!(case.due_on);
            }
        }
        Ok(Decided { case, audit, output: ready(Record::from(model)), raises: None })
    }
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
impl CaseChange for RecordViewInput {
    type Output = View;

    fn about(&self) -> About<View> {
        About {
            operation: "recordAgencyView",
            action: AuditAction::RecordView,
            target: Target::case(self.case, self.expected_version),
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<View>, ServiceError> {
        // Visibility first (the frame loaded the case the caller may see):
        // a case outside the caller's scope does not exist.
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        // A view is a party's: the rule refuses anyone acting for no party
        // agency (a board chair acts for the board).
        let protocol =
            case_row::permit(ctx.catalog, row, ctx.participants, ctx.actor, Action::RecordView)?;
        let facts = case_row::facts(row, ctx.participants);
        // `check` refused anyone acting for neither party; this is its
        // belt and brace.
        let agency = ctx.actor.acting_agency().ok_or_else(|| {
            ServiceError::from(crate::domain::access::Refusal::NotAParty {
                allowed_roles: crate::domain::policy::allowed_roles(
                    protocol,
                    facts.route,
                    facts.stage,
                    Action::RecordView,
                ),
            })
        })?;
        let held = agency_view::Entity::find()
            .filter(agency_view::Column::CaseId.eq(row.id))
            .count(ctx.txn)
            .await?;
        if !has_room(held, MOST_VIEWS_PER_CASE) {
            return Err(ServiceError::Conflict(format!(
                "the case holds the most views it keeps ({MOST_VIEWS_PER_CASE}); record what has \
                 changed as a record instead"
            )));
        }
        let view = View {
            id: uuid::Uuid::now_v7(),
            agency_id: agency.uuid(),
            stage: row.stage.clone(),
            view: self.view.clone(),
            created_at: ctx.now,
        };
        agency_view::Entity::insert(agency_view::ActiveModel {
            id: Set(view.id),
            case_id: Set(row.id),
            agency_id: Set(view.agency_id),
            stage: Set(view.stage.clone()),
            view: Set(view.view.clone()),
            author_sub: Set(ctx.actor.sub.clone()),
            created_at: Set(view.created_at),
        })
        .exec_without_returning(ctx.txn)
        .await?;
        let audit = json!({ "view_id": view.id, "agency_id": view.agency_id, "stage": view.stage });
        Ok(Decided { case: touched(row, ctx.now), audit, output: ready(view), raises: None })
    }
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
impl CaseChange for AgreeActionInput {
    type Output = AgreedAction;

    fn about(&self) -> About<AgreedAction> {
        About {
            operation: "agreeAction",
            action: AuditAction::AgreeAction,
            target: Target::case(self.case, self.expected_version),
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<AgreedAction>, ServiceError> {
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        case_row::permit(ctx.catalog, row, ctx.participants, ctx.actor, Action::AgreeAction)?;
        if !owner_is_party(&case_row::facts(row, ctx.participants), self.owner) {
            return Err(ServiceError::bad_input(
                "ownerAgencyId",
                "the owner must be the raising or the receiving agency of the case",
            ));
        }
        if self.due_on < ctx.now.date_naive() {
            return Err(ServiceError::bad_input("dueOn", "must not be in the past"));
        }
        let held = agreed_action::Entity::find()
            .filter(agreed_action::Column::CaseId.eq(row.id))
            .count(ctx.txn)
            .await?;
        if !has_room(held, MOST_ACTIONS_PER_CASE) {
            return Err(ServiceError::Conflict(format!(
                "the case holds the most agreed actions it keeps ({MOST_ACTIONS_PER_CASE})"
            )));
        }
        let action = AgreedAction {
            id: uuid::Uuid::now_v7(),
            stage: row.stage.clone(),
            description: self.description.clone(),
            owner_agency_id: self.owner.uuid(),
            due_on: self.due_on,
            created_at: ctx.now,
            completed_at: None,
        };
        agreed_action::Entity::insert(agreed_action::ActiveModel {
            id: Set(action.id),
            case_id: Set(row.id),
            stage: Set(action.stage.clone()),
            description: Set(action.description.clone()),
            owner_agency_id: Set(action.owner_agency_id),
            due_on: Set(action.due_on),
            author_sub: Set(ctx.actor.sub.clone()),
            created_at: Set(action.created_at),
            completed_at: Set(None),
            completed_by_sub: Set(None),
        })
        .exec_without_returning(ctx.txn)
        .await?;
        super::timers::schedule_action(ctx.txn, ctx.catalog, row, action.id, action.due_on).await?;
        let audit = json!({ "action_id": action.id, "owner_agency_id": action.owner_agency_id, "due_on": action.due_on });
        Ok(Decided { case: touched(row, ctx.now), audit, output: ready(action), raises: None })
    }
}

/// `completeAction`, parsed.
#[derive(Debug, Clone)]
pub struct CompleteActionInput {
    /// The case.
    pub case: CaseId,
    /// Refuse if the case moved since.
    pub expected_version: Option<i32>,
    /// The agreed action.
    pub action: uuid::Uuid,
}

/// Records an agreed action done: by the agency that owns it, while the
/// case is open, once (`domain::access::may_complete_action`); its
/// reminders that have not fired are removed.
impl CaseChange for CompleteActionInput {
    type Output = AgreedAction;

    fn about(&self) -> About<AgreedAction> {
        About {
            operation: "completeAction",
            action: AuditAction::CompleteAction,
            target: Target::case(self.case, self.expected_version),
        }
    }

    async fn decide_and_write(
        &self,
        ctx: &Ctx<'_>,
        row: Option<&case::Model>,
    ) -> Result<Decided<AgreedAction>, ServiceError> {
        let row = row.ok_or(ServiceError::NotFound("case"))?;
        let protocol = case_row::protocol_of(ctx.catalog, row)?;
        let facts = case_row::facts(row, ctx.participants);
        // A case the caller may not see hides its actions too.
        if !crate::domain::access::sees(ctx.actor, &facts) {
            return Err(ServiceError::NotFound("case"));
        }
        let Some(found) = agreed_action::Entity::find_by_id(self.action)
            .filter(agreed_action::Column::CaseId.eq(row.id))
            .one(ctx.txn)
            .await?
        else {
            return Err(ServiceError::NotFound("action"));
        };
        crate::domain::access::may_complete_action(
            protocol,
            &facts,
            ctx.actor,
            AgencyId::from_uuid(found.owner_agency_id),
            found.completed_at.is_some(),
        )?;
        agreed_action::Entity::update_many()
            .col_expr(agreed_action::Column::CompletedAt, Expr::value(ctx.now))
            .col_expr(agreed_action::Column::CompletedBySub, Expr::value(ctx.actor.sub.clone()))
            .filter(agreed_action::Column::Id.eq(found.id))
            .exec(ctx.txn)
            .await?;
        super::timers::cancel_action(ctx.txn, found.id).await?;
        let mut done: AgreedAction = found.into();
        done.completed_at = Some(ctx.now);
        let audit = json!({ "action_id": done.id, "owner_agency_id": done.owner_agency_id });
        Ok(Decided { case: touched(row, ctx.now), audit, output: ready(done), raises: None })
    }
}

/// A case's free text, whose every read is logged in `access_log` (its
/// `what`). Free text is what a professional typed about the child or the
/// dispute: the summary, the child reference (agency case numbers, which
/// identify a child to whoever holds the agency's files), records (a page
/// of them or the latest), agencies' views, agreed actions' descriptions,
/// and the report, which shows them together. Ids, stages, dates and
/// agencies are not free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FreeText {
    /// `Case.summary`.
    Summary,
    /// `Case.childReference`.
    ChildReference,
    /// `Case.records`.
    Records,
    /// `Case.lastRecord`.
    LastRecord,
    /// `Case.views`.
    Views,
    /// `Case.actions`.
    Actions,
    /// `report(caseId)`.
    Report,
    /// `auditTrail(caseId)`: its events' `data` holds outcomes and learning.
    AuditTrail,
}

impl FreeText {
    /// The stored spelling (`access_log.what`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::ChildReference => "child_reference",
            Self::Records => "records",
            Self::LastRecord => "last_record",
            Self::Views => "views",
            Self::Actions => "actions",
            Self::Report => "report",
            Self::AuditTrail => "audit_trail",
        }
    }
}

/// Logs that `actor` read each `(case, free text)` of `reads`: one row
/// each, in one multi-row INSERT, whatever the number of cases. The row
/// keeps the agency the token names (who read), not the agency changes are
/// attributed to ([`Actor::acting_agency`]).
#[tracing::instrument(skip_all, fields(reads = reads.len()))]
pub async fn log_reads(
    db: &impl ConnectionTrait,
    actor: &Actor,
    reads: &[(CaseId, FreeText)],
    request_id: Option<&str>,
) -> Result<(), ServiceError> {
    if reads.is_empty() {
        return Ok(());
    }
    let at = audit::now();
    access_log::Entity::insert_many(reads.iter().map(|&(case, what)| access_log::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        case_id: Set(case.uuid()),
        actor_sub: Set(actor.sub.clone()),
        actor_agency_id: Set(actor.agency.map(|a| a.uuid())),
        what: Set(what.as_str().to_owned()),
        request_id: Set(request_id.map(str::to_owned)),
        at: Set(at),
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The ids among `cases` that `actor` may see, as a subquery: every batch
/// read below repeats the caller's scope inside its one statement, so no
/// other case's text can leak even if a caller of these functions erred.
fn visible(actor: &Actor, cases: &[CaseId]) -> SelectStatement {
    case::Entity::find()
        .select_only()
        .column(case::Column::Id)
        .filter(case::Column::Id.is_in(cases.iter().map(|c| c.uuid())))
        .filter(super::cases::visibility_condition(actor.case_visibility()))
        .into_query()
}

/// Where a page of records starts: after the record of this time and id.
pub type RecordsAfter = (DateTime<Utc>, uuid::Uuid);

/// For each of `cases`, a page of its records, oldest first (ties by id),
/// after `after`, at most `limit`; and whether more follow. One statement
/// for all the cases: `ROW_NUMBER() OVER (PARTITION BY case_id ...)` numbers
/// each case's records (SQLite 3.25 and PostgreSQL both have it) and the
/// outer query keeps the first `limit + 1`. Cases with no record (or that
/// the caller may not see) are missing from the map. Not logged: the
/// caller logs the read ([`log_reads`]).
pub async fn record_pages(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
    after: Option<RecordsAfter>,
    limit: u64,
) -> Result<HashMap<CaseId, (Vec<Record>, bool)>, ServiceError> {
    let rows = numbered_records(db, actor, cases, after, limit + 1, false).await?;
    let mut out: HashMap<CaseId, (Vec<Record>, bool)> = HashMap::new();
    for row in rows {
        let (list, more) = out.entry(CaseId::from_uuid(row.case_id)).or_default();
        if list.len() as u64 == limit {
            *more = true;
        } else {
            list.push(row.into());
        }
    }
    Ok(out)
}

/// The latest record of each of `cases` (one statement, one row per case:
/// the same numbering as [`record_pages`], newest first). Not logged.
pub async fn latest_records(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
) -> Result<HashMap<CaseId, Record>, ServiceError> {
    let rows = numbered_records(db, actor, cases, None, 1, true).await?;
    Ok(rows.into_iter().map(|r| (CaseId::from_uuid(r.case_id), Record::from(r))).collect())
}

/// The first `keep` records of each visible case of `cases` after `after`,
/// in the list's order (or the reverse, `newest_first`), in one statement.
async fn numbered_records(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
    after: Option<RecordsAfter>,
    keep: u64,
    newest_first: bool,
) -> Result<Vec<case_record::Model>, ServiceError> {
    use sea_orm::sea_query::{Alias, Asterisk, ExprTrait, Order, Query};
    use sea_orm::{Condition, FromQueryResult};
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    let order = if newest_first { "DESC" } else { "ASC" };
    let mut inner = case_record::Entity::find()
        .filter(case_record::Column::CaseId.in_subquery(visible(actor, cases)))
        .column_as(
            Expr::cust(format!(
                r#"ROW_NUMBER() OVER (PARTITION BY "case_id" ORDER BY "created_at" {order}, "id" {order})"#
            )),
            "rn",
        );
    if let Some((at, id)) = after {
        inner = inner.filter(
            Condition::any().add(case_record::Column::CreatedAt.gt(at)).add(
                Condition::all()
                    .add(case_record::Column::CreatedAt.eq(at))
                    .add(case_record::Column::Id.gt(id)),
            ),
        );
    }
    let rn = Alias::new("rn");
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner.into_query(), Alias::new("numbered"))
        .and_where(Expr::col(rn.clone()).lte(keep))
        .order_by(Alias::new("case_id"), Order::Asc)
        .order_by(rn, Order::Asc)
        .to_owned();
    let statement = db.get_database_backend().build(&outer);
    Ok(case_record::Model::find_by_statement(statement).all(db).await?)
}

/// How many records each of `cases` has (one statement; cases without
/// records are missing from the map).
pub async fn record_counts(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
) -> Result<HashMap<CaseId, u64>, ServiceError> {
    if cases.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(uuid::Uuid, i64)> = case_record::Entity::find()
        .select_only()
        .column(case_record::Column::CaseId)
        .column_as(case_record::Column::Id.count(), "n")
        .filter(case_record::Column::CaseId.in_subquery(visible(actor, cases)))
        .group_by(case_record::Column::CaseId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(case, n)| (CaseId::from_uuid(case), u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// The views of each of `cases`, oldest first (one statement). Not logged.
pub async fn views_of(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
) -> Result<HashMap<CaseId, Vec<View>>, ServiceError> {
    if cases.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = agency_view::Entity::find()
        .filter(agency_view::Column::CaseId.in_subquery(visible(actor, cases)))
        .order_by_asc(agency_view::Column::CreatedAt)
        .order_by_asc(agency_view::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<CaseId, Vec<View>> = HashMap::new();
    for m in rows {
        out.entry(CaseId::from_uuid(m.case_id)).or_default().push(View {
            id: m.id,
            agency_id: m.agency_id,
            stage: m.stage,
            view: m.view,
            created_at: m.created_at,
        });
    }
    Ok(out)
}

/// The agreed actions of each of `cases`, by due date (one statement). Not
/// logged.
pub async fn actions_of(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
) -> Result<HashMap<CaseId, Vec<AgreedAction>>, ServiceError> {
    if cases.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = agreed_action::Entity::find()
        .filter(agreed_action::Column::CaseId.in_subquery(visible(actor, cases)))
        .order_by_asc(agreed_action::Column::DueOn)
        .order_by_asc(agreed_action::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<CaseId, Vec<AgreedAction>> = HashMap::new();
    for m in rows {
        out.entry(CaseId::from_uuid(m.case_id)).or_default().push(m.into());
    }
    Ok(out)
}

/// The kinds of record written on the case `row` at its current stage
/// (one statement, in the change's transaction).
pub(crate) async fn kinds_at_stage(
    txn: &impl ConnectionTrait,
    row: &case::Model,
) -> Result<Vec<RecordKind>, ServiceError> {
    let kinds: Vec<String> = case_record::Entity::find()
        .select_only()
        .column(case_record::Column::Kind)
        .distinct()
        .filter(case_record::Column::CaseId.eq(row.id))
        .filter(case_record::Column::Stage.eq(row.stage.as_str()))
        .into_tuple()
        .all(txn)
        .await?;
    Ok(kinds.iter().filter_map(|k| RecordKind::parse(k)).collect())
}

/// A record written on a case, as its milestones see it (no free text).
#[derive(Debug, Clone)]
pub struct WrittenRecord {
    /// The stage it was written at.
    pub stage: String,
    /// Its kind.
    pub kind: RecordKind,
    /// Its author's agency, if any.
    pub author_agency_id: Option<AgencyId>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// The records of each of `cases` the caller may see, oldest first, for
/// their milestones: one statement for a page.
pub async fn written_records_of(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
) -> Result<HashMap<CaseId, Vec<WrittenRecord>>, ServiceError> {
    if cases.is_empty() {
        return Ok(HashMap::new());
    }
    type Row = (uuid::Uuid, String, String, Option<uuid::Uuid>, DateTime<Utc>);
    let rows: Vec<Row> = case_record::Entity::find()
        .select_only()
        .column(case_record::Column::CaseId)
        .column(case_record::Column::Stage)
        .column(case_record::Column::Kind)
        .column(case_record::Column::AuthorAgencyId)
        .column(case_record::Column::CreatedAt)
        .filter(case_record::Column::CaseId.in_subquery(visible(actor, cases)))
        .order_by_asc(case_record::Column::CreatedAt)
        .order_by_asc(case_record::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: HashMap<CaseId, Vec<WrittenRecord>> = HashMap::new();
    for (case, stage, kind, agency, created_at) in rows {
        let kind = RecordKind::parse(&kind)
            .ok_or_else(|| ServiceError::Internal(format!("unknown record kind {kind:?}")))?;
        out.entry(CaseId::from_uuid(case)).or_default().push(WrittenRecord {
            stage,
            kind,
            author_agency_id: agency.map(AgencyId::from_uuid),
            created_at,
        });
    }
    Ok(out)
}

/// The records written on the case `row` at its current stage, as the
/// milestones see them (kind, the author agency's side, when), in the
/// order written (one statement, in the change's transaction).
pub(crate) async fn written_at_stage(
    txn: &impl ConnectionTrait,
    row: &case::Model,
) -> Result<Vec<milestone::Written>, ServiceError> {
    let rows: Vec<(String, Option<uuid::Uuid>, DateTime<Utc>)> = case_record::Entity::find()
        .select_only()
        .column(case_record::Column::Kind)
        .column(case_record::Column::AuthorAgencyId)
        .column(case_record::Column::CreatedAt)
        .filter(case_record::Column::CaseId.eq(row.id))
        .filter(case_record::Column::Stage.eq(row.stage.as_str()))
        .order_by_asc(case_record::Column::CreatedAt)
        .into_tuple()
        .all(txn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, agency, at)| {
            Some(milestone::Written {
                kind: RecordKind::parse(&kind)?,
                side: side_of(row, agency),
                at,
            })
        })
        .collect())
}

/// Which side of the case `row` an agency is on (`None`: neither).
pub(crate) fn side_of(row: &case::Model, agency: Option<uuid::Uuid>) -> Option<Side> {
    match agency {
        Some(a) if a == row.raising_agency_id => Some(Side::Raising),
        Some(a) if a == row.receiving_agency_id => Some(Side::Receiving),
        _ => None,
    }
}

/// Where the milestones of the stage `stage` of `route` stand for a case
/// that reached it at `entered`, with `written` the records written at it
/// (empty for a stage without milestones): the glue between a case and
/// `domain::milestone::standings`, for the frame, the timers and the API.
pub fn milestone_standings<'p>(
    protocol: &'p crate::domain::protocol::Protocol,
    route: &str,
    stage: &str,
    entered: DateTime<Utc>,
    written: &[milestone::Written],
) -> Result<Vec<milestone::Standing<'p>>, ServiceError> {
    let Some(stage) = protocol.stage(route, stage) else { return Ok(Vec::new()) };
    let calendar = crate::domain::calendar::Calendar::for_id(protocol.calendar())
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    milestone::standings(calendar, stage.milestones(), entered.date_naive(), written)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

/// The case's due date at a stage with milestones, given what is written
/// at it: its next open milestone's (`None` for a stage without).
pub(crate) fn milestone_due_on(
    protocol: &crate::domain::protocol::Protocol,
    row: &case::Model,
    written: &[milestone::Written],
) -> Result<Option<NaiveDate>, ServiceError> {
    let entered = row.stage_entered_at.unwrap_or(row.raised_at);
    let standings = milestone_standings(protocol, &row.route, &row.stage, entered, written)?;
    Ok(milestone::due_on(&standings))
}

/// Flags on the case `row` the records its current stage required and it
/// left without (an escalation for immediate risk), in the change's
/// transaction; nothing when none is missing.
pub(crate) async fn flag_missing(
    txn: &impl ConnectionTrait,
    row: &case::Model,
    missing: &[RecordKind],
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if missing.is_empty() {
        return Ok(());
    }
    missing_record::Entity::insert_many(missing.iter().map(|kind| missing_record::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        case_id: Set(row.id),
        stage: Set(row.stage.clone()),
        kind: Set(kind.as_str().to_owned()),
        flagged_at: Set(now),
    }))
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// A record a case left a stage without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingRecord {
    /// The stage it left.
    pub stage: String,
    /// The kind of record it lacked.
    pub kind: RecordKind,
    /// When the gap was flagged (the escalation).
    pub flagged_at: DateTime<Utc>,
}

/// The missing records of each visible case of `cases`, oldest first (one
/// statement; cases without any are missing from the map).
pub async fn missing_records_of(
    db: &impl ConnectionTrait,
    actor: &Actor,
    cases: &[CaseId],
) -> Result<HashMap<CaseId, Vec<MissingRecord>>, ServiceError> {
    if cases.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = missing_record::Entity::find()
        .filter(missing_record::Column::CaseId.in_subquery(visible(actor, cases)))
        .order_by_asc(missing_record::Column::FlaggedAt)
        .order_by_asc(missing_record::Column::Id)
        .all(db)
        .await?;
    let mut out: HashMap<CaseId, Vec<MissingRecord>> = HashMap::new();
    for row in rows {
        let kind = RecordKind::parse(&row.kind)
            .ok_or_else(|| ServiceError::Internal(format!("unknown record kind {:?}", row.kind)))?;
        out.entry(CaseId::from_uuid(row.case_id)).or_default().push(MissingRecord {
            stage: row.stage,
            kind,
            flagged_at: row.flagged_at,
        });
    }
    Ok(out)
}

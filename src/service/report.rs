//! The Resolution of Professional Differences Report (seed 000), derived
//! from the case, its audit trail, views and actions: never typed twice.
//! And the board's queue of cases that reached the stages where the
//! protocol tells the board.

use chrono::{DateTime, Utc};
use entity::{case, case_event};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::audit::AuditAction;
use super::cases::{Case, CaseStatus};
use super::protocols::Library;
use super::records::{self, AgreedAction, FreeText, View};
use super::{ServiceError, case_row};
use crate::domain::actor::Actor;
use crate::domain::board::board_stages;
use crate::domain::calendar::Calendar;
use crate::domain::ids::{AgencyId, CaseId};
use crate::domain::policy::Action;

/// A stage the case reached, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageReached {
    /// Stage key.
    pub stage: String,
    /// When the case reached it.
    pub at: DateTime<Utc>,
}

/// A professional who acted on the case (as recorded in the audit trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Professional {
    /// The token `sub` (the report shows ids, not names: names are not kept).
    pub sub: String,
    /// Designation: the role they acted in.
    pub role: Option<String>,
    /// Their agency.
    pub agency_id: Option<AgencyId>,
    /// When they first acted.
    pub first_acted_at: DateTime<Utc>,
}

/// The report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The case.
    pub case: Case,
    /// Stages reached, in order, with dates.
    pub stages: Vec<StageReached>,
    /// Professionals involved, by first action.
    pub professionals: Vec<Professional>,
    /// Every agency view, oldest first.
    pub views: Vec<View>,
    /// Agreed actions.
    pub actions: Vec<AgreedAction>,
    /// When it was resolved or withdrawn.
    pub closed_at: Option<DateTime<Utc>>,
    /// The outcome (resolution) or the reason (withdrawal).
    pub outcome: Option<String>,
    /// Learning recorded at resolution.
    pub learning: Option<String>,
    /// Working days from raising to closing (or to today while open).
    pub working_days_taken: Option<i64>,
}

/// The report of a case, for the roles the protocol allows at its stage;
/// the read is logged (it carries free text).
pub async fn report(
    db: &impl ConnectionTrait,
    protocols: &Library,
    actor: &Actor,
    id: CaseId,
    request_id: Option<&str>,
) -> Result<Report, ServiceError> {
    let row = case_row::load_visible(db, actor, id, None).await?;
    let participants = super::participants::current(db, row.id).await?;
    // The case's own version, whatever the partnership has adopted since.
    let catalog = protocols.covering(db, &row.protocol_id, row.protocol_version).await?;
    let protocol = case_row::permit(&catalog, &row, &participants, actor, Action::ReadReport)?;
    let events = case_event::Entity::find()
        .filter(case_event::Column::CaseId.eq(row.id))
        .order_by_asc(case_event::Column::Seq)
        .all(db)
        .await?;
    let mut stages = Vec::new();
    let mut professionals: Vec<Professional> = Vec::new();
    let (mut closed_at, mut outcome, mut learning) = (None, None, None);
    for e in &events {
        let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
        match AuditAction::parse(&e.action) {
            Some(AuditAction::Raise) => stages.push(StageReached {
                stage: data["stage"].as_str().unwrap_or(&row.stage).to_owned(),
                at: e.at,
            }),
            Some(AuditAction::Escalate) => {
                if let Some(to) = data["to_stage"].as_str() {
                    stages.push(StageReached { stage: to.to_owned(), at: e.at });
                }
            }
            Some(AuditAction::Resolve | AuditAction::Withdraw) => {
                closed_at = Some(e.at);
                outcome = data["outcome"].as_str().map(str::to_owned);
                learning = data["learning"].as_str().map(str::to_owned);
            }
            _ => {}
        }
        if !professionals.iter().any(|p| p.sub == e.actor_sub) {
            professionals.push(Professional {
                sub: e.actor_sub.clone(),
                role: e.actor_role.clone(),
                agency_id: e.actor_agency_id.map(AgencyId::from_uuid),
                first_acted_at: e.at,
            });
        }
    }
    let end = closed_at.unwrap_or_else(Utc::now).date_naive();
    let working_days_taken = Calendar::for_id(protocol.calendar())
        .ok()
        .and_then(|c| c.working_days_between(row.raised_at.date_naive(), end).ok());
    let views = records::views_of(db, actor, &[id]).await?.remove(&id).unwrap_or_default();
    let actions = records::actions_of(db, actor, &[id]).await?.remove(&id).unwrap_or_default();
    let reads = [(id, FreeText::Views), (id, FreeText::Actions), (id, FreeText::Report)];
    records::log_reads(db, actor, &reads, request_id).await?;
    Ok(Report {
        case: row.try_into()?,
        stages,
        professionals,
        views,
        actions,
        closed_at,
        outcome,
        learning,
        working_days_taken,
    })
}

/// The board chair's queue: the partnership's open cases at (or above) a
/// stage where the protocol tells the board, oldest first.
pub async fn board_queue(
    db: &impl ConnectionTrait,
    protocols: &Library,
    actor: &Actor,
    limit: u64,
) -> Result<Vec<Case>, ServiceError> {
    if !crate::domain::access::may_read_board_queue(actor) {
        return Err(ServiceError::forbidden(
            "the board queue is the board chair's",
            crate::domain::access::Allowed::roles(
                crate::domain::access::BOARD_QUEUE_ROLES.to_vec(),
            ),
        ));
    }
    let partnership = entity::partnership::Entity::find_by_id(actor.partnership.uuid())
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("partnership"))?;
    // Each open case is at the board by its own version's stages: every
    // version of the partnership's protocol adds its (version, route,
    // stage) triples.
    let catalog = protocols.reload(db).await?;
    let mut at_board = Condition::any();
    for protocol in catalog.versions(&partnership.protocol_id) {
        let version = i32::try_from(protocol.version()).unwrap_or(i32::MAX);
        for (route, stage) in board_stages(protocol) {
            at_board = at_board.add(
                Condition::all()
                    .add(case::Column::ProtocolVersion.eq(version))
                    .add(case::Column::Route.eq(route))
                    .add(case::Column::Stage.eq(stage)),
            );
        }
    }
    let rows = case::Entity::find()
        .filter(case::Column::PartnershipId.eq(actor.partnership.uuid()))
        .filter(case::Column::Status.eq(CaseStatus::Open.as_str()))
        .filter(at_board)
        .order_by_asc(case::Column::StageEnteredAt)
        .order_by_asc(case::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    rows.into_iter().map(Case::try_from).collect()
}

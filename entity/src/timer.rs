//! A timer of a case's deadline: when it fires, and whether it has (see
//! `service::timers`). Unfired rows are replaced when the deadline moves;
//! fired rows are kept.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "timer")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    /// The event it appends (`MILESTONE_OVERDUE`, `STAGE_OVERDUE`).
    pub kind: String,
    /// The stage it belongs to.
    pub stage: String,
    /// The milestone, for a milestone's timer.
    pub milestone: Option<String>,
    pub fires_at: DateTimeUtc,
    pub fired_at: Option<DateTimeUtc>,
    /// How late it fired, when later than a sweep's interval.
    pub late_ms: Option<i64>,
    pub claim_owner: Option<Uuid>,
    pub claim_until_ms: Option<i64>,
    /// The agreed action, for an action's timer.
    pub action_id: Option<Uuid>,
    /// The deadline it announces (null on rows written before it was kept).
    pub deadline_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::case::Entity",
        from = "Column::CaseId",
        to = "super::case::Column::Id"
    )]
    Case,
}

impl Related<super::case::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Case.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

//! One event of the change feed: a change to a case, ids and states only.
//! Rows are inserted, never updated or deleted.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: Uuid,
    #[sea_orm(column_name = "type")]
    pub kind: String,
    pub case_id: Uuid,
    pub partnership_id: Uuid,
    pub raising_agency_id: Uuid,
    pub receiving_agency_id: Uuid,
    pub stage_before: Option<String>,
    pub stage_after: String,
    pub status: String,
    pub case_version: i32,
    pub at: DateTimeUtc,
    pub request_id: Option<String>,
    /// For a timer's event: the milestone it is about.
    pub milestone: Option<String>,
    /// For a timer's event: the agreed action it is about.
    pub action_id: Option<Uuid>,
    /// For a timer's event: the deadline it announces (due soon: the
    /// deadline ahead; overdue: the one passed).
    pub deadline_at: Option<DateTimeUtc>,
    /// For a timer's event that fired late (after downtime): by how much.
    pub late_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

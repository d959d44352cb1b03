//! An agency taking part in a case beyond its two parties, from `joinCase`
//! to `leaveCase` (see `service::participants`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case_participant")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub agency_id: Uuid,
    /// The agency's kind when it joined (stored spelling).
    pub agency_kind: String,
    /// The stage it joined at, whose rule says what it may do.
    pub stage: String,
    pub joined_at: DateTimeUtc,
    pub joined_by_sub: String,
    /// Null while it takes part.
    pub left_at: Option<DateTimeUtc>,
    pub left_by_sub: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

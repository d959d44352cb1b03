//! One party and role an open case waits on (`domain::awaiting`), kept by
//! the change frame for each person's queue (see `service::awaiting`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "awaiting")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub case_id: Uuid,
    /// `raising`, `receiving` or `board`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub party: String,
    /// The role awaited (stored spelling).
    #[sea_orm(primary_key, auto_increment = false)]
    pub role: String,
    pub partnership_id: Uuid,
    /// The party's agency; null for the board.
    pub agency_id: Option<Uuid>,
    /// The milestone owed, if the case waits on one.
    pub milestone: Option<String>,
    pub due_on: Option<Date>,
    /// The instant it is due, in milliseconds (`i64::MAX` when no due
    /// date): the queue's order.
    pub sort_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

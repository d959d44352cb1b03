//! One event to send to one endpoint: the outbox, written in the event's
//! transaction.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_delivery")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_seq: i64,
    pub event_type: String,
    pub case_id: Uuid,
    pub payload: String,
    pub state: String,
    pub step: i32,
    pub due_at_ms: i64,
    pub created_at: DateTimeUtc,
    pub created_at_ms: i64,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

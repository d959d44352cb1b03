//! One change to a webhook endpoint: who, when, what. Append-only.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_audit")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub endpoint_id: Uuid,
    pub at: DateTimeUtc,
    pub actor_issuer: String,
    pub actor_sub: String,
    pub action: String,
    pub data: String,
    pub request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

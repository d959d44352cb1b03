//! A webhook endpoint: where an agency (or a partnership) wants to hear of
//! changes. Kept when deleted (`deleted_at`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoint")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub partnership_id: Uuid,
    pub agency_id: Option<Uuid>,
    pub owner_issuer: String,
    pub owner_sub: String,
    pub url: String,
    pub description: String,
    pub event_types: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until_ms: Option<i64>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since_ms: Option<i64>,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub lease_owner: Option<Uuid>,
    pub lease_until_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

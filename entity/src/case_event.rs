//! One append-only audit event of a case. Rows are inserted, never updated
//! or deleted; each carries the hash of the one before it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case_event")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub seq: i32,
    pub at: DateTimeUtc,
    pub actor_sub: String,
    pub actor_role: Option<String>,
    pub actor_agency_id: Option<Uuid>,
    pub action: String,
    pub request_id: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

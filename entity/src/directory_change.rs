//! One change to the directory (a partnership or an agency): appended by
//! `escalations directory import` and the directory mutations, never
//! changed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_change")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub at: DateTimeUtc,
    /// The token's `sub`, or `cli:<user>` for the command line.
    pub actor_sub: String,
    pub partnership_id: Uuid,
    pub agency_id: Option<Uuid>,
    /// `partnership_created`, `partnership_updated`, `agency_created`,
    /// `agency_updated`, `agency_deactivated`, `agency_reactivated`.
    pub action: String,
    /// JSON: the fields changed, each `{ "before": .., "after": .. }`.
    #[sea_orm(column_type = "Text")]
    pub data: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

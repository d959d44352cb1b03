//! An action agreed at a stage, with an owner agency and a due date.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agreed_action")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub stage: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub owner_agency_id: Uuid,
    pub due_on: Date,
    pub author_sub: String,
    pub created_at: DateTimeUtc,
    /// When the owner agency recorded it done (`completeAction`).
    pub completed_at: Option<DateTimeUtc>,
    /// Who recorded it done.
    pub completed_by_sub: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Structured feedback of one agency on how well the process worked for a
//! closed case; at most one per agency per case, never edited.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feedback")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub agency_id: Uuid,
    /// Whether the agency thinks the difference was resolved.
    pub resolved: bool,
    /// How long it felt, 1 (far too long) to 5 (quick).
    pub felt_duration_rating: Option<i32>,
    pub would_use_again: bool,
    /// Free text.
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    pub author_sub: String,
    pub created_at: DateTimeUtc,
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

//! A written record of a discussion, meeting, letter or analysis at a stage.
//! Never edited: a correction is a new record pointing at the one it corrects.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case_record")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub case_id: Uuid,
    pub stage: String,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub facts: String,
    #[sea_orm(column_type = "Text")]
    pub opinions: String,
    /// JSON array of attendee descriptions.
    #[sea_orm(column_type = "Text")]
    pub attendees: String,
    pub corrects_id: Option<Uuid>,
    pub author_sub: String,
    pub author_agency_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

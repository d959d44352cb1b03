//! An organisation in a partnership; every user acts for one agency.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agency")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub partnership_id: Uuid,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub kind: String,
    pub created_at: DateTimeUtc,
    /// False once deactivated: it keeps its cases and history, raises
    /// nothing new, and its tokens are refused.
    pub active: bool,
    pub deactivated_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::partnership::Entity",
        from = "Column::PartnershipId",
        to = "super::partnership::Column::Id"
    )]
    Partnership,
}

impl Related<super::partnership::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Partnership.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

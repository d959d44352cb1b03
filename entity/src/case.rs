//! One professional difference between a raising and a receiving agency
//! about one child. The row is the current projection of the case; its
//! history lives in append-only tables.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "case")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub partnership_id: Uuid,
    pub protocol_id: String,
    pub protocol_version: i32,
    pub route: String,
    pub stage: String,
    pub status: String,
    pub raising_agency_id: Uuid,
    pub receiving_agency_id: Uuid,
    pub child_reference: String,
    pub category: String,
    #[sea_orm(column_type = "Text")]
    pub summary: String,
    pub version: i32,
    pub raised_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub stage_entered_at: Option<DateTimeUtc>,
    pub due_on: Option<Date>,
    /// When the receiving side acknowledged the case at its current stage
    /// (cleared when it moves up).
    pub acknowledged_at: Option<DateTimeUtc>,
    /// Similar cases (this one included) when the case crossed its
    /// protocol's repeated-disagreement threshold; null if it never did.
    pub repeated_similar_cases: Option<i32>,
    /// The day the family was told of the case, where the protocol has the
    /// rule (Rotherham's challenge); null until recorded.
    pub family_told_on: Option<Date>,
    /// The day of the conference that decided a step-down from a child
    /// protection plan to child-in-need planning, where the protocol has
    /// the rule (Rotherham's challenge); null until recorded.
    pub step_down_conference_on: Option<Date>,
    /// When the chair recorded the check of the step-down; null until then.
    pub step_down_checked_at: Option<DateTimeUtc>,
    /// The check found a multi-agency CiN meeting held (null until checked).
    pub step_down_cin_meeting_held: Option<bool>,
    /// The check found a CiN plan in place (null until checked).
    pub step_down_cin_plan_in_place: Option<bool>,
    /// The case the check raised, when it found the step-down not evidenced.
    pub step_down_follow_up_id: Option<Uuid>,
    /// The case whose step-down check raised this one.
    pub follows_case_id: Option<Uuid>,
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

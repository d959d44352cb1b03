//! Rotherham's step-down check on the case row (issue 12): the day of the
//! conference that stepped the child protection plan down to child-in-need
//! planning, the chair's check of it (when, and its two findings), and the
//! link between a case and the case its failed check raised, both ways.
//! Columns of the case, so that a page of cases reads them with its rows;
//! every recording is also in the audit trail.
//!
//! The two links carry no foreign key: SQLite cannot drop a column used
//! in a foreign key (so `down` could not work there), and cases are never
//! deleted; both ends are written in the one transaction of the check.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    StepDownConferenceOn,
    StepDownCheckedAt,
    StepDownCinMeetingHeld,
    StepDownCinPlanInPlace,
    StepDownFollowUpId,
    FollowsCaseId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        let columns = [
            ColumnDef::new(Case::StepDownConferenceOn).date().null().to_owned(),
            ColumnDef::new(Case::StepDownCheckedAt).timestamp_with_time_zone().null().to_owned(),
            ColumnDef::new(Case::StepDownCinMeetingHeld).boolean().null().to_owned(),
            ColumnDef::new(Case::StepDownCinPlanInPlace).boolean().null().to_owned(),
            ColumnDef::new(Case::StepDownFollowUpId).uuid().null().to_owned(),
            ColumnDef::new(Case::FollowsCaseId).uuid().null().to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(Table::alter().table(Case::Table).add_column(&mut column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Case::FollowsCaseId,
            Case::StepDownFollowUpId,
            Case::StepDownCinPlanInPlace,
            Case::StepDownCinMeetingHeld,
            Case::StepDownCheckedAt,
            Case::StepDownConferenceOn,
        ] {
            manager
                .alter_table(Table::alter().table(Case::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

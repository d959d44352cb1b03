//! When the receiving side acknowledged a case at its current stage
//! (`acknowledgeCase`): a nullable column on the case, cleared when the
//! case moves up a stage. Each acknowledgement is also an audit event and
//! an event of the case, so nothing of the history lives only here.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    AcknowledgedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Case::Table)
                    .add_column(
                        ColumnDef::new(Case::AcknowledgedAt).timestamp_with_time_zone().null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Case::Table).drop_column(Case::AcknowledgedAt).to_owned(),
            )
            .await
    }
}

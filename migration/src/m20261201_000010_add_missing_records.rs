//! Records a case left a stage without: a protocol may require records
//! before a case leaves a stage, and an escalation for immediate risk is
//! never held up by them, so the gap is kept on the case instead. Rows are
//! inserted, never updated or deleted.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum MissingRecord {
    Table,
    Id,
    CaseId,
    Stage,
    Kind,
    FlaggedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MissingRecord::Table)
                    .col(ColumnDef::new(MissingRecord::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(MissingRecord::CaseId).uuid().not_null())
                    .col(ColumnDef::new(MissingRecord::Stage).string_len(64).not_null())
                    .col(ColumnDef::new(MissingRecord::Kind).string_len(32).not_null())
                    .col(
                        ColumnDef::new(MissingRecord::FlaggedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_missing_record_case")
                            .from(MissingRecord::Table, MissingRecord::CaseId)
                            .to(Case::Table, Case::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_missing_record_case")
                    .table(MissingRecord::Table)
                    .col(MissingRecord::CaseId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MissingRecord::Table).to_owned()).await
    }
}

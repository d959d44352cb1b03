//! The flag of a case that crossed its protocol's repeated-disagreement
//! threshold (Pan-Sussex step 5): how many similar cases there were, this
//! one included, when it was raised or escalated for it. A nullable column
//! on the case; the count is also in the audit event.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    RepeatedSimilarCases,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Case::Table)
                    .add_column(ColumnDef::new(Case::RepeatedSimilarCases).integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Case::Table)
                    .drop_column(Case::RepeatedSimilarCases)
                    .to_owned(),
            )
            .await
    }
}

//! The day the family was told of a case (Rotherham's challenge: the
//! Conference Chair records it), on the case row so that a page of cases
//! reads it with the rows. Null until recorded; every recording is also in
//! the audit trail.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    FamilyToldOn,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Case::Table)
                    .add_column(ColumnDef::new(Case::FamilyToldOn).date().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Case::Table).drop_column(Case::FamilyToldOn).to_owned(),
            )
            .await
    }
}

//! Indexes for the systems that poll for changes: `cases(orderBy:
//! UPDATED_AT)` and `cases(filter: {updatedAfter})` read a partnership's
//! cases in `updated_at` order (ties by id), and `cases(filter:
//! {childReference})` looks a child reference up within a partnership.
//! Every visibility names the partnership, so both lead with it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    Id,
    PartnershipId,
    UpdatedAt,
    ChildReference,
}

const UPDATED: &str = "idx_case_partnership_updated";
const CHILD_REFERENCE: &str = "idx_case_partnership_child_reference";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(UPDATED)
                    .table(Case::Table)
                    .col(Case::PartnershipId)
                    .col(Case::UpdatedAt)
                    .col(Case::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(CHILD_REFERENCE)
                    .table(Case::Table)
                    .col(Case::PartnershipId)
                    .col(Case::ChildReference)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [CHILD_REFERENCE, UPDATED] {
            manager.drop_index(Index::drop().name(name).table(Case::Table).to_owned()).await?;
        }
        Ok(())
    }
}

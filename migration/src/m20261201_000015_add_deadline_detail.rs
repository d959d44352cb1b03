//! What a deadline's event says, and agreed actions that can be completed
//! (issue 13):
//! - an event of a timer names the milestone or the agreed action it is
//!   about, the deadline it announces, and how late it fired when it fired
//!   late (after downtime); other events leave them null;
//! - a timer may belong to an agreed action, and keeps the deadline it
//!   announces;
//! - an agreed action records when, and by whom, it was completed.
//!
//! SQLite adds one column per `ALTER TABLE`, so each is its own statement.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChangeEvent {
    Table,
    Milestone,
    ActionId,
    DeadlineAt,
    LateMs,
}

#[derive(DeriveIden)]
enum Timer {
    Table,
    ActionId,
    DeadlineAt,
}

#[derive(DeriveIden)]
enum AgreedAction {
    Table,
    CompletedAt,
    CompletedBySub,
}

async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    col: ColumnDef,
) -> Result<(), DbErr> {
    let mut col = col;
    manager.alter_table(Table::alter().table(table).add_column(&mut col).to_owned()).await
}

async fn drop(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    col: impl IntoIden,
) -> Result<(), DbErr> {
    manager.alter_table(Table::alter().table(table).drop_column(col).to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(
            manager,
            ChangeEvent::Table,
            ColumnDef::new(ChangeEvent::Milestone).string_len(64).null().to_owned(),
        )
        .await?;
        add(
            manager,
            ChangeEvent::Table,
            ColumnDef::new(ChangeEvent::ActionId).uuid().null().to_owned(),
        )
        .await?;
        add(
            manager,
            ChangeEvent::Table,
            ColumnDef::new(ChangeEvent::DeadlineAt).timestamp_with_time_zone().null().to_owned(),
        )
        .await?;
        add(
            manager,
            ChangeEvent::Table,
            ColumnDef::new(ChangeEvent::LateMs).big_integer().null().to_owned(),
        )
        .await?;
        add(manager, Timer::Table, ColumnDef::new(Timer::ActionId).uuid().null().to_owned())
            .await?;
        add(
            manager,
            Timer::Table,
            ColumnDef::new(Timer::DeadlineAt).timestamp_with_time_zone().null().to_owned(),
        )
        .await?;
        add(
            manager,
            AgreedAction::Table,
            ColumnDef::new(AgreedAction::CompletedAt).timestamp_with_time_zone().null().to_owned(),
        )
        .await?;
        add(
            manager,
            AgreedAction::Table,
            ColumnDef::new(AgreedAction::CompletedBySub).string_len(255).null().to_owned(),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, AgreedAction::Table, AgreedAction::CompletedBySub).await?;
        drop(manager, AgreedAction::Table, AgreedAction::CompletedAt).await?;
        drop(manager, Timer::Table, Timer::DeadlineAt).await?;
        drop(manager, Timer::Table, Timer::ActionId).await?;
        drop(manager, ChangeEvent::Table, ChangeEvent::LateMs).await?;
        drop(manager, ChangeEvent::Table, ChangeEvent::DeadlineAt).await?;
        drop(manager, ChangeEvent::Table, ChangeEvent::ActionId).await?;
        drop(manager, ChangeEvent::Table, ChangeEvent::Milestone).await
    }
}

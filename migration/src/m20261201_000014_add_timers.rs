//! Timers: the instants at which a case's deadlines announce themselves
//! (issue 13). A row per timer, written in the transaction of the change
//! that sets or moves the deadline (an unfired timer is replaced when its
//! deadline moves); fired once, by whichever process claims it, in the
//! transaction that appends its event. Fired rows stay as the record.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Case {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Timer {
    Table,
    Id,
    CaseId,
    Kind,
    Stage,
    Milestone,
    FiresAt,
    FiredAt,
    LateMs,
    ClaimOwner,
    ClaimUntilMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Timer::Table)
                    .col(ColumnDef::new(Timer::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Timer::CaseId).uuid().not_null())
                    .col(ColumnDef::new(Timer::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Timer::Stage).string_len(64).not_null())
                    .col(ColumnDef::new(Timer::Milestone).string_len(64).null())
                    .col(ColumnDef::new(Timer::FiresAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Timer::FiredAt).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Timer::LateMs).big_integer().null())
                    .col(ColumnDef::new(Timer::ClaimOwner).uuid().null())
                    .col(ColumnDef::new(Timer::ClaimUntilMs).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_timer_case")
                            .from(Timer::Table, Timer::CaseId)
                            .to(Case::Table, Case::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_timer_due")
                    .table(Timer::Table)
                    .col(Timer::FiredAt)
                    .col(Timer::FiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_timer_case")
                    .table(Timer::Table)
                    .col(Timer::CaseId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Timer::Table).to_owned()).await
    }
}

//! Schema migrations.
//!
//! Each migration is self-contained (its own idens, never `use entity`) and is
//! never edited once it has landed on main: a change is a new migration.
//! Every `down` works on SQLite and PostgreSQL.

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_directory_and_cases;
mod m20261123_000002_add_case_events_and_deadlines;
mod m20261123_000003_add_records_views_actions;
mod m20261123_000004_add_feedback;
mod m20261201_000005_scope_idempotency_keys;
mod m20261201_000006_index_cases_for_pollers;
mod m20261201_000007_add_change_events;
mod m20261201_000008_add_webhooks;
mod m20261201_000010_add_missing_records;
mod m20261201_000011_add_case_family_told_on;
mod m20261201_000012_add_acknowledgements;
mod m20261201_000013_add_repeated_flag;
mod m20261201_000014_add_timers;
mod m20261201_000015_add_deadline_detail;
mod m20261201_000016_add_case_step_down;
mod m20261201_000017_add_awaiting;
mod m20261201_000018_add_case_participants;
mod m20261201_000019_add_protocol_versions;
mod m20261201_000020_add_directory_changes;

/// Applies the migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_directory_and_cases::Migration),
            Box::new(m20261123_000002_add_case_events_and_deadlines::Migration),
            Box::new(m20261123_000003_add_records_views_actions::Migration),
            Box::new(m20261123_000004_add_feedback::Migration),
            Box::new(m20261201_000005_scope_idempotency_keys::Migration),
            Box::new(m20261201_000006_index_cases_for_pollers::Migration),
            Box::new(m20261201_000007_add_change_events::Migration),
            Box::new(m20261201_000008_add_webhooks::Migration),
            Box::new(m20261201_000010_add_missing_records::Migration),
            Box::new(m20261201_000011_add_case_family_told_on::Migration),
            Box::new(m20261201_000012_add_acknowledgements::Migration),
            Box::new(m20261201_000013_add_repeated_flag::Migration),
            Box::new(m20261201_000014_add_timers::Migration),
            Box::new(m20261201_000015_add_deadline_detail::Migration),
            Box::new(m20261201_000016_add_case_step_down::Migration),
            Box::new(m20261201_000017_add_awaiting::Migration),
            Box::new(m20261201_000018_add_case_participants::Migration),
            Box::new(m20261201_000019_add_protocol_versions::Migration),
            Box::new(m20261201_000020_add_directory_changes::Migration),
        ]
    }
}

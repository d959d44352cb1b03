//! Database connection: one pool per process, SQLite or PostgreSQL by URL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// How to open the pool.
#[derive(Debug, Clone)]
pub struct DbSettings {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Pool size; `None` means two per CPU core.
    pub max_connections: Option<u32>,
}

/// Opens the pool. SQLite runs in WAL mode with a busy timeout so readers
/// never block the writer and a second writer waits instead of failing.
pub async fn connect(settings: &DbSettings) -> Result<DatabaseConnection, DbErr> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let mut opts = ConnectOptions::new(settings.url.clone());
    opts.max_connections(settings.max_connections.unwrap_or(cores * 2))
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        // Statements are logged only at trace level: they carry no values, but
        // a log is no place for them in normal operation.
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    let mut db = Database::connect(opts).await?;
    db.set_metric_callback(|_| {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    });
    Ok(db)
}

static STATEMENTS: AtomicU64 = AtomicU64::new(0);

/// SQL statements this process has run since it started (for metrics and
/// for tests that hold a request to a constant number of statements).
pub fn statements_executed() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Names of the migrations with whether each is applied.
pub async fn migration_status(db: &DatabaseConnection) -> Result<Vec<(String, bool)>, DbErr> {
    let all = Migrator::get_migration_with_status(db).await?;
    Ok(all
        .iter()
        .map(|m| (m.name().to_owned(), matches!(m.status(), migration::MigrationStatus::Applied)))
        .collect())
}

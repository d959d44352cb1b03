//! Database connection: one pool per process, SQLite or PostgreSQL by URL.
//!
//! A new SQLite file is created here, before sqlx opens it, readable and
//! writable by its owner only (0600, whatever the umask): it holds every
//! case. SQLite gives the `-wal` and `-shm` files it creates the main file's
//! permissions (its unix VFS copies them), so they are owner-only too.

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

/// `DATABASE_ACQUIRE_TIMEOUT_SECONDS`: the longest a request waits for a
/// pooled connection, including opening a new one. When the database is
/// unreachable, requests fail after this long with `INTERNAL_SERVER_ERROR`
/// (and `/readyz` answers 503) instead of hanging.
pub const ACQUIRE_TIMEOUT_ENV: &str = "DATABASE_ACQUIRE_TIMEOUT_SECONDS";
/// The default of [`ACQUIRE_TIMEOUT_ENV`], in seconds.
pub const DEFAULT_ACQUIRE_TIMEOUT_SECONDS: u64 = 3;
/// `DATABASE_BUSY_TIMEOUT_SECONDS`: SQLite only, how long a writer waits for
/// another writer's lock before failing with `SQLITE_BUSY` (which is then
/// retried; see `service::change::retry::retrying`).
pub const BUSY_TIMEOUT_ENV: &str = "DATABASE_BUSY_TIMEOUT_SECONDS";
/// The default of [`BUSY_TIMEOUT_ENV`], in seconds.
pub const DEFAULT_BUSY_TIMEOUT_SECONDS: u64 = 5;
/// `DATABASE_STATEMENT_TIMEOUT_SECONDS`: PostgreSQL only, the longest a
/// statement may run (`statement_timeout`). A request that times out or
/// whose caller goes away drops its statements, but PostgreSQL would go on
/// running one it had started; this ends it.
pub const STATEMENT_TIMEOUT_ENV: &str = "DATABASE_STATEMENT_TIMEOUT_SECONDS";
/// The default of [`STATEMENT_TIMEOUT_ENV`], in seconds: `REQUEST_TIMEOUT`'s.
pub const DEFAULT_STATEMENT_TIMEOUT_SECONDS: u64 = 30;

/// A duration in whole seconds from the environment variable `name`
/// (`default` when unset); a value that is not a number from 1 to 600 is an
/// error naming the variable.
pub fn seconds_from_env(name: &str, default: u64) -> Result<Duration, DbErr> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(Duration::from_secs(default)),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if (1..=600).contains(&s) => Ok(Duration::from_secs(s)),
            _ => Err(DbErr::Custom(format!("{name} must be a number of seconds from 1 to 600"))),
        },
        Err(_) => Err(DbErr::Custom(format!("{name} must be a number of seconds from 1 to 600"))),
    }
}

/// The pool's size: the setting, or twice the cores.
pub fn pool_size(setting: Option<u32>) -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    setting.unwrap_or(cores * 2)
}

/// Opens the pool. SQLite runs in WAL mode with a busy timeout so readers
/// never block the writer and a second writer waits instead of failing.
/// Timeouts come from [`ACQUIRE_TIMEOUT_ENV`], [`BUSY_TIMEOUT_ENV`] and
/// [`STATEMENT_TIMEOUT_ENV`].
pub async fn connect(settings: &DbSettings) -> Result<DatabaseConnection, DbErr> {
    let acquire = seconds_from_env(ACQUIRE_TIMEOUT_ENV, DEFAULT_ACQUIRE_TIMEOUT_SECONDS)?;
    let busy = seconds_from_env(BUSY_TIMEOUT_ENV, DEFAULT_BUSY_TIMEOUT_SECONDS)?;
    let statement = seconds_from_env(STATEMENT_TIMEOUT_ENV, DEFAULT_STATEMENT_TIMEOUT_SECONDS)?;
    create_sqlite_file(&settings.url)?;
    let mut opts = ConnectOptions::new(settings.url.clone());
    opts.max_connections(pool_size(settings.max_connections))
        .min_connections(1)
        // sea-orm gives both to sqlx as its acquire timeout, which bounds
        // opening a new connection as well as waiting for a free one.
        .connect_timeout(acquire)
        .acquire_timeout(acquire)
        // Statements are logged only at trace level: they carry no values, but
        // a log is no place for them in normal operation.
        .sqlx_logging(false)
        // sea-orm's span of each statement (`tracing-spans`) carries its
        // text, with placeholders and never values; only the exporter
        // takes these spans (`telemetry`).
        .record_stmt_in_spans(true)
        .statement_timeout(statement)
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(busy)
                .foreign_keys(true)
        });
    let mut db = Database::connect(opts).await?;
    db.set_metric_callback(|_| {
        // The callback runs in the task that ran the statement.
        if BACKGROUND.try_with(|()| ()).is_ok() {
            BACKGROUND_STATEMENTS.fetch_add(1, Ordering::Relaxed);
        } else {
            STATEMENTS.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(db)
}

/// The file of an SQLite URL; `None` for any other URL.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    if !url.starts_with("sqlite:") {
        return None;
    }
    url.parse::<SqliteConnectOptions>().ok().map(|o| o.get_filename().to_owned())
}

/// Copies the SQLite database of `db` into `to` with `VACUUM INTO`, which
/// reads it in one transaction: the copy is the database as of one commit,
/// taken while servers write (in WAL mode a reader holds up no writer).
/// `to` is created first, empty and readable by its owner only (0600, it
/// holds every case), and must not exist: a backup never overwrites a
/// file. A copy that fails leaves no file behind.
pub async fn backup(db: &DatabaseConnection, to: &std::path::Path) -> Result<(), BackupError> {
    use sea_orm::{ConnectionTrait as _, DatabaseBackend, Statement};
    if db.get_database_backend() != DatabaseBackend::Sqlite {
        return Err(BackupError::NotSqlite);
    }
    let target = to.to_str().ok_or(BackupError::NotUtf8)?;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(to) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BackupError::Exists);
        }
        Err(e) => return Err(BackupError::Create(e)),
    }
    // SQLite writes into an empty file; the name is bound, never quoted
    // into the statement.
    let vacuum =
        Statement::from_sql_and_values(DatabaseBackend::Sqlite, "VACUUM INTO ?", [target.into()]);
    if let Err(err) = db.execute_raw(vacuum).await {
        let _ = std::fs::remove_file(to);
        return Err(BackupError::Db(err));
    }
    Ok(())
}

/// Why [`backup`] made no copy.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database is not SQLite.
    #[error("only an SQLite database is backed up this way")]
    NotSqlite,
    /// SQLite takes the target's name as text.
    #[error("the target is not a UTF-8 path")]
    NotUtf8,
    /// The target exists.
    #[error("the target exists: a backup never overwrites a file; give a new name")]
    Exists,
    /// The target could not be created.
    #[error("creating the target: {0}")]
    Create(std::io::Error),
    /// SQLite refused or failed the copy.
    #[error("copying: {0}")]
    Db(DbErr),
}

/// With an SQLite URL that lets sqlx create the file (`mode=rwc`) and no
/// file yet: creates it, empty, with mode 0600. An existing file keeps its
/// mode; a warning says when others may read it.
fn create_sqlite_file(url: &str) -> Result<(), DbErr> {
    use sea_orm::sqlx::ConnectOptions as _;
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    if !url.starts_with("sqlite:") {
        return Ok(());
    }
    // A URL sqlx cannot read is reported by sqlx itself, next.
    let Ok(options) = url.parse::<SqliteConnectOptions>() else { return Ok(()) };
    let creates = options.to_url_lossy().query_pairs().any(|(k, v)| k == "mode" && v == "rwc");
    let path = options.get_filename();
    if !creates {
        return Ok(());
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        db.file = %path.display(),
                        db.mode = format!("{:o}", mode & 0o777),
                        "the SQLite file is readable by others than its owner; chmod 600 it"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(DbErr::Custom(format!("creating {}: {e}", path.display()))),
    }
}

static STATEMENTS: AtomicU64 = AtomicU64::new(0);
static BACKGROUND_STATEMENTS: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    /// Set in background tasks (the webhook worker), whose statements are
    /// counted apart.
    static BACKGROUND: ();
}

/// SQL statements this process has run since it started outside
/// background tasks (for metrics and for tests that hold a request to a
/// constant number of statements: the webhook worker's polling is not a
/// request's).
pub fn statements_executed() -> u64 {
    STATEMENTS.load(Ordering::Relaxed)
}

/// SQL statements run by background tasks (see [`in_background`]).
pub fn background_statements_executed() -> u64 {
    BACKGROUND_STATEMENTS.load(Ordering::Relaxed)
}

/// Runs `task` as a background task: its statements are counted by
/// [`background_statements_executed`], not [`statements_executed`]. A task
/// it spawns must be wrapped again.
pub async fn in_background<F: Future>(task: F) -> F::Output {
    BACKGROUND.scope((), task).await
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

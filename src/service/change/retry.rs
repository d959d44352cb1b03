//! Retrying a change after a transient database failure: a PostgreSQL
//! serialization failure or deadlock, or a busy SQLite database. The frame
//! runs every attempt of a change through [`retrying`].

use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr};

use crate::service::ServiceError;

/// How many times a use case is retried after a transient database failure
/// (so at most four attempts in all).
pub const MAX_RETRIES: u32 = 3;

/// Runs `attempt` again, up to [`MAX_RETRIES`] times with a short jittered
/// backoff, while it fails with a transient database error (see
/// [`is_transient`]): a PostgreSQL serialization failure or deadlock, or a
/// busy SQLite database. Every attempt must start its own transaction, so a
/// failed one has rolled back whole before the next begins; the use cases
/// qualify, as nothing they do is visible before their commit. Any other
/// result, success or error, is returned as it is.
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ServiceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(err) if retries < MAX_RETRIES && is_transient(&err) => {
                retries += 1;
                tracing::warn!(retry = retries, error = %err, "transient database failure; retrying");
                tokio::time::sleep(backoff(retries)).await;
            }
            result => return result,
        }
    }
}

/// The pause before retry `n` (from 1): 10 ms doubled per retry, plus up to
/// as much again at random, so two transactions that collided do not
/// collide again in step.
pub fn backoff(n: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = 10u64 << n.saturating_sub(1).min(6);
    // `RandomState` is keyed afresh on every call: a cheap random number.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(n);
    Duration::from_millis(base + hasher.finish() % (base + 1))
}

/// Whether a use case failed in a way that trying again may cure.
pub fn is_transient(err: &ServiceError) -> bool {
    matches!(err, ServiceError::Db(e) if is_transient_db(e))
}

/// Whether the database refused the work for a reason that goes away: a
/// PostgreSQL serialization failure (SQLSTATE `40001`) or deadlock
/// (`40P01`), or SQLite's `SQLITE_BUSY` (any extended form of code 5) once
/// the busy timeout has run out. Lost connections, timeouts and constraint
/// violations are not transient here: a lost commit may have happened.
pub fn is_transient_db(err: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = e.as_ref() else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>().is_some() {
        is_sqlite_busy(&code)
    } else {
        is_retryable_sqlstate(&code)
    }
}

/// PostgreSQL's `serialization_failure` and `deadlock_detected`.
pub fn is_retryable_sqlstate(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

/// SQLite's `SQLITE_BUSY` and its extended codes (`SQLITE_BUSY_RECOVERY`,
/// `_SNAPSHOT`, `_TIMEOUT`): the primary code is the low byte.
pub fn is_sqlite_busy(code: &str) -> bool {
    code.parse::<u32>().is_ok_and(|c| c & 0xff == 5)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
    use sea_orm::{ConnectOptions, ConnectionTrait, Database};

    use super::*;
    use crate::service::change::begin_write;

    /// A driver error with a given code, as PostgreSQL would report it.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl DatabaseError for Coded {
        fn message(&self) -> &str {
            "a test error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn db_error(code: &'static str) -> Arc<sea_orm::sqlx::Error> {
        Arc::new(sea_orm::sqlx::Error::Database(Box::new(Coded(code))))
    }

    #[test]
    fn serialization_failures_and_deadlocks_are_transient() {
        for code in ["40001", "40P01"] {
            for err in [
                DbErr::Exec(RuntimeErr::SqlxError(db_error(code))),
                DbErr::Query(RuntimeErr::SqlxError(db_error(code))),
                DbErr::Conn(RuntimeErr::SqlxError(db_error(code))),
            ] {
                assert!(is_transient(&ServiceError::Db(err)), "{code}");
            }
        }
    }

    #[test]
    fn other_failures_are_not_transient() {
        // Unique violation, lock timeout, query cancelled, connection failure,
        // and SQLite-looking numbers from a driver that is not SQLite.
        for code in ["23505", "55P03", "57014", "08006", "5", "517"] {
            let err = DbErr::Query(RuntimeErr::SqlxError(db_error(code)));
            assert!(!is_transient_db(&err), "{code}");
        }
        let not_db = [
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
            DbErr::Conn(RuntimeErr::SqlxError(Arc::new(sea_orm::sqlx::Error::PoolTimedOut))),
            DbErr::Exec(RuntimeErr::Internal("40001".into())),
            DbErr::Custom("40P01".into()),
            DbErr::RecordNotFound("x".into()),
        ];
        for err in not_db {
            assert!(!is_transient_db(&err), "{err}");
        }
        assert!(!is_transient(&ServiceError::Conflict("40001".into())));
        assert!(!is_transient(&ServiceError::NotFound("case")));
    }

    #[test]
    fn sqlite_busy_codes_are_recognised_by_their_low_byte() {
        for code in ["5", "261", "517", "773"] {
            assert!(is_sqlite_busy(code), "{code}");
        }
        // SQLITE_LOCKED, SQLITE_CONSTRAINT_UNIQUE, SQLITE_IOERR_READ.
        for code in ["6", "2067", "266", "", "busy", "-5"] {
            assert!(!is_sqlite_busy(code), "{code}");
        }
    }

    #[test]
    fn backoff_is_short_grows_and_jitters() {
        for n in 1..=MAX_RETRIES {
            let base = 10u64 << (n - 1);
            for _ in 0..50 {
                let d = backoff(n).as_millis() as u64;
                assert!((base..=2 * base).contains(&d), "retry {n}: {d} ms");
            }
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff(3)).collect();
        assert!(spread.len() > 1, "no jitter");
        assert!(backoff(u32::MAX) <= Duration::from_millis(1280));
    }

    fn deadlock() -> ServiceError {
        ServiceError::Db(DbErr::Exec(RuntimeErr::SqlxError(db_error("40P01"))))
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let result = retrying(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(deadlock()) } else { Ok(7) }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(deadlock())
        })
        .await;
        assert!(is_transient(&result.unwrap_err()));
        assert_eq!(calls.load(Ordering::SeqCst), MAX_RETRIES + 1);
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ServiceError::Conflict("stale".into()))
        })
        .await;
        assert!(matches!(result, Err(ServiceError::Conflict(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// A real `SQLITE_BUSY`: a second writer with no busy timeout meets the
    /// write lock another connection holds; it is transient, and the retry
    /// succeeds once the lock is released.
    #[tokio::test]
    async fn a_real_sqlite_busy_is_transient_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("busy.db").display());
        let open = |timeout: Duration| {
            let mut opts = ConnectOptions::new(url.clone());
            opts.max_connections(1).sqlx_logging(false).map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal).busy_timeout(timeout)
            });
            Database::connect(opts)
        };
        let holder = open(Duration::from_secs(5)).await.unwrap();
        holder.execute_unprepared("CREATE TABLE t (x INTEGER)").await.unwrap();
        let other = open(Duration::ZERO).await.unwrap();

        let lock = begin_write(&holder).await.unwrap();
        lock.execute_unprepared("INSERT INTO t VALUES (1)").await.unwrap();
        let err = begin_write(&other).await.map(|_| ()).unwrap_err();
        assert!(is_transient(&err), "{err:?}");

        // Released during the backoff: the retry gets the lock.
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            lock.commit().await.unwrap();
        });
        let calls = AtomicU32::new(0);
        retrying(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            let txn = begin_write(&other).await?;
            txn.execute_unprepared("INSERT INTO t VALUES (2)").await?;
            txn.commit().await?;
            Ok(())
        })
        .await
        .unwrap();
        release.await.unwrap();
        assert!(calls.load(Ordering::SeqCst) >= 2);
    }
}

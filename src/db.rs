//! The database: one sqlx `AnyPool` over SQLite (embedded default) or PostgreSQL (several instances, one database).
//!
//! Queries are written once, in the dialect both accept (`$1` parameters, `ON CONFLICT`, `RETURNING`), with
//! integer timestamps (Unix milliseconds) so the same Rust types decode from both. Schemas differ where the
//! dialects do (identity columns), so each backend has its own migration directory, embedded in the binary.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use secrecy::ExposeSecret;
use sqlx::{
    AnyConnection, AnyPool, ConnectOptions, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use crate::config::DatabaseSettings;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The shared pool, which backend it talks to, and whether that answers (PostgreSQL may restart under us).
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// What [`Db::watch_reachability`] last found; shared by every clone.
    reachable: Arc<AtomicBool>,
    /// For the watch's own connection.
    options: AnyConnectOptions,
}

/// How often the reachability watch asks PostgreSQL, and how long an answer may take before it counts as away.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
const WATCH_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database.url: {0}")]
    Url(String),
    #[error("cannot create the directory for the SQLite database {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database schema is behind this binary (migration {0} not applied) and database.migrate_on_start is off: \
         run `onbehalf migrate` as the schema's owner"
    )]
    Pending(i64),
    #[error("after migrating, {0} rows refer to rows that do not exist (PRAGMA foreign_key_check)")]
    BrokenReferences(usize),
    #[error("cannot read which migrations the database has: {0}")]
    Applied(sqlx::Error),
}

impl Db {
    /// Connects, creating the SQLite file (and its directory) on first run. Does not migrate.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let url = settings.url.expose_secret();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url_creating_directory(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(|e| DbError::Url(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; busy_timeout makes writers queue instead of
                        // failing with SQLITE_BUSY; foreign keys are off by default in SQLite.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                        // SQLite's planner needs statistics to pick the admin lists' indexes at scale, and a database
                        // that grew from empty has none. `optimize = 0x10002` analyzes the tables whose statistics are
                        // missing or stale (the SQLite manual's advice for each new connection; the pool renews its
                        // connections every 30 minutes), sampling at most 1,000 rows per index so it stays cheap;
                        // the limit is lifted again so a migration's own ANALYZE reads everything.
                        conn.execute(
                            "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002; PRAGMA analysis_limit = 0;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(DbError::Connect)?;
        Ok(Self {
            pool,
            backend,
            reachable: Arc::new(AtomicBool::new(true)),
            options,
        })
    }

    /// Whether PostgreSQL answered the reachability watch when it last asked (always, on SQLite: a file).
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Whether the database answers `SELECT 1` within `limit` now (false at once while the watch says it is away).
    pub async fn answers_within(&self, limit: Duration) -> bool {
        self.is_reachable()
            && tokio::time::timeout(limit, sqlx::query("SELECT 1").execute(&self.pool))
                .await
                .is_ok_and(|done| done.is_ok())
    }

    /// Asks PostgreSQL `SELECT 1` every 100 ms on a connection of its own, outside the pool (a pool busy with
    /// slow queries is not an outage), and records whether it answered within a second, so that requests arriving
    /// while it is away are refused at once (`http::database_gate`) and served again as soon as it answers; while it
    /// is away, the pool's new connections fail at once too ([`away_options`]). A lost connection is opened again at
    /// the next tick. Runs until the pool is closed; returns at once on SQLite.
    pub async fn watch_reachability(self) {
        if self.backend == Backend::Sqlite {
            return;
        }
        let mut conn: Option<AnyConnection> = None;
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !self.pool.is_closed() {
            tick.tick().await;
            let answered = tokio::time::timeout(WATCH_TIMEOUT, async {
                let conn = match &mut conn {
                    Some(conn) => conn,
                    None => conn.insert(self.options.connect().await?),
                };
                sqlx::query("SELECT 1").execute(conn).await.map(drop)
            })
            .await;
            let up = matches!(answered, Ok(Ok(())));
            if !up {
                conn = None;
            }
            if self.is_reachable() == up {
                continue;
            }
            // The pool's connect options are swapped so that requests already past the gate fail at once too (see
            // `away_options`). Ordered so no request passes the gate while they are the failing ones: taken away
            // after the gate closes, given back before it opens.
            if up {
                self.pool.set_connect_options(self.options.clone());
                self.reachable.store(true, Ordering::Relaxed);
                tracing::info!("PostgreSQL answers again; requests are served");
            } else {
                self.reachable.store(false, Ordering::Relaxed);
                self.pool.set_connect_options(away_options());
                match answered {
                    Ok(Err(err)) => {
                        tracing::warn!("PostgreSQL does not answer ({err}); requests get 503 until it does")
                    }
                    _ => tracing::warn!("PostgreSQL did not answer within 1 s; requests get 503 until it does"),
                }
            }
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies the embedded migrations of this backend that have not run yet.
    ///
    /// On SQLite they run on one connection with foreign keys off, as SQLite's manual requires for rebuilding a table
    /// that others reference (`ALTER TABLE` cannot drop a `NOT NULL`; with foreign keys on, dropping the old table
    /// would cascade to every row that refers to it). `PRAGMA foreign_keys` is a no-op inside a transaction, so it is
    /// set around the migrator, and `foreign_key_check` proves afterwards that no reference was broken.
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.run_migrations(self.migrator()).await
    }

    async fn run_migrations(&self, migrator: &Migrator) -> Result<(), DbError> {
        if self.backend == Backend::Postgres {
            migrator.run(&self.pool).await?;
            return Ok(());
        }
        let mut conn = self.pool.acquire().await.map_err(DbError::Connect)?;
        conn.execute("PRAGMA foreign_keys = OFF")
            .await
            .map_err(DbError::Connect)?;
        let migrated = migrator.run_direct(&mut *conn).await;
        let broken = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut *conn).await;
        conn.execute("PRAGMA foreign_keys = ON")
            .await
            .map_err(DbError::Connect)?;
        migrated?;
        match broken {
            Ok(rows) if rows.is_empty() => Ok(()),
            Ok(rows) => Err(DbError::BrokenReferences(rows.len())),
            Err(e) => Err(DbError::Connect(e)),
        }
    }

    /// Makes the schema current (`migrate`), or, when this process may not change it, checks that it is
    /// (`database.migrate_on_start`): what `serve` and the CLI's commands do before they touch data.
    pub async fn prepare_schema(&self, migrate: bool) -> Result<(), DbError> {
        if migrate {
            self.migrate().await
        } else {
            self.ensure_migrated().await
        }
    }

    /// Fails unless every embedded migration has been applied (for a server that does not migrate itself). Reads
    /// sqlx's own bookkeeping table, which needs no right beyond `SELECT`.
    pub async fn ensure_migrated(&self) -> Result<(), DbError> {
        let applied: Vec<i64> = match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(&self.pool)
            .await
        {
            Ok(applied) => applied,
            // No bookkeeping table: a database never migrated (PostgreSQL's undefined_table, SQLite's message).
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("42P01") || e.message().contains("no such table") =>
            {
                Vec::new()
            }
            Err(e) => return Err(DbError::Applied(e)),
        };
        match self.migrator().iter().find(|m| !applied.contains(&m.version)) {
            Some(pending) => Err(DbError::Pending(pending.version)),
            None => Ok(()),
        }
    }

    /// True when the database answers a trivial query (for `/readyz`).
    pub async fn is_ready(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// The file path and query of a SQLite URL (`sqlite://data/x.db?mode=ro` → `data/x.db`, `mode=ro`).
pub fn sqlite_path(url: &str) -> (&str, &str) {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    rest.split_once('?').unwrap_or((rest, ""))
}

/// What the pool connects with while the watch finds PostgreSQL away: a URL no driver takes, so that a request
/// already past the gate that needs a new connection fails at once (`no driver found for URL scheme
/// "postgresql-away"`) and is answered 503 by the gate, instead of waiting in sqlx's connect loop, which retries a
/// refused connection until the pool's acquire timeout (10 s). sqlx reads the options again on each try, so a request
/// already in that loop leaves it at its next try (within twice the time it has waited). sqlx retries only a refused
/// connection and a transient database error; of the errors it hands back at once, a configuration error is the one
/// that needs no socket or file to produce. A query on a connection the pool already holds is not affected.
fn away_options() -> AnyConnectOptions {
    AnyConnectOptions::from_str("postgresql-away://the-reachability-watch/").expect("a constant, valid URL")
}

/// Adds `mode=rwc` (create if missing) and creates the parent directory of a file-backed SQLite URL.
fn sqlite_url_creating_directory(url: &str) -> Result<String, DbError> {
    let (path, query) = sqlite_path(url);
    if path.is_empty() || path == ":memory:" {
        return Err(DbError::Url(
            "an in-memory SQLite database would lose everything on restart; name a file".into(),
        ));
    }
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| DbError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

impl Db {
    /// The database's clock in Unix milliseconds, as an SQL expression: refresh leases are written and judged by
    /// this one clock, whatever the clocks of the instances sharing the database say. (`clock_timestamp()`, not
    /// `now()`: the time of the statement, not of its transaction's start.)
    pub fn clock_ms(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// A transaction that will write. On SQLite it takes the write lock at `BEGIN IMMEDIATE`: a deferred
    /// transaction that reads first and then writes cannot wait for the lock (SQLite answers `SQLITE_BUSY` at once
    /// when another writer committed since its read), so concurrent read-then-write transactions would fail
    /// instead of queueing behind `busy_timeout`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }
}

/// Milliseconds since the Unix epoch: the one time representation stored in every table.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// True when `err` is the violation of the unique constraint named `name` (both backends report the name;
/// SQLite reports the columns instead, so the caller passes those too).
pub fn is_unique_violation(err: &sqlx::Error, name: &str, sqlite_columns: &str) -> bool {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.constraint() == Some(name) || db.message().contains(sqlite_columns)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = std::env::temp_dir().join(format!("onbehalf-db-test-{}", std::process::id()));
        let url = format!("sqlite://{}/x.db", dir.display());
        assert_eq!(sqlite_url_creating_directory(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.exists());
        assert!(sqlite_url_creating_directory("sqlite::memory:").is_err());
    }

    /// A database that grew without an ANALYZE gets statistics from the next connection (`PRAGMA optimize`).
    /// PostgreSQL over TLS, as `sslmode` says. The test server (Debian's, on 127.0.0.1:5432) offers TLS with a
    /// self-signed certificate naming the machine: `require` encrypts, `disable` does not, and `verify-full` refuses
    /// a certificate that does not chain to the given CA or name the host.
    #[tokio::test]
    async fn postgres_speaks_tls_as_sslmode_says() {
        let base = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let connect = |query: String| {
            let settings = DatabaseSettings {
                url: SecretString::from(format!("{base}?{query}")),
                max_connections: 1,
                ..DatabaseSettings::default()
            };
            async move { Db::connect(&settings).await }
        };
        let encrypted = |db: Db| async move {
            sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&db.pool)
                .await
                .unwrap()
        };
        let db = connect("sslmode=require".into())
            .await
            .expect("the test PostgreSQL server must offer TLS (ssl = on)");
        let certificate: String = sqlx::query_scalar("SHOW ssl_cert_file")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert!(encrypted(db).await, "sslmode=require connected without TLS");
        let db = connect("sslmode=disable".into()).await.unwrap();
        assert!(!encrypted(db).await);
        for query in [
            "sslmode=verify-full".to_owned(),
            format!("sslmode=verify-full&sslrootcert={certificate}"),
        ] {
            let err = connect(query.clone()).await.err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("cannot connect to the database")),
                "{query}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn new_sqlite_connections_analyze_tables_that_grew() {
        let dir = std::env::temp_dir().join(format!("onbehalf-db-stats-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = DatabaseSettings {
            url: SecretString::from(format!("sqlite://{}/stats.db", dir.display())),
            ..DatabaseSettings::default()
        };
        let stats = |db: &Db| {
            let pool = db.pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'grown'")
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(0)
            }
        };
        let db = Db::connect(&settings).await.unwrap();
        sqlx::query("CREATE TABLE grown (id INTEGER PRIMARY KEY, kind TEXT)")
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query("CREATE INDEX grown_kind_idx ON grown (kind)")
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
             INSERT INTO grown (id, kind) SELECT i, i % 7 FROM n",
        )
        .execute(&db.pool)
        .await
        .unwrap();
        assert_eq!(stats(&db).await, 0, "nothing analyzed the table yet");
        db.pool.close().await;

        let db = Db::connect(&settings).await.unwrap();
        assert!(stats(&db).await > 0, "a new connection analyzes the table that grew");
        db.pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Upgrading a SQLite database with data across the migration that rebuilds `users`: every row and every
    /// reference to a user survives (foreign keys are off while it runs, so nothing cascades), and the new columns
    /// are there.
    #[tokio::test]
    async fn sqlite_users_are_rebuilt_without_losing_a_row_or_a_reference() {
        let dir = std::env::temp_dir().join(format!("onbehalf-db-upgrade-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let settings = DatabaseSettings {
            url: SecretString::from(format!("sqlite://{}/upgrade.db", dir.display())),
            ..DatabaseSettings::default()
        };
        let db = Db::connect(&settings).await.unwrap();
        let rebuild = 20261202000001;
        let up_to = |last: i64| Migrator {
            migrations: std::borrow::Cow::Owned(
                SQLITE_MIGRATIONS
                    .iter()
                    .filter(|m| m.version <= last)
                    .cloned()
                    .collect(),
            ),
            ..Migrator::DEFAULT
        };
        db.run_migrations(&up_to(rebuild - 1)).await.unwrap();
        for sql in [
            "INSERT INTO users (id, email, display_name, password_hash, role, created_at, updated_at) \
                          VALUES (7, 'ada@example.org', 'Ada', 'hash', 'admin', 1, 1)",
            // The newest user is gone: their id must not come back.
            "INSERT INTO users (id, email, display_name, password_hash, role, created_at, updated_at) \
             VALUES (9, 'gone@example.org', 'Gone', 'hash', 'user', 1, 1)",
            "DELETE FROM users WHERE id = 9",
            "INSERT INTO sessions (id, user_id, data, expires_at) VALUES ('s', 7, '{}', 99999999999999)",
            "INSERT INTO linked_accounts (id, user_id, provider, subject, status, created_at, updated_at) \
             VALUES ('a', 7, 'demo', 'sub', 'active', 1, 1)",
        ] {
            sqlx::query(sql).execute(&db.pool).await.unwrap();
        }
        // Up to the rebuild only: a later migration ends every stored session (they are stored hashed since).
        db.run_migrations(&up_to(rebuild)).await.unwrap();
        let counts: (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM users WHERE id = 7 AND role = 'admin' AND password_hash = 'hash'), \
             (SELECT COUNT(*) FROM sessions WHERE user_id = 7), (SELECT COUNT(*) FROM linked_accounts WHERE user_id = 7)",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(counts, (1, 1, 1), "the user, their session and their account survive");
        sqlx::query("INSERT INTO users (display_name, external_id, created_at, updated_at) VALUES ('p', 'p-1', 2, 2)")
            .execute(&db.pool)
            .await
            .unwrap();
        // References still hold: deleting the user cascades as before, and a dangling one is refused.
        sqlx::query("DELETE FROM users WHERE id = 7")
            .execute(&db.pool)
            .await
            .unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM linked_accounts")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(left, 0, "ON DELETE CASCADE still points at the rebuilt table");
        let dangling = sqlx::query("INSERT INTO sessions (id, user_id, data, expires_at) VALUES ('t', 12345, '{}', 1)")
            .execute(&db.pool)
            .await;
        assert!(dangling.is_err(), "foreign keys are on again after migrating");
        let next: i64 = sqlx::query_scalar(
            "INSERT INTO users (display_name, external_id, created_at, updated_at) VALUES ('q', 'p-2', 3, 3) RETURNING id",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert!(
            next > 9,
            "ids are never reused after the rebuild (AUTOINCREMENT kept its sequence): {next}"
        );
        db.pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

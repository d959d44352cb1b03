//! Command line and settings: every setting is a flag and an environment
//! variable (clap reads both), with defaults that run the embedded demo.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default database: an SQLite file in the working directory, created on
/// first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://escalations.db?mode=rwc";

/// `escalations`: GraphQL API for resolving professional differences between
/// safeguarding agencies.
#[derive(Debug, Parser)]
#[command(name = "escalations", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Database URL: `sqlite://FILE?mode=rwc` (the default) or
    /// `postgres://user@host:port/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,

    /// Largest number of pooled database connections (default: two per CPU core).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", global = true)]
    pub database_max_connections: Option<u32>,

    /// Log filter in `tracing` syntax, e.g. `info` or `escalations=debug,info`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (GraphQL at /graphql, GraphiQL in a browser).
    Serve(ServeArgs),
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the GraphQL schema (SDL) to standard output.
    ExportSchema,
    /// Load the demo data: the five seed partnerships and their agencies.
    SeedDemo,
}

/// Migration subcommands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Apply,
    /// List migrations and whether each is applied.
    Status,
}

/// Settings of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    /// Load the demo partnerships and agencies at start (idempotent).
    #[arg(long, env = "DEMO", default_value_t = false)]
    pub demo: bool,

    /// Apply pending migrations at start.
    #[arg(long, env = "MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Seconds that in-flight requests get to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,

    #[command(flatten)]
    pub graphql: GraphqlArgs,
}

/// Limits of the GraphQL executor.
#[derive(Debug, Clone, Args)]
pub struct GraphqlArgs {
    /// Deepest selection nesting accepted.
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = 10)]
    pub max_depth: usize,

    /// Highest query complexity accepted (one per field by default).
    #[arg(long, env = "GRAPHQL_MAX_COMPLEXITY", default_value_t = 500)]
    pub max_complexity: usize,
}

impl Default for GraphqlArgs {
    fn default() -> Self {
        Self { max_depth: 10, max_complexity: 500 }
    }
}

impl ServeArgs {
    /// The grace period for shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

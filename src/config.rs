//! Command line and settings: every setting is a flag and an environment
//! variable (clap reads both), with defaults that run the embedded demo.

use std::net::SocketAddr;
use std::path::PathBuf;
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

    /// Demo mode: `serve` loads the demo directory; unset token settings take
    /// development defaults (a fixed HS256 secret, issuer `escalations-demo`,
    /// audience `escalations`) and the directory opens to anonymous callers.
    /// Never in production.
    #[arg(long, env = "DEMO", default_value_t = false, global = true)]
    pub demo: bool,

    #[command(flatten)]
    pub auth: AuthArgs,
}

/// How bearer tokens are verified.
#[derive(Debug, Clone, Default, Args)]
pub struct AuthArgs {
    /// The one algorithm tokens must be signed with; the token's own header
    /// is never trusted for this.
    #[arg(long, env = "JWT_ALGORITHM", value_enum, default_value_t = JwtAlgorithm::Hs256, global = true)]
    pub jwt_algorithm: JwtAlgorithm,

    /// HS256 shared secret (at least 32 bytes).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,

    /// RS256/ES256: PEM file with the identity provider's public key.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,

    /// RS256/ES256: JWKS document (a file); the key is chosen by the token's `kid`.
    #[arg(long, env = "JWT_JWKS_FILE", global = true)]
    pub jwt_jwks_file: Option<PathBuf>,

    /// Required `iss` of every token.
    #[arg(long, env = "JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of every token.
    #[arg(long, env = "JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// Clock skew allowed on `exp` and `nbf`, in seconds (at most 300).
    #[arg(long, env = "JWT_LEEWAY_SECONDS", default_value_t = 30, global = true)]
    pub jwt_leeway_seconds: u64,

    /// What works without a token, comma-separated: `introspection`,
    /// `directory` (partnerships and agencies). Default: `introspection`
    /// (with `--demo`: `introspection,directory`). `none` opens nothing.
    #[arg(long, env = "ANONYMOUS_ACCESS", value_enum, value_delimiter = ',', global = true)]
    pub anonymous_access: Option<Vec<AnonymousAccess>>,
}

/// Signature algorithms accepted for tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 and a shared secret.
    #[default]
    #[value(name = "HS256")]
    Hs256,
    /// RSA PKCS#1 v1.5 with SHA-256 and a public key.
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256 and a public key.
    #[value(name = "ES256")]
    Es256,
}

/// Operations that may be opened to callers without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AnonymousAccess {
    /// Nothing.
    None,
    /// `__schema` and `__type` (`__typename` alone always answers).
    Introspection,
    /// `partnerships` and `agencies` (public organisational data, no case).
    Directory,
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
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Mint a development token signed with the HS256 secret (refused when
    /// tokens are verified with a public key).
    Token(TokenArgs),
}

/// Settings of `token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The person's role: practitioner, manager, safeguarding_lead,
    /// head_of_service or board_chair.
    #[arg(long)]
    pub role: Option<String>,
    /// Machine-client scopes, space- or comma-separated: `cases:read`,
    /// `statistics:read`.
    #[arg(long)]
    pub scope: Option<String>,
    /// Agency code, e.g. `wb-police`.
    #[arg(long)]
    pub agency: Option<String>,
    /// Partnership code, e.g. `western-bay`.
    #[arg(long)]
    pub partnership: String,
    /// Subject: the user or client id.
    #[arg(long)]
    pub sub: String,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Lifetime, e.g. `8h`, `30m`.
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}

/// Audit subcommands.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum AuditAction {
    /// Recompute the hash chain of every case and report the first broken
    /// link (exit status 1 when there is one).
    Verify,
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

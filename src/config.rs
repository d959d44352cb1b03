//! Command line and settings: every setting is a flag and an environment
//! variable (clap reads both). `--demo` gives the embedded demo its
//! development defaults; outside it the defaults are closed (no GraphiQL,
//! nothing anonymous) and `serve` needs token keys of its own.

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
    /// audience `escalations`), introspection and the directory open to
    /// anonymous callers, and GraphiQL is served. Never in production:
    /// outside demo mode the fixed secret is refused.
    #[arg(long, env = "DEMO", default_value_t = false, global = true)]
    pub demo: bool,

    /// A newer list of bank holidays in GOV.UK's format (a download of
    /// https://www.gov.uk/bank-holidays.json), read at start instead of the
    /// embedded one for the years it lists; a malformed file stops the start.
    #[arg(long, env = "BANK_HOLIDAYS_FILE", global = true)]
    pub bank_holidays_file: Option<PathBuf>,

    #[command(flatten)]
    pub auth: AuthArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// What log lines say of a caller and where request spans are exported.
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// The `service` of every JSON log line and the `service.name` of
    /// exported spans (OpenTelemetry's variable).
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = DEFAULT_SERVICE_NAME, global = true)]
    pub otel_service_name: String,

    /// Base URL of an OTLP/HTTP receiver (OpenTelemetry's variable): when
    /// set, request spans and their database statements are exported to
    /// `<URL>/v1/traces` as protobuf (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// when set, is the full URL instead). Unset: nothing is exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// Salt of the `client` field of log lines: the first 16 hex digits of
    /// SHA-256 over this salt followed by the token's `sub`. Set a secret
    /// per deployment so that nobody can match the field against a list of
    /// known `sub`s; empty (the default) hashes the `sub` alone.
    #[arg(
        long,
        env = "LOG_CLIENT_SALT",
        hide_env_values = true,
        default_value = "",
        global = true
    )]
    pub log_client_salt: String,
}

/// The default of `OTEL_SERVICE_NAME`.
pub const DEFAULT_SERVICE_NAME: &str = "escalations";

impl Default for TelemetryArgs {
    fn default() -> Self {
        Self {
            otel_service_name: DEFAULT_SERVICE_NAME.to_owned(),
            otel_exporter_otlp_endpoint: None,
            log_client_salt: String::new(),
        }
    }
}

/// How bearer tokens are verified.
#[derive(Debug, Clone, Default, Args)]
pub struct AuthArgs {
    /// The one algorithm tokens must be signed with; the token's own header
    /// is never trusted for this.
    #[arg(long, env = "JWT_ALGORITHM", value_enum, default_value_t = JwtAlgorithm::Hs256, global = true)]
    pub jwt_algorithm: JwtAlgorithm,

    /// HS256 shared secret (at least 32 bytes; outside demo mode, not the
    /// development secret of `--demo`).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,

    /// RS256/ES256: PEM file with the identity provider's public key.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,

    /// RS256/ES256: JWKS document (a file); the key is chosen by the token's `kid`.
    #[arg(long, env = "JWT_JWKS_FILE", global = true)]
    pub jwt_jwks_file: Option<PathBuf>,

    /// RS256/ES256: URL of the identity provider's JWKS document (https;
    /// plain http only to a loopback address), fetched at start and chosen
    /// by the token's `kid`. A token with an unknown `kid` makes the server
    /// fetch it again, at most once per `JWT_JWKS_MIN_REFRESH_SECONDS`.
    #[arg(long, env = "JWT_JWKS_URL", global = true)]
    pub jwt_jwks_url: Option<String>,

    /// With `JWT_JWKS_URL`: the shortest time between two fetches of the
    /// JWKS, in seconds (default 60).
    #[arg(long, env = "JWT_JWKS_MIN_REFRESH_SECONDS", global = true)]
    pub jwt_jwks_min_refresh_seconds: Option<u64>,

    /// With `JWT_JWKS_URL`: the age in seconds after which the JWKS is
    /// fetched again on the next verification (default 3600).
    #[arg(long, env = "JWT_JWKS_REFRESH_SECONDS", global = true)]
    pub jwt_jwks_refresh_seconds: Option<u64>,

    /// Required `iss` of every token.
    #[arg(long, env = "JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` of every token.
    #[arg(long, env = "JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (at most 300).
    #[arg(long, env = "JWT_LEEWAY_SECONDS", default_value_t = 30, global = true)]
    pub jwt_leeway_seconds: u64,

    /// Longest lifetime of a token with a role (a person): `exp` − `iat`, or
    /// `exp` − `nbf` when `iat` is absent, e.g. `24h` (the default), `8h`.
    #[arg(long, env = "JWT_MAX_LIFETIME", value_parser = humantime::parse_duration, global = true)]
    pub jwt_max_lifetime: Option<Duration>,

    /// Longest lifetime of a machine client's token (no role), measured like
    /// `JWT_MAX_LIFETIME`; default `24h`.
    #[arg(long, env = "JWT_MAX_CLIENT_LIFETIME", value_parser = humantime::parse_duration, global = true)]
    pub jwt_max_client_lifetime: Option<Duration>,

    /// What works without a token, comma-separated: `introspection`,
    /// `directory` (partnerships and agencies), or `none`. Default: `none`
    /// (with `--demo`: `introspection,directory`).
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
// One value, parsed once at start: the size of `serve`'s settings costs
// nothing worth boxing them for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (GraphQL at /graphql; GraphiQL in a browser in demo
    /// mode or with `GRAPHIQL`).
    Serve(ServeArgs),
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the GraphQL schema (SDL) to standard output.
    ExportSchema,
    /// Load the demo data: the five seed partnerships and their agencies;
    /// with `--cases N`, also N generated cases with their audit trails.
    SeedDemo(SeedDemoArgs),
    /// Check the audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Copy the SQLite database, consistently, into FILE (a new file; an
    /// existing one is never overwritten), also while a server writes to
    /// it. Refused on PostgreSQL: back it up with `pg_dump` or
    /// `pg_basebackup`.
    Backup {
        /// Where the copy goes: a path that does not exist yet.
        file: PathBuf,
    },
    /// Mint a development token signed with the HS256 secret (refused when
    /// tokens are verified with a public key).
    Token(TokenArgs),
    /// The directory: partnerships and their agencies, from and to a TOML
    /// file (the format of `data/demo/partnerships.toml`).
    Directory {
        #[command(subcommand)]
        action: DirectoryAction,
    },
    /// Trusted documents: the operations registered by hash.
    TrustedDocuments {
        #[command(subcommand)]
        action: TrustedDocumentsAction,
    },
    /// Protocol definitions: check, publish, list and compare versions.
    Protocol {
        #[command(subcommand)]
        action: ProtocolAction,
    },
}

/// Protocol subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ProtocolAction {
    /// Check a definition (TOML) with the validator of the built-in
    /// protocols: each problem with its line, column and field path (exit
    /// status 1 when there is any). Needs no database.
    Validate {
        /// The definition file.
        file: PathBuf,
        /// Also print the policy table the definition implies (in the
        /// format of `policy.matrix`).
        #[arg(long)]
        policy: bool,
    },
    /// Publish a definition as the next version of a partnership's
    /// protocol, with the checks of `publishProtocolVersion`; published by
    /// `cli:$USER`.
    Publish {
        /// The partnership's code.
        #[arg(long)]
        partnership: String,
        /// The definition file.
        file: PathBuf,
    },
    /// List every stored protocol version.
    List,
    /// What changed from one stored version of a protocol to another.
    Diff {
        /// The protocol id, e.g. `western-bay`.
        id: String,
        /// The older version.
        from: i32,
        /// The newer version.
        to: i32,
    },
    /// Pin the protocol version a partnership's new cases are raised
    /// under, or with `--newest` let them take the newest.
    Adopt {
        /// The partnership's code.
        #[arg(long)]
        partnership: String,
        /// The version to pin.
        #[arg(required_unless_present = "newest", conflicts_with = "newest")]
        version: Option<u32>,
        /// Clear the pin: new cases take the newest version.
        #[arg(long)]
        newest: bool,
    },
}

/// Directory subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum DirectoryAction {
    /// Create and update partnerships and agencies from FILE, matched by
    /// code, in one transaction; prints each change. Nothing is deleted:
    /// an agency the file leaves out is reported and kept; only
    /// `active = false` deactivates one. Every problem in the file is
    /// reported at once and nothing is written.
    Import {
        /// The directory file (TOML).
        file: PathBuf,
        /// Print what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the stored directory in the import format (to standard output,
    /// or to FILE).
    Export {
        /// Where to write it (refused if it exists).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Trusted-documents subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TrustedDocumentsAction {
    /// Print the persisted-query manifest (Apollo's format) of the
    /// operations in DIR's `.graphql` files, one named operation per file,
    /// each registered with the file's whole text (its id is the file's
    /// SHA-256), for `TRUSTED_DOCUMENTS`.
    Build {
        /// The folder of `.graphql` files (its subfolders are not read).
        dir: PathBuf,
    },
}

/// Settings of `seed-demo`.
#[derive(Debug, Clone, Args)]
pub struct SeedDemoArgs {
    /// After the directory, generate this many cases spread over the five
    /// demo partnerships, each with its audit trail (data for size and
    /// benchmarks). Not idempotent: every run adds N more cases, numbered
    /// on from the ones already generated (`GEN-000001`, ...).
    #[arg(long, default_value_t = 0)]
    pub cases: u64,

    /// Seed of the generator: the same seed, database and day give the same
    /// cases.
    #[arg(long, default_value_t = 20_261_123)]
    pub seed: u64,

    /// Cases per transaction (inserted with multi-row INSERTs).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// Spread the cases' raising dates over the last this many years.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=8))]
    pub years: u32,
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

    /// Seconds a process keeps the directory it resolved tokens against
    /// before reading it again: how long another process's (or the command
    /// line's) directory change, such as a deactivation, takes to reach
    /// this one. Changes made through this process apply at once.
    #[arg(long, env = "DIRECTORY_CACHE_SECONDS", default_value_t = 30)]
    pub directory_cache_seconds: u64,

    #[command(flatten)]
    pub graphql: GraphqlArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    #[command(flatten)]
    pub rate_limits: RateLimitArgs,

    #[command(flatten)]
    pub webhooks: WebhookArgs,

    #[command(flatten)]
    pub timers: TimerArgs,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub trusted: TrustedArgs,
}

/// Where `GET /metrics` is served, and to whom.
#[derive(Debug, Clone, Default, Args)]
pub struct MetricsArgs {
    /// Address of a second listener, for operators and their scrapers,
    /// serving `/metrics`, `/healthz` and `/readyz` to anyone who reaches
    /// it: bind it to loopback or a private interface. Unset: none.
    #[arg(long, env = "METRICS_LISTEN_ADDR")]
    pub metrics_listen_addr: Option<SocketAddr>,

    /// A bearer token (at least 32 characters) that opens `GET /metrics` on
    /// the API's listener. Unset: `/metrics` there is 404, except in demo
    /// mode, where it is open.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// Trusted documents: operations registered by the SHA-256 of their text,
/// which requests name with the persisted-query extension.
#[derive(Debug, Clone, Default, Args)]
pub struct TrustedArgs {
    /// A persisted-query manifest in Apollo's format (what
    /// `escalations trusted-documents build DIR` writes), read at start:
    /// every operation's `id` must be the SHA-256 of its `body`, or the
    /// server does not start. None by default.
    #[arg(long, env = "TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<PathBuf>,

    /// Run only the trusted documents, named by hash: a request without
    /// `extensions.persistedQuery` is refused (`PERSISTED_QUERY_ID_REQUIRED`).
    /// The production setting for fixed pollers; needs `TRUSTED_DOCUMENTS`.
    #[arg(long, env = "TRUSTED_DOCUMENTS_ONLY", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub trusted_documents_only: bool,
}

/// Timers: deadlines that announce themselves.
#[derive(Debug, Clone, Args)]
pub struct TimerArgs {
    /// How often each process looks for timers that have fallen due (e.g.
    /// `30s`); a timer fires at most this long after its instant while a
    /// server runs, and once, marked late, after downtime.
    #[arg(long, env = "TIMER_POLL_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timer_poll_interval: Duration,
}

impl Default for TimerArgs {
    fn default() -> Self {
        Self { timer_poll_interval: Duration::from_secs(30) }
    }
}

/// Webhook delivery: timeouts, retries, address rules.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Time one delivery attempt may take, connecting included (e.g. `10s`).
    #[arg(long, env = "WEBHOOK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: Duration,

    /// Waits before each retry of a failed delivery, comma-separated (each
    /// stretched or shrunk by up to a tenth, at random); after the last
    /// the delivery has failed.
    #[arg(long, env = "WEBHOOK_RETRY_SCHEDULE", default_value = "5s,5m,30m,2h,5h,10h,10h")]
    pub webhook_retry_schedule: RetrySchedule,

    /// How often each process looks for due deliveries (other processes'
    /// and retries); its own changes wake it at once.
    #[arg(long, env = "WEBHOOK_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub webhook_poll_interval: Duration,

    /// An endpoint whose every attempt has failed for this long is
    /// disabled (and says why).
    #[arg(long, env = "WEBHOOK_DISABLE_AFTER", default_value = "5days", value_parser = humantime::parse_duration)]
    pub webhook_disable_after: Duration,

    /// After `rotateWebhookSecret`, how long deliveries are also signed
    /// with the previous secret.
    #[arg(long, env = "WEBHOOK_SECRET_GRACE", default_value = "24h", value_parser = humantime::parse_duration)]
    pub webhook_secret_grace: Duration,

    /// Allow endpoints on private, loopback and link-local addresses, and
    /// plain http: for development and tests only.
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub webhook_allow_private_addresses: bool,
}

impl Default for WebhookArgs {
    fn default() -> Self {
        Self {
            webhook_timeout: Duration::from_secs(10),
            webhook_retry_schedule: RetrySchedule::default(),
            webhook_poll_interval: Duration::from_secs(1),
            webhook_disable_after: Duration::from_secs(5 * 24 * 3600),
            webhook_secret_grace: Duration::from_secs(24 * 3600),
            webhook_allow_private_addresses: false,
        }
    }
}

/// The waits before the retries of a delivery: `5s,5m,30m` (humantime
/// durations, comma-separated); `none` for no retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        let h = 3600;
        Self(
            [5, 300, 1800, 2 * h, 5 * h, 10 * h, 10 * h]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

impl std::str::FromStr for RetrySchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "none" {
            return Ok(Self(Vec::new()));
        }
        s.split(',')
            .map(|d| humantime::parse_duration(d.trim()).map_err(|e| format!("{d:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

/// Limits of the GraphQL executor, and production mode. Every limit is
/// checked before anything is executed; a request over one is refused with
/// an error whose `extensions.code` is `BAD_USER_INPUT` (a 400 under the
/// `application/graphql-response+json` media type).
#[derive(Debug, Clone, Args)]
pub struct GraphqlArgs {
    /// Deepest selection nesting accepted.
    #[arg(long, env = "GRAPHQL_MAX_DEPTH", default_value_t = 10)]
    pub max_depth: usize,

    /// Highest cost accepted: every selected field costs 1 (free text 10),
    /// and a list multiplies the cost of what it selects by the most items
    /// it can return (`first`); counted with fragments where they are
    /// spread, before execution. A bound on the fields of the response.
    #[arg(
        long,
        visible_alias = "max-complexity",
        env = "GRAPHQL_MAX_COST",
        default_value_t = 5000
    )]
    pub max_cost: usize,

    /// Largest response body, in bytes; past it the response is replaced
    /// by an error (a change a mutation made stays made).
    #[arg(long, env = "GRAPHQL_MAX_RESPONSE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_response_bytes: usize,

    /// Time all the work before execution may take: the document checks,
    /// authentication and validation (e.g. `2s`). Past it the request is
    /// refused before anything runs.
    #[arg(long, env = "GRAPHQL_PREPARE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub prepare_timeout: Duration,

    /// Most aliased fields in one document (aliases multiply the work of a
    /// request without making it deeper).
    #[arg(long, env = "GRAPHQL_MAX_ALIASES", default_value_t = 15)]
    pub max_aliases: usize,

    /// Most directives on one field.
    #[arg(long, env = "GRAPHQL_MAX_DIRECTIVES", default_value_t = 5)]
    pub max_directives: usize,

    /// Most lexical tokens (names, punctuators, numbers, strings) in the
    /// query text, counted before it is parsed.
    #[arg(long, env = "GRAPHQL_MAX_TOKENS", default_value_t = 1000)]
    pub max_tokens: usize,

    /// Production mode: introspection, field suggestions in error messages
    /// and GraphiQL are off. Refused together with `--demo`.
    #[arg(long, env = "PRODUCTION", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub production: bool,

    /// Serve GraphiQL (`GET /graphql` from a browser, `/graphiql/<file>`).
    /// Default: off (with `--demo`: on). Refused together with `PRODUCTION`.
    #[arg(long, env = "GRAPHIQL", action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub graphiql: Option<bool>,
}

impl GraphqlArgs {
    /// Whether GraphiQL is served: the setting, or on in demo mode only;
    /// never in production mode.
    pub fn serves_graphiql(&self, demo: bool) -> bool {
        !self.production && self.graphiql.unwrap_or(demo)
    }
}

impl Default for GraphqlArgs {
    fn default() -> Self {
        Self {
            max_depth: 10,
            max_cost: 5000,
            max_response_bytes: 4 * 1024 * 1024,
            prepare_timeout: Duration::from_secs(2),
            max_aliases: 15,
            max_directives: 5,
            max_tokens: 1000,
            production: false,
            graphiql: None,
        }
    }
}

/// Limits and policies of the HTTP layer.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Largest request body accepted, in bytes (413 beyond it).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Time a request may take, body upload included (408 beyond it), e.g.
    /// `30s`, `500ms`.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Origins whose browser pages may call the API (CORS), comma-separated,
    /// e.g. `https://portal.example.org`. None by default.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,

    /// Time a client has to send a complete request header, counted from
    /// the connection's opening or from the end of the previous response
    /// (so it also bounds a kept-alive connection's wait); then the
    /// connection is closed.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a kept-alive connection may stay idle between a response and
    /// the next request; `0s` turns keep-alive off.
    #[arg(long, env = "HTTP_KEEP_ALIVE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub keep_alive_timeout: Duration,

    /// Requests served on one connection; the last is answered with
    /// `Connection: close`.
    #[arg(long, env = "MAX_REQUESTS_PER_CONNECTION", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests_per_connection: u32,

    /// Connections open at once (lowered at start to fit the process's
    /// open-files limit). When full, the oldest connection that is not
    /// executing a request is closed to admit a new one.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Subscriptions live at once on one WebSocket connection; one more is
    /// refused with `BAD_USER_INPUT` (`extensions.limit`
    /// `subscriptionsPerConnection`).
    #[arg(long, env = "SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub subscriptions_per_connection: u32,

    /// WebSocket connections open at once per client (the key of its rate
    /// limit); one more is closed with 4429.
    #[arg(long, env = "SUBSCRIPTION_CONNECTIONS_PER_CLIENT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub subscription_connections_per_client: u32,

    /// Time a WebSocket client has to send `connection_init` after the
    /// upgrade; then the socket is closed with 4408.
    #[arg(long, env = "SUBSCRIPTION_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub subscription_init_timeout: Duration,

    /// Time a subscriber has to take one message; a slower one is dropped
    /// (its socket closed) rather than buffered for.
    #[arg(long, env = "SUBSCRIPTION_SEND_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub subscription_send_timeout: Duration,
}

impl Default for HttpArgs {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_allowed_origins: Vec::new(),
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_requests_per_connection: 1000,
            max_connections: 1024,
            subscriptions_per_connection: 10,
            subscription_connections_per_client: 10,
            subscription_init_timeout: Duration::from_secs(10),
            subscription_send_timeout: Duration::from_secs(10),
        }
    }
}

/// A sustained rate with a burst: `RATE:BURST` requests (e.g. `50:100`:
/// 50 a second, up to 100 at once), `RATE` alone (burst = rate), or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests a second, sustained.
    pub per_second: u32,
    /// Requests accepted at once after a quiet spell.
    pub burst: u32,
}

impl RateLimit {
    /// `per_second` a second with bursts of `burst`.
    pub const fn new(per_second: u32, burst: u32) -> Self {
        Self { per_second, burst }
    }
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self { per_second: 0, burst: 0 });
        }
        let (rate, burst) = match s.split_once(':') {
            Some((r, b)) => (r, Some(b)),
            None => (s, None),
        };
        let rate: u32 =
            rate.trim().parse().map_err(|_| format!("{s:?}: expected RATE[:BURST] or off"))?;
        let burst: u32 = match burst {
            Some(b) => {
                b.trim().parse().map_err(|_| format!("{s:?}: expected RATE[:BURST] or off"))?
            }
            None => rate,
        };
        if rate == 0 || burst == 0 {
            return Err(format!("{s:?}: rate and burst must be at least 1 (or say off)"));
        }
        Ok(Self { per_second: rate, burst })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.per_second == 0 {
            f.write_str("off")
        } else {
            write!(f, "{}:{}", self.per_second, self.burst)
        }
    }
}

/// Per-client request rates, each as `RATE:BURST` (see [`RateLimit`]).
/// Token holders are counted by their token's `sub`, anonymous callers by
/// their IP address. Over the limit a request gets 429 with `Retry-After`.
#[derive(Debug, Clone, Args)]
pub struct RateLimitArgs {
    /// People (tokens with a role), per `sub`.
    #[arg(long, env = "RATE_LIMIT_PEOPLE", default_value = "50:100")]
    pub rate_limit_people: RateLimit,

    /// Machine clients with `cases:read`, per `sub`.
    #[arg(long, env = "RATE_LIMIT_CASES_READ", default_value = "50:100")]
    pub rate_limit_cases_read: RateLimit,

    /// Machine clients with only `statistics:read`, per `sub`.
    #[arg(long, env = "RATE_LIMIT_STATISTICS_READ", default_value = "50:100")]
    pub rate_limit_statistics_read: RateLimit,

    /// Callers without a token, per IP address (behind a reverse proxy every
    /// anonymous caller shares the proxy's address: limit there instead).
    #[arg(long, env = "RATE_LIMIT_ANONYMOUS", default_value = "50:100")]
    pub rate_limit_anonymous: RateLimit,

    /// Cost each client (the key of its rate limit) may spend, as
    /// `POINTS_PER_SECOND:BURST` or `off`: a request is charged its cost
    /// (`GRAPHQL_MAX_COST`) before it runs, so a client sending the most
    /// expensive requests gets far fewer of them than one polling a case.
    /// Over it: 429 with `Retry-After`. The burst must be at least the cost
    /// limit.
    #[arg(long, env = "RATE_LIMIT_COST", default_value = "1000:10000")]
    pub rate_limit_cost: RateLimit,

    /// Requests of one client (the key of its rate limit) executing at
    /// once, or `off`. Over it: 429 with `Retry-After: 1`. Unset: half the
    /// database pool (at least 1), so that one client cannot hold it all.
    #[arg(long, env = "MAX_IN_FLIGHT_PER_CLIENT")]
    pub max_in_flight_per_client: Option<InFlightCap>,
}

/// Most requests of one client executing at once: a number, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightCap(pub Option<std::num::NonZeroU32>);

impl std::str::FromStr for InFlightCap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        match s.parse::<u32>() {
            Ok(n) => std::num::NonZeroU32::new(n)
                .map(|n| Self(Some(n)))
                .ok_or_else(|| format!("{s:?}: at least 1 (or say off)")),
            Err(_) => Err(format!("{s:?}: expected a number or off")),
        }
    }
}

impl std::fmt::Display for InFlightCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(n) => write!(f, "{n}"),
        }
    }
}

impl Default for RateLimitArgs {
    fn default() -> Self {
        Self {
            rate_limit_people: RateLimit::new(50, 100),
            rate_limit_cases_read: RateLimit::new(50, 100),
            rate_limit_statistics_read: RateLimit::new(50, 100),
            rate_limit_anonymous: RateLimit::new(50, 100),
            rate_limit_cost: RateLimit::new(1000, 10_000),
            max_in_flight_per_client: None,
        }
    }
}

impl ServeArgs {
    /// The grace period for shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::{InFlightCap, RetrySchedule};
    use std::time::Duration;

    #[track_caller]
    fn check(input: &str, expected: Result<Option<u32>, ()>) {
        let parsed = input.parse::<InFlightCap>().map(|c| c.0.map(|n| n.get())).map_err(|_| ());
        assert_eq!(parsed, expected, "{input:?}");
    }

    #[test]
    fn retry_schedules_parse() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        assert_eq!("100ms, 200ms".parse::<RetrySchedule>(), Ok(RetrySchedule(ms(&[100, 200]))));
        assert_eq!("none".parse::<RetrySchedule>(), Ok(RetrySchedule(vec![])));
        assert_eq!(
            "5s,5m,30m,2h,5h,10h,10h".parse::<RetrySchedule>(),
            Ok(RetrySchedule::default())
        );
        assert!("5s,,1m".parse::<RetrySchedule>().is_err());
        assert!("soon".parse::<RetrySchedule>().is_err());
    }

    #[test]
    fn in_flight_caps_parse() {
        check("8", Ok(Some(8)));
        check(" 1 ", Ok(Some(1)));
        check("off", Ok(None));
        check("OFF", Ok(None));
        check("0", Err(()));
        check("-1", Err(()));
        check("many", Err(()));
        assert_eq!(InFlightCap(None).to_string(), "off");
        assert_eq!("8".parse::<InFlightCap>().map(|c| c.to_string()), Ok("8".to_owned()));
    }
}

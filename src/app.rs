//! The subcommands of the binary.

use anyhow::Context as _;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use std::sync::Arc;

use crate::auth::{MintClaims, Verifier};
use crate::config::{
    AuditAction, Cli, Command, DirectoryAction, GlobalArgs, MigrateAction, ProtocolAction,
    ServeArgs, TokenArgs, TrustedDocumentsAction,
};
use crate::db::{self, DbSettings};
use crate::domain::catalog::Catalog;
use crate::domain::role::Role;
use crate::graphql;
use crate::http::{self, AppState};
use crate::service::demo;
use crate::service::identity::DirectoryCache;
use crate::service::protocols::{self, Library};

/// Runs one subcommand to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(path) = &cli.global.bank_holidays_file {
        bank_holidays(path)?;
    }
    match cli.command {
        Command::Serve(args) => serve(&cli.global, &args).await,
        Command::Migrate { action } => {
            let db = connect(&cli.global).await?;
            match action {
                MigrateAction::Apply => {
                    db::migrate(&db).await.context("applying migrations")?;
                    let seeded = store_builtin_protocols(&db).await?;
                    println!("migrations applied");
                    for (id, version) in seeded.stored {
                        println!("built-in protocol {id} version {version} stored");
                    }
                }
                MigrateAction::Status => {
                    for (name, applied) in db::migration_status(&db).await? {
                        println!("{} {name}", if applied { "applied" } else { "pending" });
                    }
                }
            }
            db.close().await?;
            Ok(())
        }
        Command::Audit { action: AuditAction::Verify } => {
            let db = connect(&cli.global).await?;
            let broken = crate::service::audit::verify(&db).await?;
            db.close().await?;
            match broken {
                None => {
                    println!("audit trail intact");
                    Ok(())
                }
                Some(link) => anyhow::bail!("audit trail broken: {link}"),
            }
        }
        Command::Backup { file } => backup(&cli.global, &file).await,
        Command::Token(args) => {
            println!("{}", mint(&cli.global, &args)?);
            Ok(())
        }
        Command::ExportSchema => {
            print!("{}", graphql::export_sdl());
            Ok(())
        }
        Command::Protocol { action } => protocol_command(&cli.global, action).await,
        Command::TrustedDocuments { action: TrustedDocumentsAction::Build { dir } } => {
            let manifest = http::trusted::build(&dir)?;
            println!("{}", serde_json::to_string_pretty(&manifest)?);
            Ok(())
        }
        Command::Directory { action } => directory_command(&cli.global, action).await,
        Command::SeedDemo(args) => {
            let db = connect(&cli.global).await?;
            db::migrate(&db).await.context("applying migrations")?;
            store_builtin_protocols(&db).await?;
            let catalog = Library::load(&db).await.context("stored protocol versions")?.current();
            let report = demo::seed_directory(&db, &catalog).await?;
            println!(
                "demo directory loaded: {} partnerships and {} agencies added",
                report.partnerships_added, report.agencies_added
            );
            if args.cases > 0 {
                use crate::service::generate;
                let options = generate::Options {
                    cases: args.cases,
                    seed: args.seed,
                    batch_size: args.batch_size as usize,
                    years: args.years,
                    max_writers: cli
                        .global
                        .database_max_connections
                        .map_or(usize::MAX, |n| n as usize),
                };
                println!("generating {} cases (seed {})", args.cases, args.seed);
                let done = generate::generate(&db, &catalog, &options, |p| {
                    println!(
                        "  {} cases, {} events ({:.1} s, {:.0} cases/s)",
                        p.cases,
                        p.events,
                        p.elapsed.as_secs_f64(),
                        p.rate()
                    );
                })
                .await?;
                println!(
                    "generated {} cases with {} audit events in {:.1} s ({:.0} cases/s)",
                    done.cases,
                    done.events,
                    done.elapsed.as_secs_f64(),
                    done.rate()
                );
                let queued = crate::service::awaiting::backfill(&db, &catalog).await?;
                println!("queued {queued} open cases (who each waits on)");
            }
            db.close().await?;
            Ok(())
        }
    }
}

/// `backup FILE`: the SQLite database copied, consistently, into a new
/// file; PostgreSQL is backed up with its own tools.
async fn backup(global: &GlobalArgs, file: &std::path::Path) -> anyhow::Result<()> {
    let url = &global.database_url;
    anyhow::ensure!(
        !url.starts_with("postgres"),
        "DATABASE_URL is a PostgreSQL database: back it up with PostgreSQL's own tools, \
         `pg_dump` (a logical copy, restored with `pg_restore`) or `pg_basebackup` with WAL \
         archiving (a physical copy, for point-in-time recovery); see README, Backup"
    );
    let source = db::sqlite_file(url)
        .with_context(|| format!("DATABASE_URL ({}) is not an SQLite URL", redact_url(url)))?;
    // Connecting with `mode=rwc` would create an empty database to copy.
    anyhow::ensure!(source.exists(), "no SQLite database at {}", source.display());
    let db = connect(global).await?;
    let copied = db::backup(&db, file).await;
    db.close().await?;
    copied.with_context(|| format!("backing up {} to {}", source.display(), file.display()))?;
    println!("backed up {} to {}", source.display(), file.display());
    Ok(())
}

/// `escalations protocol …`.
async fn protocol_command(global: &GlobalArgs, action: ProtocolAction) -> anyhow::Result<()> {
    use crate::domain::{definition, policy, protocol_diff};
    let read = |file: &std::path::Path| {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    };
    match action {
        ProtocolAction::Validate { file, policy: with_policy } => {
            let checked = definition::check(&read(&file)?);
            for p in &checked.problems {
                let at = match (p.line, p.column) {
                    (Some(l), Some(c)) => format!("{}:{l}:{c}", file.display()),
                    (Some(l), None) => format!("{}:{l}", file.display()),
                    _ => file.display().to_string(),
                };
                let path = if p.path.is_empty() { String::new() } else { format!(" {}", p.path) };
                println!("{at}:{path}: {}", p.message);
            }
            if let Some(protocol) = &checked.protocol {
                println!(
                    "{}: protocol {} version {} is valid",
                    file.display(),
                    protocol.id(),
                    protocol.version()
                );
                if with_policy {
                    print!("{}", policy::render_table(protocol));
                }
                Ok(())
            } else {
                anyhow::bail!("{} problem(s) in {}", checked.problems.len(), file.display())
            }
        }
        ProtocolAction::Publish { partnership, file } => {
            let text = read(&file)?;
            let db = connect(global).await?;
            store_builtin_protocols(&db).await?;
            let library = Library::load(&db).await.context("stored protocol versions")?;
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
            let publisher = protocols::Publisher::Cli { partnership: &partnership, user: &user };
            let result = protocols::publish(&db, &library, publisher, &text).await;
            db.close().await?;
            match result {
                Ok(published) => {
                    let s = &published.stored;
                    println!(
                        "published {} version {} for {} (sha256 {}, by {})",
                        s.protocol.id(),
                        s.protocol.version(),
                        partnership,
                        s.sha256,
                        s.published_by
                    );
                    Ok(())
                }
                Err(crate::service::ServiceError::InvalidProtocol(problems)) => {
                    for p in &problems {
                        let line = p.line.map_or_else(String::new, |l| format!(":{l}"));
                        println!("{}{line}: {}: {}", file.display(), p.path, p.message);
                    }
                    anyhow::bail!("{} problem(s); nothing published", problems.len())
                }
                Err(e) => Err(anyhow::anyhow!("{e}")),
            }
        }
        ProtocolAction::List => {
            let db = connect(global).await?;
            let library = Library::load(&db).await.context("stored protocol versions")?;
            let list = protocols::list(&db, &library).await?;
            db.close().await?;
            for s in list {
                println!(
                    "{} {} {} {} {} {}",
                    s.protocol.id(),
                    s.protocol.version(),
                    s.published_at.to_rfc3339(),
                    s.published_by,
                    s.partnership.as_ref().map_or("-", |p| p.code.as_str()),
                    s.sha256
                );
            }
            Ok(())
        }
        ProtocolAction::Diff { id, from, to } => {
            let db = connect(global).await?;
            let library = Library::load(&db).await.context("stored protocol versions")?;
            let pair = protocols::pair(&db, &library, &id, from, to).await;
            db.close().await?;
            let (a, b) = pair.map_err(|e| anyhow::anyhow!("{e}"))?;
            for c in protocol_diff::diff(&a, &b) {
                let before = c.before.as_deref().unwrap_or("-");
                let after = c.after.as_deref().unwrap_or("-");
                println!("{:?} {}: {before} -> {after}", c.kind, c.path);
            }
            Ok(())
        }
        ProtocolAction::Adopt { partnership, version, newest } => {
            let db = connect(global).await?;
            store_builtin_protocols(&db).await?;
            let library = Library::load(&db).await.context("stored protocol versions")?;
            let row = entity::partnership::Entity::find()
                .filter(entity::partnership::Column::Code.eq(&partnership))
                .one(&db)
                .await?
                .with_context(|| format!("no partnership {partnership}"))?;
            let id = crate::domain::ids::PartnershipId::from_uuid(row.id);
            let version = if newest { None } else { version };
            let actor =
                format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
            let result = crate::service::directory::adopt_protocol_version(
                &db, &library, id, version, &actor,
            )
            .await;
            db.close().await?;
            result.map_err(|e| anyhow::anyhow!("{e}"))?;
            match version {
                Some(v) => {
                    println!("{partnership}: new cases take {} version {v}", row.protocol_id)
                }
                None => println!("{partnership}: new cases take the newest {}", row.protocol_id),
            }
            Ok(())
        }
    }
}

fn mint(global: &GlobalArgs, args: &TokenArgs) -> anyhow::Result<String> {
    let verifier = Verifier::from_args(&global.auth, global.demo).context("token settings")?;
    let role = match args.role.as_deref() {
        None => None,
        Some(r) => Some(Role::parse(r).with_context(|| {
            format!("unknown role {r:?}: one of {}", Role::ALL.map(Role::as_str).join(", "))
        })?),
    };
    let scope = args.scope.as_deref().map(|s| s.replace(',', " "));
    anyhow::ensure!(role.is_some() || scope.is_some(), "give --role, --scope or both");
    let claims = MintClaims {
        sub: args.sub.clone(),
        name: args.name.clone(),
        role,
        scope,
        agency: args.agency.clone(),
        partnership: args.partnership.clone(),
    };
    Ok(verifier.mint(&claims, args.ttl)?)
}

async fn connect(global: &GlobalArgs) -> anyhow::Result<DatabaseConnection> {
    let settings = DbSettings {
        url: global.database_url.clone(),
        max_connections: global.database_max_connections,
    };
    db::connect(&settings).await.with_context(|| {
        format!("connecting to the database ({})", redact_url(&global.database_url))
    })
}

/// Stores each built-in protocol as version 1 where the database lacks it;
/// a stored version whose text differs from the binary's file is kept
/// (and used), with a warning.
async fn store_builtin_protocols(db: &DatabaseConnection) -> anyhow::Result<protocols::SeedReport> {
    let report = protocols::seed_builtin(db).await.context("storing the built-in protocols")?;
    for (id, version) in &report.differing {
        eprintln!(
            "warning: stored protocol {id} version {version} differs from the built-in file; \
             the stored one is used"
        );
    }
    Ok(report)
}

/// Prepares the database and the shared state the way `serve` does:
/// migrations (unless turned off) and, when asked, the demo directory; a
/// warning when the directory is empty (the server still starts: one may
/// be loaded while it runs).
pub async fn prepare(
    db: DatabaseConnection,
    global: &GlobalArgs,
    args: &ServeArgs,
) -> anyhow::Result<AppState> {
    let trusted = trusted_documents(args)?;
    let verifier = Verifier::start(&global.auth, global.demo).await.context("token settings")?;
    Catalog::builtin().context("built-in protocol definitions")?;
    if args.migrate_on_start {
        db::migrate(&db).await.context("applying migrations")?;
    }
    store_builtin_protocols(&db).await?;
    let protocols = Arc::new(Library::load(&db).await.context("stored protocol versions")?);
    if global.demo {
        let report = demo::seed_directory(&db, &protocols.current()).await?;
        tracing::info!(
            partnerships.added = report.partnerships_added,
            agencies.added = report.agencies_added,
            "demo directory loaded"
        );
    }
    anyhow::ensure!(
        !(args.graphql.production && global.demo),
        "--demo and --production exclude each other"
    );
    anyhow::ensure!(
        !(args.graphql.production && args.graphql.graphiql == Some(true)),
        "GRAPHIQL=true and PRODUCTION exclude each other (production mode serves no GraphiQL)"
    );
    let cost_rate = args.rate_limits.rate_limit_cost;
    anyhow::ensure!(
        cost_rate.per_second == 0 || cost_rate.burst as usize >= args.graphql.max_cost,
        "RATE_LIMIT_COST's burst ({}) must be at least GRAPHQL_MAX_COST ({}), or no request \
         at the cost limit could ever run",
        cost_rate.burst,
        args.graphql.max_cost
    );
    let cors = http::cors_layer(&args.http.cors_allowed_origins).context("CORS settings")?;
    match crate::service::readiness::directory_is_empty(&db).await {
        Ok(true) => tracing::warn!("{}", crate::service::readiness::EMPTY_DIRECTORY),
        Ok(false) => {}
        Err(err) => tracing::warn!(error = %err, "cannot read the directory"),
    }
    let hub = crate::service::hub::Hub::start(db.clone()).await.context("subscription hub")?;
    let schema =
        graphql::build_schema(Some((db.clone(), protocols.clone(), hub.clone())), &args.graphql);
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let public_metrics = http::PublicMetrics::from_settings(&args.metrics, global.demo)
        .context("metrics settings")?;
    Ok(AppState {
        schema,
        protocols,
        db,
        verifier: Arc::new(verifier),
        directory: Arc::new(DirectoryCache::new(std::time::Duration::from_secs(
            args.directory_cache_seconds,
        ))),
        limits: Arc::new(args.graphql.clone()),
        graphiql: args.graphql.serves_graphiql(global.demo),
        http: Arc::new(args.http.clone()),
        cors,
        rate_limits: Arc::new(http::RateLimits::new(&args.rate_limits)),
        in_flight: crate::in_flight::InFlight::new(
            in_flight_cap(args.rate_limits.max_in_flight_per_client, global),
            metrics.clone(),
        ),
        metrics,
        public_metrics,
        documents: Arc::default(),
        trusted: Arc::new(trusted),
        webhooks: Arc::new(args.webhooks.clone()),
        timers: Arc::new(args.timers.clone()),
        hub,
        subscribers: Arc::new(http::subscriptions::Clients::new(
            args.http.subscription_connections_per_client,
        )),
    })
}

/// Puts the bank holidays of `BANK_HOLIDAYS_FILE` in place of the embedded
/// list, before anything counts working days.
fn bank_holidays(path: &std::path::Path) -> anyhow::Result<()> {
    let context = || format!("bank holidays ({})", path.display());
    let text = std::fs::read_to_string(path).with_context(context)?;
    let calendars = crate::domain::calendar::install(&text).with_context(context)?;
    for nation in crate::domain::calendar::Nation::ALL {
        let calendar = calendars.get(nation);
        let published: Vec<i32> = calendar.published_years().collect();
        tracing::info!(
            calendar = calendar.id(),
            calendar.published = %format!(
                "{}..={}",
                published.first().copied().unwrap_or_default(),
                published.last().copied().unwrap_or_default()
            ),
            calendar.covered = ?calendar.covered_years(),
            "bank holidays loaded"
        );
    }
    Ok(())
}

/// The trusted documents of the settings (none without a manifest), each
/// checked against the document limits.
fn trusted_documents(args: &ServeArgs) -> anyhow::Result<http::trusted::TrustedDocuments> {
    let only = args.trusted.trusted_documents_only;
    let Some(path) = &args.trusted.trusted_documents else {
        anyhow::ensure!(
            !only,
            "TRUSTED_DOCUMENTS_ONLY needs TRUSTED_DOCUMENTS, the manifest of the operations \
             that may run"
        );
        return Ok(http::trusted::TrustedDocuments::default());
    };
    let context = || format!("trusted documents ({})", path.display());
    let trusted = http::trusted::TrustedDocuments::load(path, only).with_context(context)?;
    trusted.check_limits(&args.graphql).with_context(context)?;
    tracing::info!(
        trusted.documents = trusted.len(),
        trusted.only = only,
        "trusted documents loaded"
    );
    Ok(trusted)
}

/// The per-client cap on requests in flight: the setting, or half the pool
/// (at least one), so that one client cannot hold every connection.
fn in_flight_cap(
    setting: Option<crate::config::InFlightCap>,
    global: &GlobalArgs,
) -> Option<std::num::NonZeroU32> {
    match setting {
        Some(cap) => cap.0,
        None => std::num::NonZeroU32::new(
            (crate::db::pool_size(global.database_max_connections) / 2).max(1),
        ),
    }
}

async fn serve(global: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let open_files = crate::listener::raise_open_files_limit();
    tracing::debug!(open_files, "open-files limit");
    let stop = shutdown_signal();
    let db = connect(global).await?;
    let state = prepare(db.clone(), global, args).await?;
    let listeners =
        http::Listeners::bind(args.listen_addr, args.metrics.metrics_listen_addr).await?;
    let addr = listeners.api.local_addr()?;
    tracing::info!(%addr, "listening");
    println!("escalations is listening on http://{addr}");
    if state.graphiql {
        println!("GraphiQL: open http://{addr}/graphql in a browser");
    }
    if let Some(admin) = &listeners.metrics {
        let admin = admin.local_addr()?;
        tracing::info!(%admin, "metrics listener");
        println!("Metrics: http://{admin}/metrics (the metrics listener)");
    }
    match state.public_metrics {
        http::PublicMetrics::Open => println!("Metrics: http://{addr}/metrics (open in demo mode)"),
        http::PublicMetrics::Token(_) => {
            println!("Metrics: http://{addr}/metrics (with METRICS_TOKEN as a bearer token)");
        }
        http::PublicMetrics::Hidden => {}
    }
    if global.demo {
        print_demo_tokens(global);
    }

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(http::serve(listeners, state, async {
        let _ = stop_rx.await;
    }));
    tokio::select! {
        res = &mut server => {
            res.context("server task")??;
        }
        () = stop => {
            tracing::info!("shutdown requested; finishing in-flight requests");
            let _ = stop_tx.send(());
            match tokio::time::timeout(args.shutdown_grace(), server).await {
                Ok(res) => res.context("server task")??,
                Err(_) => tracing::warn!("grace period over; in-flight requests dropped"),
            }
        }
    }
    db.close().await?;
    tracing::info!("stopped");
    Ok(())
}

/// Tells a demo user how to get a token for each role.
fn print_demo_tokens(global: &GlobalArgs) {
    println!();
    println!("Demo tokens (HS256, development secret; valid 8 hours). Mint others with:");
    println!(
        "  cargo run --release -- --demo token --role ROLE --agency AGENCY --partnership PARTNERSHIP --sub YOUR-ID"
    );
    println!(
        "  cargo run --release -- --demo token --scope SCOPE [--agency AGENCY] --partnership PARTNERSHIP --sub CLIENT-ID"
    );
    let examples = [
        ("practitioner", Some("wb-police")),
        ("manager", Some("wb-police")),
        ("safeguarding_lead", Some("wb-swansea-csc")),
        ("head_of_service", Some("wb-swansea-csc")),
        ("board_chair", None),
    ];
    for (role, agency) in examples {
        let args = TokenArgs {
            role: Some(role.to_owned()),
            scope: None,
            agency: agency.map(str::to_owned),
            partnership: "western-bay".to_owned(),
            sub: format!("demo-{role}"),
            name: None,
            ttl: std::time::Duration::from_secs(8 * 3600),
        };
        match mint(global, &args) {
            Ok(token) => println!(
                "  {role:<18} western-bay {:<15} Authorization: Bearer {token}",
                agency.unwrap_or("-")
            ),
            Err(err) => println!("  {role}: cannot mint ({err:#})"),
        }
    }
    // Machine clients: a partner system following its agency's cases, a
    // board reporting tool, an agency's webhook manager, and the
    // partnership's business unit (its directory and its protocol).
    let clients = [
        ("cases:read", Some("wb-police"), "demo-police-system"),
        ("statistics:read", None, "demo-board-reporting"),
        ("webhooks:manage", Some("wb-police"), "demo-police-webhooks"),
        ("directory:admin", None, "demo-business-unit"),
        ("protocols:admin", None, "demo-business-unit"),
    ];
    for (scope, agency, sub) in clients {
        let args = TokenArgs {
            role: None,
            scope: Some(scope.to_owned()),
            agency: agency.map(str::to_owned),
            partnership: "western-bay".to_owned(),
            sub: sub.to_owned(),
            name: None,
            ttl: std::time::Duration::from_secs(8 * 3600),
        };
        match mint(global, &args) {
            Ok(token) => println!(
                "  {scope:<18} western-bay {:<15} Authorization: Bearer {token}",
                agency.unwrap_or("-")
            ),
            Err(err) => println!("  {scope}: cannot mint ({err:#})"),
        }
    }
    println!();
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: called before the listener
/// is bound, a SIGTERM that arrives as the server starts is a clean stop
/// rather than the default (the process killed).
pub fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |stream: std::io::Result<tokio::signal::unix::Signal>,
                        name: &'static str| async move {
                match stream {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(err) => {
                        tracing::error!(error = %err, signal = name, "cannot listen for the signal");
                        std::future::pending::<()>().await;
                    }
                }
            };
            let (term, int) = signals;
            tokio::select! {
                () = wait(term, "SIGTERM") => {},
                () = wait(int, "SIGINT") => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

/// The URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// `escalations directory import|export`.
async fn directory_command(global: &GlobalArgs, action: DirectoryAction) -> anyhow::Result<()> {
    use crate::service::directory::{self, ImportMode};
    let db = connect(global).await?;
    db::migrate(&db).await.context("applying migrations")?;
    match action {
        DirectoryAction::Import { file, dry_run } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let catalog = Catalog::builtin().context("built-in protocol definitions")?;
            let actor =
                format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
            let mode = if dry_run { ImportMode::DryRun } else { ImportMode::Apply };
            let report = match directory::import(&db, &catalog, &text, &actor, mode).await {
                Ok(report) => report,
                Err(crate::service::ServiceError::BadInput { message, .. }) => {
                    anyhow::bail!(
                        "{} is not a valid directory file; nothing was written:\n{message}",
                        file.display()
                    )
                }
                Err(other) => return Err(other.into()),
            };
            for change in &report.changes {
                println!("{change}");
            }
            for (partnership, agency) in &report.left_out {
                println!("left out, kept as it is: agency {agency} of {partnership}");
            }
            match (report.changes.len(), report.applied) {
                (0, _) => {
                    println!("the directory already matches {}: nothing to change", file.display())
                }
                (n, true) => println!("{n} changes written"),
                (n, false) => println!("dry run: {n} changes, nothing written"),
            }
            Ok(())
        }
        DirectoryAction::Export { output } => {
            let text = directory::export(&db).await?;
            match output {
                None => print!("{text}"),
                Some(path) => {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    f.write_all(text.as_bytes())?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        for (url, shown) in [
            ("postgres://app:secret@db:5432/x", "postgres://app@db:5432/x"),
            ("postgres://app@db/x", "postgres://app@db/x"),
            ("sqlite://escalations.db?mode=rwc", "sqlite://escalations.db?mode=rwc"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}

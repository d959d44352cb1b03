//! The subcommands of the binary.

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::config::{Cli, Command, GlobalArgs, MigrateAction, ServeArgs};
use crate::db::{self, DbSettings};
use crate::graphql;
use crate::http::{self, AppState};
use crate::service::demo;

/// Runs one subcommand to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(&cli.global, &args).await,
        Command::Migrate { action } => {
            let db = connect(&cli.global).await?;
            match action {
                MigrateAction::Apply => {
                    db::migrate(&db).await.context("applying migrations")?;
                    println!("migrations applied");
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
        Command::ExportSchema => {
            print!("{}", graphql::export_sdl());
            Ok(())
        }
        Command::SeedDemo => {
            let db = connect(&cli.global).await?;
            db::migrate(&db).await.context("applying migrations")?;
            let report = demo::seed_directory(&db).await?;
            println!(
                "demo directory loaded: {} partnerships and {} agencies added",
                report.partnerships_added, report.agencies_added
            );
            db.close().await?;
            Ok(())
        }
    }
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

/// Prepares the database and the shared state the way `serve` does:
/// migrations (unless turned off) and, when asked, the demo directory.
pub async fn prepare(db: DatabaseConnection, args: &ServeArgs) -> anyhow::Result<AppState> {
    if args.migrate_on_start {
        db::migrate(&db).await.context("applying migrations")?;
    }
    if args.demo {
        let report = demo::seed_directory(&db).await?;
        tracing::info!(
            partnerships.added = report.partnerships_added,
            agencies.added = report.agencies_added,
            "demo directory loaded"
        );
    }
    let schema = graphql::build_schema(Some(db.clone()), &args.graphql);
    Ok(AppState { schema, db })
}

async fn serve(global: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let db = connect(global).await?;
    let state = prepare(db.clone(), args).await?;
    let listener = TcpListener::bind(args.listen_addr)
        .await
        .with_context(|| format!("binding {}", args.listen_addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    println!("escalations is listening on http://{addr}");
    println!("GraphiQL: open http://{addr}/graphql in a browser");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(http::serve(listener, state, async {
        let _ = stop_rx.await;
    }));
    tokio::select! {
        res = &mut server => {
            res.context("server task")??;
        }
        () = shutdown_signal() => {
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

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
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

//! The `escalations` binary: configuration, tracing, then one subcommand.

use clap::Parser;

// mimalloc: the service allocates many small, short-lived objects per
// request; glibc malloc showed as ~10% of a lookup's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use escalations::config::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    escalations::telemetry::init(&cli.global.log_filter, cli.global.log_format);
    match escalations::app::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "failed");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

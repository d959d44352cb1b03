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
    let global = &cli.global;
    let telemetry = match escalations::telemetry::init(
        &global.log_filter,
        global.log_format,
        &global.telemetry,
    ) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match escalations::app::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "failed");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // The spans still batched are exported now (blocking: off the workers).
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

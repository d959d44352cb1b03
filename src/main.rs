//! The `escalations` binary: configuration, tracing, then one subcommand.

use clap::Parser;
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

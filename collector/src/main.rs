//! `stats-collector`: receives the pipeline's datagrams, accounts for every
//! sender, aggregates every series, and feeds Prometheus and StatsD agents.
//! `stats-collector --help` lists the flags; `--config FILE` reads them
//! from TOML (see `stats_collector::settings`). Logs go to standard error,
//! filtered by `RUST_LOG` (default `info`).

use clap::Parser;
use stats_collector::Server;
use stats_collector::settings::Cli;
use stats_core::wire::Codec;
use std::process::ExitCode;
use std::time::Duration;

/// How long the outputs get to finish when the collector is told to stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let settings = match cli.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stats-collector: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::start(&settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stats-collector: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "receiving on udp://{} ({} threads)",
        server.udp_address(),
        settings.ingest_thread_count()
    );
    if let Some(path) = &settings.listen_unix {
        println!("receiving on unixgram://{}", path.display());
    }
    if let Some(path) = &settings.listen_unix_stream {
        println!("receiving on unix://{}", path.display());
    }
    if let Some(http) = server.http_address() {
        println!("serving http://{http}/metrics and /health");
    }
    if let Some(f) = &settings.forward {
        println!(
            "forwarding to {} as {} every {:?}",
            f.target,
            Codec::Statsd(f.dialect),
            settings.export_interval()
        );
    }
    let signal = match wait_for_signal() {
        Ok(name) => name,
        Err(e) => {
            eprintln!("stats-collector: cannot wait for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!("{signal}: draining the outputs (up to {DRAIN_TIMEOUT:?})");
    if server.stop(DRAIN_TIMEOUT) {
        log::info!("stopped");
        ExitCode::SUCCESS
    } else {
        log::warn!("the outputs did not finish within {DRAIN_TIMEOUT:?}");
        ExitCode::FAILURE
    }
}

/// Blocks until SIGTERM or SIGINT (Ctrl-C); which one.
fn wait_for_signal() -> std::io::Result<&'static str> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => Ok("SIGTERM"),
                r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
        }
    })
}

//! Start-up the demo and the load tool share: a loopback receiver and a
//! pipeline configured from the environment. Each says on stderr what went
//! wrong and gives the exit code to return.

use crate::receiver::Receiver;
use stats_std::{Config, Stats};
use std::process::ExitCode;

/// A receiver on a free loopback port with a 16 MiB socket buffer.
pub fn loopback_receiver() -> Result<Receiver, ExitCode> {
    Receiver::start("127.0.0.1:0", 16 << 20).map_err(|e| {
        eprintln!("cannot bind a loopback receiver: {e}");
        ExitCode::FAILURE
    })
}

/// A pipeline configured from `STATS_*` (exit code 2 when that is invalid),
/// sending to `address`, with `adjust` applied last.
pub fn start_stats(
    address: String,
    adjust: impl FnOnce(Config) -> Config,
) -> Result<Stats, ExitCode> {
    let config = Config::load(None).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    Stats::start(adjust(config.with_address(address))).map_err(|e| {
        eprintln!("cannot start: {e}");
        ExitCode::FAILURE
    })
}

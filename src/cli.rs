//! Start-up the examples share: a loopback receiver, a pipeline
//! configured from the environment (each says on stderr what went wrong
//! and gives the exit code to return), and how a duration is written on
//! their command lines.

use crate::receiver::Receiver;
use stats_std::{Config, Stats};
use std::process::ExitCode;
use std::time::Duration;

/// A positive duration as a command line writes it: seconds (`30`, `2.5`)
/// or with a unit (`30s`, `10m`, `24h`).
pub fn seconds(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected seconds or 30s, 10m, 24h; got {text:?}");
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(n * factor)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(bad)
}

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

#[cfg(test)]
mod tests {
    use super::seconds;
    use std::time::Duration;

    #[test]
    fn durations_are_read_with_or_without_a_unit() {
        assert_eq!(seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(seconds("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(seconds("24h"), Ok(Duration::from_secs(86_400)));
        for bad in ["0", "", "5d", "m", "-1", "1e999"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}

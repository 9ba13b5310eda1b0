//! A latency spike, as a dashboard should see it: a request timer records
//! a base latency at a steady rate, then a spike for a while, then the
//! base again, through `stats-std` (aggregated at the source) to a
//! collector. Prints the Unix time (seconds, with fractions) at which the
//! spike started and ended, so a query can look at the windows before and
//! after it; `.ci/histograms.sh` reads them.
//!
//! ```sh
//! cargo run --release --example spike -- --target 127.0.0.1:8125
//! ```

use clap::Parser;
use stats_std::{Config, Stats};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Records a base latency, a spike, then the base again.
#[derive(Parser)]
struct Args {
    /// Where the collector listens (an address, or a unixgram:// URL).
    #[arg(long, default_value = "127.0.0.1:8125")]
    target: String,
    /// The timer's name.
    #[arg(long, default_value = "spike.request")]
    name: String,
    /// Seconds of base latency before the spike.
    #[arg(long, default_value_t = 20.0)]
    before: f64,
    /// Seconds of spike.
    #[arg(long, default_value_t = 1.0)]
    spike: f64,
    /// Seconds of base latency after the spike.
    #[arg(long, default_value_t = 8.0)]
    after: f64,
    /// The base latency, milliseconds.
    #[arg(long, default_value_t = 1.0)]
    base_ms: f64,
    /// The spike's latency, milliseconds.
    #[arg(long, default_value_t = 200.0)]
    spike_ms: f64,
    /// Values a second at the base latency.
    #[arg(long, default_value_t = 5_000.0)]
    base_rate: f64,
    /// Values a second during the spike.
    #[arg(long, default_value_t = 500.0)]
    spike_rate: f64,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Records `latency` `rate` times a second for `seconds`, paced.
fn phase(timer: &stats_std::Timer, latency: Duration, rate: f64, seconds: f64) -> u64 {
    let start = Instant::now();
    let mut recorded = 0u64;
    loop {
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds {
            return recorded;
        }
        let due = (elapsed * rate) as u64;
        while recorded < due {
            timer.record(latency);
            recorded += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let stats = Stats::start(Config::default().with_address(args.target.clone()))?;
    let timer = stats.timer(&args.name, &[])?;
    let ms = |v: f64| Duration::from_secs_f64(v / 1e3);
    let mut recorded = phase(&timer, ms(args.base_ms), args.base_rate, args.before);
    let start = unix_now();
    recorded += phase(&timer, ms(args.spike_ms), args.spike_rate, args.spike);
    let end = unix_now();
    recorded += phase(&timer, ms(args.base_ms), args.base_rate, args.after);
    stats.flush(Duration::from_secs(2))?;
    let report = stats.shutdown(Duration::from_secs(2))?;
    println!("spike start {start:.3} end {end:.3}");
    println!("recorded {recorded}");
    println!("conserved {}", report.snapshot.is_conserved());
    Ok(())
}

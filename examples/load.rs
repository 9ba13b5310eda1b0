//! Load and soak runs: several threads record at a steady offered rate into a
//! real pipeline sending over loopback UDP to a decoding receiver; the run is
//! sampled every second and judged against the service-level objectives.
//!
//! ```text
//! cargo run --release --example load -- --scenario baseline|high|stress|burst|soak
//!     [--duration 30s|10m|24h] [--rate EVENTS_PER_S] [--threads N] [--json] [--check]
//! ```
//!
//! | scenario | rate | duration |
//! |---|---|---|
//! | baseline | 10k/s | 30 s |
//! | high | 100k/s | 60 s |
//! | stress | 500k/s | 30 s |
//! | burst | 1M/s | 10 s |
//! | soak | 100k/s | 24 h (samples every 10 s; judges RSS growth) |
//!
//! Objectives: drop rate under 1%, p99 latency under 100 ms (events: record
//! to receipt; aggregating at the source: totals read to receipt, a value
//! waiting up to `interval_ms` before it is read), memory stable (the
//! pipeline under 10 MB, RSS growth after warm-up under 10 MB; 1 MB for
//! soak), the worker's CPU under 10% of a core at up to 100k events/s (in
//! proportion above), and every event accounted for (aggregating: values
//! recorded = aggregated = standing in the totals received). `--check`
//! exits 1 if one fails. `STATS_*` variables configure the pipeline as in
//! the README (`STATS_AGGREGATION=off|source` picks the mode).

use clap::{Parser, ValueEnum};
use stats_core::DropReason;
use stats_pipeline::load::{self, Plan, Profile, Run};
use stats_pipeline::receiver::{Counts, Receiver};
use stats_pipeline::{cli, procfs};
use stats_std::Report;
use std::process::ExitCode;
use std::time::Duration;

/// Runs a load scenario against a real pipeline and judges it.
#[derive(Parser)]
struct Cli {
    /// The scenario: its default rate and duration.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// How long to run (`30`, `30s`, `10m`, `24h`); the scenario's by
    /// default.
    #[arg(long, value_parser = cli::seconds)]
    duration: Option<Duration>,
    /// Events offered a second, all threads together; the scenario's by
    /// default.
    #[arg(long)]
    rate: Option<u64>,
    /// Recording threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Prints the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Exits 1 when an objective fails.
    #[arg(long)]
    check: bool,
}

/// The scenarios, as the table above gives them.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Scenario {
    Baseline,
    High,
    Stress,
    Burst,
    Soak,
}

impl Scenario {
    /// Its name, its offered rate (events a second) and its duration.
    fn plan(self) -> (&'static str, u64, Duration) {
        let (name, rate, seconds) = match self {
            Scenario::Baseline => ("baseline", 10_000, 30),
            Scenario::High => ("high", 100_000, 60),
            Scenario::Stress => ("stress", 500_000, 30),
            Scenario::Burst => ("burst", 1_000_000, 10),
            Scenario::Soak => ("soak", 100_000, 24 * 3600),
        };
        (name, rate, Duration::from_secs(seconds))
    }
}

/// What a run is: the scenario's plan with the command line's changes.
struct Args {
    scenario: &'static str,
    rate: u64,
    duration: Duration,
    threads: usize,
    json: bool,
    check: bool,
}

impl From<Cli> for Args {
    fn from(cli: Cli) -> Args {
        let (scenario, rate, duration) = cli.scenario.plan();
        Args {
            scenario,
            rate: cli.rate.unwrap_or(rate),
            duration: cli.duration.unwrap_or(duration),
            threads: usize::from(cli.threads),
            json: cli.json,
            check: cli.check,
        }
    }
}

/// One objective: its name, the measured value, the limit and whether it
/// holds.
struct Verdict {
    name: &'static str,
    value: f64,
    limit: f64,
    unit: &'static str,
    holds: bool,
}

struct Summary {
    run: Run,
    report: Report,
    received: Counts,
    e2e: [f64; 3],
    rss_start: u64,
    rss_warm: u64,
    rss_end: u64,
    rss_max: u64,
    cpu_percent: f64,
    conserved: bool,
    verdicts: Vec<Verdict>,
}

fn summarize(args: &Args, run: Run, report: Report, receiver: &Receiver) -> Summary {
    let received = receiver.settle(Duration::from_millis(200), Duration::from_secs(5));
    let s = &report.snapshot;
    let c = &s.counters;
    let percentile = |q: f64| {
        receiver
            .latency()
            .percentile(q)
            .map_or(f64::NAN, |ns| ns as f64 / 1e6)
    };
    let e2e = [percentile(0.5), percentile(0.99), percentile(0.999)];
    let rss: Vec<u64> = run.samples.iter().map(|x| x.rss_bytes).collect();
    // Warm-up: the first tenth of the run (at least one sample in).
    let warm_index = (rss.len() / 10).max(1).min(rss.len().saturating_sub(1));
    let rss_start = rss.first().copied().unwrap_or(0);
    let rss_warm = rss.get(warm_index).copied().unwrap_or(0);
    let rss_end = procfs::rss_bytes("self").unwrap_or(0);
    let rss_max = rss.iter().copied().max().unwrap_or(0).max(rss_end);
    let cpu_ns = run.samples.last().map_or(0, |x| x.worker_cpu_ns)
        - run.samples.first().map_or(0, |x| x.worker_cpu_ns);
    let cpu_percent = 100.0 * cpu_ns as f64 / run.elapsed.as_nanos().max(1) as f64;
    let achieved = run.recorded as f64 / run.elapsed.as_secs_f64();
    let (conserved, dropped, recorded, memory) = match report.aggregation {
        // Every value the threads recorded is in the pipeline's totals and
        // in the totals the receiver holds.
        Some(a) => {
            let aggregated: u64 = a.stats.recorded.iter().sum();
            let received_values = received.totals();
            (
                aggregated == run.recorded && received_values == run.recorded,
                aggregated.saturating_sub(received_values),
                aggregated,
                a.memory_used_bytes,
            )
        }
        // Every event: delivered, dropped with a reason, failed, refused,
        // still buffered, or in a datagram the receiver knows is missing.
        None => (
            s.is_conserved()
                && s.events_received == run.recorded
                && c.datagrams_sent == received.datagrams + received.missing
                && (received.missing > 0 || c.events_sent == received.events),
            s.events_received.saturating_sub(received.events),
            s.events_received,
            s.memory_bytes,
        ),
    };
    let drop_rate = 100.0 * dropped as f64 / recorded.max(1) as f64;
    let growth_limit = if args.scenario == "soak" { 1.0 } else { 10.0 };
    // 10% of a core at 100k events/s, in proportion above that.
    let cpu_limit = 10.0 * (achieved / 100_000.0).max(1.0);
    let verdicts = vec![
        Verdict {
            name: "drop rate",
            value: drop_rate,
            limit: 1.0,
            unit: "%",
            holds: drop_rate < 1.0,
        },
        Verdict {
            name: if report.aggregation.is_some() {
                "p99 totals read to receipt"
            } else {
                "p99 record to receipt"
            },
            value: e2e[1],
            limit: 100.0,
            unit: "ms",
            holds: e2e[1] < 100.0,
        },
        Verdict {
            name: "pipeline memory",
            value: memory as f64 / 1e6,
            limit: 10.0,
            unit: "MB",
            holds: memory < 10_000_000,
        },
        Verdict {
            name: "RSS growth after warm-up",
            value: rss_end.saturating_sub(rss_warm) as f64 / 1e6,
            limit: growth_limit,
            unit: "MB",
            holds: (rss_end.saturating_sub(rss_warm) as f64) < growth_limit * 1e6,
        },
        Verdict {
            name: "worker CPU",
            value: cpu_percent,
            limit: cpu_limit,
            unit: "% of a core",
            holds: cpu_percent < cpu_limit,
        },
        Verdict {
            name: "conservation",
            value: f64::from(u8::from(conserved)),
            limit: 1.0,
            unit: "",
            holds: conserved,
        },
    ];
    Summary {
        run,
        report,
        received,
        e2e,
        rss_start,
        rss_warm,
        rss_end,
        rss_max,
        cpu_percent,
        conserved,
        verdicts,
    }
}

fn print_text(args: &Args, m: &Summary) {
    println!(
        "\n{:>7} {:>10} {:>11} {:>11} {:>9} {:>7} {:>8} {:>6}",
        "t (s)", "offered/s", "recorded", "delivered", "dropped", "lanes%", "RSS MB", "CPU%"
    );
    let mut previous_cpu = m.run.samples.first().map_or(0, |x| x.worker_cpu_ns);
    let mut previous_at = Duration::ZERO;
    // At most about 40 rows: every n-th sample.
    let step = (m.run.samples.len() / 40).max(1);
    for (i, x) in m.run.samples.iter().enumerate() {
        if i % step != 0 && i + 1 != m.run.samples.len() {
            continue;
        }
        let span = (x.at - previous_at).as_nanos().max(1) as f64;
        let cpu = 100.0 * (x.worker_cpu_ns - previous_cpu) as f64 / span;
        (previous_cpu, previous_at) = (x.worker_cpu_ns, x.at);
        println!(
            "{:>7.1} {:>10.0} {:>11} {:>11} {:>9} {:>7.1} {:>8.1} {:>6.1}{}",
            x.at.as_secs_f64(),
            x.offered_rate,
            x.recorded,
            x.delivered,
            x.dropped,
            x.lane_utilization,
            x.rss_bytes as f64 / 1e6,
            if i == 0 { 0.0 } else { cpu },
            if x.breaker_open { "  breaker open" } else { "" }
        );
    }
    let s = &m.report.snapshot;
    let c = &s.counters;
    println!(
        "\nscenario {}: {} events/s offered for {:.1} s from {} threads, aggregation {}",
        args.scenario,
        args.rate,
        m.run.elapsed.as_secs_f64(),
        args.threads,
        if m.report.aggregation.is_some() {
            "source"
        } else {
            "off"
        }
    );
    if let Some(a) = m.report.aggregation {
        println!(
            "recorded {} ({:.0}/s) into {} series, received in totals {}; {} records in {} datagrams ({:.1}/s), {} failed to send",
            a.stats.recorded.iter().sum::<u64>(),
            a.stats.recorded.iter().sum::<u64>() as f64 / m.run.elapsed.as_secs_f64(),
            a.stats.tables.series,
            m.received.totals(),
            a.sent.series_sent,
            a.sent.datagrams_sent,
            a.sent.datagrams_sent as f64 / m.run.elapsed.as_secs_f64(),
            a.sent.send_errors
        );
    }
    if m.report.aggregation.is_none() {
        println!(
            "recorded {} ({:.0}/s), delivered {}, dropped {} ({}), send failed {}, refused {}, buffered {}, missing datagrams {}",
            s.events_received,
            s.events_received as f64 / m.run.elapsed.as_secs_f64(),
            m.received.events,
            s.drops.total(),
            DropReason::ALL
                .iter()
                .filter(|&&r| s.drops.by_reason(r) > 0)
                .map(|&r| format!("{} {}", r.as_str(), s.drops.by_reason(r)))
                .collect::<Vec<_>>()
                .join(", "),
            c.events_send_failed,
            c.events_refused,
            s.buffered(),
            m.received.missing
        );
    }
    if let Some(q) = m.run.record_latency {
        println!(
            "record call: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns (one call in 16 timed)",
            q.p50, q.p99, q.p999, q.max
        );
    }
    println!(
        "{}: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
        if m.report.aggregation.is_some() {
            "totals read to receipt"
        } else {
            "record to receipt"
        },
        m.e2e[0],
        m.e2e[1],
        m.e2e[2]
    );
    println!(
        "RSS: start {:.1} MB, after warm-up {:.1} MB, end {:.1} MB, max {:.1} MB; pipeline {:.2} MB",
        m.rss_start as f64 / 1e6,
        m.rss_warm as f64 / 1e6,
        m.rss_end as f64 / 1e6,
        m.rss_max as f64 / 1e6,
        m.run.samples.last().map_or(0, |x| x.pipeline_bytes) as f64 / 1e6
    );
    println!("worker CPU: {:.2}% of a core", m.cpu_percent);
    println!();
    for v in &m.verdicts {
        println!(
            "{:<5} {:<30} {:>10.3} {} (limit {:.1} {})",
            if v.holds { "PASS" } else { "FAIL" },
            v.name,
            v.value,
            v.unit,
            v.limit,
            v.unit
        );
    }
}

fn print_json(args: &Args, m: &Summary) {
    let s = &m.report.snapshot;
    let c = &s.counters;
    let q = m.run.record_latency;
    let json = serde_json::json!({
        "scenario": args.scenario,
        "rate": args.rate,
        "threads": args.threads,
        "duration_s": m.run.elapsed.as_secs_f64(),
        "aggregation": if m.report.aggregation.is_some() { "source" } else { "off" },
        "recorded": m.report.aggregation.map_or(s.events_received, |a| a.stats.recorded.iter().sum()),
        "delivered": m.received.events + m.received.totals(),
        "dropped": s.drops.total(),
        "dropped_by_reason": DropReason::ALL
            .iter()
            .map(|&r| (r.as_str().to_string(), serde_json::json!(s.drops.by_reason(r))))
            .collect::<serde_json::Map<_, _>>(),
        "send_failed": c.events_send_failed,
        "refused": c.events_refused,
        "buffered": s.buffered(),
        "missing_datagrams": m.received.missing,
        "record_ns": q.map(|q| serde_json::json!({"p50": q.p50, "p99": q.p99, "p999": q.p999, "max": q.max})),
        "end_to_end_ms": {"p50": m.e2e[0], "p99": m.e2e[1], "p999": m.e2e[2]},
        "rss_bytes": {"start": m.rss_start, "warm": m.rss_warm, "end": m.rss_end, "max": m.rss_max},
        "pipeline_bytes": m.run.samples.last().map_or(0, |x| x.pipeline_bytes),
        "worker_cpu_percent": m.cpu_percent,
        "lane_utilization_percent": m.run.samples.iter().map(|x| x.lane_utilization).collect::<Vec<_>>(),
        "rss_timeline_bytes": m.run.samples.iter().map(|x| x.rss_bytes).collect::<Vec<_>>(),
        "conserved": m.conserved,
        "slo": m.verdicts.iter().map(|v| serde_json::json!({
            "name": v.name, "value": v.value, "limit": v.limit, "unit": v.unit, "holds": v.holds
        })).collect::<Vec<_>>(),
    });
    println!("{json}");
}

fn main() -> ExitCode {
    let args = Args::from(Cli::parse());
    let receiver = match cli::loopback_receiver() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let stats = match cli::start_stats(receiver.address().to_string(), |c| c) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let sample_every = if args.scenario == "soak" {
        Duration::from_secs(10).min(args.duration / 10)
    } else {
        Duration::from_secs(1).min(args.duration / 10)
    };
    if !args.json {
        eprintln!(
            "scenario {}: {} events/s for {:.0} s from {} threads...",
            args.scenario,
            args.rate,
            args.duration.as_secs_f64(),
            args.threads
        );
    }
    let plan = Plan {
        profile: Profile::steady(args.rate),
        duration: args.duration,
        threads: args.threads,
        sample_every,
    };
    let run = load::run(
        &stats,
        &|| {
            let c = receiver.counts();
            c.events + c.totals()
        },
        &plan,
    );
    let report = match stats.shutdown(Duration::from_secs(5)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shutdown: {e}");
            return ExitCode::FAILURE;
        }
    };
    let summary = summarize(&args, run, report, &receiver);
    if args.json {
        print_json(&args, &summary);
    } else {
        print_text(&args, &summary);
    }
    let failed = summary.verdicts.iter().any(|v| !v.holds);
    if !summary.conserved || (args.check && failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

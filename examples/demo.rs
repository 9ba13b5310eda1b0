//! The whole pipeline on one machine: several threads record a mixed
//! workload through `stats-std`, the worker sends datagrams over loopback
//! UDP, and an in-process receiver decodes every one with the core decoder.
//! The summary says where every event went.
//!
//! ```text
//! cargo run --release --example demo -- [--aggregation source|off] [--threads N] [--rate EVENTS_PER_S] [--duration SECONDS] [--target ADDRESS] [--codec CODEC]
//! ```
//!
//! `--aggregation source` (the default) folds values into per-series totals
//! where they are recorded and sends the totals each interval; `off` sends
//! every value as an event through the lanes. `--rate 0` records as fast as
//! the threads can (with events, the lanes fill and the drop policy has work
//! to do). `--target` sends to an external receiver instead of the
//! in-process one (then only the sender's side is reported), for example a
//! `stats-collector` or, with `--codec statsd|dogstatsd`, any StatsD agent;
//! `ADDRESS` is `host:port`, `udp://host:port`, `unixgram:///path` or
//! `unix:///path`. A run that delivered nothing (no datagram sent: nothing
//! listening there) says so and exits 1.

use clap::Parser;
use stats_core::wire::Codec;
use stats_core::{DropReason, Kind, Priority};
use stats_pipeline::cli;
use stats_pipeline::receiver::Receiver;
use stats_std::{AggregationMode, Report, Stats};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The whole pipeline on one machine: record, send, receive, account.
#[derive(Parser)]
struct Args {
    /// `source`: fold values into per-series totals where they are
    /// recorded; `off`: every value an event through the lanes (the
    /// configuration's mode when not given).
    #[arg(long, value_parser = aggregation)]
    aggregation: Option<AggregationMode>,
    /// Recording threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Events a second, all threads together; 0 records as fast as they
    /// can.
    #[arg(long, default_value_t = 1_000_000)]
    rate: u64,
    /// Seconds to record for.
    #[arg(long, default_value = "5", value_parser = cli::seconds)]
    duration: Duration,
    /// Send to this receiver instead of the in-process one (`host:port`,
    /// `udp://`, `unixgram://`, `unix://`).
    #[arg(long)]
    target: Option<String>,
    /// native, statsd, dogstatsd or dogstatsd-distribution (the
    /// configuration's codec when not given).
    #[arg(long, value_parser = codec)]
    codec: Option<Codec>,
}

fn aggregation(name: &str) -> Result<AggregationMode, String> {
    AggregationMode::from_name(name).ok_or(format!("expected source or off, got {name:?}"))
}

fn codec(name: &str) -> Result<Codec, String> {
    Codec::from_name(name).ok_or(format!(
        "expected native, statsd, dogstatsd or dogstatsd-distribution, got {name:?}"
    ))
}

/// Values recorded, by kind (`Kind as usize`).
type ByKind = [AtomicU64; 4];

/// One recording thread: a web service's mix of requests, queries, queue
/// depths, payload sizes and per-tenant counters; tallies what it recorded
/// by kind into `by_kind` at the end.
fn record(
    stats: &Stats,
    thread: usize,
    per_thread_rate: u64,
    until: Instant,
    done: &AtomicU64,
    by_kind: &ByKind,
) {
    let routes = ["/", "/api/users", "/api/orders", "/health"];
    let requests: Vec<_> = routes
        .iter()
        .map(|r| {
            stats
                .counter("http.requests", &[("route", r), ("status", "200")])
                .unwrap()
        })
        .collect();
    let errors = stats
        .counter("http.errors", &[("status", "500")])
        .unwrap()
        .with_priority(Priority::High);
    let query = stats.timer("db.query", &[("table", "orders")]).unwrap();
    let depth = stats.gauge("queue.depth", &[("queue", "mail")]).unwrap();
    let payload = stats
        .histogram("http.payload_bytes", &[])
        .unwrap()
        .with_priority(Priority::Low);
    let tenants: Vec<String> = (0..50).map(|t| format!("tenant-{t}")).collect();
    let started = Instant::now();
    let mut i: u64 = thread as u64;
    let mut recorded = 0u64;
    let mut kinds = [0u64; 4];
    while Instant::now() < until {
        // Pace in slices of 1 ms; rate 0 means as fast as possible.
        let slice = if per_thread_rate == 0 {
            1_000
        } else {
            (per_thread_rate / 1_000).max(1)
        };
        for _ in 0..slice {
            i = i
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let kind = match (i >> 33) % 20 {
                0..=9 => {
                    requests[(i >> 40) as usize % routes.len()].increment();
                    Kind::Counter
                }
                10 => {
                    errors.increment();
                    Kind::Counter
                }
                11..=13 => {
                    query.record(Duration::from_micros(200 + (i >> 50)));
                    Kind::Timer
                }
                14..=15 => {
                    depth.set(((i >> 45) % 1_000) as f64);
                    Kind::Gauge
                }
                16..=17 => {
                    payload.record(((i >> 40) % 65_536) as f64);
                    Kind::Histogram
                }
                _ => {
                    let tenant = &tenants[(i >> 36) as usize % tenants.len()];
                    stats.counter_add("tenant.requests", 1, &[("tenant", tenant)]);
                    Kind::Counter
                }
            };
            kinds[kind as usize] += 1;
        }
        recorded += slice;
        done.fetch_add(slice, Ordering::Relaxed);
        if let Some(ns) = (recorded * 1_000_000_000).checked_div(per_thread_rate) {
            let due = started + Duration::from_nanos(ns);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
    }
    for (total, n) in by_kind.iter().zip(kinds) {
        total.fetch_add(n, Ordering::Relaxed);
    }
}

/// Draws the progress bar over itself on a terminal; nothing into a pipe
/// or a file.
fn progress(done: u64, elapsed: Duration, total: Duration) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let fraction = (elapsed.as_secs_f64() / total.as_secs_f64()).min(1.0);
    let filled = (fraction * 30.0) as usize;
    let rate = done as f64 / elapsed.as_secs_f64().max(1e-9);
    eprint!(
        "\r[{}{}] {:>3.0}%  {:>11} events  {:>6.2} M/s",
        "#".repeat(filled),
        " ".repeat(30 - filled),
        fraction * 100.0,
        done,
        rate / 1e6
    );
    let _ = std::io::stderr().flush();
}

fn main() -> ExitCode {
    let args = Args::parse();
    let threads = usize::from(args.threads);
    let (target, receiver) = match &args.target {
        Some(t) => (t.clone(), None),
        None => match cli::loopback_receiver() {
            Ok(r) => (r.address().to_string(), Some(r)),
            Err(code) => return code,
        },
    };
    let stats = match cli::start_stats(target.clone(), |c| {
        let codec = args.codec.unwrap_or(c.codec);
        let aggregation = args.aggregation.unwrap_or(c.aggregation.mode);
        c.with_codec(codec).with_aggregation(aggregation)
    }) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mode = stats.config().aggregation.mode;
    let codec = stats.config().codec;
    println!(
        "recording from {} threads for {:.1} s at {} to {target} ({}, aggregation {mode})",
        args.threads,
        args.duration.as_secs_f64(),
        if args.rate == 0 {
            "full speed".to_string()
        } else {
            format!("{} events/s", args.rate)
        },
        stats.config().codec,
    );
    let done = Arc::new(AtomicU64::new(0));
    let by_kind: Arc<ByKind> = Arc::default();
    let started = Instant::now();
    let until = started + args.duration;
    let per_thread = args.rate / threads as u64;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (stats, done, by_kind) = (stats.clone(), done.clone(), by_kind.clone());
            thread::spawn(move || record(&stats, t, per_thread, until, &done, &by_kind))
        })
        .collect();
    while Instant::now() < until {
        thread::sleep(Duration::from_millis(200));
        progress(
            done.load(Ordering::Relaxed),
            started.elapsed(),
            args.duration,
        );
    }
    for w in workers {
        let _ = w.join();
    }
    let elapsed = started.elapsed();
    progress(done.load(Ordering::Relaxed), elapsed, args.duration);
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let report = match stats.shutdown(Duration::from_secs(5)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shutdown: {e}");
            return ExitCode::FAILURE;
        }
    };

    let code = if mode == AggregationMode::Source {
        let recorded = by_kind.each_ref().map(|n| n.load(Ordering::Relaxed));
        let code = summarize_totals(
            &report,
            elapsed,
            recorded,
            receiver.as_ref().filter(|_| codec == Codec::Native),
        );
        if codec != Codec::Native && receiver.is_some() {
            println!(
                "end to end: not checked: {codec} lines carry each interval's change, not the totals (the native codec's are checked)"
            );
        }
        code
    } else {
        summarize_events(&report, elapsed, receiver)
    };
    // Sent nowhere: the sender's own books balance, but that is no success.
    let (sent, failed) = match &report.aggregation {
        Some(a) => (a.sent.datagrams_sent, a.sent.send_errors),
        None => (
            report.snapshot.counters.datagrams_sent,
            report.snapshot.counters.send_errors,
        ),
    };
    if sent == 0 {
        eprintln!(
            "nothing was delivered to {target}: no datagram was sent ({failed} sends failed); is anything listening there?"
        );
        return ExitCode::FAILURE;
    }
    code
}

/// The summary of a run that sent every value as an event: where each
/// went, and with an in-process receiver whether they all arrived.
fn summarize_events(report: &Report, elapsed: Duration, receiver: Option<Receiver>) -> ExitCode {
    let s = &report.snapshot;
    let c = &s.counters;
    println!(
        "\nrecorded            {:>12}  ({:.2} M events/s)",
        s.events_received,
        s.events_received as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!("sent                {:>12}", c.events_sent);
    println!("dropped             {:>12}", s.drops.total());
    for reason in DropReason::ALL {
        let n = s.drops.by_reason(reason);
        if n > 0 {
            let by: Vec<String> = Priority::ALL
                .iter()
                .rev()
                .map(|&p| {
                    format!(
                        "{} {}",
                        format!("{p:?}").to_lowercase(),
                        s.drops.get(reason, p)
                    )
                })
                .collect();
            println!("  {:<18}{n:>12}  ({})", reason.as_str(), by.join(", "));
        }
    }
    println!("send failed         {:>12}", c.events_send_failed);
    println!("refused by encoder  {:>12}", c.events_refused);
    println!("still buffered      {:>12}", s.buffered());
    println!(
        "datagrams           {:>12}  ({} send calls)",
        c.datagrams_sent, c.send_calls
    );
    if c.datagrams_sent > 0 {
        println!(
            "events / datagram   {:>12.1}",
            c.events_sent as f64 / c.datagrams_sent as f64
        );
        println!(
            "bytes / event       {:>12.1}",
            c.bytes_sent as f64 / c.events_sent.max(1) as f64
        );
    }
    if let (Some(q), true) = (s.end_to_end_latency, c.datagrams_sent > 0) {
        println!(
            "record to socket    p50 {:.2} ms, p99 {:.2} ms",
            q.p50 as f64 / 1e6,
            q.p99 as f64 / 1e6
        );
    }
    println!(
        "interner            {} hits, {} misses, {} evictions",
        report.interner.hits, report.interner.misses, report.interner.evictions
    );
    println!("health              {}", report.health.status.as_str());
    for check in report
        .health
        .checks
        .iter()
        .filter(|c| c.status != stats_core::Status::Healthy)
    {
        println!(
            "  {}: {:.3} (degraded above {})",
            check.name, check.value, check.degraded_above
        );
    }
    let sender_conserved = s.is_conserved();
    println!(
        "\nsender:   recorded = sent + dropped + send failed + refused + buffered: {}",
        verdict(sender_conserved)
    );
    let Some(receiver) = receiver else {
        return exit_code(sender_conserved);
    };
    // Let the receiver take the last datagrams.
    let received = receiver.settle(Duration::from_millis(100), Duration::from_secs(2));
    let got = received.events;
    let lost_in_network = c.events_sent.saturating_sub(got);
    println!(
        "receiver: {} events in {} datagrams ({} bytes), {} undecodable, {} datagrams missing by sequence (native format only)",
        got, received.datagrams, received.bytes, received.bad, received.missing
    );
    let latency = receiver.latency();
    if let Some(p50) = latency.percentile(0.5) {
        println!(
            "record to receiver  p50 {:.2} ms, p99 {:.2} ms",
            p50 as f64 / 1e6,
            latency.percentile(0.99).unwrap_or(0) as f64 / 1e6
        );
    }
    let accounted = got + s.drops.total() + c.events_send_failed + c.events_refused + s.buffered();
    let holds = sender_conserved && accounted == s.events_received;
    println!(
        "end to end: recorded {} = received {} + dropped {} + send failed {} + refused {} + buffered {}: {}",
        s.events_received,
        got,
        s.drops.total(),
        c.events_send_failed,
        c.events_refused,
        s.buffered(),
        if holds {
            "holds".to_string()
        } else {
            format!("does not hold ({lost_in_network} events lost between socket and receiver)")
        }
    );
    exit_code(holds)
}

const KINDS: [&str; 4] = ["counters", "gauges", "timers", "histograms"];

/// `n` by kind, as `counters 1, gauges 2, ...`.
fn by_kind_text(n: &[u64; 4]) -> String {
    KINDS
        .iter()
        .zip(n)
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary of a run that aggregated at the source: values recorded by
/// the threads, aggregated by the pipeline, and standing in the totals the
/// receiver holds, by kind; they hold when all three agree.
fn summarize_totals(
    report: &Report,
    elapsed: Duration,
    recorded: [u64; 4],
    receiver: Option<&Receiver>,
) -> ExitCode {
    let Some(a) = report.aggregation else {
        eprintln!("no aggregation report");
        return ExitCode::FAILURE;
    };
    let total: u64 = recorded.iter().sum();
    let sent = &a.sent;
    println!(
        "\nrecorded            {total:>12}  ({:.2} M values/s)",
        total as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!("  by kind           {}", by_kind_text(&recorded));
    println!(
        "aggregated          {:>12}  into {} series ({} overflowed)",
        a.stats.recorded.iter().sum::<u64>(),
        a.stats.tables.series,
        a.stats.series_overflowed,
    );
    println!(
        "refused             {:>12}  (NaN or infinite)",
        report.rejected.not_finite
    );
    println!(
        "sent                {:>12}  series records in {} datagrams ({} passes, {} full), {} failed",
        sent.series_sent, sent.datagrams_sent, sent.passes, sent.full_passes, sent.send_errors
    );
    if sent.datagrams_sent > 0 {
        println!(
            "datagrams / s       {:>12.1}  ({:.1} bytes each, {:.3} bytes per value)",
            sent.datagrams_sent as f64 / elapsed.as_secs_f64(),
            sent.bytes_sent as f64 / sent.datagrams_sent as f64,
            sent.bytes_sent as f64 / total.max(1) as f64
        );
    }
    println!(
        "memory              {:>12.1} MiB reserved of {:.1} MiB; {:.2} MiB of cells in use",
        a.memory_bytes as f64 / (1 << 20) as f64,
        a.memory_max_bytes as f64 / (1 << 20) as f64,
        (a.stats.tables.pool_used * 8) as f64 / (1 << 20) as f64
    );
    println!("health              {}", report.health.status.as_str());
    let sender_holds = a.stats.recorded == recorded;
    println!(
        "\nsender:   recorded = aggregated, by kind: {}",
        verdict(sender_holds)
    );
    let Some(receiver) = receiver else {
        return exit_code(sender_holds);
    };
    let got = receiver.settle(Duration::from_millis(200), Duration::from_secs(3));
    println!(
        "receiver: {} series records in {} datagrams ({} bytes), {} undecodable, {} datagrams missing by sequence, {} duplicated",
        got.records, got.datagrams, got.bytes, got.bad, got.missing, got.duplicates
    );
    let latency = receiver.latency();
    if let Some(p50) = latency.percentile(0.5) {
        println!(
            "totals read to receiver  p50 {:.2} ms, p99 {:.2} ms (a value waits up to interval_ms before it is read)",
            p50 as f64 / 1e6,
            latency.percentile(0.99).unwrap_or(0) as f64 / 1e6
        );
    }
    let received = got.totals_by_kind;
    let holds = sender_holds && received == recorded;
    println!(
        "end to end: recorded {total} ({}) = received {} ({}): {}",
        by_kind_text(&recorded),
        got.totals(),
        by_kind_text(&received),
        if holds { "holds" } else { "does not hold" }
    );
    exit_code(holds)
}

/// How a conservation check reads in the summary.
fn verdict(holds: bool) -> &'static str {
    if holds { "holds" } else { "VIOLATED" }
}

/// The process's exit: success when the checks hold.
fn exit_code(holds: bool) -> ExitCode {
    if holds {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

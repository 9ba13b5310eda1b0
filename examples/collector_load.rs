//! The collector's load tool: a `stats-collector` server in this process,
//! fed over loopback, measured.
//!
//! ```text
//! cargo run --release --example collector_load -- ingest [--ingest-threads N] [--senders K] [--seconds S]
//! cargo run --release --example collector_load -- series [--series 100000]
//! cargo run --release --example collector_load -- remote-write [--series 100000] [--seconds S]
//! cargo run --release --example collector_load -- records [--ingest-threads N] [--senders K] [--series S] [--seconds S] [--collectd /usr/sbin/collectd --rate R]
//! cargo run --release --example collector_load -- statsd [--rate 6000000] [--seconds S] [--collectd /usr/sbin/collectd] [--check]
//! ```
//!
//! * `ingest`: K sender threads encode the reference workload (ten
//!   series, mixed kinds, full datagrams) and send it as fast as they can
//!   to N receiving threads; the events the collector aggregated per
//!   second, per second of its receiving threads' CPU (per core), and the
//!   datagrams the kernel dropped (senders' sequence gaps).
//! * `series`: that many counter series (StatsD lines, three tags each)
//!   into a collector allowed that many; its resident memory before and
//!   after, and what it counts against its memory budget.
//! * `remote-write`: that many series remote-written every 100 ms to an
//!   engine stand-in on loopback that reads each request and answers 200;
//!   samples sent per second, the longest an export held the collector's
//!   state at once, and the longest a probe taking the lock as a receiving
//!   thread does (every 100 µs) waited for it: the longest pause ingest saw.
//!
//! * `records`: the default mode's datagrams: K sender threads each
//!   refreshing `--series` series (counters and gauges, two tags) as
//!   series records, every one of them in each pass, as fast as they can,
//!   to N receiving threads; records taken in a second and per CPU-second
//!   of the receiving threads, datagrams the kernel dropped, and the
//!   collector's resident memory per series held. With `--collectd`, the
//!   peer in the same run: the same series as StatsD counter lines (no
//!   StatsD server reads series records), every one in each pass, at
//!   `--rate` lines a second, to collectd's statsd plugin: its share of
//!   the lines, CPU a line, and resident memory per series.
//! * `statsd`: StatsD counter lines (100 names, about 100 lines to a
//!   1,400-byte datagram) offered at `--rate` lines a second by one paced
//!   sending thread, to the collector and then, with `--collectd`, to
//!   collectd's statsd plugin (read back through its `write_prometheus`
//!   plugin): each receiver's share of the lines accounted for, and its
//!   CPU a line (the collector's threads; collectd's whole process).
//!   `--check` fails unless the collector accounts for at least 99% and
//!   spends no more CPU a line than collectd.
//!
//! Both sides share the machine's cores: on a 2-core machine the senders
//! take CPU the receivers would have. The CPU-time figures say what the
//! collector itself costs.

use clap::{Parser, ValueEnum};
use stats_collector::outputs::prometheus;
use stats_collector::{Server, Settings};
use stats_core::wire::{DEFAULT_MAX_DATAGRAM, Encoder, EncoderConfig};
use stats_pipeline::series_load::SeriesSender;
use stats_pipeline::{http, procfs, workload};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A collector in this process, fed over loopback, measured.
#[derive(Parser)]
struct Args {
    /// What to measure.
    #[arg(value_enum)]
    mode: Mode,
    /// The collector's receiving threads (ingest, records, statsd).
    #[arg(long, default_value_t = 1)]
    ingest_threads: usize,
    /// Sending threads (ingest, records).
    #[arg(long, default_value_t = 1)]
    senders: usize,
    /// Series (series, remote-write; records: each sender's).
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Seconds to run (ingest, remote-write, statsd).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// StatsD lines a second offered (statsd; records: to collectd).
    #[arg(long, default_value_t = 6_000_000.0)]
    rate: f64,
    /// collectd's binary, to measure it after the collector (statsd,
    /// records).
    #[arg(long, value_name = "PATH")]
    collectd: Option<std::path::PathBuf>,
    /// Fail unless the collector accounts for 99% of the lines and spends
    /// no more CPU a line than collectd (statsd).
    #[arg(long)]
    check: bool,
}

/// The measurements, as the list above gives them.
#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Ingest,
    Series,
    RemoteWrite,
    Records,
    Statsd,
}

fn main() -> ExitCode {
    let a = Args::parse();
    let result = match a.mode {
        Mode::Ingest => ingest(&a),
        Mode::Series => series(&a),
        Mode::RemoteWrite => remote_write(&a),
        Mode::Records => records(&a),
        Mode::Statsd => statsd(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn start(settings: Settings) -> Result<Server, String> {
    Server::start(&settings.with_http(None)).map_err(|e| format!("cannot start the collector: {e}"))
}

/// CPU time of the collector's receiving threads (`collector-rx-N`), seconds.
fn receivers_cpu(threads: usize) -> f64 {
    (0..threads)
        .filter_map(|i| procfs::thread_cpu_ns(&format!("collector-rx-{i}")))
        .sum::<u64>() as f64
        / 1e9
}

fn ingest(a: &Args) -> Result<(), String> {
    let server = start(Settings::on_loopback().with_ingest_threads(a.ingest_threads))?;
    let target = server.udp_address();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let senders: Vec<_> = (0..a.senders)
        .map(|i| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
                socket.connect(target).expect("the collector's address");
                let (registry, ids) = workload::registry();
                let events = workload::events(&ids, 10_000, 1_700_000_000_000_000_000);
                let mut encoder = Encoder::new(EncoderConfig::new(1 + i as u64)).expect("config");
                let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
                while !stop.load(Ordering::Relaxed) {
                    let mut n = 0;
                    workload::encode_all(&mut encoder, &registry, &events, &mut buf, |d| {
                        n += u64::from(socket.send(d).is_ok());
                    });
                    sent.fetch_add(n, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let events = || server.shards().totals().events;
    let (events_0, cpu_0, start) = (events(), receivers_cpu(a.ingest_threads), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    let (events_1, cpu_1, elapsed) = (events(), receivers_cpu(a.ingest_threads), start.elapsed());
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.join();
    }
    std::thread::sleep(Duration::from_millis(200));
    let (received, lost) = received_and_lost(&server);
    let aggregated = (events_1 - events_0) as f64;
    let cpu = cpu_1 - cpu_0;
    println!(
        "ingest: {} receiving threads, {} senders, {:.1} s",
        a.ingest_threads,
        a.senders,
        elapsed.as_secs_f64()
    );
    let secs = elapsed.as_secs_f64();
    let datagrams = (sent.load(Ordering::Relaxed), received, lost);
    intake(("events", "an event"), aggregated, cpu, secs, datagrams);
    Ok(())
}

/// The datagrams the collector received from its senders, and those it
/// counted lost (sequence gaps: the kernel dropped them).
fn received_and_lost(server: &Server) -> (u64, u64) {
    (server.shards().counters().senders())
        .fold((0, 0), |(r, l), (_, s)| (r + s.received, l + s.lost))
}

/// Prints what the receiving threads took in: `taken` of `what` (plural,
/// and one) in `secs`, with `cpu` seconds of their CPU, and the datagrams
/// sent, received and dropped by the kernel.
fn intake(what: (&str, &str), taken: f64, cpu: f64, secs: f64, datagrams: (u64, u64, u64)) {
    let (sent, received, lost) = datagrams;
    println!(
        "  {:.2}M {}/s taken in; {:.2}M per CPU-second of the receiving threads ({:.0} ns {}); their CPU {:.0}% of a core",
        taken / secs / 1e6,
        what.0,
        taken / cpu / 1e6,
        cpu * 1e9 / taken,
        what.1,
        100.0 * cpu / secs
    );
    println!(
        "  datagrams: {sent} sent, {received} received, {lost} dropped by the kernel ({:.1}%)",
        100.0 * lost as f64 / (received + lost).max(1) as f64
    );
}

/// Sends `n` counter series as StatsD lines, 20 to a datagram, and waits
/// until the collector holds them all.
fn fill(server: &Server, n: usize) -> Result<(), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket
        .connect(server.udp_address())
        .map_err(|e| e.to_string())?;
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "app.requests.{i}:1|c|#service:checkout,region:eu-west-1,host:web-{:02}",
                i % 50
            )
        })
        .collect();
    let series = || server.shards().named();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Resent until every series is there (UDP may drop some on the way).
    while series() < n {
        for chunk in lines.chunks(20) {
            let _ = socket.send(chunk.join("\n").as_bytes());
            // Paced: the collector's socket buffer is 4 MiB.
            std::thread::sleep(Duration::from_micros(20));
        }
        if Instant::now() > deadline {
            return Err(format!("{} of {n} series after 60 s", series()));
        }
    }
    Ok(())
}

fn limits_for(series: usize) -> stats_collector::Limits {
    let mut limits = stats_collector::Limits::default();
    limits.max_series = series;
    limits.max_memory = 4 << 30;
    limits
}

fn series(a: &Args) -> Result<(), String> {
    let rss = || procfs::rss_bytes("self").unwrap_or(0) as f64 / (1 << 20) as f64;
    let before = rss();
    let server = start(Settings::on_loopback().with_limits(limits_for(a.series)))?;
    let started = rss();
    fill(&server, a.series)?;
    let after = rss();
    let shards = server.shards();
    let counted = shards.memory().tables() as f64 / (1 << 20) as f64;
    let render = Instant::now();
    let view = shards.view();
    let text = prometheus::render_metrics(&view);
    let render = render.elapsed();
    println!("series: {} series held", view.series_held());
    println!(
        "  RSS {before:.1} MiB before, {started:.1} MiB started, {after:.1} MiB holding them: {:.0} bytes a series; counted against --max-memory: {counted:.1} MiB",
        (after - started) * (1 << 20) as f64 / a.series as f64
    );
    println!(
        "  /metrics for them: {:.1} MiB of text in {:.0} ms",
        text.len() as f64 / (1 << 20) as f64,
        render.as_secs_f64() * 1e3
    );
    Ok(())
}

/// An engine stand-in: reads each request whole and answers 200; counts
/// the bytes it read.
fn engine(listener: TcpListener, read: Arc<AtomicU64>) {
    for stream in listener.incoming().flatten() {
        let read = read.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream.try_clone().expect("a stream"));
            let mut out = stream;
            loop {
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let l = line.trim_end().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                read.fetch_add(length as u64, Ordering::Relaxed);
                if out
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

/// A counter of the collector's own in Prometheus text.
fn own(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn remote_write(a: &Args) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}/api/v1/write",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let read = Arc::new(AtomicU64::new(0));
    let bytes = read.clone();
    std::thread::spawn(move || engine(listener, bytes));
    let server = start(
        Settings::on_loopback()
            .with_limits(limits_for(a.series))
            .with_remote_write(&url)
            .with_export_interval(Duration::from_millis(100)),
    )?;
    fill(&server, a.series)?;
    let sent = || {
        let text = prometheus::render_metrics(&server.shards().counters());
        (
            own(&text, "stats_collector_push_samples_sent_total"),
            own(&text, "stats_collector_push_requests_total"),
            own(&text, "stats_collector_export_held_seconds"),
        )
    };
    // A probe that takes the receiving thread's shard's lock as that
    // thread does, every 100 µs: the longest it waited is the longest
    // pause ingest saw.
    let probing = Arc::new(AtomicBool::new(true));
    let probe = {
        let (shards, probing) = (server.shards().clone(), probing.clone());
        std::thread::spawn(move || {
            let mut longest = Duration::ZERO;
            let shard = shards.shard(0);
            while probing.load(Ordering::Relaxed) {
                // Only a lock held by another counts (a probe that is not
                // scheduled for a while, on busy cores, would count too).
                if shard.try_lock().is_err() {
                    let asked = Instant::now();
                    drop(shard.lock());
                    longest = longest.max(asked.elapsed());
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            longest
        })
    };
    let ((samples_0, requests_0, _), start) = (sent(), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(a.seconds));
    let ((samples_1, requests_1, held), elapsed) = (sent(), start.elapsed());
    probing.store(false, Ordering::Relaxed);
    let longest_wait = probe.join().unwrap_or_default();
    let secs = elapsed.as_secs_f64();
    let requests = requests_1 - requests_0;
    println!(
        "remote write: {} series every 100 ms, {secs:.1} s",
        a.series
    );
    println!(
        "  {:.2}M samples/s sent in {:.0} requests/s of {:.0} KiB on average ({:.1} MiB/s read by the engine)",
        (samples_1 - samples_0) / secs / 1e6,
        requests / secs,
        read.load(Ordering::Relaxed) as f64 / 1024.0 / (requests_1.max(1.0)),
        read.load(Ordering::Relaxed) as f64 / (1 << 20) as f64 / secs
    );
    println!(
        "  the longest an export held the collector's state at once {:.2} ms; the longest a probe taking the lock as ingest does waited {:.2} ms",
        held * 1e3,
        longest_wait.as_secs_f64() * 1e3
    );
    Ok(())
}

/// The StatsD comparison's datagrams: 100 counter names, one count each
/// line, as many lines as fit in 1,400 bytes; and the lines in each.
fn statsd_datagrams() -> (Vec<Vec<u8>>, usize) {
    let mut datagrams = Vec::new();
    let mut current = Vec::new();
    let mut lines = 0;
    let mut per = 0;
    for i in 0.. {
        // Every line as long as the others: every datagram holds as many.
        let line = format!("load.c{:02}:1|c", i % 100);
        if current.len() + line.len() + 1 > 1_400 {
            per = lines;
            datagrams.push(std::mem::take(&mut current));
            lines = 0;
            // Each datagram holds the same lines, in another order.
            if datagrams.len() == 100 {
                break;
            }
        }
        if !current.is_empty() {
            current.push(b'\n');
        }
        current.extend_from_slice(line.as_bytes());
        lines += 1;
    }
    (datagrams, per)
}

/// Sends `total` of `datagrams` (cycled) to `target`, paced at `per_second`
/// datagrams a second; the datagrams sent, and the seconds it took.
fn paced(target: &str, datagrams: &[Vec<u8>], total: u64, per_second: f64) -> (u64, f64) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
    socket.connect(target).expect("the receiver's address");
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = ((start.elapsed().as_secs_f64() * per_second) as u64).min(total);
        while sent < due {
            // A refused send (nobody there yet) is a line not accounted.
            let _ = socket.send(&datagrams[sent as usize % datagrams.len()]);
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    (sent, start.elapsed().as_secs_f64())
}

/// One receiver's figures in the comparison.
struct Measured {
    accounted: f64,
    cpu_s: f64,
    /// What its resident memory grew by (collectd's; 0 for ours, measured
    /// apart).
    rss_grown: f64,
}

fn statsd(a: &Args) -> Result<(), String> {
    let (datagrams, per) = statsd_datagrams();
    let per_second = a.rate / per as f64;
    let total = (per_second * a.seconds) as u64;
    let lines = (total * per as u64) as f64;
    println!(
        "statsd: {:.2}M counter lines a second offered for {:.1} s: {:.1}M lines in {total} datagrams of {per} lines",
        a.rate / 1e6,
        a.seconds,
        lines / 1e6
    );
    let ours = {
        let server = start(Settings::on_loopback().with_ingest_threads(a.ingest_threads))?;
        let target = server.udp_address().to_string();
        let cpu =
            || procfs::tasks_cpu_ns("self", |name| name.starts_with("collector-")).unwrap_or(0);
        let (cpu_0, events_0) = (cpu(), server.shards().totals().events);
        let (_, took) = paced(&target, &datagrams, total, per_second);
        // What is still in the socket buffers, taken in.
        std::thread::sleep(Duration::from_millis(500));
        let events = server.shards().totals().events - events_0;
        let m = Measured {
            accounted: events as f64,
            cpu_s: (cpu() - cpu_0) as f64 / 1e9,
            rss_grown: 0.0,
        };
        report("stats-collector", &m, lines, took);
        m
    };
    let Some(binary) = &a.collectd else {
        return Ok(());
    };
    let peer = collectd(binary, &datagrams, total, per_second, lines)?;
    if a.check {
        let (share, ns) = (ours.accounted / lines, ours.cpu_s * 1e9 / ours.accounted);
        let peer_ns = peer.cpu_s * 1e9 / peer.accounted.max(1.0);
        if share < 0.99 || ns > peer_ns {
            return Err(format!(
                "the collector accounted for {:.1}% of the lines at {ns:.0} ns of CPU a line (wanted 99% and at most collectd's {peer_ns:.0} ns)",
                share * 100.0
            ));
        }
        println!(
            "check: the collector accounts for 99% or more, at no more CPU a line than collectd"
        );
    }
    Ok(())
}

fn report(who: &str, m: &Measured, lines: f64, took: f64) {
    println!(
        "  {who:<16} {:6.2}% of the lines accounted for; {:.2} CPU-s, {:.0} ns of CPU a line (sending took {took:.2} s)",
        100.0 * m.accounted / lines,
        m.cpu_s,
        m.cpu_s * 1e9 / m.accounted.max(1.0)
    );
}

/// The same lines to collectd's statsd plugin (a process of its own, its
/// values read back from `write_prometheus`: the counters' totals).
fn collectd(
    binary: &std::path::Path,
    datagrams: &[Vec<u8>],
    total: u64,
    per_second: f64,
    lines: f64,
) -> Result<Measured, String> {
    let free_port = |proto_udp: bool| -> Result<u16, String> {
        let port = if proto_udp {
            UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
        } else {
            TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr())
        };
        port.map(|a| a.port()).map_err(|e| e.to_string())
    };
    let (statsd_port, http_port) = (free_port(true)?, free_port(false)?);
    let dir = std::env::temp_dir().join(format!("collectd-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let config = dir.join("collectd.conf");
    std::fs::write(
        &config,
        format!(
            r#"Hostname "load"
FQDNLookup false
Interval 1
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin statsd
LoadPlugin write_prometheus
<Plugin statsd>
  Host "127.0.0.1"
  Port "{statsd_port}"
</Plugin>
<Plugin write_prometheus>
  Port "{http_port}"
</Plugin>
"#,
            dir = dir.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(binary)
        .args(["-f", "-C"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let pid = child.id().to_string();
    let result = (|| {
        let counted = || -> Option<f64> {
            let text = http::get(SocketAddr::from(([127, 0, 0, 1], http_port)), "/metrics").ok()?;
            Some(
                text.lines()
                    .filter(|l| l.starts_with("collectd_statsd_derive_total{"))
                    .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                    .sum(),
            )
        };
        // Up when its endpoint answers.
        let deadline = Instant::now() + Duration::from_secs(10);
        while counted().is_none() {
            if Instant::now() > deadline {
                return Err("collectd did not start (is write_prometheus there?)".to_string());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let cpu = || procfs::tasks_cpu_ns(&pid, |_| true).unwrap_or(0);
        let rss = || procfs::rss_bytes(&pid).unwrap_or(0) as f64;
        let (cpu_0, rss_0) = (cpu(), rss());
        let target = format!("127.0.0.1:{statsd_port}");
        let (_, took) = paced(&target, datagrams, total, per_second);
        // Its CPU as the collector's is measured: to half a second after
        // the last datagram, before any scrape of its totals.
        std::thread::sleep(Duration::from_millis(500));
        let (cpu_s, rss_grown) = ((cpu() - cpu_0) as f64 / 1e9, rss() - rss_0);
        // Its totals go out every second: read until they stop moving.
        let mut last = -1.0;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            std::thread::sleep(Duration::from_millis(1_500));
            let now = counted().unwrap_or(0.0);
            if now == last || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        let m = Measured {
            accounted: last.max(0.0),
            cpu_s,
            rss_grown,
        };
        report("collectd", &m, lines, took);
        Ok(m)
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// One sender of the `records` mode, until `stop`; counts the datagrams
/// it sent into `sent`.
fn refresh(id: u64, target: SocketAddr, series: usize, stop: &AtomicBool, sent: &AtomicU64) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
    socket.connect(target).expect("the collector's address");
    let mut sender = SeriesSender::new(id, series);
    let mut buf = vec![0u8; DEFAULT_MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) {
        sender.pass(&mut buf, |d| {
            sent.fetch_add(u64::from(socket.send(d).is_ok()), Ordering::Relaxed);
        });
    }
}

fn records(a: &Args) -> Result<(), String> {
    let rss = || procfs::rss_bytes("self").unwrap_or(0) as f64;
    let held = a.senders * a.series;
    let rss_0 = rss();
    let server = start(
        Settings::on_loopback()
            .with_ingest_threads(a.ingest_threads)
            .with_limits(limits_for(held)),
    )?;
    let target = server.udp_address();
    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let records = || server.shards().totals().records;
    std::thread::scope(|s| {
        for i in 0..a.senders {
            let (stop, sent) = (&stop, &sent);
            s.spawn(move || refresh(100 + i as u64, target, a.series, stop, sent));
        }
        // Every series there before the timing starts.
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.shards().named() < held && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let (records_0, cpu_0, start) =
            (records(), receivers_cpu(a.ingest_threads), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(a.seconds));
        let (records_1, cpu_1, elapsed) =
            (records(), receivers_cpu(a.ingest_threads), start.elapsed());
        stop.store(true, Ordering::Relaxed);
        let (received, lost) = received_and_lost(&server);
        let taken = (records_1 - records_0) as f64;
        let cpu = cpu_1 - cpu_0;
        let series = server.shards().named();
        println!(
            "records: {} receiving threads, {} senders refreshing {} series each, {:.1} s",
            a.ingest_threads,
            a.senders,
            a.series,
            elapsed.as_secs_f64()
        );
        let secs = elapsed.as_secs_f64();
        let datagrams = (sent.load(Ordering::Relaxed), received, lost);
        intake(("series records", "a record"), taken, cpu, secs, datagrams);
        println!(
            "  {series} series held, {:.0} bytes of resident memory a series",
            (rss() - rss_0) / series.max(1) as f64
        );
        Ok::<(), String>(())
    })?;
    drop(server);
    let Some(binary) = &a.collectd else {
        return Ok(());
    };
    // The peer: the same series as StatsD counter lines (collectd's
    // statsd plugin reads no tags: the sender and shard in the name),
    // every one in each pass, paced at `--rate` lines a second.
    let mut datagrams = vec![Vec::new()];
    for i in 0..a.senders {
        for j in 0..a.series {
            let line = format!("load.s{j}.sender{}.shard{}:1|c", 100 + i, j % 10);
            let current = datagrams.last_mut().expect("one at least");
            if current.len() + line.len() + 1 > 1_400 {
                datagrams.push(Vec::new());
            }
            let current = datagrams.last_mut().expect("one at least");
            if !current.is_empty() {
                current.push(b'\n');
            }
            current.extend_from_slice(line.as_bytes());
        }
    }
    let per = held as f64 / datagrams.len() as f64;
    let per_second = a.rate / per;
    let total = (per_second * a.seconds).max(datagrams.len() as f64) as u64;
    let lines = total as f64 * per;
    println!(
        "  collectd, the same {held} series as StatsD counter lines, {:.2}M a second for {:.1} s:",
        a.rate / 1e6,
        total as f64 / per_second
    );
    let peer = collectd(binary, &datagrams, total, per_second, lines)?;
    println!(
        "  collectd {:.2}M lines per CPU-second ({:.0} ns a line), {:.0} bytes of resident memory a series",
        peer.accounted / peer.cpu_s.max(1e-9) / 1e6,
        peer.cpu_s * 1e9 / peer.accounted.max(1.0),
        peer.rss_grown / held as f64
    );
    Ok(())
}

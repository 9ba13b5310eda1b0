//! Receives the pipeline's datagrams, accounts for every sender, aggregates
//! every series, and serves them as Prometheus text.

use stats_std::collector::{Limits, Server};
use stats_std::core::wire::{Codec, Dialect};
use stats_std::forward::Forward;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
Usage: stats-collector [OPTIONS]

Receives stats datagrams on UDP, verifies and decodes them, keeps per-sender
accounting (loss, duplicates, reordering, restarts) and per-series
aggregates, and serves GET /metrics (Prometheus text) and GET /health.

Options:
  --listen ADDR        UDP address to receive on     [default: 127.0.0.1:8125]
  --http ADDR          HTTP address to serve on      [default: 127.0.0.1:9102]
  --no-http            do not serve HTTP
  --max-series N       series kept before folding into overflow [default: 10000]
  --max-senders N      senders tracked                [default: 1024]
  --forward ADDR       also send the aggregates to a StatsD agent at ADDR
  --forward-codec C    statsd, dogstatsd or dogstatsd-distribution [default: dogstatsd]
  --forward-interval S seconds between forwards       [default: 10]
  -h, --help           print this help

Datagrams that are not in the pipeline's format are read as StatsD or
DogStatsD lines.";

struct Args {
    listen: String,
    http: Option<String>,
    limits: Limits,
    forward: Option<Forward>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: "127.0.0.1:8125".into(),
        http: Some("127.0.0.1:9102".into()),
        limits: Limits::default(),
        forward: None,
    };
    let mut codec = "dogstatsd".to_string();
    let mut interval = 10.0;
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value("--listen")?,
            "--http" => args.http = Some(value("--http")?),
            "--no-http" => args.http = None,
            "--max-series" => args.limits.max_series = at_least_one("--max-series", value)?,
            "--max-senders" => args.limits.max_senders = at_least_one("--max-senders", value)?,
            "--forward" => {
                args.forward = Some(Forward::new(value("--forward")?, Dialect::DogStatsd))
            }
            "--forward-codec" => codec = value("--forward-codec")?,
            "--forward-interval" => {
                let v = value("--forward-interval")?;
                interval = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s >= 0.001 && *s <= 86_400.0)
                    .ok_or(format!(
                        "--forward-interval: not a number of seconds (0.001 to 86400): {v:?}"
                    ))?;
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let dialect = match Codec::from_name(&codec) {
        Some(Codec::Statsd(dialect)) => dialect,
        _ => {
            return Err(format!(
                "--forward-codec: expected statsd, dogstatsd or dogstatsd-distribution, got {codec:?}"
            ));
        }
    };
    if let Some(f) = &mut args.forward {
        f.dialect = dialect;
        f.interval = Duration::from_secs_f64(interval);
    }
    Ok(Some(args))
}

/// Flag `name`'s value (from `value`) as a count from 1.
fn at_least_one(
    name: &str,
    value: impl FnOnce(&str) -> Result<String, String>,
) -> Result<usize, String> {
    let v = value(name)?;
    v.parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or(format!("{name}: not a number from 1: {v:?}"))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("stats-collector: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let forward = args.forward.clone();
    let server = match Server::start(
        &args.listen,
        args.http.as_deref(),
        args.limits,
        args.forward,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stats-collector: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("receiving on udp://{}", server.udp_address());
    if let Some(http) = server.http_address() {
        println!("serving http://{http}/metrics and /health");
    }
    if let Some(f) = forward {
        println!(
            "forwarding to {} as {} every {:?}",
            f.target,
            Codec::Statsd(f.dialect),
            f.interval
        );
    }
    loop {
        std::thread::park();
    }
}

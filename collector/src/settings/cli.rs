//! The command line: flags over the settings file.

use super::Settings;
use super::error::{SettingsError, error};
use crate::outputs::forward::Forward;
use bytesize::ByteSize;
use clap::Parser;
use stats_core::wire::Dialect;
use std::path::PathBuf;

/// Receives stats datagrams on UDP (and Unix sockets), verifies and
/// decodes them, keeps per-sender accounting (loss, duplicates,
/// reordering, restarts) and per-series aggregates, serves GET /metrics
/// (Prometheus text or OpenMetrics) and GET /health, and forwards to a
/// StatsD agent. Datagrams not in the pipeline's format are read as StatsD
/// or DogStatsD lines. Flags override the file given with --config.
#[derive(Clone, Debug, Default, Parser)]
#[command(name = "stats-collector", version)]
pub struct Cli {
    /// A TOML file of settings (unknown fields are an error).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP address to receive on [default: 127.0.0.1:8125].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// UDP receiving threads (SO_REUSEPORT); 0: one per core [default: 0].
    #[arg(long, value_name = "N")]
    pub ingest_threads: Option<usize>,
    /// A Unix datagram socket to receive on as well.
    #[arg(long, value_name = "PATH")]
    pub listen_unix: Option<PathBuf>,
    /// A Unix stream socket to receive on as well (frames prefixed with
    /// their length, as the Datadog agent reads them).
    #[arg(long, value_name = "PATH")]
    pub listen_unix_stream: Option<PathBuf>,
    /// HTTP address to serve /metrics and /health on, or "off"
    /// [default: 127.0.0.1:9102].
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Do not serve HTTP (as --http off).
    #[arg(long, conflicts_with = "http")]
    pub no_http: bool,
    /// Remote write sends timers and histograms as native histograms
    /// (TOML native_histograms = true).
    #[arg(long)]
    pub native_histograms: bool,
    /// Series kept before folding into overflow [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_series: Option<usize>,
    /// Senders tracked [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_senders: Option<usize>,
    /// Seconds between runs of the pushed outputs [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub export_interval: Option<f64>,
    /// Also send the aggregates to a StatsD agent at ADDR (host:port).
    #[arg(long, value_name = "ADDR")]
    pub forward: Option<String>,
    /// The agent's dialect: statsd, dogstatsd or dogstatsd-distribution
    /// [default: dogstatsd].
    #[arg(long, value_name = "CODEC", requires = "forward")]
    pub forward_codec: Option<String>,
    /// Remote write every family to a Prometheus remote write 1.0 endpoint
    /// (repeatable; replaces the file's list).
    #[arg(long, value_name = "URL")]
    pub remote_write: Vec<String>,
    /// Send every series to an OTLP/HTTP metrics endpoint (repeatable;
    /// replaces the file's list).
    #[arg(long, value_name = "URL")]
    pub otlp: Vec<String>,
    /// A label on every series pushed, NAME=VALUE (repeatable; over the
    /// file's labels).
    #[arg(long, value_name = "NAME=VALUE", value_parser = label)]
    pub label: Vec<(String, String)>,
    /// Bytes the series, the sender table and the push queues share, as
    /// 512MiB or 1GB [default: 256 MiB].
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<ByteSize>,
}

/// `NAME=VALUE`.
fn label(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=VALUE"))?;
    Ok((name.to_string(), value.to_string()))
}

impl Cli {
    /// The settings: the file's (or the defaults), each flag given over
    /// them, checked.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let mut s = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        over(&mut s.listen, &self.listen);
        over(&mut s.ingest_threads, &self.ingest_threads);
        over(&mut s.max_series, &self.max_series);
        over(&mut s.max_senders, &self.max_senders);
        over(&mut s.export_interval_s, &self.export_interval);
        over(&mut s.max_memory, &self.max_memory);
        if !self.remote_write.is_empty() {
            s.remote_write = self.remote_write.clone();
        }
        if !self.otlp.is_empty() {
            s.otlp = self.otlp.clone();
        }
        s.labels.extend(self.label.iter().cloned());
        if let Some(path) = &self.listen_unix {
            s.listen_unix = Some(path.clone());
        }
        if let Some(path) = &self.listen_unix_stream {
            s.listen_unix_stream = Some(path.clone());
        }
        if let Some(http) = &self.http {
            s.http = Some(http.clone());
        }
        if self.no_http {
            s.http = None;
        }
        s.native_histograms |= self.native_histograms;
        if let Some(target) = &self.forward {
            let mut f = s
                .forward
                .take()
                .unwrap_or_else(|| Forward::new("", Forward::default_dialect()));
            f.target = target.clone();
            s.forward = Some(f);
        }
        if let (Some(name), Some(f)) = (&self.forward_codec, &mut s.forward) {
            f.dialect = Dialect::from_name(name).ok_or_else(|| {
                error(
                    "forward_codec",
                    format!("expected statsd, dogstatsd or dogstatsd-distribution, got {name:?}"),
                )
            })?;
        }
        s.checked()
    }
}

/// `flag`'s value over `at`, when given.
fn over<T: Clone>(at: &mut T, flag: &Option<T>) {
    if let Some(v) = flag {
        *at = v.clone();
    }
}

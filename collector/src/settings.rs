//! What the collector is told: [`Settings`], from a TOML file
//! (`--config FILE`, unknown fields refused) with command-line flags
//! ([`Cli`]) over it. Every default lives in [`Settings::default`].
//!
//! ```toml
//! listen = "0.0.0.0:8125"      # UDP
//! ingest_threads = 2           # UDP receiving threads (0: one per core)
//! listen_unix = "/run/stats-collector.sock"
//! listen_unix_stream = "/run/stats-collector.stream.sock"
//! http = "127.0.0.1:9102"      # "off": no HTTP endpoint
//! max_series = 10000
//! max_senders = 1024
//! export_interval_s = 10       # pushed outputs: remote write, OTLP, forwarding
//! remote_write = ["http://127.0.0.1:8428/api/v1/write"]
//! otlp = ["http://127.0.0.1:4318/v1/metrics"]
//! max_memory = "256 MiB"       # series, senders and push queues together
//! native_histograms = false    # remote write: native histograms, not `le` buckets
//!
//! [labels]                     # on every series pushed
//! collector = "eu-1"
//!
//! [histogram_buckets]          # `le` boundaries by metric name as sent
//! "http.request" = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]  # timers: seconds
//!
//! [forward]                    # StatsD forwarding (optional)
//! target = "127.0.0.1:8126"
//! codec = "dogstatsd"          # statsd, dogstatsd or dogstatsd-distribution
//! max_datagram = 1432
//! ```

use crate::collector::Limits;
use crate::histograms::Histograms;
use crate::outputs::forward::Forward;
use bytesize::ByteSize;
use clap::Parser;
use serde::Deserialize;
use stats_core::wire::Dialect;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything a [`Server`](crate::Server) is started with.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Settings {
    /// The UDP address to receive on.
    pub listen: String,
    /// UDP receiving threads, each with its own socket on `listen`
    /// (`SO_REUSEPORT`, so the kernel spreads senders over them); 0: one
    /// per core.
    pub ingest_threads: usize,
    /// A Unix datagram socket to receive on as well (made at start,
    /// replacing a stale one; removed at stop).
    pub listen_unix: Option<PathBuf>,
    /// A Unix stream socket to receive on as well, each datagram a frame
    /// prefixed with its length (4 bytes, little-endian), as the
    /// Datadog agent reads them (made at start, replacing a stale one;
    /// removed at stop).
    pub listen_unix_stream: Option<PathBuf>,
    /// The HTTP address serving `/metrics` and `/health`; `"off"` (or
    /// `None`): none.
    pub http: Option<String>,
    /// Series kept; further ones fold into an overflow series per kind.
    pub max_series: usize,
    /// Senders whose sequences are tracked.
    pub max_senders: usize,
    /// Seconds between runs of the pushed outputs (remote write,
    /// forwarding); they run once more when the collector stops.
    pub export_interval_s: f64,
    /// Prometheus remote write 1.0 endpoints (`http://`), each sent every
    /// family `/metrics` serves.
    pub remote_write: Vec<String>,
    /// OTLP/HTTP metrics endpoints (`http://…/v1/metrics`), each sent every
    /// series as OpenTelemetry metrics (protobuf).
    pub otlp: Vec<String>,
    /// Labels put on every series pushed (remote write; OTLP's resource
    /// attributes), as Prometheus's
    /// external labels: `collector = "eu-1"` tells collectors apart in one
    /// engine. A series' own label of the same name wins.
    pub labels: BTreeMap<String, String>,
    /// The bytes the series (with their buckets and each sender's totals),
    /// the sender table and every pushed destination's queue share
    /// ([`crate::memory`]): past it new series fold into the overflow
    /// series, and queues drop their oldest requests (all counted).
    pub max_memory: ByteSize,
    /// StatsD forwarding, when on.
    pub forward: Option<Forward>,
    /// Remote write sends timers and histograms as Prometheus native
    /// histograms (the receiver needs them on: Prometheus's
    /// `--enable-feature=native-histograms`) instead of `le` buckets.
    pub native_histograms: bool,
    /// `le` boundaries by metric name as sent (ascending, finite, in the
    /// unit exported: seconds for timers), instead of the ones chosen from
    /// what was recorded ([`crate::histograms`]).
    pub histogram_buckets: BTreeMap<String, Vec<f64>>,
}

impl Default for Settings {
    fn default() -> Self {
        let limits = Limits::default();
        Settings {
            listen: "127.0.0.1:8125".into(),
            ingest_threads: 0,
            listen_unix: None,
            listen_unix_stream: None,
            http: Some("127.0.0.1:9102".into()),
            max_series: limits.max_series,
            max_senders: limits.max_senders,
            export_interval_s: 10.0,
            remote_write: Vec::new(),
            otlp: Vec::new(),
            labels: BTreeMap::new(),
            max_memory: ByteSize::b(limits.max_memory),
            forward: None,
            native_histograms: false,
            histogram_buckets: BTreeMap::new(),
        }
    }
}

/// The smallest memory budget: room for a collector's own series.
const MIN_MEMORY: ByteSize = ByteSize::mib(1);

/// A setting that cannot be used, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    /// The setting (its TOML name; the flag is `--` and the name with
    /// dashes), or the file.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for SettingsError {}

fn error(field: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field: field.into(),
        message: message.into(),
    }
}

impl Settings {
    /// Reads a TOML file (unknown fields are an error).
    pub fn from_file(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| error(&path.display().to_string(), e.to_string()))?;
        Settings::from_toml(&text).map_err(|e| SettingsError {
            field: format!("{}: {}", path.display(), e.field),
            message: e.message,
        })
    }

    /// Reads TOML text (unknown fields are an error) and checks it.
    pub fn from_toml(text: &str) -> Result<Settings, SettingsError> {
        let settings: Settings =
            toml::from_str(text).map_err(|e| error("TOML", e.message().to_string()))?;
        settings.checked()
    }

    /// These settings if every one is usable; the first that is not.
    pub fn checked(mut self) -> Result<Settings, SettingsError> {
        if self.http.as_deref() == Some("off") {
            self.http = None;
        }
        if self.max_series == 0 {
            return Err(error("max_series", "must be at least 1"));
        }
        if self.max_senders == 0 {
            return Err(error("max_senders", "must be at least 1"));
        }
        if !(0.001..=86_400.0).contains(&self.export_interval_s) {
            return Err(error(
                "export_interval_s",
                format!("{} is not 0.001 to 86400 seconds", self.export_interval_s),
            ));
        }
        for url in &self.remote_write {
            crate::outputs::push::check_url(url).map_err(|e| error("remote_write", e))?;
        }
        for url in &self.otlp {
            crate::outputs::push::check_url(url).map_err(|e| error("otlp", e))?;
        }
        for name in self.labels.keys() {
            let mut chars = name.chars();
            let first = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
            if !first
                || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with("__")
            {
                return Err(error(
                    "labels",
                    format!("{name:?} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not __...)"),
                ));
            }
        }
        if self.listen_unix.is_some() && self.listen_unix == self.listen_unix_stream {
            return Err(error(
                "listen_unix_stream",
                "is the path listen_unix has: each socket needs its own",
            ));
        }
        for (name, bounds) in &self.histogram_buckets {
            let ascending = bounds.windows(2).all(|w| w[0] < w[1]);
            if bounds.is_empty() || !ascending || !bounds.iter().all(|b| b.is_finite()) {
                return Err(error(
                    "histogram_buckets",
                    format!("{name:?}: boundaries must be finite and ascending, at least one"),
                ));
            }
        }
        if self.max_memory < MIN_MEMORY {
            return Err(error(
                "max_memory",
                format!("{} is less than {MIN_MEMORY}", self.max_memory),
            ));
        }
        Ok(self)
    }

    /// The defaults, but receiving UDP and serving HTTP on 127.0.0.1 at
    /// ports the system picks ([`Server::udp_address`] and
    /// [`Server::http_address`] say which): a collector inside a test, or
    /// inside another program, that cannot clash with one already running.
    ///
    /// [`Server::udp_address`]: crate::Server::udp_address
    /// [`Server::http_address`]: crate::Server::http_address
    pub fn on_loopback() -> Self {
        Settings {
            listen: "127.0.0.1:0".into(),
            http: Some("127.0.0.1:0".into()),
            ..Settings::default()
        }
    }

    /// Remote writing to `url` as well.
    pub fn with_remote_write(mut self, url: impl Into<String>) -> Self {
        self.remote_write.push(url.into());
        self
    }

    /// Sending OTLP/HTTP to `url` as well.
    pub fn with_otlp(mut self, url: impl Into<String>) -> Self {
        self.otlp.push(url.into());
        self
    }

    /// With label `name` = `value` on every series pushed.
    pub fn with_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// With a memory budget of `bytes`.
    pub fn with_max_memory(self, bytes: u64) -> Self {
        Settings {
            max_memory: ByteSize::b(bytes),
            ..self
        }
    }

    /// With UDP address `listen`.
    pub fn with_listen(self, listen: impl Into<String>) -> Self {
        Settings {
            listen: listen.into(),
            ..self
        }
    }

    /// With `threads` UDP receiving threads (0: one per core).
    pub fn with_ingest_threads(self, threads: usize) -> Self {
        Settings {
            ingest_threads: threads,
            ..self
        }
    }

    /// Receiving on the Unix datagram socket `path` as well.
    pub fn with_listen_unix(self, path: impl Into<PathBuf>) -> Self {
        Settings {
            listen_unix: Some(path.into()),
            ..self
        }
    }

    /// Receiving length-prefixed frames on the Unix stream socket `path`
    /// as well.
    pub fn with_listen_unix_stream(self, path: impl Into<PathBuf>) -> Self {
        Settings {
            listen_unix_stream: Some(path.into()),
            ..self
        }
    }

    /// Serving HTTP on `http`, or not (`None`).
    pub fn with_http(self, http: Option<&str>) -> Self {
        Settings {
            http: http.map(str::to_string),
            ..self
        }
    }

    /// With `limits` on series, senders and memory.
    pub fn with_limits(self, limits: Limits) -> Self {
        Settings {
            max_series: limits.max_series,
            max_senders: limits.max_senders,
            max_memory: ByteSize::b(limits.max_memory),
            ..self
        }
    }

    /// Forwarding to a StatsD agent.
    pub fn with_forward(self, forward: Forward) -> Self {
        Settings {
            forward: Some(forward),
            ..self
        }
    }

    /// Running the pushed outputs every `interval`.
    pub fn with_export_interval(self, interval: Duration) -> Self {
        Settings {
            export_interval_s: interval.as_secs_f64(),
            ..self
        }
    }

    /// Remote write with native histograms, or `le` buckets.
    pub fn with_native_histograms(self, native: bool) -> Self {
        Settings {
            native_histograms: native,
            ..self
        }
    }

    /// `le` boundaries for the metric sent as `name`.
    pub fn with_histogram_buckets(mut self, name: impl Into<String>, bounds: Vec<f64>) -> Self {
        self.histogram_buckets.insert(name.into(), bounds);
        self
    }

    /// How distributions are exported as histograms.
    pub fn histograms(&self) -> Histograms {
        Histograms {
            buckets: self.histogram_buckets.clone(),
            native: self.native_histograms,
        }
    }

    /// The limits on series, senders and memory.
    pub fn limits(&self) -> Limits {
        Limits {
            max_series: self.max_series,
            max_senders: self.max_senders,
            max_memory: self.max_memory.as_u64(),
        }
    }

    /// The time between runs of the pushed outputs.
    pub fn export_interval(&self) -> Duration {
        Duration::from_secs_f64(self.export_interval_s)
    }

    /// UDP receiving threads: as set, or one per core.
    pub fn ingest_thread_count(&self) -> usize {
        match self.ingest_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Settings, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("stats-collector").chain(args.iter().copied()))
                .map_err(|e| e.to_string())?;
        cli.settings().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_come_from_one_place() {
        assert_eq!(cli(&[]).unwrap(), Settings::default());
        assert_eq!(Settings::from_toml("").unwrap(), Settings::default());
        assert_eq!(Settings::default().limits(), Limits::default());
    }

    #[test]
    fn histogram_settings_from_the_file_and_the_flag() {
        let s = Settings::from_toml(
            "native_histograms = true\n[histogram_buckets]\n\"http.request\" = [0.005, 0.01, 1]\n",
        )
        .unwrap();
        assert!(s.native_histograms);
        assert_eq!(s.histograms().buckets["http.request"], [0.005, 0.01, 1.0]);
        assert!(cli(&["--native-histograms"]).unwrap().native_histograms);
        assert!(!cli(&[]).unwrap().native_histograms);
        for bad in ["[0.1, 0.05]", "[]", "[0.1, nan]"] {
            let e = Settings::from_toml(&format!("[histogram_buckets]\nx = {bad}\n")).unwrap_err();
            assert_eq!(e.field, "histogram_buckets", "{bad}");
        }
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("stats-collector-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("collector.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nmax_series = 5\nhttp = \"off\"\n\
             remote_write = [\"http://127.0.0.1:2/w\", \"http://127.0.0.1:3/w\"]\n\
             max_memory = \"64 MiB\"\n\
             [labels]\ncollector = \"a\"\nregion = \"eu\"\n\
             [forward]\ntarget = \"127.0.0.1:9001\"\ncodec = \"statsd\"\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let s = cli(&["--config", path]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.max_series, 5);
        assert_eq!(s.limits().max_memory, 64 << 20);
        assert_eq!(s.http, None);
        assert_eq!(s.remote_write.len(), 2);
        assert_eq!(s.labels["collector"], "a");
        let f = s.forward.unwrap();
        assert_eq!(
            (f.target.as_str(), f.dialect),
            ("127.0.0.1:9001", Dialect::Etsy)
        );
        let s = cli(&[
            "--config",
            path,
            "--max-series",
            "7",
            "--http",
            "127.0.0.1:0",
            "--forward-codec",
            "dogstatsd",
            "--forward",
            "127.0.0.1:9002",
            "--remote-write",
            "http://127.0.0.1:1/api/v1/write",
            "--label",
            "collector=b",
            "--max-memory",
            "512MiB",
            "--listen-unix-stream",
            "/run/stats.stream.sock",
        ])
        .unwrap();
        assert_eq!((s.listen.as_str(), s.max_series), ("127.0.0.1:9000", 7));
        assert_eq!(s.remote_write, ["http://127.0.0.1:1/api/v1/write"]);
        assert_eq!(s.labels["collector"], "b");
        assert_eq!(s.labels["region"], "eu");
        assert_eq!(s.http.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(s.limits().max_memory, 512 << 20);
        assert_eq!(
            s.listen_unix_stream.as_deref(),
            Some(Path::new("/run/stats.stream.sock"))
        );
        let f = s.forward.unwrap();
        assert_eq!(
            (f.target.as_str(), f.dialect),
            ("127.0.0.1:9002", Dialect::DogStatsd)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_settings_are_named() {
        let e = Settings::from_toml("max_seris = 5").unwrap_err();
        assert!(e.message.contains("unknown field `max_seris`"), "{e}");
        let e = Settings::from_toml("[forward]\ntarget = \"h:1\"\ncodec = \"x\"").unwrap_err();
        assert!(e.message.contains("dogstatsd"), "{e}");
        for (args, named) in [
            (&["--max-series", "0"][..], "max_series"),
            (&["--max-senders", "0"], "max_senders"),
            (&["--export-interval", "0"], "export_interval_s"),
            (&["--max-memory", "100KiB"], "max_memory"),
            (
                &[
                    "--listen-unix",
                    "/run/s.sock",
                    "--listen-unix-stream",
                    "/run/s.sock",
                ],
                "listen_unix_stream",
            ),
            (
                &["--forward", "h:1", "--forward-codec", "x"],
                "forward_codec",
            ),
        ] {
            let e = cli(args).unwrap_err();
            assert!(e.starts_with(named), "{args:?}: {e}");
        }
        assert!(
            cli(&["--forward-codec", "statsd"]).is_err(),
            "needs --forward"
        );
        assert!(cli(&["--max-series", "many"]).is_err());
        assert!(cli(&["--max-memory", "lots"]).is_err());
        let e = cli(&["--config", "/nonexistent/collector.toml"]).unwrap_err();
        assert!(e.contains("/nonexistent/collector.toml"), "{e}");
    }
}

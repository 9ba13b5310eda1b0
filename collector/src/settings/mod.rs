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

mod cli;
mod error;

pub use cli::Cli;
pub use error::SettingsError;
use error::error;

use crate::histograms::Histograms;
use crate::outputs::forward::Forward;
use crate::shared::Limits;
use bytesize::ByteSize;
use serde::Deserialize;
use std::collections::BTreeMap;
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

#[cfg(test)]
mod tests;

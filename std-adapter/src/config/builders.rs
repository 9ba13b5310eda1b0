//! Builders: `Config::default().with_…(…)`, one per field.

use super::mode::AggregationMode;
use super::{BreakerSettings, Config};
use stats_core::DropPolicy;
use stats_core::wire::Codec;

impl Config {
    /// The same with another destination.
    #[must_use]
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.address = address.into();
        self
    }

    /// The same with another codec.
    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The same with other constant tags (`key:value` or `key`).
    #[must_use]
    pub fn with_tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// The same with another memory maximum.
    #[must_use]
    pub fn with_max_memory_mb(mut self, max_memory_mb: usize) -> Self {
        self.max_memory_mb = max_memory_mb;
        self
    }

    /// The same with another aggregation mode.
    #[must_use]
    pub fn with_aggregation(mut self, mode: AggregationMode) -> Self {
        self.aggregation.mode = mode;
        self
    }

    /// The same with another interval between sends of aggregated totals.
    #[must_use]
    pub fn with_interval_ms(mut self, interval_ms: u64) -> Self {
        self.aggregation.interval_ms = interval_ms;
        self
    }

    /// The same with another full-refresh interval.
    #[must_use]
    pub fn with_refresh_interval_s(mut self, refresh_interval_s: u64) -> Self {
        self.aggregation.refresh_interval_s = refresh_interval_s;
        self
    }

    /// The same with another series limit.
    #[must_use]
    pub fn with_max_series(mut self, max_series: usize) -> Self {
        self.aggregation.max_series = max_series;
        self
    }

    /// The same with another number of threads that aggregate into state
    /// of their own.
    #[must_use]
    pub fn with_aggregation_threads(mut self, threads: usize) -> Self {
        self.aggregation.threads = threads;
        self
    }

    /// The same with another lane set size.
    #[must_use]
    pub fn with_buffer_size(mut self, buffer_size: usize) -> Self {
        self.events.buffer_size = buffer_size;
        self
    }

    /// The same with another number of lane sets owned by one thread each.
    #[must_use]
    pub fn with_lane_sets(mut self, lane_sets: usize) -> Self {
        self.events.lane_sets = lane_sets;
        self
    }

    /// The same with another batch size.
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.events.batch_size = batch_size;
        self
    }

    /// The same with another batch age limit.
    #[must_use]
    pub fn with_max_batch_age_ms(mut self, max_batch_age_ms: u64) -> Self {
        self.events.max_batch_age_ms = max_batch_age_ms;
        self
    }

    /// The same with another worker tick.
    #[must_use]
    pub fn with_tick_ms(mut self, tick_ms: u64) -> Self {
        self.events.tick_ms = tick_ms;
        self
    }

    /// The same with batch sizes by lane utilization, or not.
    #[must_use]
    pub fn with_adaptive_batching(mut self, adaptive_batching: bool) -> Self {
        self.events.adaptive_batching = adaptive_batching;
        self
    }

    /// The same with another drop policy.
    #[must_use]
    pub fn with_drop_policy(mut self, drop_policy: DropPolicy) -> Self {
        self.events.drop_policy = drop_policy;
        self
    }

    /// The same sending one timer and histogram value in `n` (events in
    /// StatsD lines).
    #[must_use]
    pub fn with_sample_one_in(mut self, n: u32) -> Self {
        self.events.sample_one_in = n;
        self
    }

    /// The same with another datagram size (`None`: the transport's).
    #[must_use]
    pub fn with_max_datagram(mut self, max_datagram: Option<usize>) -> Self {
        self.transport.max_datagram = max_datagram;
        self
    }

    /// The same with another SO_SNDBUF to ask for.
    #[must_use]
    pub fn with_send_buffer_bytes(mut self, send_buffer_bytes: usize) -> Self {
        self.transport.send_buffer_bytes = send_buffer_bytes;
        self
    }

    /// The same with another interval between lookups (UDP) or connection
    /// attempts (a Unix socket that went away).
    #[must_use]
    pub fn with_resolve_interval_s(mut self, resolve_interval_s: u64) -> Self {
        self.transport.resolve_interval_s = resolve_interval_s;
        self
    }

    /// The same with another breaker.
    #[must_use]
    pub fn with_breaker(mut self, failures: u32, open_ms: u64) -> Self {
        self.breaker = BreakerSettings { failures, open_ms };
        self
    }

    /// The same with the dynamic API on or off.
    #[must_use]
    pub fn with_interning(mut self, enabled: bool) -> Self {
        self.interning.enabled = enabled;
        self
    }

    /// The same with another interner capacity.
    #[must_use]
    pub fn with_interner_capacity(mut self, capacity: usize) -> Self {
        self.interning.capacity = capacity;
        self
    }

    /// The same with the HTTP endpoint on, at `address`.
    #[must_use]
    pub fn with_http(mut self, address: impl Into<String>) -> Self {
        self.http.enabled = true;
        self.http.address = address.into();
        self
    }

    /// The same with the HTTP endpoint off.
    #[must_use]
    pub fn with_http_off(mut self) -> Self {
        self.http.enabled = false;
        self
    }

    /// The same with another limit of concurrent HTTP connections.
    #[must_use]
    pub fn with_http_max_connections(mut self, max_connections: usize) -> Self {
        self.http.max_connections = max_connections;
        self
    }

    /// The same with the container id sent (DogStatsD) or not.
    #[must_use]
    pub fn with_origin_detection(mut self, origin_detection: bool) -> Self {
        self.dogstatsd.origin_detection = origin_detection;
        self
    }

    /// The same with DogStatsD timestamps on aggregated counters and
    /// gauges, or not.
    #[must_use]
    pub fn with_timestamps(mut self, timestamps: bool) -> Self {
        self.dogstatsd.timestamps = timestamps;
        self
    }

    /// The same with datadog-go's client telemetry sent, or not.
    #[must_use]
    pub fn with_client_telemetry(mut self, client_telemetry: bool) -> Self {
        self.dogstatsd.client_telemetry = client_telemetry;
        self
    }
}

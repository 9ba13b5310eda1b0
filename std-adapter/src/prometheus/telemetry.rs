//! The pipeline's own telemetry as Prometheus families: counters, lanes,
//! drops by reason, the breaker, latency quantiles and health.

use crate::report::Report;
use stats_core::prometheus::{Sink, Text};
use stats_core::{BreakerState, DropReason, Level, Priority, Quantiles, Status};

/// A priority's label value.
fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Medium => "medium",
        Priority::High => "high",
    }
}

/// Reads one number of a lane's statistics.
type LaneField = fn(&stats_core::LaneStats) -> usize;

/// The pipeline's own telemetry from `report`, into `t`.
pub(crate) fn metrics(report: &Report, t: &mut Text) {
    let s = &report.snapshot;
    let c = &s.counters;
    let counters: [(&str, &str, u64); 12] = [
        (
            "stats_events_received_total",
            "Events given to the lanes: accepted, or dropped at entry.",
            s.events_received,
        ),
        (
            "stats_events_sent_total",
            "Events in datagrams the socket accepted.",
            c.events_sent,
        ),
        (
            "stats_events_send_failed_total",
            "Events in datagrams the socket refused (lost, counted).",
            c.events_send_failed,
        ),
        (
            "stats_events_refused_total",
            "Events the encoder refused (no key, or too large).",
            c.events_refused,
        ),
        (
            "stats_datagrams_sent_total",
            "Datagrams the socket accepted.",
            c.datagrams_sent,
        ),
        (
            "stats_bytes_sent_total",
            "Bytes in those datagrams.",
            c.bytes_sent,
        ),
        (
            "stats_send_errors_total",
            "Datagrams that failed to send.",
            c.send_errors,
        ),
        (
            "stats_bytes_send_failed_total",
            "Bytes in the datagrams that failed to send.",
            c.bytes_send_failed,
        ),
        (
            "stats_send_would_block_total",
            "Sends deferred because the socket buffer was full.",
            c.send_would_block,
        ),
        (
            "stats_send_calls_total",
            "System calls that sent datagrams (several per sendmmsg).",
            c.send_calls,
        ),
        ("stats_batches_total", "Batches flushed.", c.batches),
        (
            "stats_batch_events_total",
            "Events in those batches.",
            c.batch_events,
        ),
    ];
    for (name, help, value) in counters {
        t.single(name, "counter", help, value as f64);
    }
    t.family(
        "stats_events_dropped_total",
        "counter",
        "Events dropped from the lanes, by reason and by the dropped event's priority.",
    );
    for reason in DropReason::ALL {
        for p in Priority::ALL {
            let labels = [("reason", reason.as_str()), ("priority", priority_name(p))];
            t.sample(
                "stats_events_dropped_total",
                &labels,
                s.drops.get(reason, p) as f64,
            );
        }
    }
    let lanes: [(&str, &str, LaneField); 3] = [
        ("stats_lane_events", "Events waiting in the lanes.", |l| {
            l.len
        }),
        ("stats_lane_peak_events", "Most events seen waiting.", |l| {
            l.peak
        }),
        ("stats_lane_capacity_events", "Lane slots.", |l| l.capacity),
    ];
    for (name, help, get) in lanes {
        t.family(name, "gauge", help);
        for p in Priority::ALL {
            t.sample(
                name,
                &[("priority", priority_name(p))],
                get(&s.lanes[p.index()]) as f64,
            );
        }
    }
    t.single(
        "stats_lane_utilization_ratio",
        "gauge",
        "Events waiting as a share of all lane slots.",
        s.lane_utilization_percent() / 100.0,
    );
    t.single(
        "stats_events_staged",
        "gauge",
        "Events drained but not yet sent.",
        s.staged as f64,
    );
    let open = matches!(s.breaker, BreakerState::Open { .. });
    t.single(
        "stats_breaker_open",
        "gauge",
        "1 while the circuit breaker is open (nothing is sent).",
        f64::from(u8::from(open)),
    );
    t.family(
        "stats_breaker_transitions_total",
        "counter",
        "Circuit breaker transitions, by the state entered.",
    );
    let tr = s.breaker_transitions;
    for (to, n) in [
        ("open", tr.opened),
        ("half_open", tr.half_opened),
        ("closed", tr.closed),
    ] {
        t.sample("stats_breaker_transitions_total", &[("to", to)], n as f64);
    }
    t.family(
        "stats_latency_seconds",
        "gauge",
        "Latency quantiles by stage: lane (record to drain), send (one send call), end_to_end (record to the socket).",
    );
    let stages = [
        ("lane", s.lane_latency),
        ("send", s.send_latency),
        ("end_to_end", s.end_to_end_latency),
    ];
    for (stage, q) in stages {
        quantiles(t, "stats_latency_seconds", stage, q, 1e-9);
    }
    t.family(
        "stats_latencies_total",
        "counter",
        "Latencies recorded, by stage.",
    );
    for (stage, q) in stages {
        t.sample(
            "stats_latencies_total",
            &[("stage", stage)],
            q.map_or(0, |q| q.count) as f64,
        );
    }
    t.family(
        "stats_batch_size_events",
        "gauge",
        "Events per flushed batch, quantiles.",
    );
    quantiles(t, "stats_batch_size_events", "flush", s.batch_size, 1.0);
    t.single(
        "stats_memory_bytes",
        "gauge",
        "Bytes of lanes, exporter and buffers.",
        s.memory_bytes as f64,
    );
    t.single(
        "stats_memory_max_bytes",
        "gauge",
        "The configured memory maximum.",
        s.memory_max_bytes as f64,
    );
    let pressure = match s.pressure {
        Level::Low => 0.0,
        Level::Medium => 1.0,
        Level::High => 2.0,
    };
    t.single(
        "stats_memory_pressure",
        "gauge",
        "Memory pressure: 0 low, 1 medium, 2 high.",
        pressure,
    );
    let i = &report.interner;
    t.single(
        "stats_interner_hits_total",
        "counter",
        "Dynamic names found.",
        i.hits as f64,
    );
    t.single(
        "stats_interner_misses_total",
        "counter",
        "Dynamic names interned.",
        i.misses as f64,
    );
    t.single(
        "stats_interner_evictions_total",
        "counter",
        "Dynamic names evicted (least recently used).",
        i.evictions as f64,
    );
    t.single(
        "stats_interner_keys",
        "gauge",
        "Dynamic names held.",
        i.len as f64,
    );
    t.single(
        "stats_interner_capacity_keys",
        "gauge",
        "Dynamic names that fit.",
        i.capacity as f64,
    );
    t.family(
        "stats_rejected_total",
        "counter",
        "Calls that recorded nothing, by reason (drops are counted apart).",
    );
    let r = &report.rejected;
    for (reason, n) in [
        ("invalid_key", r.invalid_key),
        ("key_table_full", r.key_table_full),
        ("dynamic_disabled", r.dynamic_disabled),
        ("not_finite", r.not_finite),
        ("shut_down", r.shut_down),
        ("sampled_out", r.sampled_out),
    ] {
        t.sample("stats_rejected_total", &[("reason", reason)], n as f64);
    }
    t.single(
        "stats_socket_send_buffer_bytes",
        "gauge",
        "SO_SNDBUF the kernel granted.",
        report.socket.send_buffer_bytes as f64,
    );
    let status = match report.health.status {
        Status::Healthy => 0.0,
        Status::Degraded => 1.0,
        Status::Unhealthy => 2.0,
    };
    t.single(
        "stats_health_status",
        "gauge",
        "0 healthy, 1 degraded, 2 unhealthy.",
        status,
    );
}

fn quantiles(t: &mut Text, name: &str, stage: &str, q: Option<Quantiles>, scale: f64) {
    let Some(q) = q else { return };
    for (label, v) in [
        ("0.5", q.p50),
        ("0.9", q.p90),
        ("0.99", q.p99),
        ("0.999", q.p999),
        ("1", q.max),
    ] {
        t.sample(
            name,
            &[("stage", stage), ("quantile", label)],
            v as f64 * scale,
        );
    }
}

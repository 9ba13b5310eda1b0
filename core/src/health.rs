//! Health: a pure function of measurements and thresholds.
//!
//! Each check compares one measurement with two limits: above the first the
//! pipeline is *degraded*, above the second *unhealthy*. The overall status is
//! the worst check's, and every check is reported with its value and limits,
//! so an endpoint can say why.

/// What health is judged on, over the window the caller chooses (for
/// example the last 10 s of counter differences).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Measurements {
    /// Events waiting in the lanes as a percentage of their capacity.
    pub lane_utilization_percent: f64,
    /// Events recorded in the window.
    pub events_recorded: u64,
    /// Events dropped in the window (all reasons).
    pub events_dropped: u64,
    /// Sends attempted in the window.
    pub sends: u64,
    /// Sends that failed in the window.
    pub send_errors: u64,
    /// 99th percentile of the end-to-end latency, ns, if anything was sent.
    pub p99_latency_ns: Option<u64>,
    /// Whether the circuit breaker is open.
    pub breaker_open: bool,
}

/// The limits: `(degraded above, unhealthy above)` for each check.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct HealthThresholds {
    /// Lane utilization, percent (default 80, 95).
    pub lane_utilization_percent: (f64, f64),
    /// Dropped / recorded (default 1%, 10%).
    pub drop_rate: (f64, f64),
    /// Failed / attempted sends (default 5%, 50%).
    pub send_error_rate: (f64, f64),
    /// p99 end-to-end latency, ns (default 500 ms, 5 s).
    pub p99_latency_ns: (f64, f64),
}

impl HealthThresholds {
    /// Degraded past 80% utilization, 1% drops, 5% send errors, 500 ms p99;
    /// unhealthy past 95%, 10%, 50%, 5 s.
    pub const DEFAULT: HealthThresholds = HealthThresholds {
        lane_utilization_percent: (80.0, 95.0),
        drop_rate: (0.01, 0.10),
        send_error_rate: (0.05, 0.50),
        p99_latency_ns: (500e6, 5e9),
    };
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How well the pipeline is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum Status {
    /// Every check within its first limit.
    Healthy,
    /// Some check past its first limit.
    Degraded,
    /// Some check past its second limit, or the breaker is open.
    Unhealthy,
}

impl Status {
    /// `healthy`, `degraded` or `unhealthy`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
        }
    }

    /// The worst of `checks`' statuses (healthy when there are none).
    pub fn worst<'c>(checks: impl IntoIterator<Item = &'c Check>) -> Status {
        (checks.into_iter())
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Healthy)
    }
}

/// One check's result.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Check {
    /// A stable snake_case name.
    pub name: &'static str,
    /// This check's verdict.
    pub status: Status,
    /// The measured value.
    pub value: f64,
    /// The degraded limit.
    pub degraded_above: f64,
    /// The unhealthy limit.
    pub unhealthy_above: f64,
}

/// The verdict and every check behind it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Health {
    /// The worst check's status.
    pub status: Status,
    /// Lane utilization, drop rate, send error rate, p99 latency, breaker.
    pub checks: [Check; 5],
}

impl Check {
    /// Judges `value` against its limits, `(degraded above, unhealthy
    /// above)`: the one rule every health check follows, in the client and
    /// the collector.
    pub fn judge(name: &'static str, value: f64, (degraded, unhealthy): (f64, f64)) -> Check {
        let status = if value > unhealthy {
            Status::Unhealthy
        } else if value > degraded {
            Status::Degraded
        } else {
            Status::Healthy
        };
        Check {
            name,
            value,
            degraded_above: degraded,
            unhealthy_above: unhealthy,
            status,
        }
    }
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Judges `m` against `t`.
pub fn evaluate(m: &Measurements, t: &HealthThresholds) -> Health {
    let check = Check::judge;
    let checks = [
        check(
            "lane_utilization_percent",
            m.lane_utilization_percent,
            t.lane_utilization_percent,
        ),
        check(
            "drop_rate",
            rate(m.events_dropped, m.events_recorded),
            t.drop_rate,
        ),
        check(
            "send_error_rate",
            rate(m.send_errors, m.sends),
            t.send_error_rate,
        ),
        check(
            "p99_latency_ns",
            m.p99_latency_ns.map_or(0.0, |ns| ns as f64),
            t.p99_latency_ns,
        ),
        check(
            "breaker_open",
            if m.breaker_open { 1.0 } else { 0.0 },
            (0.5, 0.5),
        ),
    ];
    let status = Status::worst(&checks);
    Health { status, checks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Measurements {
        Measurements {
            lane_utilization_percent: 10.0,
            events_recorded: 1_000,
            events_dropped: 0,
            sends: 20,
            send_errors: 0,
            p99_latency_ns: Some(2_000_000),
            breaker_open: false,
        }
    }

    #[test]
    fn each_check_has_two_limits() {
        let t = HealthThresholds::DEFAULT;
        assert_eq!(evaluate(&quiet(), &t).status, Status::Healthy);
        /// A change to the quiet measurements, the status it gives, and the
        /// check it trips.
        type Case = (fn(&mut Measurements), Status, usize);
        let cases: [Case; 8] = [
            (|m| m.lane_utilization_percent = 85.0, Status::Degraded, 0),
            (|m| m.lane_utilization_percent = 99.0, Status::Unhealthy, 0),
            (|m| m.events_dropped = 20, Status::Degraded, 1),
            (|m| m.events_dropped = 200, Status::Unhealthy, 1),
            (|m| m.send_errors = 2, Status::Degraded, 2),
            (|m| m.send_errors = 11, Status::Unhealthy, 2),
            (
                |m| m.p99_latency_ns = Some(600_000_000),
                Status::Degraded,
                3,
            ),
            (|m| m.breaker_open = true, Status::Unhealthy, 4),
        ];
        for (change, status, index) in cases {
            let mut m = quiet();
            change(&mut m);
            let h = evaluate(&m, &t);
            assert_eq!(h.status, status, "{:?}", h.checks[index]);
            assert_eq!(h.checks[index].status, status);
            assert_eq!(
                h.checks
                    .iter()
                    .filter(|c| c.status != Status::Healthy)
                    .count(),
                1
            );
        }
    }

    #[test]
    fn limits_are_exclusive_and_empty_windows_are_healthy() {
        let t = HealthThresholds::DEFAULT;
        let mut m = quiet();
        m.lane_utilization_percent = 80.0;
        m.events_dropped = 10; // exactly 1%
        assert_eq!(evaluate(&m, &t).status, Status::Healthy);
        let idle = Measurements::default();
        let h = evaluate(&idle, &t);
        assert_eq!(h.status, Status::Healthy);
        assert_eq!(h.checks[1].value, 0.0);
        assert_eq!(Status::Unhealthy.as_str(), "unhealthy");
    }
}

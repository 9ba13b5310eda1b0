//! Circuit breaker around the transport: stop sending to a destination that
//! keeps failing, then probe it now and then.
//!
//! ```text
//!            N consecutive failures              open_for elapsed
//!  Closed ───────────────────────────▶ Open ───────────────────────▶ HalfOpen
//!    ▲                                  ▲                               │
//!    │             probe fails          └───────────────────────────────┤
//!    └──────────────────────────────────── probe succeeds ◀─────────────┘
//! ```
//!
//! Sans-IO: time comes in as `now` (nanoseconds on the adapter's clock) and
//! the breaker says when it next needs attention. While it is open the
//! exporter sends nothing; events stay in the lanes, where the drop policy
//! applies.

/// When the breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive send failures that open the breaker (default 10; 0 is
    /// treated as 1).
    pub failure_threshold: u32,
    /// How long it stays open before a probe, in nanoseconds (default 30 s).
    pub open_for_ns: u64,
}

impl BreakerConfig {
    /// 10 consecutive failures, 30 s open.
    pub const DEFAULT: BreakerConfig = BreakerConfig {
        failure_threshold: 10,
        open_for_ns: 30_000_000_000,
    };

    /// The default with another threshold and open time.
    pub const fn new(failure_threshold: u32, open_for_ns: u64) -> Self {
        BreakerConfig {
            failure_threshold,
            open_for_ns,
        }
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Where the breaker is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakerState {
    /// Sending normally.
    Closed,
    /// Not sending until the given time.
    Open {
        /// When the next probe may go out (ns).
        until: u64,
    },
    /// The next send is a probe: success closes, failure reopens.
    HalfOpen,
}

/// Counts of the breaker's transitions, for telemetry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BreakerTransitions {
    /// Closed or half-open to open.
    pub opened: u64,
    /// Open to half-open (probes allowed).
    pub half_opened: u64,
    /// Half-open to closed (recoveries).
    pub closed: u64,
}

/// The breaker. Single-threaded: the exporter owns it.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
    consecutive_failures: u32,
    transitions: BreakerTransitions,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub const fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            transitions: BreakerTransitions {
                opened: 0,
                half_opened: 0,
                closed: 0,
            },
        }
    }

    /// Whether a send may go out at `now`; moves an open breaker whose time
    /// is up to half-open.
    pub fn allow(&mut self, now: u64) -> bool {
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => true,
            BreakerState::Open { until } if now >= until => {
                self.state = BreakerState::HalfOpen;
                self.transitions.half_opened += 1;
                true
            }
            BreakerState::Open { .. } => false,
        }
    }

    /// Reports a send that succeeded.
    pub fn on_success(&mut self) {
        self.consecutive_failures = 0;
        if self.state == BreakerState::HalfOpen {
            self.state = BreakerState::Closed;
            self.transitions.closed += 1;
        }
    }

    /// Reports a send that failed at `now`.
    pub fn on_failure(&mut self, now: u64) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let trip = match self.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => {
                self.consecutive_failures >= self.config.failure_threshold.max(1)
            }
            BreakerState::Open { .. } => false,
        };
        if trip {
            self.state = BreakerState::Open {
                until: now.saturating_add(self.config.open_for_ns),
            };
            self.transitions.opened += 1;
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// When the breaker next changes on its own: the end of the open period.
    pub fn deadline(&self) -> Option<u64> {
        match self.state {
            BreakerState::Open { until } => Some(until),
            _ => None,
        }
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Transition counts so far.
    pub fn transitions(&self) -> BreakerTransitions {
        self.transitions
    }

    /// The configuration.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn full_cycle_with_a_fake_clock() {
        let mut b = CircuitBreaker::new(BreakerConfig::DEFAULT);
        let mut now = 0;
        // Nine failures keep it closed; a success resets the count.
        for _ in 0..9 {
            assert!(b.allow(now));
            b.on_failure(now);
        }
        b.on_success();
        assert_eq!(b.consecutive_failures(), 0);
        for _ in 0..10 {
            assert!(b.allow(now));
            b.on_failure(now);
            now += S / 10;
        }
        let opened_at = now - S / 10;
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: opened_at + 30 * S
            }
        );
        assert_eq!(b.deadline(), Some(opened_at + 30 * S));
        // Nothing goes out while open.
        assert!(!b.allow(opened_at + 30 * S - 1));
        // Time is up: one probe; it fails, so the breaker reopens for 30 s.
        assert!(b.allow(opened_at + 30 * S));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.on_failure(opened_at + 30 * S);
        assert_eq!(
            b.state(),
            BreakerState::Open {
                until: opened_at + 60 * S
            }
        );
        // Next probe succeeds: closed again, recovered.
        assert!(b.allow(opened_at + 61 * S));
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(
            b.transitions(),
            BreakerTransitions {
                opened: 2,
                half_opened: 2,
                closed: 1
            }
        );
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn threshold_zero_means_one_and_deadlines_saturate() {
        let mut b = CircuitBreaker::new(BreakerConfig::new(0, u64::MAX));
        b.on_failure(5);
        assert_eq!(b.state(), BreakerState::Open { until: u64::MAX });
        // Failures reported while open change nothing.
        b.on_failure(6);
        assert_eq!(b.transitions().opened, 1);
        assert!(!b.allow(u64::MAX - 1));
    }
}

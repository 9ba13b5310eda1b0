//! Circuit breaker around the transport: stop sending to a destination that
//! keeps failing, then probe it now and then.
//!
//! ```text
//!       failure score reaches 2N                  open_for elapsed
//!  Closed ───────────────────────────▶ Open ───────────────────────▶ HalfOpen
//!    ▲                                  ▲                               │
//!    │             probe fails          └───────────────────────────────┤
//!    └──────────────────────────────────── probe succeeds ◀─────────────┘
//! ```
//!
//! Failures are weighed against successes, not only counted in a row: each
//! failure adds 2 to a score, each success takes 1 off (down to 0), and the
//! breaker opens when the score reaches twice the threshold N. So N failures
//! in a row open it, and so does any steady share of failures above one
//! send in three. A UDP socket reports a remote host's ICMP refusal on the
//! send after the one refused, and that send (refused) is followed by one
//! that goes out: a dead collector fails every other send, which a count of
//! consecutive failures never notices.
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
    /// Failures in a row that open the breaker (default 10; 0 is taken as
    /// 1). Failures among successes count too: see the module documentation.
    pub failure_threshold: u32,
    /// How long it stays open before a probe, in nanoseconds (default 30 s).
    pub open_for_ns: u64,
}

impl BreakerConfig {
    /// 10 failures, 30 s open.
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BreakerState {
    /// Sending normally.
    #[default]
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
    /// 2 per failure, less 1 per success, while closed.
    failure_score: u32,
    transitions: BreakerTransitions,
}

impl CircuitBreaker {
    /// A closed breaker.
    pub const fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            state: BreakerState::Closed,
            failure_score: 0,
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
        match self.state {
            BreakerState::Closed => self.failure_score = self.failure_score.saturating_sub(1),
            BreakerState::HalfOpen => {
                self.state = BreakerState::Closed;
                self.transitions.closed += 1;
            }
            BreakerState::Open { .. } => {}
        }
    }

    /// Reports a send that failed at `now`.
    pub fn on_failure(&mut self, now: u64) {
        let trip = match self.state {
            BreakerState::HalfOpen => true,
            BreakerState::Closed => {
                self.failure_score = self.failure_score.saturating_add(2);
                self.failure_score >= self.config.failure_threshold.max(1).saturating_mul(2)
            }
            // Nothing should have been sent: not counted.
            BreakerState::Open { .. } => false,
        };
        if trip {
            self.state = BreakerState::Open {
                until: now.saturating_add(self.config.open_for_ns),
            };
            self.transitions.opened += 1;
            // A destination that recovers starts with a clean record.
            self.failure_score = 0;
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

    /// The failure score (2 per failure, less 1 per success, while closed,
    /// since the breaker last opened); it opens at twice the threshold.
    pub fn failure_score(&self) -> u32 {
        self.failure_score
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
        // Nine failures keep it closed; 17 successes then take all but one
        // point of their score off.
        for _ in 0..9 {
            assert!(b.allow(now));
            b.on_failure(now);
        }
        assert_eq!(b.failure_score(), 18);
        for _ in 0..17 {
            b.on_success();
        }
        assert_eq!(b.failure_score(), 1);
        b.on_success();
        // Ten failures in a row open it.
        for _ in 0..10 {
            assert_eq!(b.state(), BreakerState::Closed);
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
    fn failures_every_other_send_open_it() {
        // A remote collector's refusals, reported on alternate sends: each
        // pair of sends adds 1 to the score.
        let mut b = CircuitBreaker::new(BreakerConfig::DEFAULT);
        for i in 0..100 {
            b.on_success();
            b.on_failure(i);
            if b.state() != BreakerState::Closed {
                assert_eq!(i, 18, "opens at the 19th failure (score 2 + 18)");
                return;
            }
        }
        panic!("the breaker never opened");
    }

    #[test]
    fn rarer_failures_keep_it_closed_and_recovery_starts_clean() {
        let mut b = CircuitBreaker::new(BreakerConfig::new(10, S));
        // One send in three fails: the score stays low.
        for i in 0..1_000 {
            if i % 3 == 0 {
                b.on_failure(i);
            } else {
                b.on_success();
            }
            assert!(b.failure_score() <= 2);
            assert_eq!(b.state(), BreakerState::Closed);
        }
        for _ in 0..10 {
            b.on_failure(0);
        }
        assert!(!b.allow(S - 1));
        assert!(b.allow(S));
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        // The failures before it opened are forgotten.
        for _ in 0..9 {
            b.on_failure(S);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.on_failure(S);
        assert!(matches!(b.state(), BreakerState::Open { .. }));
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

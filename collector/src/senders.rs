//! Per-sender accounting from each datagram's sender id and sequence
//! number: datagrams received, lost (sequence gaps), duplicated, reordered
//! (arrived after a later one), and restarts (a sender's sequence starting
//! again from the beginning, or going back together with its clock: a
//! device with a fixed sender id that rebooted). A 64-datagram window
//! tells duplicates from late arrivals; a datagram counted as lost that
//! turns up later is taken back off the losses.

/// What one sender's datagrams did on the way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderStats {
    /// Datagrams received (duplicates not included).
    pub received: u64,
    /// Events (or series records) in them.
    pub events: u64,
    /// Sequence numbers skipped and not (yet) seen.
    pub lost: u64,
    /// Datagrams seen twice.
    pub duplicated: u64,
    /// Datagrams that arrived after a later one.
    pub reordered: u64,
    /// Times the sequence started again.
    pub restarts: u64,
    /// Datagrams ignored because their sequence jumped further ahead than
    /// any sender's could ([`MAX_SEQUENCE_JUMP`]): forged or corrupt, not
    /// loss.
    pub suspect: u64,
}

/// The bytes a tracked sender holds: its state, its entry in the table
/// and its place in the eviction order.
pub(crate) const SENDER_BYTES: u64 =
    (std::mem::size_of::<(u64, SenderState)>() + 1 + std::mem::size_of::<u64>()) as u64
        + crate::memory::ALLOCATION_BYTES;

/// Sequence window and counts for one sender.
#[derive(Clone, Debug, Default)]
pub(crate) struct SenderState {
    pub(crate) highest: u64,
    /// The base timestamp of the datagram with the highest sequence.
    pub(crate) highest_timestamp: u64,
    /// Bit `i`: sequence `highest - i` was received.
    pub(crate) window: u64,
    /// When its totals started (series datagrams), to tell a restart.
    pub(crate) started: Option<u64>,
    /// The series it has sent totals for.
    pub(crate) series: Vec<usize>,
    /// The sequence of the last suspect datagram: a second one just after
    /// it is a sender that really is there (it resynchronises).
    pub(crate) suspect_at: Option<u64>,
    pub(crate) stats: SenderStats,
}

/// How far back a sequence number may be before it counts as a restart
/// (when it is also near zero) or as too late to tell.
const WINDOW: u64 = 64;

/// The furthest a sender's sequence may jump ahead (datagrams it sent that
/// never arrived): 2^24, minutes of loss at the highest rate a sender
/// reaches and hours at common ones. A larger jump (one forged datagram
/// with sequence 2^64 − 1, say) is not counted as loss: the datagram is
/// ignored and counted as suspect. A sender that really did jump (its
/// next datagram follows the suspect one within 64) is taken from there,
/// the suspect one still counted.
pub const MAX_SEQUENCE_JUMP: u64 = 1 << 24;

/// A datagram with an earlier sequence number whose clock is this much
/// behind the latest one comes from a restarted sender (its clock started
/// again), not from the network reordering: 1 s.
const RESTART_CLOCK_STEP_NS: u64 = 1_000_000_000;

/// What a datagram's sequence number says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen before.
    New,
    /// A duplicate: ignore it.
    Duplicate,
    /// The sender started again: what it sent before is final.
    Restart,
    /// A jump no sender makes: ignore it.
    Suspect,
}

impl SenderState {
    pub(crate) fn first(sequence: u64, timestamp: u64) -> Self {
        SenderState {
            highest: sequence,
            highest_timestamp: timestamp,
            window: 1,
            stats: SenderStats {
                received: 1,
                ..SenderStats::default()
            },
            ..SenderState::default()
        }
    }

    pub(crate) fn restart(&mut self, sequence: u64, timestamp: u64) -> Seen {
        self.stats.restarts += 1;
        self.take_from(sequence, timestamp);
        Seen::Restart
    }

    /// Accounts from `sequence` on, as from a first datagram.
    fn take_from(&mut self, sequence: u64, timestamp: u64) {
        self.stats.received += 1;
        self.highest = sequence;
        self.highest_timestamp = timestamp;
        self.window = 1;
    }

    /// Takes in `sequence` (with the datagram's base timestamp).
    pub(crate) fn observe(&mut self, sequence: u64, timestamp: u64) -> Seen {
        let s = &mut self.stats;
        if sequence <= self.highest
            && timestamp.saturating_add(RESTART_CLOCK_STEP_NS) < self.highest_timestamp
        {
            // The sender's sequence and clock both started again (a device
            // with a fixed sender id rebooting).
            return self.restart(sequence, timestamp);
        }
        if sequence > self.highest {
            let gap = sequence - self.highest;
            if gap > MAX_SEQUENCE_JUMP {
                let follows = self
                    .suspect_at
                    .is_some_and(|at| sequence > at && sequence - at <= WINDOW);
                if follows {
                    // Taken from here, as the sender's first datagram is
                    // (whether it also started again, its totals' start
                    // time tells).
                    self.suspect_at = None;
                    self.take_from(sequence, timestamp);
                    return Seen::New;
                }
                s.suspect += 1;
                self.suspect_at = Some(sequence);
                return Seen::Suspect;
            }
            s.lost += gap - 1;
            self.window = if gap >= WINDOW {
                1
            } else {
                (self.window << gap) | 1
            };
            self.highest = sequence;
            self.highest_timestamp = timestamp;
            s.received += 1;
            return Seen::New;
        }
        let back = self.highest - sequence;
        if back >= WINDOW {
            if sequence < WINDOW {
                // Started again from the beginning: a restart.
                return self.restart(sequence, timestamp);
            }
            // Too old to tell a duplicate from a late arrival.
            s.reordered += 1;
            s.received += 1;
            s.lost = s.lost.saturating_sub(1);
            return Seen::New;
        }
        let bit = 1u64 << back;
        if self.window & bit != 0 {
            s.duplicated += 1;
            return Seen::Duplicate;
        }
        self.window |= bit;
        s.reordered += 1;
        s.received += 1;
        s.lost = s.lost.saturating_sub(1);
        Seen::New
    }
}

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

/// The bytes a tracked sender holds: its state, its entry in the table,
/// its place in the eviction order and in the shards' owners.
pub(crate) const SENDER_BYTES: u64 = (std::mem::size_of::<(u64, SenderState)>()
    + std::mem::size_of::<u64>()
    + std::mem::size_of::<(u64, usize)>()
    + 2) as u64
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

#[cfg(test)]
mod tests {
    use crate::aggregation::Aggregate;
    use crate::collector::Collector;
    use crate::shared::Limits;

    use crate::senders::{MAX_SEQUENCE_JUMP, Seen, SenderState};

    use stats_core::Kind;

    use crate::test_support::{Sender, find};

    #[test]
    fn sequences_tell_loss_duplicates_reordering_and_restarts() {
        let mut s = Sender::new(7);
        let k = s.key("k", &[]);
        let d: Vec<Vec<u8>> = (0..10)
            .map(|_| s.datagram(&[(k, Kind::Counter, 1.0)]))
            .collect();
        let mut c = Collector::new(Limits::default());
        // 0, 1, 3, 2 (late), 3 again (duplicate), 6 (4 and 5 lost), 9 (7, 8 lost).
        for i in [0, 1, 3, 2, 3, 6, 9] {
            c.ingest(&d[i]);
        }
        let (id, stats) = c.senders().next().unwrap();
        assert_eq!(id, 7);
        assert_eq!(
            (
                stats.received,
                stats.lost,
                stats.duplicated,
                stats.reordered
            ),
            (6, 4, 1, 1)
        );
        assert_eq!(stats.events, 6);
        // The duplicate was not aggregated twice.
        assert_eq!(find(&c, "k").aggregate(), Aggregate::Counter(6.0));
        // The sender restarts: a fresh encoder with the same id.
        let mut again = Sender::new(7);
        let k2 = again.key("k", &[]);
        let mut far = Sender::new(7);
        let kf = far.key("k", &[]);
        for _ in 0..100 {
            far.datagram(&[(kf, Kind::Counter, 1.0)]);
        }
        c.ingest(&far.datagram(&[(kf, Kind::Counter, 1.0)])); // sequence 100
        c.ingest(&again.datagram(&[(k2, Kind::Counter, 1.0)])); // sequence 0
        let stats = c.senders().next().unwrap().1;
        assert_eq!(stats.restarts, 1);
    }

    #[test]
    fn a_sequence_jump_no_sender_makes_is_suspect_not_loss() {
        let mut state = SenderState::first(5, 1_000);
        // One forged datagram with the highest sequence there is.
        assert_eq!(state.observe(u64::MAX, 1_000), Seen::Suspect);
        assert_eq!((state.stats.lost, state.stats.suspect), (0, 1));
        // The real sender carries on, its loss accounted as before.
        assert_eq!(state.observe(6, 1_001), Seen::New);
        assert_eq!(state.observe(8, 1_002), Seen::New);
        assert_eq!((state.stats.lost, state.stats.received), (1, 3));
        // The largest jump a sender may make is loss, not suspect.
        assert_eq!(state.observe(8 + MAX_SEQUENCE_JUMP, 1_003), Seen::New);
        assert_eq!(state.stats.lost, MAX_SEQUENCE_JUMP);
        // A sender that really jumped further: its second datagram after
        // the jump resynchronises, and what follows is accounted from it.
        let far = 8 + 3 * MAX_SEQUENCE_JUMP;
        assert_eq!(state.observe(far, 1_004), Seen::Suspect);
        assert_eq!(state.observe(far + 1, 1_005), Seen::New);
        assert_eq!(state.observe(far + 3, 1_006), Seen::New);
        assert_eq!(
            (state.stats.suspect, state.stats.restarts, state.stats.lost),
            (2, 0, MAX_SEQUENCE_JUMP + 1)
        );
    }

    #[test]
    fn a_reboot_with_a_fixed_sender_id_is_a_restart_not_duplicates() {
        let second = 1_000_000_000;
        let mut before = Sender::new(9);
        let k = before.key("boots", &[]);
        let mut c = Collector::new(Limits::default());
        let sent: Vec<Vec<u8>> = (0..10)
            .map(|i| before.datagram_at(&[(k, Kind::Counter, 1.0)], 30 * second + i * 1_000))
            .collect();
        for d in &sent[..9] {
            c.ingest(d);
        }
        // Reordered by the network: older sequence, a clock a little behind.
        c.ingest(&sent[9]);
        c.ingest(&sent[4]);
        let stats = c.senders().next().unwrap().1;
        assert_eq!((stats.duplicated, stats.restarts), (1, 0));
        // The device reboots: sequence and clock start again.
        let mut after = Sender::new(9);
        let k2 = after.key("boots", &[]);
        for i in 0..3 {
            c.ingest(&after.datagram_at(&[(k2, Kind::Counter, 1.0)], i * 1_000));
        }
        let stats = c.senders().next().unwrap().1;
        assert_eq!(
            (stats.restarts, stats.duplicated, stats.received),
            (1, 1, 13)
        );
        assert_eq!(find(&c, "boots").aggregate(), Aggregate::Counter(13.0));
    }
}

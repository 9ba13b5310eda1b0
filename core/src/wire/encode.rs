//! Packing events into datagrams.

use super::primitives::{
    MAX_VARINT, put_bytes, put_str, put_varint, put_varint_cold, varint_len, zigzag,
};
use super::{
    CRC_LEN, Codec, DEFAULT_MAX_DATAGRAM, ENCODING_SHIFT, FIXED_HEADER_LEN, MAGIC, MAX_DATAGRAM,
    MAX_KEYS_PER_DATAGRAM, MIN_DATAGRAM, PRIORITY_SHIFT, RELATIVE_BIT, VALUE_F64, VALUE_INT,
    VERSION, as_exact_int, crc32,
};
use crate::event::{Event, KeyId, Kind};
use crate::registry::Key;
use core::fmt;

/// How an [`Encoder`] frames datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct EncoderConfig {
    /// Identifies this sender to receivers; pick it at random at each process
    /// start so that a receiver notices restarts.
    pub sender_id: u64,
    /// Largest datagram to produce, header and CRC included: from
    /// [`MIN_DATAGRAM`] (512) to [`MAX_DATAGRAM`] (65,507). Default
    /// [`DEFAULT_MAX_DATAGRAM`] (1,432).
    pub max_datagram: usize,
    /// The encoding: this crate's binary format (the default) or StatsD
    /// lines (which carry no sender id, sequence or checksum).
    pub codec: Codec,
    /// The container id DogStatsD lines carry (`|c:`, DogStatsD 1.2);
    /// empty for none. Other codecs leave it out.
    pub container_id: &'static str,
    /// StatsD lines of timers and histograms stand for this many values
    /// each (`|@1/N`: the sender kept one in N); 1 by default.
    pub sample_one_in: u32,
}

impl EncoderConfig {
    /// The default datagram limit (1,432 bytes) and codec (native) for
    /// `sender_id`, no container id.
    pub const fn new(sender_id: u64) -> Self {
        EncoderConfig {
            sender_id,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            codec: Codec::Native,
            container_id: "",
            sample_one_in: 1,
        }
    }

    /// The same configuration with StatsD timer and histogram lines that
    /// stand for `n` values each (at least 1).
    pub const fn with_sample_one_in(self, n: u32) -> Self {
        EncoderConfig {
            sample_one_in: if n == 0 { 1 } else { n },
            ..self
        }
    }

    /// The same configuration with a container id for DogStatsD lines.
    pub const fn with_container_id(self, container_id: &'static str) -> Self {
        EncoderConfig {
            container_id,
            ..self
        }
    }

    /// The same configuration with another codec.
    pub const fn with_codec(self, codec: Codec) -> Self {
        EncoderConfig { codec, ..self }
    }

    /// The same configuration with another datagram limit.
    pub const fn with_max_datagram(self, max_datagram: usize) -> Self {
        EncoderConfig {
            max_datagram,
            ..self
        }
    }
}

/// Why an encoder could not be made or a datagram started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// `max_datagram` is outside 512..=65,507.
    MaxDatagram {
        /// The value given.
        got: usize,
    },
    /// The buffer handed to [`Encoder::begin`] is shorter than `max_datagram`.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::MaxDatagram { got } => {
                write!(
                    f,
                    "max datagram must be {MIN_DATAGRAM}..={MAX_DATAGRAM} bytes, got {got}"
                )
            }
            EncodeError::BufferTooSmall { needed, got } => {
                write!(f, "datagram buffer has {got} bytes, needs {needed}")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why [`Writer::push`] did not take an event. The datagram is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PushError {
    /// This datagram is full: finish it and push the event into the next.
    Full,
    /// The key lookup found no metric for the event's key id.
    UnknownKey,
    /// The event with its name and tags does not fit even an empty datagram
    /// of this size: it can never be sent and should be counted as refused.
    Oversized {
        /// Bytes the event needs in a datagram of its own.
        needed: usize,
        /// The datagram limit.
        max_datagram: usize,
    },
    /// The value is NaN or infinite and the codec (StatsD) cannot carry it.
    #[cfg(feature = "statsd")]
    NotFinite,
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PushError::Full => f.write_str("datagram full"),
            PushError::UnknownKey => f.write_str("no metric registered for the event's key"),
            #[cfg(feature = "statsd")]
            PushError::NotFinite => f.write_str("StatsD cannot carry NaN or infinite values"),
            PushError::Oversized {
                needed,
                max_datagram,
            } => write!(
                f,
                "event with its name and tags needs {needed} bytes, more than the {max_datagram}-byte datagram limit"
            ),
        }
    }
}

impl core::error::Error for PushError {}

/// Slots in the per-datagram key table: twice the key limit keeps probes short.
const TABLE_SLOTS: usize = 2 * MAX_KEYS_PER_DATAGRAM;

/// Where the probe for `tag` (`KeyId + 1`) starts.
#[inline]
fn home_slot(tag: u32) -> usize {
    (tag.wrapping_sub(1).wrapping_mul(0x9E37_79B9) >> 24) as usize % TABLE_SLOTS
}

/// A sender's framing state: its id, the next sequence number and the
/// per-datagram key table. Reused for every datagram; never allocates.
#[derive(Clone)]
pub struct Encoder {
    pub(super) config: EncoderConfig,
    pub(super) next_sequence: u64,
    /// Events (or series) refused as oversized or with an unknown key, ever.
    pub(super) refused: u64,
    /// The keys defined in the current datagram, as `KeyId + 1`, by index.
    defined: [u32; MAX_KEYS_PER_DATAGRAM],
    /// Open-addressing table over `defined`: index + 1, or 0 when empty.
    /// One byte a slot keeps the whole table at 768 bytes (a microcontroller
    /// pays for it in RAM).
    table: [u8; TABLE_SLOTS],
    pub(super) keys: usize,
}

impl fmt::Debug for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encoder")
            .field("config", &self.config)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder for `config`; its first datagram has sequence number 0.
    pub const fn new(config: EncoderConfig) -> Result<Self, EncodeError> {
        if config.max_datagram < MIN_DATAGRAM || config.max_datagram > MAX_DATAGRAM {
            return Err(EncodeError::MaxDatagram {
                got: config.max_datagram,
            });
        }
        Ok(Encoder {
            config,
            next_sequence: 0,
            refused: 0,
            defined: [0; MAX_KEYS_PER_DATAGRAM],
            table: [0; TABLE_SLOTS],
            keys: 0,
        })
    }

    /// The configuration.
    pub const fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// Events refused so far because they could never be sent: too large for
    /// any datagram ([`PushError::Oversized`]) or without a registered key
    /// ([`PushError::UnknownKey`]).
    pub const fn refused(&self) -> u64 {
        self.refused
    }

    /// Changes the datagram limit (for instance to what a transport takes);
    /// the sender id and sequence carry on.
    pub fn set_max_datagram(&mut self, max_datagram: usize) -> Result<(), EncodeError> {
        if !(MIN_DATAGRAM..=MAX_DATAGRAM).contains(&max_datagram) {
            return Err(EncodeError::MaxDatagram { got: max_datagram });
        }
        self.config.max_datagram = max_datagram;
        Ok(())
    }

    /// The sequence number the next datagram will carry.
    pub const fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The datagram index of `id`, and whether it is new (then it has been
    /// added to the table); `None` when the datagram has no room for
    /// another key.
    pub(super) fn key_index(&mut self, id: KeyId) -> Option<(usize, bool)> {
        let tag = id.get().wrapping_add(1);
        let mut slot = home_slot(tag);
        loop {
            match usize::from(self.table[slot]) {
                0 => break,
                k if self.defined[k - 1] == tag => return Some((k - 1, false)),
                _ => slot = (slot + 1) % TABLE_SLOTS,
            }
        }
        if self.keys == MAX_KEYS_PER_DATAGRAM || tag == 0 {
            return None;
        }
        let index = self.keys;
        self.defined[index] = tag;
        self.table[slot] = (index + 1) as u8;
        self.keys += 1;
        Some((index, true))
    }

    /// Readies a new datagram in `buf`: its first `max_datagram` bytes (an
    /// error if it has fewer) and the sequence number it will carry, with
    /// no key defined yet.
    pub(super) fn claim<'b>(
        &mut self,
        buf: &'b mut [u8],
    ) -> Result<(&'b mut [u8], u64), EncodeError> {
        let max = self.config.max_datagram;
        let got = buf.len();
        let Some(buf) = buf.get_mut(..max) else {
            return Err(EncodeError::BufferTooSmall { needed: max, got });
        };
        self.forget_keys_from(0);
        Ok((buf, self.next_sequence))
    }

    /// Drops the key definitions from the `keys`-th on from the
    /// per-datagram table (all of them for a new datagram, or those of a push
    /// that did not fit).
    pub(super) fn forget_keys_from(&mut self, keys: usize) {
        // Latest first: a later key never sits in an earlier key's probe
        // chain, so emptying from the end keeps every chain intact.
        for index in (keys..self.keys).rev() {
            let mut slot = home_slot(self.defined[index]);
            while usize::from(self.table[slot]) != index + 1 {
                slot = (slot + 1) % TABLE_SLOTS;
            }
            self.table[slot] = 0;
        }
        self.keys = keys;
    }
}

/// What a datagram format does: the native format ([`Native`]) and the
/// StatsD lines (`statsd::LineFormat`) each implement it, and a [`Writer`]
/// hands every step to the format its codec names (`format.rs`).
pub(super) trait Format {
    /// Writes what comes before the events (from `w.len == 0`).
    fn begin(&self, w: &mut Writer<'_>);

    /// Appends `event`; on error the datagram is left as it was.
    fn push<'k>(
        &self,
        w: &mut Writer<'_>,
        event: &Event,
        key: impl FnOnce(KeyId) -> Option<Key<'k>>,
    ) -> Result<(), PushError>;

    /// Bytes [`Format::finish`] adds after the events.
    fn trailer_len(&self) -> usize;

    /// Seals the datagram; its length.
    fn finish(&self, w: &mut Writer<'_>) -> usize;
}

/// This crate's binary format (`WIRE.md`): a header with the sender id and
/// sequence, events with their keys defined on first use, a CRC.
pub(super) struct Native;

impl Format for Native {
    fn begin(&self, w: &mut Writer<'_>) {
        w.buf[..2].copy_from_slice(&MAGIC);
        w.buf[2] = VERSION;
        w.buf[3] = 0; // flags
        w.buf[4..6].copy_from_slice(&0u16.to_le_bytes()); // event count, set by finish
        w.buf[6..14].copy_from_slice(&w.encoder.config.sender_id.to_le_bytes());
        w.len = FIXED_HEADER_LEN;
        // Cannot fail: 14 + 10 + 10 bytes fit any datagram of 512 or more.
        let (sequence, base) = (w.sequence, w.previous_timestamp);
        let header = put_varint_cold(w.buf, &mut w.len, sequence)
            .and_then(|()| put_varint_cold(w.buf, &mut w.len, base));
        debug_assert!(header.is_some());
    }

    #[inline]
    fn push<'k>(
        &self,
        w: &mut Writer<'_>,
        event: &Event,
        key: impl FnOnce(KeyId) -> Option<Key<'k>>,
    ) -> Result<(), PushError> {
        let start = w.len;
        let keys_before = w.encoder.keys;
        let mut definition = None;
        match w.try_push(event, key, &mut definition) {
            Ok(()) => {
                w.count += 1;
                Ok(())
            }
            Err(e) => {
                w.len = start;
                w.encoder.forget_keys_from(keys_before);
                let error = match (e, definition) {
                    (Stop::UnknownKey, _) => PushError::UnknownKey,
                    // An empty datagram defines the key of its first event.
                    (Stop::NoRoom, key) if w.count == 0 => PushError::Oversized {
                        needed: w.needed_alone(event, key.as_ref()),
                        max_datagram: w.buf.len(),
                    },
                    (Stop::NoRoom, _) => return Err(PushError::Full),
                };
                w.encoder.refused += 1;
                Err(error)
            }
        }
    }

    fn trailer_len(&self) -> usize {
        CRC_LEN
    }

    fn finish(&self, w: &mut Writer<'_>) -> usize {
        w.encoder.next_sequence = w.sequence.wrapping_add(1);
        w.buf[4..6].copy_from_slice(&w.count.to_le_bytes());
        let crc = crc32(&w.buf[..w.len]);
        w.buf[w.len..w.len + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
        w.len + CRC_LEN
    }
}

/// Writes a key definition: name, tag count, tags. The tag count (at most
/// `MAX_TAGS`: a one-byte varint) is written once the tags have been.
pub(super) fn put_key(buf: &mut [u8], at: &mut usize, key: &Key<'_>) -> Option<()> {
    let mut i = *at;
    put_str(buf, &mut i, key.name())?;
    let count_at = i;
    put_bytes(buf, &mut i, &[0])?;
    for (k, v) in key.tags() {
        put_str(buf, &mut i, k)?;
        put_str(buf, &mut i, v)?;
        buf[count_at] += 1;
    }
    *at = i;
    Some(())
}

/// The bytes a key definition takes.
pub(super) fn key_len(key: &Key<'_>) -> usize {
    let str_len = |s: &str| varint_len(s.len() as u64) + s.len();
    str_len(key.name())
        + 1
        + key
            .tags()
            .map(|(k, v)| str_len(k) + str_len(v))
            .sum::<usize>()
}

/// One datagram being filled. [`Writer::finish`] seals it.
pub struct Writer<'b> {
    pub(super) encoder: &'b mut Encoder,
    pub(super) buf: &'b mut [u8],
    /// Bytes written.
    pub(super) len: usize,
    /// Events pushed.
    pub(super) count: u16,
    pub(super) previous_timestamp: u64,
    /// The datagram's sequence number.
    pub(super) sequence: u64,
    /// StatsD: the last line's key and kind, and where its values end (a
    /// next value of the same timer or histogram joins that line).
    #[cfg(feature = "statsd")]
    pub(super) last_line: Option<(KeyId, Kind, usize)>,
}

impl fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("len", &self.len)
            .field("events", &self.count)
            .finish_non_exhaustive()
    }
}

/// Why a push stopped; turned into a [`PushError`].
enum Stop {
    NoRoom,
    UnknownKey,
}

impl<'b> Writer<'b> {
    /// Events in the datagram so far.
    pub fn events(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether no event has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    #[inline]
    fn try_push<'k>(
        &mut self,
        event: &Event,
        lookup: impl FnOnce(KeyId) -> Option<Key<'k>>,
        definition: &mut Option<Key<'k>>,
    ) -> Result<(), Stop> {
        if self.count == u16::MAX {
            return Err(Stop::NoRoom);
        }
        let (index, new) = self.encoder.key_index(event.key).ok_or(Stop::NoRoom)?;
        let key = if new {
            Some(*definition.insert(lookup(event.key).ok_or(Stop::UnknownKey)?))
        } else {
            None
        };
        let limit = self.buf.len() - CRC_LEN;
        let buf = &mut self.buf[..limit];
        let mut at = self.len;
        put_varint(buf, &mut at, index as u64).ok_or(Stop::NoRoom)?;
        if let Some(key) = key {
            put_key(buf, &mut at, &key).ok_or(Stop::NoRoom)?;
        }
        let int = as_exact_int(event.value);
        let encoding = if int.is_some() { VALUE_INT } else { VALUE_F64 };
        let relative = if event.relative && event.kind == Kind::Gauge {
            RELATIVE_BIT
        } else {
            0
        };
        let meta = event.kind as u8
            | (event.priority as u8) << PRIORITY_SHIFT
            | encoding << ENCODING_SHIFT
            | relative;
        put_bytes(buf, &mut at, &[meta]).ok_or(Stop::NoRoom)?;
        let delta = event.timestamp.wrapping_sub(self.previous_timestamp) as i64;
        put_varint(buf, &mut at, zigzag(delta)).ok_or(Stop::NoRoom)?;
        match int {
            Some(i) => put_varint(buf, &mut at, zigzag(i)),
            None => put_bytes(buf, &mut at, &event.value.to_le_bytes()),
        }
        .ok_or(Stop::NoRoom)?;
        self.len = at;
        self.previous_timestamp = event.timestamp;
        Ok(())
    }

    /// Bytes `event` would need as the only event of a datagram (with the
    /// largest header).
    fn needed_alone(&self, event: &Event, key: Option<&Key<'_>>) -> usize {
        let header = FIXED_HEADER_LEN + 2 * MAX_VARINT + CRC_LEN;
        let definition = key.map_or(0, key_len);
        let value = as_exact_int(event.value).map_or(8, |i| varint_len(zigzag(i)));
        let delta = varint_len(zigzag(
            event.timestamp.wrapping_sub(self.previous_timestamp) as i64,
        ));
        header + 1 + definition + 1 + delta + value
    }
}

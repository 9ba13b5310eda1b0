//! Checking and reading datagrams.
//!
//! Total: any byte string yields a [`Datagram`] whose events come out one by
//! one, or a [`DecodeError`]. Nothing panics, nothing allocates; the key table
//! is a fixed array of [`MAX_KEYS_PER_DATAGRAM`] entries, and names and tags
//! are borrowed from the datagram.

use super::decode_error::DecodeError;
use super::key_definition::{KeyEntry, WireTags, take_key};
use super::primitives::{take_f64, take_i64, take_u32, take_u64};
use super::records;
use super::series::{SERIES_VERSION, SERIES_VERSION_2, SeriesIter};
use super::{
    CRC_LEN, ENCODING_SHIFT, FIXED_HEADER_LEN, KIND_MASK, MAGIC, MAX_KEYS_PER_DATAGRAM,
    MIN_EVENT_LEN, PRIORITY_SHIFT, RELATIVE_BIT, RESERVED_MASK, VALUE_F64, VALUE_INT, VERSION,
    crc32,
};
use crate::event::{Kind, Priority};
use core::fmt;

/// The fixed and varint header fields of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Format version: 1 for events, 2 for series totals.
    pub version: u8,
    /// The sender's random id (changes when the sender restarts).
    pub sender_id: u64,
    /// The sender's datagram sequence number.
    pub sequence: u64,
    /// Version 1: the timestamp the first event's delta is relative to;
    /// versions 2 and 3: when the totals were read. Nanoseconds on the sender's
    /// clock.
    pub base_timestamp: u64,
    /// Versions 2 and 3: when the sender's totals started (nanoseconds); 0 in
    /// version 1.
    pub started: u64,
    /// Events (version 1) or series (versions 2 and 3) in the datagram.
    pub event_count: u16,
}

/// A checked datagram: its header and its events.
#[derive(Clone, Debug)]
pub struct Datagram<'a> {
    /// The header.
    pub header: Header,
    body: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Whether this is a series datagram (version 2 or 3) rather than events.
    pub fn is_series(&self) -> bool {
        matches!(self.header.version, SERIES_VERSION | SERIES_VERSION_2)
    }

    /// Reads the whole body, events or series records, and gives the first
    /// fault in it. A receiver takes a datagram whole or not at all
    /// (`WIRE.md`, "Decoding rules"): it checks before it counts anything,
    /// and then iterating cannot fail.
    pub fn check(&self) -> Result<(), DecodeError> {
        if self.is_series() {
            self.series().try_for_each(|s| s.map(drop))
        } else {
            self.events().try_for_each(|e| e.map(drop))
        }
    }

    /// The events, in the order they were packed. A series datagram yields
    /// one [`DecodeError::WrongBody`].
    pub fn events(&self) -> Events<'a> {
        let series = self.is_series();
        Events {
            rest: if series { &[] } else { self.body },
            keys: heapless::Vec::new(),
            left: if series { 1 } else { self.header.event_count },
            previous_timestamp: self.header.base_timestamp,
            failed: false,
            version: self.header.version,
        }
    }

    /// The series records, in the order they were packed. An events
    /// datagram yields one [`DecodeError::WrongBody`].
    pub fn series(&self) -> SeriesIter<'a> {
        let series = self.is_series();
        SeriesIter {
            version: self.header.version,
            rest: if series { self.body } else { &[] },
            keys: heapless::Vec::new(),
            left: if series { self.header.event_count } else { 0 },
            failed: !series,
        }
    }
}

/// Checks `datagram`'s header, size and CRC. Events are read (and checked)
/// by iterating [`Datagram::events`].
pub fn decode(datagram: &[u8]) -> Result<Datagram<'_>, DecodeError> {
    let len = datagram.len();
    if len < FIXED_HEADER_LEN + 2 + CRC_LEN {
        return Err(DecodeError::TooShort { len });
    }
    if datagram[..2] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let (contents, trailer) = datagram.split_at(len - CRC_LEN);
    let carried = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let computed = crc32(contents);
    if carried != computed {
        return Err(DecodeError::CrcMismatch { carried, computed });
    }
    let version = contents[2];
    if !matches!(version, VERSION | SERIES_VERSION | SERIES_VERSION_2) {
        return Err(DecodeError::UnsupportedVersion { version });
    }
    if contents[3] != 0 {
        return Err(DecodeError::UnsupportedFlags { flags: contents[3] });
    }
    let event_count = u16::from_le_bytes([contents[4], contents[5]]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&contents[6..FIXED_HEADER_LEN]);
    let (sequence, rest) = take_u64(&contents[FIXED_HEADER_LEN..])?;
    let (base_timestamp, rest) = take_u64(rest)?;
    let (started, body) = if version != VERSION {
        take_u64(rest)?
    } else {
        (0, rest)
    };
    // Every event, and every series record, takes at least 4 bytes.
    if usize::from(event_count) * MIN_EVENT_LEN > body.len() {
        return Err(DecodeError::TooManyEvents { count: event_count });
    }
    Ok(Datagram {
        header: Header {
            version,
            sender_id: u64::from_le_bytes(id),
            sequence,
            base_timestamp,
            started,
            event_count,
        },
        body,
    })
}

/// Iterator over a datagram's events. After the first error it yields that
/// error and then ends.
pub struct Events<'a> {
    rest: &'a [u8],
    /// Filled as definitions are read; not initialised ahead (it is 5 KiB).
    keys: heapless::Vec<KeyEntry<'a>, MAX_KEYS_PER_DATAGRAM>,
    left: u16,
    previous_timestamp: u64,
    failed: bool,
    version: u8,
}

impl fmt::Debug for Events<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("left", &self.left)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Events<'a> {
    fn next_event(&mut self) -> Result<DecodedEvent<'a>, DecodeError> {
        // The per-event fields: postcard encodings, inlined (primitives.rs).
        if self.version != VERSION {
            return Err(DecodeError::WrongBody {
                version: self.version,
            });
        }
        let (index, rest) = take_u32(self.rest)?;
        let (key, rest) = take_key(&mut self.keys, index, rest)?;
        let (&meta, rest) = rest.split_first().ok_or(DecodeError::Truncated)?;
        let bad = DecodeError::BadMeta { meta };
        if meta & RESERVED_MASK != 0 {
            return Err(bad);
        }
        let kind = Kind::from_code(meta & KIND_MASK).ok_or(bad)?;
        let relative = meta & RELATIVE_BIT != 0;
        if relative && kind != Kind::Gauge {
            return Err(bad);
        }
        let priority = Priority::from_code((meta >> PRIORITY_SHIFT) & 0b11).ok_or(bad)?;
        let (delta, rest) = take_i64(rest)?;
        // Modulo 2^64, as the encoder computed it: every timestamp is reachable.
        let timestamp = self.previous_timestamp.wrapping_add(delta as u64);
        let (value, rest) = match (meta >> ENCODING_SHIFT) & 0b11 {
            VALUE_INT => {
                let (i, rest) = take_i64(rest)?;
                (i as f64, rest)
            }
            VALUE_F64 => take_f64(rest)?,
            _ => return Err(bad),
        };
        self.previous_timestamp = timestamp;
        self.rest = rest;
        Ok(DecodedEvent {
            name: key.name,
            tags: key.tags(),
            kind,
            priority,
            value,
            timestamp,
            relative,
            key_index: index as u8,
        })
    }
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<DecodedEvent<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(instead) = records::before_record(&mut self.left, &mut self.failed, self.rest) {
            return instead;
        }
        let event = self.next_event();
        self.failed = event.is_err();
        Some(event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        records::size_hint(self.left)
    }
}

/// One event read from a datagram, borrowing its name and tags.
#[derive(Clone, Debug)]
pub struct DecodedEvent<'a> {
    /// The metric's name.
    pub name: &'a str,
    tags: WireTags<'a>,
    /// The kind of metric.
    pub kind: Kind,
    /// The priority it was recorded with.
    pub priority: Priority,
    /// The value.
    pub value: f64,
    /// When it was recorded, in nanoseconds on the sender's clock.
    pub timestamp: u64,
    /// For a gauge: the value is a signed change, not the new value.
    pub relative: bool,
    /// Index of the metric's key within this datagram.
    pub key_index: u8,
}

impl<'a> DecodedEvent<'a> {
    /// The metric's tags as (key, value) pairs.
    pub fn tags(&self) -> WireTags<'a> {
        self.tags.clone()
    }
}

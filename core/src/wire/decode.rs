//! Checking and reading datagrams.
//!
//! Total: any byte string yields a [`Datagram`] whose events come out one by
//! one, or a [`DecodeError`]. Nothing panics, nothing allocates; the key table
//! is a fixed array of [`MAX_KEYS_PER_DATAGRAM`] entries, and names and tags
//! are borrowed from the datagram.

use super::primitives::{take_f64, take_i64, take_str, take_u32, take_u64};
use super::series::{SERIES_VERSION, SERIES_VERSION_2, SeriesIter};
use super::{
    CRC_LEN, ENCODING_SHIFT, FIXED_HEADER_LEN, KIND_MASK, MAGIC, MAX_KEYS_PER_DATAGRAM,
    MIN_EVENT_LEN, PRIORITY_SHIFT, RELATIVE_BIT, RESERVED_MASK, VALUE_F64, VALUE_INT, VERSION,
    crc32,
};
use crate::event::{Kind, Priority};
use crate::registry::MAX_TAGS;
use core::fmt;

/// Why a datagram, or an event in it, could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than a header and a CRC.
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// Does not start with the magic bytes `ST`.
    BadMagic,
    /// A format version this decoder does not read.
    UnsupportedVersion {
        /// The version byte.
        version: u8,
    },
    /// Header flags this decoder does not know.
    UnsupportedFlags {
        /// The flags byte.
        flags: u8,
    },
    /// The CRC trailer does not match the contents.
    CrcMismatch {
        /// CRC carried by the datagram.
        carried: u32,
        /// CRC computed over the contents.
        computed: u32,
    },
    /// The header announces more events than the datagram could hold.
    TooManyEvents {
        /// The announced count.
        count: u16,
    },
    /// The data ends in the middle of a field or before the announced events.
    Truncated,
    /// Bytes are left after the announced events.
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// A varint is longer than its type allows.
    BadVarint,
    /// A name or tag is not valid UTF-8.
    InvalidUtf8,
    /// An event refers to a key index that is neither defined nor the next one.
    IndexOutOfRange {
        /// The index.
        index: u32,
        /// Keys defined so far.
        defined: usize,
    },
    /// More than [`MAX_KEYS_PER_DATAGRAM`] keys are defined.
    TooManyKeys,
    /// A key definition has more than [`MAX_TAGS`] tags, or a name or tag
    /// longer than 255 bytes.
    KeyTooLarge,
    /// A key definition names the same tag key twice.
    DuplicateTag,
    /// An event's meta byte has a bad priority, value encoding or reserved bit.
    BadMeta {
        /// The meta byte.
        meta: u8,
    },
    /// A distribution's bucket list is malformed: ids not ascending or
    /// beyond the shift's range, a zero count, or counts whose total
    /// overflows 64 bits.
    BadBuckets,
    /// The datagram's body is not what was asked for: events were read
    /// from a series datagram (version 2 or 3), or series from an events
    /// datagram (version 1).
    WrongBody {
        /// The datagram's version.
        version: u8,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::TooShort { len } => write!(f, "datagram of {len} bytes is too short"),
            DecodeError::BadMagic => f.write_str("bad magic bytes"),
            DecodeError::UnsupportedVersion { version } => {
                write!(f, "unsupported format version {version}")
            }
            DecodeError::UnsupportedFlags { flags } => {
                write!(f, "unsupported header flags {flags:#04x}")
            }
            DecodeError::CrcMismatch { carried, computed } => {
                write!(
                    f,
                    "CRC mismatch: carried {carried:#010x}, computed {computed:#010x}"
                )
            }
            DecodeError::TooManyEvents { count } => {
                write!(f, "{count} events cannot fit this datagram")
            }
            DecodeError::Truncated => f.write_str("datagram truncated"),
            DecodeError::TrailingBytes { len } => write!(f, "{len} bytes after the last event"),
            DecodeError::BadVarint => f.write_str("malformed varint"),
            DecodeError::InvalidUtf8 => f.write_str("name or tag is not UTF-8"),
            DecodeError::IndexOutOfRange { index, defined } => {
                write!(f, "key index {index} out of range ({defined} defined)")
            }
            DecodeError::TooManyKeys => {
                write!(f, "more than {MAX_KEYS_PER_DATAGRAM} keys in one datagram")
            }
            DecodeError::KeyTooLarge => {
                f.write_str("key definition exceeds the name, tag or tag-count limits")
            }
            DecodeError::DuplicateTag => f.write_str("key definition repeats a tag key"),
            DecodeError::BadMeta { meta } => write!(f, "bad event meta byte {meta:#04x}"),
            DecodeError::BadBuckets => f.write_str("malformed distribution bucket list"),
            DecodeError::WrongBody { version } => {
                write!(f, "a version {version} datagram does not carry that body")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

impl DecodeError {
    /// A stable snake_case name of the error's kind (for counters and
    /// metric labels).
    pub const fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::BadMagic => "bad_magic",
            DecodeError::UnsupportedVersion { .. } => "unsupported_version",
            DecodeError::UnsupportedFlags { .. } => "unsupported_flags",
            DecodeError::CrcMismatch { .. } => "crc_mismatch",
            DecodeError::TooManyEvents { .. } => "too_many_events",
            DecodeError::Truncated => "truncated",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::BadVarint => "bad_varint",
            DecodeError::InvalidUtf8 => "invalid_utf8",
            DecodeError::IndexOutOfRange { .. } => "index_out_of_range",
            DecodeError::TooManyKeys => "too_many_keys",
            DecodeError::KeyTooLarge => "key_too_large",
            DecodeError::DuplicateTag => "duplicate_tag",
            DecodeError::BadMeta { .. } => "bad_meta",
            DecodeError::BadBuckets => "bad_buckets",
            DecodeError::WrongBody { .. } => "wrong_body",
        }
    }
}

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

/// Where a key definition's name and tags are (offsets into its datagram are
/// not needed: the slices borrow it).
#[derive(Clone, Copy)]
pub(super) struct KeyEntry<'a> {
    pub(super) name: &'a str,
    tags: TagText<'a>,
    tag_count: u8,
}

impl<'a> KeyEntry<'a> {
    pub(super) fn tags(&self) -> WireTags<'a> {
        WireTags {
            rest: self.tags,
            left: self.tag_count,
        }
    }
}

/// The key at datagram index `index`: defined before, or defined now at
/// the front of `rest` (then added to `keys`).
pub(super) fn take_key<'a>(
    keys: &mut heapless::Vec<KeyEntry<'a>, MAX_KEYS_PER_DATAGRAM>,
    index: u32,
    rest: &'a [u8],
) -> Result<(KeyEntry<'a>, &'a [u8]), DecodeError> {
    let defined = keys.len();
    match keys.get(index as usize) {
        Some(&key) => Ok((key, rest)),
        None if index as usize == defined => {
            let (key, rest) = key_definition(rest)?;
            keys.push(key).map_err(|_| DecodeError::TooManyKeys)?;
            Ok((key, rest))
        }
        None => Err(DecodeError::IndexOutOfRange { index, defined }),
    }
}

/// A key definition's tags: checked text with one-byte length prefixes, or
/// (when a string is 128 bytes or longer) raw bytes whose strings were each
/// checked once.
#[derive(Clone, Copy, Debug)]
enum TagText<'a> {
    Checked(&'a str),
    Raw(&'a [u8]),
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

/// Reads and checks a key definition: name, tag count, tags.
///
/// When every length prefix (and the tag count) is a single byte — a
/// minimal varint below 128, the usual case — each is an ASCII character,
/// so the whole definition is UTF-8 exactly when every string in it is:
/// one `from_utf8` call checks them all, and the strings are then sliced
/// out of the checked text. Otherwise each string is checked on its own.
fn key_definition<'a>(bytes: &'a [u8]) -> Result<(KeyEntry<'a>, &'a [u8]), DecodeError> {
    let (name, mut short, rest) = take_raw(bytes)?;
    let (tag_count, after_count) = take_u32(rest)?;
    if tag_count as usize > MAX_TAGS {
        return Err(DecodeError::KeyTooLarge);
    }
    short &= rest.len() - after_count.len() == 1;
    let mut rest = after_count;
    let tags_at = bytes.len() - rest.len();
    for _ in 0..2 * tag_count {
        let (_, one_byte, r) = take_raw(rest)?;
        short &= one_byte;
        rest = r;
    }
    let definition = &bytes[..bytes.len() - rest.len()];
    let key = if short {
        let text = core::str::from_utf8(definition).map_err(|_| DecodeError::InvalidUtf8)?;
        KeyEntry {
            name: text
                .get(1..1 + name.len())
                .ok_or(DecodeError::InvalidUtf8)?,
            tags: TagText::Checked(text.get(tags_at..).ok_or(DecodeError::InvalidUtf8)?),
            tag_count: tag_count as u8,
        }
    } else {
        let tags = &definition[tags_at..];
        let mut check = tags;
        for _ in 0..2 * tag_count {
            let (_, r) = take_str(check)?;
            check = r;
        }
        KeyEntry {
            name: core::str::from_utf8(name).map_err(|_| DecodeError::InvalidUtf8)?,
            tags: TagText::Raw(tags),
            tag_count: tag_count as u8,
        }
    };
    if tag_count > 1 {
        // The keys read once (at most MAX_TAGS, checked above), each
        // compared with those before it.
        let mut seen = [""; MAX_TAGS];
        for (i, (k, _)) in key.tags().enumerate() {
            if seen.get(..i).is_some_and(|before| before.contains(&k)) {
                return Err(DecodeError::DuplicateTag);
            }
            if let Some(slot) = seen.get_mut(i) {
                *slot = k;
            }
        }
    }
    Ok((key, rest))
}

/// A length-prefixed string's bytes, not yet checked as UTF-8, at most 255
/// long (the registry's limit), and whether its prefix was a single byte.
fn take_raw(bytes: &[u8]) -> Result<(&[u8], bool, &[u8]), DecodeError> {
    let (len, rest) = take_u64(bytes)?;
    if len > 255 {
        return Err(DecodeError::KeyTooLarge);
    }
    let one_byte = bytes.len() - rest.len() == 1;
    let (s, rest) = rest
        .split_at_checked(len as usize)
        .ok_or(DecodeError::Truncated)?;
    Ok((s, one_byte, rest))
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<DecodedEvent<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if self.rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(DecodeError::TrailingBytes {
                len: self.rest.len(),
            }));
        }
        self.left -= 1;
        let event = self.next_event();
        self.failed = event.is_err();
        Some(event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left) + 1))
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

/// Splits a string with a one-byte length prefix off checked text.
fn split_short(text: &str) -> Option<(&str, &str)> {
    let len = usize::from(*text.as_bytes().first()?);
    Some((text.get(1..1 + len)?, text.get(1 + len..)?))
}

/// Iterator over the tags of a [`DecodedEvent`] (already checked when the key
/// definition was read).
#[derive(Clone, Debug)]
pub struct WireTags<'a> {
    rest: TagText<'a>,
    left: u8,
}

impl<'a> Iterator for WireTags<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        match self.rest {
            TagText::Checked(text) => {
                let (k, rest) = split_short(text)?;
                let (v, rest) = split_short(rest)?;
                self.rest = TagText::Checked(rest);
                Some((k, v))
            }
            TagText::Raw(bytes) => {
                let (k, rest) = take_str(bytes).ok()?;
                let (v, rest) = take_str(rest).ok()?;
                self.rest = TagText::Raw(rest);
                Some((k, v))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

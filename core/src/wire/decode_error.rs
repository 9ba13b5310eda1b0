//! Why a datagram, or an event or record in it, could not be read.

use super::MAX_KEYS_PER_DATAGRAM;
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
    /// A key definition has more than [`MAX_TAGS`](crate::registry::MAX_TAGS) tags, or a name or tag
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

//! Reading a key definition (a metric's name and tags, defined on first
//! use in a datagram) and the tags it holds: the events' and the series'
//! decoders share it.

use super::MAX_KEYS_PER_DATAGRAM;
use super::decode_error::DecodeError;
use super::primitives::{take_str, take_u32, take_u64};
use crate::registry::MAX_TAGS;

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
#[inline]
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

/// Splits a string with a one-byte length prefix off checked text.
fn split_short(text: &str) -> Option<(&str, &str)> {
    let len = usize::from(*text.as_bytes().first()?);
    Some((text.get(1..1 + len)?, text.get(1 + len..)?))
}

/// Iterator over the tags of a [`DecodedEvent`](super::DecodedEvent) (already checked when the key
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

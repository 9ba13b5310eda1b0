//! Bounded registry that resolves a metric's name and tags to a [`KeyId`].
//!
//! Registration happens once per metric (when a handle is created), so the
//! hot path carries a 4-byte id instead of strings. Storage is fixed at
//! compile time — `KEYS` entries and a `BYTES` arena — so a registry can live
//! in a `static` on a microcontroller. Nothing here allocates or panics: every
//! limit is a [`RegistryError`].
//!
//! Registering the same name and tags (in the same order) again returns the
//! same id. Lookup is a scan over 4-byte hashes, which is fine for a
//! registration path; the per-event path never touches the registry.
//!
//! A key is stored as a *record*: a string holding its name and tags, each
//! behind its length written as one character (U+0000 to U+00FF). Records
//! are `str`, never bytes, so reading a key back (which the encoder does for
//! each datagram that defines it) needs no UTF-8 check, and firmware links
//! none.

use crate::event::KeyId;
use core::fmt;

/// Longest metric name, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag key or tag value, in bytes.
pub const MAX_TAG_LEN: usize = 255;
/// Most tags on one metric.
pub const MAX_TAGS: usize = 8;
/// The longest record [`Key::write_record`] writes, in bytes (a length of
/// 128 or more takes two).
pub const MAX_RECORD_LEN: usize = 3 + MAX_NAME_LEN + MAX_TAGS * (4 + 2 * MAX_TAG_LEN);

/// Why a metric could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RegistryError {
    /// Every key slot is taken.
    Full {
        /// How many keys the registry holds.
        capacity: usize,
    },
    /// The string arena has no room for this name and its tags.
    OutOfSpace {
        /// Bytes the metric needs.
        needed: usize,
        /// Bytes left in the arena.
        available: usize,
    },
    /// The name is longer than [`MAX_NAME_LEN`].
    NameTooLong {
        /// The name's length in bytes.
        len: usize,
    },
    /// More than [`MAX_TAGS`] tags.
    TooManyTags {
        /// How many tags were given.
        count: usize,
    },
    /// A tag key or value is longer than [`MAX_TAG_LEN`].
    TagTooLong {
        /// The offending string's length in bytes.
        len: usize,
    },
    /// Two tags have the same key (a metric's tags are a set of keys, each
    /// with one value).
    DuplicateTag {
        /// Position of the second tag with that key.
        index: usize,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegistryError::Full { capacity } => {
                write!(f, "metric registry full ({capacity} keys)")
            }
            RegistryError::OutOfSpace { needed, available } => write!(
                f,
                "metric registry out of string space (need {needed} bytes, {available} left)"
            ),
            RegistryError::NameTooLong { len } => {
                write!(f, "metric name is {len} bytes, the limit is {MAX_NAME_LEN}")
            }
            RegistryError::TooManyTags { count } => {
                write!(f, "{count} tags given, the limit is {MAX_TAGS}")
            }
            RegistryError::TagTooLong { len } => {
                write!(
                    f,
                    "tag key or value is {len} bytes, the limit is {MAX_TAG_LEN}"
                )
            }
            RegistryError::DuplicateTag { index } => {
                write!(f, "tag {index} repeats the key of an earlier tag")
            }
        }
    }
}

impl core::error::Error for RegistryError {}

#[derive(Clone, Copy, Debug)]
struct Entry {
    offset: u32,
    len: u32,
    hash: u32,
}

impl Entry {
    const EMPTY: Entry = Entry {
        offset: 0,
        len: 0,
        hash: 0,
    };
}

/// Fixed-capacity map from (name, tags) to [`KeyId`].
///
/// Each key's record (see [`Key::write_record`]) is stored once in a
/// `BYTES`-byte string arena.
pub struct Registry<const KEYS: usize = 1024, const BYTES: usize = 65536> {
    entries: [Entry; KEYS],
    len: usize,
    arena: heapless::String<BYTES>,
}

impl<const KEYS: usize, const BYTES: usize> Default for Registry<KEYS, BYTES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const KEYS: usize, const BYTES: usize> fmt::Debug for Registry<KEYS, BYTES> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("keys", &self.len)
            .field("key_capacity", &KEYS)
            .field("bytes_used", &self.arena.len())
            .field("byte_capacity", &BYTES)
            .finish()
    }
}

/// FNV-1a, 32-bit: cheap and good enough to make the scan compare mostly hashes.
struct Fnv(u32);

impl Fnv {
    fn new() -> Self {
        Fnv(0x811c_9dc5)
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
    }
    fn str(&mut self, s: &str) {
        // The length keeps ("ab","c") and ("a","bc") apart.
        self.bytes(&[s.len() as u8]);
        self.bytes(s.as_bytes());
    }
}

/// The hash of a key: the name's, plus each tag's (a sum, so that the
/// tags' order does not matter: a metric's tags are a set).
fn hash_key(name: &str, tags: &[(&str, &str)]) -> u32 {
    let mut h = Fnv::new();
    h.str(name);
    tags.iter().fold(h.0, |sum, (k, v)| {
        let mut t = Fnv::new();
        t.str(k);
        t.str(v);
        sum.wrapping_add(t.0)
    })
}

impl<const KEYS: usize, const BYTES: usize> Registry<KEYS, BYTES> {
    /// An empty registry (usable in a `static`).
    pub const fn new() -> Self {
        Registry {
            entries: [Entry::EMPTY; KEYS],
            len: 0,
            arena: heapless::String::new(),
        }
    }

    /// The id for `name` with `tags`, registering it if it is new.
    pub fn register(&mut self, name: &str, tags: &[(&str, &str)]) -> Result<KeyId, RegistryError> {
        let needed = Key::record_len(name, tags)?;
        let hash = hash_key(name, tags);
        if let Some(id) = self.find(hash, name, tags) {
            return Ok(id);
        }
        if self.len == KEYS {
            return Err(RegistryError::Full { capacity: KEYS });
        }
        let start = self.arena.len();
        let available = BYTES - start;
        if needed > available {
            return Err(RegistryError::OutOfSpace { needed, available });
        }
        Key::write_record(name, tags, &mut self.arena)?;
        self.entries[self.len] = Entry {
            offset: start as u32,
            len: needed as u32,
            hash,
        };
        let id = KeyId(self.len as u32);
        self.len += 1;
        Ok(id)
    }

    /// The id of `name` with `tags` if it is registered.
    pub fn lookup(&self, name: &str, tags: &[(&str, &str)]) -> Option<KeyId> {
        self.find(hash_key(name, tags), name, tags)
    }

    fn find(&self, hash: u32, name: &str, tags: &[(&str, &str)]) -> Option<KeyId> {
        self.entries[..self.len]
            .iter()
            .enumerate()
            .filter(|(_, e)| e.hash == hash)
            .map(|(i, _)| KeyId(i as u32))
            .find(|&id| self.get(id).is_some_and(|key| key.matches(name, tags)))
    }

    /// The name and tags behind `id`, or `None` if this registry did not issue it.
    pub fn get(&self, id: KeyId) -> Option<Key<'_>> {
        let entry = self.entries[..self.len].get(id.0 as usize)?;
        let start = entry.offset as usize;
        Key::from_record(self.arena.get(start..start + entry.len as usize)?)
    }

    /// How many keys are registered.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is registered.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many keys fit.
    pub const fn capacity(&self) -> usize {
        KEYS
    }

    /// Bytes of the string arena in use.
    pub fn bytes_used(&self) -> usize {
        self.arena.len()
    }
}

/// A registered metric's name and tags, borrowed from the registry.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    name: &'a str,
    tag_count: u8,
    tags: &'a str,
}

/// Splits a length-prefixed string off the front of `record`.
fn take_str(record: &str) -> Option<(&str, &str)> {
    let (len, rest) = take_len(record)?;
    rest.split_at_checked(len)
}

/// Splits a length character (U+0000 to U+00FF: one byte, or two starting
/// with 0xC2 or 0xC3) off the front of `record`.
fn take_len(record: &str) -> Option<(usize, &str)> {
    let (len, bytes) = match *record.as_bytes() {
        [b, ..] if b < 0x80 => (usize::from(b), 1),
        [b @ (0xC2 | 0xC3), c, ..] => (usize::from(b & 0x03) << 6 | usize::from(c & 0x3F), 2),
        _ => return None,
    };
    Some((len, record.get(bytes..)?))
}

/// Appends the character for `len` and then `s` to a record (`s` is
/// empty after the tag count). One shared copy: registration is not hot.
#[inline(never)]
fn put<W: fmt::Write + ?Sized>(out: &mut W, len: usize, s: &str) -> fmt::Result {
    out.write_char(len_char(len))?;
    out.write_str(s)
}

/// The character a record writes for `len` (at most 255).
fn len_char(len: usize) -> char {
    char::from(len as u8)
}

/// Bytes the character for `len` takes.
fn len_char_bytes(len: usize) -> usize {
    1 + usize::from(len >= 0x80)
}

impl<'a> Key<'a> {
    /// Checks `name` and `tags` against the limits ([`MAX_NAME_LEN`],
    /// [`MAX_TAGS`], [`MAX_TAG_LEN`], no tag key twice) and gives the
    /// length of their record.
    pub fn record_len(name: &str, tags: &[(&str, &str)]) -> Result<usize, RegistryError> {
        if name.len() > MAX_NAME_LEN {
            return Err(RegistryError::NameTooLong { len: name.len() });
        }
        if tags.len() > MAX_TAGS {
            return Err(RegistryError::TooManyTags { count: tags.len() });
        }
        if let Some(len) = tags
            .iter()
            .flat_map(|(k, v)| [k.len(), v.len()])
            .find(|&len| len > MAX_TAG_LEN)
        {
            return Err(RegistryError::TagTooLong { len });
        }
        if let Some(index) =
            (1..tags.len()).find(|&i| tags[..i].iter().any(|(k, _)| *k == tags[i].0))
        {
            return Err(RegistryError::DuplicateTag { index });
        }
        let str_len = |s: &str| len_char_bytes(s.len()) + s.len();
        Ok(str_len(name)
            + 1
            + tags
                .iter()
                .map(|(k, v)| str_len(k) + str_len(v))
                .sum::<usize>())
    }

    /// Appends the record of `name` and `tags` to `out`, for
    /// [`Key::from_record`], and returns its length in bytes
    /// ([`Key::record_len`]). A record is `name_len name tag_count (key_len
    /// key value_len value)*`, each length and the count one character
    /// (U+0000 to U+00FF). Key stores other than [`Registry`] (the std
    /// adapter's interner) keep these. If `out` refuses a write, the error
    /// is `OutOfSpace` with `available: 0` (and `out` keeps what it took).
    ///
    /// The record holds the tags sorted by key (bytewise), whatever order
    /// they are given in: a metric's identity is its name and its set of
    /// tags, so `[("a", "1"), ("b", "2")]` and `[("b", "2"), ("a", "1")]`
    /// give the same record.
    pub fn write_record<W: fmt::Write + ?Sized>(
        name: &str,
        tags: &[(&str, &str)],
        out: &mut W,
    ) -> Result<usize, RegistryError> {
        let needed = Key::record_len(name, tags)?;
        let mut write = || -> fmt::Result {
            put(out, name.len(), name)?;
            put(out, tags.len(), "")?;
            // At most 8 tags with distinct keys: pick the next smallest key
            // each time (no buffer, and registration is not hot).
            let mut last: Option<&str> = None;
            for _ in 0..tags.len() {
                let next = tags
                    .iter()
                    .filter(|(k, _)| last.is_none_or(|l| *k > l))
                    .min_by_key(|(k, _)| *k);
                if let Some((k, v)) = next {
                    put(out, k.len(), k)?;
                    put(out, v.len(), v)?;
                    last = Some(k);
                }
            }
            Ok(())
        };
        write().map_err(|fmt::Error| RegistryError::OutOfSpace {
            needed,
            available: 0,
        })?;
        Ok(needed)
    }

    /// The key in a record made by [`Key::write_record`], or `None` if
    /// `record` does not start as one. Tags that do not parse end
    /// [`Key::tags`] (and count in no [`Key::tag_count`]).
    pub fn from_record(record: &'a str) -> Option<Self> {
        let (name, rest) = take_str(record)?;
        let (tag_count, tags) = take_len(rest)?;
        if tag_count > MAX_TAGS {
            return None;
        }
        Some(Key {
            name,
            tag_count: tag_count as u8,
            tags,
        })
    }

    /// The metric's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// How many tags the metric has (as many as [`Key::tags`] yields).
    pub fn tag_count(&self) -> usize {
        self.tags().count()
    }

    /// The tags as (key, value) pairs, sorted by key.
    pub fn tags(&self) -> Tags<'a> {
        Tags {
            rest: self.tags,
            left: self.tag_count,
        }
    }

    /// Whether this key is `name` with `tags` (in any order; `tags` has
    /// no key twice, as [`Key::record_len`] checks).
    pub fn matches(&self, name: &str, tags: &[(&str, &str)]) -> bool {
        self.name == name
            && self.tag_count() == tags.len()
            && self.tags().all(|tag| tags.contains(&tag))
    }
}

/// Iterator over a [`Key`]'s tags.
#[derive(Clone, Debug)]
pub struct Tags<'a> {
    rest: &'a str,
    left: u8,
}

impl<'a> Iterator for Tags<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let left = self.left.checked_sub(1)?;
        let (k, rest) = take_str(self.rest)?;
        let (v, rest) = take_str(rest)?;
        self.rest = rest;
        self.left = left;
        Some((k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_is_idempotent_and_ids_are_dense() {
        let mut r: Registry<8, 256> = Registry::new();
        let a = r
            .register("http.requests", &[("route", "/"), ("code", "200")])
            .unwrap();
        let b = r
            .register("http.requests", &[("route", "/"), ("code", "500")])
            .unwrap();
        let c = r.register("queue.depth", &[]).unwrap();
        assert_eq!((a.get(), b.get(), c.get()), (0, 1, 2));
        assert_eq!(
            r.register("http.requests", &[("route", "/"), ("code", "200")]),
            Ok(a)
        );
        assert_eq!(r.lookup("queue.depth", &[]), Some(c));
        assert_eq!(r.lookup("queue.depth", &[("a", "b")]), None);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn get_returns_what_was_registered() {
        let mut r: Registry<4, 256> = Registry::new();
        let id = r.register("ünïcode.name", &[("", ""), ("k", "v")]).unwrap();
        let key = r.get(id).unwrap();
        assert_eq!(key.name(), "ünïcode.name");
        assert_eq!(key.tag_count(), 2);
        let tags: [(&str, &str); 2] = [("", ""), ("k", "v")];
        assert!(key.tags().eq(tags));
        assert!(r.get(KeyId(1)).is_none());
    }

    #[test]
    fn length_prefixes_keep_split_strings_apart() {
        let mut r: Registry<4, 256> = Registry::new();
        let a = r.register("m", &[("ab", "c")]).unwrap();
        let b = r.register("m", &[("a", "bc")]).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn limits_are_typed_errors() {
        let mut r: Registry<2, 64> = Registry::new();
        let long = [b'x'; MAX_NAME_LEN + 1];
        let long = core::str::from_utf8(&long).unwrap();
        assert_eq!(
            r.register(long, &[]),
            Err(RegistryError::NameTooLong { len: 256 })
        );
        assert_eq!(
            r.register("m", &[("k", long)]),
            Err(RegistryError::TagTooLong { len: 256 })
        );
        let many = [("k", "v"); MAX_TAGS + 1];
        assert_eq!(
            r.register("m", &many),
            Err(RegistryError::TooManyTags { count: 9 })
        );
        assert_eq!(
            r.register(&long[..70], &[]),
            Err(RegistryError::OutOfSpace {
                needed: 72,
                available: 64
            })
        );
        r.register("a", &[]).unwrap();
        r.register("b", &[]).unwrap();
        assert_eq!(
            r.register("c", &[]),
            Err(RegistryError::Full { capacity: 2 })
        );
        // Already-registered keys still resolve when full.
        assert!(r.register("a", &[]).is_ok());
    }

    #[test]
    fn limits_at_the_boundary_are_accepted() {
        let mut r: Registry<2, 8192> = Registry::new();
        let long = [b'y'; MAX_TAG_LEN];
        let long = core::str::from_utf8(&long).unwrap();
        let keys: [std::string::String; MAX_TAGS] =
            core::array::from_fn(|i| std::format!("{i}{}", &long[1..]));
        let tags: [(&str, &str); MAX_TAGS] = core::array::from_fn(|i| (keys[i].as_str(), long));
        let id = r.register(&long[..MAX_NAME_LEN], &tags).unwrap();
        let key = r.get(id).unwrap();
        assert_eq!(key.name().len(), MAX_NAME_LEN);
        assert_eq!(key.tags().count(), MAX_TAGS);
    }

    #[test]
    fn records_round_trip_and_malformed_ones_are_refused() {
        let long = "é".repeat(100); // 200 bytes: a two-byte length
        let tags = [("k", long.as_str()), ("", "v")];
        let mut record = std::string::String::new();
        let len = Key::write_record(&long, &tags, &mut record).unwrap();
        assert_eq!(len, record.len());
        assert_eq!(Ok(len), Key::record_len(&long, &tags));
        let key = Key::from_record(&record).unwrap();
        assert_eq!(key.name(), long);
        assert!(key.tags().eq([tags[1], tags[0]]), "sorted by key");
        assert!(key.matches(&long, &tags));
        // Cut anywhere (on a character boundary), a record is refused or
        // loses tags, and says so in its tag count; the name is never
        // misread.
        for (cut, _) in record.char_indices() {
            if let Some(k) = Key::from_record(&record[..cut]) {
                assert_eq!(k.name(), long, "cut at {cut}");
                assert!(k.tag_count() < 2, "cut at {cut}");
                assert_eq!(k.tags().count(), k.tag_count());
            }
        }
        assert!(Key::from_record("").is_none());
        // A length beyond the rest of the record.
        assert!(Key::from_record("\u{5}ab").is_none());
        // A tag count that is not a length character, or above the limit.
        assert!(Key::from_record("\u{1}a\u{400}").is_none());
        assert!(Key::from_record("\u{1}a\u{9}").is_none());
    }

    #[test]
    fn a_writer_without_room_is_out_of_space() {
        let mut small: heapless::String<8> = heapless::String::new();
        assert_eq!(
            Key::write_record("name", &[("k", "v")], &mut small),
            Err(RegistryError::OutOfSpace {
                needed: 10,
                available: 0
            })
        );
    }

    /// A metric is its name and its set of tags: the order tags are given
    /// in does not make another key, and a tag key given twice is refused.
    #[test]
    fn tags_are_a_set() {
        let mut r: Registry<4, 256> = Registry::new();
        let a = r
            .register("m", &[("a", "1"), ("b", "2"), ("c", "3")])
            .unwrap();
        let b = r
            .register("m", &[("c", "3"), ("a", "1"), ("b", "2")])
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            r.lookup("m", &[("b", "2"), ("c", "3"), ("a", "1")]),
            Some(a)
        );
        assert!(
            r.get(a)
                .unwrap()
                .tags()
                .eq([("a", "1"), ("b", "2"), ("c", "3")])
        );
        assert_ne!(r.register("m", &[("a", "1"), ("b", "3")]).unwrap(), a);
        assert_eq!(r.lookup("m", &[("a", "1"), ("b", "2")]), None);
        assert_eq!(
            r.register("m", &[("a", "1"), ("b", "2"), ("a", "1")]),
            Err(RegistryError::DuplicateTag { index: 2 })
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn errors_display() {
        let e = RegistryError::Full { capacity: 4 };
        assert_eq!(std::format!("{e}"), "metric registry full (4 keys)");
    }
}

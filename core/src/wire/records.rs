//! Where a datagram body's list of records ends: the bookkeeping the
//! event and series iterators share.

use super::decode_error::DecodeError;

/// What a record iterator does before reading a record, given the records
/// `left` to read, whether a read has `failed`, and the bytes after the
/// last one read (`rest`): `None` to read the next one (counted off
/// `left`), or `Some` of what to return instead: the end (`None`), or
/// [`DecodeError::TrailingBytes`] once when bytes follow the last record
/// (the iterator ends after it).
#[inline]
pub(super) fn before_record<T>(
    left: &mut u16,
    failed: &mut bool,
    rest: &[u8],
) -> Option<Option<Result<T, DecodeError>>> {
    if *failed {
        return Some(None);
    }
    if *left == 0 {
        if rest.is_empty() {
            return Some(None);
        }
        *failed = true;
        return Some(Some(Err(DecodeError::TrailingBytes { len: rest.len() })));
    }
    *left -= 1;
    None
}

/// A record iterator's size hint: at most the records left, and one error.
#[inline]
pub(super) fn size_hint(left: u16) -> (usize, Option<usize>) {
    (0, Some(usize::from(left) + 1))
}

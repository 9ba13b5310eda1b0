//! The gauge protocol's writes (see the module documentation): a set
//! that starts a new epoch, and a change that finds its shard's sum
//! stale.

use super::layout::{A, CLEAN, ENTRY_WORDS, EPOCH, EPOCH_STEP, PENDING, SWITCHING, f64_add};
use super::series::SeriesId;
use super::word::Word;
use crate::event::Kind;
use crate::sync::{Ordering, fence};

/// A gauge's value and epoch words (see "The gauge protocol").
#[inline]
pub(super) fn gauge_words(words: &[Word], series: SeriesId) -> Option<(&Word, &Word)> {
    if !series.is(Kind::Gauge) {
        return None;
    }
    let e = series.index() * ENTRY_WORDS;
    Some((words.get(e + A)?, words.get(e + EPOCH)?))
}

/// Sets the gauge of value `word` and epoch `epoch` to `value` (see
/// "The gauge protocol").
#[inline]
pub(super) fn set_gauge(word: &Word, epoch: &Word, value: f64) {
    // Acquire: a set that sees the epoch a set started sees that set's
    // value, and stores after it.
    if epoch.load_acquire() & (CLEAN | PENDING) == CLEAN {
        // A value already there is not written again: a gauge set to the
        // same value from several threads (a pool's size, a steady queue)
        // then only reads its cache line, which the cores can share.
        let bits = value.to_bits();
        if word.load() != bits {
            word.store(bits);
        }
    } else {
        set_dirty_gauge(word, epoch, value);
    }
}

/// Sets a gauge whose epoch has changes (or a set pending): starts the
/// next epoch, so that they no longer count. Its stores of the value are
/// swaps (Release): the reader that reads the value sees the epoch
/// pending; and changes made meanwhile move the value with
/// compare-and-swaps, which a swap is ordered with (loom, which checks
/// this in `tests/loom.rs`, lets a plain store race those unseen).
#[cold]
#[inline(never)]
pub(super) fn set_dirty_gauge(word: &Word, epoch: &Word, value: f64) {
    let bits = value.to_bits();
    loop {
        let t = epoch.load_acquire();
        if t & (CLEAN | PENDING) != 0 {
            // Clean again, or another set is starting the next epoch:
            // this one is concurrent with it and may be the one that wins.
            word.swap_release(bits);
            return;
        }
        if epoch.compare_exchange(t, t | PENDING).is_ok() {
            // Release: the reader that reads this value sees the epoch
            // pending (see `gauge_value`).
            word.swap_release(bits);
            // Release: the reader that sees the next epoch sees the value.
            epoch.store_release((t + EPOCH_STEP) | CLEAN);
            return;
        }
    }
}

/// A change by a shard whose cell's tag is not the gauge's epoch (its
/// first in the epoch) or while a set is pending (see "The gauge
/// protocol").
#[cold]
#[inline(never)]
pub(super) fn change_gauge_slow(word: &Word, epoch: &Word, sum: &Word, tag: &Word, delta: f64) {
    loop {
        let t = epoch.load();
        if t & PENDING != 0 {
            word.update(|bits| Some(f64_add(bits, delta)));
            return;
        }
        if t & CLEAN != 0 && epoch.compare_exchange(t, t & !CLEAN).is_err() {
            continue;
        }
        let t = t & !CLEAN;
        if tag.load() == t {
            sum.store(f64_add(sum.load(), delta));
        } else {
            // Release: a reader that sees the tag cleared sees the epoch
            // that made the sum stale (it reads the epoch again after).
            tag.store_release(SWITCHING);
            // Release: a reader that reads the sum below sees the tag
            // cleared (see `gauge_sum`).
            fence(Ordering::Release);
            sum.store(delta.to_bits());
            // Release: a reader that sees the tag sees the sum.
            tag.store_release(t);
        }
        return;
    }
}

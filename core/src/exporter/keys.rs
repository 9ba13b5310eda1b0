//! Where the exporter finds a metric's name and tags ([`Keys`]), and the
//! registry as one such place.

use crate::event::KeyId;
use crate::registry::{Key, Registry};

/// Where the exporter finds a metric's name and tags when it encodes.
pub trait Keys {
    /// The name and tags behind `id`.
    fn key(&self, id: KeyId) -> Option<Key<'_>>;
}

impl<const K: usize, const B: usize> Keys for Registry<K, B> {
    fn key(&self, id: KeyId) -> Option<Key<'_>> {
        self.get(id)
    }
}

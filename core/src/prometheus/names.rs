//! What a series is called in Prometheus: its family (the name sanitised,
//! counters as `<name>_total`, timers as `<name>_seconds`, the kind added
//! when two kinds share a name), its family's `# TYPE`, and its tags as
//! labels.

use super::text::sanitize;
use crate::event::Kind;
use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// The family of a series named `name` of `kind`: sanitised, counters as
/// `<name>_total`, timers (exported in seconds) as `<name>_seconds`; with
/// `with_kind`, the kind before the suffix (`<name>_timer_seconds`).
pub fn family_name(name: &str, kind: Kind, with_kind: bool) -> String {
    let mut base = sanitize(name, false);
    if with_kind {
        base = format!("{base}_{}", kind.as_str());
    }
    match kind {
        Kind::Counter => format!("{base}_total"),
        Kind::Timer => format!("{base}_seconds"),
        Kind::Gauge | Kind::Histogram => base,
    }
}

/// The `# TYPE` of a family of `kind`: `counter`, `gauge` or `histogram`
/// (timers and histograms).
pub const fn family_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Timer | Kind::Histogram => "histogram",
    }
}

/// Tags as label pairs: keys sanitised, and kept clear of the labels
/// Prometheus gives a meaning (a histogram's `le`, a summary's
/// `quantile`, `__` names: `tag_` goes in front) and of each other (the
/// first one wins).
pub fn labels<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in tags {
        let mut key = sanitize(k, true);
        if key == "le" || key == "quantile" || key.starts_with("__") {
            key = format!("tag_{key}");
        }
        if !out.iter().any(|(existing, _)| *existing == key) {
            out.push((key, v.into()));
        }
    }
    out
}

/// Series sorted into families: one `# TYPE` per family, a name used by
/// two kinds given the kind ([`family_name`]); by family name.
#[derive(Debug)]
pub struct Families<T> {
    families: BTreeMap<String, (Kind, Vec<T>)>,
}

impl<T> Default for Families<T> {
    fn default() -> Self {
        Families {
            families: BTreeMap::new(),
        }
    }
}

impl<T> Families<T> {
    /// No families yet.
    pub fn new() -> Self {
        Families::default()
    }

    /// Puts `series`, named `name`, of `kind`, into its family.
    pub fn add(&mut self, name: &str, kind: Kind, series: T) {
        let mut family = family_name(name, kind, false);
        if self.families.get(&family).is_some_and(|(k, _)| *k != kind) {
            family = family_name(name, kind, true);
        }
        match self.families.entry(family) {
            Entry::Vacant(e) => {
                e.insert((kind, alloc::vec![series]));
            }
            Entry::Occupied(mut e) => e.get_mut().1.push(series),
        }
    }

    /// The families, by name: (name, kind, their series in the order
    /// added).
    pub fn into_families(self) -> impl Iterator<Item = (String, Kind, Vec<T>)> {
        self.families
            .into_iter()
            .map(|(name, (kind, members))| (name, kind, members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_their_kinds_suffix_and_a_shared_name_the_kind() {
        assert_eq!(
            family_name("http.requests", Kind::Counter, false),
            "http_requests_total"
        );
        assert_eq!(
            family_name("db-query", Kind::Timer, false),
            "db_query_seconds"
        );
        assert_eq!(family_name("9lives", Kind::Gauge, false), "_9lives");
        let mut f = Families::new();
        f.add("work", Kind::Histogram, 1);
        f.add("work", Kind::Gauge, 2);
        f.add("work", Kind::Histogram, 3);
        let all: Vec<_> = f.into_families().collect();
        assert_eq!(
            all,
            [
                ("work".into(), Kind::Histogram, alloc::vec![1, 3]),
                ("work_gauge".into(), Kind::Gauge, alloc::vec![2]),
            ]
        );
    }

    #[test]
    fn tags_become_labels_clear_of_reserved_names() {
        let got = labels(
            [
                ("le", "a"),
                ("quantile", "b"),
                ("__x", "c"),
                ("a.b", "d"),
                ("a_b", "e"),
            ]
            .into_iter(),
        );
        let want = [
            ("tag_le", "a"),
            ("tag_quantile", "b"),
            ("tag___x", "c"),
            ("a_b", "d"),
        ];
        assert_eq!(got.len(), want.len());
        for ((k, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }
}

//! What the application says of a metric, for its scrape: help text and
//! a unit, by metric name (`Stats::describe`, and the `metrics` facade's
//! `describe_*`). The wire carries neither; the client's own `/metrics`
//! shows them.

use std::collections::BTreeMap;
use std::sync::RwLock;

/// A metric's help text and unit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Description {
    /// The unit as Prometheus names it, plural, lower case (`seconds`,
    /// `bytes`): the family's name ends with it.
    pub(crate) unit: Option<String>,
    /// `# HELP`'s text.
    pub(crate) help: String,
}

/// Descriptions by metric name; the last one given wins.
#[derive(Debug, Default)]
pub(crate) struct Descriptions(RwLock<BTreeMap<String, Description>>);

impl Descriptions {
    /// Describes `name`.
    pub(crate) fn set(&self, name: &str, unit: Option<&str>, help: &str) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.insert(
            name.to_string(),
            Description {
                unit: unit.filter(|u| !u.is_empty()).map(str::to_string),
                help: help.to_string(),
            },
        );
    }

    /// Every description, read at once.
    pub(crate) fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Description>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

//! A setting that cannot be used: which one, and why.

use std::fmt;

/// A setting that cannot be used, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    /// The setting (its TOML name; the flag is `--` and the name with
    /// dashes), or the file.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for SettingsError {}

pub(super) fn error(field: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field: field.into(),
        message: message.into(),
    }
}

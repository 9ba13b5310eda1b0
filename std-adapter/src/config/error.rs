//! Why a configuration was refused: [`ConfigError`], naming the field
//! and the bad value.

use std::fmt;

/// A configuration that cannot be used: which field, what value, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field's value is out of range or malformed.
    Invalid {
        /// The field (or environment variable) at fault.
        field: &'static str,
        /// The value given.
        value: String,
        /// What it must be.
        expected: String,
    },
    /// The TOML file could not be read or parsed.
    File {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid {
                field,
                value,
                expected,
            } => write!(f, "invalid {field} {value:?}: expected {expected}"),
            ConfigError::File { path, message } => write!(f, "config file {path}: {message}"),
        }
    }
}

impl std::error::Error for ConfigError {}

pub(super) fn invalid(
    field: &'static str,
    value: impl fmt::Display,
    expected: &str,
) -> ConfigError {
    ConfigError::Invalid {
        field,
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

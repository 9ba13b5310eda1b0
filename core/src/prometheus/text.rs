//! Prometheus's text formats: the writer ([`Text`]: text format 0.0.4 or
//! OpenMetrics 1.0), how a sample value and an `le` label are spelled
//! ([`number`]), and names and label names made valid ([`sanitize`]).

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

/// Where families and their samples are written: the text formats, or a
/// remote write's time series.
pub trait Sink {
    /// Starts family `name` of `kind` (`counter`, `gauge`, `histogram`).
    fn family(&mut self, name: &str, kind: &str, help: &str);
    /// One sample of the current family.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64);
    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }
}

/// `s` as a Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or, with
/// `label`, a label name (no colons): other characters become `_`, and a
/// leading digit gets a `_` in front.
pub fn sanitize(s: &str, label: bool) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for (i, c) in s.chars().enumerate() {
        let ok = c.is_ascii_alphabetic() || c == '_' || (c == ':' && !label);
        if ok || (i > 0 && c.is_ascii_digit()) {
            out.push(c);
        } else if i == 0 && c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            out.push('_');
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// Writes metric families: `# HELP`, `# TYPE`, then samples, in
/// Prometheus's text format 0.0.4 or in OpenMetrics 1.0 (where a
/// counter's family is named without its samples' `_total`, and the text
/// ends with `# EOF`).
#[derive(Clone, Debug, Default)]
pub struct Text {
    out: String,
    openmetrics: bool,
}

impl Text {
    /// An empty text in format 0.0.4.
    pub fn new() -> Text {
        Text::default()
    }

    /// An empty text in OpenMetrics 1.0.
    pub fn openmetrics() -> Text {
        Text {
            out: String::new(),
            openmetrics: true,
        }
    }

    /// The text written.
    pub fn finish(mut self) -> String {
        if self.openmetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

impl Sink for Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let name = match name.strip_suffix("_total") {
            Some(family) if self.openmetrics && kind == "counter" => family,
            _ => name,
        };
        let _ = write!(self.out, "# HELP {name} ");
        // The format escapes a help text's backslashes and line breaks.
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push('\n');
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"");
                for c in v.chars() {
                    match c {
                        '\\' => self.out.push_str("\\\\"),
                        '"' => self.out.push_str("\\\""),
                        '\n' => self.out.push_str("\\n"),
                        c => self.out.push(c),
                    }
                }
                self.out.push('"');
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }
}

/// A sample value (or an `le` label's) as the format spells it.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.abs() >= 1e16 || (v != 0.0 && v.abs() < 1e-6) {
        // Exponent form past the integers a float holds exactly, and for
        // tiny values: `1e308`, not 309 digits.
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

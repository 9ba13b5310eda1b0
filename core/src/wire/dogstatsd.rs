//! DogStatsD's two lines that are not metrics, as the Datadog agent reads
//! them: events (`_e{title length,text length}:title|text|...`) and
//! service checks (`_sc|name|status|...`). Lengths are in bytes; an
//! event's line breaks travel as `\n` (backslash, n).

use super::parse_error::ParseError;

/// A DogStatsD event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ParsedEvent<'a> {
    /// The title.
    pub title: &'a str,
    /// The text, line breaks as sent (`\n` escaped).
    pub text: &'a str,
    /// `d:` Unix seconds, as sent; empty when absent.
    pub timestamp: &'a str,
    /// `h:` the host; empty when absent.
    pub hostname: &'a str,
    /// `k:` the aggregation key; empty when absent.
    pub aggregation_key: &'a str,
    /// `p:` `normal` or `low`; empty when absent.
    pub priority: &'a str,
    /// `s:` the source type; empty when absent.
    pub source_type: &'a str,
    /// `t:` `error`, `warning`, `info` or `success`; empty when absent.
    pub alert_type: &'a str,
    /// The tags as sent (`k:v,k:v`), empty when absent.
    pub tags: &'a str,
}

/// A service check's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CheckStatus {
    /// 0
    Ok = 0,
    /// 1
    Warning = 1,
    /// 2
    Critical = 2,
    /// 3
    Unknown = 3,
}

/// A DogStatsD service check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ParsedServiceCheck<'a> {
    /// The check's name.
    pub name: &'a str,
    /// Its status.
    pub status: CheckStatus,
    /// `d:` Unix seconds, as sent; empty when absent.
    pub timestamp: &'a str,
    /// `h:` the host; empty when absent.
    pub hostname: &'a str,
    /// `m:` the message (always last); empty when absent.
    pub message: &'a str,
    /// The tags as sent (`k:v,k:v`), empty when absent.
    pub tags: &'a str,
}

/// `tags` (`k:v,k:v`) as (key, value) pairs; a bare tag has an empty value.
pub fn tag_pairs(tags: &str) -> impl Iterator<Item = (&str, &str)> {
    tags.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.split_once(':').unwrap_or((t, "")))
}

/// A decimal length, at most 65,535 (no datagram is longer).
fn length(digits: &str) -> Option<usize> {
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n: &usize| n <= 65_535)
}

/// Reads an event line (it starts with `_e{`).
pub(super) fn parse_event(line: &str) -> Result<ParsedEvent<'_>, ParseError> {
    let bad = ParseError::BadEvent;
    let rest = line.strip_prefix("_e{").ok_or(bad)?;
    let (lengths, rest) = rest.split_once("}:").ok_or(bad)?;
    let (title_len, text_len) = lengths.split_once(',').ok_or(bad)?;
    let (title_len, text_len) = (length(title_len).ok_or(bad)?, length(text_len).ok_or(bad)?);
    let title = rest.get(..title_len).ok_or(bad)?;
    let rest = rest.get(title_len..).ok_or(bad)?;
    let rest = rest.strip_prefix('|').ok_or(bad)?;
    let text = rest.get(..text_len).ok_or(bad)?;
    let rest = rest.get(text_len..).ok_or(bad)?;
    if title.is_empty() {
        return Err(bad);
    }
    let mut event = ParsedEvent {
        title,
        text,
        timestamp: "",
        hostname: "",
        aggregation_key: "",
        priority: "",
        source_type: "",
        alert_type: "",
        tags: "",
    };
    if rest.is_empty() {
        return Ok(event);
    }
    let rest = rest.strip_prefix('|').ok_or(bad)?;
    for field in rest.split('|') {
        let (at, value) = match field.split_at_checked(2) {
            Some(("d:", v)) => (&mut event.timestamp, v),
            Some(("h:", v)) => (&mut event.hostname, v),
            Some(("k:", v)) => (&mut event.aggregation_key, v),
            Some(("p:", v)) => (&mut event.priority, v),
            Some(("s:", v)) => (&mut event.source_type, v),
            Some(("t:", v)) => (&mut event.alert_type, v),
            // Other fields (a container id, an origin) are not ours to read.
            _ => match field.strip_prefix('#') {
                Some(tags) => (&mut event.tags, tags),
                None => continue,
            },
        };
        *at = value;
    }
    Ok(event)
}

/// Reads a service check line (it starts with `_sc|`).
pub(super) fn parse_service_check(line: &str) -> Result<ParsedServiceCheck<'_>, ParseError> {
    let bad = ParseError::BadServiceCheck;
    let rest = line.strip_prefix("_sc|").ok_or(bad)?;
    // The message comes last and may hold anything: it ends the line.
    let (rest, message) = match rest.split_once("|m:") {
        Some((fields, message)) => (fields, message),
        None => (rest, ""),
    };
    let mut fields = rest.split('|');
    let name = fields.next().filter(|n| !n.is_empty()).ok_or(bad)?;
    let status = match fields.next() {
        Some("0") => CheckStatus::Ok,
        Some("1") => CheckStatus::Warning,
        Some("2") => CheckStatus::Critical,
        Some("3") => CheckStatus::Unknown,
        _ => return Err(bad),
    };
    let mut check = ParsedServiceCheck {
        name,
        status,
        timestamp: "",
        hostname: "",
        message,
        tags: "",
    };
    for field in fields {
        if let Some(v) = field.strip_prefix("d:") {
            check.timestamp = v;
        } else if let Some(v) = field.strip_prefix("h:") {
            check.hostname = v;
        } else if let Some(tags) = field.strip_prefix('#') {
            check.tags = tags;
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// As datadog-go and datadogpy write them.
    #[test]
    fn events_as_datadogs_clients_write_them() {
        let e = parse_event(
            "_e{5,14}:title|line one\\nline|d:1700000000|h:web-1|k:deploy|p:low|s:my_app|t:warning|#env:prod,team:a",
        )
        .unwrap();
        assert_eq!((e.title, e.text), ("title", "line one\\nline"));
        assert_eq!(
            (e.timestamp, e.hostname, e.aggregation_key),
            ("1700000000", "web-1", "deploy")
        );
        assert_eq!(
            (e.priority, e.source_type, e.alert_type),
            ("low", "my_app", "warning")
        );
        let tags: Vec<_> = tag_pairs(e.tags).collect();
        assert_eq!(tags, [("env", "prod"), ("team", "a")]);
        // Lengths in bytes, the title and text holding the separators.
        let e = parse_event("_e{4,3}:a|b:|é|").unwrap();
        assert_eq!((e.title, e.text), ("a|b:", "é|"));
        let bare = parse_event("_e{2,0}:hi|").unwrap();
        assert_eq!((bare.title, bare.text, bare.tags), ("hi", "", ""));
        for bad in [
            "_e{5,4}:titl|text",
            "_e{x,4}:title|text",
            "_e{5}:title",
            "_e{0,1}:|t",
            "_e{2,1}:ab|cd",
            "_e{1,1}:é|a",
        ] {
            assert_eq!(parse_event(bad), Err(ParseError::BadEvent), "{bad}");
        }
    }

    #[test]
    fn service_checks_as_datadogs_clients_write_them() {
        let c = parse_service_check(
            "_sc|app.can_connect|2|d:1700000000|h:db-1|#env:prod|m:refused: port 5432|closed",
        )
        .unwrap();
        assert_eq!(
            (c.name, c.status),
            ("app.can_connect", CheckStatus::Critical)
        );
        assert_eq!(
            (c.timestamp, c.hostname, c.tags),
            ("1700000000", "db-1", "env:prod")
        );
        assert_eq!(c.message, "refused: port 5432|closed");
        let ok = parse_service_check("_sc|up|0").unwrap();
        assert_eq!((ok.status, ok.tags, ok.message), (CheckStatus::Ok, "", ""));
        for bad in ["_sc||0", "_sc|up|4", "_sc|up", "_sc|up|ok"] {
            assert_eq!(
                parse_service_check(bad),
                Err(ParseError::BadServiceCheck),
                "{bad}"
            );
        }
    }
}

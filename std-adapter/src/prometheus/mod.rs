//! The client's endpoint in Prometheus text format 0.0.4: the
//! application's own series, aggregated at the source, rendered as the
//! collector renders them (the core's `stats_core::prometheus`: names,
//! `_total`, timers and histograms as `le` histograms, tags as labels),
//! with their descriptions (`# HELP`, units in names); then the
//! pipeline's telemetry; and health as JSON.

mod series;
mod telemetry;

use crate::http::{Response, text};
use crate::report::Report;
use crate::shared::Shared;
use series::series;
use stats_core::Status;
use stats_core::prometheus::Text;
use telemetry::metrics;

/// The application's series, then (given a `report`) the pipeline's
/// telemetry: what `GET /metrics` serves.
pub(crate) fn render(shared: &Shared, report: Option<&Report>) -> String {
    let mut t = Text::new();
    series(shared, &mut t);
    if let Some(report) = report {
        metrics(report, &mut t);
    }
    t.finish()
}

/// Health as JSON: the status and every check with its value and limits
/// (a value JSON cannot hold, `null`).
pub(crate) fn health(report: &Report) -> String {
    serde_json::to_string(&report.health).unwrap_or_default()
}

/// The client's endpoint: `/health` (503 when unhealthy) and `/metrics`.
pub(crate) fn answer(shared: &Shared, path: &str) -> Option<Response> {
    if path != "/health" && path != "/metrics" {
        return None;
    }
    let Some(report) = shared.report() else {
        return Some(text(503, "starting\n"));
    };
    Some(if path == "/health" {
        let unhealthy = report.health.status == Status::Unhealthy;
        Response {
            status: if unhealthy { 503 } else { 200 },
            content_type: "application/json",
            body: health(&report),
        }
    } else {
        Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: render(shared, Some(&report)),
        }
    })
}

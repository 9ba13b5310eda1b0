//! The HTTP endpoint: `/metrics` and `/health` served by hyper, at most
//! 256 connections open, each with 2 s to send its request head.

use crate::outputs::prometheus;
use crate::shards::Shards;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;

/// How long a client has to send a request's head.
const HEADER_DEADLINE: Duration = Duration::from_secs(2);

/// HTTP connections open at once; a new one past them closes the oldest.
const MAX_CONNECTIONS: usize = 256;

/// Accepts HTTP connections until the server stops. Past
/// [`MAX_CONNECTIONS`] open ones, a new connection takes the place of the
/// oldest (closed): clients that trickle or sit idle cannot keep a new one
/// out, and each is closed anyway when its request head is not in within
/// [`HEADER_DEADLINE`].
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    shards: Arc<Shards>,
    mut stopped: watch::Receiver<bool>,
) {
    let open: Arc<Mutex<VecDeque<(u64, AbortHandle)>>> = Arc::default();
    let mut next = 0u64;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: try again shortly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let id = next;
        next += 1;
        let (shards, registry) = (shards.clone(), open.clone());
        let connection = async move {
            let service = hyper::service::service_fn(move |request| {
                let shards = shards.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(shards, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_DEADLINE)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Ok(mut open) = registry.lock() {
                open.retain(|(at, _)| *at != id);
            }
        };
        // Spawned under the lock, so that the connection cannot take
        // itself off the list before it is on it.
        if let Ok(mut open) = open.lock() {
            if open.len() >= MAX_CONNECTIONS
                && let Some((_, oldest)) = open.pop_front()
            {
                oldest.abort();
            }
            let task = tokio::spawn(connection);
            open.push_back((id, task.abort_handle()));
        }
    }
}

/// `text/plain; version=0.0.4`, Prometheus's text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics 1.0, when the client's `Accept` asks for it.
const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn answer(shards: Arc<Shards>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let respond = |status: StatusCode, content_type: &str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            response.headers_mut().insert(CONTENT_TYPE, v);
        }
        response
    };
    let text = "text/plain; charset=utf-8";
    if request.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            text,
            "only GET is served\n".into(),
        );
    }
    let openmetrics = request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let path = request.uri().path().to_string();
    let rendered = tokio::task::spawn_blocking(move || {
        Some(match path.as_str() {
            // Taken a chunk of series at a time: the render stops ingest
            // for no longer than one chunk's copy.
            "/metrics" => {
                let view = shards.view();
                Page::Metrics(prometheus::render_metrics_as(&view, openmetrics))
            }
            "/health" => {
                let view = shards.counters();
                let (body, unhealthy) = prometheus::render_health(&view);
                Page::Health(body, unhealthy)
            }
            _ => Page::NotFound,
        })
    })
    .await;
    match rendered {
        Ok(Some(Page::Metrics(body))) => {
            let kind = if openmetrics {
                OPENMETRICS_TEXT
            } else {
                PROMETHEUS_TEXT
            };
            respond(StatusCode::OK, kind, body)
        }
        Ok(Some(Page::Health(body, unhealthy))) => {
            let status = if unhealthy {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            respond(status, "application/json", body)
        }
        Ok(Some(Page::NotFound)) => respond(
            StatusCode::NOT_FOUND,
            text,
            "not found: GET /metrics or /health\n".into(),
        ),
        _ => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            text,
            "the collector's state is not readable\n".into(),
        ),
    }
}

/// What a path renders to.
enum Page {
    Metrics(String),
    /// The JSON, and whether it is unhealthy.
    Health(String, bool),
    NotFound,
}

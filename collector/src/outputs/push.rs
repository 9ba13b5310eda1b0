//! Pushing to an engine over HTTP: a bounded queue of encoded requests per
//! destination, and a task that sends them in order, retrying what may
//! succeed later.
//!
//! * **2xx**: sent.
//! * **What the protocol says may succeed later** (remote write 1.0: 429
//!   and every 5xx; OTLP/HTTP: 429, 502, 503 and 504), **a network error
//!   or no answer within 10 s**: retried, the same request, after an
//!   exponential backoff (100 ms doubling to 5 s, or the `Retry-After` the
//!   engine asks for, up to that).
//! * **Any other 4xx**: the engine will never take it: dropped, counted as
//!   `rejected`.
//! * **The memory budget exceeded** (`max_memory`, which the queues share
//!   with the collector's tables, [`crate::memory`]): the queue that takes
//!   a request drops its oldest ones, counted as `queue_full`. What the collector pushes is cumulative (a
//!   counter's total, a distribution's count since its senders started),
//!   so a later request carries everything a dropped one did: a dropped
//!   request loses points of history, never a total.
//! * **Stopping**: the queue is sent until it is empty or the drain
//!   timeout ends; what is left is counted as `shutdown`.

use crate::memory::Memory;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The first retry's wait; each further one doubles it up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between attempts: Prometheus's own remote write
/// default (`max_backoff`), so that an engine back after an outage is
/// written to within seconds.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// One encoded request and the samples (or data points) in it.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The request's body, as sent.
    pub body: Bytes,
    /// Samples (remote write) or data points (OTLP) in it.
    pub samples: u64,
}

/// What a destination's sender has done, counted since the start.
#[derive(Debug, Default)]
pub struct PushCounters {
    /// Samples in requests the engine accepted.
    pub sent: AtomicU64,
    /// Samples in attempts that will be tried again (429, 5xx, network
    /// errors, timeouts).
    pub retried: AtomicU64,
    /// Samples the engine refused for good (another 4xx).
    pub rejected: AtomicU64,
    /// Samples dropped from a full queue (the oldest first).
    pub queue_full: AtomicU64,
    /// Samples still queued when the drain timeout ended.
    pub shutdown: AtomicU64,
    /// Requests sent (accepted or not).
    pub requests: AtomicU64,
    /// Bytes queued now.
    pub queued_bytes: AtomicU64,
}

impl PushCounters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The reasons samples were dropped for, with their counts.
    pub fn dropped(&self) -> [(&'static str, u64); 3] {
        [
            ("rejected", self.rejected.load(Ordering::Relaxed)),
            ("queue_full", self.queue_full.load(Ordering::Relaxed)),
            ("shutdown", self.shutdown.load(Ordering::Relaxed)),
        ]
    }
}

/// What a destination speaks: its output's name, the headers of each
/// request, and which answers it retries.
pub(crate) struct Protocol {
    pub(crate) output: &'static str,
    pub(crate) headers: &'static [(&'static str, &'static str)],
    /// Whether an answer other than 2xx may succeed later.
    pub(crate) retryable: fn(u16) -> bool,
}

/// A destination: where requests go, how they are labelled, their queue.
pub(crate) struct Destination {
    /// What the output is (`remote_write`, `otlp`), for the counters.
    pub(crate) output: &'static str,
    pub(crate) url: Uri,
    /// The URL as given, for the counters' label.
    pub(crate) url_text: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    retryable: fn(u16) -> bool,
    memory: Arc<Memory>,
    queue: Mutex<VecDeque<Batch>>,
    more: Notify,
    pub(crate) counters: PushCounters,
}

impl Destination {
    /// A destination at `url` (`http://`) speaking `protocol`, queueing
    /// what `memory` has room for.
    pub(crate) fn new(
        protocol: &Protocol,
        url: &str,
        memory: Arc<Memory>,
    ) -> Result<Destination, String> {
        let uri = check_url(url)?;
        Ok(Destination {
            output: protocol.output,
            url: uri,
            url_text: url.to_string(),
            headers: (protocol.headers.iter())
                .map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
                .collect(),
            retryable: protocol.retryable,
            memory,
            queue: Mutex::new(VecDeque::new()),
            more: Notify::new(),
            counters: PushCounters::default(),
        })
    }

    /// Queues `batch`, dropping this queue's oldest ones while the memory
    /// budget is exceeded.
    pub(crate) fn enqueue(&self, batch: Batch) {
        let Ok(mut queue) = self.queue.lock() else {
            return;
        };
        self.queued(batch.body.len(), true);
        queue.push_back(batch);
        // The front may be in flight: the sender takes it off itself, when
        // it is sent or refused. Dropping starts behind it (one request
        // over the budget alone is still sent).
        while self.memory.over() && queue.len() > 1 {
            if let Some(old) = queue.remove(1) {
                self.queued(old.body.len(), false);
                PushCounters::add(&self.counters.queue_full, old.samples);
            }
        }
        drop(queue);
        self.more.notify_one();
    }

    /// Counts `bytes` into the queue (`into`) or out of it.
    fn queued(&self, bytes: usize, into: bool) {
        let bytes = bytes as u64;
        if into {
            PushCounters::add(&self.counters.queued_bytes, bytes);
            self.memory.queue(bytes);
        } else {
            self.counters
                .queued_bytes
                .fetch_sub(bytes, Ordering::Relaxed);
            self.memory.dequeue(bytes);
        }
    }

    fn front(&self) -> Option<Batch> {
        self.queue.lock().ok()?.front().cloned()
    }

    fn pop(&self) {
        if let Ok(mut queue) = self.queue.lock()
            && let Some(done) = queue.pop_front()
        {
            self.queued(done.body.len(), false);
        }
    }

    /// Counts what is still queued as dropped at shutdown.
    pub(crate) fn abandon(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            for left in queue.drain(..) {
                self.queued(left.body.len(), false);
                PushCounters::add(&self.counters.shutdown, left.samples);
            }
        }
    }

    /// Sends the queue in order until `stopped` turns true and the queue is
    /// empty.
    pub(crate) async fn run(&self, mut stopped: watch::Receiver<bool>) {
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let Some(batch) = self.front() else {
                if *stopped.borrow() {
                    return;
                }
                tokio::select! {
                    _ = self.more.notified() => {}
                    _ = stopped.changed() => {}
                }
                continue;
            };
            PushCounters::add(&self.counters.requests, 1);
            match self.attempt(&client, &batch).await {
                Outcome::Sent => {
                    self.pop();
                    PushCounters::add(&self.counters.sent, batch.samples);
                    backoff = FIRST_BACKOFF;
                }
                Outcome::Rejected(status) => {
                    log::warn!(
                        "{} {}: {status}, dropping {} samples",
                        self.output,
                        self.url_text,
                        batch.samples
                    );
                    self.pop();
                    PushCounters::add(&self.counters.rejected, batch.samples);
                }
                Outcome::Retry(why, asked) => {
                    PushCounters::add(&self.counters.retried, batch.samples);
                    let wait = asked.unwrap_or(backoff).min(MAX_BACKOFF);
                    log::debug!(
                        "{} {}: {why}, again in {wait:?}",
                        self.output,
                        self.url_text
                    );
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn attempt(&self, client: &Client<HttpConnector, Full<Bytes>>, batch: &Batch) -> Outcome {
        let mut request = Request::post(self.url.clone());
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let Ok(request) = request.body(Full::new(batch.body.clone())) else {
            return Outcome::Rejected("the request could not be built".into());
        };
        let response = match tokio::time::timeout(ATTEMPT_TIMEOUT, client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Outcome::Retry(e.to_string(), None),
            Err(_) => return Outcome::Retry("no answer".into(), None),
        };
        let status = response.status();
        let asked = retry_after(response.headers().get(RETRY_AFTER));
        // Read the body so the connection can be reused.
        let _ = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            http_body_util::BodyExt::collect(response.into_body()),
        )
        .await;
        if status.is_success() {
            Outcome::Sent
        } else if (self.retryable)(status.as_u16()) {
            Outcome::Retry(status.to_string(), asked)
        } else {
            Outcome::Rejected(status.to_string())
        }
    }
}

/// How an attempt went.
enum Outcome {
    Sent,
    /// Never to be taken: why.
    Rejected(String),
    /// To be tried again: why, and the wait the engine asked for.
    Retry(String, Option<Duration>),
}

/// `url` as a destination: an `http://` URL with a host.
pub(crate) fn check_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!(
            "{url:?}: an http:// URL with a host is needed (TLS is not built in: put a \
             TLS-terminating proxy on loopback in front of a remote engine)"
        ));
    }
    Ok(uri)
}

/// The wait a `Retry-After` header asks for (seconds; a date is not read).
fn retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let seconds: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

//! Prometheus remote write against an engine stand-in that decodes what
//! it is sent and answers as told: totals exact, retries on 5xx, 429 and
//! an engine that is down, no retry on other 4xx (for OTLP, no retry but
//! on 429, 502, 503 and 504), the memory budget over the queue, and the
//! last export sent at stop. (`.ci/engines.sh` checks the same against
//! Prometheus and VictoriaMetrics themselves.)

use prost::Message;
use stats_collector::outputs::prometheus;
use stats_collector::outputs::remote_write::WriteRequest;
use stats_collector::{Server, Settings};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the stand-in received, and the statuses it still has to give
/// (then 200).
#[derive(Default)]
struct Engine {
    requests: Vec<(Vec<(String, String)>, WriteRequest)>,
    answers: VecDeque<u16>,
}

fn engine(listener: TcpListener, answers: &[u16]) -> Arc<Mutex<Engine>> {
    let state = Arc::new(Mutex::new(Engine {
        answers: answers.iter().copied().collect(),
        ..Engine::default()
    }));
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let state = shared.clone();
            std::thread::spawn(move || serve(stream, &state));
        }
    });
    state
}

fn serve(stream: TcpStream, state: &Mutex<Engine>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut headers = Vec::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        // Remote write is decoded; OTLP (not snappy) only answered.
        let snappy = (headers.iter()).any(|(k, v)| k == "content-encoding" && v == "snappy");
        let request = if snappy {
            let raw = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
            WriteRequest::decode(raw.as_slice()).unwrap()
        } else {
            WriteRequest::default()
        };
        let status = {
            let mut s = state.lock().unwrap();
            let status = s.answers.pop_front().unwrap_or(200);
            if status == 200 {
                s.requests.push((headers, request));
            }
            status
        };
        let retry = if status == 429 {
            "Retry-After: 0\r\n"
        } else {
            ""
        };
        write!(
            out,
            "HTTP/1.1 {status} X\r\n{retry}Content-Length: 0\r\n\r\n"
        )
        .unwrap();
    }
}

/// The latest value of the series named `name` that the engine took.
fn latest(engine: &Mutex<Engine>, name: &str) -> Option<f64> {
    let e = engine.lock().unwrap();
    e.requests.iter().rev().find_map(|(_, r)| {
        r.timeseries.iter().find_map(|t| {
            t.labels
                .iter()
                .any(|l| l.name == "__name__" && l.value == name)
                .then(|| t.samples[0].value)
        })
    })
}

fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(15), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn collector(url: &str) -> Settings {
    Settings::on_loopback()
        .with_ingest_threads(1)
        .with_remote_write(url)
        .with_label("collector", "a")
        .with_export_interval(Duration::from_millis(100))
}

fn send(server: &Server, lines: &str) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(lines.as_bytes(), server.udp_address()).unwrap();
}

/// A counter from `/metrics`.
fn metric(server: &Server, line_start: &str) -> f64 {
    let text = prometheus::render_metrics(&server.shards().view());
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{line_start} in {text}"))
}

/// A destination's (by its `labels`) samples retried and rejected.
fn retried_and_rejected(server: &Server, labels: &str) -> (f64, f64) {
    (
        metric(
            server,
            &format!("stats_collector_push_samples_retried_total{{{labels}}}"),
        ),
        metric(
            server,
            &format!("stats_collector_push_samples_dropped_total{{{labels},reason=\"rejected\"}}"),
        ),
    )
}

#[test]
fn every_family_arrives_with_the_collector_label_and_the_headers() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    let engine = engine(listener, &[]);
    let server = Server::start(&collector(&url)).unwrap();
    send(
        &server,
        "jobs:3|c|#queue:mail\nlevel:7|g\nwork:2|ms\nwork:4|ms",
    );
    wait("the totals", || {
        latest(&engine, "work_seconds_count") == Some(2.0)
    });
    assert_eq!(latest(&engine, "jobs_total"), Some(3.0));
    assert_eq!(latest(&engine, "level"), Some(7.0));
    let e = engine.lock().unwrap();
    let (headers, request) = e.requests.last().unwrap();
    for (k, v) in [
        ("content-encoding", "snappy"),
        ("content-type", "application/x-protobuf"),
        ("x-prometheus-remote-write-version", "0.1.0"),
    ] {
        assert!(headers.iter().any(|(hk, hv)| hk == k && hv == v), "{k}");
    }
    for t in &request.timeseries {
        let names: Vec<&str> = t.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "labels sorted");
        assert!(
            t.labels
                .iter()
                .any(|l| l.name == "collector" && l.value == "a"),
            "{names:?}"
        );
    }
    drop(e);
    let sent = metric(
        &server,
        &format!(
            "stats_collector_push_samples_sent_total{{output=\"remote_write\",url=\"{url}\"}}"
        ),
    );
    assert!(sent > 0.0);
}

#[test]
fn five_hundreds_and_429s_are_retried_other_4xx_are_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    let engine = engine(listener, &[500, 503, 429, 400]);
    let server = Server::start(&collector(&url)).unwrap();
    send(&server, "faults:5|c");
    wait("delivered after the faults", || {
        latest(&engine, "faults_total") == Some(5.0)
    });
    let labels = format!("output=\"remote_write\",url=\"{url}\"");
    // Three retried attempts of the first request; the fourth answer (400)
    // drops the request it was given.
    let (retried, rejected) = retried_and_rejected(&server, &labels);
    assert!(rejected > 0.0, "{rejected}");
    assert_eq!(
        retried,
        3.0 * rejected,
        "each of three retries had one request"
    );
    assert_eq!(
        metric(
            &server,
            &format!(
                "stats_collector_push_samples_dropped_total{{{labels},reason=\"queue_full\"}}"
            )
        ),
        0.0
    );
}

#[test]
fn otlp_retries_only_what_its_specification_calls_retryable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/metrics", listener.local_addr().unwrap());
    let engine = engine(listener, &[503, 500]);
    let server = Server::start(
        &Settings::on_loopback()
            .with_http(None)
            .with_otlp(&url)
            .with_export_interval(Duration::from_millis(100)),
    )
    .unwrap();
    send(&server, "otlp.faults:5|c");
    wait("a request taken after the faults", || {
        !engine.lock().unwrap().requests.is_empty()
    });
    let labels = format!("output=\"otlp\",url=\"{url}\"");
    let (retried, rejected) = retried_and_rejected(&server, &labels);
    // The first request: retried after 503, dropped at 500.
    assert!(rejected > 0.0, "{rejected}");
    assert_eq!(retried, rejected);
}

#[test]
fn an_engine_that_is_down_gets_everything_once_it_is_up() {
    // A port with nothing behind it yet.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let url = format!("http://{address}/api/v1/write");
    let server = Server::start(&collector(&url)).unwrap();
    for _ in 0..10 {
        send(&server, "while.down:1|c");
        std::thread::sleep(Duration::from_millis(50));
    }
    let labels = format!("output=\"remote_write\",url=\"{url}\"");
    wait("queued while down", || {
        metric(
            &server,
            &format!("stats_collector_push_queued_bytes{{{labels}}}"),
        ) > 0.0
    });
    assert!(
        metric(
            &server,
            &format!("stats_collector_push_samples_retried_total{{{labels}}}")
        ) > 0.0
    );
    let engine = engine(TcpListener::bind(address).unwrap(), &[]);
    wait("delivered once up", || {
        latest(&engine, "while_down_total") == Some(10.0)
    });
    wait("the queue empties", || {
        metric(
            &server,
            &format!("stats_collector_push_queued_bytes{{{labels}}}"),
        ) == 0.0
    });
}

#[test]
fn the_queue_holds_the_memory_budget_and_counts_what_it_drops() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let budget = 2 << 20;
    let server = Server::start(&collector(&url).with_max_memory(budget)).unwrap();
    // Enough series that a few exports pass what the tables leave.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..2_000 {
        let line = format!("budget.series.with.a.long.name.{i}:1|c|#k:some-long-tag-value");
        s.send_to(line.as_bytes(), server.udp_address()).unwrap();
    }
    let labels = format!("output=\"remote_write\",url=\"{url}\"");
    wait("dropped from a full queue", || {
        metric(
            &server,
            &format!(
                "stats_collector_push_samples_dropped_total{{{labels},reason=\"queue_full\"}}"
            ),
        ) > 0.0
    });
    let queued = metric(
        &server,
        &format!("stats_collector_push_queued_bytes{{{labels}}}"),
    );
    let shared = metric(&server, "stats_collector_memory_bytes{part=\"queues\"}");
    let tables = metric(&server, "stats_collector_memory_bytes{part=\"tables\"}");
    assert!(queued > 0.0 && tables > 0.0, "{queued} {tables}");
    assert!(queued <= shared, "{queued} of {shared}");
    assert!(shared + tables <= budget as f64, "{shared} + {tables}");
}

#[test]
fn stopping_sends_the_last_export() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api/v1/write", listener.local_addr().unwrap());
    let engine = engine(listener, &[]);
    let server =
        Server::start(&collector(&url).with_export_interval(Duration::from_secs(3_600))).unwrap();
    send(&server, "last:4|c");
    wait("received", || server.shards().totals().events == 1);
    assert_eq!(
        latest(&engine, "last_total"),
        None,
        "an hour before the first export"
    );
    assert!(server.stop(Duration::from_secs(5)), "drained in time");
    assert_eq!(latest(&engine, "last_total"), Some(4.0));
}

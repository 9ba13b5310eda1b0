#!/usr/bin/env python3
"""Checks on the collector's histograms in the real engines.

usage:
  histograms.py spike PROM VM SPIKE_FILE
      The p99 over the last 6 s, queried as each engine's users write it,
      before and after a latency spike (times from SPIKE_FILE, the spike
      example's output): le buckets scraped from /metrics and remote
      written (Prometheus and VictoriaMetrics), and native histograms
      remote written (Prometheus). Before: the base latency (1 ms, within
      its bucket); after: the spike's (200 ms, within its bucket).
  histograms.py exact PROM OTLP_PORT COLLECTOR_UDP
      Sends histogram and timer values chosen inside buckets as StatsD
      lines, receives the collector's OTLP export (decoded with
      opentelemetry-proto, OpenTelemetry's own generated code) and reads
      the native histogram from Prometheus: every bucket holds exactly the
      values its own boundaries hold, counts and sums exact.
Exits non-zero when a check fails.
"""

import http.server
import json
import math
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


def query(base, promql, at=None):
    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    url = f"{base}/api/v1/query?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(base, promql, at):
    result = query(base, promql, at)
    return float(result[0]["value"][1]) if result else float("nan")


def spike(prom, vm, spike_file):
    words = open(spike_file).read().split()
    start = float(words[words.index("start") + 1])
    end = float(words[words.index("end") + 1])
    before, after = start - 1.0, end + 3.0
    classic = "histogram_quantile(0.99, sum by (le) (rate(spike_request_seconds_bucket{%s}[6s])))"
    native = "histogram_quantile(0.99, sum(rate(spike_request_seconds{%s}[6s])))"
    # Where each reading must fall: in the bucket holding the value
    # (Prometheus interpolates within a bucket). Timers' le boundaries are
    # powers of 2^(1/2) s: 1 ms is in (0.977, 1.381] ms, 200 ms in (176.8,
    # 250] ms. Native histograms keep 16 buckets a power of two: (0.977,
    # 1.019] ms and (194.5, 200.0] ms, read at four a power of two or
    # finer.
    classic_range = ((0.000976, 0.001382), (0.1767, 0.2501))
    native_range = ((0.000976, 0.001162), (0.1887, 0.2246))
    cases = [
        ("Prometheus, scraped /metrics", prom, classic % 'job="collector-s"', classic_range),
        ("Prometheus, remote write", prom, classic % 'collector="s"', classic_range),
        ("Prometheus, native histograms by remote write", prom, native % 'collector="n"', native_range),
        ("VictoriaMetrics, scraped /metrics", vm, classic % 'job="collector-s"', classic_range),
        ("VictoriaMetrics, remote write", vm, classic % 'collector="s"', classic_range),
    ]
    for name, base, promql, (base_ms, spike_ms) in cases:
        p_before = scalar(base, promql, before)
        p_after = scalar(base, promql, after)
        print(f"{name}: p99 over 6 s {p_before * 1e3:.3f} ms before the spike, "
              f"{p_after * 1e3:.3f} ms after  [{promql}]")
        ok_before = base_ms[0] <= p_before <= base_ms[1]
        ok_after = spike_ms[0] <= p_after <= spike_ms[1]
        check(ok_before, f"{name}: the base latency before the spike")
        check(ok_after, f"{name}: the spike's latency after it")
        if not (ok_before and ok_after) and "le" in promql:
            rates = promql[len("histogram_quantile(0.99, "):-1]
            for at in (before, after):
                got = sorted((float(r["metric"]["le"]), float(r["value"][1])) for r in query(base, rates, at))
                print(f"  {rates} at {at:.3f}: {got}")


# Values chosen inside buckets (none on a boundary): histogram values, and
# timer values in milliseconds.
HISTOGRAM = [0, 0, 0, 1.5, 1.5, 1.52, 3, 3, 3, 3, 100, 1e6, 1e6, -2.5, -2.5, 0.001, -700]
TIMER_MS = [1, 1, 1, 1, 1, 2.5, 2.5, 2.5, 200, 0.01]


def exponential_index(v, scale):
    """OpenTelemetry's index at `scale`: base^i < |v| <= base^(i+1)."""
    return math.ceil(math.log2(abs(v)) * 2**scale) - 1


class Otlp(http.server.BaseHTTPRequestHandler):
    points = {}

    def do_POST(self):
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.WhichOneof("data") == "exponential_histogram":
                        Otlp.points[m.name] = m.exponential_histogram.data_points[0]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def check_otlp(name, point, values):
    check(point.count == len(values), f"OTLP {name}: count {point.count} of {len(values)}")
    check(math.isclose(point.sum, sum(values), rel_tol=1e-12), f"OTLP {name}: sum {point.sum}")
    want_pos, want_neg, want_zero = {}, {}, 0
    for v in values:
        if abs(v) <= point.zero_threshold:
            want_zero += 1
            continue
        side = want_pos if v > 0 else want_neg
        i = exponential_index(v, point.scale)
        side[i] = side.get(i, 0) + 1
    got = lambda b: {b.offset + k: c for k, c in enumerate(b.bucket_counts) if c}
    check(point.zero_count == want_zero, f"OTLP {name}: zero count {point.zero_count}")
    check(got(point.positive) == want_pos, f"OTLP {name} at scale {point.scale}: positive buckets {got(point.positive)}")
    check(got(point.negative) == want_neg, f"OTLP {name}: negative buckets {got(point.negative)}")


def holds(rule, left, right, v):
    """Whether a Prometheus API bucket [rule, left, right] holds v."""
    above = v > left if rule in (0, 2) else v >= left
    below = v <= right if rule in (0, 3) else v < right
    return above and below


def check_native(prom, name, values):
    result = query(prom, f'{name}{{collector="x"}}')
    if not result or "histogram" not in result[0]:
        check(False, f"Prometheus native {name}: a native histogram ({result})")
        return
    h = result[0]["histogram"][1]
    check(int(h["count"]) == len(values), f"Prometheus native {name}: count {h['count']}")
    check(math.isclose(float(h["sum"]), sum(values), rel_tol=1e-12), f"Prometheus native {name}: sum {h['sum']}")
    placed = 0
    for rule, left, right, count in h.get("buckets", []):
        left, right, count = float(left), float(right), int(float(count))
        inside = sum(1 for v in values if holds(rule, left, right, v))
        placed += inside
        check(count == inside, f"Prometheus native {name}: bucket {rule} ({left}, {right}] holds {count}, values in it {inside}")
    check(placed == len(values), f"Prometheus native {name}: every value in one bucket ({placed})")


def exact(prom, otlp_port, collector):
    server = http.server.HTTPServer(("127.0.0.1", int(otlp_port)), Otlp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = collector.rsplit(":", 1)
    lines = [f"exact.values:{v}|h" for v in HISTOGRAM] + [f"exact.latency:{v}|ms" for v in TIMER_MS]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto("\n".join(lines).encode(), (host, int(port)))
    seconds = [v / 1e3 for v in TIMER_MS]
    for _ in range(100):
        time.sleep(0.2)
        if len(Otlp.points) == 2 and query(prom, 'exact_values{collector="x"}') \
                and query(prom, 'exact_latency_seconds{collector="x"}'):
            break
    time.sleep(1.5)  # one more export, so every value is in
    check(set(Otlp.points) == {"exact.values", "exact.latency"}, f"OTLP points {sorted(Otlp.points)}")
    if "exact.values" in Otlp.points:
        check_otlp("exact.values", Otlp.points["exact.values"], HISTOGRAM)
    if "exact.latency" in Otlp.points:
        check_otlp("exact.latency (seconds)", Otlp.points["exact.latency"], seconds)
    check_native(prom, "exact_values", HISTOGRAM)
    check_native(prom, "exact_latency_seconds", seconds)
    server.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "spike":
        spike(*sys.argv[2:5])
    elif sys.argv[1] == "exact":
        exact(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
    if failures:
        print(f"{len(failures)} checks failed", flush=True)
        sys.exit(1)
    print("histograms: every check passed")

#!/usr/bin/env python3
"""An OTLP/HTTP metrics receiver that decodes each request with the
opentelemetry-proto package (OpenTelemetry's own generated code, not the
collector's), and on SIGTERM checks the last values against what the demo
recorded.

usage: otlp_receiver.py PORT RECORDED_FILE

RECORDED_FILE holds the demo's "by kind" line. The sum of every monotonic
cumulative sum's points must equal the counters recorded, the sum of every
exponential histogram point's count the timers and histograms recorded;
each point's bucket counts and zero count must add up to its count, at
scale 4 or coarser. Exits 0 when they do.
"""

import http.server
import re
import signal
import sys

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE

latest = {}  # (metric name, attributes) -> (kind, value)
requests = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global requests
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportMetricsServiceRequest()
        request.ParseFromString(body)
        requests += 1
        for rm in request.resource_metrics:
            resource = {a.key: a.value.string_value for a in rm.resource.attributes}
            assert resource.get("service.name") == "stats-collector", resource
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    points = getattr(m, kind).data_points
                    for p in points:
                        attrs = tuple(sorted((a.key, a.value.string_value) for a in p.attributes))
                        if kind == "sum":
                            assert m.sum.is_monotonic
                            assert m.sum.aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE
                            value = p.as_double
                        elif kind == "gauge":
                            value = p.as_double
                        else:
                            assert kind == "exponential_histogram", kind
                            assert m.exponential_histogram.aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE
                            buckets = sum(p.positive.bucket_counts) + sum(p.negative.bucket_counts)
                            assert buckets + p.zero_count == p.count, m.name
                            assert -4 <= p.scale <= 4, p.scale
                            value = p.count
                        latest[(m.name, attrs)] = (kind, value)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def finish(*_):
    line = open(sys.argv[2]).read()
    want = dict((k, int(n)) for k, n in re.findall(r"(\w+) (\d+)", line))
    sums = sum(v for k, v in latest.values() if k == "sum")
    counts = sum(v for k, v in latest.values() if k == "exponential_histogram")
    gauges = sum(1 for k, _ in latest.values() if k == "gauge")
    print(f"OTLP: {requests} requests, {len(latest)} series decoded by opentelemetry-proto")
    print(f"OTLP: counter sums {sums} (recorded {want['counters']})")
    print(f"OTLP: exponential histogram counts {counts} (recorded {want['timers'] + want['histograms']})")
    print(f"OTLP: {gauges} gauges")
    ok = (
        sums == want["counters"]
        and counts == want["timers"] + want["histograms"]
        and (gauges > 0 or want["gauges"] == 0)
    )
    sys.exit(0 if ok else 1)


signal.signal(signal.SIGTERM, finish)
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", flush=True)
server.serve_forever()

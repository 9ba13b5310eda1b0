#!/usr/bin/env python3
"""Datadog's own Python client (`datadog` from PyPI) sending every
DogStatsD type to the collector, which must read each: counters, gauges,
histograms, distributions, timings, sets (distinct members per export
interval, a gauge), events (counted by alert type) and service checks (a
status gauge per check and tags), with no line refused.

usage: datadog_client.py COLLECTOR_UDP_PORT COLLECTOR_HTTP_PORT
"""

import sys
import time
import urllib.request

from datadog.dogstatsd import DogStatsd

udp, http = int(sys.argv[1]), int(sys.argv[2])
statsd = DogStatsd(host="127.0.0.1", port=udp, disable_telemetry=True)
for i in range(1000):
    statsd.increment("py.requests", tags=["env:ci"])
    statsd.set("py.users", f"user{i % 37}", tags=["env:ci"])
statsd.gauge("py.queue", 12.5)
for v in (1, 2, 3):
    statsd.histogram("py.size", v)
    statsd.distribution("py.dist", v)
    statsd.timing("py.latency", v * 10)
statsd.event("Deploy", "v2 rolled\nout", alert_type="warning", tags=["env:ci"])
statsd.event("Oops", "something broke", alert_type="error")
statsd.service_check("py.can_connect", DogStatsd.CRITICAL, tags=["env:ci"], message="refused")
statsd.service_check("py.up", DogStatsd.OK)
statsd.flush()
statsd.close_socket()

want = [
    'py_requests_total{env="ci"} 1000',
    'py_users{env="ci"} 37',
    "py_queue 12.5",
    "py_size_count 3",
    "py_size_sum 6",
    "py_dist_count 3",
    "py_latency_seconds_count 3",
    'service_check_status{check="py.can_connect",env="ci"} 2',
    'service_check_status{check="py.up"} 0',
    'stats_collector_statsd_events_total{alert_type="error"} 1',
    'stats_collector_statsd_events_total{alert_type="warning"} 1',
    "stats_collector_statsd_service_checks_total 2",
]
text = ""
for _ in range(100):
    time.sleep(0.3)
    with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as r:
        text = r.read().decode()
    if all(line in text.splitlines() for line in want):
        break
missing = [line for line in want if line not in text.splitlines()]
refused = [l for l in text.splitlines() if l.startswith("stats_collector_invalid_statsd_lines_total")]
for line in want:
    print(("ok   " if line not in missing else "FAIL ") + line)
print("refused lines:", refused or "none")
sys.exit(1 if missing or refused else 0)

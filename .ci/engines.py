#!/usr/bin/env python3
"""Compares what the engines answer with what the demos recorded and the
collectors held.

usage: engines.py WORK VM_URL PROM_URL [COLLECTOR...]

WORK holds, per collector name X, recorded-X.txt (the demo's "by kind"
line) and metrics-X.txt (the collector's /metrics). Each engine URL may be
empty (not checked). Exits non-zero on the first difference.
"""

import json
import re
import sys
import time
import urllib.parse
import urllib.request


def recorded(work, name):
    line = open(f"{work}/recorded-{name}.txt").read()
    kinds = dict((k, int(n)) for k, n in re.findall(r"(\w+) (\d+)", line))
    return kinds


def gauges(work, name):
    """(family, labels) -> value for the series gauges in /metrics."""
    out = {}
    kind = {}
    for line in open(f"{work}/metrics-{name}.txt"):
        if line.startswith("# TYPE "):
            _, _, family, k = line.split()
            kind[family] = k
            continue
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$", line.strip())
        family = m.group(1)
        if kind.get(family) != "gauge" or family.startswith("stats_collector_"):
            continue
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")))
        out[(family, labels)] = float(m.group(3))
    return out


def query(engine, promql):
    url = f"{engine}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"{engine}: {promql}: {body}")
    return body["data"]["result"]


def scalar(engine, promql):
    result = query(engine, promql)
    if len(result) != 1:
        return None
    return float(result[0]["value"][1])


def check(engine, label, names, work):
    want = [recorded(work, n) for n in names]
    counters = sum(w["counters"] for w in want)
    distributions = sum(w["timers"] + w["histograms"] for w in want)
    which = "|".join(names)
    checks = [
        (
            f'sum({{__name__=~".+_total", __name__!~"stats_collector_.+", collector=~"{which}"}})',
            counters,
            "counter totals",
        ),
        (
            f'sum({{__name__=~".+_count", collector=~"{which}"}})',
            distributions,
            "timer and histogram counts",
        ),
    ]
    for promql, expected, what in checks:
        # The last push may take a moment to be searchable.
        for _ in range(50):
            got = scalar(engine, promql)
            if got == expected:
                break
            time.sleep(0.2)
        print(f"{label}: {what}: {got} (recorded {expected})")
        if got != expected:
            raise SystemExit(f"{label}: {what}: {got} != {expected}: {promql}")
    n = 0
    for name in names:
        for (family, labels), value in gauges(work, name).items():
            selector = ",".join(
                [f'__name__="{family}"', f'collector="{name}"']
                + [f'{k}="{v}"' for k, v in labels]
            )
            got = scalar(engine, "{" + selector + "}")
            if got != value:
                raise SystemExit(f"{label}: gauge {selector}: {got} != {value}")
            n += 1
    print(f"{label}: {n} gauges equal to the collectors'")
    if n == 0 and any(w["gauges"] for w in want):
        raise SystemExit(f"{label}: no gauges to compare")


def main():
    work, vm, prom = sys.argv[1:4]
    names = sys.argv[4:] or ["a", "b"]
    if vm:
        check(vm, "VictoriaMetrics", names, work)
    if prom:
        check(prom, "Prometheus", names, work)
        # Prometheus also scraped collector a's /metrics.
        up = scalar(prom, 'max_over_time(up{job="collector-a"}[1m])')
        scraped = scalar(prom, 'max_over_time(stats_collector_datagrams_total{job="collector-a"}[1m])')
        print(f"Prometheus: scraped collector a: up {up}, datagrams {scraped}")
        if up != 1 or not scraped:
            raise SystemExit("Prometheus did not scrape collector a")


main()

#!/usr/bin/env python3
"""A proxy in front of a real engine that answers as a failing one does.

usage: fault_proxy.py PORT UPSTREAM SCHEDULE

Listens on 127.0.0.1:PORT. SCHEDULE is STATUS:N,... ("500:2,429:2,400:2"):
the first N requests are answered STATUS without passing them on (429
with Retry-After: 1), then the next STATUS; after the schedule, each
request is sent on to UPSTREAM (same path, body and headers) and answered
with what the engine answered. Prints "passing" when the schedule is done,
and at SIGTERM how many requests it answered in each mode.
"""

import http.server
import signal
import sys
import threading
import urllib.error
import urllib.request

PORT, UPSTREAM = int(sys.argv[1]), sys.argv[2]
schedule = [(s, int(n)) for s, n in (p.split(":") for p in sys.argv[3].split(","))]
FORWARDED = ("Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version")
lock = threading.Lock()
counts = {}


def mode():
    """The mode for the next request, counted."""
    with lock:
        while schedule and schedule[0][1] == 0:
            schedule.pop(0)
            if not schedule:
                print("passing", flush=True)
        if schedule:
            status, n = schedule[0]
            schedule[0] = (status, n - 1)
            m = status
        else:
            m = "pass"
        counts[m] = counts.get(m, 0) + 1
        return m


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        m = mode()
        if m == "pass":
            headers = {k: self.headers[k] for k in FORWARDED if k in self.headers}
            request = urllib.request.Request(
                UPSTREAM + self.path, data=body, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as r:
                    status, answer = r.status, r.read()
            except urllib.error.HTTPError as e:
                status, answer = e.code, e.read()
            except OSError:
                status, answer = 502, b"upstream unreachable"
        else:
            status, answer = int(m), f"{m} from the fault proxy".encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def report():
    with lock:
        print("requests by mode:", dict(sorted(counts.items())), flush=True)


def stop(*_):
    report()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()

#!/usr/bin/env python3
"""A proxy in front of a real engine that answers as a failing one does.

usage: fault_proxy.py PORT UPSTREAM MODE_FILE

Listens on 127.0.0.1:PORT. For each POST it reads MODE_FILE: "pass" sends
the request on to UPSTREAM (same path, body and headers) and answers what
the engine answered; a status code (500, 429, 400...) answers that without
passing it on (429 with Retry-After: 1). At SIGTERM it prints how many
requests it answered in each mode.
"""

import http.server
import signal
import sys
import threading
import urllib.error
import urllib.request

PORT, UPSTREAM, MODE_FILE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
FORWARDED = ("Content-Type", "Content-Encoding", "X-Prometheus-Remote-Write-Version")
lock = threading.Lock()
counts = {}


def mode():
    try:
        with open(MODE_FILE) as f:
            return f.read().strip() or "pass"
    except FileNotFoundError:
        return "pass"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        m = mode()
        with lock:
            counts[m] = counts.get(m, 0) + 1
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

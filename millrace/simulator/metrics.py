"""The simulator's Prometheus metrics, declared once, and a tiny metrics + health server."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest

READINGS_SENT = Counter(
    "millrace_simulator_readings_sent",
    "Readings acknowledged by the transport (Kafka ack or HTTP 2xx).",
    ["transport"],
)
MESSAGES_SENT = Counter(
    "millrace_simulator_messages_sent",
    "Batches acknowledged by the transport.",
    ["transport"],
)
SEND_ERRORS = Counter(
    "millrace_simulator_send_errors",
    "Failed send attempts, by transport and reason (retried ones included).",
    ["transport", "reason"],
)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/healthz":
            body, ctype = b"ok\n", "text/plain; charset=utf-8"
        elif self.path.split("?")[0] == "/metrics":
            body, ctype = generate_latest(REGISTRY), CONTENT_TYPE_LATEST
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not worth a log line."""


def serve_metrics(port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/healthz`` from a daemon thread; ``shutdown()`` stops it."""
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="simulator-metrics", daemon=True).start()
    return server

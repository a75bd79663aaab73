"""The three operator paths every long-running shopbot process answers: /healthz, /readyz, /metrics.

The answers are plain functions returning (status, content type, body), so that a process with an HTTP
server of its own (the Rasa action server's Sanic app, the webhook receiver's tornado app) mounts the same
paths with the same bodies; :func:`start_ops_server` serves them on a port of their own for a process
that has none (``shopbot telegram`` by polling, a queue worker). That server runs in a background thread
on the standard library's ThreadingHTTPServer, so a slow scrape or readiness check never stalls the
bot's event loop.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

import bot.observability.metrics  # noqa: F401  (defines the metrics, so /metrics always lists them)

__all__ = [
    "HEALTH_PATH",
    "METRICS_PATH",
    "OPS_PATHS",
    "READY_PATH",
    "OpsServer",
    "Response",
    "health_response",
    "metrics_response",
    "ops_response",
    "ready_response",
    "start_ops_server",
]

log = logging.getLogger(__name__)

HEALTH_PATH, READY_PATH, METRICS_PATH = "/healthz", "/readyz", "/metrics"
OPS_PATHS = (HEALTH_PATH, READY_PATH, METRICS_PATH)
JSON = "application/json"

Response = tuple[int, str, bytes]
"""(HTTP status, Content-Type, body)."""


def health_response() -> Response:
    """Liveness: the process answers, so it is alive (restart it when this stops answering)."""
    return 200, JSON, b'{"status": "ok"}'


def ready_response(checks: Mapping[str, bool]) -> Response:
    """Readiness: 200 when every check passes, else 503; the body names each check and its state, so an
    operator sees which one holds the process back."""
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not ready",
            "checks": {name: "ok" if ok else "failing" for name, ok in checks.items()}}
    return (200 if ready else 503), JSON, json.dumps(body).encode()


def metrics_response() -> Response:
    """Prometheus' text exposition of the default registry (every ``shopbot_`` metric and the process's)."""
    return 200, CONTENT_TYPE_LATEST, generate_latest(REGISTRY)


def ops_response(path: str, ready: Callable[[], Mapping[str, bool]]) -> Response | None:
    """The answer for one of the three paths (a query string is ignored); None for any other path."""
    path = path.split("?", 1)[0]
    if path == HEALTH_PATH:
        return health_response()
    if path == READY_PATH:
        return ready_response(ready())
    if path == METRICS_PATH:
        return metrics_response()
    return None


class OpsServer:
    """/healthz, /readyz and /metrics on their own port, in a daemon thread; ``close()`` stops it."""

    def __init__(self, server: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])  # the real one when asked for port 0

    @property
    def url(self) -> str:
        # bandit B104 is a false positive: a comparison, nothing binds here
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # nosec B104
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_ops_server(host: str, port: int, ready: Callable[[], Mapping[str, bool]]) -> OpsServer:
    """Serve the three paths on ``host:port`` (0: any free port, see ``.port``) until ``close()``.

    Raises OSError when the port cannot be bound, before anything runs."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "shopbot-ops"

        def do_GET(self) -> None:
            self._answer(with_body=True)

        def do_HEAD(self) -> None:
            self._answer(with_body=False)

        def _answer(self, *, with_body: bool) -> None:
            try:
                answer = ops_response(self.path, ready)
            except Exception:  # a broken readiness callable: not ready, and said in the log
                log.exception("Answering %s failed", self.path)
                answer = 503, JSON, b'{"status": "not ready", "checks": {}}'
            status, content_type, body = answer or (404, JSON, b'{"error": "not found"}')
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a scrape every few seconds is no news; errors are logged above

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="ops-http",
                              daemon=True)
    thread.start()
    return OpsServer(server, thread)

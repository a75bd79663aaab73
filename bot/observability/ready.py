"""Readiness: named yes/no checks that /readyz runs, each in its own thread with a short timeout.

A load balancer or Kubernetes asks /readyz every few seconds; a check that hangs (a database host that
drops packets) must turn into "not ready" within the probe's own timeout rather than pile requests up,
and a check that raises is a failing check, never a 500. The concrete checks (the index is loaded, the
database answers, the broker answers) belong to the code that owns those things; this module only runs
them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["Check", "Readiness", "run_checks"]

Check = Callable[[], bool]

DEFAULT_TIMEOUT = 2.0


def run_checks(checks: Mapping[str, Check], timeout: float = DEFAULT_TIMEOUT) -> dict[str, bool]:
    """Each check's result, run at the same time; an exception, a falsy answer or no answer within
    ``timeout`` seconds is False. A check still running is left to finish in its daemon thread."""
    results: dict[str, bool] = {}
    lock = threading.Lock()

    def run(name: str, check: Check) -> None:
        try:
            ok = bool(check())
        except Exception:  # a failing check means "not ready", whatever it raised
            ok = False
        with lock:
            results[name] = ok

    threads = [threading.Thread(target=run, args=(name, check), name=f"ready-{name}", daemon=True)
               for name, check in checks.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return {name: results.get(name, False) for name in checks}


class Readiness:
    """The checks of one process, which may grow as it starts (the index check turns real once the
    index is loaded); calling it runs them (:func:`run_checks`)."""

    def __init__(self, checks: Mapping[str, Check] | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._checks: dict[str, Check] = dict(checks or {})
        self._lock = threading.Lock()

    def update(self, checks: Mapping[str, Check]) -> None:
        """Add or replace checks by name."""
        with self._lock:
            self._checks.update(checks)

    def __call__(self) -> dict[str, bool]:
        with self._lock:
            checks = dict(self._checks)
        return run_checks(checks, self.timeout)

"""The Rasa action server behind ``shopbot actions``: rasa-sdk's app (rasa-sdk) serving shopbot's actions (bot/channels/rasa/actions.py).

The server is rasa-sdk's own Sanic app (``rasa_sdk.endpoint.create_app``: ``POST /webhook``,
``GET /health``, ``GET /actions``) with the operator paths every shopbot process serves (``GET /healthz``,
``/readyz``, ``/metrics``: bot/observability/http.py) and one addition in front of the webhook: the request
is checked before any action runs, so a malformed call gets a clear HTTP error instead of a 500 with a
traceback in the log:

* not JSON, not an object, no ``next_action``, no ``tracker``, a field of the wrong type -> 400 with
  ``{"error": "...", "action_name": ...}`` (Rasa's own shape for a rejected action);
* an action this server does not serve -> 404 naming the ones it does;
* a body over ``MAX_BODY`` (20 MiB), sent as it is (Sanic's REQUEST_MAX_SIZE) or deflated -> 413.

Point a Rasa project's endpoints.yml at it (``action_endpoint: url: http://HOST:PORT/webhook``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import warnings
import zlib
from collections.abc import Mapping
from typing import Any

from bot.channels.rasa.actions import ACTIONS, ActionRuntime
from bot.observability.http import health_response, metrics_response, ready_response
from bot.observability.metrics import count_error
from bot.observability.ready import run_checks

__all__ = ["MAX_BODY", "ActionServer", "TooLarge", "check_action_call", "create_action_app", "inflate"]

log = logging.getLogger(__name__)

MAX_BODY = 20 * 1024 * 1024  # a long conversation's tracker (Rasa sends every event) stays well below this
TOO_LARGE = f"The action call is larger than {MAX_BODY // 2**20} MiB once inflated."


class TooLarge(ValueError):
    """A compressed action call that inflates past ``MAX_BODY``."""


def inflate(raw: bytes) -> bytes:
    """A deflate-compressed body (Rasa compresses its action calls), at most ``MAX_BODY`` bytes of it.

    Sanic's REQUEST_MAX_SIZE bounds only the compressed bytes: 20 MiB of zeros deflate to 20 KiB, so an
    unbounded ``zlib.decompress`` would let one request take gigabytes. Raises TooLarge past the limit and
    zlib.error for bytes that are not deflate data."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(raw, MAX_BODY + 1)
    if len(out) > MAX_BODY or inflater.unconsumed_tail:
        raise TooLarge(TOO_LARGE)
    return out


def check_action_call(body: Any, served: Mapping[str, Any]) -> tuple[int, str] | None:
    """What is wrong with an action call, as (HTTP status, one sentence); None when it can run."""
    if not isinstance(body, dict):
        return 400, "The request body must be a JSON object: Rasa's action call with next_action, tracker and domain."
    name = body.get("next_action")
    if not isinstance(name, str) or not name.strip():
        return 400, "The action call has no next_action (the name of the action to run)."
    if name not in served:
        return 404, f"No action named {name!r} is served here; this server serves: {', '.join(sorted(served))}."
    tracker = body.get("tracker")
    if tracker is None:
        return 400, "The action call has no tracker (the conversation's state)."
    if not isinstance(tracker, dict):
        return 400, f"The tracker must be a JSON object, not {_kind(tracker)}."
    sender = tracker.get("sender_id")
    if not isinstance(sender, str) or not sender.strip():
        return 400, "The tracker has no sender_id (whose conversation this is)."
    expected: dict[str, tuple[type, ...]] = {
        "slots": (dict,), "latest_message": (dict,), "events": (list,), "paused": (bool,),
        "active_loop": (dict,), "latest_action_name": (str,), "followup_action": (str,),
    }
    for key, types in expected.items():
        value = tracker.get(key)
        if value is not None and not isinstance(value, types):
            return 400, f"tracker.{key} must be {_names(types)}, not {_kind(value)}."
    latest = tracker.get("latest_message") or {}
    for key, types in {"text": (str,), "intent": (dict,), "entities": (list,), "metadata": (dict,)}.items():
        value = latest.get(key)
        if value is not None and not isinstance(value, types):
            return 400, f"tracker.latest_message.{key} must be {_names(types)}, not {_kind(value)}."
    if any(not isinstance(e, dict) for e in latest.get("entities") or ()):
        return 400, "Each entity in tracker.latest_message.entities must be a JSON object."
    if any(not isinstance(e, dict) for e in tracker.get("events") or ()):
        return 400, "Each event in tracker.events must be a JSON object."
    domain = body.get("domain")
    if domain is not None and not isinstance(domain, dict):
        return 400, f"The domain must be a JSON object, not {_kind(domain)}."
    if isinstance(domain, dict) and domain.get("slots") is not None and not isinstance(domain["slots"], dict):
        return 400, f"domain.slots must be an object, not {_kind(domain['slots'])}."
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        return 400, f"version must be a string, not {_kind(version)}."
    return None


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__)


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(_kind(t()) for t in types)


def create_action_app(runtime: ActionRuntime, *, cors_origins: str | list[str] | None = None) -> Any:
    """rasa-sdk's Sanic app serving shopbot's actions over ``runtime``, with the request check in front."""
    # rasa-sdk and Sanic take a second to import: only when a server is made
    from rasa_sdk.endpoint import create_app
    from rasa_sdk.executor import ActionExecutor
    from sanic import Sanic, response
    from sanic.exceptions import SanicException

    executor = ActionExecutor()
    for cls in ACTIONS:
        executor.register_action(cls(runtime))
    with contextlib.suppress(SanicException):  # rasa-sdk names every app "rasa_sdk"; Sanic refuses a second one
        Sanic.unregister_app(Sanic.get_app("rasa_sdk"))
    # rasa-sdk warns on every call whose Rasa version differs in A.B from its own; the action protocol
    # this server speaks is the same for every Rasa 3.x (tests replay Rasa 3.6.21's requests)
    warnings.filterwarnings("ignore", message="Your versions of rasa and rasa_sdk", category=UserWarning)
    app: Sanic = create_app(executor, cors_origins=cors_origins)
    app.config.REQUEST_MAX_SIZE = MAX_BODY
    app.config.NOISY_EXCEPTIONS = False
    app.ctx.runtime = runtime

    @app.after_server_start
    async def watch(app: Any) -> None:  # serve what `shopbot reindex` / `train` publish, no restart
        s = runtime.assistant.settings
        if s is not None and s.reload_seconds > 0:
            app.ctx.watch = asyncio.get_running_loop().create_task(runtime.assistant.watch(s.reload_seconds))

    @app.before_server_stop
    async def unwatch(app: Any) -> None:
        task = getattr(app.ctx, "watch", None)
        if task is not None:
            task.cancel()

    @app.on_request  # type: ignore[untyped-decorator]  # Sanic 22.12 leaves on_request unannotated
    async def check(request: Any) -> Any:
        if request.path != "/webhook" or request.method != "POST":
            return None
        length = request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            # Sanic stops reading past REQUEST_MAX_SIZE but still runs this check with an empty body, which
            # would be a misleading 400 "not a JSON object"
            count_error("bad_update")
            return response.json({"error": TOO_LARGE.replace(" once inflated", ""), "action_name": None}, status=413)
        try:
            raw = request.body or b""
            if request.headers.get("Content-Encoding") == "deflate":
                raw = inflate(raw)
            body = json.loads(raw) if raw.strip() else None
        except TooLarge:
            count_error("bad_update")
            return response.json({"error": TOO_LARGE, "action_name": None}, status=413)
        except (ValueError, zlib.error, RecursionError):  # RecursionError: JSON nested 100,000 deep
            count_error("bad_update")
            return response.json({"error": "The request body is not valid JSON.", "action_name": None}, status=400)
        problem = check_action_call(body, executor.actions)
        if problem is None:
            return None
        status, error = problem
        count_error("bad_update")
        name = body.get("next_action") if isinstance(body, dict) else None
        log.info("Refused an action call (%s): %s", status, error)
        return response.json({"error": error, "action_name": name if isinstance(name, str) else None}, status=status)

    def answer(status: int, content_type: str, body: bytes) -> Any:
        return response.raw(body, status=status, content_type=content_type, headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    async def healthz(request: Any) -> Any:
        return answer(*health_response())

    @app.get("/readyz")
    async def readyz(request: Any) -> Any:  # the checks block (a SELECT 1): off the event loop
        return answer(*ready_response(await asyncio.to_thread(run_checks, runtime.assistant.readiness())))

    @app.get("/metrics")
    async def metrics(request: Any) -> Any:
        return answer(*metrics_response())

    return app


class ActionServer:
    """The action server on its own event loop in a background thread (tests, embedding); ``stop()`` ends it."""

    def __init__(self, runtime: ActionRuntime, host: str = "127.0.0.1", port: int = 5055) -> None:
        self.runtime = runtime
        self.host, self.port = host, port
        self.app = create_action_app(runtime)
        # Sanic's start-up "touch-up" rewrites its request handling methods on the class, once per
        # process; a second server in the same process would fail on the rewritten code
        self.app.config.TOUCHUP = False
        self._loop = asyncio.new_event_loop()
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="rasa-actions", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ActionServer:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"The action server did not start on {self.url}: {self._error}")
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        server = await self.app.create_server(host=self.host, port=self.port, return_asyncio_server=True,
                                              access_log=False)
        if server is None:  # pragma: no cover - create_server returns it when asked to
            raise RuntimeError("Sanic returned no server")
        await server.startup()
        await server.before_start()
        await server.after_start()
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await server.before_stop()
            server.close()
            await server.wait_closed()
            await server.after_stop()
            await self.runtime.assistant.dialogue.drain()

    def stop(self) -> None:
        if self._stopped is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout=30)
        from sanic import Sanic  # loaded already by create_action_app; kept local like there

        Sanic.unregister_app(self.app)

    def __enter__(self) -> ActionServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""The console's Starlette app: server-rendered pages (Jinja2, autoescaped) over the bot's own store, index
and model registry. Every request passes :class:`bot.console.security.Guard` first (login, expiry, CSRF,
body size); handlers only read and write through the functions the CLI and Telegram's admin commands use
(the store's reports and handoff calls, ``bot.services`` for catalogs, the registry for models).
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import pygal
from pygal.style import Style
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.console.delivery import deliver
from bot.console.jobs import ReindexJob
from bot.console.security import CSRF_FIELD, Guard, LoginLimiter, csrf_token, log_in, password_ok
from bot.services import read_catalog
from bot.settings import Settings
from bot.store.database import Store
from bot.store.reports import Period
from model.training.registry import KINDS, Registry, RegistryError
from retrieval.catalog import CatalogError
from retrieval.encoders import get_encoder
from retrieval.gaps import GapQuery, themes
from retrieval.synonyms import add_rule, read_rules, synonyms_path

__all__ = ["create_app"]

HERE = Path(__file__).parent
PERIODS = (7, 30, 90)
UPLOAD_DIR = "console-uploads"
# a checked upload nobody started a reindex of is removed at the next upload after this long (one that is
# reindexed is removed when its reindex ends)
UPLOAD_KEEP_S = 24 * 3600


def prune_uploads(uploads: Path, before: float) -> int:
    """Remove the uploads last written before ``before`` (a time stamp); returns how many."""
    removed = 0
    for f in uploads.iterdir():
        try:
            if f.is_file() and f.stat().st_mtime < before:
                f.unlink()
                removed += 1
        except OSError:  # gone meanwhile, or not ours to remove: the next upload tries again
            continue
    return removed
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _period(request: Request, now: datetime) -> tuple[int, Period]:
    try:
        days = int(request.query_params.get("days", "7"))
    except ValueError:
        days = 7
    days = days if days in PERIODS else 7
    channel = request.query_params.get("channel") or None
    language = request.query_params.get("language") or None
    return days, Period(now - timedelta(days=days), now + timedelta(seconds=1), channel, language)


def _chart_style() -> Style:
    return Style(background="transparent", plot_background="transparent", font_family="system-ui, sans-serif",
                 colors=("#2563eb", "#16a34a", "#dc2626"))


_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)


def _svg(chart: Any) -> str:
    """The chart as inline SVG. pygal escapes text through its XML serializer; its inline <script> (a config
    object that repeats the labels, i.e. what shoppers typed, for its tooltips) is removed: the console runs no
    JavaScript from data, and the chart reads fine without tooltips."""
    return _SCRIPT.sub("", str(chart.render(is_unicode=True, disable_xml_declaration=True)))


def create_app(settings: Settings, *, store: Store | None = None, clock: Callable[[], float] = time.time,
               secret_key: str | None = None) -> Starlette:
    """The console for ``settings`` (its password must be set). ``store`` defaults to the configured database
    (closed on shutdown); ``clock`` and ``secret_key`` are for tests (a fresh key per start logs everyone out)."""
    if settings.console_password is None:
        raise ValueError("Set SHOPBOT_CONSOLE_PASSWORD before starting the console.")
    password = settings.console_password.get_secret_value()
    own_store = store is None
    db = store if store is not None else Store(settings.db_url, settings.buffer_dir)
    # autoescape everything (not only *.html): a shopper's text is never markup here
    templates = Jinja2Templates(env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                                       autoescape=True))
    limiter = LoginLimiter()
    job = ReindexJob()
    uploads = settings.data_dir / UPLOAD_DIR
    max_age = settings.console_session_hours * 3600

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        flash = request.session.pop("flash", None)
        return templates.TemplateResponse(request, name, {
            "csrf": csrf_token(request.session), "csrf_field": CSRF_FIELD, "flash": flash, "path": request.url.path,
            **context}, status_code=status)

    def back(request: Request, to: str, note: str) -> Response:
        request.session["flash"] = note
        return RedirectResponse(to, status_code=303)

    async def form(request: Request) -> dict[str, str]:
        data = await request.form()
        return {k: v for k, v in data.items() if isinstance(v, str)}

    # ------------------------------------------------------------------------------ login

    async def login_page(request: Request) -> Response:
        return page(request, "login.html")

    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if limiter.blocked(client):
            return page(request, "login.html", 429, error="Too many failed logins; wait five minutes and try again.")
        given = (await form(request)).get("password", "")
        if not password_ok(given, password):
            limiter.failed(client)
            return page(request, "login.html", 401, error="That password is not right.")
        limiter.succeeded(client)
        log_in(request.session, clock())
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # ------------------------------------------------------------------------------ overview

    async def overview(request: Request) -> Response:
        days, period = _period(request, now())
        ov = await run_in_threadpool(db.overview, period)
        daily = pygal.Bar(style=_chart_style(), height=260, width=800, x_label_rotation=30, js=[],
                          show_legend=True, legend_at_bottom=True)
        daily.x_labels = [d for d, _, _ in ov.days]
        daily.add("conversations", [c for _, c, _ in ov.days])
        daily.add("turns", [t for _, _, t in ov.days])
        top = pygal.HorizontalBar(style=_chart_style(), height=300, width=800, js=[], show_legend=False)
        top.x_labels = [q[:60] for q, _ in reversed(ov.top_searches)]
        top.add("searches", [n for _, n in reversed(ov.top_searches)])
        return page(request, "overview.html", ov=ov, days=days, periods=PERIODS, period=period,
                    daily_svg=_svg(daily) if ov.days else "", top_svg=_svg(top) if ov.top_searches else "")

    async def api_overview(request: Request) -> Response:
        days, period = _period(request, now())
        ov = await run_in_threadpool(db.overview, period)
        return JSONResponse({"days": days, **{k: v for k, v in ov.__dict__.items()}})

    # ------------------------------------------------------------------------------ conversations

    async def conversations(request: Request) -> Response:
        q = request.query_params.get("q", "").strip()[:200]
        rows = await run_in_threadpool(db.conversations, q)
        return page(request, "conversations.html", rows=rows, q=q)

    async def conversation(request: Request) -> Response:
        user_id = request.path_params["user_id"]
        turns = await run_in_threadpool(db.conversation, user_id)
        handed = await run_in_threadpool(db.is_handed_over, user_id)
        return page(request, "conversation.html", user_id=user_id, turns=turns, handed_over=handed,
                    status=404 if not turns else 200)

    async def handoffs(request: Request) -> Response:
        rows = await run_in_threadpool(db.open_handoffs)
        return page(request, "handoffs.html", rows=rows)

    async def reply(request: Request) -> Response:
        data = await form(request)
        user_id, text = data.get("user_id", ""), data.get("text", "").strip()
        result = await run_in_threadpool(deliver, settings, user_id, text)
        if result.sent:
            await run_in_threadpool(db.log_shop_reply, user_id, text)
        return back(request, data.get("next") or "/handoffs", result.note)

    async def release(request: Request) -> Response:
        user_id = (await form(request)).get("user_id", "")
        ok = await run_in_threadpool(db.release, user_id, "console")
        return back(request, "/handoffs", f"{user_id} is back with the bot." if ok else f"{user_id} has no open handoff.")

    # ------------------------------------------------------------------------------ catalog

    def manifest() -> dict[str, Any] | None:
        from retrieval.bundle import current_dir
        from retrieval.indexer import read_bundle_info

        cur = current_dir(settings.index_root)
        if cur is None:
            return None
        _, info = read_bundle_info(settings.index_root)
        return {"version": cur.name, "info": info, "built": datetime.fromtimestamp(cur.stat().st_mtime, UTC)}

    async def catalog(request: Request) -> Response:
        return page(request, "catalog.html", job=job.status(), manifest=await run_in_threadpool(manifest),
                    limit_mb=settings.console_upload_mb)

    async def upload(request: Request) -> Response:
        data = await request.form(max_files=1)
        file = data.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            return page(request, "catalog.html", 400, job=job.status(), manifest=manifest(),
                        limit_mb=settings.console_upload_mb, error="Choose a catalog file to upload.")
        raw = await file.read()
        if len(raw) > settings.console_upload_mb * 2**20:
            return PlainTextResponse(f"The upload is larger than {settings.console_upload_mb:g} MiB "
                                     "(SHOPBOT_CONSOLE_UPLOAD_MB).", status_code=413)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return page(request, "catalog.html", 400, job=job.status(), manifest=manifest(),
                        limit_mb=settings.console_upload_mb,
                        error=f"{file.filename} is not UTF-8 text (byte {exc.start + 1} is not); save it as UTF-8 "
                              "(Excel: CSV UTF-8) and upload it again.")
        suffix = "".join(c for c in Path(file.filename).suffix.lower() if c.isalnum() or c == ".")[:8]
        uploads.mkdir(parents=True, exist_ok=True)
        prune_uploads(uploads, time.time() - UPLOAD_KEEP_S)
        token = uuid.uuid4().hex
        path = uploads / f"{token}{suffix}"
        path.write_bytes(raw)
        try:
            report = await run_in_threadpool(read_catalog, settings, path, on_error="skip")
        except (CatalogError, ValueError, OSError) as exc:
            path.unlink(missing_ok=True)
            return page(request, "catalog.html", 400, job=job.status(), manifest=manifest(),
                        limit_mb=settings.console_upload_mb, error=str(exc).splitlines()[0])
        request.session["upload"] = {"token": token, "suffix": suffix, "name": file.filename}
        preview = [{"sku": p.sku, "title": p.title, "price": p.price, "formula": p.title.startswith(FORMULA_START)}
                   for p in report.products[:20]]
        return page(request, "catalog.html", job=job.status(), manifest=manifest(), limit_mb=settings.console_upload_mb,
                    checked={"name": file.filename, "errors": report.load.errors, "lines": report.lines(),
                             "products": len(report.products), "preview": preview})

    async def start_reindex(request: Request) -> Response:
        up = request.session.get("upload")
        if not isinstance(up, dict):
            return back(request, "/catalog", "Upload and check a catalog first.")
        path = uploads / f"{up['token']}{up['suffix']}"
        if not path.is_file():
            return back(request, "/catalog", "The checked upload is gone; upload it again.")
        started = job.start(settings, path, str(up["name"]))
        request.session.pop("upload", None)
        return back(request, "/catalog", "Reindex started." if started else "A reindex is already running.")

    async def api_reindex(request: Request) -> Response:
        return JSONResponse(job.status())

    # ------------------------------------------------------------------------------ models

    async def models(request: Request) -> Response:
        reg = Registry(settings.models_dir)
        kinds = {k: {"active": reg.active_name(k), "versions": list(reversed(reg.versions(k)))} for k in KINDS}
        return page(request, "models.html", kinds=kinds)

    async def promote(request: Request) -> Response:
        data = await form(request)
        kind, name = data.get("kind", ""), data.get("name", "")
        try:
            Registry(settings.models_dir).activate(kind, name, reason="console")
            note = f"{kind} {name} is active; the bot serves it within SHOPBOT_RELOAD_SECONDS."
        except (RegistryError, KeyError, OSError) as exc:
            note = str(exc).splitlines()[0]
        return back(request, "/models", note)

    async def rollback(request: Request) -> Response:
        kind = (await form(request)).get("kind", "")
        try:
            v = Registry(settings.models_dir).rollback(kind)
            note = f"{kind} rolled back to {v.name if v else 'the built-in default'}."
        except (RegistryError, KeyError, OSError) as exc:
            note = str(exc).splitlines()[0]
        return back(request, "/models", note)

    # ------------------------------------------------------------------------------ demand gaps

    def digest(period: Period) -> list[Any]:
        current = [GapQuery(g.query, g.at, g.kind) for g in db.gap_searches(period)]
        previous = [GapQuery(g.query, g.at, g.kind) for g in db.gap_searches(period.previous())]
        if not current:
            return []
        encoder = get_encoder(settings.multilingual_encoder or settings.encoder, device=settings.device)
        return themes(current, previous, encoder, limit=50)

    async def gaps(request: Request) -> Response:
        days, period = _period(request, now())
        found = await run_in_threadpool(digest, period)
        rules = read_rules(synonyms_path(settings.index_root))
        return page(request, "gaps.html", themes=found, days=days, periods=PERIODS, rules=rules)

    async def add_synonym(request: Request) -> Response:
        data = await form(request)
        phrase, words = data.get("phrase", ""), data.get("words", "")
        kind = "product-name alias" if data.get("kind") == "alias" else "synonym"
        try:
            add_rule(synonyms_path(settings.index_root), phrase, words, note=f"{kind}, added in the console {now():%Y-%m-%d}")
        except ValueError as exc:
            return back(request, "/gaps", str(exc))
        return back(request, "/gaps", f"Added the {kind} “{phrase} = {words}”: search uses it from the next query on.")

    async def mark_handled(request: Request) -> Response:
        data = await request.form()
        queries = [q for q in data.getlist("query") if isinstance(q, str)]
        label = str(data.get("label") or (queries[0] if queries else ""))
        n = await run_in_threadpool(lambda: db.mark_gaps_handled(queries, theme=label, by="console"))
        return back(request, "/gaps", f"Marked “{label}” handled ({n} searches); it is hidden from now on.")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        if own_store:
            db.close()

    routes = [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", overview, methods=["GET"]),
        Route("/conversations", conversations, methods=["GET"]),
        Route("/conversations/{user_id:path}", conversation, methods=["GET"]),
        Route("/handoffs", handoffs, methods=["GET"]),
        Route("/handoffs/reply", reply, methods=["POST"]),
        Route("/handoffs/release", release, methods=["POST"]),
        Route("/catalog", catalog, methods=["GET"]),
        Route("/catalog/upload", upload, methods=["POST"]),
        Route("/catalog/reindex", start_reindex, methods=["POST"]),
        Route("/models", models, methods=["GET"]),
        Route("/models/promote", promote, methods=["POST"]),
        Route("/models/rollback", rollback, methods=["POST"]),
        Route("/gaps", gaps, methods=["GET"]),
        Route("/gaps/synonym", add_synonym, methods=["POST"]),
        Route("/gaps/handled", mark_handled, methods=["POST"]),
        Route("/api/overview", api_overview, methods=["GET"]),
        Route("/api/reindex", api_reindex, methods=["GET"]),
        Route("/api/health", health, methods=["GET"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(SessionMiddleware, secret_key=secret_key or secrets.token_hex(32), session_cookie="shopbot_console",
                   max_age=int(max_age), same_site="strict", https_only=False),
        Middleware(Guard, max_age=max_age, max_body=int(settings.console_upload_mb * 2**20), clock=clock),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.job = job
    app.state.store = db
    return app

"""Read-only reports over the log: the shop owner's stats and console views (overview, conversations, demand
gaps), the feedback export (one JSON line per turn),
and the training reads the ranker, the intent classifier and the language model learn from
(:class:`~bot.store.records.SearchLog`, :class:`~bot.store.records.TurnLog`). None of them writes, and
none has an offline fallback: each takes ``read``, the store's session opener, which writes the buffered
rows first (so a report includes them) and raises :class:`~bot.store.records.StoreUnavailable` while the
database is down. They live apart from the :class:`~bot.store.database.Store` because they are long,
query-heavy and read by other people (owners, trainers) than the turn-by-turn code is.
"""

from __future__ import annotations

import json
import os
import uuid
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from bot.observability.pii import redact_pii
from bot.store.records import NEGATIVE_KINDS, SearchLog, Stats, TurnLog
from bot.store.schema import Feedback, HandledGap, Handoff, Impression, Turn, User, utc

#: Turns whose query is a shopper's search; "more" repeats the previous query and would count it twice.
SEARCH_INTENTS = ("search", "refine")

Read = Callable[[], AbstractContextManager[Session]]


# -------------------------------------------------------------------------------- for the owner


def stats(read: Read, pending: Callable[[], int], top: int = 10) -> Stats:
    """What the shop owner looks at: volume, what shoppers search for, what finds nothing, thumbs;
    ``pending`` counts the writes still buffered (asked after the read, which replays them)."""
    with read() as s:
        turns = s.execute(select(func.count()).select_from(Turn)).scalar_one()
        users = s.execute(select(func.count()).select_from(User)).scalar_one()
        sessions = s.execute(select(func.count(func.distinct(Turn.session_id)))).scalar_one()
        q = func.coalesce(Turn.query, Turn.text_in)
        searches = select(q, func.count()).where(Turn.intent.in_(SEARCH_INTENTS)).group_by(q)
        queries = _casefolded(s.execute(searches).all())
        no_results = ~exists().where(Impression.turn_id == Turn.id)
        zero = _casefolded(s.execute(searches.where(no_results)).all())
        kinds = {str(k): int(c) for k, c in s.execute(select(Feedback.kind, func.count()).group_by(Feedback.kind)).all()}
        open_handoffs = s.execute(select(func.count()).select_from(Handoff).where(Handoff.released_at.is_(None))).scalar_one()
        n_lat = s.execute(select(func.count(Turn.latency_ms))).scalar_one()
        p50 = s.execute(select(Turn.latency_ms).where(Turn.latency_ms.is_not(None))
                        .order_by(Turn.latency_ms).offset(n_lat // 2).limit(1)).scalar() if n_lat else None
    up = kinds.get("thumb_up", 0)
    down = sum(kinds.get(k, 0) for k in NEGATIVE_KINDS)
    return {
        "turns": int(turns), "users": int(users), "sessions": int(sessions),
        "top_queries": queries[:top], "zero_result_queries": zero[:top],
        "feedback": kinds, "thumbs_up": up, "thumbs_down": down,
        "thumbs_ratio": round(up / (up + down), 3) if up + down else None,
        "open_handoffs": int(open_handoffs),
        "latency_ms_p50": round(float(p50), 1) if p50 is not None else None,
        "pending_writes": pending(),
    }


def _casefolded(rows: Sequence[Any]) -> list[tuple[str, int]]:
    # grouped in SQL, merged here: SQLite's lower() only knows ASCII, Python's knows every script
    counts: dict[str, int] = defaultdict(int)
    for text, count in rows:
        if text:
            counts[" ".join(str(text).split()).casefold()] += int(count)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# ------------------------------------------------------------------------------ for the console


@dataclass(frozen=True)
class Period:
    """A half-open time range [since, until) with optional channel and language filters: what every console
    report is asked about, so that numbers on one page always describe the same turns."""

    since: datetime
    until: datetime
    channel: str | None = None
    language: str | None = None

    def previous(self) -> Period:
        """The period of the same length just before this one (for a trend)."""
        return Period(self.since - (self.until - self.since), self.since, self.channel, self.language)


@dataclass
class Overview:
    """What the console's overview page shows for one :class:`Period`."""

    days: list[tuple[str, int, int]]  # (YYYY-MM-DD, conversations, turns), days without turns left out
    conversations: int
    turns: int
    thumbs_up: int
    thumbs_down: int
    thumbs_share: float | None  # up / (up + down); None without any thumb
    handoffs: int
    handoff_rate: float | None  # handoffs / conversations
    searches: int
    zero_results: int
    zero_result_rate: float | None
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    top_searches: list[tuple[str, int]]
    channels: list[str] = field(default_factory=list)  # every channel and language in the log, for the filters
    languages: list[str] = field(default_factory=list)


def _turn_filter(p: Period) -> list[Any]:
    cond: list[Any] = [Turn.created_at >= p.since, Turn.created_at < p.until]
    if p.channel:
        cond.append(Turn.channel == p.channel)
    if p.language:
        cond.append(Turn.language == p.language)
    return cond


def _user_filter(p: Period) -> list[Any]:
    # feedback and handoffs carry no channel or language of their own: the user's say which
    cond: list[Any] = []
    if p.channel:
        cond.append(User.channel == p.channel)
    if p.language:
        cond.append(User.language == p.language)
    return cond


def _percentile(s: Session, cond: Sequence[Any], n: int, q: float) -> float | None:
    """The nearest-rank ``q`` percentile of the turns' latency, as the database sorts it (no rows in Python)."""
    if not n:
        return None
    k = max(0, min(n - 1, -(-int(q * 1000) * n // 1000) - 1))  # ceil(q * n) - 1 without float surprises
    v = s.execute(select(Turn.latency_ms).where(*cond, Turn.latency_ms.is_not(None))
                  .order_by(Turn.latency_ms).offset(k).limit(1)).scalar()
    return None if v is None else round(float(v), 1)


def overview(read: Read, period: Period, *, top: int = 10) -> Overview:
    """Conversations (sessions) and turns per day, thumbs, handoffs, zero-result searches, reply latency and
    the top searches of ``period``: all SQL aggregates, so a year of log costs the database, not the page."""
    tc = _turn_filter(period)
    with read() as s:
        day = func.date(Turn.created_at)
        days = [(str(d), int(c), int(n)) for d, c, n in s.execute(
            select(day, func.count(func.distinct(Turn.session_id)), func.count()).where(*tc)
            .group_by(day).order_by(day)).all()]
        turns, convs = s.execute(select(func.count(), func.count(func.distinct(Turn.session_id))).where(*tc)).one()
        fb = (select(Feedback.kind, func.count()).join(User, User.id == Feedback.user_id)
              .where(Feedback.created_at >= period.since, Feedback.created_at < period.until, *_user_filter(period))
              .group_by(Feedback.kind))
        kinds = {str(k): int(c) for k, c in s.execute(fb).all()}
        handoffs = s.execute(select(func.count()).select_from(Handoff).join(User, User.id == Handoff.user_id)
                             .where(Handoff.created_at >= period.since, Handoff.created_at < period.until,
                                    *_user_filter(period))).scalar_one()
        search = [*tc, Turn.intent.in_(SEARCH_INTENTS)]
        searches = s.execute(select(func.count()).where(*search)).scalar_one()
        zero = s.execute(select(func.count()).where(*search, ~exists().where(Impression.turn_id == Turn.id))).scalar_one()
        q = func.coalesce(Turn.query, Turn.text_in)
        top_searches = _casefolded(s.execute(select(q, func.count()).where(*search).group_by(q)).all())[:top]
        n_lat = s.execute(select(func.count(Turn.latency_ms)).where(*tc)).scalar_one()
        p50, p95 = _percentile(s, tc, n_lat, 0.5), _percentile(s, tc, n_lat, 0.95)
        channels = sorted(str(c) for c in s.execute(select(func.distinct(Turn.channel))).scalars() if c)
        languages = sorted(str(x) for x in s.execute(select(func.distinct(Turn.language))).scalars() if x)
    up = kinds.get("thumb_up", 0)
    down = sum(kinds.get(k, 0) for k in NEGATIVE_KINDS)
    return Overview(
        days=days, conversations=int(convs), turns=int(turns), thumbs_up=up, thumbs_down=down,
        thumbs_share=round(up / (up + down), 3) if up + down else None,
        handoffs=int(handoffs), handoff_rate=round(handoffs / convs, 3) if convs else None,
        searches=int(searches), zero_results=int(zero), zero_result_rate=round(zero / searches, 3) if searches else None,
        latency_ms_p50=p50, latency_ms_p95=p95, top_searches=top_searches, channels=channels, languages=languages)


@dataclass(frozen=True)
class ConversationRow:
    """One shopper in the console's conversation list."""

    user_id: str
    channel: str
    language: str | None
    turns: int
    last_at: datetime
    last_text: str
    handed_over: bool


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conversations(read: Read, *, search: str = "", limit: int = 100) -> list[ConversationRow]:
    """Shoppers, most recently active first; ``search`` matches the user id or anything said by either side
    (case-insensitive for ASCII in SQLite, as LIKE is there)."""
    with read() as s:
        counts = (select(Turn.user_id, func.count().label("n"), func.max(Turn.created_at).label("last"))
                  .group_by(Turn.user_id))
        if search:
            like = "%" + _like_escaped(search) + "%"
            hit = select(Turn.user_id).where(or_(Turn.text_in.ilike(like, escape="\\"),
                                                 Turn.text_out.ilike(like, escape="\\")))
            counts = counts.where(or_(Turn.user_id.ilike(like, escape="\\"), Turn.user_id.in_(hit)))
        sub = counts.subquery()
        rows = s.execute(select(User, sub.c.n, sub.c.last).join(sub, sub.c.user_id == User.id)
                         .order_by(sub.c.last.desc()).limit(limit)).all()
        out = []
        for user, n, last in rows:
            text = s.execute(select(Turn.text_in).where(Turn.user_id == user.id)
                             .order_by(Turn.created_at.desc(), Turn.id.desc()).limit(1)).scalar() or ""
            out.append(ConversationRow(user.id, user.channel, user.language, int(n), utc(last), text,
                                       bool(user.handed_over)))
    return out


@dataclass
class TurnView:
    """One turn of a conversation as the owner reads it: what was said, shown, clicked and thumbed."""

    id: str
    at: datetime
    text_in: str
    text_out: str
    intent: str | None
    language: str | None
    latency_ms: float | None
    shown: list[tuple[int, str]]  # (rank, sku)
    feedback: list[tuple[str, str | None]]  # (kind, sku or None for the whole reply)


def conversation(read: Read, user_id: str, *, limit: int = 200) -> list[TurnView]:
    """The ``limit`` latest turns of ``user_id``, oldest first, with their impressions and the feedback tied
    to them (feedback on a product without a turn goes to the latest earlier turn that showed it)."""
    with read() as s:
        turns = list(reversed(s.execute(select(Turn).where(Turn.user_id == user_id)
                                        .order_by(Turn.created_at.desc(), Turn.id.desc()).limit(limit)).scalars().all()))
        ids = [t.id for t in turns]
        shown: dict[str, list[tuple[int, str]]] = defaultdict(list)
        fb: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for tid, rank, sku in s.execute(select(Impression.turn_id, Impression.rank, Impression.sku)
                                            .where(Impression.turn_id.in_(chunk))).all():
                shown[tid].append((int(rank), str(sku)))
        loose = s.execute(select(Feedback).where(Feedback.user_id == user_id)
                          .order_by(Feedback.created_at, Feedback.id)).scalars().all()
        for f in loose:
            owner: str | None = f.turn_id
            if owner is None and f.sku is not None:
                owner = next((t.id for t in reversed(turns) if utc(t.created_at) <= utc(f.created_at)
                              and any(sku == f.sku for _, sku in shown.get(t.id, []))), None)
            if owner is not None:
                fb[owner].append((f.kind, f.sku))
    return [TurnView(t.id, utc(t.created_at), t.text_in, t.text_out, t.intent, t.language, t.latency_ms,
                     sorted(shown.get(t.id, [])), fb.get(t.id, [])) for t in turns]


@dataclass(frozen=True)
class GapSearch:
    """A search that did not serve the shopper, for the demand-gap digest. ``kind`` is ``zero`` (nothing
    found), ``thumbs_down`` (a negative thumb on the search's reply or one of its products) or ``abandoned``."""

    kind: str
    query: str
    at: datetime
    user_id: str
    language: str | None


def gap_searches(read: Read, period: Period, *, settled_before: datetime, limit: int = 50_000) -> list[GapSearch]:
    """The searches of ``period`` that found nothing, got a thumbs-down, or were abandoned, oldest first;
    queries the owner marked handled are left out (compared casefolded).

    A search is *abandoned* when it showed products and, within its session, nothing followed: no feedback
    of any kind on the turn or on a product it showed, and no further turn of that shopper in the same
    session (opening a product's details is a turn, so it counts as following up). Only searches made
    before ``settled_before`` (now minus the session gap) count, since a newer one may still get its answer.
    A search is counted once, by the first of zero, thumbs-down, abandoned that applies."""
    cond = [*_turn_filter(period), Turn.intent.in_(SEARCH_INTENTS)]
    q = func.coalesce(Turn.query, Turn.text_in)
    shown = exists().where(Impression.turn_id == Turn.id)
    later = Turn.__table__.alias("later")
    with read() as s:
        handled = {str(x) for x in s.execute(select(HandledGap.query)).scalars()}
        rows: list[tuple[str, str, datetime, str, str | None]] = []
        rows += [("zero", *r) for r in s.execute(
            select(q, Turn.created_at, Turn.user_id, Turn.language).where(*cond, ~shown).limit(limit)).all()]
        negative = exists().where(Feedback.turn_id == Turn.id, Feedback.kind.in_(NEGATIVE_KINDS))
        rows += [("thumbs_down", *r) for r in s.execute(
            select(q, Turn.created_at, Turn.user_id, Turn.language).where(*cond, shown, negative).limit(limit)).all()]
        followed = exists().where(later.c.user_id == Turn.user_id, later.c.session_id == Turn.session_id,
                                  later.c.created_at > Turn.created_at)
        acted = exists().where(Feedback.user_id == Turn.user_id, or_(
            Feedback.turn_id == Turn.id,
            (Feedback.created_at >= Turn.created_at)
            & Feedback.sku.in_(select(Impression.sku).where(Impression.turn_id == Turn.id).scalar_subquery())))
        rows += [("abandoned", *r) for r in s.execute(
            select(q, Turn.created_at, Turn.user_id, Turn.language)
            .where(*cond, shown, ~negative, ~followed, ~acted, Turn.created_at < settled_before).limit(limit)).all()]
    out = [GapSearch(kind, " ".join(str(text).split()), utc(at), str(user), lang)
           for kind, text, at, user, lang in rows if text and text.strip()]
    out = [g for g in out if g.query.casefold() not in handled]
    return sorted(out, key=lambda g: (g.at, g.kind))


def handled_gap_queries(read: Read) -> set[str]:
    """Every query (casefolded) the owner marked handled."""
    with read() as s:
        return {str(x) for x in s.execute(select(HandledGap.query)).scalars()}


# ------------------------------------------------------------------------------ feedback export


def export_feedback(read: Read, path: str | Path, *, redact: bool = True) -> int:
    """Training rows for re-ranking and recommendation: one JSON line per turn that showed products
    or received feedback, oldest first; returns the number of lines.

    ``redact`` (the default, SHOPBOT_REDACT_PII): e-mail addresses, phone and card numbers and street
    addresses in what shoppers wrote and what was answered (text, query, slots, replies, rating comments,
    generation records) are replaced by tags (bot/observability/pii.py); an export leaves the shop for
    trainers and other teams, the console's conversation view does not.

    Feedback logged without a turn but with a product (a click from an old message) is attached to
    the user's latest earlier turn that showed that product, so no signal is dropped. The file is
    written next to ``path`` and renamed into place: a failed export never leaves half a file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    n = 0
    try:
        with read() as s, tmp.open("w", encoding="utf-8") as fh:
            orphans: dict[str, list[Feedback]] = defaultdict(list)
            for f in s.execute(select(Feedback).where(Feedback.turn_id.is_(None), Feedback.sku.is_not(None))
                               .order_by(Feedback.created_at, Feedback.id)).scalars():
                tid = s.execute(select(Impression.turn_id).where(
                    Impression.user_id == f.user_id, Impression.sku == f.sku, Impression.created_at <= f.created_at)
                    .order_by(Impression.created_at.desc(), Impression.rank).limit(1)).scalar()
                if tid is not None:
                    orphans[tid].append(f)
            cond = Turn.id.in_(select(Impression.turn_id)) | Turn.id.in_(
                select(Feedback.turn_id).where(Feedback.turn_id.is_not(None)))
            if orphans:
                cond = cond | Turn.id.in_(list(orphans))
            batch: list[Turn] = []
            for t in s.execute(select(Turn).where(cond).order_by(Turn.created_at, Turn.id)).scalars():
                batch.append(t)
                if len(batch) == 500:
                    n += _export_batch(s, batch, orphans, fh, redact)
                    batch = []
            if batch:
                n += _export_batch(s, batch, orphans, fh, redact)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _scrub(value: Any) -> Any:
    """Every string inside a JSON value with personal data redacted (keys, numbers and SKUs as they were)."""
    if isinstance(value, str):
        return redact_pii(value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    return value


_FREE_TEXT = ("text_in", "query", "slots", "reply", "ratings", "generation")


def _export_batch(s: Session, turns: Sequence[Turn], orphans: Mapping[str, list[Feedback]], fh: IO[str],
                  redact: bool = True) -> int:
    ids = [t.id for t in turns]
    shown: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in s.execute(select(Impression).where(Impression.turn_id.in_(ids))
                       .order_by(Impression.turn_id, Impression.rank, Impression.id)).scalars():
        shown[i.turn_id].append({"sku": i.sku, "rank": i.rank, "score": i.score})
    fb: dict[str, list[Feedback]] = defaultdict(list)
    for f in s.execute(select(Feedback).where(Feedback.turn_id.in_(ids))).scalars():
        fb[f.turn_id or ""].append(f)
    for t in turns:
        fbs = sorted([*fb.get(t.id, []), *orphans.get(t.id, [])], key=lambda f: (utc(f.created_at), f.id))
        rec = {
            "turn_id": t.id, "user_id": t.user_id, "session_id": t.session_id,
            "created_at": utc(t.created_at).isoformat(), "language": t.language,
            "text_in": t.text_in, "query": t.query, "intent": t.intent, "confidence": t.confidence,
            "slots": json.loads(t.slots or "{}"), "reply": t.text_out,
            "shown": shown.get(t.id, []),
            "clicks": [f.sku for f in fbs if f.kind == "click"],
            "thumbs": [{"sku": f.sku, "kind": f.kind} for f in fbs if f.kind in ("thumb_up", *NEGATIVE_KINDS)],
            "add_to_cart": [f.sku for f in fbs if f.kind == "add_to_cart"],
            "purchases": [f.sku for f in fbs if f.kind == "purchase"],
            "ratings": [{"sku": f.sku, "value": f.value, "comment": f.comment} for f in fbs if f.kind == "rating"],
            "model_versions": json.loads(t.model_versions or "{}"),
            "generation": json.loads(t.generation or "[]"),
        }
        if redact:
            rec.update({k: _scrub(rec[k]) for k in _FREE_TEXT})
        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return len(turns)


# ------------------------------------------------------------------------------- training reads


def search_log(read: Read, *, limit: int = 200_000) -> list[SearchLog]:
    """Every search turn that showed products, oldest first, with what was shown and what the shopper did
    about those products afterwards: the ranker's training data.

    A shopper's actions are attributed to the search that showed the product when they happen after it
    and before that shopper's next search: feedback tied to the turn, and also a product opened in
    detail, thumbs given on the details page, a cart or a purchase the shop reports later."""
    with read() as s:
        turns = s.execute(
            select(Turn.id, Turn.user_id, Turn.created_at, Turn.query, Turn.intent)
            .where(Turn.query.is_not(None), Turn.intent.in_((*SEARCH_INTENTS, "more")))
            .order_by(Turn.created_at.desc()).limit(limit)).all()
        ids = [t[0] for t in turns]
        shown: dict[str, list[tuple[str, int, float | None]]] = defaultdict(list)
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for tid, sku, rank, score in s.execute(
                    select(Impression.turn_id, Impression.sku, Impression.rank, Impression.score)
                    .where(Impression.turn_id.in_(chunk))).all():
                shown[tid].append((sku, int(rank), score))
        since = min((utc(t[2]) for t in turns), default=None)
        acts: list[tuple[str, datetime, str | None, str | None, str, float | None]] = []
        if since is not None:
            acts += [(u, utc(at), tid, sku, kind, value) for u, at, tid, sku, kind, value in s.execute(
                select(Feedback.user_id, Feedback.created_at, Feedback.turn_id, Feedback.sku, Feedback.kind,
                       Feedback.value).where(Feedback.created_at >= since)).all()]
            acts += [(u, utc(at), None, sku, "details", None) for u, at, sku in s.execute(
                select(Impression.user_id, Impression.created_at, Impression.sku)
                .join(Turn, Turn.id == Impression.turn_id)
                .where(Turn.intent == "details", Impression.created_at >= since)).all()]
    by_user: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for tid, user, at, _q, _i in turns:
        if shown.get(tid):
            by_user[user].append((tid, utc(at)))
    window: dict[str, tuple[str, datetime, datetime]] = {}  # turn -> (user, start, end)
    for user, seq in by_user.items():
        seq.sort(key=lambda x: x[1])
        for k, (tid, at) in enumerate(seq):
            end = seq[k + 1][1] if k + 1 < len(seq) else datetime.max.replace(tzinfo=UTC)
            window[tid] = (user, at, end)
    # Each shopper's actions in time order, so a search finds the ones in its window by bisection (a
    # shopper with thousands of searches and actions used to cost searches x actions), plus the
    # feedback tied to the turn itself whenever it came.
    user_acts: dict[str, list[tuple[datetime, int, str | None, str | None, str, float | None]]] = defaultdict(list)
    tied: dict[tuple[str, str], list[tuple[datetime, int, str | None, str | None, str, float | None]]] = defaultdict(list)
    for n, (u, at, ftid, fsku, kind, value) in enumerate(acts):
        user_acts[u].append((at, n, ftid, fsku, kind, value))
        if ftid is not None:
            tied[(u, ftid)].append((at, n, ftid, fsku, kind, value))
    times: dict[str, list[datetime]] = {}
    for u, mine in user_acts.items():
        mine.sort(key=lambda a: (a[0], a[1]))
        times[u] = [a[0] for a in mine]
    out = []
    for tid, user, at, q, intent in reversed(turns):
        if tid not in window:
            continue
        _, start, end = window[tid]
        skus = {x[0] for x in shown[tid]}
        got: list[tuple[str | None, str, float | None]] = []
        theirs = user_acts.get(user)
        if theirs:
            ts = times[user]
            found = [a for a in theirs[bisect_left(ts, start):bisect_left(ts, end)] if a[2] == tid or a[3] in skus]
            late = [a for a in tied.get((user, tid), ()) if a[0] < start or a[0] >= end]
            if late:
                found = sorted(found + late, key=lambda a: (a[0], a[1]))
            got = [(fsku, kind, value) for _at, _n, _tid, fsku, kind, value in found]
        out.append(SearchLog(tid, user, utc(at), str(q), intent or "", sorted(shown[tid], key=lambda x: x[1]), got))
    return out


def turn_log(read: Read, *, intents: Sequence[str] | None = None, rated_only: bool = False,
             limit: int = 200_000) -> list[TurnLog]:
    """Turns (oldest first) with the thumbs they received as a whole: the language model's and the intent
    classifier's training data. ``rated_only`` keeps turns that got at least one thumb either way."""
    with read() as s:
        q = select(Turn.id, Turn.user_id, Turn.created_at, Turn.language, Turn.text_in, Turn.text_out,
                   Turn.intent, Turn.confidence, Turn.generation, Turn.model_versions)
        if intents is not None:
            q = q.where(Turn.intent.in_(list(intents)))
        if rated_only:
            q = q.where(exists().where(Feedback.turn_id == Turn.id, Feedback.sku.is_(None)))
        rows = s.execute(q.order_by(Turn.created_at.desc()).limit(limit)).all()
        votes: dict[str, list[str]] = defaultdict(list)
        ids = [r[0] for r in rows]
        for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
            for vtid, kind in s.execute(select(Feedback.turn_id, Feedback.kind)
                                        .where(Feedback.turn_id.in_(chunk), Feedback.sku.is_(None))).all():
                votes[str(vtid)].append(kind)
    out = []
    for tid, user, at, lang, text_in, text_out, intent, conf, gen, versions in reversed(rows):
        v = votes.get(tid, [])
        out.append(TurnLog(tid, user, utc(at), lang, text_in, text_out, intent, conf,
                           json.loads(gen) if gen else [], json.loads(versions) if versions else {},
                           ups=sum(k == "thumb_up" for k in v), downs=sum(k in NEGATIVE_KINDS for k in v)))
    return out

"""Read-only reports over the log: the shop owner's stats, the feedback export (one JSON line per turn),
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
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from bot.store.records import NEGATIVE_KINDS, SearchLog, Stats, TurnLog
from bot.store.schema import Feedback, Handoff, Impression, Turn, User, utc

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


# ------------------------------------------------------------------------------ feedback export


def export_feedback(read: Read, path: str | Path) -> int:
    """Training rows for re-ranking and recommendation: one JSON line per turn that showed products
    or received feedback, oldest first; returns the number of lines.

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
                    n += _export_batch(s, batch, orphans, fh)
                    batch = []
            if batch:
                n += _export_batch(s, batch, orphans, fh)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _export_batch(s: Session, turns: Sequence[Turn], orphans: Mapping[str, list[Feedback]], fh: IO[str]) -> int:
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

"""Write operations: every write the store makes is first a list of plain, JSON-able *operations* (insert
this row, move that user's last-seen time forward, save this state as of then) with ids and timestamps
made client-side, and this module turns such a list into SQL on one connection. It is separate from the
:class:`~bot.store.database.Store` because two callers apply the same operations, a live write and a
replay of the outage buffer (:mod:`bot.store.outbox`), and both must give the same rows: inserts whose
primary key exists are skipped on replay, and users and states never move back in time, with
``INSERT ... ON CONFLICT`` on SQLite and PostgreSQL and a read-then-write path for other databases.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from bot.store.records import FEEDBACK_KINDS, ShownItem
from bot.store.schema import MODELS, STATES, USERS, Base, Handoff, User, clean, num, split_user, table, utc

Op = dict[str, Any]  # {"op": "insert" | "touch" | "ensure_user" | "state" | "handoff_flag" | "release", ...}

_DATETIME_KEYS = {"created_at", "last_seen_at", "updated_at", "handed_over_at", "released_at", "at"}
_STATEMENTS: dict[tuple[str, str], Any] = {}


# ---------------------------------------------------------------------------------- building


def feedback_op(fid: str, user_id: str, kind: str, at: datetime, *, turn_id: str | None = None,
                sku: str | None = None, value: float | None = None, comment: str | None = None) -> Op:
    """The insert of one feedback row, after checking its kind (and a rating's value)."""
    if kind not in FEEDBACK_KINDS:
        raise ValueError(f"Unknown feedback kind {kind!r}; use one of {', '.join(FEEDBACK_KINDS)}.")
    if kind == "rating" and num(value) is None:
        raise ValueError("A rating needs a numeric value.")
    return {"op": "insert", "table": "feedback", "row": {
        "id": fid, "user_id": user_id, "turn_id": turn_id, "sku": clean(sku, 200), "kind": kind,
        "value": num(value), "comment": clean(comment), "created_at": at}}


def impression_ops(turn_id: str, user_id: str, query: str | None, items: Sequence[ShownItem], at: datetime,
                   shown_by: str | None = None) -> list[Op]:
    ops: list[Op] = []
    for sku, rank, score in items:
        if int(rank) < 1:
            raise ValueError(f"Impression ranks start at 1; {sku!r} has rank {rank}.")
        ops.append({"op": "insert", "table": "impressions", "row": {
            "id": uuid.uuid4().hex, "turn_id": turn_id, "user_id": user_id, "query": query,
            "sku": clean(sku, 200) or "", "rank": int(rank), "score": num(score), "created_at": at,
            "model_version": clean(shown_by, 120)}})
    return ops


# ---------------------------------------------------------------------------------- applying


def _dialect_insert(conn: Connection) -> Callable[..., Any]:
    """INSERT with ``ON CONFLICT`` for the connection's database (SQLite or PostgreSQL)."""
    # imported here: only the dialect the store talks to is loaded
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _statement(conn: Connection, name: str) -> Any:
    """The upserts every turn runs, built once per database kind (building one costs more than running it);
    the values come as parameters."""
    key = (conn.dialect.name, name)
    stmt = _STATEMENTS.get(key)
    if stmt is not None:
        return stmt
    users, states = USERS, STATES
    new = _dialect_insert(conn)(users if name in ("touch", "ensure_user") else states)
    if name == "touch":  # never move a user back in time
        stmt = new.on_conflict_do_update(
            index_elements=[users.c.id],
            set_={"last_seen_at": new.excluded.last_seen_at, "session_id": new.excluded.session_id,
                  "language": func.coalesce(func.nullif(new.excluded.language, ""), users.c.language)},
            where=users.c.last_seen_at <= new.excluded.last_seen_at)
    elif name == "ensure_user":
        stmt = new.on_conflict_do_nothing(index_elements=[users.c.id])
    elif name == "state":  # never replace a newer state
        stmt = new.on_conflict_do_update(
            index_elements=[states.c.user_id],
            set_={"state": new.excluded.state, "updated_at": new.excluded.updated_at},
            where=states.c.updated_at <= new.excluded.updated_at)
    else:
        raise KeyError(name)
    _STATEMENTS[key] = stmt
    return stmt


def _decode(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (utc(datetime.fromisoformat(v)) if k in _DATETIME_KEYS and isinstance(v, str) else v) for k, v in row.items()}


def apply(conn: Connection, ops: Sequence[Op], *, replay: bool, upserts: bool) -> None:
    """Apply ``ops`` in order on ``conn`` (inside the caller's transaction).

    Core statements, not ORM objects: a turn is a handful of rows, and the unit of work cost more than
    the SQL. Consecutive inserts into one table go in as one executemany. Users and states are upserts
    that never move a row back in time (``ON CONFLICT ... WHERE``, SQLite and PostgreSQL); a replayed
    insert whose primary key is already there is skipped (``ON CONFLICT DO NOTHING``). ``upserts``: the
    database takes ``INSERT ... ON CONFLICT`` (otherwise a row is read, then inserted or updated).
    """
    i = 0
    while i < len(ops):
        op = ops[i]
        kind = op["op"]
        if kind == "insert":
            name = op["table"]
            rows = [_decode(op["row"])]
            i += 1
            while i < len(ops) and ops[i]["op"] == "insert" and ops[i]["table"] == name and ops[i]["row"].keys() == rows[0].keys():
                rows.append(_decode(ops[i]["row"]))
                i += 1
            _insert(conn, MODELS[name], rows, replay=replay, upserts=upserts)
            continue
        row = _decode(op["row"])
        i += 1
        if kind in ("touch", "ensure_user"):
            _apply_user(conn, kind, row, upserts=upserts)
        elif kind == "state":
            _apply_state(conn, row, upserts=upserts)
        elif kind == "handoff_flag":
            conn.execute(update(User).where(User.id == row["user_id"],
                                            or_(User.handed_over_at.is_(None), User.handed_over_at <= row["at"]))
                         .values(handed_over=True, handed_over_at=row["at"], handoff_reason=row["reason"]))
        elif kind == "release":
            # only what was handed over before the release: a later handoff replayed again stays open
            conn.execute(update(Handoff).where(Handoff.user_id == row["user_id"], Handoff.released_at.is_(None),
                                               Handoff.created_at <= row["at"])
                         .values(released_at=row["at"], released_by=row["by"]))
            conn.execute(update(User).where(User.id == row["user_id"],
                                            or_(User.handed_over_at.is_(None), User.handed_over_at <= row["at"]))
                         .values(handed_over=False))
        elif kind == "upsert":  # buffers written by the first version of this module
            with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
                s.merge(MODELS[op["table"]](**row))
                s.commit()
        elif kind == "upsert_user_flag":
            conn.execute(update(User).where(User.id == row["id"]).values(
                handed_over=row["handed_over"], handed_over_at=row["handed_over_at"], handoff_reason=row["handoff_reason"]))
        else:
            raise ValueError(f"Unknown buffered operation {kind!r}.")


def _insert(conn: Connection, model: type[Base], rows: list[dict[str, Any]], *, replay: bool, upserts: bool) -> None:
    tbl = table(model)
    if not replay:
        conn.execute(insert(tbl), rows)
        return
    if upserts:  # written before a crash cut the replay short: skip
        conn.execute(_dialect_insert(conn)(tbl).on_conflict_do_nothing(), rows)
        return
    key = next(iter(tbl.primary_key.columns))
    for row in rows:
        if conn.execute(select(key).where(key == row[key.name])).first() is None:
            conn.execute(insert(tbl), [row])


def _apply_user(conn: Connection, kind: str, row: dict[str, Any], *, upserts: bool) -> None:
    """``touch``: the user wrote at ``at`` (made if missing; never moved back in time); ``ensure_user``:
    made if missing."""
    users = USERS
    channel, external = split_user(row["id"])
    values = {"id": row["id"], "channel": row.get("channel") or channel,
              "external_id": row.get("external_id") or external, "language": row.get("language"),
              "created_at": row["at"], "last_seen_at": row["at"], "session_id": row["session_id"],
              "handed_over": False}
    if upserts:
        conn.execute(_statement(conn, kind), values)
        return
    seen = conn.execute(select(users.c.last_seen_at, users.c.language).where(users.c.id == row["id"])).first()
    if seen is None:
        conn.execute(insert(users).values(**values))
    elif kind == "touch" and utc(seen.last_seen_at) <= row["at"]:
        conn.execute(update(users).where(users.c.id == row["id"]).values(
            last_seen_at=row["at"], session_id=row["session_id"], language=row.get("language") or seen.language))


def _apply_state(conn: Connection, row: dict[str, Any], *, upserts: bool) -> None:
    """The user's state as of ``at``, unless a newer one is stored."""
    states = STATES
    if upserts:
        conn.execute(_statement(conn, "state"), {"user_id": row["user_id"], "state": row["state"], "updated_at": row["at"]})
        return
    at = conn.execute(select(states.c.updated_at).where(states.c.user_id == row["user_id"])).scalar()
    if at is None:
        conn.execute(insert(states).values(user_id=row["user_id"], state=row["state"], updated_at=row["at"]))
    elif utc(at) <= row["at"]:
        conn.execute(update(states).where(states.c.user_id == row["user_id"]).values(state=row["state"], updated_at=row["at"]))

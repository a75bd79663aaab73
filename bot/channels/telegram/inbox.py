"""Long polling that answers every update at least once, and a redelivered one once: the polling inbox.

python-telegram-bot's Updater confirms updates to Telegram (its next getUpdates asks for the ones after them)
as soon as it has fetched them, before any is answered, so a bot killed with updates in flight would never see
them again. :class:`PollingInbox` closes that gap with the SQL store (SQLite or PostgreSQL, no broker):

* **Kept before they are confirmed.** :meth:`keep` runs inside the bot's ``get_updates`` (see
  :class:`~bot.channels.telegram.bot.LeanBot`), in a thread, and writes the fetched batch to the
  ``update_inbox`` table before python-telegram-bot sees it; the confirming poll only comes after.
* **Answered, then recorded.** When an update's handlers have returned, :meth:`done` records it in
  ``handled_updates`` (the record the webhook workers keep) and in the inbox, whose row drops the update's body
  and keeps a digest of it, in one transaction.
* **Replayed on start.** :meth:`replay`, called before polling begins, puts every kept update that is not
  recorded as answered on the application's update queue, oldest first, so the normal handlers answer it with
  the same per-chat ordering as a fresh one.
* **Once.** An update Telegram sends again that was answered is skipped (the check is made for the whole batch
  in :meth:`keep`'s transaction: same id and same digest, so that an id Telegram reuses after a quiet week is
  not mistaken for it), and so is one this process already took (a replayed update that Telegram also sends
  again because the kill came before the confirming poll).

The window that remains: a kill after an update's last reply went out and before its record is committed (one
SQL transaction) answers it again after the restart. A database that cannot be reached never stops the bot:
updates are answered as before (at most once while it is away), the first failure is logged once, and
answered updates that could not be recorded are recorded with the next ones that can.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import Update

__all__ = ["REPLAY_WITHIN", "PollingInbox", "inbox_row"]

log = logging.getLogger(__name__)

# kept updates older than this are not answered after a restart (Telegram itself keeps an update for 24 hours)
REPLAY_WITHIN = timedelta(hours=24)
SEEN = 50_000  # update ids this process remembers having taken (a redelivery of one of them is skipped)
UNFINISHED = 50_000  # answered updates waiting for the database to record them
_METHODS = ("keep_updates", "unanswered_updates", "finish_updates")


def inbox_row(update: Update, channel: str = "telegram") -> tuple[int, str | None, str]:
    """What the inbox keeps of an update: its id, whose it is (a user id, for "forget me") and the update as JSON."""
    user = update.effective_user
    return (update.update_id, f"{channel}:{user.id}" if user is not None else None,
            json.dumps(update.to_dict(), ensure_ascii=False, default=str))


class PollingInbox:
    """The inbox of one polling bot over a store that has :data:`_METHODS` (:class:`bot.store.database.Store`)."""

    def __init__(self, store: Any, *, channel: str = "telegram", replay_within: timedelta = REPLAY_WITHIN,
                 enabled: bool = True) -> None:
        self.store = store
        self.channel = channel
        self.replay_within = replay_within
        self.enabled = enabled and all(callable(getattr(store, m, None)) for m in _METHODS)
        self.replayed = 0  # updates put back on the queue at start
        self.skipped = 0  # updates not handled because they were answered or taken already
        self._tracked: set[int] = set()  # kept or replayed, not answered yet: recorded when answered
        self._answered: set[int] = set()  # fetched again although recorded as answered
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._unfinished: list[int] = []
        self._answered_now: list[int] = []  # answered, waiting for the recording transaction in flight
        self._recording = False
        self._down = False

    # ------------------------------------------------------------------------------ fetching

    async def keep(self, updates: Sequence[Update]) -> None:
        """Write a fetched batch to the inbox (call it before python-telegram-bot gets the batch)."""
        if not self.enabled or not updates:
            return
        ids = [u.update_id for u in updates]
        try:
            rows = [inbox_row(u, self.channel) for u in updates]
            answered = await asyncio.to_thread(self.store.keep_updates, rows)
        except Exception as exc:  # never a reason not to answer
            self._failed("keep the updates just fetched", exc)
            answered = set()
        else:
            self._back()
        self._answered.update(answered)
        self._tracked.update(i for i in ids if i not in answered)

    def take(self, update_id: int) -> bool:
        """Whether to handle the update now: False for one answered already, or taken by this process before."""
        if update_id in self._answered:
            self._answered.discard(update_id)
            self.skipped += 1
            log.info("Update %s was answered before; not answering it again.", update_id)
            return False
        if update_id in self._seen:
            self.skipped += 1
            log.info("Update %s came again while it was being answered; not answering it twice.", update_id)
            return False
        self._seen[update_id] = None
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        return True

    # ------------------------------------------------------------------------------ answered

    async def done(self, update_id: int) -> None:
        """The update's handlers returned: record it as answered and drop it from the inbox.

        One recording transaction runs at a time; updates answered meanwhile are recorded together by the next
        one (a group commit: no waiting when the bot is idle, fewer SQLite write locks under load, where one
        transaction per update tripled the reply p99)."""
        if update_id not in self._tracked:
            return  # not fetched by polling (a webhook), or the inbox is off
        self._tracked.discard(update_id)
        self._answered_now.append(update_id)
        if self._recording:
            return  # the running recorder takes it with its next transaction
        self._recording = True
        try:
            while self._answered_now:
                ids = [*self._unfinished, *self._answered_now]
                self._answered_now = []
                try:
                    await asyncio.to_thread(self.store.finish_updates, ids)
                except Exception as exc:  # the answers are out; recorded with the next update
                    self._failed("record answered updates", exc)
                    self._unfinished = ids[-UNFINISHED:]
                    return
                self._unfinished = []
                self._back()
        finally:
            self._recording = False

    # ------------------------------------------------------------------------------ replaying

    async def replay(self, app: Any) -> int:
        """Put every kept, unanswered update on ``app.update_queue``, oldest first; returns how many.

        Call it before polling begins (the bot's ``post_init``): the replayed updates are then ahead of every
        fresh one, in each chat's order."""
        if not self.enabled:
            return 0
        since = datetime.now(UTC) - self.replay_within
        try:
            rows = await asyncio.to_thread(self.store.unanswered_updates, since)
        except Exception as exc:  # they stay kept for the next start
            self._failed("read the updates left unanswered", exc)
            return 0
        bad: list[int] = []
        for update_id, body in rows:
            try:
                update = Update.de_json(json.loads(body), app.bot)
            except Exception as exc:  # one unreadable row must not hold up the others
                log.error("A kept update %s cannot be read (%s); dropping it.", update_id, exc)
                bad.append(update_id)
                continue
            if update is None:
                bad.append(update_id)
                continue
            self._tracked.add(update_id)
            await app.update_queue.put(update)
        self._tracked.update(bad)
        for update_id in bad:
            await self.done(update_id)
        self.replayed += len(rows) - len(bad)
        if rows:
            log.warning("Answering %d update(s) fetched before the last stop and never answered.", len(rows) - len(bad))
        return len(rows) - len(bad)

    # ------------------------------------------------------------------------------ outages

    def _failed(self, what: str, exc: BaseException) -> None:
        if not self._down:
            log.warning("The polling inbox cannot %s (%s); updates are answered anyway, and one fetched now is "
                        "lost if the bot is killed before answering it.", what, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        self._down = True

    def _back(self) -> None:
        if self._down:
            log.warning("The polling inbox works again.")
        self._down = False

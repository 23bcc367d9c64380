"""Server-side conversation state for the REST chat endpoint.

``SessionStore`` maps a random session id to one conversation's state (whatever the dialogue
returns as ``turn.state``). It is thread-safe, forgets a session after ``ttl_seconds`` without
use, and holds at most ``max_sessions``.

Each session belongs to its owner (the signed-in user; ``None`` without sign-in). Another owner's
id behaves as an unknown one: it opens a new conversation and never reads or changes the first.
One owner holds at most ``max_per_owner`` sessions (beyond it, that owner's least recently used
one goes); when the whole store is full, the least recently used session of the owner holding the
most goes, so one user cannot push everyone else's conversations out.

The entries are kept in least-recently-used order (``OrderedDict`` s, one for the whole store and one
per owner), so expiry and eviction only look at the front: every operation is O(1) amortised, plus
one pass over the owners (signed-in users: a handful) when the whole store is full. Nothing is
stored but the state object; the store never logs it.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SESSION_ID_BYTES = 24  # secrets.token_urlsafe(24): 32 characters, 192 random bits


@dataclass(frozen=True, slots=True)
class Session:
    """One looked-up session: its id, its state (None for a new session) and whether it is new."""

    session_id: str
    state: Any
    is_new: bool


@dataclass(slots=True)
class _Entry:
    owner: str | None
    state: Any
    last_used: float


class SessionStore:
    """Thread-safe in-memory sessions with idle expiry, an owner per session and least-recently-used caps."""

    def __init__(self, max_sessions: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic, *,
                 max_per_owner: int | None = None) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions={max_sessions} is below the minimum of 1")
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds={ttl_seconds} must be above 0")
        self.max_sessions = int(max_sessions)
        self.max_per_owner = int(max_per_owner) if max_per_owner is not None else self.max_sessions
        self.ttl_seconds = float(ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()                 # all, least recently used first
        self._by_owner: dict[str | None, OrderedDict[str, None]] = {}          # the same ids, per owner
        self.evicted = 0   # sessions dropped because of a cap
        self.expired = 0   # sessions dropped because they were idle too long

    # ------------------------------------------------------------------ public API

    def open(self, session_id: str | None, owner: str | None = None) -> Session:
        """The live session ``session_id`` of ``owner``, or a new one (new id, state None) when it is
        unknown, expired, someone else's or not given. Opening a session counts as using it."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(session_id) if session_id is not None else None
            if session_id is not None and entry is not None and entry.owner == owner:
                self._touch(session_id, entry, now)
                return Session(session_id, entry.state, False)
            new_id = self._new_id()
            self._put(new_id, _Entry(owner, None, now))
            return Session(new_id, None, True)

    def save(self, session_id: str, state: Any, owner: str | None = None) -> None:
        """Store the new state of ``owner``'s session (re-creating it if it was dropped in the meantime).
        An id that belongs to someone else is left alone."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(session_id)
            if entry is None:
                self._put(session_id, _Entry(owner, state, now))
            elif entry.owner == owner:
                entry.state = state
                self._touch(session_id, entry, now)

    def get(self, session_id: str, owner: str | None = None) -> Any:
        """The state of ``owner``'s live session, or None (does not count as use)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(session_id)
            return entry.state if entry is not None and entry.owner == owner else None

    def discard(self, session_id: str) -> None:
        with self._lock:
            self._drop(session_id)

    def __contains__(self, session_id: object) -> bool:
        now = self._clock()
        with self._lock:
            self._expire(now)
            return session_id in self._entries

    def __len__(self) -> int:
        now = self._clock()
        with self._lock:
            self._expire(now)
            return len(self._entries)

    def owned_by(self, owner: str | None) -> int:
        with self._lock:
            return len(self._by_owner.get(owner, ()))

    # ------------------------------------------------------------------ internals (lock held)

    def _new_id(self) -> str:
        while True:
            candidate = secrets.token_urlsafe(SESSION_ID_BYTES)
            if candidate not in self._entries:
                return candidate

    def _touch(self, session_id: str, entry: _Entry, now: float) -> None:
        entry.last_used = now
        self._entries.move_to_end(session_id)
        self._by_owner[entry.owner].move_to_end(session_id)

    def _put(self, session_id: str, entry: _Entry) -> None:
        self._entries[session_id] = entry
        mine = self._by_owner.setdefault(entry.owner, OrderedDict())
        mine[session_id] = None
        while len(mine) > self.max_per_owner:
            self._drop(next(iter(mine)))
            self.evicted += 1
        while len(self._entries) > self.max_sessions:
            heaviest = max(self._by_owner.values(), key=len)
            self._drop(next(iter(heaviest)))
            self.evicted += 1

    def _drop(self, session_id: str) -> None:
        entry = self._entries.pop(session_id, None)
        if entry is None:
            return
        mine = self._by_owner[entry.owner]
        del mine[session_id]
        if not mine:
            del self._by_owner[entry.owner]

    def _expire(self, now: float) -> None:
        deadline = now - self.ttl_seconds
        while self._entries:
            oldest_id, oldest = next(iter(self._entries.items()))
            if oldest.last_used > deadline:
                break
            self._drop(oldest_id)
            self.expired += 1

"""Server-side conversation state for the REST chat endpoint.

``SessionStore`` maps a random session id to one conversation's state (whatever the dialogue
returns as ``turn.state``). It is thread-safe, forgets a session after ``ttl_seconds`` without
use, and holds at most ``max_sessions``: a new session evicts the least recently used one.

The entries are kept in least-recently-used order (an ``OrderedDict``), so both expiry and
eviction only ever look at the front: every operation is O(1) amortised, whatever the number
of sessions. Nothing is stored but the state object; the store never logs it.
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


class SessionStore:
    """Thread-safe in-memory sessions with idle expiry and a least-recently-used cap."""

    def __init__(self, max_sessions: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions={max_sessions} is below the minimum of 1")
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds={ttl_seconds} must be above 0")
        self.max_sessions = int(max_sessions)
        self.ttl_seconds = float(ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, float]] = OrderedDict()  # id -> (state, last used)
        self.evicted = 0   # sessions dropped because of the cap
        self.expired = 0   # sessions dropped because they were idle too long

    # ------------------------------------------------------------------ public API

    def open(self, session_id: str | None) -> Session:
        """The live session ``session_id``, or a new one (new id, state None) when it is unknown,
        expired or not given. Opening a session counts as using it."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            if session_id is not None:
                entry = self._entries.get(session_id)
                if entry is not None:
                    self._entries[session_id] = (entry[0], now)
                    self._entries.move_to_end(session_id)
                    return Session(session_id, entry[0], False)
            new_id = self._new_id()
            self._entries[new_id] = (None, now)
            self._evict()
            return Session(new_id, None, True)

    def save(self, session_id: str, state: Any) -> None:
        """Store the new state of a session (re-creating it if it was dropped in the meantime)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            self._entries[session_id] = (state, now)
            self._entries.move_to_end(session_id)
            self._evict()

    def get(self, session_id: str) -> Any:
        """The state of a live session, or None (does not count as use)."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._entries.get(session_id)
            return None if entry is None else entry[0]

    def discard(self, session_id: str) -> None:
        with self._lock:
            self._entries.pop(session_id, None)

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

    # ------------------------------------------------------------------ internals (lock held)

    def _new_id(self) -> str:
        while True:
            candidate = secrets.token_urlsafe(SESSION_ID_BYTES)
            if candidate not in self._entries:
                return candidate

    def _expire(self, now: float) -> None:
        deadline = now - self.ttl_seconds
        entries = self._entries
        while entries:
            oldest_id, (_, last_used) = next(iter(entries.items()))
            if last_used > deadline:
                break
            del entries[oldest_id]
            self.expired += 1

    def _evict(self) -> None:
        while len(self._entries) > self.max_sessions:
            self._entries.popitem(last=False)
            self.evicted += 1

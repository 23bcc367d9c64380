"""Per-client limits of the web app: failed sign-ins and open event streams.

Both are plain, thread-safe bookkeeping with an injectable clock; :mod:`assistant.adapters.web`
applies them to requests.

* :class:`SignInLimiter` counts failed sign-ins per user name and per client address inside a
  sliding window. Once either count reaches its limit, further sign-ins for that name (or from that
  address) are refused until the oldest failure leaves the window, whatever the password. The name
  is counted whether or not such a user exists, so the answers never tell who exists.
* :class:`StreamLimiter` counts open streams (Gradio's heartbeat) per client address.

Memory is bounded: at most :data:`MAX_TRACKED` keys are kept (the least recently failed go first).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

log = logging.getLogger(__name__)

MAX_TRACKED = 10_000
MAX_NAME_CHARS = 200


class SignInLimiter:
    """Failed sign-ins per user name and per client address within ``window_seconds``."""

    def __init__(self, *, per_user: int, per_address: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.window = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    @staticmethod
    def _keys(user: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("user", user[:MAX_NAME_CHARS]), ("address", address)

    def retry_after(self, user: str, address: str) -> int:
        """Seconds until a sign-in for ``user`` from ``address`` is heard again (0: now)."""
        now = self._clock()
        user_key, address_key = self._keys(user, address)
        with self._lock:
            wait = max(self._wait(user_key, self.per_user, now), self._wait(address_key, self.per_address, now))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, user: str, address: str) -> None:
        """Count one failed sign-in; log when it locks the name or the address."""
        now = self._clock()
        user_key, address_key = self._keys(user, address)
        with self._lock:
            for key, limit in ((user_key, self.per_user), (address_key, self.per_address)):
                times = self._recent(key, now)
                times.append(now)
                self._failures.move_to_end(key)
                if len(times) == limit:
                    who = "one user name" if key[0] == "user" else f"client {address}"
                    log.warning("sign-in: %d failed attempts for %s within %.0f s; further sign-ins refused for "
                                "%.0f s", limit, who, self.window, self.window)
            while len(self._failures) > MAX_TRACKED:
                self._failures.popitem(last=False)

    def succeeded(self, user: str) -> None:
        """A right password: the name's failures are forgotten (the address's stay)."""
        with self._lock:
            self._failures.pop(self._keys(user, "")[0], None)

    # ------------------------------------------------------------------ internals (lock held)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            times = self._failures[key] = deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return times[-limit] + self.window - now


class StreamLimiter:
    """Open streams per client address, at most ``per_client`` at a time."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._lock = threading.Lock()
        self._open: dict[str, int] = {}

    def acquire(self, address: str) -> bool:
        with self._lock:
            count = self._open.get(address, 0)
            if count >= self.per_client:
                return False
            self._open[address] = count + 1
            return True

    def release(self, address: str) -> None:
        with self._lock:
            count = self._open.get(address, 0) - 1
            if count > 0:
                self._open[address] = count
            else:
                self._open.pop(address, None)

    def open_streams(self, address: str) -> int:
        with self._lock:
            return self._open.get(address, 0)


__all__ = ["MAX_TRACKED", "SignInLimiter", "StreamLimiter"]

"""SessionStore: idle expiry (fake clock), least-recently-used cap, random ids, thread safety."""

from __future__ import annotations

import threading

import pytest

from assistant.adapters.sessions import SessionStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_new_session_has_random_id_and_no_state(clock):
    store = SessionStore(10, 60, clock=clock)
    a, b = store.open(None), store.open(None)
    assert a.is_new and b.is_new and a.state is None
    assert a.session_id != b.session_id
    assert len(a.session_id) >= 32 and a.session_id.replace("-", "").replace("_", "").isalnum()


def test_saved_state_comes_back_for_the_same_id(clock):
    store = SessionStore(10, 60, clock=clock)
    sid = store.open(None).session_id
    store.save(sid, {"age": 38})
    again = store.open(sid)
    assert not again.is_new and again.session_id == sid and again.state == {"age": 38}


def test_unknown_id_gives_a_new_session_with_a_different_id(clock):
    store = SessionStore(10, 60, clock=clock)
    session = store.open("made-up-id")
    assert session.is_new and session.session_id != "made-up-id" and session.state is None


def test_idle_session_expires_after_ttl(clock):
    store = SessionStore(10, 60, clock=clock)
    sid = store.open(None).session_id
    store.save(sid, "state")
    clock.advance(59.9)
    assert store.open(sid).state == "state"       # use resets the idle timer
    clock.advance(59.9)
    assert sid in store
    clock.advance(0.2)
    assert sid not in store
    again = store.open(sid)
    assert again.is_new and again.session_id != sid
    assert store.expired == 1


def test_expiry_only_drops_idle_sessions(clock):
    store = SessionStore(10, 60, clock=clock)
    old = store.open(None).session_id
    clock.advance(40)
    young = store.open(None).session_id
    clock.advance(30)                               # old idle 70 s, young idle 30 s
    assert old not in store and young in store
    assert len(store) == 1


def test_cap_evicts_least_recently_used(clock):
    store = SessionStore(3, 3600, clock=clock)
    ids = []
    for _ in range(3):
        ids.append(store.open(None).session_id)
        clock.advance(1)
    store.open(ids[0])                              # ids[0] is now the most recently used
    clock.advance(1)
    newest = store.open(None).session_id            # evicts ids[1], the least recently used
    assert len(store) == 3
    assert ids[1] not in store
    assert ids[0] in store and ids[2] in store and newest in store
    assert store.evicted == 1


def test_get_does_not_count_as_use(clock):
    store = SessionStore(2, 3600, clock=clock)
    a = store.open(None).session_id
    b = store.open(None).session_id
    store.get(a)
    store.open(None)                                # a is still the least recently used
    assert a not in store and b in store


def test_save_after_eviction_recreates_the_session(clock):
    store = SessionStore(1, 3600, clock=clock)
    a = store.open(None).session_id
    store.open(None)                                # evicts a
    store.save(a, "late answer")
    assert store.get(a) == "late answer" and len(store) == 1


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="max_sessions=0"):
        SessionStore(0, 60)
    with pytest.raises(ValueError, match="ttl_seconds=0"):
        SessionStore(1, 0)


def test_concurrent_use_keeps_the_cap_and_each_state(clock):
    store = SessionStore(500, 3600, clock=clock)
    results: dict[str, int] = {}
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(200):
            session = store.open(None)
            store.save(session.session_id, (n, i))
            with lock:
                results[session.session_id] = (n, i)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1600                     # every id unique
    assert len(store) == 500
    # at least 1,100 went (more when a session evicted between its open and its save came back)
    assert store.evicted >= 1100
    live = [sid for sid in results if sid in store]
    assert len(live) == 500
    assert all(store.get(sid) == results[sid] for sid in live)

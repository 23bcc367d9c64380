"""Unit level of the round-two protections (the real-server tests are tests/test_security_round2.py):
sign-in and stream limits, sessions per owner, the upload-folder rule, the file-text escape and the
model-file check."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.adapters.gradio_cache import FOLDER_PREFIX, GradioCache, remove_orphans
from assistant.adapters.guard import named_paths
from assistant.adapters.limits import SignInLimiter, StreamLimiter
from assistant.adapters.markup import escape_file_text
from assistant.adapters.sessions import SessionStore
from assistant.core.readable import MISSING, file_problem


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sign_ins_lock_a_name_then_an_address_and_unlock_after_the_window():
    clock = Clock()
    limiter = SignInLimiter(per_user=3, per_address=5, window_seconds=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("lena", "10.0.0.1") == 0
        limiter.failed("lena", "10.0.0.1")
    assert limiter.retry_after("lena", "10.0.0.2") == 60          # the name, from any address
    assert limiter.retry_after("mika", "10.0.0.1") == 0           # the address still has room
    limiter.failed("ghost", "10.0.0.1")
    limiter.failed("ghost", "10.0.0.1")
    assert limiter.retry_after("mika", "10.0.0.1") == 60          # 5 from one address: all names wait
    clock.now += 61
    assert limiter.retry_after("lena", "10.0.0.1") == 0
    limiter.failed("mika", "10.0.0.3")
    limiter.succeeded("mika")
    assert limiter.retry_after("mika", "10.0.0.3") == 0


def test_streams_are_counted_per_address():
    streams = StreamLimiter(2)
    assert streams.acquire("a") and streams.acquire("a") and not streams.acquire("a")
    assert streams.acquire("b")
    streams.release("a")
    assert streams.acquire("a") and streams.open_streams("a") == 2


def test_a_session_belongs_to_its_owner():
    store = SessionStore(10, 3600, clock=Clock())
    mine = store.open(None, "lena")
    store.save(mine.session_id, "lena's state", "lena")
    theirs = store.open(mine.session_id, "mika")
    assert theirs.is_new and theirs.session_id != mine.session_id
    store.save(mine.session_id, "overwritten?", "mika")
    assert store.get(mine.session_id, "lena") == "lena's state" and store.get(mine.session_id, "mika") is None


def test_one_owner_cannot_push_out_another():
    store = SessionStore(5, 3600, clock=Clock(), max_per_owner=3)
    kept = store.open(None, "mika").session_id
    for _ in range(20):
        store.open(None, "lena")
    assert store.owned_by("lena") == 3 and kept in store
    for owner in ("a", "b", "c"):
        store.open(None, owner)
    assert len(store) == 5 and kept in store                     # the heaviest owner's oldest went


def test_only_files_inside_the_upload_folder_are_held(tmp_path):
    cache = GradioCache((tmp_path / "cache").resolve())
    cache.root.mkdir()
    inside = cache.root / "abc" / "customers.csv"
    inside.parent.mkdir()
    inside.write_text("x")
    outside = tmp_path / "secret.csv"
    outside.write_text("x")
    (cache.root / "link.csv").symlink_to(outside)
    assert cache.holds(str(inside))
    for path in (str(outside), str(cache.root / ".." / "secret.csv"), str(cache.root / "link.csv"), str(cache.root),
                 "/dev/zero", "http://127.0.0.1/x.csv", "", "customers.csv", "a\0b"):
        assert not cache.holds(path), path


def test_every_named_path_is_found_however_deep():
    data = {"data": [{"path": "/a", "meta": {}}, [[{"x": {"path": "/b"}}]], {"path": 5}], "fn_index": 1}
    assert sorted(named_paths(data)) == ["", "/a", "/b"]
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    assert list(named_paths([deep, {"path": "/c"}])) == ["/c"]


def test_folders_of_gone_servers_are_removed(tmp_path):
    gone = tmp_path / f"{FOLDER_PREFIX}999999999"
    mine = tmp_path / f"{FOLDER_PREFIX}{os.getpid()}"
    other = tmp_path / "someone-else"
    for folder in (gone, mine, other):
        folder.mkdir()
    assert remove_orphans(tmp_path, FOLDER_PREFIX) == 1
    assert not gone.exists() and mine.exists() and other.exists()


@pytest.mark.parametrize("text, shown", [
    ('<img src="http://h/b.png">', '&lt;img src="http\\://h/b.png"&gt;'),
    ("[click](https://x.example)", "\\[click\\](https\\://x.example)"),
    ("www.x.example a@b.example `c`", "www\\.x.example a\\@b.example \\`c\\`"),
    ("missing column(s) for: total_spending", "missing column(s) for: total_spending"),
])
def test_file_text_is_shown_as_text(text, shown):
    assert escape_file_text(text) == shown


def test_model_file_problems_are_named_without_opening(tmp_path):
    regular = tmp_path / "card.json"
    regular.write_text("{}")
    folder = tmp_path / "folder"
    folder.mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "gone")
    assert file_problem(regular) is None
    assert file_problem(tmp_path / "nothing") == MISSING
    assert file_problem(folder) == "is a folder, not a file"
    assert file_problem(fifo) == "is not a regular file (it is a FIFO)"
    assert file_problem(broken).startswith("is a broken link (to ")
    assert file_problem(Path("/dev/null")) == "is not a regular file (it is a character device)"

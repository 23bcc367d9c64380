"""This server's own folder for Gradio's cache: private, one per process, cleaned on start and stop.

Gradio keeps uploads and copies of every file it serves (scored customer files included) in the
folder named by ``GRADIO_TEMP_DIR`` (default ``<temp>/gradio``), shared by every Gradio app on the
machine and readable by all. Here each server process uses its own sub-folder of it,
``segment-assistant-<pid>`` (mode 0700: only the owner reaches the files), which it

* creates before the UI is built (:meth:`GradioCache.prepare`, which points ``GRADIO_TEMP_DIR`` at
  it; Gradio reads the variable when it builds components and mounts the app),
* clears of what servers killed with SIGKILL left (folders whose process is gone) at start,
* deletes when it stops (:meth:`GradioCache.remove`).

Files older than :data:`CACHE_TTL_SECONDS` are deleted while the server runs by Gradio's own cache
cleaning (``Blocks.delete_cache``), set in :mod:`assistant.adapters.web`.

:meth:`GradioCache.holds` is the one rule for which paths a request may name: a file is accepted
only if its resolved path (symbolic links followed) lies inside this folder.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from assistant.core.files import process_alive

GRADIO_TEMP_ENV = "GRADIO_TEMP_DIR"
FOLDER_PREFIX = "segment-assistant-"
CACHE_TTL_SECONDS = 3600
CACHE_SWEEP_SECONDS = 600


def gradio_folder() -> Path:
    """Where Gradio keeps uploads and served files, by Gradio's own rule (resolved)."""
    return Path(os.environ.get(GRADIO_TEMP_ENV) or Path(tempfile.gettempdir()) / "gradio").resolve()


def remove_orphans(parent: Path, prefix: str) -> int:
    """Delete ``parent/<prefix><pid>`` folders whose process is gone; return how many."""
    removed = 0
    try:
        children = list(parent.iterdir())
    except OSError:
        return 0
    for child in children:
        pid = child.name[len(prefix):] if child.name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed


@dataclass(frozen=True)
class GradioCache:
    """The private cache folder of this process (``root`` is resolved)."""

    root: Path

    @classmethod
    @functools.cache
    def for_this_process(cls) -> GradioCache:
        """One per process: the folder under Gradio's configured cache location, read once, before
        :meth:`prepare` points the variable at the sub-folder."""
        return cls((gradio_folder() / f"{FOLDER_PREFIX}{os.getpid()}").resolve())

    @classmethod
    def in_use(cls) -> GradioCache:
        """The folder Gradio uses now: this process's own once :meth:`prepare` ran (the served app),
        Gradio's shared one for a UI launched on its own."""
        return cls(gradio_folder())

    def prepare(self) -> None:
        """Remove what killed servers left, create the folder (0700) and make Gradio use it."""
        remove_orphans(self.root.parent, FOLDER_PREFIX)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        os.environ[GRADIO_TEMP_ENV] = str(self.root)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def holds(self, path: str) -> bool:
        """Whether ``path`` names a file inside this folder (after resolving ``..`` and links)."""
        if not path or "\0" in path:
            return False
        try:
            resolved = Path(os.path.realpath(path))
        except (OSError, ValueError):
            return False
        return resolved != self.root and resolved.is_relative_to(self.root)


__all__ = ["CACHE_SWEEP_SECONDS", "CACHE_TTL_SECONDS", "GradioCache", "gradio_folder", "process_alive",
           "remove_orphans"]

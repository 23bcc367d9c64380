"""Why a file the program needs cannot be read, said in a few words before anything opens it.

``file_problem(path)`` looks at the path without opening it (opening a FIFO would block), so a
loader can refuse with one line naming the path and what is wrong: missing, a folder, a broken
link, a FIFO or other special file, or no permission to read it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MISSING = "is missing"

_SPECIAL_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"))


def _special_kind(mode: int) -> str:
    return next((name for test, name in _SPECIAL_KINDS if test(mode)), "a special file")


def file_problem(path: Path) -> str | None:
    """What keeps ``path`` from being read as a regular file (``"is a folder, not a file"``...), or None."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        try:
            info = path.stat()
        except FileNotFoundError:
            return f"is a broken link (to {os.readlink(path)}, which does not exist)"
        except OSError as exc:
            return f"cannot be read ({exc.strerror})"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(info.st_mode):
        return f"is not a regular file (it is {_special_kind(info.st_mode)})"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None


__all__ = ["MISSING", "file_problem"]

"""Text taken from a file (column names, cell values, file names), made inert inside a Markdown line.

A customer file is written by someone else: a column named ``<img src=//host/beacon>`` would make
the browser fetch from that host, ``[click](https://phish.example)`` would be a live link. In the
Batch tab's Markdown status such text is shown as the characters it is:

* ``<``, ``>`` and ``&`` become entities (no HTML element, no autolink in angle brackets);
* ``[``, ``]``, a backtick and a backslash are backslash-escaped (no link, image or code span);
* ``://``, ``www.`` and ``@`` are escaped so the renderer's autolinking finds no address or e-mail.

Everything else stays as it is, so a message reads the same in the app as on the command line.
"""

from __future__ import annotations

import re

_LINK_SYNTAX = re.compile(r"([\\`\[\]])")
_AUTOLINK = re.compile(r"(?i)(:)(?=//)|(?<=www)(\.)|(@)")


def escape_file_text(text: str) -> str:
    """``text`` (a message that may quote a file) for a Markdown view: never a link, image or element."""
    escaped = _LINK_SYNTAX.sub(r"\\\1", text)
    escaped = _AUTOLINK.sub(lambda m: "\\" + m.group(0), escaped)
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["escape_file_text"]

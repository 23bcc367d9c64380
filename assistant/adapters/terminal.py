"""The terminal chat (``segment-assistant chat``): an adapter over :mod:`assistant.conversation`.

Interactive mode prints the greeting, then one plain-text reply per line typed (the user's own
words quoted in a reply are shown exactly as typed, see :func:`literal`); ``--json`` mode
reads one message per stdin line and prints exactly one JSON object per line
(``{"reply", "profile", "complete", "result"}``, see :meth:`assistant.conversation.state.Turn.as_json`),
with no greeting. End of input ends the chat with exit code 0.

Lines are read as bytes and decoded leniently (invalid UTF-8 never stops the chat), and at most
``max_message_chars + 1`` characters of a line are kept, so a huge line costs bounded memory and
is refused politely by the dialogue.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import IO

from assistant.conversation.dialogue import Dialogue
from assistant.conversation.state import DialogueState
from assistant.conversation.texts import DEFAULT_MAX_MESSAGE_CHARS

_CHUNK = 1 << 16

# ---------------------------------------------------------------------------- markdown -> text

_ESCAPED = re.compile(r"\\([\\`*_\[\]{}()#+\-.!|~$>])")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\\\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])")
_CODE = re.compile(r"`([^`]*)`")
_HEADING = re.compile(r"^#{1,6}\s+")
_TABLE_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _inline(text: str) -> str:
    text = _CODE.sub(r"\1", text)
    text = _BOLD.sub(r"\2", text)
    text = _ITALIC.sub(r"\1", text)
    text = _ESCAPED.sub(r"\1", text)
    return html.unescape(text)


def _table(lines: list[str]) -> list[str]:
    rows = []
    for line in lines:
        if _TABLE_SEP.match(line.strip()):
            continue
        cells = _CELL_SPLIT.split(line.strip().strip("|"))
        rows.append([_inline(c.strip()) for c in cells])
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    sizes = [max(len(r[i]) for r in rows) for i in range(width)]
    out = []
    for r in rows:
        first = r[0].ljust(sizes[0])
        rest = [c.rjust(s) for c, s in zip(r[1:], sizes[1:], strict=True)]
        out.append("  ".join([first, *rest]).rstrip())
    return out


_LITERAL = frozenset("\\`*_[]{}()#+-.!|~$<>&")


def literal(text: str) -> str:
    """User text inside a reply, kept exactly as typed through :func:`markdown_to_text`: every
    character that Markdown (or an entity) could change becomes a numeric entity, which the
    final ``html.unescape`` turns back into itself."""
    return "".join(f"&#{ord(ch)};" if ch in _LITERAL else ch for ch in text)


def markdown_to_text(markdown: str) -> str:
    """A plain-text rendering of a reply: markup removed, tables aligned, entities decoded."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            out.extend(_table(block))
            continue
        line = _HEADING.sub("", line)
        if line.startswith("> "):
            line = "  " + line[2:]
        out.append(_inline(line.rstrip()))
        i += 1
    return "\n".join(out)


# ---------------------------------------------------------------------------- input


def _lines(stdin: IO, limit: int) -> Iterator[str]:
    """Lines without their newline, each cut to ``limit`` characters, decoded leniently."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:  # a text stream (tests, StringIO)
        while True:
            line = stdin.readline(limit + 1)
            if not line:
                return
            if not line.endswith("\n") and len(line) > limit:
                while (more := stdin.readline(_CHUNK)) and not more.endswith("\n"):
                    pass
            yield line.rstrip("\r\n")
        return
    byte_limit = 4 * limit + 4  # enough bytes for ``limit`` characters of UTF-8
    while True:
        raw = buffer.readline(byte_limit)
        if not raw:
            return
        if not raw.endswith(b"\n") and len(raw) >= byte_limit:
            while (more := buffer.readline(_CHUNK)) and not more.endswith(b"\n"):
                pass
        yield raw.decode("utf-8", "replace").rstrip("\r\n")[:limit]


def _write(stdout: IO, text: str) -> None:
    try:
        stdout.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stdout, "encoding", None) or "ascii"
        stdout.write(text.encode(encoding, "replace").decode(encoding, "replace"))
    stdout.flush()


# ---------------------------------------------------------------------------- the chat


def run_chat(service, *, json_mode: bool, stdin: IO, stdout: IO, dialogue: Dialogue | None = None,
             max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS) -> int:
    """Chat over ``stdin``/``stdout`` until end of input (or, interactively, a quit word)."""
    if dialogue is None:
        dialogue = Dialogue.create(service, max_message_chars=max_message_chars)
    limit = dialogue.max_message_chars + 1  # one more than allowed, so an over-long line is refused
    state = DialogueState()
    if json_mode:
        for line in _lines(stdin, limit):
            turn = dialogue.respond(state, line)
            state = turn.state
            _write(stdout, json.dumps(turn.as_json(), ensure_ascii=True) + "\n")
        return 0

    texts = dialogue.texts.terminal
    quit_words = set(texts.quit)
    interactive = bool(getattr(stdin, "isatty", lambda: False)())
    turn = dialogue.greet(state)
    state = turn.state
    _write(stdout, markdown_to_text(turn.reply) + "\n\n")
    if interactive:
        _write(stdout, texts.prompt)
    for line in _lines(stdin, limit):
        if " ".join(line.lower().split()).strip(".!") in quit_words:
            _write(stdout, texts.goodbye + "\n")
            return 0
        turn = dialogue.respond(state, line)
        state = turn.state
        _write(stdout, markdown_to_text(turn.render(literal)) + "\n\n")
        if interactive:
            _write(stdout, texts.prompt)
    return 0

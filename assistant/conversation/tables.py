"""Tables pasted into a chat message: a header line and data rows, read through the batch reader's header
matcher (:func:`assistant.core.headers.header_field`), so files and chat map headers one way."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable

from assistant.core.headers import header_field

Number = Callable[[str], "float | None"]

_MD_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")   # |---|:--:|
_WIDE_GAP = re.compile(r"\t|\s{2,}")
_TABLE_SEPARATORS = ("\t", "|", ";", ",", "  ")


def _cells(line: str, sep: str) -> list[str]:
    """One line of a pasted table split into cells (Markdown's outer pipes dropped; quotes honoured)."""
    line = line.strip()
    if sep == "|":
        line = line.removeprefix("|").removesuffix("|")
    if sep == "  ":
        return [c.strip() for c in _WIDE_GAP.split(line)]
    if sep in ",;":
        try:
            return [c.strip() for c in next(csv.reader([line], delimiter=sep, skipinitialspace=True))]
        except (csv.Error, StopIteration):
            return []
    return [c.strip() for c in line.split(sep)]


def _table_header(cells: list[str], number: Number) -> dict[int, str]:
    """Column -> field for a header line (the batch reader's header matcher), or {} when it is no header:
    at least two columns must name fields, and at least half of all its cells."""
    if len(cells) < 2 or any(not c or len(c) > 60 or number(c) is not None for c in cells):
        return {}
    ranked: dict[str, list[tuple[int, int]]] = {}
    for i, cell in enumerate(cells):
        hit = header_field(cell)
        if hit is not None:
            ranked.setdefault(hit[0], []).append((hit[1], i))
    columns: dict[int, str] = {}
    for name, hits in ranked.items():
        best = min(rank for rank, _ in hits)
        top = [i for rank, i in hits if rank == best]
        if len(top) == 1:    # two columns as specific as each other for one field: neither is taken
            columns[top[0]] = name
    return columns if len(columns) >= 2 and 2 * len(columns) >= len(cells) else {}


def read_table(text: str, number: Number) -> tuple[dict[str, str], int, str] | None:
    """A pasted table: a header line and data rows under it, cells separated by a comma, semicolon, tab,
    pipe (also a Markdown table) or two or more spaces. The header goes through the batch reader's header
    matcher (:func:`assistant.core.headers.header_field`): one implementation for files and chat.

    Returns (the cells of the one data row by field, the number of data rows, the text with the table
    blanked -- same length, so positions hold). Several data rows are several customers: none is read,
    their count is returned (the dialogue asks which one, or points to the Batch tab)."""
    if "\n" not in text:
        return None
    lines = text.split("\n")
    for i in range(len(lines) - 1):
        line = lines[i]
        for sep in _TABLE_SEPARATORS:
            if sep not in line.strip():
                continue
            header = _cells(line, sep)
            columns = _table_header(header, number)
            if not columns:
                continue
            rows: list[list[str]] = []
            last = i
            for j in range(i + 1, len(lines)):
                if _MD_RULE.match(lines[j]) and not rows:
                    last = j
                    continue
                cells = _cells(lines[j], sep) if lines[j].strip() else []
                if len(cells) != len(header) or all(number(cells[c]) is None
                                                    and not _DIGIT.search(cells[c]) for c in columns):
                    break
                rows.append(cells)
                last = j
            if not rows:
                continue
            blanked = "\n".join([*lines[:i], *(" " * len(x) for x in lines[i:last + 1]), *lines[last + 1:]])
            if len(rows) > 1:
                return {}, len(rows), blanked
            return {name: rows[0][c] for c, name in columns.items() if rows[0][c]}, 1, blanked
    return None


_DIGIT = re.compile(r"[0-9]")



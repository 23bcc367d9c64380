"""Inspect a customer file before reading it: format, encoding, delimiter, header row and which
column gives which field (the header matcher)."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from assistant.core.errors import DataFileError
from assistant.core.fields import (
    FIELD_NAMES,
)
from assistant.core.headers import HEADER_ALIASES as HEADER_ALIASES  # re-exported: the aliases live in core
from assistant.core.headers import header_field, norm_header, strip_units
from assistant.model.data import (
    REQUIRED_COLUMNS,
    detect_delimiter,
)

if TYPE_CHECKING:  # pragma: no cover
    pass


Progress = Callable[[int, float], None]
"""Called after each chunk with (rows read so far, fraction of the file done from 0 to 1)."""

ROW_COLUMN = "row"
ERROR_COLUMN = "error"
ADDED_COLUMNS = ("segment_key", "segment_name", "confidence", "confidence_margin", "warnings",
                 "response_probability", "response_model")
PROBABILITY_DECIMALS = 4
MARGIN_DECIMALS = 4
PARQUET_SUFFIXES = (".parquet", ".pq")
ID_NAMES = frozenset({"id", "customerid", "custid", "clientid", "customernumber", "customerno", "custno",
                      "clientnumber", "clientno", "customercode", "customerkey", "accountid", "accountnumber",
                      "accountno", "memberid", "membernumber", "userid"})


_SCAN_BLOCK = 16 << 20


_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


# The header matcher is shared with the chat parser (tables pasted into a message): one implementation.
_norm = norm_header
_strip_units = strip_units
_header_field = header_field


FileType = Literal["csv", "parquet"]
Layout = Literal["raw", "fields"]   # raw marketing columns, or the seven fields by name


@dataclass(frozen=True)
class FilePlan:
    """How to read one file: its type, text encoding and delimiter, and which columns feed the fields."""

    path: Path
    file_type: FileType
    layout: Layout
    columns: tuple[str, ...]             # every input column, in file order (names as in the header)
    sources: dict[str, int]              # fields layout: field -> column index; raw: raw column -> index
    keep: tuple[int, ...]                # input columns copied to the output (added columns replaced)
    id_column: int | None
    encoding: str = "utf-8"
    delimiter: str = ","
    size: int = 0
    header_line: int = 0                 # lines before the header: blank, title or comment lines (CSV)


def _match_columns(path: Path, names: list[str]) -> tuple[Layout, dict[str, int]]:
    normalised = [_norm(n) for n in names]
    # raw layout: every required marketing column present
    raw_index: dict[str, int] = {}
    for column in REQUIRED_COLUMNS:
        hits = [i for i, n in enumerate(normalised) if n == _norm(column)]
        if len(hits) > 1:
            raise DataFileError(f"{path.name}: column {column} appears {len(hits)} times (columns "
                                f"{', '.join(str(i + 1) for i in hits)})")
        if hits:
            raw_index[column] = hits[0]
    # fields layout: every field matched by name, label, synonym or header alias (units ignored)
    field_index: dict[str, list[tuple[int, int]]] = {}
    for i, name in enumerate(names):
        hit = _header_field(name)
        if hit is not None:
            field_index.setdefault(hit[0], []).append((hit[1], i))
    if all(f in field_index for f in FIELD_NAMES):
        chosen: dict[str, int] = {}
        for name, ranked in field_index.items():
            best = min(rank for rank, _ in ranked)
            top = [i for rank, i in ranked if rank == best]
            if len(top) > 1:     # a more specific header wins ("Store purchases" over a "Store" column)
                shown = " and ".join(repr(names[i]) for i in top)
                raise DataFileError(f"{path.name}: columns {shown} both give {name}; keep one of them")
            chosen[name] = top[0]
        return "fields", {f: chosen[f] for f in FIELD_NAMES}
    if len(raw_index) == len(REQUIRED_COLUMNS):
        return "raw", raw_index
    raw_only = set(REQUIRED_COLUMNS) - {"Income", "Recency"}
    if any(c in raw_index for c in raw_only):
        missing = [c for c in REQUIRED_COLUMNS if c not in raw_index]
        raise DataFileError(f"{path.name} is missing required column(s): {', '.join(missing)} "
                            f"(it looks like the raw marketing file)")
    missing = [f for f in FIELD_NAMES if f not in field_index]
    used = {i for hits in field_index.values() for _, i in hits}
    others = [repr(n) for i, n in enumerate(names) if i not in used]
    found = (f"; other columns: {', '.join(others[:12])}{' ...' if len(others) > 12 else ''}") if others else ""
    raise DataFileError(f"{path.name} is missing column(s) for: {', '.join(missing)} (a customer file needs the "
                        f"columns {', '.join(FIELD_NAMES)}, or the raw marketing columns{found})")


def _sniff(path: Path) -> tuple[FileType, int]:
    """('csv' | 'parquet', size) after refusing missing, empty, binary and spreadsheet files."""
    if path.is_dir():
        raise DataFileError(f"{path} is a folder; score a folder of partitions with --engine dask")
    if not path.is_file():
        raise DataFileError(f"{path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise DataFileError(f"{path.name} is empty")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1") or path.suffix.lower() in PARQUET_SUFFIXES:
        return "parquet", size
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise DataFileError(f"{path.name} looks like a spreadsheet (Excel) or zip file, not CSV: "
                            f"save it as CSV first")
    if head.startswith(_UTF16_BOMS):      # Excel's "Unicode Text" export: tab-separated UTF-16
        return "csv", size
    if b"\x00" in head:
        half = len(head) // 2
        if len(head) >= 8 and (head[1::2].count(0) > 0.9 * half or head[0::2].count(0) > 0.9 * half):
            raise DataFileError(f"{path.name} is not a text file we read: it looks like UTF-16 without a byte-order "
                                f"mark; save it as CSV UTF-8")
        raise DataFileError(f"{path.name} is not a text file (nor Parquet): it contains binary data")
    return "csv", size


def _detect_encoding(path: Path) -> str:
    """'utf-16' with its byte-order mark; 'utf-8' when the whole file is valid UTF-8, else 'cp1252' when it
    decodes as such, else 'latin-1'."""
    with open(path, "rb") as fh:
        if fh.read(2) in _UTF16_BOMS:
            return "utf-16"
    decoder = codecs.getincrementaldecoder("utf-8")()
    cp1252_ok = True
    utf8_ok = True
    with open(path, "rb") as fh:
        while block := fh.read(_SCAN_BLOCK):
            if utf8_ok and not block.isascii():
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8_ok = False
            if not utf8_ok:
                cp1252_ok = cp1252_ok and not any(b in block for b in _CP1252_UNDEFINED)
                if not cp1252_ok:
                    break
    if utf8_ok:
        try:
            decoder.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            pass
    return "cp1252" if cp1252_ok else "latin-1"


_HEADER_SEARCH = 20   # non-blank lines looked at for the header (titles or comments may come first)
MAX_COLUMNS = 1_000
"""The most columns a customer file may have: its header is checked before anything else is read, so a file
of a million columns is refused at once instead of holding the reader (and memory) for minutes."""
_QUOTED = re.compile(r'"[^"]*"')


def _leading_lines(path: Path, encoding: str) -> list[tuple[str, int]]:
    """The first non-blank lines with their 0-based line numbers."""
    out: list[tuple[str, int]] = []
    with open(path, encoding="utf-8-sig" if encoding == "utf-8" else encoding, newline="") as fh:
        for number, line in enumerate(fh):
            if line.strip():
                out.append((line.rstrip("\r\n"), number))
                if len(out) == _HEADER_SEARCH:
                    break
    if not out:
        raise DataFileError(f"{path.name} is empty")
    return out


def _check_width(path: Path, columns: int) -> None:
    if columns > MAX_COLUMNS:
        raise DataFileError(f"{path.name} has {columns:,} columns, above the limit of {MAX_COLUMNS:,}: keep the "
                            f"customer columns (and an ID) and score it again")


def _count_columns(line: str, delimiter: str) -> int:
    """The header's columns, counted without splitting it (delimiters inside quotes do not count)."""
    return (_QUOTED.sub("", line) if '"' in line else line).count(delimiter) + 1


def _read_header(path: Path, line: str) -> tuple[str, list[str], Layout, dict[str, int]]:
    try:
        delimiter = detect_delimiter(line)
    except DataFileError as exc:
        raise DataFileError(f"{path.name}: {exc}") from None
    _check_width(path, _count_columns(line, delimiter))     # before a wide header is split into cells
    names = [n.strip() for n in next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))]
    names = [n if n else f"column_{i + 1}" for i, n in enumerate(names)]
    layout, sources = _match_columns(path, names)
    return delimiter, names, layout, sources


def _find_header(path: Path, encoding: str) -> tuple[int, str, list[str], Layout, dict[str, int]]:
    """The header: the first non-blank line, or else the first of the next lines whose columns match
    (a title or ``# comment`` line above the header is skipped). Errors describe the first line."""
    lines = _leading_lines(path, encoding)
    first_error: DataFileError | None = None
    for line, number in lines:
        try:
            return (number, *_read_header(path, line))
        except DataFileError as exc:
            if first_error is None:
                first_error = exc
            if line.count('"') % 2:    # an open quoted cell may span lines: stop here
                break
    raise first_error  # type: ignore[misc]


def inspect_file(path: str | Path) -> FilePlan:
    """Check a customer file's type, encoding, delimiter and header; DataFileError when unreadable."""
    path = Path(path)
    file_type, size = _sniff(path)
    if file_type == "parquet":
        try:
            schema = pq.ParquetFile(path).schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise DataFileError(f"{path.name} is not a readable Parquet file ({exc})") from None
        _check_width(path, len(schema.names))
        names = [str(n) for n in schema.names]
        encoding, delimiter, header_line = "utf-8", ",", 0
        layout, sources = _match_columns(path, names)
    else:
        encoding = _detect_encoding(path)
        header_line, delimiter, names, layout, sources = _find_header(path, encoding)
    replaced = {i for i, n in enumerate(names) if n in ADDED_COLUMNS}
    keep = tuple(i for i in range(len(names)) if i not in replaced)
    ids = [i for i in keep if _norm(names[i]) in ID_NAMES]
    return FilePlan(path=path, file_type=file_type, layout=layout, columns=tuple(names), sources=sources,
                    keep=keep, id_column=ids[0] if ids else None, encoding=encoding, delimiter=delimiter, size=size,
                    header_line=header_line)


# ============================================================================ reading


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ";": "semicolon", ",": "comma"}.get(delimiter, repr(delimiter))


# ============================================================================ collection year

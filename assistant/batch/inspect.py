"""Inspect a customer file before reading it: format, encoding, delimiter, header row and which
column gives which field (the header matcher)."""

from __future__ import annotations

import codecs
import csv
import functools
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
    FIELDS,
)
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
ADDED_COLUMNS = ("segment_key", "segment_name", "confidence", "confidence_margin")
MARGIN_DECIMALS = 4
PARQUET_SUFFIXES = (".parquet", ".pq")
ID_NAMES = frozenset({"id", "customerid", "custid", "clientid", "customernumber", "customerno", "custno",
                      "clientnumber", "clientno", "customercode", "customerkey", "accountid", "accountnumber",
                      "accountno", "memberid", "membernumber", "userid"})


_SCAN_BLOCK = 16 << 20


_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _norm(name: str) -> str:
    """Lower case without spaces or punctuation: ``Customer_ID`` and ``customer id`` -> ``customerid``."""
    return re.sub(r"[\W_]+", "", str(name).strip().lower())


# Units and counts that headers add to a field's name and that do not change its meaning: "Age (years)",
# "Income ($)", "Income in USD", "Recency [days]", "# Web purchases", "Number of store purchases",
# "NumWebPurchases". A unit that would change the numbers ("Income (k$)", "Income (EUR)") is not here,
# so such a column is not taken for the field.
_UNITS = frozenset({"$", "usd", "us$", "dollars", "dollar", "years", "year", "yrs", "yr", "y", "days", "day", "d",
                    "count", "number", "no", "nr", "n", "#", "qty", "permonth", "amonth", "month", "monthly", "mo",
                    "peryear", "ayear", "yearly", "annual", "annually", "pa", "last2years", "2years", "24months",
                    "lastmonth", "total", "amount", "value"})
_UNIT_GROUP = re.compile(r"\s*(?:[\(\[\{]([^\)\]\}]*)[\)\]\}]|,\s*([^,]*)|\s+in\s+(\S+)|[\s_]+([^\s_]+))\s*$")
_COUNT_PREFIX = re.compile(r"^\s*(?:#|no\.?\s+of|nr\.?\s+of|number\s+of|num\.?\s+of|count\s+of|total\s+number\s+of|"
                           r"(?-i:Num(?=[A-Z]))|num[_\s]+|#\s*of)\s*_?", re.IGNORECASE)
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    # Headers seen in customer files beyond the fields' names, labels and synonyms (header matching only:
    # the free-text parser does not use these). The raw marketing file's own names come first.
    "age": ("customer age", "age of customer"),
    "income": ("Income", "gross income", "customer income", "income per annum"),
    "total_spending": ("total amount spent", "amount spent total", "total spendings", "total sales", "spend total",
                       "total purchases amount", "spent total", "total spent amount"),
    "web_purchases": ("NumWebPurchases", "web orders", "online orders", "website orders", "web purchases count",
                      "internet purchases", "ecommerce purchases", "e-commerce purchases"),
    "store_purchases": ("NumStorePurchases", "store orders", "in-store orders", "instore purchases",
                        "shop orders", "retail purchases", "offline purchases", "in-store visits purchases"),
    "web_visits_per_month": ("NumWebVisitsMonth", "web visits month", "web visits/month", "website visits per month",
                             "site visits per month", "monthly web visits", "monthly website visits",
                             "monthly visits", "visits/month", "visits month", "web visits per mo"),
    "recency_days": ("Recency", "days since last order", "days since last purchased", "days since purchase",
                     "days since last buy", "last purchase days ago", "days since last transaction",
                     "recency days", "days since last shop"),
}


def _strip_units(header: str) -> str:
    """``Age (years)`` -> ``Age``; ``Income in USD`` -> ``Income``; ``# Web purchases`` -> ``Web purchases``."""
    text = str(header).replace("\u00a0", " ").replace("\ufeff", "").strip()
    while True:
        match = _UNIT_GROUP.search(text)
        if not match or match.start() == 0:
            break
        unit = next(g for g in match.groups() if g is not None)
        if _norm(unit) not in _UNITS and unit.strip() not in _UNITS:
            break
        text = text[:match.start()].rstrip()
    stripped = _COUNT_PREFIX.sub("", text, count=1)
    return stripped if stripped.strip() else text


@functools.cache
def _header_keys() -> dict[str, tuple[str, int]]:
    """Normalised header -> (field name, rank): rank 0 for a field's name or label, 1 for a phrase (several
    words), 2 for a single generic word such as ``store`` or ``web``. Keys shared by two fields are dropped."""
    seen: dict[str, dict[str, int]] = {}
    for spec in FIELDS:
        texts = [(spec.name, 0), (spec.label, 0)]
        texts += [(t, 1 if re.search(r"[\s\-]", t.strip()) else 2) for t in spec.synonyms]
        texts += [(t, 1) for t in HEADER_ALIASES.get(spec.name, ())]
        for text, rank in texts:
            key = _norm(text)
            if key:
                ranks = seen.setdefault(key, {})
                ranks[spec.name] = min(rank, ranks.get(spec.name, rank))
    keys = {key: next(iter(f.items())) for key, f in seen.items() if len(f) == 1}
    for spec in FIELDS:  # a field's own name always wins
        keys[_norm(spec.name)] = (spec.name, 0)
    return keys


def _header_field(name: str) -> tuple[str, int] | None:
    """The field a header names (and how specifically), or None."""
    keys = _header_keys()
    for candidate in dict.fromkeys((_norm(name), _norm(_strip_units(name)))):
        for key in (candidate, candidate[:-1] if candidate.endswith("s") else None):
            if key and key in keys:
                return keys[key]
    return None


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

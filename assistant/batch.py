"""Batch scoring of customer files (CSV or Parquet), streamed chunk by chunk with bounded memory.

Input formats (detected from the header, see :func:`inspect_file`):

* **raw**: the marketing file's columns (``Year_Birth``, ``Income``, ``Dt_Customer``, ``Mnt*``,
  ``Num*``, ``Recency``...). The seven fields are derived with :func:`assistant.data.derive_fields`,
  the same function training uses. ``age`` is computed against the **year of the latest
  Dt_Customer in the file being scored** (pass ``collection_year=`` to override). That is the
  honest choice: it is when that file's spending and recency were measured, and it is how the
  training file was prepared; the model card's year (2014) only describes the training file.
  A row whose own Dt_Customer does not parse is still scored (the date is not a model input).
* **fields**: one column per field. Headers match case-insensitively, ignoring spaces and
  punctuation, by field name, label, synonym or :data:`HEADER_ALIASES` (``Age``, ``Total Spending``,
  ``online purchases``, ``Recency``, ``NumWebPurchases``...), and ignoring units that do not change
  the numbers (``Age (years)``, ``Income ($)``, ``Income in USD``, ``# Web purchases``); ``Income (k$)``
  is not taken. A synonym shared by two fields matches neither; when two columns give one field the
  more specific header wins (``Store purchases`` over ``Store``), else the file is refused.

CSV files may be tab, semicolon or comma separated (detected from the header line, as in
:mod:`assistant.data`) and UTF-8 (with or without BOM), Windows-1252 or Latin-1. The header is the
first non-blank line, or the first of the next lines whose columns match (title and ``#`` comment
lines above it are skipped); rows whose every cell is empty (``;;;;``) count as blank lines. Parquet files are
recognised by their suffix or magic bytes.

Every row is validated with :meth:`FieldSpec.check` semantics, vectorised: a missing value, text
that is not a number, a non-finite number, a value out of range or a fraction in a whole-number
field makes the row fail. Numbers written as text (``" 38 "``, ``"1,200"``, ``71 000``, ``$71,000``
in a $ field) are accepted; text that could be misread is refused with its rule (see
:meth:`FieldSpec.number_from_text`: a decimal comma, ``71.000`` when 71 and 71,000 both fit the
field, another currency, a percentage). The check for ``71.000`` in columns that cast cleanly is a
few numpy comparisons (values between 1 and max/1000 whose text is exactly ``a.bcd`` long), so
the common path gets no regex. In raw
files each spending column must also be >= 0. Rows that fail go to the errors file with their
row number and every problem (``age=250 is above the maximum of 110; income is missing``); the
other rows are scored; the summary counts rows read, scored and failed.

**Row numbers** are 1-based data rows: the header is not counted and blank lines are skipped, so
in a file without blank lines or multi-line cells row N is line N + 1.

Output: the input's columns (CSV columns are copied verbatim as text; Parquet columns keep their
types), then ``segment_key``, ``segment_name``, ``confidence`` (clear/borderline) and
``confidence_margin`` (rounded to 4 decimals). Columns of those names already in the input are
replaced. When the input has no ID column a ``row`` column (the row number) comes first, so every
output row can be tied back to its input row. A CSV output uses the input's delimiter (comma for
Parquet input). The errors file is always CSV (``row``, ``error``, then the input's columns) and
is written only when some row failed; a stale one from an earlier run at the same path is removed.

Formula injection: in CSV outputs, text cells (and header names) that begin with ``=``, ``+``,
``-``, ``@``, tab or carriage return are prefixed with a single quote, unless the cell is a plain
number such as ``-5`` or ``+1,200`` (Excel reads those as numbers; anything else after such a
sign, like ``-1+2``, would be a formula). Typed numeric columns are never touched. Parquet outputs
are not rewritten.

Writes are atomic: output and errors file go to temporary files in the destination folder and
are renamed into place at the very end, so a failed or interrupted run leaves any previous output
intact. Reading is streamed (pyarrow's CSV reader, or Parquet row batches) and scoring uses
``service.score_array`` (one matrix product per chunk). Odd CSV files (rows with a wrong number
of values, quoted line breaks) fall back to Python's csv module, which also reports each ragged
row in the errors file.
"""

from __future__ import annotations

import codecs
import csv
import functools
import glob
import io
import os
import re
import string
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.data import DATE_FORMATS, FIELD_SOURCES, REQUIRED_COLUMNS, derive_fields, detect_date_format, detect_delimiter
from assistant.errors import AssistantError, DataFileError, InvalidValueError
from assistant.fields import (AMBIGUOUS_DOT, AMBIGUOUS_DOT_RULE, COMMA_NUMBER, DOT_GROUPS, FIELD_NAMES, FIELDS,
                              FIELDS_BY_NAME, GROUP_MARKS, GROUPED_OTHER, GROUPED_THOUSANDS, MISPLACED_COMMA_RULE,
                              MONEY_LEAD, MONEY_TRAIL, OTHER_CURRENCY, PERCENT, FieldSpec)
from assistant.knowledge import default_knowledge_dir, validate_yaml

if TYPE_CHECKING:  # pragma: no cover
    from assistant.segmentation import SegmentationService

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
_RISKY = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^\s*[+-]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_SCAN_BLOCK = 16 << 20
_WRITE_BATCH = 65_536  # rows the CSV writer formats at a time (its default of 1,024 costs ~10% more)
_MAX_BLOCK = 1 << 20   # CSV bytes parsed at a time: with bigger blocks pyarrow's peak memory grows with the
#                        file's length (measured: +300 MB at 6 MB blocks on 10M rows) and nothing gets faster
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

# parse status of a cell
_OK, _MISSING, _NOT_NUMBER, _NOT_FINITE, _BAD_COMMA, _AMBIGUOUS, _CURRENCY, _PERCENT = 0, 1, 2, 3, 4, 5, 6, 7


# ============================================================================ texts (knowledge/batch.yaml)


def _placeholders(template: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


class _Texts(BaseModel):
    """Checks that each template uses only the placeholders the code fills in."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _allowed: ClassVar[dict[str, set[str]]] = {}

    @model_validator(mode="after")
    def _check_placeholders(self) -> "_Texts":
        for name in type(self).model_fields:
            value = getattr(self, name)
            if not isinstance(value, str):
                continue
            extra = _placeholders(value) - self._allowed.get(name, set())
            if extra:
                raise ValueError(f"{name} uses unknown placeholder(s) {sorted(extra)}; "
                                 f"allowed: {sorted(self._allowed.get(name, set()))}")
        return self


class CliTexts(_Texts):
    progress: str = Field(min_length=1)
    partition_progress: str = Field(min_length=1)
    scored: str = Field(min_length=1)
    segment_header: str = Field(min_length=1)
    segment_line: str = Field(min_length=1)
    averages_line: str = Field(min_length=1)
    average_item: str = Field(min_length=1)
    errors: str = Field(min_length=1)
    no_errors: str = Field(min_length=1)
    partitions: str = Field(min_length=1)

    _allowed: ClassVar[dict[str, set[str]]] = {
        "progress": {"input", "rows", "percent"},
        "partition_progress": {"input", "done", "total"},
        "scored": {"rows_scored", "rows_read", "seconds", "duration", "output"},
        "segment_line": {"name", "key", "count", "share"},
        "averages_line": {"averages"},
        "average_item": {"label", "label_lower", "value"},
        "errors": {"rows_failed", "errors_path"},
        "partitions": {"partitions", "output"},
    }


class UiTexts(_Texts):
    tab: str = Field(min_length=1)
    intro: str = Field(min_length=1)
    upload_label: str = Field(min_length=1)
    button: str = Field(min_length=1)
    progress: str = Field(min_length=1)
    no_file: str = Field(min_length=1)
    too_large: str = Field(min_length=1)
    failed: str = Field(min_length=1)
    done: str = Field(min_length=1)
    errors: str = Field(min_length=1)
    no_errors: str = Field(min_length=1)
    scored_label: str = Field(min_length=1)
    errors_label: str = Field(min_length=1)
    table_segment: str = Field(min_length=1)
    table_customers: str = Field(min_length=1)
    table_share: str = Field(min_length=1)
    chart_title: str = Field(min_length=1)
    chart_x: str = Field(min_length=1)
    chart_y: str = Field(min_length=1)

    _allowed: ClassVar[dict[str, set[str]]] = {
        "progress": {"rows"},
        "too_large": {"size_mb", "limit_mb"},
        "failed": {"error"},
        "done": {"rows_scored", "rows_read", "seconds", "duration"},
        "errors": {"rows_failed"},
    }


class BatchTexts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    cli: CliTexts
    ui: UiTexts


def load_batch_texts(knowledge_dir: str | Path | None = None) -> BatchTexts:
    """Load and validate ``knowledge/batch.yaml`` (KnowledgeBaseError naming file and field)."""
    directory = Path(knowledge_dir) if knowledge_dir is not None else default_knowledge_dir()
    return validate_yaml(directory / "batch.yaml", BatchTexts)


# ============================================================================ summary


class SegmentTotals(BaseModel):
    """One segment's share of a scored file."""

    segment_key: str
    segment_name: str
    count: int
    share: float = Field(description="count / rows scored (0 when nothing was scored)")
    averages: dict[str, float | None] = Field(description="mean of each field over the segment's scored rows")


class BatchSummary(BaseModel):
    """What a batch run did. ``rows_read == rows_scored + rows_failed``."""

    input_path: str
    output_path: str
    errors_path: str | None = Field(description="the errors file, or None when every row was scored")
    input_format: Literal["raw", "fields"]
    file_type: Literal["csv", "parquet"]
    output_format: Literal["csv", "parquet"]
    collection_year: int | None = Field(description="year ages were computed against (raw files only)")
    rows_read: int
    rows_scored: int
    rows_failed: int
    segments: list[SegmentTotals]
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        return {s.segment_key: s.count for s in self.segments}

    @property
    def averages(self) -> dict[str, dict[str, float | None]]:
        return {s.segment_key: dict(s.averages) for s in self.segments}


def _totals(service: "SegmentationService", counts: np.ndarray, sums: np.ndarray) -> list[SegmentTotals]:
    scored = int(counts.sum())
    out = []
    order = {key: i for i, key in enumerate(service.cluster_keys)}
    for key in service.knowledge.segments:
        if key not in order:
            continue
        i = order[key]
        n = int(counts[i])
        averages = {name: (float(sums[i, j] / n) if n else None) for j, name in enumerate(FIELD_NAMES)}
        out.append(SegmentTotals(segment_key=key, segment_name=service.segment_name(key), count=n,
                                 share=n / scored if scored else 0.0, averages=averages))
    return out


def combine_summaries(service: "SegmentationService", parts: list[BatchSummary], *, input_path: str,
                      output_path: str, errors_path: str | None, seconds: float) -> BatchSummary:
    """One summary for several scored partitions (counts added, averages weighted by count)."""
    if not parts:
        raise DataFileError(f"{input_path}: no partitions to combine")
    k = len(service.cluster_keys)
    counts, sums = np.zeros(k), np.zeros((k, len(FIELD_NAMES)))
    index = {key: i for i, key in enumerate(service.cluster_keys)}
    for part in parts:
        for seg in part.segments:
            i = index[seg.segment_key]
            counts[i] += seg.count
            for j, name in enumerate(FIELD_NAMES):
                if seg.count:
                    sums[i, j] += (seg.averages[name] or 0.0) * seg.count
    years = {p.collection_year for p in parts if p.collection_year is not None}
    formats = {p.input_format for p in parts}
    return BatchSummary(
        input_path=input_path, output_path=output_path,
        errors_path=errors_path if any(p.errors_path for p in parts) else None,
        input_format=formats.pop() if len(formats) == 1 else "fields",
        file_type=parts[0].file_type, output_format=parts[0].output_format,
        collection_year=max(years) if years else None,
        rows_read=sum(p.rows_read for p in parts), rows_scored=sum(p.rows_scored for p in parts),
        rows_failed=sum(p.rows_failed for p in parts), segments=_totals(service, counts, sums), seconds=seconds)


# ============================================================================ inspecting a file


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


@dataclass(frozen=True)
class FilePlan:
    """How to read one file: its type, text encoding and delimiter, and which columns feed the fields."""

    path: Path
    file_type: Literal["csv", "parquet"]
    layout: Literal["raw", "fields"]
    columns: tuple[str, ...]             # every input column, in file order (names as in the header)
    sources: dict[str, int]              # fields layout: field -> column index; raw: raw column -> index
    keep: tuple[int, ...]                # input columns copied to the output (added columns replaced)
    id_column: int | None
    encoding: str = "utf-8"
    delimiter: str = ","
    size: int = 0
    header_line: int = 0                 # lines before the header: blank, title or comment lines (CSV)


def _match_columns(path: Path, names: list[str]) -> tuple[Literal["raw", "fields"], dict[str, int]]:
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
        for name, hits in field_index.items():
            best = min(rank for rank, _ in hits)
            top = [i for rank, i in hits if rank == best]
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


def _sniff(path: Path) -> tuple[str, int]:
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
        if len(head) >= 8 and (head[1::2].count(0) > 0.9 * (len(head) // 2) or head[0::2].count(0) > 0.9 * (len(head) // 2)):
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


def _read_header(path: Path, line: str) -> tuple[str, list[str], str, dict[str, int]]:
    try:
        delimiter = detect_delimiter(line)
    except DataFileError as exc:
        raise DataFileError(f"{path.name}: {exc}") from None
    names = [n.strip() for n in next(csv.reader([line], delimiter=delimiter, skipinitialspace=True))]
    names = [n if n else f"column_{i + 1}" for i, n in enumerate(names)]
    layout, sources = _match_columns(path, names)
    return delimiter, names, layout, sources


def _find_header(path: Path, encoding: str) -> tuple[int, str, list[str], str, dict[str, int]]:
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


class _NeedsFallback(Exception):
    """pyarrow's fast CSV reader met something it cannot stream (ragged rows, quoted line breaks)."""


@dataclass
class _Chunk:
    batch: pa.RecordBatch            # all input columns (well-formed rows only)
    rows: np.ndarray                 # 1-based row number of each batch row
    rejects: list[tuple[int, str, list[str]]]   # ragged rows: (row, reason, values)
    fraction: float                  # share of the file done after this chunk


def _arrow_csv_chunks(plan: FilePlan, chunksize: int, include: list[int] | None = None) -> Iterator[_Chunk]:
    per_row = max(8, plan.size // max(1, _estimate_rows(plan)))
    block_size = int(min(_MAX_BLOCK, max(64 << 10, chunksize * per_row)))
    names = [f"c{i}" for i in range(len(plan.columns))]     # positional names (headers may repeat)
    wanted = names if include is None else [names[i] for i in include]
    read_options = pacsv.ReadOptions(column_names=names, skip_rows=plan.header_line + 1, block_size=block_size,
                                     encoding="utf8" if plan.encoding == "utf-8" else plan.encoding)
    parse_options = pacsv.ParseOptions(delimiter=plan.delimiter, invalid_row_handler=lambda row: "error")
    convert_options = pacsv.ConvertOptions(column_types={n: pa.string() for n in wanted}, include_columns=wanted,
                                           strings_can_be_null=True, null_values=[""], quoted_strings_can_be_null=False)
    stream = pa.OSFile(str(plan.path))
    try:
        try:
            reader = pacsv.open_csv(stream, read_options=read_options, parse_options=parse_options,
                                    convert_options=convert_options)
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                return
            raise _NeedsFallback(str(exc)) from None
        done = 0
        blocks = 0
        previous = 0.0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
                raise _NeedsFallback(str(exc)) from None
            # one batch per block of ``block_size`` bytes (cut at a line end); the stream's own position runs
            # ahead of the batches handed out (pyarrow reads ahead), so it cannot tell how far the work is
            blocks += 1
            fraction = min(1.0, blocks * block_size / plan.size) if plan.size else 1.0
            batch = _drop_empty_rows(batch)
            for start in range(0, batch.num_rows, chunksize):    # blocks are sized in bytes: cut to chunksize
                part = batch.slice(start, chunksize)
                rows = np.arange(done + 1, done + part.num_rows + 1, dtype=np.int64)
                done += part.num_rows
                share = (start + part.num_rows) / batch.num_rows
                yield _Chunk(part, rows, [], previous + (fraction - previous) * share)
            previous = fraction
    finally:
        stream.close()


def _drop_empty_rows(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Rows whose every cell is empty (``;;;;;;``, as spreadsheets write below the data) are blank lines:
    not data, not counted. Costs nothing unless every column has an empty cell."""
    if batch.num_rows == 0 or any(column.null_count == 0 for column in batch.columns):
        return batch
    empty = np.logical_and.reduce([column.is_null().to_numpy(zero_copy_only=False) for column in batch.columns])
    return batch.filter(pa.array(~empty)) if empty.any() else batch


def _estimate_rows(plan: FilePlan) -> int:
    with open(plan.path, "rb") as fh:
        head = fh.read(1 << 16)
    lines = head.count(b"\n")
    if lines <= 1 or len(head) < (1 << 16):
        return max(1, lines)
    return max(1, int(plan.size * lines / len(head)))


def _python_csv_chunks(plan: FilePlan, chunksize: int, include: list[int] | None = None) -> Iterator[_Chunk]:
    """Python's csv module: slower, but handles ragged rows and quoted line breaks with exact row numbers."""
    n_columns = len(plan.columns)
    wanted = list(range(n_columns)) if include is None else include
    encoding = "utf-8-sig" if plan.encoding == "utf-8" else plan.encoding
    raw = open(plan.path, "rb")
    text = None
    try:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="")
        reader = csv.reader(text, delimiter=plan.delimiter)   # cells as pyarrow's reader gives them
        header_seen = False
        number = 0
        columns: list[list[str | None]] = [[] for _ in wanted]
        rows: list[int] = []
        rejects: list[tuple[int, str, list[str]]] = []

        def flush() -> _Chunk:
            arrays = [pa.array(col, type=pa.string()) for col in columns]
            batch = pa.RecordBatch.from_arrays(arrays, names=[f"c{i}" for i in wanted])
            return _Chunk(batch, np.asarray(rows, dtype=np.int64), list(rejects),
                          min(1.0, raw.tell() / plan.size) if plan.size else 1.0)

        try:
            for record in reader:
                if not header_seen:
                    if reader.line_num > plan.header_line and any(cell.strip() for cell in record):
                        header_seen = True         # (blank, title and comment lines before it skipped)
                    continue
                if not any(record) or (len(record) == 1 and not record[0].strip()):
                    continue                       # blank line, or a row of empty cells (Excel's ";;;;")
                number += 1
                if len(record) != n_columns:
                    rejects.append((number, f"has {len(record)} value(s), expected {n_columns} "
                                            f"(is the delimiter {_delimiter_name(plan.delimiter)} right?)", record))
                else:
                    for col, i in zip(columns, wanted):
                        value = record[i]
                        col.append(value if value != "" else None)
                    rows.append(number)
                if len(rows) + len(rejects) >= chunksize:
                    yield flush()
                    columns = [[] for _ in wanted]
                    rows, rejects = [], []
        except csv.Error as exc:
            raise DataFileError(f"{plan.path.name}: line {reader.line_num} cannot be read ({exc})") from None
        if rows or rejects:
            yield flush()
    finally:
        if text is not None:
            text.detach()
        raw.close()


def _parquet_chunks(plan: FilePlan, chunksize: int, include: list[int] | None = None) -> Iterator[_Chunk]:
    try:
        pf = pq.ParquetFile(plan.path)
        total = pf.metadata.num_rows
        names = None if include is None else [plan.columns[i] for i in include]
        done = 0
        for batch in pf.iter_batches(batch_size=chunksize, columns=names, use_pandas_metadata=False):
            if batch.num_rows == 0:
                continue
            rows = np.arange(done + 1, done + batch.num_rows + 1, dtype=np.int64)
            done += batch.num_rows
            yield _Chunk(batch, rows, [], done / total if total else 1.0)
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(f"{plan.path.name} is not a readable Parquet file ({exc})") from None


def _chunks(plan: FilePlan, engine: str, chunksize: int, include: list[int] | None = None) -> Iterator[_Chunk]:
    if plan.file_type == "parquet":
        return _parquet_chunks(plan, chunksize, include)
    if engine == "arrow":
        return _arrow_csv_chunks(plan, chunksize, include)
    return _python_csv_chunks(plan, chunksize, include)


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ";": "semicolon", ",": "comma"}.get(delimiter, repr(delimiter))


# ============================================================================ collection year


_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|2[01]\d\d)(?!\d)")


def _year_from_dates(values: list[str]) -> int | None:
    """The latest year among date strings: the format that parses them all (assistant.data's rule),
    or else the one that parses most of them (a few broken dates do not block the file)."""
    cleaned = pd.Series(sorted({v.strip() for v in values if v and v.strip()}), dtype=object)
    if cleaned.empty:
        return None
    try:
        fmt = detect_date_format(cleaned)
    except DataFileError:
        counts = {f: int(pd.to_datetime(cleaned, format=f, errors="coerce").notna().sum()) for f in DATE_FORMATS}
        fmt = max(DATE_FORMATS, key=lambda f: counts[f])
        if counts[fmt] == 0:            # another format ("2012-09-04 00:00:00", "04-Sep-2012"): only the year
            years = [int(y[0]) for y in (_FOUR_DIGIT_YEAR.findall(v) for v in cleaned) if len(y) == 1]
            return max(years) if years else None
    latest = pd.to_datetime(cleaned, format=fmt, errors="coerce").max()
    return None if pd.isna(latest) else int(latest.year)


def file_collection_year(plan: FilePlan, *, chunksize: int = 1_000_000) -> int | None:
    """The year of the latest Dt_Customer in a raw file (None for a fields file)."""
    if plan.layout != "raw":
        return None
    column = plan.sources["Dt_Customer"]
    for engine in ("arrow", "python"):
        try:
            dates: set[str] = set()
            latest_typed: int | None = None
            for chunk in _chunks(plan, engine, chunksize, include=[column]):
                arr = chunk.batch.column(0)
                if pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type):
                    top = pc.max(arr).as_py()
                    if top is not None:
                        latest_typed = max(latest_typed or top.year, top.year)
                    continue
                arr = arr if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) else pc.cast(arr, pa.string())
                dates.update(v for v in pc.unique(arr).to_pylist() if v is not None)
            break
        except _NeedsFallback:
            continue
    if latest_typed is not None:
        return latest_typed
    year = _year_from_dates(list(dates))
    if year is None:
        raise DataFileError(f"{plan.path.name}: Dt_Customer has no dates in a known format (dd-mm-yyyy, "
                            f"dd/mm/yyyy, yyyy-mm-dd, or any date with a 4-digit year), so ages cannot be computed")
    return year


# ============================================================================ validating and scoring a chunk


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (
        hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))


def _float_or_nan(text: str | None) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


@dataclass(frozen=True)
class _TextRule:
    """How text in one column is read as numbers (see FieldSpec.number_from_text, which this mirrors)."""

    money: bool            # a $ sign is allowed
    low: float             # ``a.bcd`` is ambiguous when its thousands reading (a,bcd) lies in [low, high]
    high: float
    unit: str

    @classmethod
    def of(cls, spec: FieldSpec) -> "_TextRule":
        return cls(spec.money, spec.minimum, spec.maximum, spec.unit)


_YEAR_RULE = _TextRule(False, 1000, 9999, "years")


def _raw_rule(column: str) -> _TextRule:
    """The rule for a raw marketing column: that of the field it feeds (Year_Birth: a year)."""
    if column == "Year_Birth":
        return _YEAR_RULE
    field = next(name for name, sources in FIELD_SOURCES.items() if column in sources)
    return _TextRule.of(FIELDS_BY_NAME[field])


def _matches(arr: pa.Array, pattern: re.Pattern) -> np.ndarray:
    flags = "(?i)" if pattern.flags & re.IGNORECASE else ""
    return pc.fill_null(pc.match_substring_regex(arr, flags + pattern.pattern), False).to_numpy(zero_copy_only=False)


def _ambiguous_dots(arr: pa.Array, values: np.ndarray, rule: _TextRule) -> np.ndarray | None:
    """Positions of cells written ``a.bcd`` (``71.000``) whose thousands reading is in range, or None.
    Vectorised prefilter first (value between 1 and high/1000, text exactly as long as ``a.bcd``) so
    the common column costs a few numpy comparisons and no regex."""
    if rule.high < 1000:
        return None
    with np.errstate(invalid="ignore"):
        near = np.flatnonzero((values >= max(1.0, rule.low / 1000)) & (values <= rule.high / 1000))
    if near.size == 0:
        return None
    lengths = pc.binary_length(arr).to_numpy(zero_copy_only=False)
    v = values[near]
    digits = 1 + (v >= 10) + (v >= 100)
    near = near[(lengths[near] == digits + 4) | (lengths[near] == digits + 5)]    # "71.000" or "+71.000"
    if near.size == 0:
        return None
    hit = _matches(arr.take(pa.array(near)), AMBIGUOUS_DOT)
    return near[hit] if hit.any() else None


def _parse_numbers(arr: pa.Array, rule: _TextRule) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(values, status, clean): float64 values (NaN when not usable), a status per cell (None when
    every cell is a finite number: the common case costs one cast), and whether every non-missing
    cell is a plain number (then no cell of the column needs neutralising)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    n = len(arr)
    t = arr.type
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
    if not numeric and not _is_text(t):
        arr = pc.cast(arr, pa.string())
    clean = True
    try:
        values = pc.cast(arr, pa.float64(), safe=not numeric).to_numpy(zero_copy_only=False)
        ambiguous = None if numeric else _ambiguous_dots(arr, values, rule)
        if not arr.null_count and ambiguous is None and np.isfinite(values).all():
            return values, None, True
        missing = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
        status = np.zeros(n, dtype=np.int8)
        if ambiguous is not None:
            status[ambiguous] = _AMBIGUOUS
            values = values.copy()             # (a zero-copy view of the arrow buffer is read-only)
            values[ambiguous] = np.nan
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        clean = False
        text = pc.utf8_trim_whitespace(arr)
        if rule.money:
            text = pc.replace_substring_regex(text, "(?i)" + MONEY_LEAD.pattern, r"\1\2", max_replacements=1)
            text = pc.replace_substring_regex(text, "(?i)" + MONEY_TRAIL.pattern, r"\1", max_replacements=1)
        status = np.zeros(n, dtype=np.int8)
        status[_matches(text, OTHER_CURRENCY)] = _CURRENCY
        status[(status == _OK) & _matches(text, PERCENT)] = _PERCENT
        grouped = _matches(text, GROUPED_OTHER)
        if grouped.any():
            text = pc.if_else(pa.array(grouped), pc.replace_substring_regex(text, GROUP_MARKS.pattern, ""), text)
        dotted = _matches(text, DOT_GROUPS)
        if dotted.any():
            text = pc.if_else(pa.array(dotted), pc.replace_substring(text, ".", ""), text)
        misplaced = _matches(text, COMMA_NUMBER) & ~_matches(text, GROUPED_THOUSANDS)
        status[(status == _OK) & misplaced] = _BAD_COMMA
        text = pc.replace_substring(text, ",", "")
        empty = pc.fill_null(pc.equal(text, ""), True).to_numpy(zero_copy_only=False)
        text = pc.if_else(pa.array(empty | (status != _OK)), pa.scalar(None, pa.string()), text)
        missing = empty
        try:
            values = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = np.fromiter((_float_or_nan(v) for v in text.to_pylist()), dtype=np.float64, count=n)
            unparsed = np.isnan(values) & ~missing
            if unparsed.any():
                lowered = pc.utf8_lower(text).to_numpy(zero_copy_only=False)
                literal_nan = np.isin(lowered, ["nan", "+nan", "-nan"])
                status[unparsed & ~literal_nan & (status == _OK)] = _NOT_NUMBER
        ambiguous = _ambiguous_dots(text, values, rule)
        if ambiguous is not None:
            status[ambiguous] = _AMBIGUOUS
            values = values.copy()
            values[ambiguous] = np.nan
    if missing is not None:
        status[missing & (status == _OK)] = _MISSING
    status[(status == _OK) & ~np.isfinite(values)] = _NOT_FINITE
    return values, status, clean


def _usable(status: np.ndarray | None) -> np.ndarray | None:
    return None if status is None else status == _OK


@dataclass
class _Problem:
    mask: np.ndarray                       # rows (of the chunk) with this problem
    message: Callable[[int], str]          # row position -> message


def _source_problems(label: str, arr: pa.Array, values: np.ndarray, status: np.ndarray | None,
                     rule: _TextRule) -> list[_Problem]:
    out: list[_Problem] = []
    if status is None:
        return out
    for code, text in ((_AMBIGUOUS, AMBIGUOUS_DOT_RULE),
                       (_CURRENCY, f"is in another currency ({label} is in $)" if rule.money else "is not a number"),
                       (_PERCENT, f"is a percentage ({label} is in {rule.unit})")):
        if (status == code).any():
            out.append(_Problem(status == code, functools.partial(_cell_message, label, arr, text)))
    if (status == _MISSING).any():
        out.append(_Problem(status == _MISSING, lambda i: f"{label} is missing"))
    if (status == _NOT_NUMBER).any():
        out.append(_Problem(status == _NOT_NUMBER,
                            lambda i: str(InvalidValueError(label, arr[i].as_py(), "is not a number"))))
    if (status == _BAD_COMMA).any():
        out.append(_Problem(status == _BAD_COMMA,
                            lambda i: str(InvalidValueError(label, arr[i].as_py(), MISPLACED_COMMA_RULE))))
    if (status == _NOT_FINITE).any():
        out.append(_Problem(status == _NOT_FINITE,
                            lambda i: str(InvalidValueError(label, float(values[i]), "is not a finite number"))))
    return out


def _cell_message(label: str, arr: pa.Array, rule: str, i: int) -> str:
    return str(InvalidValueError(label, arr[i].as_py(), rule))


def _range_problem(spec, values: np.ndarray, usable: np.ndarray | None) -> _Problem | None:
    """Values that FieldSpec.check refuses (below/above the range, fraction in a whole-number field).
    ``usable``: rows whose value parsed (None: all of them)."""
    with np.errstate(invalid="ignore"):
        bad = (values < spec.minimum) | (values > spec.maximum)
        if spec.integer:
            bad |= values != np.floor(values)
    if usable is not None:
        bad &= usable
    if not bad.any():
        return None

    def message(i: int) -> str:
        try:
            spec.check(float(values[i]))
        except InvalidValueError as exc:
            return str(exc)
        return f"{spec.name}={values[i]!r} is invalid"  # pragma: no cover - the mask mirrors check()

    return _Problem(bad, message)


def _age_message(message: Callable[[int], str], year: int, births: np.ndarray, i: int) -> str:
    return f"{message(i)} (age = {year} - Year_Birth={_num_text(births[i])})"


def _num_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _negative_part(column: str, values: np.ndarray, i: int) -> str:
    return str(InvalidValueError(column, float(values[i]), "is below the minimum of 0"))


@dataclass
class _Validated:
    X: np.ndarray          # (n, 7) field values in FIELD_NAMES order
    good: np.ndarray       # rows that can be scored
    messages: dict[int, str]   # row position -> "problem; problem"
    clean_columns: set[int]    # batch columns whose every cell is a plain number


def _validate(plan: FilePlan, batch: pa.RecordBatch, collection_year: int | None) -> _Validated:
    n = batch.num_rows
    problems: list[_Problem] = []
    clean_columns: set[int] = set()
    X = np.empty((n, len(FIELD_NAMES)), dtype=np.float64)
    if plan.layout == "fields":
        for j, spec in enumerate(FIELDS):
            index = plan.sources[spec.name]
            arr = batch.column(index)
            values, status, clean = _parse_numbers(arr, _TextRule.of(spec))
            if clean:
                clean_columns.add(index)
            problems += _source_problems(spec.name, arr, values, status, _TextRule.of(spec))
            X[:, j] = values
            problem = _range_problem(spec, values, _usable(status))
            if problem:
                problems.append(problem)
    else:
        parsed: dict[str, np.ndarray] = {}
        usable_source: dict[str, np.ndarray] = {}
        source_problems: dict[str, list[_Problem]] = {}
        for column, index in plan.sources.items():
            if column == "Dt_Customer":
                continue
            arr = batch.column(index)
            values, status, clean = _parse_numbers(arr, _raw_rule(column))
            if clean:
                clean_columns.add(index)
            parsed[column] = values
            usable_source[column] = np.ones(len(values), dtype=bool) if status is None else status == _OK
            source_problems[column] = _source_problems(column, arr, values, status, _raw_rule(column))
        derived = derive_fields(parsed.__getitem__, int(collection_year or 0))
        for j, spec in enumerate(FIELDS):
            sources = FIELD_SOURCES[spec.name]
            usable = np.logical_and.reduce([usable_source[c] for c in sources])
            for column in sources:
                problems += source_problems[column]
                if len(sources) > 1:      # parts of a sum (spending): none may be negative
                    negative = usable_source[column] & (parsed[column] < 0)
                    if negative.any():
                        problems.append(_Problem(negative, functools.partial(_negative_part, column, parsed[column])))
                    usable &= ~negative
            values = np.asarray(derived[spec.name], dtype=np.float64)
            X[:, j] = values
            problem = _range_problem(spec, values, usable)
            if problem and spec.name == "age":     # name the value in the file, not only the age
                problem = _Problem(problem.mask, functools.partial(
                    _age_message, problem.message, int(collection_year or 0), parsed["Year_Birth"]))
            if problem:
                problems.append(problem)
    good = np.ones(n, dtype=bool)
    for problem in problems:
        good &= ~problem.mask
    good &= np.isfinite(X).all(axis=1)    # guards scoring; every non-finite value has a problem above
    messages: dict[int, list[str]] = {}
    if not good.all():
        for problem in problems:           # problems are in field order, so messages are too
            for i in np.flatnonzero(problem.mask):
                messages.setdefault(int(i), []).append(problem.message(int(i)))
        for i in np.flatnonzero(~good):    # never drop a row without saying why
            messages.setdefault(int(i), ["a value is not a finite number"])
    return _Validated(X=X, good=good, messages={i: "; ".join(m) for i, m in messages.items()},
                      clean_columns=clean_columns)


_SCORE_BLOCK = 65_536


def _score(service: "SegmentationService", X: np.ndarray) -> dict[str, np.ndarray]:
    """service.score_array in cache-sized blocks (same results, about 2x faster on big chunks)."""
    if len(X) <= _SCORE_BLOCK:
        return service.score_array(X)
    parts = [service.score_array(X[start:start + _SCORE_BLOCK]) for start in range(0, len(X), _SCORE_BLOCK)]
    return {key: np.concatenate([part[key] for part in parts]) for key in ("index", "confidence", "margin")}


def _neutralise(arr: pa.Array) -> pa.Array:
    """Prefix text cells that a spreadsheet would run as a formula with a single quote."""
    if pa.types.is_dictionary(arr.type):
        return pa.DictionaryArray.from_arrays(arr.indices, _neutralise(arr.dictionary))
    if not _is_text(arr.type) or len(arr) == 0:
        return arr
    risky = pc.fill_null(pc.match_substring_regex(arr, _RISKY), False)
    if not pc.any(risky).as_py():
        return arr
    fix = pc.and_(risky, pc.invert(pc.fill_null(pc.match_substring_regex(arr, _PLAIN_NUMBER), False)))
    if not pc.any(fix).as_py():
        return arr
    quote, empty = pa.scalar("'", arr.type), pa.scalar("", arr.type)
    return pc.if_else(fix, pc.binary_join_element_wise(quote, arr, empty), arr)


def _csv_type(t: pa.DataType) -> pa.DataType:
    return pa.string() if pa.types.is_nested(t) else t


def _csv_safe(arr: pa.Array) -> pa.Array:
    """Lists, structs and maps (Parquet input) as JSON text: a CSV cell cannot hold them. Per-row Python,
    but only for such columns."""
    if not pa.types.is_nested(arr.type):
        return arr
    import json

    return pa.array([None if v is None else json.dumps(v, default=str, ensure_ascii=False) for v in arr.to_pylist()],
                    type=pa.string())


def neutralise_name(name: str) -> str:
    """A header name made safe for spreadsheets (same rule as cells)."""
    if re.match(_RISKY, name) and not re.match(_PLAIN_NUMBER, name):
        return "'" + name
    return name


# ============================================================================ writing


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class _AtomicPath:
    """A temporary file beside ``final``, renamed onto it by commit() and removed by discard()."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self._remove_orphans()
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.{os.getpid()}.", suffix=".part")
        os.close(fd)
        self.tmp = Path(tmp)

    def _remove_orphans(self) -> None:
        """Temporary files of earlier runs to the same target whose process is gone (killed with SIGKILL)."""
        prefix = f".{self.final.name}."
        for sibling in self.final.parent.glob(f"{glob.escape(prefix)}*.part"):
            pid = sibling.name[len(prefix):].split(".", 1)[0]
            if pid.isdigit() and not _process_alive(int(pid)):
                sibling.unlink(missing_ok=True)

    def commit(self) -> None:
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.final)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


class _TableWriter:
    def __init__(self, final: Path, fmt: str, schema: pa.Schema, delimiter: str) -> None:
        self.target = _AtomicPath(final)
        self.fmt = fmt
        self.schema = schema
        self.file_schema = schema
        try:
            if fmt == "csv":
                self.file_schema = pa.schema([f.with_name(neutralise_name(f.name)) for f in schema])
                self.writer = pacsv.CSVWriter(str(self.target.tmp), self.file_schema,
                                              write_options=pacsv.WriteOptions(delimiter=delimiter, batch_size=_WRITE_BATCH))
            else:
                self.writer = pq.ParquetWriter(str(self.target.tmp), schema)
        except BaseException:
            self.target.discard()
            raise

    def write(self, batch: pa.RecordBatch) -> None:
        if self.file_schema is not self.schema:
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=self.file_schema)
        self.writer.write_batch(batch)

    def commit(self) -> None:
        self.writer.close()
        self.target.commit()

    def discard(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - the writer may be half-open after a failure; the file goes anyway
            pass
        self.target.discard()


def default_errors_path(output: Path) -> Path:
    """``out.csv`` -> ``out.errors.csv`` beside it."""
    return output.with_name(f"{output.stem}.errors.csv")


def output_format(path: Path, fmt: str | None) -> Literal["csv", "parquet"]:
    if fmt is not None:
        if fmt not in ("csv", "parquet"):
            raise DataFileError(f"format={fmt!r} is not one of csv, parquet")
        return fmt  # type: ignore[return-value]
    return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv"


# ============================================================================ scoring a file


class _Run:
    """One pass over a file: read, validate, score, write (output and errors), accumulate totals."""

    def __init__(self, service: "SegmentationService", plan: FilePlan, output: Path, errors_path: Path,
                 fmt: str, collection_year: int | None) -> None:
        self.service, self.plan, self.fmt, self.year = service, plan, fmt, collection_year
        self.output, self.errors_path = output, errors_path
        self.keys = pa.array(list(service.cluster_keys), type=pa.string())
        self.names = pa.array([service.segment_name(k) for k in service.cluster_keys], type=pa.string())
        self.levels = pa.array(["borderline", "clear"], type=pa.string())
        k = len(service.cluster_keys)
        self.counts = np.zeros(k, dtype=np.int64)
        self.sums = np.zeros((k, len(FIELD_NAMES)))
        self.rows_read = self.rows_failed = self.ragged = 0
        self.writer: _TableWriter | None = None
        self.errors: _TableWriter | None = None
        self.add_row = plan.id_column is None and ROW_COLUMN not in {plan.columns[i] for i in plan.keep}
        self.delimiter = plan.delimiter if plan.file_type == "csv" else ","

    # -- schemas
    def _input_fields(self, schema: pa.Schema) -> list[pa.Field]:
        return [pa.field(self.plan.columns[i], _csv_type(schema.field(i).type) if self.fmt == "csv" else
                         schema.field(i).type) for i in self.plan.keep]

    def _out_schema(self, schema: pa.Schema) -> pa.Schema:
        label_type = pa.dictionary(pa.int32(), pa.string()) if self.fmt == "csv" else pa.string()
        fields = [pa.field(ROW_COLUMN, pa.int64())] if self.add_row else []
        fields += self._input_fields(schema)
        fields += [pa.field("segment_key", label_type), pa.field("segment_name", label_type),
                   pa.field("confidence", label_type), pa.field("confidence_margin", pa.float64())]
        return pa.schema(fields)

    def _error_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([pa.field(ROW_COLUMN, pa.int64()), pa.field(ERROR_COLUMN, pa.string())]
                         + [pa.field(f.name, _csv_type(f.type)) for f in self._input_fields(schema)])

    # -- one chunk
    def process(self, chunk: _Chunk, pool: ThreadPoolExecutor, pending: list[Future]) -> None:
        batch = chunk.batch
        if self.writer is None:
            self.writer = _TableWriter(self.output, self.fmt, self._out_schema(batch.schema), self.delimiter)
        self.rows_read += batch.num_rows + len(chunk.rejects)
        checked = _validate(self.plan, batch, self.year)
        good = checked.good
        n_good = int(good.sum())
        if chunk.rejects or n_good < batch.num_rows:
            self._write_errors(chunk, checked)
        if n_good == 0:
            return
        all_good = n_good == batch.num_rows
        X = checked.X if all_good else checked.X[good]
        scored = _score(self.service, X)
        idx = np.asarray(scored["index"], dtype=np.int64)
        self.counts += np.bincount(idx, minlength=len(self.counts))
        for j in range(X.shape[1]):
            self.sums[:, j] += np.bincount(idx, weights=X[:, j], minlength=len(self.counts))
        kept = batch if all_good else batch.filter(pa.array(good))
        columns = []
        if self.add_row:
            columns.append(pa.array(chunk.rows if all_good else chunk.rows[good], type=pa.int64()))
        for i in self.plan.keep:
            arr = kept.column(i)
            if self.fmt == "csv" and i not in checked.clean_columns:
                arr = _neutralise(_csv_safe(arr))
            columns.append(arr)
        idx32 = pa.array(idx.astype(np.int32))
        clear = pa.array((np.asarray(scored["confidence"]) == "clear").astype(np.int32))
        labels = [pa.DictionaryArray.from_arrays(idx32, self.keys), pa.DictionaryArray.from_arrays(idx32, self.names),
                  pa.DictionaryArray.from_arrays(clear, self.levels)]
        if self.fmt != "csv":
            labels = [a.dictionary_decode() for a in labels]
        columns += labels
        columns.append(pa.array(np.round(np.asarray(scored["margin"], dtype=np.float64), MARGIN_DECIMALS)))
        out = pa.RecordBatch.from_arrays(columns, schema=self.writer.schema)
        if pending:                       # keep at most one write in flight (bounded memory)
            pending.pop().result()
        pending.append(pool.submit(self.writer.write, out))

    def _write_errors(self, chunk: _Chunk, checked: _Validated) -> None:
        batch = chunk.batch
        if self.errors is None:
            self.errors = _TableWriter(self.errors_path, "csv", self._error_schema(batch.schema), self.delimiter)
        schema = self.errors.schema
        positions = np.asarray(sorted(checked.messages), dtype=np.int64)
        self.rows_failed += len(positions) + len(chunk.rejects)
        self.ragged += len(chunk.rejects)
        if not chunk.rejects:             # the common case: whole columns at once
            bad = batch.take(pa.array(positions))
            columns = [pa.array(chunk.rows[positions], pa.int64()),
                       _neutralise(pa.array([checked.messages[int(i)] for i in positions], pa.string()))]
            columns += [_neutralise(_csv_safe(bad.column(i))) for i in self.plan.keep]
            self.errors.write(pa.RecordBatch.from_arrays(columns, schema=schema))
            return
        # Python reader with ragged rows: every column is text; merge both kinds in row order
        entries: list[tuple[int, str, list[str | None]]] = []
        for i in positions:
            values = [batch.column(c)[int(i)].as_py() for c in range(batch.num_columns)]
            entries.append((int(chunk.rows[i]), checked.messages[int(i)], values))
        for row, reason, record in chunk.rejects:
            entries.append((row, reason, [v if v != "" else None for v in record]))
        entries.sort(key=lambda e: e[0])
        columns = [pa.array([e[0] for e in entries], pa.int64()),
                   _neutralise(pa.array([e[1] for e in entries], pa.string()))]
        for i in self.plan.keep:
            columns.append(_neutralise(pa.array([e[2][i] if i < len(e[2]) else None for e in entries], pa.string())))
        self.errors.write(pa.RecordBatch.from_arrays(columns, schema=schema))

    def finish_empty(self, schema: pa.Schema) -> None:
        if self.writer is None:
            self.writer = _TableWriter(self.output, self.fmt, self._out_schema(schema), self.delimiter)

    def discard(self) -> None:
        for writer in (self.writer, self.errors):
            if writer is not None:
                writer.discard()


def _empty_schema(plan: FilePlan) -> pa.Schema:
    if plan.file_type == "parquet":
        return pq.ParquetFile(plan.path).schema_arrow
    return pa.schema([pa.field(f"c{i}", pa.string()) for i in range(len(plan.columns))])


def score_file(service: "SegmentationService", input_path: str | Path, output_path: str | Path, *,
               fmt: str | None = None, chunksize: int = 200_000, errors_path: str | Path | None = None,
               progress: Progress | None = None, collection_year: int | None = None) -> BatchSummary:
    """Score every row of a customer file into ``output_path`` (see the module docstring).

    ``fmt``: "csv" or "parquet" (default from the output's suffix). ``errors_path``: where rows that
    cannot be scored go (default ``<output stem>.errors.csv``). ``collection_year``: the year ages
    of a raw file are computed against (default: its latest Dt_Customer). Raises DataFileError for
    a file that cannot be read at all; the previous output, if any, is then left untouched.
    """
    started = time.perf_counter()
    if chunksize < 1:
        raise DataFileError(f"chunksize={chunksize} is below the minimum of 1")
    input_path, output_path = Path(input_path), Path(output_path)
    plan = inspect_file(input_path)
    fmt = output_format(output_path, fmt)
    if not output_path.parent.is_dir():
        raise DataFileError(f"the output folder {output_path.parent} does not exist")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise DataFileError(f"{output_path} is the input file; choose another output")
    errors_path = Path(errors_path) if errors_path is not None else default_errors_path(output_path)
    year = collection_year if collection_year is not None else file_collection_year(plan)
    engines = ("arrow", "python") if plan.file_type == "csv" else ("parquet",)
    try:
        with _one_blas_thread():
            return _score_with(service, plan, input_path, output_path, errors_path, fmt, chunksize, progress, year,
                               engines, started)
    except OSError as exc:                 # unreadable input, unwritable output folder, disk full...
        raise DataFileError(f"{exc.filename or output_path}: {exc.strerror or exc}") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataFileError(f"{input_path.name} cannot be scored into {output_path.name}: {exc}") from None


def _one_blas_thread():
    """(n, 7) x (7, k) products gain nothing from BLAS threads, whose spinning competes with the
    CSV reader's and writer's threads: limit BLAS to one thread while scoring."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _score_with(service, plan: FilePlan, input_path: Path, output_path: Path, errors_path: Path, fmt: str,
                chunksize: int, progress: Progress | None, year: int | None, engines: tuple[str, ...],
                started: float) -> BatchSummary:
    for attempt, engine in enumerate(engines):
        run = _Run(service, plan, output_path, errors_path, fmt, year)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-writer")
        pending: list[Future] = []
        try:
            for chunk in _chunks(plan, engine, chunksize):
                run.process(chunk, pool, pending)
                if progress is not None:
                    progress(run.rows_read, chunk.fraction)
            for future in pending:
                future.result()
            if run.rows_read == 0:
                raise DataFileError(f"{input_path.name} has a header but no data rows")
            if run.ragged == run.rows_read:
                raise DataFileError(f"{input_path.name}: no row has the header's {len(plan.columns)} values; "
                                    f"is the delimiter {_delimiter_name(plan.delimiter)} right?")
            run.finish_empty(_empty_schema(plan))
            run.writer.commit()  # type: ignore[union-attr]
            if run.errors is not None:
                run.errors.commit()
            elif errors_path.exists() and errors_path.resolve() != input_path.resolve():
                errors_path.unlink()          # a stale errors file would not describe this output
            break
        except _NeedsFallback:
            run.discard()
            if attempt + 1 == len(engines):  # pragma: no cover - the python reader never asks
                raise DataFileError(f"{input_path.name} cannot be read as CSV") from None
            continue
        except BaseException:
            run.discard()
            raise
        finally:
            pool.shutdown(wait=True)
    return BatchSummary(
        input_path=str(input_path), output_path=str(output_path),
        errors_path=str(errors_path) if run.errors is not None else None,
        input_format=plan.layout, file_type=plan.file_type, output_format=fmt,  # type: ignore[arg-type]
        collection_year=year, rows_read=run.rows_read, rows_scored=int(run.counts.sum()),
        rows_failed=run.rows_failed, segments=_totals(service, run.counts, run.sums),
        seconds=time.perf_counter() - started)


# ============================================================================ command line


class _StderrProgress:
    """A progress line on stderr (``template`` filled with ``fixed`` and the values shown), redrawn at
    most ten times a second; called as a :data:`Progress` it shows ``rows`` and ``percent``."""

    def __init__(self, template: str, stream=None, **fixed: object) -> None:
        self.template, self.fixed = template, fixed
        self.stream = stream if stream is not None else sys.stderr
        self.last = 0.0
        self.drawn = False

    def __call__(self, rows: int, fraction: float) -> None:
        self.show(final=fraction >= 1.0, rows=rows, percent=fraction)

    def show(self, *, final: bool = False, **values: object) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and not final:
            return
        self.last = now
        self.stream.write("\r" + self.template.format(**self.fixed, **values))
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def format_summary(summary: BatchSummary, texts: CliTexts) -> str:
    """The CLI's summary: counts and averages per segment, then the errors line."""
    from assistant.fields import FIELDS_BY_NAME, format_duration

    lines = [texts.scored.format(rows_scored=summary.rows_scored, rows_read=summary.rows_read,
                                 seconds=summary.seconds, duration=format_duration(summary.seconds),
                                 output=summary.output_path),
             texts.segment_header]
    for seg in summary.segments:
        lines.append(texts.segment_line.format(name=seg.segment_name, key=seg.segment_key, count=seg.count,
                                               share=seg.share))
        if seg.count:
            items = [texts.average_item.format(label=FIELDS_BY_NAME[n].label, label_lower=FIELDS_BY_NAME[n].label.lower(),
                                               value=FIELDS_BY_NAME[n].format(v))
                     for n, v in seg.averages.items()]
            lines.append(texts.averages_line.format(averages=", ".join(items)))
    if summary.rows_failed:
        lines.append(texts.errors.format(rows_failed=summary.rows_failed, errors_path=summary.errors_path))
    else:
        lines.append(texts.no_errors)
    return "\n".join(lines)


def run_score(args, *, service: "SegmentationService") -> int:
    """``segment-assistant score INPUT -o OUTPUT [--format] [--chunksize] [--engine] [--scheduler]``."""
    texts = load_batch_texts(getattr(args, "knowledge_dir", None)).cli
    if args.chunksize < 1:
        raise AssistantError(f"--chunksize={args.chunksize} is below the minimum of 1")
    if args.engine == "dask":
        from assistant.distributed import run_dask

        return run_dask(args, service=service, texts=texts)
    if args.scheduler:
        raise AssistantError("--scheduler needs --engine dask")
    progress = _StderrProgress(texts.progress, input=Path(args.input).name)
    try:
        summary = score_file(service, args.input, args.output, fmt=args.format, chunksize=args.chunksize,
                             progress=progress)
    finally:
        progress.close()
    print(format_summary(summary, texts))
    return 0


__all__ = [
    "ADDED_COLUMNS", "BatchSummary", "BatchTexts", "CliTexts", "FilePlan", "Progress", "SegmentTotals", "UiTexts",
    "combine_summaries", "default_errors_path", "file_collection_year", "format_summary", "inspect_file",
    "load_batch_texts", "neutralise_name", "output_format", "run_score", "score_file",
]

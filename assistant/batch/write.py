"""Write the scored file and the errors file: formula-safe CSV cells, Parquet, atomic renames."""

from __future__ import annotations

import functools
import glob
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assistant.batch.inspect import PARQUET_SUFFIXES, FileType
from assistant.batch.validate import _is_text
from assistant.core.errors import DataFileError
from assistant.core.files import process_alive

_RISKY = r"^[=+\-@\t\r]"
_RISKY_BYTES = np.zeros(256, dtype=bool)   # the first characters _RISKY matches, as bytes
_RISKY_BYTES[[ord(c) for c in "=+-@\t\r"]] = True
_PLAIN_NUMBER = r"^\s*[+-]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"


_WRITE_BATCH = 65_536  # rows the CSV writer formats at a time (its default of 1,024 costs ~10% more)


def _neutralise(arr: pa.Array) -> pa.Array:
    """Prefix text cells that a spreadsheet would run as a formula with a single quote."""
    if pa.types.is_dictionary(arr.type):
        return pa.DictionaryArray.from_arrays(arr.indices, _neutralise(arr.dictionary))
    if not _is_text(arr.type) or len(arr) == 0:
        return arr
    if not _may_be_risky(arr):
        return arr
    risky = pc.fill_null(pc.match_substring_regex(arr, _RISKY), False)
    if not pc.any(risky).as_py():
        return arr
    fix = pc.and_(risky, pc.invert(pc.fill_null(pc.match_substring_regex(arr, _PLAIN_NUMBER), False)))
    if not pc.any(fix).as_py():
        return arr
    quote, empty = pa.scalar("'", arr.type), pa.scalar("", arr.type)
    return pc.if_else(fix, pc.binary_join_element_wise(quote, arr, empty), arr)


def fraction_column(values: np.ndarray, decimals: int, *, as_text: bool) -> pa.Array:
    """A column of shares or probabilities (numbers in [0, 1]) rounded to ``decimals`` by ``np.round``'s
    rule. With ``as_text`` (CSV output) it is a dictionary over the 10**decimals + 1 possible numbers,
    formatted once by pyarrow exactly as its CSV writer formats a float column: the same file, but a
    lookup a row instead of formatting a float (about 4x faster). NaN is an empty cell."""
    rounded = np.round(np.asarray(values, dtype=np.float64), decimals)
    if not as_text:
        return pa.array(rounded, type=pa.float64())
    missing = np.isnan(rounded)
    codes = np.rint(np.clip(np.nan_to_num(rounded), 0.0, 1.0) * 10**decimals).astype(np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=missing if missing.any() else None),
                                          _fraction_texts(decimals))


@functools.cache
def _fraction_texts(decimals: int) -> pa.Array:
    steps = 10**decimals
    return pa.array(np.round(np.arange(steps + 1) / steps, decimals)).cast(pa.string())


def coded_text(codes: np.ndarray, texts: list[str], *, as_dictionary: bool) -> pa.Array:
    """Text per row from ``codes`` into ``texts`` (-1: empty cell), as a dictionary column (CSV) or plain
    strings (Parquet). A column with no text at all is one null buffer."""
    if not texts:
        return pa.nulls(len(codes), pa.dictionary(pa.int32(), pa.string()) if as_dictionary else pa.string())
    column = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), pa.array(texts, pa.string()))
    return column if as_dictionary else column.dictionary_decode()


def _may_be_risky(arr: pa.Array) -> bool:
    """Whether any cell may start with a character _RISKY matches, from the first byte of every cell read
    straight from the array's buffers (about 6x cheaper than the regex; a UTF-8 lead byte is never one of
    them). True when the layout is not the plain one (then the regex decides)."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return True
    buffers = arr.buffers()
    if buffers[2] is None:
        return False
    width = np.dtype(np.int64) if pa.types.is_large_string(arr.type) else np.dtype(np.int32)
    offsets: np.ndarray = np.frombuffer(buffers[1], dtype=width, count=len(arr) + 1, offset=arr.offset * width.itemsize)
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    starts = offsets[:-1][offsets[1:] > offsets[:-1]]
    return bool(_RISKY_BYTES[data[starts]].any()) if len(starts) else False


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
            if pid.isdigit() and not process_alive(int(pid)):
                sibling.unlink(missing_ok=True)

    def commit(self) -> None:
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.final)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


class _MinimalQuotingCsv:
    """A CSV writer that quotes only where needed: each block is written unquoted when none of its cells
    holds the delimiter, a quote or a line break (pyarrow refuses such a block), else with pyarrow's
    quoting of text cells. The header is quoted by the same rule, name by name."""

    def __init__(self, path: Path, schema: pa.Schema, delimiter: str) -> None:
        self.stream = pa.OSFile(str(path), "wb")
        self.schema = schema
        self.plain = pacsv.WriteOptions(include_header=False, delimiter=delimiter, batch_size=_WRITE_BATCH,
                                        quoting_style="none")
        self.quoted = pacsv.WriteOptions(include_header=False, delimiter=delimiter, batch_size=_WRITE_BATCH)
        special = (delimiter, '"', "\n", "\r")
        names = ['"' + n.replace('"', '""') + '"' if any(c in n for c in special) else n for n in schema.names]
        self.stream.write((delimiter.join(names) + "\n").encode())

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.write_encoded(self.encode(batch))

    def encode(self, batch: pa.RecordBatch) -> pa.Buffer:
        """The CSV text of ``batch`` (no header), in memory: safe to call from several threads at once, so
        blocks can be formatted in parallel and written in order (see write_encoded)."""
        sink = pa.BufferOutputStream()
        try:
            pacsv.write_csv(batch, sink, write_options=self.plain)
        except pa.ArrowInvalid:          # a cell needs quotes: start again with pyarrow's quoting
            sink = pa.BufferOutputStream()
            pacsv.write_csv(batch, sink, write_options=self.quoted)
        return sink.getvalue()

    def write_encoded(self, text: pa.Buffer) -> None:
        self.stream.write(text)

    def close(self) -> None:
        self.stream.close()


class _TableWriter:
    """An output or errors file written batch by batch to a temporary file, then renamed (see _AtomicPath).

    ``derived``: names of columns this program computes (labels, margins, probabilities); in Parquet they
    get no min/max statistics (nobody filters on them by range, and the writer spends a third of its time
    on statistics) and the numbers among them no dictionary. The input's own columns keep the defaults."""

    def __init__(self, final: Path, fmt: str, schema: pa.Schema, delimiter: str, *,
                 derived: frozenset[str] = frozenset()) -> None:
        self.target = _AtomicPath(final)
        self.fmt = fmt
        self.schema = schema
        self.file_schema = schema
        try:
            if fmt == "csv":
                self.file_schema = pa.schema([f.with_name(neutralise_name(f.name)) for f in schema])
                self.writer = _MinimalQuotingCsv(self.target.tmp, self.file_schema, delimiter)
            else:
                own = [f.name for f in schema if f.name not in derived]
                dictionary = own + [f.name for f in schema if f.name in derived and not pa.types.is_floating(f.type)]
                self.writer = pq.ParquetWriter(str(self.target.tmp), schema, use_dictionary=dictionary,
                                               write_statistics=own)
        except BaseException:
            self.target.discard()
            raise

    def write(self, batch: pa.RecordBatch) -> None:
        if self.file_schema is not self.schema:
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=self.file_schema)
        self.writer.write_batch(batch)

    @property
    def encodes(self) -> bool:
        """Whether batches can be encoded apart from writing them (CSV): see encode and write_encoded."""
        return isinstance(self.writer, _MinimalQuotingCsv)

    def encode(self, batch: pa.RecordBatch) -> pa.Buffer:
        assert isinstance(self.writer, _MinimalQuotingCsv)
        if self.file_schema is not self.schema:
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=self.file_schema)
        return self.writer.encode(batch)

    def write_encoded(self, text: pa.Buffer) -> None:
        assert isinstance(self.writer, _MinimalQuotingCsv)
        self.writer.write_encoded(text)

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
    """Beside the output: ``out.csv`` -> ``out.errors.csv``; any other suffix keeps its name in front
    (``out.parquet`` -> ``out.parquet.errors.csv``), so two outputs in one folder never share one."""
    if output.suffix.lower() == ".csv":
        return output.with_name(f"{output.stem}.errors.csv")
    return output.with_name(f"{output.name}.errors.csv")


TAB_SUFFIXES = (".tsv", ".tab")


def output_delimiter(path: Path) -> str:
    """What the output's name says: a tab for ``.tsv``/``.tab``, else a comma (``.csv``, ``.txt``...)."""
    return "\t" if path.suffix.lower() in TAB_SUFFIXES else ","


_FORMATS: dict[str, FileType] = {"csv": "csv", "parquet": "parquet"}


def output_format(path: Path, fmt: str | None) -> FileType:
    if fmt is None:
        return "parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv"
    if fmt not in _FORMATS:
        raise DataFileError(f"format={fmt!r} is not one of csv, parquet")
    return _FORMATS[fmt]


# ============================================================================ scoring a file

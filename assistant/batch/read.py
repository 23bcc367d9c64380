"""Read a customer file in bounded chunks: pyarrow's streaming CSV reader, Python's csv module for odd
files, Parquet row batches; and the collection year of a raw file."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from assistant.core.errors import DataFileError
from assistant.model.dates import latest_year

if TYPE_CHECKING:  # pragma: no cover
    pass
from assistant.batch.inspect import FilePlan, _delimiter_name

_MAX_BLOCK = 1 << 20   # CSV bytes parsed at a time: with bigger blocks pyarrow's peak memory grows with the
#                        file's length (measured: +300 MB at 6 MB blocks on 10M rows) and nothing gets faster


_READ_AHEAD = 2        # chunks a background thread reads ahead of the scoring (see _read_ahead)


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
                    for col, i in zip(columns, wanted, strict=True):
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
        return _read_ahead(_parquet_chunks(plan, chunksize, include))
    if engine == "arrow":
        return _read_ahead(_arrow_csv_chunks(plan, chunksize, include))
    return _python_csv_chunks(plan, chunksize, include)


_DONE = object()


def _read_ahead(chunks: Iterator[_Chunk], depth: int = _READ_AHEAD) -> Iterator[_Chunk]:
    """``chunks``, produced by a background thread up to ``depth`` chunks ahead of the consumer: pyarrow's
    streaming readers parse only when asked for the next batch, so without this the reading and the
    scoring of a file would take turns instead of overlapping (pyarrow releases the GIL while it parses).
    An exception in the reader (``_NeedsFallback`` included) is raised here, in order; when the consumer
    stops early, the thread stops at its next chunk and the reader is closed."""
    import queue
    import threading

    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="batch-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|2[01]\d\d)(?!\d)")


def _year_from_dates(values: list[str]) -> int | None:
    """The latest year among date strings by the training loader's rule (:mod:`assistant.model.dates`), or
    else, when the column has no single format (a few broken dates do not block the file), the latest
    four-digit year written in them."""
    cleaned = pd.Series(sorted({v.strip() for v in values if v and v.strip()}), dtype=object)
    if cleaned.empty:
        return None
    year = latest_year(cleaned)
    if year is not None:
        return year
    years = [int(y[0]) for y in (_FOUR_DIGIT_YEAR.findall(v) for v in cleaned) if len(y) == 1]
    return max(years) if years else None


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
                if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
                    arr = pc.cast(arr, pa.string())
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

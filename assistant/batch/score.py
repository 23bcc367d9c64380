"""Score a customer file end to end: inspect, read, validate, score and write, with bounded memory."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assistant.core.errors import DataFileError
from assistant.core.fields import (
    FIELD_NAMES,
)

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.segmentation import SegmentationService
from assistant.batch.inspect import (
    ERROR_COLUMN,
    MARGIN_DECIMALS,
    PROBABILITY_DECIMALS,
    ROW_COLUMN,
    FilePlan,
    FileType,
    Progress,
    _delimiter_name,
    inspect_file,
)
from assistant.batch.read import _Chunk, _chunks, _NeedsFallback, file_collection_year
from assistant.batch.summary import BatchSummary, ExpectedResponders, _totals
from assistant.batch.validate import _is_text, _validate, _Validated, number_types
from assistant.batch.write import (
    _csv_safe,
    _csv_type,
    _neutralise,
    _TableWriter,
    coded_text,
    default_errors_path,
    fraction_column,
    output_delimiter,
    output_format,
)
from assistant.model.data import detect_date_format
from assistant.model.response import (
    FULL_RECORD_COLUMNS,
    FULL_RECORD_NUMERIC,
    ResponseModelName,
    full_record_inputs,
    tenure_days,
    usable_rows,
)

_ENCODERS = 2    # CSV blocks formatted at once (pyarrow's CSV writer is one thread per call)
DERIVED_COLUMNS = frozenset({"segment_key", "segment_name", "confidence", "confidence_margin", "warnings",
                             "response_probability", "response_model"})
RESPONSE_MODELS: tuple[ResponseModelName, ...] = ("seven_fields", "full_record")


def _full_record_columns(plan: FilePlan) -> dict[str, int] | None:
    """Column index of each raw column the full-record response model reads, or None when one is missing
    (then every row uses the seven-field model)."""
    if plan.layout != "raw":
        return None
    by_name = {str(n).strip().lower(): i for i, n in enumerate(plan.columns)}
    found = {c: by_name.get(c.lower()) for c in FULL_RECORD_COLUMNS}
    if any(i is None for i in found.values()):
        return None
    return {c: i for c, i in found.items() if i is not None}


def _as_numbers(arr: pa.Array) -> np.ndarray:
    """A column as float64, NaN where a cell is not a number: pyarrow's cast for clean columns (the common
    case, vectorised in C++), pandas' to_numeric for the rest."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        return np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    try:
        trimmed = pc.utf8_trim_whitespace(arr)
        cast = pc.cast(pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed), pa.float64())
        return np.asarray(cast.to_numpy(zero_copy_only=False), dtype=np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pd.to_numeric(pd.Series(arr.to_pandas(), dtype=object).astype(str).str.strip()
                             .str.replace(",", "", regex=False), errors="coerce").to_numpy(dtype=np.float64)


def _as_text(arr: pa.Array) -> np.ndarray:
    out: np.ndarray = np.asarray(arr.to_pylist(), dtype=object)
    return out


def _tenure_days(arr: pa.Array, reference_date: str, fmt: str) -> np.ndarray:
    """:func:`tenure_days` for a text column, parsed by pyarrow's strptime (vectorised, about 20x faster
    than pandas' per-row parsing); cells pyarrow cannot read in ``fmt`` go through ``tenure_days`` itself,
    so every cell gets exactly the rule training used."""
    if not _is_text(arr.type):
        return tenure_days(_as_text(arr), reference_date, fmt)
    text = pc.utf8_trim_whitespace(arr)
    try:
        parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return tenure_days(_as_text(arr), reference_date, fmt)
    seconds = np.asarray(parsed.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    reference = float(np.datetime64(reference_date, "s").astype(np.int64))
    days: np.ndarray = np.floor((reference - seconds) / 86_400.0)
    retry = np.isnan(days) & ~np.asarray(text.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if retry.any():
        days[retry] = tenure_days(_as_text(text.filter(pa.array(retry))), reference_date, fmt)
    return days


def _score(service: SegmentationService, X: np.ndarray) -> dict[str, Any]:
    """service.score_array (cache-sized blocks, two threads for big chunks)."""
    return service.score_array(X)


class _Run:
    """One pass over a file: read, validate, score, write (output and errors), accumulate totals."""

    def __init__(self, service: SegmentationService, plan: FilePlan, output: Path, errors_path: Path,
                 fmt: FileType, collection_year: int | None) -> None:
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
        self.delimiter = output_delimiter(output)
        # a text file written as Parquet: the columns the fields come from keep their numbers as numbers
        self.typed = number_types(plan) if fmt == "parquet" and plan.file_type == "csv" else {}
        # campaign response: the seven-field model, or the full-record one for raw files with its columns
        self.response = service.response_params
        self.full_columns = _full_record_columns(plan) if self.response is not None and \
            self.response.full_record is not None else None
        self.response_models = pa.array(list(RESPONSE_MODELS), type=pa.string())
        self.probabilities: list[np.ndarray] = []
        self.date_format: str | None = None

    # -- schemas
    def _input_fields(self, schema: pa.Schema) -> list[pa.Field]:
        return [pa.field(self.plan.columns[i], _csv_type(schema.field(i).type) if self.fmt == "csv" else
                         self.typed.get(i, schema.field(i).type)) for i in self.plan.keep]

    def _out_schema(self, schema: pa.Schema) -> pa.Schema:
        label_type = pa.dictionary(pa.int32(), pa.string())   # a code a row over a few texts (Parquet: categorical)
        number_type = label_type if self.fmt == "csv" else pa.float64()   # CSV: see fraction_column
        fields = [pa.field(ROW_COLUMN, pa.int64())] if self.add_row else []
        fields += self._input_fields(schema)
        fields += [pa.field("segment_key", label_type), pa.field("segment_name", label_type),
                   pa.field("confidence", label_type), pa.field("confidence_margin", number_type),
                   pa.field("warnings", label_type)]
        if self.response is not None:
            fields += [pa.field("response_probability", number_type), pa.field("response_model", label_type)]
        return pa.schema(fields)

    def _error_schema(self, schema: pa.Schema) -> pa.Schema:
        return pa.schema([pa.field(ROW_COLUMN, pa.int64()), pa.field(ERROR_COLUMN, pa.string())]
                         + [pa.field(self.plan.columns[i], _csv_type(schema.field(i).type)) for i in self.plan.keep])

    # -- one chunk
    def process(self, chunk: _Chunk, pool: ThreadPoolExecutor, pending: list[Future[pa.Buffer | None]]) -> None:
        batch = chunk.batch
        if self.writer is None:
            self.writer = _TableWriter(self.output, self.fmt, self._out_schema(batch.schema), self.delimiter,
                                       derived=DERIVED_COLUMNS)
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
            if i in self.typed:
                numbers = checked.numbers[i] if all_good else checked.numbers[i][good]
                arr = pa.array(numbers).cast(self.typed[i])
            elif self.fmt == "csv" and i not in checked.clean_columns:
                arr = _neutralise(_csv_safe(arr))
            columns.append(arr)
        idx32 = pa.array(idx.astype(np.int32))
        clear = pa.array(np.asarray(scored["confidence"].codes, dtype=np.int32))
        labels = [pa.DictionaryArray.from_arrays(idx32, self.keys), pa.DictionaryArray.from_arrays(idx32, self.names),
                  pa.DictionaryArray.from_arrays(clear, self.levels)]
        columns += labels
        text = self.fmt == "csv"
        columns.append(fraction_column(scored["margin"], MARGIN_DECIMALS, as_text=text))
        columns.append(coded_text(*self.service.range_warnings(X), as_dictionary=True))
        if self.response is not None:
            columns += self._response_columns(X, kept)
        out = pa.RecordBatch.from_arrays(columns, schema=self.writer.schema)
        self._hand_over(out, pool, pending)

    def _hand_over(self, out: pa.RecordBatch, pool: ThreadPoolExecutor, pending: list[Future[pa.Buffer | None]]
                   ) -> None:
        """Write ``out`` in the background with bounded memory. CSV: up to _ENCODERS blocks are formatted at
        once on the pool's threads and written in order here; Parquet: one write in flight (its writer is
        one stream)."""
        writer = self.writer
        assert writer is not None
        if writer.encodes:
            pending.append(pool.submit(writer.encode, out))
            while len(pending) > _ENCODERS:
                self._write_next(pending)
            return
        while pending:
            self._write_next(pending)
        pending.append(pool.submit(self._write_returning_none, out))

    def _write_returning_none(self, out: pa.RecordBatch) -> None:
        assert self.writer is not None
        self.writer.write(out)

    def _write_next(self, pending: list[Future[pa.Buffer | None]]) -> None:
        text = pending.pop(0).result()
        if text is not None and self.writer is not None:
            self.writer.write_encoded(text)

    def drain(self, pending: list[Future[pa.Buffer | None]]) -> None:
        """Finish every write handed over, in order."""
        while pending:
            self._write_next(pending)

    def _date_format(self, dates: np.ndarray) -> str | None:
        """The file's Dt_Customer format (one rule for the whole file), found on the first chunk that has one."""
        if self.date_format is None:
            try:
                self.date_format = detect_date_format(pd.Series(dates))
            except DataFileError:
                return None
        return self.date_format

    def _response_columns(self, X: np.ndarray, kept: pa.RecordBatch) -> list[pa.Array]:
        """``response_probability`` and ``response_model`` for the scored rows: the full-record model where
        the row has every column it reads, the seven-field model otherwise."""
        rp = self.response
        assert rp is not None
        p = rp.seven_fields.predict({n: X[:, j] for j, n in enumerate(FIELD_NAMES)})
        which = np.zeros(len(X), dtype=np.int32)
        if self.full_columns is not None and rp.full_record is not None:
            cols = self.full_columns
            date_column = kept.column(cols["Dt_Customer"])
            fmt = self.date_format or self._date_format(_as_text(date_column))
            tenure = _tenure_days(date_column, rp.reference_date, fmt) if fmt else np.full(len(X), np.nan)
            numbers = {c: _as_numbers(kept.column(cols[c])) for c in FULL_RECORD_NUMERIC}
            inputs = full_record_inputs(X, numbers.__getitem__, lambda c: _as_text(kept.column(cols[c])), tenure)
            ok = usable_rows(inputs, rp.full_record)
            if ok.any():
                p = np.where(ok, rp.full_record.predict({k: np.where(ok, v, 0.0) for k, v in inputs.items()}), p)
                which = ok.astype(np.int32)
        self.probabilities.append(p.astype(np.float32))   # 4 bytes a row, for the expected responders
        model = pa.DictionaryArray.from_arrays(pa.array(which), self.response_models)
        text = self.fmt == "csv"
        return [fraction_column(p, PROBABILITY_DECIMALS, as_text=text), model]

    def _write_errors(self, chunk: _Chunk, checked: _Validated) -> None:
        batch = chunk.batch
        if self.errors is None:
            self.errors = _TableWriter(self.errors_path, "csv", self._error_schema(batch.schema),
                                       output_delimiter(self.errors_path))
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

    def finish_empty(self, schema: pa.Schema) -> _TableWriter:
        """The output's writer; one for an output with no rows (``schema``: the input's) if none was needed yet."""
        if self.writer is None:
            self.writer = _TableWriter(self.output, self.fmt, self._out_schema(schema), self.delimiter,
                                       derived=DERIVED_COLUMNS)
        return self.writer

    def discard(self) -> None:
        for writer in (self.writer, self.errors):
            if writer is not None:
                writer.discard()


def _empty_schema(plan: FilePlan) -> pa.Schema:
    if plan.file_type == "parquet":
        return pq.ParquetFile(plan.path).schema_arrow
    return pa.schema([pa.field(f"c{i}", pa.string()) for i in range(len(plan.columns))])


def score_file(service: SegmentationService, input_path: str | Path, output_path: str | Path, *,
               fmt: str | None = None, chunksize: int = 200_000, errors_path: str | Path | None = None,
               progress: Progress | None = None, collection_year: int | None = None) -> BatchSummary:
    """Score every row of a customer file into ``output_path`` (see the module docstring).

    ``fmt``: "csv" or "parquet" (default from the output's suffix). ``errors_path``: where rows that
    cannot be scored go (default: :func:`default_errors_path`). ``collection_year``: the year ages
    of a raw file are computed against (default: its latest Dt_Customer). Raises DataFileError for
    a file that cannot be read at all; the previous output, if any, is then left untouched.
    """
    started = time.perf_counter()
    if chunksize < 1:
        raise DataFileError(f"chunksize={chunksize} is below the minimum of 1")
    input_path, output_path = Path(input_path), Path(output_path)
    plan = inspect_file(input_path)
    out_format = output_format(output_path, fmt)
    if not output_path.parent.is_dir():
        raise DataFileError(f"the output folder {output_path.parent} does not exist")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise DataFileError(f"{output_path} is the input file; choose another output")
    errors_path = Path(errors_path) if errors_path is not None else default_errors_path(output_path)
    year = collection_year if collection_year is not None else file_collection_year(plan)
    engines = ("arrow", "python") if plan.file_type == "csv" else ("parquet",)
    try:
        with _one_blas_thread():
            return _score_with(service, plan, input_path, output_path, errors_path, out_format, chunksize, progress,
                               year, engines, started)
    except OSError as exc:                 # unreadable input, unwritable output folder, disk full...
        raise DataFileError(f"{exc.filename or output_path}: {exc.strerror or exc}") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise DataFileError(f"{input_path.name} cannot be scored into {output_path.name}: {exc}") from None


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """(n, 7) x (7, k) products gain nothing from BLAS threads, whose spinning competes with the
    CSV reader's and writer's threads: limit BLAS to one thread while scoring."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[object] = threadpool_limits(limits=1, user_api="blas")
    return limits


def _score_with(service: SegmentationService, plan: FilePlan, input_path: Path, output_path: Path, errors_path: Path,
                fmt: FileType, chunksize: int, progress: Progress | None, year: int | None, engines: tuple[str, ...],
                started: float) -> BatchSummary:
    for attempt, engine in enumerate(engines):
        run = _Run(service, plan, output_path, errors_path, fmt, year)
        pool = ThreadPoolExecutor(max_workers=_ENCODERS, thread_name_prefix="batch-writer")
        pending: list[Future[pa.Buffer | None]] = []
        try:
            for chunk in _chunks(plan, engine, chunksize):
                run.process(chunk, pool, pending)
                if progress is not None:
                    progress(run.rows_read, chunk.fraction)
            run.drain(pending)
            if run.rows_read == 0:
                raise DataFileError(f"{input_path.name} has a header but no data rows")
            if run.ragged == run.rows_read:
                raise DataFileError(f"{input_path.name}: no row has the header's {len(plan.columns)} values; "
                                    f"is the delimiter {_delimiter_name(plan.delimiter)} right?")
            run.finish_empty(_empty_schema(plan)).commit()
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
        input_format=plan.layout, file_type=plan.file_type, output_format=fmt,
        collection_year=year, rows_read=run.rows_read, rows_scored=int(run.counts.sum()),
        rows_failed=run.rows_failed, segments=_totals(service, run.counts, run.sums),
        seconds=time.perf_counter() - started,
        expected_responders=ExpectedResponders.of(np.concatenate(run.probabilities)) if run.probabilities else None)


# ============================================================================ command line


# ============================================================================ ranked contact list


def default_top_path(output: Path, n: int, segment: str | None = None) -> Path:
    """Beside the output: ``out.csv`` -> ``out-top100.csv`` (``out-top100-vip_customers.csv`` with a segment)."""
    tag = f"-top{n}" + (f"-{segment}" if segment else "")
    return output.with_name(f"{output.stem}{tag}{output.suffix}")


def rank_contacts(scored_path: str | Path, top_path: str | Path, n: int, *, segment: str | None = None,
                  chunksize: int = 200_000) -> int:
    """The ``n`` rows of a scored file (``score_file``'s output) with the highest ``response_probability``,
    highest first (ties keep file order), optionally only those of ``segment``; written atomically to
    ``top_path`` in the scored file's format. Returns the number of rows written. Reads the file in
    chunks, keeping at most ``n`` rows besides one chunk."""
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    scored_path, top_path = Path(scored_path), Path(top_path)
    if n < 1:
        raise DataFileError(f"--top {n} is below the minimum of 1")
    fmt = output_format(scored_path, None)
    if fmt == "parquet":
        pf = pq.ParquetFile(scored_path)
        schema = pf.schema_arrow
        batches = pf.iter_batches(batch_size=chunksize)
    else:
        delimiter = output_delimiter(scored_path)
        with open(scored_path, encoding="utf-8", newline="") as fh:
            import csv

            header = next(csv.reader(fh, delimiter=delimiter), [])
        schema = pa.schema([pa.field(name, pa.string()) for name in header])
        reader = pcsv.open_csv(scored_path, read_options=pcsv.ReadOptions(block_size=1 << 22),
                               parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                               convert_options=pcsv.ConvertOptions(
                                   column_types={name: pa.string() for name in header},
                                   strings_can_be_null=False, quoted_strings_can_be_null=False))
        batches = iter(reader)
    if "response_probability" not in schema.names:
        raise DataFileError(f"{scored_path.name} has no response_probability column: score it with a model "
                            f"trained with campaign responses")
    best: pa.Table | None = None
    seen = 0
    for batch in batches:
        table = pa.Table.from_batches([batch])
        order = pa.array(np.arange(seen, seen + table.num_rows, dtype=np.int64))
        seen += table.num_rows
        table = table.append_column("__order", order)
        if segment is not None:
            table = table.filter(pc.equal(pc.cast(table.column("segment_key"), pa.string()), segment))
        prob = pc.cast(table.column("response_probability"), pa.float64())
        table = table.append_column("__p", prob)
        best = table if best is None else pa.concat_tables([best, table])
        if best.num_rows > n:
            best = best.sort_by([("__p", "descending"), ("__order", "ascending")]).slice(0, n)
    if best is None:
        best = pa.Table.from_batches([], schema=schema).append_column("__order", pa.array([], pa.int64())) \
            .append_column("__p", pa.array([], pa.float64()))
    best = best.sort_by([("__p", "descending"), ("__order", "ascending")]).slice(0, n)
    best = best.drop_columns(["__order", "__p"])
    writer = _TableWriter(top_path, fmt, best.schema, output_delimiter(top_path))
    try:
        for out in best.combine_chunks().to_batches():
            writer.write(out)
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    return int(best.num_rows)

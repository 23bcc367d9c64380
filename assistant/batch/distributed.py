"""Scoring a folder (or glob) of partition files on a Dask cluster: ``score --engine dask``.

``segment-assistant score 'data/part-*.csv' -o scored/ --engine dask [--scheduler tcp://host:8786]``

* Inputs: a folder (every ``*.csv``, ``*.tsv``, ``*.txt``, ``*.parquet``, ``*.pq`` in it), a glob
  pattern, or a single file. Each file is one partition; CSV and Parquet may be mixed.
* A ``dask.dataframe`` is built with ``dd.from_map`` (one task per partition). Each task scores its
  partition with the local engine's streaming code (:func:`assistant.batch.score.score_file`), so a
  partition's output is byte for byte what the local engine writes for that file, memory stays
  bounded per task, and the results (one summary row per partition) are combined on the client.
* Output: one file per partition in the output folder, named after the input file with the output
  format's suffix (default: the input's own format), plus ``<name>.errors.csv`` beside it when some
  of its rows failed. Row numbers in an errors file count from the start of that partition.
* Raw marketing partitions: ages are computed against the latest Dt_Customer over *all* partitions
  (a first Dask pass), so the outputs equal what the local engine writes for the concatenated file.
* Cluster: ``--scheduler ADDRESS`` uses an existing cluster (its workers must see the files at the
  same paths and have this package installed; the loaded model travels with the tasks). Without
  it a LocalCluster runs in this process (threads, ``processes=False``: the work is NumPy and
  Arrow, which release the GIL, and this avoids pickling the model to worker processes).

Dask is optional and imported only here, lazily: without it the command says
``pip install -e .[dask]``. A partition that cannot be read does not stop the others; the command
then lists every failed partition and exits with code 2.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from assistant.batch.inspect import PARQUET_SUFFIXES, inspect_file
from assistant.batch.read import file_collection_year
from assistant.batch.score import score_file
from assistant.batch.summary import BatchSummary, combine_summaries
from assistant.core.errors import AssistantError, DataFileError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from distributed import LocalCluster

    from assistant.model.segmentation import SegmentationService

PARTITION_SUFFIXES = (".csv", ".tsv", ".txt", *PARQUET_SUFFIXES)
INSTALL_HINT = "pip install -e .[dask]"


class PartitionFailure(BaseModel):
    input_path: str
    error: str


class DistributedSummary(BaseModel):
    """The combined summary, one summary per scored partition, and the partitions that failed."""

    total: BatchSummary | None
    partitions: list[BatchSummary]
    failures: list[PartitionFailure]


def resolve_partitions(spec: str | Path) -> list[Path]:
    """The partition files named by a folder, a glob pattern or a single file, sorted by name."""
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in PARTITION_SUFFIXES]
        where = f"the folder {path}"
    elif path.is_file():
        files = [path]
        where = str(path)
    else:
        files = [Path(p) for p in glob.glob(text) if Path(p).is_file()]
        where = f"the pattern {text!r}"
    files = sorted(files, key=lambda p: str(p))
    if not files:
        raise DataFileError(f"no CSV or Parquet partitions found in {where}")
    return files


def _output_name(path: Path, fmt: str | None) -> str:
    kind = fmt or ("parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "csv")
    return f"{path.stem}.{kind}"


class DaskClient(Protocol):
    """What we use of a ``distributed.Client`` (whose methods are not annotated)."""

    def compute(self, collections: Any, sync: bool = False) -> Any: ...   # a frame (sync) or futures
    def close(self) -> Any: ...


class _Closable(Protocol):
    def close(self) -> Any: ...


def _import_dask() -> tuple[ModuleType, Callable[..., DaskClient], type[LocalCluster]]:
    try:
        import dask.dataframe as dd
        from distributed import Client, LocalCluster
    except ImportError:
        raise AssistantError(f"the dask engine needs dask and distributed: {INSTALL_HINT}") from None
    return dd, Client, LocalCluster


@contextmanager
def dask_client(scheduler: str | None = None, *, workers: int | None = None) -> Iterator[DaskClient]:
    """A distributed Client: on ``scheduler`` if given, else on an in-process LocalCluster."""
    _, Client, LocalCluster = _import_dask()
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise AssistantError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    threads = workers or max(1, min(4, os.cpu_count() or 1))
    cluster: _Closable = LocalCluster(processes=False, n_workers=1, threads_per_worker=threads, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


# ---------------------------------------------------------------------------- tasks (run on workers)


def _year_task(path: str) -> pd.DataFrame:
    import pandas as pd

    try:
        year = file_collection_year(inspect_file(path))
        return pd.DataFrame({"path": [path], "year": [-1 if year is None else year], "error": [""]})
    except AssistantError as exc:
        return pd.DataFrame({"path": [path], "year": [-1], "error": [f"{Path(path).name}: {exc}"]})


def _score_task(path: str, output: str, *, service: SegmentationService, fmt: str | None, chunksize: int,
                collection_year: int | None) -> pd.DataFrame:
    import pandas as pd

    try:
        summary = score_file(service, path, output, fmt=fmt, chunksize=chunksize, collection_year=collection_year)
        return pd.DataFrame({"path": [path], "summary": [summary.model_dump_json()], "error": [""]})
    except AssistantError as exc:
        return pd.DataFrame({"path": [path], "summary": [""], "error": [str(exc)]})


# ---------------------------------------------------------------------------- driver


def score_partitions(service: SegmentationService, inputs: str | Path, output_dir: str | Path, *,
                     fmt: str | None = None, chunksize: int = 200_000, scheduler: str | None = None,
                     client: DaskClient | None = None,
                     progress: Callable[[int, int], None] | None = None) -> DistributedSummary:
    """Score every partition into ``output_dir`` with Dask (see the module docstring).

    ``client``: an existing distributed Client (else one is made from ``scheduler``).
    ``progress(done, total)``: called as partitions finish.
    """
    started = time.perf_counter()
    dd, *_ = _import_dask()
    files = resolve_partitions(inputs)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise DataFileError(f"{output_dir} is a file; with --engine dask, -o names a folder")
    if fmt is not None and fmt not in ("csv", "parquet"):
        raise DataFileError(f"format={fmt!r} is not one of csv, parquet")
    names = [_output_name(p, fmt) for p in files]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise DataFileError(f"several partitions would be written to the same file: {', '.join(clashes)} "
                            f"(rename the inputs so their names differ)")
    output_dir.mkdir(parents=True, exist_ok=True)
    outputs = [str(output_dir / n) for n in names]
    paths = [str(p) for p in files]

    with (dask_client(scheduler) if client is None else _as_is(client)) as dask:
        years = dd.from_map(_year_task, paths, label="collection-year", enforce_metadata=False)
        year_frame = dask.compute(years, sync=True)
        failures = [PartitionFailure(input_path=p, error=e)
                    for p, e in zip(year_frame["path"], year_frame["error"], strict=True) if e]
        known = [int(y) for y in year_frame["year"] if int(y) >= 0]
        collection_year = max(known) if known else None
        failed_paths = {f.input_path for f in failures}
        todo = [(p, o) for p, o in zip(paths, outputs, strict=True) if p not in failed_paths]
        parts: list[BatchSummary] = []
        if todo:
            frame = dd.from_map(_score_task, [p for p, _ in todo], [o for _, o in todo], label="score-partition",
                                enforce_metadata=False, service=service, fmt=fmt, chunksize=chunksize,
                                collection_year=collection_year)
            futures = dask.compute(frame.to_delayed())
            done = 0
            for future in futures:       # in partition order; each waits only for its own task
                result = future.result()
                done += 1
                if progress is not None:
                    progress(done, len(todo))
                for path, summary, error in zip(result["path"], result["summary"], result["error"], strict=True):
                    if error:
                        failures.append(PartitionFailure(input_path=path, error=error))
                    else:
                        parts.append(BatchSummary.model_validate_json(summary))
    parts.sort(key=lambda s: s.input_path)
    failures.sort(key=lambda f: f.input_path)
    total = None
    if parts:
        errors = [p.errors_path for p in parts if p.errors_path]
        total = combine_summaries(service, parts, input_path=str(inputs), output_path=str(output_dir),
                                  errors_path=str(output_dir) if errors else None,
                                  seconds=time.perf_counter() - started)
    return DistributedSummary(total=total, partitions=parts, failures=failures)


@contextmanager
def _as_is(client: DaskClient) -> Iterator[DaskClient]:
    yield client


__all__ = ["DistributedSummary", "PartitionFailure", "dask_client", "resolve_partitions",
           "score_partitions"]

"""The Batch tab of the web app: upload a customer file, get it back scored.

``batch_tab(service, settings)`` is meant for ``assistant.adapters.app.build_app(..., extra_tabs=[batch_tab])``,
which calls it inside the open ``gr.Blocks``/``gr.Tabs``. The tab holds an upload box (CSV in either
format, or Parquet), a Score button with a progress bar, the segment counts and averages (table),
a bar chart, the scored file to download and, when some rows could not be scored, the errors file.
Scoring is :func:`assistant.batch.score.score_file`; every text shown comes from ``knowledge/batch.yaml``.

Limits and temporary files:

* An upload larger than ``settings.max_upload_bytes`` is refused with a message (the server also
  caps uploads with Gradio's ``max_file_size``).
* Each request works in its own folder under ``<system temp>/segment-assistant-batch/``. The
  uploaded file is deleted as soon as it has been scored (or refused), and the upload box is
  cleared. Request folders older than :data:`OUTPUT_TTL_SECONDS` are deleted at the start of
  each request: by then Gradio has copied the downloads into its own cache, whose copies are
  removed by Gradio's cache cleaning (``gr.Blocks(delete_cache=...)``), not here.
* The handler opens only a file inside this server's upload folder
  (:meth:`~assistant.adapters.gradio_cache.GradioCache.holds`); the web app's guard refuses any
  other path before Gradio touches it, this is the second check.
* A refusal may quote the file (its column names, a cell, its name): it is shown as text
  (:func:`~assistant.adapters.markup.escape_file_text`), never as a link, image or HTML.
* Scoring a file is heavy, so the event runs one file at a time (``concurrency_limit=1``); other
  users queue and see their position.

The core work is in :func:`score_upload`, a plain function (tested without a browser).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.adapters.gradio_cache import GradioCache
from assistant.adapters.markup import escape_file_text
from assistant.batch.score import score_file
from assistant.batch.summary import BatchSummary
from assistant.batch.texts import UiTexts, load_batch_texts
from assistant.core.errors import AssistantError
from assistant.core.fields import FIELDS_BY_NAME, format_duration
from assistant.core.settings import Settings
from assistant.model.plots import SEGMENT_COLOURS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from assistant.model.segmentation import SegmentationService

OUTPUT_TTL_SECONDS = 3600.0
WORKDIR_NAME = "segment-assistant-batch"
TAB_ID = "batch"


@dataclass(frozen=True)
class UploadResult:
    """What the tab shows after one upload."""

    message: str
    summary: BatchSummary | None = None
    scored_path: Path | None = None
    errors_path: Path | None = None


def workdir_root() -> Path:
    return Path(tempfile.gettempdir()) / WORKDIR_NAME


def process_workdir() -> Path:
    """This server process's folder of request folders: removed when the server stops
    (``remove_process_workdir``), so no scored customer file outlives the server that made it. A
    folder left by a killed server goes at the first upload an hour later (``cleanup_old``)."""
    return workdir_root() / f"server-{os.getpid()}"


def remove_process_workdir() -> None:
    shutil.rmtree(process_workdir(), ignore_errors=True)


def cleanup_old(root: Path, *, max_age: float = OUTPUT_TTL_SECONDS, now: float | None = None) -> int:
    """Delete request folders under ``root`` older than ``max_age`` seconds; return how many."""
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for child in root.iterdir():
        try:
            if child.is_dir() and now - child.stat().st_mtime > max_age:
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def _safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")
    return stem[:60] or "customers"


def score_upload(service: SegmentationService, settings: Settings, texts: UiTexts, upload: str | Path | None, *,
                 root: Path | None = None, progress: Callable[[int, float], None] | None = None) -> UploadResult:
    """Score one uploaded file into a fresh request folder; the upload is deleted afterwards.

    Domain errors (unreadable file, missing columns...) become the message, here and only here.
    """
    if upload is None or not str(upload):
        return UploadResult(texts.no_file)
    path = Path(upload)
    root = root or workdir_root()
    try:
        size = path.stat().st_size
    except OSError:
        return UploadResult(texts.no_file)
    try:
        if size > settings.max_upload_bytes:
            return UploadResult(texts.too_large.format(size_mb=size / 1_048_576,
                                                       limit_mb=settings.max_upload_bytes / 1_048_576))
        root.mkdir(parents=True, exist_ok=True)
        cleanup_old(root)
        request_dir = Path(tempfile.mkdtemp(prefix="req-", dir=root))
        stem = _safe_stem(path.name)
        scored = request_dir / f"{stem}-scored.csv"
        errors = request_dir / f"{stem}-errors.csv"
        try:
            summary = score_file(service, path, scored, fmt="csv", errors_path=errors, progress=progress)
        except AssistantError as exc:
            shutil.rmtree(request_dir, ignore_errors=True)
            return UploadResult(texts.failed.format(error=escape_file_text(str(exc))))   # it may quote the file
        lines = [texts.done.format(rows_scored=summary.rows_scored, rows_read=summary.rows_read,
                                   seconds=summary.seconds, duration=format_duration(summary.seconds))]
        lines.append(texts.errors.format(rows_failed=summary.rows_failed) if summary.rows_failed else texts.no_errors)
        if summary.expected_responders is not None:
            lines.append(texts.expected.format(**summary.expected_responders.model_dump(), rows=summary.rows_scored))
        return UploadResult("\n\n".join(lines), summary, scored,
                            Path(summary.errors_path) if summary.errors_path else None)
    finally:
        path.unlink(missing_ok=True)


def summary_table(summary: BatchSummary, texts: UiTexts) -> pd.DataFrame:
    """Counts, shares and per-field averages per segment, formatted for people."""
    import pandas as pd

    rows = []
    for seg in summary.segments:
        row: dict[str, Any] = {texts.table_segment: seg.segment_name, texts.table_customers: f"{seg.count:,}",
                               texts.table_share: f"{seg.share:.1%}"}
        for name, value in seg.averages.items():
            spec = FIELDS_BY_NAME[name]
            row[spec.label] = spec.format(value)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_figure(summary: BatchSummary, texts: UiTexts):
    """A bar chart of customers per segment (plotly)."""
    import plotly.graph_objects as go

    names = [s.segment_name for s in summary.segments]
    counts = [s.count for s in summary.segments]
    colours = [SEGMENT_COLOURS.get(s.segment_key, "#4C78A8") for s in summary.segments]
    fig = go.Figure(go.Bar(x=names, y=counts, marker_color=colours, text=[f"{c:,}" for c in counts],
                           textposition="auto", hovertemplate="%{x}: %{y:,}<extra></extra>"))
    fig.update_layout(title=texts.chart_title, xaxis_title=texts.chart_x, yaxis_title=texts.chart_y,
                      margin={"l": 40, "r": 20, "t": 50, "b": 40}, height=360, template="plotly_white")
    # whole customers on the axis: a small file must not get ticks at 0.5, 1.5 ...
    fig.update_yaxes(rangemode="tozero", tickformat=",d", **({"dtick": 1} if max(counts, default=0) <= 10 else {}))
    return fig


def batch_tab(service: SegmentationService, settings: Settings) -> None:
    """Add the Batch tab to the current ``gr.Blocks`` (inside its ``gr.Tabs``)."""
    import gradio as gr

    texts = load_batch_texts(settings.knowledge_dir).ui
    cache = GradioCache.in_use()                 # where Gradio puts this tab's uploads

    def on_score(upload, progress=gr.Progress()):  # noqa: B008 - how Gradio hands a handler its progress bar
        def report(rows: int, fraction: float) -> None:
            progress(fraction, desc=texts.progress.format(rows=rows))

        cleanup_old(workdir_root())         # what servers that were killed left, after the TTL
        if upload is not None and not cache.holds(str(upload)):
            upload = None                   # not an upload to this server: never opened (nor deleted)
        result = score_upload(service, settings, texts, upload, root=process_workdir(), progress=report)
        if result.summary is None:
            return (result.message, gr.update(value=None, visible=False), gr.update(value=None, visible=False),
                    gr.update(value=None, visible=False), gr.update(value=None, visible=False), None)
        return (result.message,
                gr.update(value=summary_table(result.summary, texts), visible=True),
                gr.update(value=summary_figure(result.summary, texts), visible=True),
                gr.update(value=str(result.scored_path), visible=True),
                gr.update(value=str(result.errors_path) if result.errors_path else None,
                          visible=result.errors_path is not None),
                None)

    with gr.Tab(texts.tab, id=TAB_ID, elem_id="batch-tab"):
        gr.Markdown(texts.intro, elem_id="batch-intro")
        upload = gr.File(label=texts.upload_label, file_types=[".csv", ".tsv", ".txt", ".parquet"],
                         file_count="single", type="filepath", elem_id="batch-upload")
        run = gr.Button(texts.button, variant="primary", elem_id="batch-run")
        status = gr.Markdown(elem_id="batch-status")
        table = gr.Dataframe(interactive=False, visible=False, wrap=True, elem_id="batch-table")
        chart = gr.Plot(visible=False, show_label=False, elem_id="batch-chart")
        # hidden until there is a scored file: an empty download box reads as "something is missing"
        scored = gr.File(label=texts.scored_label, interactive=False, visible=False, elem_id="batch-scored")
        errors = gr.File(label=texts.errors_label, interactive=False, visible=False, elem_id="batch-errors")
        run.click(on_score, inputs=[upload], outputs=[status, table, chart, scored, errors, upload],
                  api_name="score_file", concurrency_limit=1, concurrency_id="batch-score")


__all__ = ["OUTPUT_TTL_SECONDS", "UploadResult", "batch_tab", "cleanup_old", "process_workdir",
           "remove_process_workdir", "score_upload", "summary_figure", "summary_table",
           "workdir_root"]

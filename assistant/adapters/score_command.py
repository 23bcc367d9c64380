"""The ``segment-assistant score`` command: progress on stderr, the summary, exit codes."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.core.errors import AssistantError, DataFileError
from assistant.core.fields import (
    FIELDS_BY_NAME,
)

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.segmentation import SegmentationService
from assistant.batch.score import score_file
from assistant.batch.summary import BatchSummary
from assistant.batch.texts import CliTexts, load_batch_texts


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
    from assistant.core.fields import format_duration

    lines = [texts.scored.format(rows_scored=summary.rows_scored, rows_read=summary.rows_read,
                                 seconds=summary.seconds, duration=format_duration(summary.seconds),
                                 output=summary.output_path),
             texts.segment_header]
    for seg in summary.segments:
        lines.append(texts.segment_line.format(name=seg.segment_name, key=seg.segment_key, count=seg.count,
                                               share=seg.share))
        if seg.count:
            items = [texts.average_item.format(label=f.label, label_lower=f.label.lower(), short=f.short,
                                               short_lower=f.short_lower, value=f.say(v))
                     for f, v in ((FIELDS_BY_NAME[n], v) for n, v in seg.averages.items())]
            lines.append(texts.averages_line.format(averages=", ".join(items)))
    if summary.rows_failed:
        lines.append(texts.errors.format(rows_failed=summary.rows_failed, errors_path=summary.errors_path))
    else:
        lines.append(texts.no_errors)
    expected = summary.expected_responders
    if expected is not None:
        lines.append(texts.expected.format(**expected.model_dump(), rows=summary.rows_scored))
    return "\n".join(lines)


def run_score(args, *, service: SegmentationService) -> int:
    """``segment-assistant score INPUT -o OUTPUT [--format] [--chunksize] [--engine] [--scheduler]``."""
    texts = load_batch_texts(getattr(args, "knowledge_dir", None)).cli
    if args.chunksize < 1:
        raise AssistantError(f"--chunksize={args.chunksize} is below the minimum of 1")
    top, segment = getattr(args, "top", None), getattr(args, "segment", None)
    if segment is not None and top is None:
        raise AssistantError("--segment needs --top N")
    if top is not None and top < 1:
        raise AssistantError(f"--top {top} is below the minimum of 1")
    if segment is not None and segment not in service.cluster_keys:
        raise AssistantError(f"--segment {segment!r} is not a segment key (one of {', '.join(service.cluster_keys)})")
    if top is not None and args.engine == "dask":
        raise AssistantError("--top needs --engine local")
    if args.engine == "dask":
        return _run_dask(args, service=service, texts=texts)
    if args.scheduler:
        raise AssistantError("--scheduler needs --engine dask")
    progress = _StderrProgress(texts.progress, input=Path(args.input).name)
    try:
        summary = score_file(service, args.input, args.output, fmt=args.format, chunksize=args.chunksize,
                             progress=progress)
    finally:
        progress.close()
    print(format_summary(summary, texts))
    if top is not None:
        from assistant.batch.score import default_top_path, rank_contacts

        output = Path(args.output)
        chosen = getattr(args, "top_output", None)
        top_path = Path(chosen) if chosen else default_top_path(output, top, segment)
        written = rank_contacts(output, top_path, top, segment=segment)
        print(texts.top_list.format(rows=written, output=top_path))
    return 0


def _run_dask(args, *, service: SegmentationService, texts: CliTexts) -> int:
    """The ``--engine dask`` branch of ``segment-assistant score``."""
    progress = _StderrProgress(texts.partition_progress, input=str(args.input))

    def on_partition(done: int, total: int) -> None:
        progress.show(final=done >= total, done=done, total=total)

    from assistant.batch.distributed import score_partitions

    try:
        result = score_partitions(service, args.input, args.output, fmt=args.format, chunksize=args.chunksize,
                                  scheduler=args.scheduler, progress=on_partition)
    finally:
        progress.close()
    if result.total is not None:
        print(format_summary(result.total, texts))
        print(texts.partitions.format(partitions=len(result.partitions), output=args.output))
        for part in result.partitions:
            if part.errors_path:
                print(f"  {part.errors_path}")
    if result.failures:
        for failure in result.failures:
            print(f"{failure.input_path}: {failure.error}", file=sys.stderr)
        raise DataFileError(f"{len(result.failures)} of {len(result.failures) + len(result.partitions)} "
                            f"partition(s) could not be scored (listed above)")
    return 0

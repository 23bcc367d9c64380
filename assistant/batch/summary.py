"""What a batch run reports: rows read, scored and failed, and per-segment totals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from assistant.batch.inspect import FileType, Layout
from assistant.core.errors import DataFileError
from assistant.core.fields import FIELD_NAMES

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.segmentation import SegmentationService


class SegmentTotals(BaseModel):
    """One segment's share of a scored file."""

    segment_key: str
    segment_name: str
    count: int
    share: float = Field(description="count / rows scored (0 when nothing was scored)")
    averages: dict[str, float | None] = Field(description="mean of each field over the segment's scored rows")


class ExpectedResponders(BaseModel):
    """How many of a scored file's customers should accept the next campaign, by the calibrated
    probabilities: the sum of the probabilities of the top 10%, the top 20% and all scored rows."""

    top10: float
    top20: float
    all: float
    top10_rows: int
    top20_rows: int

    @classmethod
    def of(cls, probabilities: np.ndarray) -> ExpectedResponders:
        p = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
        n10, n20 = int(np.ceil(0.1 * len(p))), int(np.ceil(0.2 * len(p)))
        return cls(top10=float(p[:n10].sum()), top20=float(p[:n20].sum()), all=float(p.sum()),
                   top10_rows=n10, top20_rows=n20)


class BatchSummary(BaseModel):
    """What a batch run did. ``rows_read == rows_scored + rows_failed``."""

    input_path: str
    output_path: str
    errors_path: str | None = Field(description="the errors file, or None when every row was scored")
    input_format: Layout
    file_type: FileType
    output_format: FileType
    collection_year: int | None = Field(description="year ages were computed against (raw files only)")
    rows_read: int
    rows_scored: int
    rows_failed: int
    segments: list[SegmentTotals]
    seconds: float
    expected_responders: ExpectedResponders | None = Field(
        default=None, description="responders to expect in the top 10%, top 20% and all scored rows "
                                  "(None without a response model)")

    @property
    def counts(self) -> dict[str, int]:
        return {s.segment_key: s.count for s in self.segments}

    @property
    def averages(self) -> dict[str, dict[str, float | None]]:
        return {s.segment_key: dict(s.averages) for s in self.segments}


def _totals(service: SegmentationService, counts: np.ndarray, sums: np.ndarray) -> list[SegmentTotals]:
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


def combine_summaries(service: SegmentationService, parts: list[BatchSummary], *, input_path: str,
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

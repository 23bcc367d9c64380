"""The batch texts (``knowledge/batch.yaml``): the CLI summary and the Batch tab's messages."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from assistant.core.paths import default_knowledge_dir
from assistant.core.texts import Placeholders, StrictModel, TextModel, validate_yaml


class _Texts(TextModel):
    """The batch code fills in numbers, which the templates may format (``{rows:,}``)."""

    format_specs: ClassVar[bool] = True


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
    top_list: str = Field(min_length=1)
    expected: str = Field(min_length=1)

    placeholders: ClassVar[Placeholders] = {
        "top_list": {"rows", "output"},
        "expected": {"top10", "top10_rows", "top20", "top20_rows", "all", "rows"},
        "progress": {"input", "rows", "percent"},
        "partition_progress": {"input", "done", "total"},
        "scored": {"rows_scored", "rows_read", "seconds", "duration", "output"},
        "segment_line": {"name", "key", "count", "share"},
        "averages_line": {"averages"},
        "average_item": {"label", "label_lower", "short", "short_lower", "value"},
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
    expected: str = Field(min_length=1)

    placeholders: ClassVar[Placeholders] = {
        "expected": {"top10", "top10_rows", "top20", "top20_rows", "all", "rows"},
        "progress": {"rows"},
        "too_large": {"size_mb", "limit_mb"},
        "failed": {"error"},
        "done": {"rows_scored", "rows_read", "seconds", "duration"},
        "errors": {"rows_failed"},
    }


class BatchTexts(StrictModel):
    cli: CliTexts
    ui: UiTexts


def load_batch_texts(knowledge_dir: str | Path | None = None) -> BatchTexts:
    """Load and validate ``knowledge/batch.yaml`` (KnowledgeBaseError naming file and field)."""
    directory = Path(knowledge_dir) if knowledge_dir is not None else default_knowledge_dir()
    return validate_yaml(directory / "batch.yaml", BatchTexts)


# ============================================================================ summary

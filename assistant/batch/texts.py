"""The batch texts (``knowledge/batch.yaml``): the CLI summary and the Batch tab's messages."""

from __future__ import annotations

import string
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.core.knowledge import default_knowledge_dir, validate_yaml

if TYPE_CHECKING:  # pragma: no cover
    pass


def _placeholders(template: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


class _Texts(BaseModel):
    """Checks that each template uses only the placeholders the code fills in."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _allowed: ClassVar[dict[str, set[str]]] = {}

    @model_validator(mode="after")
    def _check_placeholders(self) -> _Texts:
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

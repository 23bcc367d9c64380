"""The dialogue texts (``knowledge/dialogue.yaml``), validated at load."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from assistant.core.fields import FIELD_NAMES, FieldSpec
from assistant.core.knowledge import SEGMENT_KEYS
from assistant.core.paths import default_knowledge_dir
from assistant.core.texts import Placeholders, StrictModel, Template, TextModel, validate_yaml

DIALOGUE_FILE = "dialogue.yaml"
DEFAULT_MAX_MESSAGE_CHARS = 10_000
QUOTE_CHARS = 80          # how much of a message we quote back when we did not understand it
EXPLAIN_AFTER_FAILURES = 2

# ============================================================================ the texts

_FIELD_PLACEHOLDERS = {"label", "unit", "example", "example_raw", "minimum", "maximum"}
_NAMES = {"label", "label_lower", "short", "short_lower"}   # a field's names (see _names_of)
_RANGE = {"minimum", "maximum"}


class ReplyTexts(TextModel):
    """The assistant's replies (knowledge/dialogue.yaml: replies)."""

    noted: Template
    value: Template
    corrected: Template
    rejected: Template
    explain: Template
    kept: Template
    complete: Template
    after_result: Template
    segment_same: Template
    segment_changed: Template
    fallback: Template
    fallback_collecting: Template
    fallback_complete: Template
    empty: Template
    too_long: Template
    resume: Template
    help: Template
    hello: Template
    thanks: Template
    reset: Template
    new_customer: Template
    cancel: Template
    cancel_nothing: Template
    summary: Template
    summary_complete: Template
    summary_empty: Template
    summary_line: Template
    why: Template
    why_incomplete: Template
    result_incomplete: Template
    what_if_incomplete: Template
    what_if_nothing: Template
    what_if_rejected: Template
    what_if_same: Template
    what_if_changed: Template
    what_if_footer: Template
    what_if_response: Template
    target: Template
    target_line: Template
    target_none: Template
    why_chance: Template
    why_chance_incomplete: Template
    change: Template
    list_and: Template
    versus: Template
    list_segments: Template
    segment_line: Template
    sizes: Template
    about: Template
    bullet: Template
    strategy: Template
    strategy_which: Template
    compare: Template
    compare_line: Template
    compare_which: Template
    field_help: Template
    birth_year: Template
    unsure_mark: Template
    fuzzy_read: Template
    scaled_read: Template
    confirmed: Template
    dropped: Template
    table_rows: Template

    placeholders: ClassVar[Placeholders] = {
        "noted": {"values"},
        "value": {*_NAMES, "value"},
        "corrected": {*_NAMES, "old", "new"},
        "rejected": {"error", "problem", *_NAMES, *_RANGE},
        "explain": {*_NAMES, "unit", "description", "example", *_RANGE},
        "kept": {*_NAMES, "value"},
        "segment_same": {"segment_name"},
        "segment_changed": {"old_segment", "new_segment"},
        "fallback": {"quote"},
        "too_long": {"limit"},
        "resume": {"question"},
        "help": {"fields"},
        "cancel": {"values"},
        "summary": {"known", "missing"},
        "summary_complete": {"known", "segment_name"},
        "summary_line": {*_NAMES, "value"},
        "why": {"segment_name", "reasons", "confidence"},
        "what_if_rejected": {"error", "problem", *_NAMES, *_RANGE},
        "what_if_same": {"changes", "segment_name", "confidence"},
        "what_if_changed": {"changes", "old_segment", "new_segment", "confidence"},
        "what_if_response": {"old", "new"},
        "target": {"ranking", "overall_rate"},
        "target_line": {"segment_name", "rate", "lift"},
        "why_chance": {"sentence"},
        "change": {*_NAMES, "old", "new"},
        "list_and": {"items", "last"},
        "versus": {"left", "right"},
        "list_segments": {"count", "segments"},
        "segment_line": {"name", "key", "summary"},
        "sizes": {"total", "table"},
        "about": {"name", "key", "description", "characteristics", "size", "share", "headline"},
        "bullet": {"text"},
        "strategy": {"name", "headline", "tactics", "channels", "kpi"},
        "strategy_which": {"names"},
        "compare": {"names", "table", "summaries"},
        "compare_line": {"name", "summary"},
        "compare_which": {"names"},
        "field_help": {*_NAMES, "unit", "description", "example", *_RANGE},
        "birth_year": {"question"},
        "fuzzy_read": {"word", *_NAMES, "value"},
        "scaled_read": {"rate", *_NAMES, "value"},
        "dropped": {"values"},
        "table_rows": {"rows"},
    }


class ResultTexts(TextModel):
    """The building blocks of a rendered result (dialogue.yaml: result)."""

    title: Template
    summary: Template
    column_field: Template
    column_customer: Template
    column_average: Template
    column_segment: Template
    column_size: Template
    column_share: Template
    confidence: Template
    reasons_title: Template
    strategy_title: Template
    evidence_title: Template
    channels: Template
    kpi: Template
    warning: Template
    response: Template
    response_likely: Template
    response_drivers: Template
    response_up: Template
    response_down: Template
    response_model_seven_fields: Template
    response_model_full_record: Template

    placeholders: ClassVar[Placeholders] = {
        "response": {"one_in", "probability", "segment_rate", "segment_name", "overall_rate", "model", "auc"},
        "response_likely": {"probability", "segment_rate", "segment_name", "overall_rate", "model", "auc"},
        "response_drivers": {"up", "down"},
        "response_up": {"labels"},
        "response_down": {"labels"},
        "title": {"segment_name"},
        "summary": {"summary"},
        "column_average": {"segment_name"},
        "confidence": {"text"},
        "strategy_title": {"headline"},
        "channels": {"channels"},
        "kpi": {"kpi"},
        "warning": {"warning"},
    }


_Phrases = list[str]


def _clean_phrases(value: list[str]) -> list[str]:
    out = []
    for phrase in value:
        words = str(phrase).lower().split()
        if not words:
            raise ValueError("a trigger phrase is empty")
        out.append(" ".join(words))
    return out


class Triggers(StrictModel):
    """Phrases (lower case, whole words) that trigger each command or question."""

    help: _Phrases = Field(min_length=1)
    hello: _Phrases = Field(min_length=1)
    thanks: _Phrases = Field(min_length=1)
    reset: _Phrases = Field(min_length=1)
    cancel: _Phrases = Field(min_length=1)
    new_customer: _Phrases = Field(min_length=1)
    summary: _Phrases = Field(min_length=1)
    result: _Phrases = Field(min_length=1)
    why: _Phrases = Field(min_length=1)
    what_if: _Phrases = Field(min_length=1)
    what_about: _Phrases = Field(min_length=1)
    compare: _Phrases = Field(min_length=1)
    strategy: _Phrases = Field(min_length=1)
    sizes: _Phrases = Field(min_length=1)
    list: _Phrases = Field(min_length=1)
    about: _Phrases = Field(min_length=1)
    field_help: _Phrases = Field(min_length=1)
    all: _Phrases = Field(min_length=1)
    correction: _Phrases = Field(min_length=1)
    birth_year: _Phrases = Field(min_length=1)
    confirm_yes: _Phrases = Field(min_length=1)
    confirm_no: _Phrases = Field(min_length=1)
    target: _Phrases = Field(min_length=1)
    why_chance: _Phrases = Field(min_length=1)

    @field_validator("*")
    @classmethod
    def _clean(cls, value: _Phrases) -> _Phrases:
        return _clean_phrases(value)


TRIGGERS = tuple(Triggers.model_fields)


class TerminalTexts(TextModel):
    prompt: str
    goodbye: str = Field(min_length=1)
    quit: _Phrases = Field(min_length=1)

    @field_validator("quit")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return _clean_phrases(value)


class DialogueTexts(TextModel):
    """The validated contents of ``knowledge/dialogue.yaml``."""

    greeting: Template
    questions: dict[str, str]
    replies: ReplyTexts
    result: ResultTexts
    triggers: Triggers
    fillers: list[str]
    segment_aliases: dict[str, list[str]]
    terminal: TerminalTexts

    placeholders: ClassVar[Placeholders] = {"greeting": {"question"}, "questions": _FIELD_PLACEHOLDERS}

    @field_validator("questions")
    @classmethod
    def _every_field_asked(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [n for n in FIELD_NAMES if not str(value.get(n) or "").strip()]
        if missing:
            raise ValueError(f"no question for field(s) {', '.join(missing)}")
        unknown = sorted(set(value) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"question(s) for unknown field(s) {', '.join(unknown)}; fields: {', '.join(FIELD_NAMES)}")
        return {n: value[n] for n in FIELD_NAMES}

    @field_validator("fillers")
    @classmethod
    def _fillers(cls, value: list[str]) -> list[str]:
        return [w.lower() for w in value]

    @field_validator("segment_aliases")
    @classmethod
    def _aliases(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(SEGMENT_KEYS))
        if unknown:
            raise ValueError(f"aliases for unknown segment(s) {', '.join(unknown)}; "
                             f"segments: {', '.join(SEGMENT_KEYS)}")
        return {key: _clean_phrases(aliases) for key, aliases in value.items()}

    @model_validator(mode="after")
    def _alias_unique(self) -> DialogueTexts:
        seen: dict[str, str] = {}
        for key, aliases in self.segment_aliases.items():
            for alias in aliases:
                if seen.setdefault(alias, key) != key:
                    raise ValueError(f"segment alias {alias!r} is given for both {seen[alias]} and {key}")
        return self


def load_dialogue_texts(knowledge_dir: str | Path | None = None) -> DialogueTexts:
    """Load and validate ``dialogue.yaml`` (KnowledgeBaseError names the file and the problem)."""
    directory = Path(knowledge_dir) if knowledge_dir is not None else default_knowledge_dir()
    return validate_yaml(directory / DIALOGUE_FILE, DialogueTexts)


# ============================================================================ state and turns


def _names_of(f: FieldSpec) -> dict[str, str]:
    """A field's names for a template: ``label`` (Days since last purchase), ``short`` (Last purchase)
    and their lower-case forms ``label_lower`` and ``short_lower``."""
    return {"label": f.label, "label_lower": f.label.lower(), "short": f.short, "short_lower": f.short_lower}


def _range_of(f: FieldSpec) -> dict[str, str]:
    """The allowed range for "between {minimum} and {maximum}": ``18`` and ``110 years``, ``$0`` and ``$10,000,000``."""
    return {"minimum": f.number(f.minimum), "maximum": f.amount(f.maximum)}


def _raw(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)

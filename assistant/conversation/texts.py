"""The dialogue texts (``knowledge/dialogue.yaml``), validated at load."""

from __future__ import annotations

import string
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from assistant.core.fields import FIELD_NAMES, FieldSpec
from assistant.core.knowledge import SEGMENT_KEYS, default_knowledge_dir, validate_yaml

DIALOGUE_FILE = "dialogue.yaml"
DEFAULT_MAX_MESSAGE_CHARS = 10_000
QUOTE_CHARS = 80          # how much of a message we quote back when we did not understand it
EXPLAIN_AFTER_FAILURES = 2

# ============================================================================ the texts

_FIELD_PLACEHOLDERS = {"label", "unit", "example", "example_raw", "minimum", "maximum"}


def _template_problem(where: str, template: str, allowed: set[str]) -> str | None:
    """Why ``template`` cannot be filled with ``allowed`` keyword placeholders (None if it can)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"{where} is not a valid template ({exc}; write a literal brace as {{{{ or }}}})"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier():
            return f"{where} has a placeholder {{{name}}}; use a plain name, one of {sorted(allowed)}"
        if spec or conversion:
            return f"{where}: placeholder {{{name}}} must not have a format spec or conversion"
        if name not in allowed:
            return f"{where} uses unknown placeholder {{{name}}}; allowed: {sorted(allowed)}"
    return None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Templates(_Strict):
    """Every field is a template; ``_allowed`` lists the placeholders each may use."""

    _allowed: ClassVar[dict[str, set[str]]] = {}

    @model_validator(mode="after")
    def _check_placeholders(self) -> _Templates:
        problems = [p for name, allowed in self._allowed.items()
                    if (p := _template_problem(name, getattr(self, name), allowed))]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _templates(name: str, doc: str, allowed: dict[str, set[str]]) -> type[_Templates]:
    """A model with one required, non-empty template per key of ``allowed``."""
    base = type(f"_{name}Base", (_Templates,), {"_allowed": allowed, "__module__": __name__})
    fields = {key: (str, Field(min_length=1)) for key in allowed}
    return create_model(name, __base__=base, __doc__=doc, __module__=__name__, **fields)


_NAMES = {"label", "label_lower", "short", "short_lower"}   # a field's names (see _names_of)
_RANGE = {"minimum", "maximum"}

ReplyTexts = _templates("ReplyTexts", "The assistant's replies (knowledge/dialogue.yaml: replies).", {
    "noted": {"values"},
    "value": {*_NAMES, "value"},
    "corrected": {*_NAMES, "old", "new"},
    "rejected": {"error", "problem", *_NAMES, *_RANGE},
    "explain": {*_NAMES, "unit", "description", "example", *_RANGE},
    "kept": {*_NAMES, "value"},
    "complete": set(),
    "after_result": set(),
    "segment_same": {"segment_name"},
    "segment_changed": {"old_segment", "new_segment"},
    "fallback": {"quote"},
    "fallback_collecting": set(),
    "fallback_complete": set(),
    "empty": set(),
    "too_long": {"limit"},
    "resume": {"question"},
    "help": {"fields"},
    "hello": set(),
    "thanks": set(),
    "reset": set(),
    "new_customer": set(),
    "cancel": {"values"},
    "cancel_nothing": set(),
    "summary": {"known", "missing"},
    "summary_complete": {"known", "segment_name"},
    "summary_empty": set(),
    "summary_line": {*_NAMES, "value"},
    "why": {"segment_name", "reasons", "confidence"},
    "why_incomplete": set(),
    "result_incomplete": set(),
    "what_if_incomplete": set(),
    "what_if_nothing": set(),
    "what_if_rejected": {"error", "problem", *_NAMES, *_RANGE},
    "what_if_same": {"changes", "segment_name", "confidence"},
    "what_if_changed": {"changes", "old_segment", "new_segment", "confidence"},
    "what_if_footer": set(),
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
})

ResultTexts = _templates("ResultTexts", "The building blocks of a rendered result (dialogue.yaml: result).", {
    "title": {"segment_name"},
    "summary": {"summary"},
    "column_field": set(),
    "column_customer": set(),
    "column_average": {"segment_name"},
    "column_segment": set(),
    "column_size": set(),
    "column_share": set(),
    "confidence": {"text"},
    "reasons_title": set(),
    "strategy_title": {"headline"},
    "evidence_title": set(),
    "channels": {"channels"},
    "kpi": {"kpi"},
    "warning": {"warning"},
})

_Phrases = list[str]
TRIGGERS = ("help", "hello", "thanks", "reset", "cancel", "new_customer", "summary", "result", "why", "what_if",
            "what_about", "compare", "strategy", "sizes", "list", "about", "field_help", "all", "correction",
            "birth_year")


def _clean_phrases(value: list[str]) -> list[str]:
    out = []
    for phrase in value:
        words = str(phrase).lower().split()
        if not words:
            raise ValueError("a trigger phrase is empty")
        out.append(" ".join(words))
    return out


class Triggers(_Strict):
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

    @field_validator(*TRIGGERS)
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        return _clean_phrases(value)


class TerminalTexts(_Strict):
    prompt: str
    goodbye: str = Field(min_length=1)
    quit: _Phrases = Field(min_length=1)

    @field_validator("quit")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return _clean_phrases(value)


class DialogueTexts(_Strict):
    """The validated contents of ``knowledge/dialogue.yaml``."""

    greeting: str = Field(min_length=1)
    questions: dict[str, str]
    replies: ReplyTexts
    result: ResultTexts
    triggers: Triggers
    fillers: list[str]
    segment_aliases: dict[str, list[str]]
    terminal: TerminalTexts

    @field_validator("questions")
    @classmethod
    def _every_field_asked(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [n for n in FIELD_NAMES if not str(value.get(n) or "").strip()]
        if missing:
            raise ValueError(f"no question for field(s) {', '.join(missing)}")
        unknown = sorted(set(value) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"question(s) for unknown field(s) {', '.join(unknown)}; fields: {', '.join(FIELD_NAMES)}")
        problems = [p for n in FIELD_NAMES if (p := _template_problem(f"questions.{n}", value[n], _FIELD_PLACEHOLDERS))]
        if problems:
            raise ValueError("; ".join(problems))
        return {n: value[n] for n in FIELD_NAMES}

    @field_validator("greeting")
    @classmethod
    def _greeting(cls, value: str) -> str:
        problem = _template_problem("greeting", value, {"question"})
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("fillers")
    @classmethod
    def _fillers(cls, value: list[str]) -> list[str]:
        return [w.lower() for w in value]

    @field_validator("segment_aliases")
    @classmethod
    def _aliases(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - set(SEGMENT_KEYS))
        if unknown:
            raise ValueError(f"aliases for unknown segment(s) {', '.join(unknown)}; segments: {', '.join(SEGMENT_KEYS)}")
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

"""The one base for every text model loaded from ``knowledge/*.yaml``.

Every user-facing sentence is a template in a YAML file, loaded into a subclass of :class:`TextModel`.
A subclass states which ``{placeholders}`` each field may use in its ``placeholders`` class variable;
any field it does not list may use none. The templates are checked once, at load, by one set of rules
(:func:`template_problem`), and every problem has one shape, naming the key, the placeholder and the
template; :func:`validate_yaml` adds the file::

    app.yaml: form: field_label uses unknown placeholder {colour}; allowed: {label}, {unit}; in '{label} ({colour})'

The rules, for every ``str`` field, every item of a ``list[str]`` field and every value of a
``dict[str, str]`` field (nested models check themselves):

* the text is a valid ``str.format`` template (a literal brace is written ``{{`` or ``}}``);
* each placeholder is a plain name (no ``{}``, ``{0}``, ``{a.b}`` or ``{a[0]}``) the code fills in;
* no conversion (``{name!r}``); a format spec (``{rows:,}``) only where the subclass fills in numbers
  and says so with ``format_specs = True`` (the spec must then format a number or a text).

Models without templates (phrases, labels) subclass :class:`StrictModel`: unknown keys are refused and
the loaded texts are immutable.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assistant.core.errors import KnowledgeBaseError

Placeholders = Mapping[str, AbstractSet[str]]
"""For each field of a text model, the placeholders its template may use."""

Template = Annotated[str, Field(min_length=1)]
"""A field that must not be empty (the templates of a :class:`TextModel` are checked in any case)."""

_Model = TypeVar("_Model", bound=BaseModel)


class StrictModel(BaseModel):
    """A model of YAML contents: unknown keys are an error, the loaded value is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _allowed_text(allowed: AbstractSet[str]) -> str:
    return ", ".join(f"{{{name}}}" for name in sorted(allowed)) or "none"


def template_problem(where: str, template: str, allowed: AbstractSet[str], *, format_specs: bool = False) -> str | None:
    """Why ``template`` (the value of key ``where``) cannot be filled with ``allowed``, or None if it can."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"{where} is not a valid template ({exc}; write a literal brace as {{{{ or }}}}); in {template!r}"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name:
            problem = f"has a placeholder {{}} without a name; allowed: {_allowed_text(allowed)}"
        elif not name.isidentifier():
            problem = f"has a placeholder {{{name}}} that is not a plain name; allowed: {_allowed_text(allowed)}"
        elif name not in allowed:
            problem = f"uses unknown placeholder {{{name}}}; allowed: {_allowed_text(allowed)}"
        elif conversion:
            problem = f"has placeholder {{{name}}}, which must not have a conversion (!{conversion})"
        elif spec and not format_specs:
            problem = f"has placeholder {{{name}}}, which must not have a format spec (the value comes formatted)"
        elif spec and not _spec_formats_something(spec):
            problem = f"has placeholder {{{name}}} with a format spec {spec!r} that formats neither a number nor a text"
        else:
            continue
        return f"{where} {problem}; in {template!r}"
    return None


def _spec_formats_something(spec: str) -> bool:
    for sample in (1234.5, ""):
        try:
            format(sample, spec)
        except ValueError:
            continue
        return True
    return False


class TextModel(StrictModel):
    """A block of templates; ``placeholders`` maps each field to the placeholders it may use.

    ``format_specs`` is True where the code fills in numbers and the templates format them.
    """

    placeholders: ClassVar[Placeholders] = {}
    format_specs: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        unknown = sorted(set(cls.placeholders) - set(cls.model_fields))
        if unknown:  # a typo in the code, not in the YAML
            raise TypeError(f"{cls.__name__}.placeholders names no field: {', '.join(unknown)}")

    def _templates(self) -> Iterator[tuple[str, str, str]]:
        """(field, key, template) for every template of this block (not of nested blocks)."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, str):
                yield name, name, value
            elif isinstance(value, list):
                yield from ((name, f"{name}[{i}]", item) for i, item in enumerate(value) if isinstance(item, str))
            elif isinstance(value, dict):
                yield from ((name, f"{name}.{key}", item) for key, item in value.items() if isinstance(item, str))

    @model_validator(mode="after")
    def _check_templates(self) -> TextModel:
        allowed = type(self).placeholders
        specs = type(self).format_specs
        problems = [problem for name, where, template in self._templates()
                    if (problem := template_problem(where, template, allowed.get(name, frozenset()),
                                                    format_specs=specs))]
        if problems:
            raise ValueError("; ".join(problems))
        return self


# ============================================================================ loading


def read_yaml(path: Path) -> object:
    """The parsed contents of a YAML file (KnowledgeBaseError if it is missing or not YAML)."""
    if not path.is_file():
        raise KnowledgeBaseError(f"{path} is missing (it ships with the project; restore it from git)")
    try:
        data: object = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeBaseError(f"{path} is not valid YAML: {exc}") from None
    return data


def _where(loc: tuple[int | str, ...], data: object) -> str:
    """Where an error is, as a person would say it: ``segment 'vip_customers', field name``.

    An entry of a list of mappings is named by its ``key`` (or its position) rather than its index.
    """
    if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(data, dict):
        entries = data.get(loc[0])
        entry = entries[loc[1]] if isinstance(entries, list) and 0 <= loc[1] < len(entries) else None
        if isinstance(entry, dict):
            noun = str(loc[0]).removesuffix("s")
            key = entry.get("key", f"#{loc[1] + 1}")
            rest = ".".join(str(p) for p in loc[2:])
            return f"{noun} {key!r}, field {rest}" if rest else f"{noun} {key!r}"
    return ".".join(str(p) for p in loc)


def validate_yaml(path: Path, model: type[_Model], data: object = None) -> _Model:
    """Validate a YAML file against ``model``; the error names the file, the entry and the field."""
    data = read_yaml(path) if data is None else data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _where(tuple(err["loc"]), data)
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise KnowledgeBaseError(f"{path}: " + "; ".join(problems)) from None

"""The project's own exception types.

Every message names the offending value and the rule it broke, so an adapter can show it to a
person as it is. Each adapter turns these into its own form in exactly one place: a chat reply
(dialogue), an HTTP 422 (web API) or exit code 2 (CLI).
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base class: an expected, explainable failure (never a bug)."""


class InvalidValueError(AssistantError, ValueError):
    """A customer value breaks a field rule, e.g. ``age=250 is above the maximum of 110``."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}={_show(value)} {rule}")


class InvalidProfileError(AssistantError, ValueError):
    """One or more values of a profile are missing or invalid; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class DataFileError(AssistantError):
    """A customer data file cannot be read or lacks what is needed."""


class ModelError(AssistantError):
    """The model bundle is missing, corrupted or does not match its model card."""


class KnowledgeBaseError(AssistantError):
    """A knowledge-base YAML file is missing or invalid (the message names file, entry and field)."""


class TrainingError(AssistantError):
    """Training could not produce a trustworthy model (e.g. clusters cannot be named)."""


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."

"""Per-session conversation state (a frozen pydantic model) and one turn's outcome."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from assistant.core.fields import FIELD_NAMES, FIELDS_BY_NAME
from assistant.core.schemas import ProfileDraft, SegmentResult


class DialogueState(BaseModel):
    """One conversation: what is known about the current customer, and what was asked last.

    ``pending`` is the field the last reply asked about (a bare number answers it); ``failures``
    counts refused values per field since its last accepted one; ``segment_key`` is the segment
    of the last result shown (to tell whether a correction changes it); ``last_field`` is the field
    the last message gave a value for, when it gave exactly one ("make that 60k" corrects it);
    ``last_read`` the fields the last message gave values for and ``unsure`` those of them read with
    low certainty (a misspelt cue, a converted rate): "no" / "that's wrong" drops them, "yes" keeps them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: ProfileDraft = Field(default_factory=ProfileDraft)
    pending: str | None = None
    failures: dict[str, int] = Field(default_factory=dict)
    segment_key: str | None = None
    last_field: str | None = None
    last_read: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()

    @field_validator("last_read", "unsure")
    @classmethod
    def _known_fields(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"{info.field_name} names unknown field(s) {', '.join(unknown)}")
        return value

    @field_validator("pending", "last_field")
    @classmethod
    def _pending_field(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value not in FIELDS_BY_NAME:
            raise ValueError(f"{info.field_name}={value!r} is not one of {', '.join(FIELD_NAMES)}")
        return value

    @field_validator("failures")
    @classmethod
    def _failure_fields(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(FIELD_NAMES))
        if unknown:
            raise ValueError(f"failures for unknown field(s) {', '.join(unknown)}")
        return value

    @property
    def complete(self) -> bool:
        return not self.profile.missing()

    @property
    def asking(self) -> str | None:
        """The field the assistant is waiting for (None once the profile is complete)."""
        missing = self.profile.missing()
        if not missing:
            return None
        return self.pending if self.pending in missing else missing[0]


@dataclass(frozen=True, slots=True)
class Turn:
    """The assistant's answer to one message, with the new state.

    ``marked`` is the reply with the user's own words marked (:func:`user_text`); :attr:`reply` is
    the reply as plain Markdown text, :meth:`render` the reply for a Markdown view."""

    marked: str
    state: DialogueState
    result: SegmentResult | None = None

    @property
    def reply(self) -> str:
        """The reply with the user's words as typed (terminal, JSON, REST)."""
        return _USER_MARKS.sub("", self.marked)

    def render(self, escape: Callable[[str], str]) -> str:
        """The reply with each span of the user's words passed through ``escape`` (a Markdown view
        escapes them so typed Markdown or HTML shows as text)."""
        return _USER_SPAN.sub(lambda m: escape(m.group(1)), self.marked)

    @property
    def profile(self) -> dict[str, int | float | None]:
        return self.state.profile.as_dict()

    @property
    def complete(self) -> bool:
        return self.state.complete

    def as_json(self) -> dict[str, Any]:
        return {"reply": self.reply, "profile": self.profile, "complete": self.complete,
                "result": self.result.model_dump() if self.result is not None else None}


# ============================================================================ text helpers

_USER_MARKS = re.compile("[\ue000\ue001]")
_USER_SPAN = re.compile("\ue000([^\ue000\ue001]*)\ue001")
USER_OPEN, USER_CLOSE = "\ue000", "\ue001"   # private-use characters; dropped from every message

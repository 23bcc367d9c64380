"""Rendering replies: the user's own words marked as plain text, tables, the segment answer."""

from __future__ import annotations

import re

from assistant.conversation.state import _USER_MARKS, USER_CLOSE, USER_OPEN
from assistant.conversation.texts import QUOTE_CHARS, DialogueTexts
from assistant.core.fields import FIELDS
from assistant.core.schemas import SegmentResult

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000\ue001]")


def user_text(text: str) -> str:
    """The user's own words inside a reply, marked so that a Markdown view can escape them."""
    return USER_OPEN + _USER_MARKS.sub("", text) + USER_CLOSE


def _sanitise(text: str) -> str:
    """Drop control characters and lone surrogates; tabs and newlines become spaces."""
    text = _CONTROL.sub(" ", text.replace("\t", " ").replace("\r", " "))
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        text = "".join(ch for ch in text if not "\ud800" <= ch <= "\udfff")
    return text


def _quote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > QUOTE_CHARS:
        text = text[:QUOTE_CHARS - 1].rstrip() + "\u2026"
    return user_text(text)


def _phrase_pattern(phrases: list[str] | tuple[str, ...]) -> str:
    """Whole-word alternatives; any run of non-word characters (or ``_``) may stand between a phrase's words."""
    alternatives = sorted({p for p in phrases if p}, key=len, reverse=True)
    return "|".join(r"[\W_]+".join(re.escape(w) for w in p.split()) for p in alternatives)


def _compile(phrases: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w)(?:{_phrase_pattern(phrases)})(?!\w)", re.IGNORECASE)


def _words(text: str) -> str:
    """A phrase reduced to its lower-case words, for looking up what a pattern matched."""
    return " ".join(re.findall(r"[^\W_]+", text.lower()))


# same-length replacements, so positions found in the normalised text hold in the original
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def _share(x: float) -> str:
    return f"{x:.0%}"


def _table(header: list[str], rows: list[list[str]], align_right_from: int = 1) -> str:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    sep = ["---" if i < align_right_from else "---:" for i in range(len(header))]
    return "\n".join([row(header), "|" + "|".join(sep) + "|", *(row(r) for r in rows)])


def render_result(result: SegmentResult, texts: DialogueTexts, evidence: list[str] | tuple[str, ...] = ()) -> str:
    """A result as Markdown: segment and summary, the customer beside the segment averages,
    confidence, reasons, strategy (headline, tactics, channels, KPI), the figures behind the
    strategy (``evidence``, from :func:`assistant.insights.summaries.strategy_evidence`) and warnings."""
    t = texts.result
    bullet = texts.replies.bullet
    rows = [[f.label, f.number(result.customer.get(f.name)), f.number(result.segment_averages.get(f.name))]
            for f in FIELDS]
    parts = [
        t.title.format(segment_name=result.segment_name),
        t.summary.format(summary=result.summary),
        _table([t.column_field, t.column_customer, t.column_average.format(segment_name=result.segment_name)], rows),
        t.confidence.format(text=result.confidence.text),
    ]
    if result.reasons:
        parts.append(t.reasons_title + "\n" + "\n".join(bullet.format(text=r) for r in result.reasons))
    s = result.strategy
    parts.append(t.strategy_title.format(headline=s.headline) + "\n"
                 + "\n".join(bullet.format(text=x) for x in s.tactics))
    parts.append(t.channels.format(channels=", ".join(s.channels)) + "  \n" + t.kpi.format(kpi=s.kpi))
    if evidence:
        parts.append(t.evidence_title + "\n" + "\n".join(bullet.format(text=e) for e in evidence))
    parts.extend(t.warning.format(warning=w) for w in result.warnings)
    return "\n\n".join(parts)


# ============================================================================ the engine

"""Rendering replies: the user's own words marked as plain text, tables, the segment answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.conversation.state import _USER_MARKS, USER_CLOSE, USER_OPEN
from assistant.conversation.texts import QUOTE_CHARS, DialogueTexts
from assistant.core.fields import FIELDS
from assistant.core.schemas import SegmentResult

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000\ue001]")


def user_text(text: str) -> str:
    """The user's own words inside a reply, marked so that a Markdown view can escape them."""
    return USER_OPEN + _USER_MARKS.sub("", text) + USER_CLOSE


def _sanitise(text: str) -> str:
    """Drop control characters and lone surrogates; carriage returns become spaces (tabs and newlines stay:
    they separate the cells and rows of a pasted table)."""
    text = _CONTROL.sub(" ", text.replace("\r", " "))
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


@dataclass(frozen=True, slots=True)
class ResultSections:
    """The parts of a result answer, each Markdown: what :func:`render_result` joins, and what a
    richer view (the web app's result card) lays out its own way."""

    title: str
    summary: str
    table: str
    confidence: str
    reasons: str          # "" when the result has none
    strategy: str         # headline and every tactic
    channels_kpi: str
    evidence: str         # "" without evidence
    warnings: tuple[str, ...]
    response: str = ""    # the chance to answer the next campaign; "" for a model without it

    def joined(self) -> str:
        parts = [self.title, self.summary, self.table, self.confidence, self.response, self.reasons, self.strategy,
                 self.channels_kpi, self.evidence, *self.warnings]
        return "\n\n".join(p for p in parts if p)


def result_sections(result: SegmentResult, texts: DialogueTexts,
                    evidence: list[str] | tuple[str, ...] = ()) -> ResultSections:
    """The sections of :func:`render_result`, one by one."""
    t = texts.result
    bullet = texts.replies.bullet
    rows = [[f.label, f.number(result.customer.get(f.name)), f.number(result.segment_averages.get(f.name))]
            for f in FIELDS]
    s = result.strategy
    return ResultSections(
        title=t.title.format(segment_name=result.segment_name),
        summary=t.summary.format(summary=result.summary),
        table=_table([t.column_field, t.column_customer, t.column_average.format(segment_name=result.segment_name)],
                     rows),
        confidence=t.confidence.format(text=result.confidence.text),
        reasons=(t.reasons_title + "\n" + "\n".join(bullet.format(text=r) for r in result.reasons)
                 if result.reasons else ""),
        strategy=(t.strategy_title.format(headline=s.headline) + "\n"
                  + "\n".join(bullet.format(text=x) for x in s.tactics)),
        channels_kpi=t.channels.format(channels=", ".join(s.channels)) + "  \n" + t.kpi.format(kpi=s.kpi),
        evidence=(t.evidence_title + "\n" + "\n".join(bullet.format(text=e) for e in evidence) if evidence else ""),
        warnings=tuple(t.warning.format(warning=w) for w in result.warnings),
        response=response_sentence(result, texts),
    )


def response_sentence(result: SegmentResult, texts: DialogueTexts) -> str:
    """The customer's chance to answer the next campaign in words, against the segment's and everyone's rate,
    with the values that raise or lower it most; "" when the model has no response part."""
    r = result.response
    if r is None:
        return ""
    t = texts.result
    model = t.response_model_seven_fields if r.model == "seven_fields" else t.response_model_full_record
    common = {"probability": _share(r.probability), "segment_rate": _share(r.segment_rate),
              "segment_name": result.segment_name, "overall_rate": _share(r.overall_rate), "model": model,
              "auc": f"{r.holdout_auc:.2f}"}
    if r.probability >= 0.5 or r.probability <= 0:
        line = t.response_likely.format(**common)
    else:
        line = t.response.format(one_in=str(max(1, round(1 / r.probability))), **common)
    and_ = texts.replies.list_and
    def joined(labels: list[str]) -> str:
        return labels[0] if len(labels) == 1 else and_.format(items=", ".join(labels[:-1]), last=labels[-1])
    def said(field: str) -> str:
        spec = next((f for f in FIELDS if f.name == field), None)
        if spec is None or field not in result.customer:
            return field
        return f"{spec.short_lower} ({spec.say(result.customer[field])})"
    up = [said(d.field) for d in r.drivers if d.effect > 0]
    down = [said(d.field) for d in r.drivers if d.effect < 0]
    drivers = t.response_drivers.format(up=t.response_up.format(labels=joined(up)) if up else "",
                                        down=t.response_down.format(labels=joined(down)) if down else "").strip()
    return line + ("  \n" + drivers if drivers else "")


def render_result(result: SegmentResult, texts: DialogueTexts, evidence: list[str] | tuple[str, ...] = ()) -> str:
    """A result as Markdown: segment and summary, the customer beside the segment averages,
    confidence, reasons, strategy (headline, tactics, channels, KPI), the figures behind the
    strategy (``evidence``, from :func:`assistant.insights.summaries.strategy_evidence`) and warnings."""
    return result_sections(result, texts, evidence).joined()


# ============================================================================ the engine

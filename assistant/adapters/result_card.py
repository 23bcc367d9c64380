"""The result card of the web app: what a person sees first of an answer, built from a ``SegmentResult``.

The card (HTML, one block without blank lines so a Markdown view passes it through as it is) holds
the segment's name and summary, a confidence badge, a compact chart and the strategy's headline with
its first tactics. The chart places each of the seven fields on its range among the training
customers (the model card's min and max), so fields in different units compare at a glance: a tick
for all customers, a diamond in the segment's colour for the segment's average, a yellow dot for
this customer. Everything else of the answer (the full table, confidence, reasons, every tactic,
channels, KPI, evidence, warnings) follows in collapsible ``<details>`` sections, in the Markdown of
:func:`assistant.conversation.render.result_sections`, so nothing the text answer says is lost.

No text of the user's reaches the card (its numbers are validated values), and every text in it is
HTML-escaped anyway. Only what Gradio's HTML sanitiser keeps is used: ``div``/``span``/``details``,
``class``, ``title`` and an inline ``style`` for positions and colours; the look is in ``CARD_CSS``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import ClassVar

from assistant.conversation.render import ResultSections
from assistant.core.fields import FIELDS
from assistant.core.schemas import SegmentResult
from assistant.core.texts import Placeholders, TextModel

TOP_TACTICS = 3


class CardTexts(TextModel):
    """``card:`` in ``knowledge/app.yaml``."""

    badge_clear: str
    badge_borderline: str
    chart_title: str
    chart_note: str
    legend_customer: str
    legend_segment: str
    legend_overall: str
    row_hint: str
    strategy: str
    more_tactics: str
    details_table: str
    details_why: str
    details_strategy: str
    details_evidence: str
    details_notes: str

    placeholders: ClassVar[Placeholders] = {
        "badge_clear": {"segment_name", "runner_up_name"},
        "badge_borderline": {"segment_name", "runner_up_name"},
        "legend_segment": {"segment_name"},
        "row_hint": {"label", "customer", "segment", "overall", "segment_name", "minimum", "maximum"},
        "strategy": {"headline"},
        "more_tactics": {"count"},
        "details_notes": {"count"},
    }


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def position(value: float, low: float, high: float) -> float:
    """Where ``value`` lies on [low, high], in percent, clamped to 0..100 (a value beyond the training
    range sits at the end; the answer's warnings say so)."""
    if high <= low:
        return 50.0
    return round(max(0.0, min(100.0, (value - low) / (high - low) * 100)), 1)


def chart_html(result: SegmentResult, texts: CardTexts, *, minimum: Mapping[str, float],
               maximum: Mapping[str, float], colour: str) -> str:
    """The compact chart: one row per field, the customer, the segment's and all customers' averages
    as positions on the field's training range; the customer's value, said in words, at the end."""
    rows = []
    for f in FIELDS:
        low, high = float(minimum[f.name]), float(maximum[f.name])
        you, seg, everyone = (result.customer[f.name], result.segment_averages[f.name],
                              result.overall_averages[f.name])
        hint = texts.row_hint.format(label=f.label, customer=f.number(you), segment=f.number(seg),
                                     overall=f.number(everyone), segment_name=result.segment_name,
                                     minimum=f.number(low), maximum=f.number(high))
        rows.append(
            f'<div class="rc-row" title="{_e(hint)}"><span class="rc-label">{_e(f.short)}</span>'
            f'<span class="rc-track">'
            f'<span class="rc-mark rc-all" style="left:{position(everyone, low, high)}%"></span>'
            f'<span class="rc-mark rc-seg" style="left:{position(seg, low, high)}%;background:{_e(colour)}"></span>'
            f'<span class="rc-mark rc-you" style="left:{position(you, low, high)}%"></span>'
            f'</span><span class="rc-value">{_e(f.say(you))}</span></div>')
    legend = (f'<div class="rc-legend"><span><span class="rc-key rc-you"></span>{_e(texts.legend_customer)}</span>'
              f'<span><span class="rc-key rc-seg" style="background:{_e(colour)}"></span>'
              f'{_e(texts.legend_segment.format(segment_name=result.segment_name))}</span>'
              f'<span><span class="rc-key rc-all"></span>{_e(texts.legend_overall)}</span></div>')
    return (f'<div class="rc-chart"><div class="rc-chart-title">{_e(texts.chart_title)}</div>{legend}'
            + "".join(rows) + f'<div class="rc-note">{_e(texts.chart_note)}</div></div>')


def card_html(result: SegmentResult, texts: CardTexts, *, minimum: Mapping[str, float],
              maximum: Mapping[str, float], colour: str) -> str:
    """The card: name, summary, confidence badge, chart, strategy headline and the first tactics."""
    c = result.confidence
    names = {"segment_name": result.segment_name, "runner_up_name": c.runner_up_name}
    badge = (texts.badge_clear if c.level == "clear" else texts.badge_borderline).format(**names)
    tactics = result.strategy.tactics
    shown = "".join(f"<li>{_e(t)}</li>" for t in tactics[:TOP_TACTICS])
    more = (f'<div class="rc-more">{_e(texts.more_tactics.format(count=len(tactics) - TOP_TACTICS))}</div>'
            if len(tactics) > TOP_TACTICS else "")
    return (
        f'<div class="result-card" style="border-left-color:{_e(colour)}">'
        f'<div class="rc-head"><span class="rc-name">{_e(result.segment_name)}</span>'
        f'<span class="rc-badge rc-{_e(c.level)}">{_e(badge)}</span></div>'
        f'<div class="rc-summary">{_e(result.summary)}</div>'
        + chart_html(result, texts, minimum=minimum, maximum=maximum, colour=colour)
        + f'<div class="rc-strategy">{_e(texts.strategy.format(headline=result.strategy.headline))}</div>'
        f'<ol class="rc-tactics">{shown}</ol>{more}</div>'
    )


def _details(summary: str, body: str) -> str:
    # blank lines around the body: it is Markdown (tables, bullets), parsed as such inside the HTML block
    return f'<details class="rc-details"><summary>{_e(summary)}</summary>\n\n{body}\n\n</details>'


def details_markdown(sections: ResultSections, texts: CardTexts) -> str:
    """The rest of the answer, each part closed until asked for."""
    parts = [_details(texts.details_table, sections.table),
             _details(texts.details_why, "\n\n".join(p for p in (sections.confidence, sections.response,
                                                                 sections.reasons) if p)),
             _details(texts.details_strategy, sections.strategy + "\n\n" + sections.channels_kpi)]
    if sections.evidence:
        parts.append(_details(texts.details_evidence, sections.evidence))
    if sections.warnings:
        parts.append(_details(texts.details_notes.format(count=len(sections.warnings)),
                              "\n\n".join(sections.warnings)))
    return "\n\n".join(parts)


def answer_html(result: SegmentResult, sections: ResultSections, texts: CardTexts, *,
                minimum: Mapping[str, float], maximum: Mapping[str, float], colour: str) -> str:
    """The card followed by the collapsible details: the whole answer for the web view."""
    return (card_html(result, texts, minimum=minimum, maximum=maximum, colour=colour) + "\n\n"
            + details_markdown(sections, texts))


CARD_CSS = """
.result-card { border: 1px solid var(--border-color-primary); border-left: 6px solid #6B7280; border-radius: 10px;
  padding: 10px 12px; margin: 2px 0 8px; background: var(--background-fill-primary); max-width: 100%;
  box-sizing: border-box; }
.result-card .rc-head { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 10px; }
.result-card .rc-name { font-size: 1.3rem; font-weight: 700; color: var(--body-text-color); line-height: 1.25; }
.result-card .rc-badge { font-size: .8rem; font-weight: 600; padding: 2px 8px; border-radius: 999px;
  border: 1px solid transparent; line-height: 1.4; }
.result-card .rc-clear { background: #DCFCE7; color: #14532D; border-color: #86EFAC; }
.result-card .rc-borderline { background: #FEF3C7; color: #78350F; border-color: #FCD34D; }
.result-card .rc-summary { margin: 4px 0 8px; color: var(--body-text-color); }
.result-card .rc-chart { margin: 6px 0 8px; }
.result-card .rc-chart-title { font-weight: 600; font-size: .9rem; margin-bottom: 2px; }
.result-card .rc-legend { display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: .78rem;
  color: var(--body-text-color-subdued); margin-bottom: 4px; }
.result-card .rc-legend > span { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.result-card .rc-row { display: grid; grid-template-columns: minmax(5.5em, 8.5em) minmax(60px, 1fr) minmax(4.5em, auto);
  align-items: center; gap: 8px; font-size: .85rem; line-height: 1.2; padding: 2px 0; }
.result-card .rc-label { overflow-wrap: anywhere; }
.result-card .rc-value { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.result-card .rc-track { position: relative; height: 16px; margin: 0 7px; }
.result-card .rc-track::before { content: ""; position: absolute; left: -7px; right: -7px; top: 7px; height: 2px;
  background: #CBD5E1; border-radius: 1px; }
.result-card .rc-mark, .result-card .rc-key { box-sizing: border-box; display: inline-block; }
.result-card .rc-mark { position: absolute; transform: translateX(-50%); }
.result-card .rc-all { width: 3px; height: 16px; top: 0; background: #374151; border-radius: 1px; }
.result-card .rc-seg { width: 11px; height: 11px; top: 2.5px; border: 1.5px solid #111827;
  transform: translateX(-50%) rotate(45deg); }
.result-card .rc-you { width: 13px; height: 13px; top: 1.5px; border-radius: 50%; background: #FACC15;
  border: 2px solid #111827; }
.result-card .rc-key { position: static; transform: none; top: auto; }
.result-card .rc-key.rc-seg { transform: rotate(45deg); width: 9px; height: 9px; }
.result-card .rc-key.rc-all { height: 12px; }
.result-card .rc-note { font-size: .75rem; color: var(--body-text-color-subdued); margin-top: 2px; }
.result-card .rc-strategy { font-weight: 600; margin-top: 6px; }
.result-card ol.rc-tactics { margin: 4px 0 0 1.3em !important; padding: 0 !important; }
.result-card ol.rc-tactics li { margin: 2px 0; }
.result-card .rc-more { font-size: .8rem; color: var(--body-text-color-subdued); margin-top: 2px; }
details.rc-details { border-top: 1px solid var(--border-color-primary); padding: 4px 0; }
details.rc-details > summary { cursor: pointer; font-weight: 600; color: var(--primary-700); padding: 3px 0; }
details.rc-details[open] > summary { margin-bottom: 4px; }
"""


__all__: Sequence[str] = ["CARD_CSS", "CardTexts", "answer_html", "card_html", "chart_html", "details_markdown",
                          "position"]

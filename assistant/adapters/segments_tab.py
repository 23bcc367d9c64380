"""Gradio pieces for segment insights: a profile page per segment inside the app's Segments tab.

Call :func:`segment_profiles_section` inside an open ``gr.Blocks`` (for example within the
Segments tab). It adds one inner tab per segment holding the data-driven summary, the evidence
behind the strategy and three plotly plots against all customers (product mix, channel mix,
campaign acceptance). Everything shown comes from the model card's ``profiles`` and the texts
in ``knowledge/insights.yaml``; nothing here computes figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.core.errors import ModelError
from assistant.insights.figures import profile_figures
from assistant.insights.profiles import profiles_of
from assistant.insights.summaries import evidence_lines, fmt_pct, summarise
from assistant.insights.texts import insight_texts

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.segmentation import SegmentationService

SECTION_ID = "segment-profiles"


def profile_markdown(service: SegmentationService, key: str) -> str:
    """The text of one segment's profile page (markdown)."""
    profiles = profiles_of(service)
    texts = insight_texts(service.knowledge)
    name = service.segment_name(key)
    seg = profiles["segments"][key]
    title = texts.chat.profile.title.format(segment_name=name, size=f"{seg['size']:,}", share=fmt_pct(seg["share"]))
    evidence = evidence_lines(profiles, key, texts, segment_name=name)
    return "\n".join([f"### {title}", "", summarise(profiles, key, texts, segment_name=name), "",
                      *(f"- {line}" for line in evidence)])


def segment_profiles_section(service: SegmentationService) -> None:
    """Add the per-segment profile pages to the current Blocks context."""
    import gradio as gr

    texts = insight_texts(service.knowledge)
    try:
        profiles = profiles_of(service)
    except ModelError:
        gr.Markdown(texts.chat.not_available, elem_id=SECTION_ID)
        return
    with gr.Tabs(elem_id=SECTION_ID):
        for key in service.knowledge.segments:
            name = service.segment_name(key)
            with gr.Tab(name, id=f"profile-{key}", elem_id=f"profile-{key}"):
                gr.Markdown(profile_markdown(service, key), elem_id=f"profile-{key}-summary")
                figures = profile_figures(profiles, key, texts, segment_name=name)
                with gr.Row(equal_height=True):
                    for kind in ("product_mix", "channel_mix"):
                        if kind in figures:
                            # min_width: the two plots wrap onto their own lines in a narrow window
                            gr.Plot(figures[kind], show_label=False, elem_id=f"profile-{key}-{kind}", min_width=320)
                if "campaigns" in figures:
                    gr.Plot(figures["campaigns"], show_label=False, elem_id=f"profile-{key}-campaigns")


__all__ = ["profile_markdown", "segment_profiles_section"]

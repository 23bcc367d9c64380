"""The app's texts (``knowledge/app.yaml``) and the segments' colours with enough contrast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from assistant.adapters.result_card import CardTexts
from assistant.core.fields import FIELD_NAMES
from assistant.core.paths import default_knowledge_dir
from assistant.core.texts import Placeholders, StrictModel, TextModel, validate_yaml
from assistant.model.plots import SEGMENT_COLOURS

if TYPE_CHECKING:
    pass


APP_TEXTS_FILE = "app.yaml"


MIN_CONTRAST = 3.5          # against white, for every segment's colour (WCAG's minimum for graphics)


# ---------------------------------------------------------------------------- texts (knowledge/app.yaml)


class ChatTexts(TextModel):
    label: str
    input_label: str
    placeholder: str
    send: str
    clear: str
    use_in_form: str
    examples_label: str
    examples: list[str] = Field(min_length=1, max_length=6)


class FormTexts(TextModel):
    heading: str
    help: str
    field_label: str
    field_info: str
    field_placeholder: str
    button: str
    discuss: str
    discuss_message: str
    discuss_value: str
    placeholder: str
    result_label: str
    error_intro: str
    problem_line: str
    missing_line: str

    placeholders: ClassVar[Placeholders] = {
        "field_label": {"label", "unit"}, "field_info": {"minimum", "maximum", "description"},
        "field_placeholder": {"example"}, "discuss_message": {"values"}, "discuss_value": {"label", "value"},
        "problem_line": {"label", "problem"}, "missing_line": {"label"},
    }


class PlotTexts(TextModel):
    label: str
    chat_heading: str
    form_heading: str
    what: str
    customer_line: str
    borderline_line: str
    axis: str
    axis_and: str
    axis_up: dict[str, str]
    axis_down: dict[str, str]
    customer: str
    customer_hover: str

    placeholders: ClassVar[Placeholders] = {
        "what": {"n", "x_drivers", "y_drivers"}, "customer_line": {"segment_name"},
        "borderline_line": {"segment_name", "runner_up_name"}, "axis": {"drivers"},
        "customer_hover": {"segment_name"},
    }

    @model_validator(mode="after")
    def _every_field(self) -> PlotTexts:
        for name in ("axis_up", "axis_down"):
            keys = set(getattr(self, name))
            if keys != set(FIELD_NAMES):
                raise ValueError(f"{name} must name each field once: {', '.join(FIELD_NAMES)} "
                                 f"(missing: {', '.join(sorted(set(FIELD_NAMES) - keys)) or 'none'}; "
                                 f"unknown: {', '.join(sorted(keys - set(FIELD_NAMES))) or 'none'})")
        return self


class SelectionColumns(StrictModel):
    k: str
    inertia: str
    silhouette: str
    calinski_harabasz: str
    davies_bouldin: str
    stability: str


class SegmentsTexts(TextModel):
    heading: str
    intro: str
    size: str
    characteristics: str
    strategy: str
    channels: str
    kpi: str
    averages_heading: str
    averages_label: str
    profiles_heading: str
    profiles_intro: str
    field_column: str
    overall_column: str
    size_row: str
    selection_heading: str
    selection_intro: str
    elbow_label: str
    silhouette_label: str
    selection_label: str
    selection_columns: SelectionColumns

    placeholders: ClassVar[Placeholders] = {
        "intro": {"n", "k_reason"}, "size": {"size", "share"}, "selection_intro": {"k", "k_reason", "elbow"},
    }


class ResponseColumns(StrictModel):
    model: str
    roc_auc: str
    pr_auc: str
    brier: str
    ece: str
    lift: str
    repeated: str
    verdict: str


class ResponseTexts(TextModel):
    """The Segments tab's section on the response model: its holdout quality and two plots."""

    heading: str
    intro: str
    table_label: str
    auc: str
    ece: str
    ece_noise: str
    brier: str
    lift: str
    repeated: str
    met: str
    missed: str
    models: dict[str, str]
    columns: ResponseColumns
    calibration_title: str
    calibration_x: str
    calibration_y: str
    perfect: str
    gains_title: str
    gains_x: str
    gains_y: str
    random: str

    placeholders: ClassVar[Placeholders] = {
        "intro": {"holdout", "training", "share", "overall"}, "auc": {"auc", "target"},
        "ece": {"ece", "target"}, "ece_noise": {"noise"}, "brier": {"brier", "base"},
        "lift": {"lift10", "lift20"}, "repeated": {"mean", "sd", "low", "high", "share", "splits"},
    }


class TabTexts(StrictModel):
    assistant: str
    segments: str


class AppTexts(StrictModel):
    """The validated contents of ``knowledge/app.yaml``."""

    title: str = Field(min_length=1)
    intro: str = Field(min_length=1)
    result_json_label: str = Field(min_length=1)
    tabs: TabTexts
    chat: ChatTexts
    form: FormTexts
    card: CardTexts
    plot: PlotTexts
    segments: SegmentsTexts
    response: ResponseTexts


def load_app_texts(knowledge_dir: str | Path | None = None) -> AppTexts:
    """Read and validate ``app.yaml`` (KnowledgeBaseError naming file and field when it is wrong)."""
    directory = Path(knowledge_dir) if knowledge_dir is not None else default_knowledge_dir()
    return validate_yaml(directory / APP_TEXTS_FILE, AppTexts)


# ---------------------------------------------------------------------------- colours


def _luminance(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast_on_white(colour: str) -> float:
    """The WCAG contrast ratio of ``colour`` (``#RRGGBB``) against white."""
    return 1.05 / (_luminance(colour) + 0.05)


def readable_colour(colour: str, minimum: float = MIN_CONTRAST) -> str:
    """``colour``, darkened just enough to reach ``minimum`` contrast against white (WCAG asks 3:1
    for graphics): the segments keep their hue everywhere, and the light ones become visible."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    out = colour.upper()
    factor = 1.0
    while contrast_on_white(out) < minimum and factor > 0:
        factor -= 0.02
        out = "#" + "".join(f"{round(c * factor):02X}" for c in (r, g, b))
    return out


SEGMENT_PALETTE = {key: readable_colour(colour) for key, colour in SEGMENT_COLOURS.items()}
"""The segments' colours in the app (map, result card, Segments tab): the plot colours with enough contrast."""
FALLBACK_COLOUR = "#4B5563"

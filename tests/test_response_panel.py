"""The Segments tab shows the response model's holdout quality beside its calibration and gains plots."""

import pytest

pytest.importorskip("gradio")

from assistant.adapters.app_texts import load_app_texts  # noqa: E402
from assistant.adapters.response_panel import (  # noqa: E402
    calibration_figure,
    gains_figure,
    quality_table,
    response_intro,
    response_models,
)


@pytest.fixture(scope="module")
def texts():
    return load_app_texts()


def test_every_evaluated_model_has_its_holdout_quality_in_the_table(service, texts):
    models = response_models(service)
    assert models, "the committed model card has a response section"
    table = quality_table(service, texts.response)
    c = texts.response.columns
    assert len(table) == len(models)
    for (_, row), m in zip(table.iterrows(), models, strict=True):
        assert row[c.model] == texts.response.models[m["model"]]
        assert row[c.roc_auc].startswith(f"{m['roc_auc']:.2f}") and f"{m['target_roc_auc']:.2f}" in row[c.roc_auc]
        assert row[c.ece].startswith(f"{m['ece']:.3f}") and f"{m['ece_if_calibrated_median']:.3f}" in row[c.ece]
        repeated = m["repeated"]
        assert row[c.repeated].startswith(f"{repeated['roc_auc_mean']:.2f} ± {repeated['roc_auc_sd']:.2f}")
        assert f"{repeated['share_at_target_auc']:.0%} of {repeated['splits']} splits" in row[c.repeated]
        assert row[c.verdict] == (texts.response.met if m["meets_targets"] else texts.response.missed)


def test_the_table_is_shown_one_measure_a_row_with_every_cell(service, texts):
    from assistant.adapters.response_panel import quality_markdown

    table = quality_table(service, texts.response)
    markdown = quality_markdown(table, texts.response)
    lines = markdown.splitlines()
    assert len(lines) == 2 + len(table.columns) - 1              # header, rule, one line per measure
    for model in table[texts.response.columns.model]:
        assert model in lines[0]
    for column in table.columns[1:]:
        row = next(line for line in lines if line.startswith(f"| {column} |"))
        assert all(str(v) in row for v in table[column])


def test_the_intro_states_the_holdout_and_the_base_rate(service, texts):
    response = service.card["response"]
    intro = response_intro(service, texts.response)
    assert f"{response['holdout_customers']:,}" in intro and f"{response['training_customers']:,}" in intro
    assert f"{response['overall_rate']:.0%}" in intro


def test_the_plots_draw_each_model_against_its_reference(service, texts):
    n = len(response_models(service))
    for fig in (calibration_figure(service, texts), gains_figure(service, texts)):
        assert len(fig.data) == n + 1                      # the reference line and one line per model
        assert fig.data[0].x == (0, 1) and fig.data[0].y == (0, 1)
        for trace in fig.data[1:]:
            assert all(0 <= v <= 1 for v in trace.x) and all(0 <= v <= 1 for v in trace.y)


def test_a_card_without_response_models_shows_no_section(service, texts, monkeypatch):
    monkeypatch.setitem(service.card, "response", None)
    assert response_models(service) == []
    assert quality_table(service, texts.response).empty

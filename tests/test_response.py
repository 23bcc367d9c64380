"""The likelihood to respond to the next campaign: training, plain export, answers and files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from assistant.batch.score import rank_contacts, score_file
from assistant.conversation.render import render_result
from assistant.conversation.texts import load_dialogue_texts
from assistant.model.data import clean_customers, load_customers
from assistant.model.response import ResponseModel, Term, seven_field_inputs
from assistant.model.response_training import calibration_table, train_response
from assistant.model.segmentation import SegmentationService
from assistant.model.synthetic import generate_customers, write_customers
from assistant.model.training import train, write_model

# each test trains models: the fast loop (-m 'not slow') leaves them to CI
pytestmark = pytest.mark.slow

EXAMPLE = {"age": 38, "income": 71000, "total_spending": 1200, "web_purchases": 5, "store_purchases": 7,
           "web_visits_per_month": 6, "recency_days": 14}


@pytest.fixture(scope="module")
def synthetic_model(tmp_path_factory, knowledge):
    data = clean_customers(generate_customers(1500, seed=3))
    bundle, card = train(data, knowledge, n_boot=2, ks=range(3, 6))
    out = tmp_path_factory.mktemp("model")
    write_model(bundle, card, out, plots=False)
    return SegmentationService.load(out), card


# ----------------------------------------------------------------------------- plain evaluation


def test_plain_model_is_logistic_then_interpolated_calibration():
    model = ResponseModel(name="seven_fields", variant="plain", terms=[Term(input="age"),
                          Term(input="income", transform="log1p"), Term(input="age", transform="hinge", knot=40)],
                          mean=[40.0, 10.0, 2.0], scale=[10.0, 1.0, 4.0], coef=[0.5, -1.0, 0.25], intercept=-1.0,
                          calibration_x=[-3.0, 0.0, 3.0], calibration_y=[0.0, 0.2, 1.0], holdout_auc=0.8)
    inputs = {"age": np.array([50.0]), "income": np.array([np.expm1(11.0)])}
    z = np.array([(50 - 40) / 10, (11 - 10) / 1, (10 - 2) / 4])
    score = float(z @ np.array([0.5, -1.0, 0.25]) - 1.0)
    assert model.score(inputs)[0] == pytest.approx(score)
    assert model.predict(inputs)[0] == pytest.approx(np.interp(score, [-3, 0, 3], [0, 0.2, 1]))


def test_blocked_score_equals_the_standardised_design_matrix_sum():
    """``score`` folds the standardisation into one weight per term and works in cache-sized blocks; it
    must equal coef . (design - mean) / scale + intercept on every row, across block boundaries."""
    rng = np.random.default_rng(2)
    terms = [Term(input="age"), Term(input="income", transform="log1p"), Term(input="age", transform="hinge", knot=40),
             Term(input="recency_days", transform="hinge", knot=50), Term(input="income")]
    model = ResponseModel(name="seven_fields", variant="hinge", terms=terms, mean=list(rng.normal(size=5)),
                          scale=list(rng.uniform(0.5, 3, 5)), coef=list(rng.normal(size=5)), intercept=-1.5,
                          calibration_x=[-3.0, 3.0], calibration_y=[0.0, 1.0], holdout_auc=0.8)
    n = 20_001                                      # not a multiple of the block size
    inputs = {"age": rng.uniform(18, 90, n), "income": rng.uniform(-10, 2e5, n), "recency_days": rng.uniform(0, 99, n)}
    design = np.column_stack([t.values(inputs[t.input]) for t in terms])
    expected = ((design - model.mean) / model.scale) @ np.array(model.coef) + model.intercept
    np.testing.assert_allclose(model.score(inputs), expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(model.contributions(inputs).sum(axis=1) + model.intercept, expected, rtol=1e-12,
                               atol=1e-9)


def test_spline_terms_equal_scikit_learn_and_the_fast_paths_equal_the_definition():
    """B-spline terms reproduce scikit-learn's SplineTransformer (constant extrapolation, repeated quantile
    knots included); the folded piecewise cubic, its whole-number table and the even-grid calibration give
    the same numbers as the term-by-term definition and np.interp, for whole and fractional inputs, inside
    and outside the training range."""
    from sklearn.preprocessing import SplineTransformer

    from assistant.model.response import bspline_basis

    rng = np.random.default_rng(8)
    samples = {"age": rng.normal(50, 12, 800).round(), "web_visits_per_month": rng.integers(0, 10, 800).astype(float),
               "recency_days": np.r_[np.zeros(400), rng.integers(1, 4, 400)].astype(float)}   # repeated knots
    terms = []
    for name, data in samples.items():
        spline = SplineTransformer(n_knots=4, degree=3, knots="quantile").fit(data[:, None])
        knots = spline.bsplines_[0].t
        x = np.r_[rng.uniform(data.min() - 30, data.max() + 30, 3000), knots, data.min(), data.max()]
        np.testing.assert_allclose(bspline_basis(x, knots, 3), spline.transform(x[:, None]), atol=1e-12)
        terms += [Term(input=name, transform="bspline", knots=list(knots), basis=b) for b in range(6)]
    terms.append(Term(input="income", transform="log1p"))
    n_terms = len(terms)
    model = ResponseModel(name="seven_fields", variant="spline", terms=terms, mean=list(rng.normal(size=n_terms)),
                          scale=list(rng.uniform(0.5, 2, n_terms)), coef=list(rng.normal(size=n_terms)), intercept=0.2,
                          calibration_x=list(np.linspace(-8, 8, 101)),
                          calibration_y=list(1 / (1 + np.exp(-np.linspace(-8, 8, 101)))), holdout_auc=0.8)
    for whole in (True, False):
        n = 30_000
        inputs = {name: rng.integers(-20, 130, n).astype(float) for name in samples}
        inputs["income"] = rng.uniform(0, 2e5, n)
        if not whole:
            inputs["age"] = inputs["age"] + 0.25
        expected = model.contributions(inputs).sum(axis=1) + model.intercept
        np.testing.assert_allclose(model.score(inputs), expected, rtol=0, atol=1e-9)
        np.testing.assert_allclose(model.predict(inputs), np.interp(expected, model.calibration_x, model.calibration_y),
                                   rtol=0, atol=1e-12)
    one = {name: values[:1] for name, values in inputs.items()}        # the single-customer path (no table)
    assert model.score(one)[0] == pytest.approx(float(expected[0]), abs=1e-9)


def test_ece_of_a_perfectly_calibrated_model_is_sampling_noise():
    """Outcomes drawn from the probabilities themselves: the simulated range must hold such a model's ECE
    (and shrink with more customers); a model off by 0.1 everywhere lies far above it."""
    from assistant.model.response_training import ece_if_calibrated

    rng = np.random.default_rng(4)
    p = np.clip(rng.beta(0.8, 4.5, 443), 0, 1)
    median, p95 = ece_if_calibrated(p, seed=1)
    assert 0 < median < p95 < 0.1
    inside = [calibration_table(p, (rng.random(443) < p).astype(int))[1] <= p95 for _ in range(200)]
    assert 0.88 <= np.mean(inside) <= 1.0
    big = np.clip(rng.beta(0.8, 4.5, 20_000), 0, 1)
    assert ece_if_calibrated(big, seed=1)[1] < p95 / 3
    shifted = calibration_table(np.clip(p + 0.1, 0, 1), (rng.random(443) < p).astype(int))[1]
    assert shifted > p95


def test_calibration_table_and_ece():
    p = np.array([0.05, 0.05, 0.15, 0.95])
    y = np.array([0, 0, 1, 1])
    table, ece = calibration_table(p, y)
    assert len(table) == 10 and sum(b.customers for b in table) == 4
    assert table[0].customers == 2 and table[0].observed_rate == 0.0
    assert ece == pytest.approx((2 * 0.05 + 0.85 + 0.05) / 4)


# ----------------------------------------------------------------------------- synthetic plumbing


def test_synthetic_training_carries_the_response_models(synthetic_model):
    service, card = synthetic_model
    assert card.response is not None
    assert {m.model for m in card.response.models} == {"seven_fields", "full_record"}
    for m in card.response.models:
        assert m.customers == card.response.holdout_customers
        assert 0.5 < m.roc_auc <= 1.0           # the synthetic Response depends on the group
        assert len(m.calibration) == 10 and m.gains.captured[-1] == pytest.approx(1.0)
    assert service.response_params is not None
    assert service.response_params.seven_fields.holdout_auc == card.response.model("seven_fields").roc_auc


def test_assign_and_render_carry_the_probability(synthetic_model):
    service, _ = synthetic_model
    result = service.assign(EXAMPLE)
    r = result.response
    assert r is not None and 0.0 <= r.probability <= 1.0
    assert r.model == "seven_fields" and r.overall_rate == service.response_params.overall_rate
    assert r.segment_rate == service.response_params.segment_rates[result.segment_key]
    assert result.model_dump()["response"]["probability"] == r.probability
    text = render_result(result, load_dialogue_texts())
    assert "**Next campaign:**" in text and result.segment_name in text
    assert f"{r.overall_rate:.0%} overall" in text


def test_batch_columns_and_ranked_list(synthetic_model, tmp_path):
    service, _ = synthetic_model
    raw = tmp_path / "raw.csv"
    write_customers(generate_customers(400, seed=9), raw, delimiter=",")
    out = tmp_path / "scored.csv"
    score_file(service, raw, out)
    scored = pd.read_csv(out)
    assert set(scored["response_model"]) == {"full_record"}
    assert scored["response_probability"].between(0, 1).all()
    # a seven-field file gets the seven-field model, and the same probability as the chat
    fields = tmp_path / "fields.csv"
    frame = pd.DataFrame([EXAMPLE, {**EXAMPLE, "income": 20000}])
    frame.to_csv(fields, index=False)
    score_file(service, fields, tmp_path / "fields-out.csv")
    got = pd.read_csv(tmp_path / "fields-out.csv")
    assert list(got["response_model"]) == ["seven_fields"] * 2
    assert got["response_probability"][0] == pytest.approx(service.assign(EXAMPLE).response.probability, abs=1e-4)
    # the ranked list: the highest probabilities first, only the segment asked for
    top = tmp_path / "top.csv"
    key = scored["segment_key"].iloc[0]
    written = rank_contacts(out, top, 5, segment=key, chunksize=64)
    ranked = pd.read_csv(top)
    expected = scored[scored["segment_key"] == key].sort_values("response_probability", ascending=False,
                                                                 kind="stable").head(5)
    assert written == len(ranked) == min(5, len(expected))
    assert list(ranked["ID"]) == list(expected["ID"])


def test_cli_score_top(synthetic_model, tmp_path):
    service, _ = synthetic_model
    raw = tmp_path / "raw.csv"
    write_customers(generate_customers(200, seed=4), raw, delimiter=",")
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "assistant", "score", str(raw), "-o", str(out), "--top", "7",
                           "--model-dir", str(service.model_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ranked = pd.read_parquet(tmp_path / "out-top7.parquet")
    assert len(ranked) == 7 and ranked["response_probability"].is_monotonic_decreasing


def test_scoring_imports_no_sklearn():
    code = ("import sys; from assistant.segmentation import SegmentationService; "
            f"s = SegmentationService.load(); r = s.assign({EXAMPLE!r}); assert r.response is not None; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the real file


@pytest.mark.realdata
def test_committed_model_quality_on_the_holdout(service):
    card = service.card_model
    assert card.response is not None
    seven, full = card.response.model("seven_fields"), card.response.model("full_record")
    assert seven is not None and full is not None
    # measured on 443 held-out customers (67 responders); the targets (0.80, 0.87, ECE 0.03) are
    # stated in the card with meets_targets; these floors guard against a broken model
    assert seven.roc_auc >= 0.77 and full.roc_auc >= 0.87
    assert seven.brier < seven.brier_base_rate and full.brier < full.brier_base_rate
    assert full.lift_top10 > 3.0 and seven.lift_top10 > 2.0
    assert seven.meets_targets == (seven.roc_auc >= 0.80 and seven.ece <= 0.03)
    # calibration: each ECE lies within what a perfectly calibrated model shows on a holdout this size
    for model in (seven, full):
        assert model.ece_if_calibrated_median is not None and model.ece_if_calibrated_p95 is not None
        assert model.ece <= model.ece_if_calibrated_p95
    # the same procedure on 20 other splits: the expected holdout AUC reaches the targets
    assert seven.repeated is not None and full.repeated is not None and seven.repeated.splits == 20
    assert card.response.holdout_seed not in seven.repeated.seeds
    assert seven.repeated.roc_auc_mean >= 0.80 and full.repeated.roc_auc_mean >= 0.87
    assert seven.repeated.roc_auc_min <= seven.roc_auc <= seven.repeated.roc_auc_max + 0.05


@pytest.mark.realdata
def test_file_scored_by_the_model_ranks_the_untouched_holdout(real_data, service, tmp_path, real_data_path):
    """Score the real file with the committed model; on the held-out rows (training never saw them) the
    file's probabilities reproduce the card's AUC, and the full-record model is used for every row."""
    from sklearn.model_selection import train_test_split

    rs = service.card_model.response
    y = pd.to_numeric(real_data.raw["Response"]).to_numpy()
    _, test_rows = train_test_split(np.arange(len(y)), test_size=rs.holdout_share, stratify=y,
                                    random_state=rs.holdout_seed)
    out = tmp_path / "scored.csv"
    score_file(service, real_data_path, out)
    scored = pd.read_csv(out)
    ids = real_data.raw["ID"].astype(int).to_numpy()[np.sort(test_rows)]
    held = scored.set_index("ID").loc[ids]
    assert set(held["response_model"]) == {"full_record"}
    auc = roc_auc_score(y[np.sort(test_rows)], held["response_probability"])
    assert auc == pytest.approx(rs.model("full_record").roc_auc, abs=0.005)
    assert auc >= 0.87


@pytest.mark.realdata
def test_retrain_reproduces_the_committed_response_models(real_data, service):
    params, summary = train_response(real_data, np.array(["x"] * len(real_data.features)),
                                     seed=service.card_model.seed)
    committed = service.response_params
    assert params.seven_fields.coef == pytest.approx(committed.seven_fields.coef, rel=1e-6, abs=1e-9)
    assert [m.roc_auc for m in summary.models] == pytest.approx(
        [m.roc_auc for m in service.card_model.response.models])
    X = real_data.features.to_numpy(dtype=float)
    p = params.seven_fields.predict(seven_field_inputs(X))
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()


def test_load_customers_keeps_response(real_data_path):
    data = load_customers(real_data_path)
    assert "Response" in data.raw.columns

import hashlib
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from assistant.core.errors import InvalidProfileError, ModelError
from assistant.core.fields import FIELD_NAMES, FIELDS
from assistant.core.schemas import CustomerProfile, SegmentResult
from assistant.model.bundle import ModelBundle
from assistant.model.card import ModelCard
from assistant.model.segmentation import SegmentationService, load_card

KEYS = {"casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts"}


def profile(**values) -> CustomerProfile:
    base = {"age": 45, "income": 52000, "total_spending": 600, "web_purchases": 4, "store_purchases": 6,
                "web_visits_per_month": 5, "recency_days": 49}
    return CustomerProfile(**{**base, **values})


def centre(service, key) -> CustomerProfile:
    avg = service.card["segments"][key]["averages"]
    return CustomerProfile(**{f.name: round(avg[f.name]) if f.integer else avg[f.name] for f in FIELDS})


def test_fast_path_equals_sklearn_on_every_training_row(service, real_data):
    X = real_data.features[list(FIELD_NAMES)].astype(float)
    expected = service.pipeline.predict(X)
    np.testing.assert_array_equal(service.predict_indices(X), expected)
    keys = np.array(service.cluster_keys)[expected]
    single = [service.label(CustomerProfile.model_construct(**row)) for row in real_data.features.to_dict("records")]
    np.testing.assert_array_equal(single, keys)


@pytest.mark.parametrize("k", range(1, 11))
def test_tournament_argmin_equals_numpy_argmin_ties_included(k):
    from assistant.model.segmentation import _tournament_argmin

    rng = np.random.default_rng(k)
    scores = rng.integers(0, 4, size=(k, 5000)).astype(float)     # few distinct values: ties everywhere
    scores[:, :3] = 1.0                                             # all tied: the first centroid wins
    expected = scores.argmin(axis=0)
    out = np.empty(scores.shape[1], dtype=np.intp)
    _tournament_argmin(scores.copy(), out)
    np.testing.assert_array_equal(out, expected)
    continuous = rng.normal(size=(k, 5000))
    _tournament_argmin(continuous.copy(), out)
    np.testing.assert_array_equal(out, continuous.argmin(axis=0))


def test_fast_path_equals_sklearn_on_300k_random_rows(service):
    rng = np.random.default_rng(0)
    lows = np.array([f.minimum for f in FIELDS])
    highs = np.array([min(f.maximum, service.card["overall"]["max"][f.name] * 1.5) for f in FIELDS])
    X = rng.uniform(lows, highs, size=(300_000, 7))  # >= 100,000, and large enough for the threaded path
    expected = service.pipeline.predict(pd.DataFrame(X, columns=list(FIELD_NAMES)))
    np.testing.assert_array_equal(service.predict_indices(X), expected)
    keys = np.array(service.cluster_keys)
    single = [service.label(CustomerProfile.model_construct(**dict(zip(FIELD_NAMES, row)))) for row in X[:100_000]]
    np.testing.assert_array_equal(single, keys[expected[:100_000]])      # the single-customer path, 100,000 rows


def test_score_array_equals_sklearn_and_the_single_customer_answer(service):
    """Labels, names, confidence and margin of the batch path (one pass, threaded for big inputs) against
    sklearn's labels, the distances computed directly and the single-customer result; names are
    Categoricals over the label codes, not Python objects per row."""
    rng = np.random.default_rng(5)
    lows = np.array([f.minimum for f in FIELDS])
    highs = np.array([min(f.maximum, service.card["overall"]["max"][f.name] * 1.5) for f in FIELDS])
    X = rng.uniform(lows, highs, size=(200_000, 7))       # above the threaded path's threshold
    scored = service.score_array(X)
    np.testing.assert_array_equal(scored["index"], service.pipeline.predict(pd.DataFrame(X, columns=list(FIELD_NAMES))))
    for name in ("segment_key", "segment_name", "confidence"):
        assert isinstance(scored[name], pd.Categorical)
    np.testing.assert_array_equal(scored["segment_key"].codes, scored["index"])
    assert list(scored["segment_key"].categories) == list(service.cluster_keys)
    assert list(scored["segment_name"].categories) == [service.segment_name(k) for k in service.cluster_keys]
    distances = np.sort(service.distances_many(X), axis=1)
    d1, d2 = distances[:, 0], distances[:, 1]
    np.testing.assert_allclose(scored["margin"], (d2 - d1) / (d1 + d2), rtol=0, atol=1e-12)
    for i in rng.integers(0, len(X), 300):
        one = service.assign(CustomerProfile.model_construct(**dict(zip(FIELD_NAMES, X[i]))))
        assert (scored["segment_key"][i], scored["segment_name"][i]) == (one.segment_key, one.segment_name)
        assert scored["confidence"][i] == one.confidence.level


def test_range_warnings_are_the_chats_warnings_coded_per_row(service):
    X = np.array([[45, 52000, 600, 4, 6, 5, 49], [105, 900_000, 600, 4, 6, 5, 49], [45, 52000, 600, 4, 6, 5, 49],
                  [105, 900_000, 600, 4, 6, 5, 49], [45, 666_666, 600, 4, 6, 5, 49]], dtype=float)
    codes, texts = service.range_warnings(X)
    assert codes.tolist()[0] == codes.tolist()[2] == -1
    assert codes[1] == codes[3] >= 0 and codes[4] >= 0 and codes[4] != codes[1] and len(texts) == 2
    for i in (1, 3, 4):
        expected = service.assign(CustomerProfile.model_construct(**dict(zip(FIELD_NAMES, X[i])))).warnings
        assert texts[codes[i]] == " ".join(expected)
    assert service.range_warnings(X[[0, 2]])[1] == []


def test_result_contents(service):
    result = service.assign(profile(income=90000, total_spending=2000, store_purchases=9, web_visits_per_month=2))
    assert isinstance(result, SegmentResult)
    assert result.segment_key == "vip_customers" and result.segment_name == "VIP Customers"
    assert result.segment_averages == service.card["segments"]["vip_customers"]["averages"]
    assert set(result.distances) == KEYS
    assert result.distances["vip_customers"] == min(result.distances.values())
    assert [c.field for c in result.comparison] == list(FIELD_NAMES)
    assert 1 <= len(result.reasons) <= 3 and all("VIP Customers" in r for r in result.reasons)
    assert result.strategy.headline and 3 <= len(result.strategy.tactics) <= 6 and result.strategy.kpi
    assert result.warnings == []
    dumped = result.model_dump(mode="json")
    assert dumped["segment_key"] == "vip_customers" and dumped["segment_name"] == "VIP Customers"
    SegmentResult.model_validate(dumped)  # the fast construction is a valid result


def test_out_of_training_range_values_warn(service):
    result = service.assign(profile(income=900_000, age=105))
    assert len(result.warnings) == 2
    assert any("Yearly income" in w and "$900,000" in w for w in result.warnings)


def test_borderline_between_two_named_segments(service):
    a = np.array([service.card["segments"]["vip_customers"]["averages"][n] for n in FIELD_NAMES])
    b = np.array([service.card["segments"]["digital_enthusiasts"]["averages"][n] for n in FIELD_NAMES])
    # walk from one centre to the other and find the switch: that point is borderline
    previous = None
    for t in np.linspace(0, 1, 201):
        values = a + t * (b - a)
        p = CustomerProfile.model_construct(**dict(zip(FIELD_NAMES, values)))
        result = service.assign(p)
        if previous and result.segment_key != previous:
            assert result.confidence.level == "borderline"
            assert result.confidence.runner_up_key == previous
            assert "Borderline" in result.confidence.text
            break
        previous = result.segment_key
    else:
        pytest.fail("no switch between the two centres")
    assert service.assign(centre(service, "vip_customers")).confidence.level == "clear"


# ---------------------------------------------------------------- behavioural tests

@pytest.mark.parametrize("key", sorted(KEYS))
def test_minimum_functionality_each_segment_centre_maps_to_itself(service, key):
    assert service.assign(centre(service, key)).segment_key == key


@pytest.mark.parametrize("key", sorted(KEYS))
def test_invariance_small_changes_do_not_move_a_clear_customer(service, key):
    p = centre(service, key)
    for field, delta in [("age", 1), ("income", 500), ("total_spending", 20), ("recency_days", 2)]:
        changed = CustomerProfile(**{**p.as_dict(), field: getattr(p, field) + delta})
        assert service.assign(changed).segment_key == key


def test_directional_more_spending_and_income_moves_towards_vip(service):
    p = centre(service, "casual_shoppers")
    rich = CustomerProfile(**{**p.as_dict(), "income": 95000, "total_spending": 2200, "store_purchases": 10,
                              "web_visits_per_month": 2})
    assert service.assign(rich).segment_key == "vip_customers"
    d_before = service.assign(p).distances["vip_customers"]
    d_after = service.assign(CustomerProfile(**{**p.as_dict(), "total_spending": 900})).distances["vip_customers"]
    assert d_after < d_before


def test_directional_long_recency_moves_casual_to_browsers(service):
    p = centre(service, "casual_shoppers")
    late = CustomerProfile(**{**p.as_dict(), "recency_days": 85})
    assert service.assign(late).segment_key == "browsers_without_conversion"


def test_directional_many_web_purchases_make_a_digital_enthusiast(service):
    p = centre(service, "vip_customers")
    online = CustomerProfile(**{**p.as_dict(), "web_purchases": 11, "web_visits_per_month": 7, "income": 62000})
    assert service.assign(online).segment_key == "digital_enthusiasts"


# ---------------------------------------------------------------- batch, threads, errors

def test_assign_many_keeps_row_order_and_index(service):
    rows = [centre(service, k).as_dict() for k in ["vip_customers", "casual_shoppers", "digital_enthusiasts"]]
    frame = pd.DataFrame(rows, index=[10, 3, 7])
    keys = service.assign_many(frame)
    assert list(keys) == ["vip_customers", "casual_shoppers", "digital_enthusiasts"]
    assert list(keys.index) == [10, 3, 7]


def test_assign_many_refuses_missing_columns_and_values(service):
    with pytest.raises(InvalidProfileError, match="column income is missing"):
        service.assign_many(pd.DataFrame({"age": [30]}))
    frame = pd.DataFrame([centre(service, "vip_customers").as_dict()])
    frame.loc[0, "income"] = np.nan
    with pytest.raises(InvalidProfileError, match="1 row"):
        service.assign_many(frame)


def test_assign_validates_dicts(service):
    with pytest.raises(InvalidProfileError, match="age=250 is above the maximum of 110"):
        service.assign({**profile().as_dict(), "age": 250})


def test_service_is_safe_to_share_between_threads(service):
    rng = np.random.default_rng(1)
    profiles = [profile(income=float(i), total_spending=float(s)) for i, s in
                zip(rng.uniform(2000, 150000, 400), rng.uniform(0, 2500, 400))]
    sequential = [service.assign(p).model_dump() for p in profiles]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda p: service.assign(p).model_dump(), profiles))
    assert parallel == sequential


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="model_card.json is missing.*segment-assistant train"):
        SegmentationService.load(tmp_path)


def test_segments_listing(service):
    segments = service.segments()
    assert {s.key for s in segments} == KEYS
    assert sum(s.size for s in segments) == service.card["data"]["rows_kept"]
    assert abs(sum(s.share for s in segments) - 1) < 1e-9


def test_service_pickles_for_distributed_workers(service, real_data):
    import pickle

    clone = pickle.loads(pickle.dumps(service))
    X = real_data.features[list(FIELD_NAMES)].to_numpy(float)
    np.testing.assert_array_equal(clone.predict_indices(np.repeat(X, 100, axis=0)),
                                  service.predict_indices(np.repeat(X, 100, axis=0)))


# ------------------------------------------------------------------ the typed bundle and card

ROOT_MODELS = Path(__file__).resolve().parents[1] / "models"


def _model_copy(tmp_path: Path) -> Path:
    """The committed card, bundle and scoring parameters in a folder of their own (the PNGs are not needed)."""
    card = json.loads((ROOT_MODELS / "model_card.json").read_text())
    out = tmp_path / "models"
    out.mkdir(parents=True)
    for name in ("model_card.json", card["bundle_file"], card["scoring_file"]):
        shutil.copyfile(ROOT_MODELS / name, out / name)
    return out


def test_the_committed_card_is_a_model_card_key_for_key():
    text = (ROOT_MODELS / "model_card.json").read_text()
    card = load_card(ROOT_MODELS)
    assert isinstance(card, ModelCard) and card.k == 4 and card.bundle_file and card.bundle_sha256
    assert json.dumps(card.to_json(), indent=1) + "\n" == text      # nothing lost, nothing added, same order
    assert set(card.segments) == KEYS and card.profiles is not None


def test_the_service_has_the_typed_card_and_its_json(service):
    raw = json.loads((ROOT_MODELS / "model_card.json").read_text())
    assert isinstance(service.card_model, ModelCard) and isinstance(service.bundle, ModelBundle)
    assert service.card == raw                                       # callers that read the card as a dict
    assert service.cluster_keys == tuple(service.bundle.segment_keys) == tuple(service.card_model.naming.cluster_keys)
    info = service.model_info()
    assert info["bundle_sha256"] == raw["bundle_sha256"] and info["rows_kept"] == raw["data"]["rows_kept"]


def test_card_parts_read_like_the_json_dict():
    card = load_card(ROOT_MODELS)
    assert card["elbow"]["k"] == card.elbow.k and card["segments"]["vip_customers"]["size"] == card.segments[
        "vip_customers"].size
    with pytest.raises(KeyError):
        card["colour"]


@pytest.mark.parametrize("damage, says", [
    (lambda c: c.pop("segments"), r"segments: Field required"),
    (lambda c: c.update(k="four"), r"k: Input should be a valid integer"),
    (lambda c: c.pop("bundle_sha256"), r"names no bundle_file and bundle_sha256"),
    (lambda c: c.update(colour="red"), r"colour: Extra inputs are not permitted"),
])
def test_an_invalid_card_says_what_is_wrong(tmp_path, damage, says):
    model = _model_copy(tmp_path)
    card = json.loads((model / "model_card.json").read_text())
    damage(card)
    (model / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=f"model_card.json is not a valid model card .*{says}.*segment-assistant"):
        SegmentationService.load(model)


def _rewrite_bundle(model: Path, change) -> None:
    card = json.loads((model / "model_card.json").read_text())
    bundle = joblib.load(model / card["bundle_file"])
    change(bundle)
    joblib.dump(bundle, model / card["bundle_file"])
    card["bundle_sha256"] = hashlib.sha256((model / card["bundle_file"]).read_bytes()).hexdigest()
    (model / "model_card.json").write_text(json.dumps(card))


def test_the_bundle_is_checked_after_its_sha256(tmp_path):
    from sklearn.pipeline import Pipeline

    model = _model_copy(tmp_path)
    _rewrite_bundle(model, lambda b: b.update(pipeline=Pipeline([("kmeans", b["pipeline"].named_steps["kmeans"])])))
    with pytest.raises(ModelError, match=r"is not a valid model bundle \(pipeline: Value error, the pipeline's steps"):
        _ = SegmentationService.load(model).bundle   # unpickled on first use, verified first
    model = _model_copy(tmp_path / "2")
    _rewrite_bundle(model, lambda b: b.update(feature_names=["age"]))
    with pytest.raises(ModelError, match=r"was trained on features \['age'\]"):
        _ = SegmentationService.load(model).bundle   # unpickled on first use, verified first
    model = _model_copy(tmp_path / "3")
    _rewrite_bundle(model, lambda b: b.pop("pipeline"))
    with pytest.raises(ModelError, match="is not a model bundle"):
        _ = SegmentationService.load(model).bundle   # unpickled on first use, verified first


def test_one_customer_takes_the_plain_python_response_path_with_the_same_numbers(service, monkeypatch):
    """assign (chat, form, REST) computes the response chance and its drivers in plain floats, never through
    the numpy batch path (a numpy call per term made one answer ~300x slower); the numbers must equal the
    batch path's: the probability and each input's summed term contributions."""
    from assistant.model.response import ResponseModel, seven_field_inputs

    model = service.response_params.seven_fields
    rng = np.random.default_rng(12)
    rows = [profile(age=int(rng.integers(18, 90)), income=float(rng.uniform(5000, 150000)),
                    total_spending=int(rng.integers(5, 2500)), recency_days=int(rng.integers(0, 99)))
            for _ in range(40)]
    X = np.array([[getattr(p, n) for n in FIELD_NAMES] for p in rows], dtype=float)
    inputs = seven_field_inputs(X)
    expected_p = model.predict(inputs)
    contributions = model.contributions(inputs)

    def refuse(*args, **kwargs):
        raise AssertionError("the single-customer path must not use the numpy batch path")

    for name in ("predict", "score", "contributions", "design"):
        monkeypatch.setattr(ResponseModel, name, refuse)
    for i, p in enumerate(rows):
        response = service.assign(p).response
        assert response.probability == pytest.approx(expected_p[i], abs=1e-12)
        by_input: dict[str, float] = {}
        for term, part in zip(model.terms, contributions[i], strict=True):
            by_input[term.input] = by_input.get(term.input, 0.0) + float(part)
        for driver in response.drivers:
            assert driver.effect == pytest.approx(by_input[driver.field], abs=1e-9)
        strongest = max(by_input.values(), key=abs)
        assert not response.drivers or response.drivers[0].effect == pytest.approx(strongest, abs=1e-9)

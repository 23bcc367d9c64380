import json
import shutil

import numpy as np
import pytest
import yaml
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from assistant.core.errors import ModelError, TrainingError
from assistant.core.fields import FIELD_NAMES
from assistant.core.knowledge import load_knowledge
from assistant.model.bundle import ModelBundle
from assistant.model.card import ModelCard, SelectionRow
from assistant.model.data import load_customers
from assistant.model.segmentation import SegmentationService, load_card
from assistant.model.training import choose_k, find_elbow, fit_pipeline, name_clusters, train, write_model

# each test trains models: the fast loop (-m 'not slow') leaves them to CI
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_model(real_data, knowledge):
    return train(real_data, knowledge, k=4, seed=42)


def _keys(bundle, features):
    return np.array(bundle.segment_keys)[bundle.pipeline.predict(features[list(FIELD_NAMES)].astype(float))]


def test_real_training_reproduces_the_four_named_segments(real_model, real_data):
    _, card = real_model
    seg = {k: v.averages for k, v in card.segments.items()}
    assert set(seg) == {"casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts"}
    # VIP = highest spending and income
    assert max(seg, key=lambda k: seg[k]["total_spending"]) == "vip_customers"
    assert max(seg, key=lambda k: seg[k]["income"]) == "vip_customers"
    # Digital Enthusiasts = most web purchases among high spenders
    high = sorted(seg, key=lambda k: -seg[k]["total_spending"])[:2]
    assert max(high, key=lambda k: seg[k]["web_purchases"]) == "digital_enthusiasts"
    assert max(seg, key=lambda k: seg[k]["web_purchases"]) == "digital_enthusiasts"
    # Browsers = low spending, recency around 75 days; Casual = low spending, recent
    low = sorted(seg, key=lambda k: seg[k]["total_spending"])[:2]
    assert set(low) == {"browsers_without_conversion", "casual_shoppers"}
    assert 65 <= seg["browsers_without_conversion"]["recency_days"] <= 85
    assert seg["casual_shoppers"]["recency_days"] < 35
    assert seg["casual_shoppers"]["age"] == min(s["age"] for s in seg.values())
    assert sum(v.size for v in card.segments.values()) == 2212


def test_agrees_with_a_plain_kmeans(real_model, real_data):
    bundle, _ = real_model
    X = StandardScaler().fit_transform(real_data.features.to_numpy(float))
    plain = KMeans(4, n_init=10, random_state=42).fit_predict(X)
    assert adjusted_rand_score(plain, _keys(bundle, real_data.features)) >= 0.95


def test_committed_model_agrees_with_a_fresh_retrain(real_model, real_data, service):
    bundle, _ = real_model
    fresh = _keys(bundle, real_data.features)
    committed = service.assign_many(real_data.features).to_numpy()
    assert adjusted_rand_score(fresh, committed) >= 0.99
    assert (fresh == committed).mean() >= 0.99  # and the names agree, not only the partition


def test_selection_table_and_elbow(real_model):
    _, card = real_model
    table = card.selection
    assert [r.k for r in table] == list(range(2, 11))
    for row in table:
        assert set(row.model_dump()) == {"k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin",
                                         "stability"}
        assert 0 < row.stability <= 1
    inertias = [r.inertia for r in table]
    assert inertias == sorted(inertias, reverse=True)
    assert card.elbow.k == find_elbow([r.k for r in table], inertias)
    assert card.bootstrap_refits >= 20


def test_bootstrap_retrains_keep_every_name_on_the_analogous_cluster(real_data, knowledge, service):
    X = real_data.features
    committed = service.assign_many(X).to_numpy()
    rng = np.random.default_rng(0)
    for b in range(20):
        idx = rng.integers(0, len(X), len(X))
        pipe = fit_pipeline(X.iloc[idx], k=4, seed=100 + b)
        naming = name_clusters(pipe.named_steps["kmeans"].cluster_centers_, knowledge)
        keys = np.array(naming.keys)[pipe.predict(X.astype(float))]
        assert (keys == committed).mean() >= 0.9, f"bootstrap {b}"


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_other_seeds_keep_the_names(real_data, knowledge, service, seed):
    pipe = fit_pipeline(real_data.features, k=4, seed=seed)
    naming = name_clusters(pipe.named_steps["kmeans"].cluster_centers_, knowledge)
    keys = np.array(naming.keys)[pipe.predict(real_data.features.astype(float))]
    assert (keys == service.assign_many(real_data.features).to_numpy()).mean() >= 0.95


def test_unmatchable_clusters_fail_and_say_why(knowledge, tmp_path):
    kb_dir = tmp_path / "kb"
    shutil.copytree(knowledge.directory, kb_dir)
    data = yaml.safe_load((kb_dir / "segments.yaml").read_text())
    same = data["segments"][0]["signature"]
    for seg in data["segments"]:
        seg["signature"] = dict(same)  # four identical signatures: any naming is as good as another
    (kb_dir / "segments.yaml").write_text(yaml.safe_dump(data))
    kb = load_knowledge(kb_dir)
    centroids = np.array([[0, 1, 1, 0, 1, -1, 0], [0, -1, -1, -1, -1, 0.5, -1], [0, -1, -1, -1, -1, 0.5, 1], [0.3, 0.4, 0.5, 1.2, 0.7, 0.3, 0]])
    with pytest.raises(TrainingError, match="cannot name the clusters with confidence"):
        name_clusters(centroids, kb)


def test_k_other_than_the_knowledge_base_is_refused(knowledge):
    with pytest.raises(TrainingError, match="k=5 but the knowledge base describes 4 segments"):
        name_clusters(np.zeros((5, 7)), knowledge)


def _row(k, inertia, stability):
    return SelectionRow(k=k, inertia=inertia, stability=stability, silhouette=0.2, calinski_harabasz=500,
                        davies_bouldin=1.5)


def test_auto_k_rule():
    table = [_row(k, i, s) for k, i, s in [(2, 100, 0.99), (3, 60, 0.9), (4, 50, 0.5), (5, 45, 0.8), (6, 42, 0.7)]]
    assert find_elbow([r.k for r in table], [r.inertia for r in table]) == 3
    assert choose_k(table)[0] == 3
    table[1] = _row(3, 60, 0.6)
    assert choose_k(table)[0] == 2  # unstable elbow: most stable neighbour


def test_train_on_synthetic_data_writes_a_loadable_verified_model(synthetic_file, knowledge, tmp_path):
    data = load_customers(synthetic_file)
    bundle, card = train(data, knowledge, k=4, seed=1, ks=range(2, 6))
    write_model(bundle, card, tmp_path)
    written = json.loads((tmp_path / "model_card.json").read_text())
    assert written["data"]["sha256"] == data.sha256
    assert {"elbow", "silhouette", "pca"} <= set(written["plots"])
    for png in written["plots"].values():
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(written["pca"]["sample"]["x"]) == len(written["pca"]["sample"]["segment_key"]) > 100
    service = SegmentationService.load(tmp_path)
    assert set(service.assign_many(data.features)) == set(written["segments"])


def test_train_gives_the_typed_models_and_writes_them_as_json_and_a_plain_dict(synthetic_file, knowledge, tmp_path):
    import joblib

    data = load_customers(synthetic_file)
    bundle, card = train(data, knowledge, k=4, seed=1, ks=range(2, 5))
    assert isinstance(bundle, ModelBundle) and isinstance(card, ModelCard)
    assert bundle.segment_keys == card.naming.cluster_keys and bundle.feature_names == list(FIELD_NAMES)
    assert card.bundle_file is None and not {"bundle_file", "bundle_sha256", "plots"} & set(card.to_json())
    write_model(bundle, card, tmp_path, plots=False)
    written = json.loads((tmp_path / "model_card.json").read_text())
    loaded = load_card(tmp_path)
    assert loaded.to_json() == written and "plots" not in written
    assert loaded.model_copy(update={"bundle_file": None, "bundle_sha256": None, "scoring_file": None,
                                     "scoring_sha256": None}) == card
    raw = joblib.load(tmp_path / written["bundle_file"])
    assert type(raw) is dict and list(raw) == list(ModelBundle.model_fields)   # a pickle naming no class of ours
    assert not any(type(v).__module__.startswith("assistant") for v in raw.values())
    assert ModelBundle.from_pickle(raw, source="bundle").segment_keys == bundle.segment_keys


def test_interrupted_write_keeps_the_previous_model(synthetic_file, knowledge, tmp_path, monkeypatch):
    data = load_customers(synthetic_file)
    bundle, card = train(data, knowledge, k=4, seed=1, ks=range(2, 5))
    write_model(bundle, card, tmp_path, plots=False)
    before = (tmp_path / "model_card.json").read_bytes()
    bundle2, card2 = train(data, knowledge, k=4, seed=2, ks=range(2, 5))

    import assistant.model.training as training

    real_write = training.atomic_write_bytes

    def crash_on_card(path, payload):
        if path.name == "model_card.json":
            raise KeyboardInterrupt("killed")
        real_write(path, payload)

    monkeypatch.setattr(training, "atomic_write_bytes", crash_on_card)
    with pytest.raises(KeyboardInterrupt):
        write_model(bundle2, card2, tmp_path, plots=False)
    assert (tmp_path / "model_card.json").read_bytes() == before
    SegmentationService.load(tmp_path)  # still verified and loadable
    assert not list(tmp_path.glob(".*.tmp"))


def test_tampered_bundle_is_refused_before_unpickling(synthetic_file, knowledge, tmp_path):
    data = load_customers(synthetic_file)
    bundle, card = train(data, knowledge, k=4, seed=1, ks=range(2, 5))
    write_model(bundle, card, tmp_path, plots=False)
    name = json.loads((tmp_path / "model_card.json").read_text())["bundle_file"]
    blob = bytearray((tmp_path / name).read_bytes())
    blob[-5] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(blob))
    service = SegmentationService.load(tmp_path)     # scoring reads the plain parameters, never the pickle
    with pytest.raises(ModelError, match="does not match its model card.*refusing to unpickle"):
        _ = service.bundle

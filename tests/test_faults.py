"""Faults: a killed training run, a broken or tampered model. The previous model stays in force and
every refusal is one clear line naming the file and the fix."""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.core.errors import ModelError
from assistant.model.segmentation import SegmentationService, default_model_dir

pytestmark = pytest.mark.slow

ARGS = ["--age", "45", "--income", "90000", "--total-spending", "2000", "--web-purchases", "5",
        "--store-purchases", "9", "--web-visits-per-month", "2", "--recency-days", "40"]


@pytest.fixture()
def model_copy(tmp_path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(default_model_dir(), target)
    return target


def predict(model_dir):
    return subprocess.run([sys.executable, "-m", "assistant", "predict", *ARGS, "--json", "--model-dir", str(model_dir)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("delay", [0.5, 2.0, 3.5])
def test_sigkill_during_training_leaves_the_previous_model_intact(model_copy, synthetic_file, delay):
    before = {p.name: p.read_bytes() for p in model_copy.iterdir()}
    proc = subprocess.Popen([sys.executable, "-m", "assistant", "train", "--data", str(synthetic_file),
                             "--out", str(model_copy), "--seed", "5"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    card = json.loads((model_copy / "model_card.json").read_text())
    if card == json.loads(before["model_card.json"]):
        assert (model_copy / card["bundle_file"]).read_bytes() == before[card["bundle_file"]]
    SegmentationService.load(model_copy)  # whichever card is in force, it verifies and loads
    assert predict(model_copy).returncode == 0


def test_tampered_scoring_parameters_refused_by_the_cli(model_copy):
    card = json.loads((model_copy / "model_card.json").read_text())
    params = model_copy / card["scoring_file"]
    params.write_bytes(params.read_bytes().replace(b"1", b"2", 1))
    out = predict(model_copy)
    assert out.returncode == 2
    assert "does not match its model card" in out.stderr and "segment-assistant train" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_tampered_bundle_is_never_unpickled(model_copy):
    card = json.loads((model_copy / "model_card.json").read_text())
    bundle = model_copy / card["bundle_file"]
    bundle.write_bytes(bundle.read_bytes()[:-10] + b"0123456789")
    service = SegmentationService.load(model_copy)      # scoring reads the plain parameters only
    with pytest.raises(ModelError, match="does not match its model card"):
        _ = service.bundle


def test_corrupted_bundle_with_a_matching_card_is_refused(model_copy):
    import hashlib

    card = json.loads((model_copy / "model_card.json").read_text())
    junk = b"this is not a joblib file"
    (model_copy / card["bundle_file"]).write_bytes(junk)
    card["bundle_sha256"] = hashlib.sha256(junk).hexdigest()
    (model_copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="cannot be loaded"):
        _ = SegmentationService.load(model_copy).bundle


@pytest.mark.parametrize("damage", ["missing_card", "missing_scoring", "garbage_card"])
def test_missing_or_broken_model_files(model_copy, damage):
    card = json.loads((model_copy / "model_card.json").read_text())
    if damage == "missing_card":
        (model_copy / "model_card.json").unlink()
    elif damage == "missing_scoring":
        (model_copy / card["scoring_file"]).unlink()
    else:
        (model_copy / "model_card.json").write_text("{not json")
    out = predict(model_copy)
    assert out.returncode == 2 and "segment-assistant train" in out.stderr and "Traceback" not in out.stderr

import json
import subprocess
import sys
from pathlib import Path

import pytest

ARGS = ["--age", "45", "--income", "90000", "--total-spending", "2000", "--web-purchases", "5",
        "--store-purchases", "9", "--web-visits-per-month", "2", "--recency-days", "40"]


def run(*args, input=None):
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True, input=input,
                          timeout=600)


def test_predict_json_has_key_and_name_at_top_level():
    out = run("predict", *ARGS, "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["segment_key"] == "vip_customers" and result["segment_name"] == "VIP Customers"
    assert result["strategy"]["headline"]


def test_predict_text():
    out = run("predict", *ARGS)
    assert out.returncode == 0 and "VIP Customers" in out.stdout and "Strategy:" in out.stdout


@pytest.mark.parametrize("change,message", [
    (("--age", "250"), "age=250 is above the maximum of 110"),
    (("--income", "lots"), "income='lots' is not a number"),
    (("--web-purchases", "-2"), "web_purchases=-2 is below the minimum of 0"),
])
def test_bad_input_exits_2_with_one_line(change, message):
    args = list(ARGS)
    i = args.index(change[0])
    args[i + 1] = change[1]
    out = run("predict", *args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


def test_missing_flag_exits_2():
    out = run("predict", "--age", "40")
    assert out.returncode == 2 and "required" in out.stderr and "Traceback" not in out.stderr


def test_segments_and_model_card():
    out = run("segments", "--json")
    assert out.returncode == 0
    assert {s["key"] for s in json.loads(out.stdout)} == {
        "casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts"}
    card = json.loads(run("model-card").stdout)
    assert card["k"] == 4 and card["bundle_sha256"]


def test_missing_model_dir_exits_2(tmp_path):
    out = run("predict", *ARGS, "--model-dir", str(tmp_path))
    assert out.returncode == 2 and "segment-assistant train" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_train_on_synthetic_data(synthetic_file, tmp_path):
    out = run("train", "--data", str(synthetic_file), "--out", str(tmp_path / "m"), "--seed", "3",
              "--response-repeats", "3")
    assert out.returncode == 0, out.stderr
    assert "model written" in out.stdout and "VIP Customers" in out.stdout
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    for model in card["response"]["models"]:        # the response procedure repeated on 3 other splits
        assert model["repeated"]["splits"] == 3 and model["repeated"]["seeds"] == [4, 5, 6]
        assert model["repeated"]["roc_auc_min"] <= model["repeated"]["roc_auc_mean"] <= model["repeated"]["roc_auc_max"]
    pred = run("predict", *ARGS, "--json", "--model-dir", str(tmp_path / "m"))
    assert json.loads(pred.stdout)["segment_key"] == "vip_customers"


def test_every_command_takes_model_dir():
    from assistant.adapters.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["train", "--data", "x.csv", "--model-dir", "/tmp/m"]).out == Path("/tmp/m")
    assert parser.parse_args(["train", "--data", "x.csv", "--out", "/tmp/n"]).out == Path("/tmp/n")
    for command in (["segments"], ["model-card"], ["chat"], ["serve"], ["report", "-o", "r.html"],
                    ["score", "in.csv", "-o", "out.csv"]):
        assert parser.parse_args([*command, "--model-dir", "/tmp/m"]).model_dir == Path("/tmp/m"), command


@pytest.mark.slow
def test_train_refuses_bad_k_and_missing_file(tmp_path):
    out = run("train", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "m"))
    assert out.returncode == 2 and "does not exist" in out.stderr
    out = run("train", "--data", str(tmp_path / "none.csv"), "--k", "many")
    assert out.returncode == 2 and "--k='many'" in out.stderr
    out = run("train", "--data", str(tmp_path / "none.csv"), "--response-repeats", "-1")
    assert out.returncode == 2 and "--response-repeats=-1 is below the minimum of 0" in out.stderr

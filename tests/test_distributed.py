"""The Dask engine: its output equals the local engine's (LocalCluster, processes=False, 3 partitions)."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("dask.dataframe", reason="dask is not installed (pip install -e .[dask])")
pytest.importorskip("distributed", reason="distributed is not installed (pip install -e .[dask])")

from assistant.batch.distributed import dask_client, resolve_partitions, score_partitions  # noqa: E402
from assistant.batch.score import score_file  # noqa: E402
from assistant.core.errors import AssistantError, DataFileError  # noqa: E402
from assistant.model.synthetic import generate_customers, write_customers  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        yield c


@pytest.fixture()
def partitions(tmp_path):
    """3 raw partitions of one synthetic file (the latest Dt_Customer sits in one partition only)."""
    raw = generate_customers(1800, seed=31)
    raw.loc[:1199, "Dt_Customer"] = "15-05-2013"        # partitions 0 and 1 end in 2013, partition 2 in 2014
    whole = write_customers(raw, tmp_path / "whole.csv")
    parts = tmp_path / "parts"
    parts.mkdir()
    for i in range(3):
        write_customers(raw.iloc[i * 600:(i + 1) * 600], parts / f"part-{i}.csv")
    return whole, parts


def read(path, sep=","):   # outputs are comma CSV whatever the input
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)


def test_dask_output_equals_the_local_engine(service, client, partitions, tmp_path):
    whole, parts = partitions
    local = score_file(service, whole, tmp_path / "local.csv")
    result = score_partitions(service, parts, tmp_path / "out", client=client)
    assert not result.failures and len(result.partitions) == 3
    # the partitions' years differ, but every one is scored against the dataset's latest date
    assert {p.collection_year for p in result.partitions} == {local.collection_year} == {2014}
    assert score_file(service, parts / "part-0.csv", tmp_path / "alone.csv").collection_year == 2013
    combined = pd.concat([read(tmp_path / "out" / f"part-{i}.csv") for i in range(3)], ignore_index=True)
    pd.testing.assert_frame_equal(combined, read(tmp_path / "local.csv"))
    # the campaign-response columns come through the Dask engine too (raw partitions: the full-record model)
    probability = pd.to_numeric(combined["response_probability"])
    assert probability.between(0, 1).all() and probability.nunique() > 10
    assert set(combined["response_model"]) == {"full_record"}
    total = result.total
    assert (total.rows_read, total.rows_scored, total.rows_failed) == (local.rows_read, local.rows_scored, local.rows_failed)
    assert total.counts == local.counts
    for key in local.counts:
        for name, value in local.averages[key].items():
            assert total.averages[key][name] == pytest.approx(value, rel=1e-9)
    # errors: one file per partition, row numbers counted within the partition
    local_errors = read(tmp_path / "local.errors.csv")
    part_errors = []
    for i in range(3):
        path = tmp_path / "out" / f"part-{i}.errors.csv"
        if path.exists():
            errors = read(path)
            errors["row"] = (errors["row"].astype(int) + 600 * i).astype(str)
            part_errors.append(errors)
    pd.testing.assert_frame_equal(pd.concat(part_errors, ignore_index=True), local_errors)


def test_each_partition_equals_the_local_engine_on_that_file(service, client, tmp_path):
    frame = generate_customers(900, seed=32)
    parts = tmp_path / "parts"
    parts.mkdir()
    write_customers(frame.iloc[:300], parts / "a.csv")
    frame.iloc[300:600].to_parquet(parts / "b.parquet")
    write_customers(frame.iloc[600:], parts / "c.csv", delimiter=";")
    result = score_partitions(service, str(parts / "*"), tmp_path / "out", fmt="parquet", client=client)
    assert [p.output_path for p in result.partitions] == [str(tmp_path / "out" / f"{n}.parquet") for n in "abc"]
    for name in "abc":
        source = next(parts.glob(f"{name}.*"))
        score_file(service, source, tmp_path / f"local-{name}.parquet", collection_year=2014)
        a = pd.read_parquet(tmp_path / "out" / f"{name}.parquet")
        b = pd.read_parquet(tmp_path / f"local-{name}.parquet")
        pd.testing.assert_frame_equal(a, b)


def test_a_bad_partition_does_not_stop_the_others(service, client, partitions, tmp_path):
    _, parts = partitions
    (parts / "part-9.csv").write_text("age,income\n1,2\n")
    result = score_partitions(service, parts, tmp_path / "out", client=client)
    assert len(result.partitions) == 3 and len(result.failures) == 1
    assert result.failures[0].input_path.endswith("part-9.csv")
    assert "missing column(s) for: total_spending" in result.failures[0].error
    assert not (tmp_path / "out" / "part-9.csv").exists()


def test_resolve_partitions(tmp_path):
    with pytest.raises(DataFileError, match="no CSV or Parquet partitions"):
        resolve_partitions(tmp_path)
    (tmp_path / "b.csv").write_text("x")
    (tmp_path / "a.parquet").write_text("x")
    (tmp_path / "notes.md").write_text("x")
    assert [p.name for p in resolve_partitions(tmp_path)] == ["a.parquet", "b.csv"]
    assert [p.name for p in resolve_partitions(str(tmp_path / "*.csv"))] == ["b.csv"]


def test_clashing_output_names_are_refused(service, client, tmp_path):
    (tmp_path / "x.csv").write_text("a")
    (tmp_path / "x.tsv").write_text("a")
    with pytest.raises(DataFileError, match="same file: x.csv"):
        score_partitions(service, tmp_path, tmp_path / "out", client=client)


def test_missing_dask_says_how_to_install(monkeypatch, service, tmp_path):
    monkeypatch.setitem(sys.modules, "distributed", None)       # import distributed -> ImportError
    (tmp_path / "a.csv").write_text("a")
    with pytest.raises(AssistantError, match=r"pip install -e \.\[dask\]"):
        score_partitions(service, tmp_path, tmp_path / "out")


def test_unreachable_scheduler(service, tmp_path):
    with pytest.raises(AssistantError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with dask_client("tcp://127.0.0.1:9"):
            pass


def test_cli_dask_engine(partitions, tmp_path):
    _, parts = partitions
    done = subprocess.run([sys.executable, "-m", "assistant", "score", str(parts), "-o", str(tmp_path / "out"),
                           "--engine", "dask"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "3 partition(s) scored into" in done.stdout and "Scored" in done.stdout
    assert "3 of 3 partition(s) done" in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("part-*.csv")) == [
        "part-0.csv", "part-0.errors.csv", "part-1.csv", "part-1.errors.csv", "part-2.csv", "part-2.errors.csv"]
    (parts / "part-9.csv").write_text("age,income\n1,2\n")
    done = subprocess.run([sys.executable, "-m", "assistant", "score", str(parts), "-o", str(tmp_path / "out2"),
                           "--engine", "dask"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 2 and "1 of 4 partition(s) could not be scored" in done.stderr
    assert "Traceback" not in done.stderr

"""Batch scoring of customer files: formats, validation, errors file, injection, atomicity, CLI."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assistant.batch.inspect import ADDED_COLUMNS, inspect_file
from assistant.batch.score import score_file
from assistant.batch.texts import BatchTexts, load_batch_texts
from assistant.batch.write import default_errors_path, neutralise_name
from assistant.core.errors import DataFileError, KnowledgeBaseError
from assistant.core.fields import FIELD_NAMES, FIELDS
from assistant.core.schemas import parse_profile
from assistant.model.data import clean_customers
from assistant.model.synthetic import generate_customers, write_customers

GOOD = {"age": 38, "income": 71000, "total_spending": 1200, "web_purchases": 5, "store_purchases": 7,
        "web_visits_per_month": 6, "recency_days": 14}


# ---------------------------------------------------------------------------- helpers


def read_out(path: Path, sep: str = ",") -> pd.DataFrame:
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)


def fields_frame(n: int, seed: int) -> pd.DataFrame:
    """n customers as the seven fields (cleaned synthetic data) with an ID column first."""
    data = clean_customers(generate_customers(n, seed=seed))
    frame = data.features.copy()
    frame.insert(0, "ID", data.raw["ID"].to_numpy())
    return frame


def write_fields(tmp_path: Path, rows: list[dict], name: str = "in.csv", sep: str = ",",
                 header: list[str] | None = None, encoding: str = "utf-8") -> Path:
    """A small file in the seven-field format; values written exactly as given (strings stay strings)."""
    header = header or ["ID", *FIELD_NAMES]
    path = tmp_path / name
    with open(path, "w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh, delimiter=sep)
        writer.writerow(header)
        for i, row in enumerate(rows, start=1):
            values = {"ID": str(i), **dict(row.items())}
            writer.writerow([values.get(h, values.get(f, "")) for h, f in zip(header, ["ID", *FIELD_NAMES])])
    return path


def expected_labels(service, frame: pd.DataFrame) -> list[str]:
    return service.assign_many(frame[list(FIELD_NAMES)].astype(float)).tolist()


# ---------------------------------------------------------------------------- both formats, labels


def test_fields_file_labels_equal_assign_many_row_by_row(service, tmp_path):
    frame = fields_frame(3000, seed=11)
    src = tmp_path / "fields.csv"
    frame.to_csv(src, index=False)
    summary = score_file(service, src, tmp_path / "out.csv", chunksize=700)
    out = read_out(tmp_path / "out.csv")
    assert summary.input_format == "fields" and summary.rows_read == len(frame) == summary.rows_scored
    assert summary.rows_failed == 0 and summary.errors_path is None
    assert not default_errors_path(tmp_path / "out.csv").exists()
    assert list(out.columns) == ["ID", *FIELD_NAMES, *ADDED_COLUMNS]      # the ID column is kept, no row column
    assert out["ID"].tolist() == frame["ID"].astype(str).tolist()
    assert out["segment_key"].tolist() == expected_labels(service, frame)
    names = {k: service.segment_name(k) for k in service.cluster_keys}
    assert (out["segment_name"] == out["segment_key"].map(names)).all()
    assert set(out["confidence"]) <= {"clear", "borderline"}


def test_confidence_and_margin_match_the_single_customer_result(service, tmp_path):
    frame = fields_frame(400, seed=12)
    src = tmp_path / "fields.csv"
    frame.to_csv(src, index=False)
    score_file(service, src, tmp_path / "out.csv")
    out = read_out(tmp_path / "out.csv")
    for i in range(0, 400, 37):
        result = service.assign(frame.iloc[i][list(FIELD_NAMES)].to_dict())
        assert out.loc[i, "segment_key"] == result.segment_key
        assert out.loc[i, "confidence"] == result.confidence.level
        assert float(out.loc[i, "confidence_margin"]) == pytest.approx(result.confidence.margin, abs=5e-5)


def test_raw_marketing_file_is_derived_like_training(service, tmp_path):
    raw = generate_customers(2500, seed=21)
    src = write_customers(raw, tmp_path / "raw.csv")
    summary = score_file(service, src, tmp_path / "out.csv")
    assert summary.input_format == "raw" and summary.collection_year == 2014
    out = read_out(tmp_path / "out.csv")            # what the output's name says: comma CSV
    errors = read_out(tmp_path / "out.errors.csv")
    assert list(out.columns) == [*raw.columns, *ADDED_COLUMNS]
    # nothing is dropped silently: every input row is either scored or in the errors file
    assert summary.rows_read == 2500 == summary.rows_scored + summary.rows_failed == len(out) + len(errors)
    assert sorted(out["ID"].astype(int).tolist() + errors["ID"].astype(int).tolist()) == sorted(raw["ID"].tolist())
    # labels equal the service on the fields training derives (rows both keep)
    data = clean_customers(raw)
    expected = dict(zip(data.raw["ID"].astype(str), expected_labels(service, data.features)))
    got = dict(zip(out["ID"], out["segment_key"]))
    shared = set(expected) & set(got)
    assert len(shared) >= 2400
    assert all(got[i] == expected[i] for i in shared)
    # the rows without income are the errors (the 1893 birth year gives age 121 > 110)
    assert (errors["error"] == "Income is missing").sum() == raw["Income"].isna().sum()
    assert "age=121 is above the maximum of 110 (age = 2014 - Year_Birth=1893)" in set(errors["error"])


def test_raw_ages_use_the_files_latest_date(service, tmp_path):
    raw = generate_customers(300, seed=22, quirks=False)
    dates = pd.to_datetime(raw["Dt_Customer"], format="%d-%m-%Y") + pd.DateOffset(years=6)   # latest: 2020
    raw["Dt_Customer"] = dates.dt.strftime("%d-%m-%Y")
    src = write_customers(raw, tmp_path / "raw.csv")
    summary = score_file(service, src, tmp_path / "out.csv")
    assert summary.collection_year == 2020
    features = clean_customers(raw).features                                 # training derives the same way
    assert features["age"].tolist() == (2020 - raw["Year_Birth"]).tolist()
    out = read_out(tmp_path / "out.csv")
    assert out["segment_key"].tolist() == expected_labels(service, features)
    forced = score_file(service, src, tmp_path / "forced.csv", collection_year=2014)
    assert forced.collection_year == 2014
    younger = features.assign(age=features["age"] - 6)
    assert read_out(tmp_path / "forced.csv")["segment_key"].tolist() == expected_labels(service, younger)


def test_summary_counts_and_averages(service, tmp_path):
    frame = fields_frame(1500, seed=13)
    src = tmp_path / "fields.csv"
    frame.to_csv(src, index=False)
    summary = score_file(service, src, tmp_path / "out.csv", chunksize=400)
    labels = pd.Series(expected_labels(service, frame))
    assert summary.counts == {k: int((labels == k).sum()) for k in service.knowledge.segments}
    assert sum(summary.counts.values()) == summary.rows_scored == len(frame)
    means = frame.assign(key=labels.to_numpy()).groupby("key")[list(FIELD_NAMES)].mean()
    for key, averages in summary.averages.items():
        for name in FIELD_NAMES:
            assert averages[name] == pytest.approx(means.loc[key, name], rel=1e-9)
    assert sum(s.share for s in summary.segments) == pytest.approx(1.0)
    assert summary.model_dump()["segments"][0]["segment_key"] and summary.model_dump()["segments"][0]["segment_name"]


def test_chunk_size_does_not_change_the_output(service, tmp_path):
    frame = fields_frame(1000, seed=14)
    last = len(frame) - 1
    frame.loc[[3, 500, last], "age"] = 250
    src = tmp_path / "fields.csv"
    frame.to_csv(src, index=False)
    score_file(service, src, tmp_path / "a.csv", chunksize=7)
    score_file(service, src, tmp_path / "b.csv", chunksize=1_000_000)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.errors.csv").read_bytes() == (tmp_path / "b.errors.csv").read_bytes()
    assert read_out(tmp_path / "a.errors.csv")["row"].tolist() == ["4", "501", str(last + 1)]


# ---------------------------------------------------------------------------- headers


def test_synonym_headers_match_the_fields(service, tmp_path):
    rows = [GOOD, {**GOOD, "income": 20000, "total_spending": 50, "recency_days": 80}]
    canonical = write_fields(tmp_path, rows, name="canonical.csv")
    synonyms = write_fields(tmp_path, rows, name="synonyms.csv", sep=";", header=[
        "Customer ID", "Age", "Yearly Income", "Total Spending", "online purchases", "In-Store Purchases",
        "Web_Visits", "Recency"])
    assert inspect_file(synonyms).layout == "fields"
    score_file(service, canonical, tmp_path / "a.csv")
    score_file(service, synonyms, tmp_path / "b.csv")
    a, b = read_out(tmp_path / "a.csv"), read_out(tmp_path / "b.csv")
    assert b.columns[:8].tolist() == ["Customer ID", "Age", "Yearly Income", "Total Spending", "online purchases",
                                      "In-Store Purchases", "Web_Visits", "Recency"]
    assert a["segment_key"].tolist() == b["segment_key"].tolist()
    assert a["segment_key"].tolist() == expected_labels(service, pd.DataFrame(rows))


def test_missing_columns_are_all_named(service, tmp_path):
    path = tmp_path / "few.csv"
    path.write_text("age,income,total_spending\n38,71000,1200\n")
    with pytest.raises(DataFileError) as info:
        score_file(service, path, tmp_path / "out.csv")
    for name in ("web_purchases", "store_purchases", "web_visits_per_month", "recency_days"):
        assert name in str(info.value)
    assert "age," not in str(info.value).split("for:")[1].split("(")[0]
    raw = generate_customers(50, seed=1).drop(columns=["MntFruits", "Dt_Customer"])
    write_customers(raw.assign(Dt_Customer="01-01-2014"), tmp_path / "raw.csv")
    bad = pd.read_csv(tmp_path / "raw.csv", sep="\t").drop(columns=["Dt_Customer"])
    bad.to_csv(tmp_path / "raw.csv", sep="\t", index=False)
    with pytest.raises(DataFileError, match=r"missing required column\(s\): Dt_Customer, MntFruits"):
        score_file(service, tmp_path / "raw.csv", tmp_path / "out.csv")


def test_a_field_given_twice_is_refused(service, tmp_path):
    path = write_fields(tmp_path, [GOOD], header=["Age", *FIELD_NAMES])
    with pytest.raises(DataFileError, match="both give age"):
        score_file(service, path, tmp_path / "out.csv")


# ---------------------------------------------------------------------------- bad rows


def test_bad_rows_go_to_the_errors_file_and_good_rows_are_scored(service, tmp_path):
    rows = [
        GOOD,
        {**GOOD, "age": 250},
        {**GOOD, "income": "abc", "total_spending": ""},
        {**GOOD, "web_purchases": -1},
        {**GOOD, "age": "38.5", "recency_days": "4000"},
        {**GOOD, "store_purchases": "nan"},
        {**GOOD, "age": " 45 ", "income": "1,200", "total_spending": "1e3"},      # numbers as text: fine
        dict.fromkeys(FIELD_NAMES, ""),
    ]
    src = write_fields(tmp_path, rows)
    summary = score_file(service, src, tmp_path / "out.csv")
    assert (summary.rows_read, summary.rows_scored, summary.rows_failed) == (8, 2, 6)
    assert summary.errors_path == str(tmp_path / "out.errors.csv")
    errors = read_out(tmp_path / "out.errors.csv")
    assert list(errors.columns) == ["row", "error", "ID", *FIELD_NAMES]
    assert dict(zip(errors["row"], errors["error"])) == {
        "2": "age=250 is above the maximum of 110",
        "3": "income='abc' is not a number; total_spending is missing",
        "4": "web_purchases=-1 is below the minimum of 0",
        "5": "age=38.5 must be a whole number; recency_days=4000 is above the maximum of 3,650",
        "6": "store_purchases=nan is not a finite number",
        "8": "; ".join(f"{name} is missing" for name in FIELD_NAMES),
    }
    assert errors.loc[0, "age"] == "250"                                    # the input values come along
    out = read_out(tmp_path / "out.csv")
    assert out["ID"].tolist() == ["1", "7"]
    as_numbers = {**GOOD, "age": 45, "income": 1200, "total_spending": 1000}
    assert out["segment_key"].tolist() == expected_labels(service, pd.DataFrame([GOOD, as_numbers]))
    assert out.loc[1, "age"] == " 45 " and out.loc[1, "income"] == "1,200"  # input cells are copied verbatim


def test_messages_agree_with_the_single_customer_rules(service, tmp_path):
    """Every message in the errors file is what parse_profile says about that value."""
    rows = [{**GOOD, "age": 17}, {**GOOD, "income": "-5"}, {**GOOD, "web_visits_per_month": 301},
            {**GOOD, "store_purchases": "2.5"}, {**GOOD, "recency_days": "x1"}]
    src = write_fields(tmp_path, rows)
    score_file(service, src, tmp_path / "out.csv")
    errors = read_out(tmp_path / "out.errors.csv")
    for row, message in zip(rows, errors["error"]):
        with pytest.raises(Exception) as info:
            parse_profile(row)
        assert message in str(info.value)


def test_negative_amounts_in_raw_files_are_refused(service, tmp_path):
    raw = generate_customers(20, seed=23, quirks=False).astype({"Year_Birth": object})
    raw.loc[4, "MntWines"] = -5
    raw.loc[4, "MntMeatProducts"] = raw.loc[4, "MntMeatProducts"] + 500     # the total stays positive
    raw.loc[7, "NumWebPurchases"] = -2
    raw.loc[9, "Year_Birth"] = "19x0"
    src = write_customers(raw, tmp_path / "raw.csv")
    summary = score_file(service, src, tmp_path / "out.csv")
    assert summary.rows_failed == 3
    errors = read_out(tmp_path / "out.errors.csv")
    assert dict(zip(errors["row"], errors["error"])) == {
        "5": "MntWines=-5 is below the minimum of 0",
        "8": "web_purchases=-2 is below the minimum of 0",
        "10": "Year_Birth='19x0' is not a number",
    }


def test_ragged_rows_and_blank_lines_keep_exact_row_numbers(service, tmp_path):
    header = "id,age,income,total_spending,web_purchases,store_purchases,web_visits_per_month,recency_days\n"
    good = "38,71000,1200,5,7,6,14"
    path = tmp_path / "ragged.csv"
    path.write_text(header + f"a,{good}\nb,38\n\nc,{good},extra\nd,250,{good.split(',', 1)[1]}\ne,{good}\n")
    summary = score_file(service, path, tmp_path / "out.csv")
    assert (summary.rows_read, summary.rows_scored, summary.rows_failed) == (5, 2, 3)
    errors = read_out(tmp_path / "out.errors.csv")
    assert errors["row"].tolist() == ["2", "3", "4"]
    assert errors["error"].tolist()[:2] == ["has 2 value(s), expected 8 (is the delimiter comma right?)",
                                            "has 9 value(s), expected 8 (is the delimiter comma right?)"]
    assert errors["error"].tolist()[2] == "age=250 is above the maximum of 110"
    assert read_out(tmp_path / "out.csv")["id"].tolist() == ["a", "e"]


def test_blank_lines_before_the_header(service, tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n \n" + ",".join(FIELD_NAMES) + "\n38,71000,1200,5,7,6,14\n\n40,20000,50,1,2,8,80\n")
    summary = score_file(service, path, tmp_path / "out.csv")
    assert (summary.rows_read, summary.rows_scored, summary.rows_failed) == (2, 2, 0)
    assert read_out(tmp_path / "out.csv")["row"].tolist() == ["1", "2"]


def test_the_python_reader_writes_what_the_arrow_reader_writes(service, tmp_path, monkeypatch):
    """Odd files fall back to Python's csv module; on a plain file both readers give the same bytes."""
    import assistant.batch.read as batch

    frame = fields_frame(700, seed=26)
    notes = ["=x", " padded ", "", "a;b", 'say "hi"', "-3", "plain"]
    frame.insert(1, "note", [notes[i % len(notes)] for i in range(len(frame))])
    frame["income"] = frame["income"].astype(object)
    frame.loc[[5, 77], "income"] = ["abc", "-1"]
    frame.to_csv(tmp_path / "in.csv", index=False, sep=";")
    score_file(service, tmp_path / "in.csv", tmp_path / "arrow.csv", chunksize=64)

    def refuse(*args, **kwargs):
        raise batch._NeedsFallback("forced")
        yield

    monkeypatch.setattr(batch, "_arrow_csv_chunks", refuse)
    score_file(service, tmp_path / "in.csv", tmp_path / "python.csv", chunksize=64)
    assert (tmp_path / "python.csv").read_bytes() == (tmp_path / "arrow.csv").read_bytes()
    assert (tmp_path / "python.errors.csv").read_bytes() == (tmp_path / "arrow.errors.csv").read_bytes()


def test_quoted_line_breaks_are_read(service, tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('note,' + ",".join(FIELD_NAMES) + '\n"two\nlines",38,71000,1200,5,7,6,14\nplain,40,20000,50,1,2,8,80\n')
    summary = score_file(service, path, tmp_path / "out.csv")
    assert summary.rows_scored == 2
    out = read_out(tmp_path / "out.csv")
    assert out["note"].tolist() == ["two\nlines", "plain"]


# ---------------------------------------------------------------------------- unreadable files


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (b"\n\n  \n", "is empty"),
    (("ID," + ",".join(FIELD_NAMES) + "\n").encode(), "has a header but no data rows"),
    (bytes(range(256)) * 8, "is not a text file"),
    (b"PK\x03\x04" + b"\x00" * 100, "looks like a spreadsheet"),
    (("|".join(FIELD_NAMES) + "\n38|1|2|3|4|5|6\n").encode(), "cannot find a delimiter"),
    (("\t".join(FIELD_NAMES) + "\n" + "38,71000,1200,5,7,6,14\n" * 3).encode(), "is the delimiter tab right?"),
])
def test_unreadable_files_raise_one_clear_error(service, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=message) as info:
        score_file(service, path, tmp_path / "out.csv")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.csv"]              # no temporary files left behind


def test_missing_input_and_folder_input(service, tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        score_file(service, tmp_path / "nope.csv", tmp_path / "out.csv")
    with pytest.raises(DataFileError, match="--engine dask"):
        score_file(service, tmp_path, tmp_path / "out.csv")
    src = write_fields(tmp_path, [GOOD])
    with pytest.raises(DataFileError, match="is the input file"):
        score_file(service, src, src)
    with pytest.raises(DataFileError, match="output folder"):
        score_file(service, src, tmp_path / "no" / "out.csv")


def test_an_unwritable_output_is_a_clear_error(service, tmp_path, monkeypatch):
    import tempfile

    src = write_fields(tmp_path, [GOOD])

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out.csv"))

    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    with pytest.raises(DataFileError, match="No space left on device"):
        score_file(service, src, tmp_path / "out.csv")


def test_not_parquet_with_a_parquet_suffix(service, tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text("age,income\n1,2\n")
    with pytest.raises(DataFileError, match="not a readable Parquet file"):
        score_file(service, path, tmp_path / "out.csv")


# ---------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-8-sig", "utf-8"])
def test_encodings(service, tmp_path, encoding):
    name = "Jos\u00e9 M\u00fcller \u2013 caf\u00e9" if encoding in ("cp1252", "utf-8-sig", "utf-8") else "Jos\u00e9 M\u00fcller"
    path = tmp_path / "enc.csv"
    header = ["Name", "Age", "Income", "Total Spending", "Web Purchases", "Store Purchases", "Web Visits", "Recency"]
    path.write_bytes((";".join(header) + "\n" + ";".join([name, "38", "71000", "1200", "5", "7", "6", "14"]) + "\n")
                     .encode(encoding))
    summary = score_file(service, path, tmp_path / "out.csv")
    assert summary.rows_scored == 1
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, encoding="utf-8")   # output is always UTF-8
    assert out.columns.tolist()[:2] == ["row", "Name"] and out.loc[0, "Name"] == name
    assert out.loc[0, "segment_key"] == service.assign(GOOD).segment_key


def test_a_latin1_byte_far_into_the_file_is_found(service, tmp_path):
    frame = fields_frame(2000, seed=15)
    frame.insert(1, "city", "Berlin")
    frame.loc[len(frame) - 3, "city"] = "K\u00f6ln"
    path = tmp_path / "late.csv"
    frame.to_csv(path, index=False, encoding="latin-1")
    score_file(service, path, tmp_path / "out.csv")
    out = read_out(tmp_path / "out.csv")
    assert out.loc[len(frame) - 3, "city"] == "K\u00f6ln" and (out["city"] == "Berlin").sum() == len(frame) - 1


# ---------------------------------------------------------------------------- formula injection


def test_formula_injection_is_neutralised_in_text_cells_only(service, tmp_path):
    header = ["=cmd|' /C calc'!A0", "note", *FIELD_NAMES]
    path = tmp_path / "inj.csv"
    cells = ["=1+2", "+SUM(A1)", "-2+3", "@SUM(A1)", "-5", "+1,200", "\tx", "plain", "-0.5e3"]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for cell in cells:
            writer.writerow([cell, cell, *[GOOD[n] for n in FIELD_NAMES]])
        writer.writerow(["=bad", "=bad", *[GOOD[n] for n in FIELD_NAMES[:-1]], "=1+1"])    # an error row
    summary = score_file(service, path, tmp_path / "out.csv")
    assert summary.rows_scored == len(cells) and summary.rows_failed == 1
    out = read_out(tmp_path / "out.csv")
    assert out.columns.tolist()[:3] == ["row", "'=cmd|' /C calc'!A0", "note"]
    assert out["note"].tolist() == ["'=1+2", "'+SUM(A1)", "'-2+3", "'@SUM(A1)", "-5", "+1,200", "'\tx", "plain",
                                    "-0.5e3"]
    errors = read_out(tmp_path / "out.errors.csv")
    assert errors.loc[0, "note"] == "'=bad" and errors.loc[0, "recency_days"] == "'=1+1"
    assert errors.loc[0, "error"] == "recency_days='=1+1' is not a number"


def test_negative_numbers_in_numeric_columns_stay_numbers(service, tmp_path):
    frame = pd.DataFrame([{**GOOD, "balance": -12.5, "label": "-x"}])
    frame.to_parquet(tmp_path / "in.parquet")
    score_file(service, tmp_path / "in.parquet", tmp_path / "out.csv")
    out = read_out(tmp_path / "out.csv")
    assert out.loc[0, "balance"] == "-12.5" and out.loc[0, "label"] == "'-x"
    score_file(service, tmp_path / "in.parquet", tmp_path / "out.parquet")  # Parquet is never rewritten
    assert pd.read_parquet(tmp_path / "out.parquet").loc[0, "label"] == "-x"


def test_neutralise_name():
    assert neutralise_name("=x") == "'=x" and neutralise_name("-3") == "-3" and neutralise_name("age") == "age"


# ---------------------------------------------------------------------------- parquet


def test_parquet_in_and_out(service, tmp_path):
    frame = fields_frame(2000, seed=16)
    frame.loc[5, "income"] = np.nan
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    summary = score_file(service, tmp_path / "in.parquet", tmp_path / "out.parquet", chunksize=300)
    assert summary.file_type == "parquet" and summary.output_format == "parquet"
    assert summary.rows_failed == 1
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.field("age").type == pa.schema([("a", pa.int64())]).field("a").type   # types are kept
    # labels are dictionary-encoded text (pandas reads a categorical), numbers stay numbers
    for name in ("segment_key", "segment_name", "confidence", "warnings", "response_model"):
        assert out.schema.field(name).type == pa.dictionary(pa.int32(), pa.string())
    for name in ("confidence_margin", "response_probability"):
        assert out.schema.field(name).type == pa.float64()
    out = out.to_pandas()
    assert isinstance(out["segment_name"].dtype, pd.CategoricalDtype)
    good = frame.drop(index=5)
    assert out["ID"].tolist() == good["ID"].tolist()
    assert out["segment_key"].tolist() == expected_labels(service, good)
    errors = read_out(tmp_path / "out.parquet.errors.csv")
    assert errors["row"].tolist() == ["6"] and errors["error"].tolist() == ["income is missing"]


def test_csv_to_parquet_and_back(service, tmp_path):
    frame = fields_frame(800, seed=17)
    frame.to_csv(tmp_path / "in.csv", index=False)
    score_file(service, tmp_path / "in.csv", tmp_path / "a.parquet")
    score_file(service, tmp_path / "in.csv", tmp_path / "b.csv", fmt="csv")
    a = pd.read_parquet(tmp_path / "a.parquet")
    b = read_out(tmp_path / "b.csv")
    assert a["segment_key"].tolist() == b["segment_key"].tolist() == expected_labels(service, frame)
    score_file(service, tmp_path / "a.parquet", tmp_path / "c.csv")         # a scored file can be re-scored
    c = read_out(tmp_path / "c.csv")
    assert c.columns.tolist().count("segment_key") == 1
    assert c["segment_key"].tolist() == b["segment_key"].tolist()


def test_raw_parquet_with_real_dates(service, tmp_path):
    raw = generate_customers(300, seed=24, quirks=False)
    raw["Dt_Customer"] = pd.to_datetime(raw["Dt_Customer"], format="%d-%m-%Y")
    raw.to_parquet(tmp_path / "raw.parquet")
    summary = score_file(service, tmp_path / "raw.parquet", tmp_path / "out.csv")
    assert summary.collection_year == 2014 and summary.rows_scored == 300


# ---------------------------------------------------------------------------- atomic writes, stale files


def test_a_failing_run_leaves_the_previous_output_intact(service, tmp_path, monkeypatch):
    frame = fields_frame(1000, seed=18)
    frame.loc[3, "age"] = 250
    src = tmp_path / "in.csv"
    frame.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    score_file(service, src, out)
    before, errors_before = out.read_bytes(), (tmp_path / "out.errors.csv").read_bytes()
    calls = []

    def failing(X):
        calls.append(len(X))
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return type(service).score_array(service, X)

    monkeypatch.setattr(service, "score_array", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        score_file(service, src, out, chunksize=100)
    assert out.read_bytes() == before and (tmp_path / "out.errors.csv").read_bytes() == errors_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv", "out.errors.csv"]


def test_a_stale_errors_file_is_removed(service, tmp_path):
    src = write_fields(tmp_path, [GOOD, {**GOOD, "age": 250}])
    score_file(service, src, tmp_path / "out.csv")
    assert (tmp_path / "out.errors.csv").exists()
    src = write_fields(tmp_path, [GOOD])
    summary = score_file(service, src, tmp_path / "out.csv")
    assert summary.errors_path is None and not (tmp_path / "out.errors.csv").exists()


def test_row_column_is_added_when_there_is_no_id(service, tmp_path):
    frame = fields_frame(10, seed=19).drop(columns=["ID"])
    frame.loc[2, "age"] = 5
    frame.to_csv(tmp_path / "in.csv", index=False)
    score_file(service, tmp_path / "in.csv", tmp_path / "out.csv")
    out = read_out(tmp_path / "out.csv")
    assert out.columns[0] == "row" and out["row"].tolist() == [str(i) for i in range(1, 11) if i != 3]


def test_progress_is_reported(service, tmp_path):
    frame = fields_frame(2000, seed=20)
    frame.to_csv(tmp_path / "in.csv", index=False)
    seen = []
    score_file(service, tmp_path / "in.csv", tmp_path / "out.csv", chunksize=200, progress=lambda r, f: seen.append((r, f)))
    assert len(seen) >= 2 and seen[-1] == (len(frame), 1.0)
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)


# ---------------------------------------------------------------------------- real data


def test_real_file(service, real_data_path, real_data, tmp_path):
    summary = score_file(service, real_data_path, tmp_path / "out.csv")
    assert summary.rows_read == 2240 and summary.collection_year == 2014
    # 24 without income, 3 born 1893/1899/1900 (ages above 110); the 666,666 income is a valid value
    assert summary.rows_failed == 27 and summary.rows_scored == 2213
    out = read_out(tmp_path / "out.csv")
    expected = dict(zip(real_data.raw["ID"].astype(str), expected_labels(service, real_data.features)))
    got = dict(zip(out["ID"], out["segment_key"]))
    assert len(set(expected) - set(got)) == 0
    assert all(got[i] == expected[i] for i in expected)


# ---------------------------------------------------------------------------- texts


def test_batch_texts_are_validated(tmp_path):
    texts = load_batch_texts()
    assert texts.ui.tab and texts.cli.scored
    data = texts.model_dump()
    data["ui"]["done"] = "{rows_scored} {secret}"
    (tmp_path / "batch.yaml").write_text(__import__("yaml").safe_dump(data))
    with pytest.raises(KnowledgeBaseError, match="secret"):
        load_batch_texts(tmp_path)
    data["ui"].pop("done")
    (tmp_path / "batch.yaml").write_text(__import__("yaml").safe_dump(data))
    with pytest.raises(KnowledgeBaseError, match="done"):
        load_batch_texts(tmp_path)
    assert BatchTexts.model_validate(texts.model_dump()) == texts


# ---------------------------------------------------------------------------- CLI


def cli(*args):
    return subprocess.run([sys.executable, "-m", "assistant", "score", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_cli_scores_and_prints_the_summary(tmp_path):
    frame = fields_frame(500, seed=25)
    frame.loc[7, "age"] = 250
    frame.to_csv(tmp_path / "in.csv", index=False)
    done = cli(tmp_path / "in.csv", "-o", tmp_path / "out.csv", "--chunksize", "100")
    assert done.returncode == 0, done.stderr
    assert f"Scored {len(frame) - 1:,} of {len(frame):,} rows" in done.stdout
    for f in FIELDS:
        assert f.short_lower + " " in done.stdout          # named once, units said once (web purchases 2.2)
    assert not re.search(r"\d (purchases|visits/month|days)\b(?! ago)", done.stdout), done.stdout   # units said once
    assert "1 row(s) could not be scored" in done.stdout and str(tmp_path / "out.errors.csv") in done.stdout
    assert "Scoring in.csv" in done.stderr
    assert len(read_out(tmp_path / "out.csv")) == len(frame) - 1


@pytest.mark.slow
def test_cli_exit_2_on_unreadable_files(tmp_path):
    (tmp_path / "few.csv").write_text("age,income\n1,2\n")
    done = cli(tmp_path / "few.csv", "-o", tmp_path / "out.csv")
    assert done.returncode == 2
    assert "missing column(s) for: total_spending" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done = cli(tmp_path / "few.csv", "-o", tmp_path / "out.csv", "--chunksize", "0")
    assert done.returncode == 2 and "--chunksize=0 is below the minimum of 1" in done.stderr
    done = cli(tmp_path / "few.csv", "-o", tmp_path / "out.csv", "--scheduler", "tcp://x:1")
    assert done.returncode == 2 and "--scheduler needs --engine dask" in done.stderr


def test_expected_responders_are_the_sums_of_the_ranked_probabilities(service, tmp_path):
    frame = fields_frame(500, seed=31)
    frame.to_csv(tmp_path / "in.csv", index=False)
    summary = score_file(service, tmp_path / "in.csv", tmp_path / "out.csv", chunksize=64)
    expected = summary.expected_responders
    assert expected is not None
    p = np.sort(pd.read_csv(tmp_path / "out.csv")["response_probability"].to_numpy())[::-1]
    n = summary.rows_scored
    assert len(p) == n and (expected.top10_rows, expected.top20_rows) == (-(-n // 10), -(-n // 5))
    assert expected.all == pytest.approx(p.sum(), abs=1e-3 * n)     # the file rounds to 4 decimals
    assert expected.top10 == pytest.approx(p[:expected.top10_rows].sum(), abs=0.05)
    assert expected.top20 == pytest.approx(p[:expected.top20_rows].sum(), abs=0.05)
    assert expected.top10 <= expected.top20 <= expected.all


def test_fraction_columns_write_the_same_text_as_the_float_column(tmp_path):
    """CSV outputs write margins and probabilities through a dictionary of pre-formatted numbers; the file
    must read exactly as if the rounded floats had been written (0, 1, halves and tiny values included)."""
    import pyarrow.csv as pacsv

    from assistant.batch.write import fraction_column

    rng = np.random.default_rng(11)
    values = np.concatenate([rng.random(50_000), [0.0, 1.0, 0.5, 0.00005, 0.00015, 0.99995, 1e-9, 0.1, 0.3]])
    as_text = fraction_column(values, 4, as_text=True)
    plain = fraction_column(values, 4, as_text=False)
    assert pa.types.is_dictionary(as_text.type) and plain.type == pa.float64()
    paths = []
    for name, column in (("text", as_text), ("float", plain)):
        path = tmp_path / f"{name}.csv"
        pacsv.write_csv(pa.table({"p": column}), path, write_options=pacsv.WriteOptions(quoting_style="none"))
        paths.append(path)
    assert paths[0].read_text() == paths[1].read_text()
    with_nan = fraction_column(np.array([0.25, np.nan]), 4, as_text=True)
    assert with_nan.cast(pa.string()).to_pylist() == ["0.25", None]


def test_read_ahead_keeps_order_raises_in_place_and_stops_with_its_consumer():
    import threading

    from assistant.batch.read import _NeedsFallback, _read_ahead

    closed = threading.Event()

    def reader(n, fail_at=None):
        try:
            for i in range(n):
                if i == fail_at:
                    raise _NeedsFallback("ragged row")
                yield i
        finally:
            closed.set()

    assert list(_read_ahead(reader(50))) == list(range(50))
    got = []
    with pytest.raises(_NeedsFallback):
        for item in _read_ahead(reader(50, fail_at=7)):
            got.append(item)
    assert got == list(range(7))                       # everything before the failure, in order
    closed.clear()
    ahead = _read_ahead(reader(10_000))
    assert next(ahead) == 0
    ahead.close()                                      # the consumer stops early: the reader is closed
    assert closed.wait(5)
    assert not any(t.name == "batch-reader" and t.is_alive() for t in threading.enumerate())


def test_blocks_formatted_in_parallel_are_written_in_order_with_quoting_where_needed(service, tmp_path):
    """Small chunks (many blocks formatted at once), some needing quotes (a comma inside a note): the
    output is row for row the input, in order, and reads back with the same notes."""
    frame = fields_frame(3000, seed=21)
    frame["note"] = [f"note {i}" if i % 700 != 350 else f"a, b {i}" for i in range(len(frame))]
    frame.to_csv(tmp_path / "in.csv", index=False)
    score_file(service, tmp_path / "in.csv", tmp_path / "out.csv", chunksize=97)
    out = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert out["ID"].tolist() == frame["ID"].astype(str).tolist()
    assert out["note"].tolist() == frame["note"].tolist()
    assert out["segment_key"].tolist() == expected_labels(service, frame)
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert '"a, b 1050"' in lines[1051] and '"' not in lines[1]     # quoted only in the blocks that need it


def test_the_first_byte_precheck_never_hides_a_formula_cell():
    """_neutralise skips the regex when no cell can start with = + - @ tab or CR (read from the buffers);
    on sliced arrays, large strings, empty and null cells and multi-byte text it must agree with the rule."""
    from assistant.batch.write import _neutralise

    rng = np.random.default_rng(3)
    starts = ["=", "+", "-", "@", "\t", "\r", "a", "7", "é", "€", " ", ""]
    for _ in range(300):
        cells = [None if rng.random() < 0.1 else "".join(rng.choice(starts, size=rng.integers(0, 4)))
                 for _ in range(int(rng.integers(1, 30)))]
        for typ in (pa.string(), pa.large_string()):
            whole = pa.array(["x"] * 5 + cells, type=typ)
            arr = whole.slice(5)                                 # a non-zero offset into the buffers
            expected = [None if c is None else ("'" + c if re.match(r"^[=+\-@\t\r]", c)
                                                 and not re.match(r"^\s*[+-]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$", c)
                                                 else c) for c in cells]
            assert _neutralise(arr).to_pylist() == expected

import numpy as np
import pandas as pd
import pytest

from assistant.core.errors import DataFileError
from assistant.core.fields import FIELD_NAMES
from assistant.model.data import ALL_COLUMNS, MNT_COLUMNS, clean_customers, load_customers, read_marketing_file
from assistant.model.synthetic import generate_customers, write_customers

# ------------------------------------------------------------------ real file (skips when absent)

def test_real_file_cleaning_counts(real_data):
    rep = real_data.report
    assert rep.rows_in == 2240
    assert rep.dropped["missing_income"] == 24           # 2,240 -> 2,216
    assert rep.dropped["implausible_age"] == 3           # 1893, 1899, 1900
    assert rep.dropped["implausible_income"] == 1        # 666,666
    assert rep.rows_kept == 2212 == len(real_data.features)
    assert rep.collection_year == 2014
    assert rep.delimiter == "\t" and rep.date_format == "%d-%m-%Y"


def test_real_file_derived_fields(real_data_path, real_data):
    raw = pd.read_csv(real_data_path, sep="\t").dropna(subset=["Income"])
    raw = raw[(2014 - raw.Year_Birth <= 100) & (raw.Income < 600000)].reset_index(drop=True)
    f = real_data.features
    assert list(f.columns) == list(FIELD_NAMES)
    np.testing.assert_array_equal(f["age"], 2014 - raw.Year_Birth)
    np.testing.assert_array_equal(f["total_spending"], raw[list(MNT_COLUMNS)].sum(axis=1))
    np.testing.assert_array_equal(f["recency_days"], raw.Recency)
    np.testing.assert_array_equal(f["web_visits_per_month"], raw.NumWebVisitsMonth)
    assert f["age"].max() <= 100 and f["income"].max() < 200_000


@pytest.mark.parametrize("delimiter,date_format", [(";", "%d-%m-%Y"), (",", "%d/%m/%Y"), (";", "%d/%m/%Y"), ("\t", "%Y-%m-%d")])
def test_other_exports_load_the_same(real_data_path, real_data, tmp_path, delimiter, date_format):
    raw = pd.read_csv(real_data_path, sep="\t", dtype=str, keep_default_na=False)
    raw["Dt_Customer"] = pd.to_datetime(raw["Dt_Customer"], format="%d-%m-%Y").dt.strftime(date_format)
    path = tmp_path / "export.csv"
    raw.to_csv(path, sep=delimiter, index=False)
    other = load_customers(path)
    pd.testing.assert_frame_equal(other.features, real_data.features)
    assert other.report.dropped == real_data.report.dropped


# ------------------------------------------------------------------ synthetic data

def test_generator_is_seeded_and_has_the_schema():
    a = generate_customers(500, seed=3)
    b = generate_customers(500, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(ALL_COLUMNS) and len(ALL_COLUMNS) == 29
    assert not a.equals(generate_customers(500, seed=4))


def test_generator_marginals_and_correlations_are_realistic(synthetic_file):
    f = load_customers(synthetic_file).features
    # calibrated on the real file: means within 10 %, key correlations of the right sign and size
    real_means = {"age": 45.1, "income": 51959, "total_spending": 607, "web_purchases": 4.09,
                  "store_purchases": 5.81, "web_visits_per_month": 5.32, "recency_days": 49.0}
    for name, mean in real_means.items():
        assert abs(f[name].mean() - mean) / mean < 0.10, name
    corr = f.corr()
    assert corr.loc["income", "total_spending"] > 0.6
    assert corr.loc["income", "web_visits_per_month"] < -0.4
    assert abs(corr.loc["recency_days", "income"]) < 0.1


def test_synthetic_quirks_are_cleaned(synthetic_file):
    rep = load_customers(synthetic_file).report
    assert rep.dropped["missing_income"] > 0
    assert rep.dropped["implausible_age"] == 1 and rep.dropped["implausible_income"] == 1
    assert rep.rows_kept == rep.rows_in - sum(rep.dropped.values())


def test_missing_columns_are_all_named(tmp_path):
    frame = generate_customers(50, seed=1).drop(columns=["Income", "MntWines", "Recency"])
    path = tmp_path / "partial.csv"
    frame.to_csv(path, sep="\t", index=False)
    with pytest.raises(DataFileError) as info:
        load_customers(path)
    message = str(info.value)
    for column in ("Income", "MntWines", "Recency"):
        assert column in message


def test_invalid_values_are_dropped_and_counted(tmp_path):
    frame = generate_customers(200, seed=2, quirks=False).astype({"Recency": object})
    frame.loc[5, "NumWebPurchases"] = -3
    frame.loc[6, "Recency"] = "soon"
    path = write_customers(frame, tmp_path / "bad.csv")
    data = load_customers(path)
    assert data.report.dropped["invalid_value"] == 2
    assert data.report.rows_kept == 198


@pytest.mark.parametrize("content,needle", [
    (b"", "empty"),
    (b"\x00\x01\x02binary\x00", "not a text file"),
    (b"just one column\nvalue\n", "delimiter"),
])
def test_unreadable_files_get_one_clear_message(tmp_path, content, needle):
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=needle):
        read_marketing_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_customers(tmp_path / "nope.csv")


def test_latin1_and_bom_files_load(tmp_path):
    frame = generate_customers(100, seed=5, quirks=False)
    frame.loc[0, "Marital_Status"] = "Célibataire"
    for encoding in ("latin-1", "utf-8-sig"):
        path = tmp_path / f"{encoding}.csv"
        frame.to_csv(path, sep="\t", index=False, encoding=encoding)
        data = load_customers(path)
        assert data.report.rows_kept == 100
        assert "Célibataire" in set(data.raw["Marital_Status"])


def test_clean_customers_keeps_raw_and_features_aligned():
    frame = generate_customers(300, seed=9).astype(str).replace("nan", "")
    data = clean_customers(frame)
    assert len(data.raw) == len(data.features)
    np.testing.assert_array_equal(data.features["recency_days"].to_numpy(), data.raw["Recency"].astype(int).to_numpy())

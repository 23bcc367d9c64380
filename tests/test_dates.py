"""One date rule for training and batch scoring (assistant.model.dates), and training on a re-exported file."""

import numpy as np
import pandas as pd
import pytest

from assistant.batch.read import _year_from_dates
from assistant.core.errors import DataFileError
from assistant.model.data import clean_customers, load_customers
from assistant.model.dates import detect_date_format, latest_year, order_is_ambiguous

CASES = [
    (["04-09-2012", "21-08-2013"], "%d-%m-%Y", False),
    (["4/9/2012 0:00", "8/21/2013 0:00"], "%m/%d/%Y %H:%M", False),          # US order with a time
    (["21/8/2013", "4/9/2012"], "%d/%m/%Y", False),
    (["09.04.2012", "10.05.2013"], "%d.%m.%Y", True),                         # nothing above 12: ambiguous
    (["2012-04-09T00:00", "2013-01-01T10:30"], "%Y-%m-%dT%H:%M", False),
    (["2012-04-09 00:00:00"], "%Y-%m-%d %H:%M:%S", False),
    (["04-Sep-2012", "21-Aug-2013"], "%d-%b-%Y", False),
    (["Sep 4, 2012"], "%b %d, %Y", False),
    (["4/9/2012 12:30 PM", "3/1/2013 1:05 AM"], "%d/%m/%Y %I:%M %p", True),
]


@pytest.mark.parametrize("values,fmt,ambiguous", CASES)
def test_one_format_for_the_whole_column(values, fmt, ambiguous):
    column = pd.Series(values)
    assert detect_date_format(column) == fmt
    assert order_is_ambiguous(column, fmt) is ambiguous
    parsed = pd.to_datetime(column, format=fmt)
    assert latest_year(column) == parsed.max().year == _year_from_dates(values)


def test_the_day_month_order_comes_from_the_whole_column():
    us = pd.Series(["1/2/2013", "3/4/2013", "12/25/2013"])              # only the last value decides
    assert detect_date_format(us) == "%m/%d/%Y"
    assert pd.to_datetime(us, format="%m/%d/%Y").iloc[0] == pd.Timestamp("2013-01-02")
    eu = pd.Series(["1/2/2013", "25/12/2013"])
    assert detect_date_format(eu) == "%d/%m/%Y"


def test_mixed_orders_and_non_dates_are_refused_naming_the_column_and_the_rule():
    with pytest.raises(DataFileError, match="Dt_Customer mixes day-first and month-first"):
        detect_date_format(pd.Series(["25/12/2013", "12/25/2013"]))
    with pytest.raises(DataFileError, match=r"Dt_Customer='soon' is not a date in a known format"):
        detect_date_format(pd.Series(["soon", "later"]))
    with pytest.raises(DataFileError, match="has no dates"):
        detect_date_format(pd.Series(["", None]))


def _re_export(raw: pd.DataFrame) -> pd.DataFrame:
    """The file as another tool writes it: US dates with a time, an extra column, no campaign columns."""
    out = raw.copy()
    d = pd.to_datetime(out["Dt_Customer"], format="%d-%m-%Y")
    out["Dt_Customer"] = (d.dt.month.astype(str) + "/" + d.dt.day.astype(str) + "/" + d.dt.year.astype(str)
                          + " 0:00")
    out["Notes"] = "exported"
    drop = [c for c in out.columns if c.startswith("AcceptedCmp") or c in ("Response", "Complain", "Z_CostContact",
                                                                          "Z_Revenue")]
    return out.drop(columns=drop)


def test_a_re_exported_file_cleans_like_the_original(synthetic_file, tmp_path):
    original = load_customers(synthetic_file)
    raw = pd.read_csv(synthetic_file, sep="\t", dtype=str, keep_default_na=False)
    path = tmp_path / "export.csv"
    _re_export(raw).to_csv(path, index=False)
    again = load_customers(path)
    assert again.report.delimiter == "," and again.report.date_format == "%m/%d/%Y %H:%M"
    assert again.report.collection_year == original.report.collection_year
    assert again.report.rows_kept == original.report.rows_kept
    assert np.array_equal(again.features.to_numpy(), original.features.to_numpy())


@pytest.mark.slow
@pytest.mark.realdata
def test_the_real_file_re_exported_trains_the_same_segments(real_data_path, knowledge, tmp_path):
    from assistant.model.training import train

    raw = pd.read_csv(real_data_path, sep="\t", dtype=str, keep_default_na=False)
    path = tmp_path / "export.csv"
    _re_export(raw).to_csv(path, index=False)
    data = load_customers(path)
    original = clean_customers(raw.replace("", np.nan), delimiter="\t")
    assert data.report.rows_kept == original.report.rows_kept == 2212
    bundle, card = train(data, knowledge, k=4, seed=42, ks=range(3, 6), n_boot=20)
    sizes = {k: s.size for k, s in card.segments.items()}
    assert sorted(sizes.values()) == sorted([573, 582, 537, 520])
    assert card.response is None or all(m["model"] != "full_record" for m in card.response["models"])

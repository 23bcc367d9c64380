"""A seeded generator of customer files with the real file's schema (29 columns, tab-separated,
``Dt_Customer`` as dd-mm-yyyy).

It draws customers from four latent groups whose shares, means, spreads and within-group
correlations were calibrated from summary figures of the public data (per-group mean and
standard deviation of the seven fields, product and channel mix, household and campaign rates).
No individual customer of the real file is in here; only these aggregates.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from assistant.model.data import ALL_COLUMNS, MNT_COLUMNS


class _Group(NamedTuple):
    """A latent group: its share, and (mean, sd) of the seven fields in FIELD order."""

    share: float
    mean: list[float]
    sd: list[float]


_GROUPS = {
    "vip": _Group(0.263, mean=[45.9, 76300, 1274, 4.4, 8.4, 2.4, 51.5], sd=[13.0, 13200, 495, 1.6, 2.9, 1.3, 28.9]),
    "digital": _Group(0.235, mean=[49.2, 60300, 893, 7.5, 8.1, 6.1, 45.2], sd=[10.4, 11400, 390, 2.5, 2.7, 1.5, 28.0]),
    "casual": _Group(0.259, mean=[41.1, 33800, 112, 2.2, 3.3, 6.6, 25.3], sd=[10.5, 12100, 133, 1.4, 1.2, 2.0, 15.6]),
    "browsers": _Group(0.243, mean=[44.5, 36900, 137, 2.4, 3.5, 6.3, 75.3], sd=[11.2, 12200, 141, 1.4, 1.2, 1.9, 14.7]),
}
# A within-group correlation of the seven fields (rounded average of the four groups).
_CORR = np.array([
    [1.00, 0.15, 0.00, 0.00, 0.00, -0.10, -0.10],
    [0.15, 1.00, 0.40, 0.20, 0.25, -0.35, -0.05],
    [0.00, 0.40, 1.00, 0.40, 0.40, 0.00, 0.00],
    [0.00, 0.20, 0.40, 1.00, 0.25, 0.10, 0.00],
    [0.00, 0.25, 0.40, 0.25, 1.00, -0.20, 0.00],
    [-0.10, -0.35, 0.00, 0.10, -0.20, 1.00, 0.05],
    [-0.10, -0.05, 0.00, 0.00, 0.00, 0.05, 1.00],
])
_LIMITS = [(18, 74), (1730, 160000), (5, 2525), (0, 27), (0, 13), (0, 20), (0, 99)]
# Product mix (shares of spending, order of MNT_COLUMNS) and other per-group rates.
_MIX = {
    "vip":      [0.45, 0.05, 0.33, 0.07, 0.05, 0.05],
    "digital":  [0.59, 0.04, 0.20, 0.05, 0.04, 0.08],
    "casual":   [0.44, 0.05, 0.24, 0.07, 0.04, 0.16],
    "browsers": [0.46, 0.05, 0.23, 0.07, 0.05, 0.14],
}
_RATES = {  # kid, teen, deals, catalog, cmp3, cmp4, cmp5, cmp1, cmp2, complain, response
    "vip":      [0.05, 0.28, 1.4, 5.6, 0.064, 0.115, 0.239, 0.182, 0.026, 0.009, 0.222],
    "digital":  [0.22, 0.80, 3.5, 3.5, 0.083, 0.144, 0.042, 0.067, 0.025, 0.006, 0.187],
    "casual":   [0.77, 0.44, 2.2, 0.6, 0.089, 0.014, 0.000, 0.002, 0.003, 0.014, 0.148],
    "browsers": [0.74, 0.54, 2.3, 0.8, 0.060, 0.026, 0.000, 0.000, 0.000, 0.007, 0.041],
}
_EDUCATION = {"Graduation": 0.504, "PhD": 0.217, "Master": 0.165, "2n Cycle": 0.090, "Basic": 0.024}
_MARITAL = {"Married": 0.387, "Together": 0.258, "Single": 0.212, "Divorced": 0.104, "Widow": 0.034,
            "Alone": 0.002, "Absurd": 0.0015, "YOLO": 0.0015}
_FIRST_DAY, _LAST_DAY = pd.Timestamp("2012-07-30"), pd.Timestamp("2014-06-29")


def generate_customers(n: int = 2240, *, seed: int = 0, quirks: bool = True) -> pd.DataFrame:
    """``n`` synthetic customers in the raw file's 29 columns (all values as in the real file).

    With ``quirks`` about 1% of rows have no Income, and (for n >= 100) one row each has a birth
    year of 1893 and an Income of 666666, as in the real file, so cleaning rules are exercised.
    """
    if n < 1:
        raise ValueError(f"n={n} is below the minimum of 1")
    rng = np.random.default_rng(seed)
    names = list(_GROUPS)
    shares = np.array([_GROUPS[g].share for g in names])
    group = rng.choice(len(names), size=n, p=shares / shares.sum())
    chol = np.linalg.cholesky(_CORR)
    z = rng.standard_normal((n, 7)) @ chol.T
    means = np.array([_GROUPS[g].mean for g in names])[group]
    sds = np.array([_GROUPS[g].sd for g in names])[group]
    values = means + sds * z
    for j, (low, high) in enumerate(_LIMITS):
        values[:, j] = np.clip(values[:, j], low, high)
    age, income, spending = values[:, 0].round(), values[:, 1].round(), values[:, 2]
    counts = values[:, 3:].round().astype(int)

    mix = np.array([_MIX[g] for g in names])[group]
    weights = rng.gamma(shape=mix * 20 + 0.05)
    weights /= weights.sum(axis=1, keepdims=True)
    mnt = np.floor(weights * spending[:, None]).astype(int)
    mnt[:, 0] += np.maximum(0, np.round(spending).astype(int) - mnt.sum(axis=1))

    rates = np.array([_RATES[g] for g in names])[group]
    kid = rng.binomial(2, np.minimum(rates[:, 0] / 2, 1))
    teen = rng.binomial(2, np.minimum(rates[:, 1] / 2, 1))
    deals = rng.poisson(rates[:, 2])
    catalog = rng.poisson(rates[:, 3])
    flags = (rng.random((n, 7)) < rates[:, 4:]).astype(int)

    span = (_LAST_DAY - _FIRST_DAY).days
    days = rng.integers(0, span + 1, size=n)
    days[rng.integers(0, n)] = span  # the latest date fixes the collection year, as in the real file
    dates = (_FIRST_DAY + pd.to_timedelta(days, unit="D")).strftime("%d-%m-%Y")

    frame = pd.DataFrame({
        "ID": rng.choice(11200, size=n, replace=False) if n <= 11200 else np.arange(n),
        "Year_Birth": (2014 - age).astype(int),
        "Education": rng.choice(list(_EDUCATION), size=n, p=_p(_EDUCATION)),
        "Marital_Status": rng.choice(list(_MARITAL), size=n, p=_p(_MARITAL)),
        "Income": income,
        "Kidhome": kid, "Teenhome": teen, "Dt_Customer": dates,
        "Recency": counts[:, 3],
        **{c: mnt[:, i] for i, c in enumerate(MNT_COLUMNS)},
        "NumDealsPurchases": deals, "NumWebPurchases": counts[:, 0], "NumCatalogPurchases": catalog,
        "NumStorePurchases": counts[:, 1], "NumWebVisitsMonth": counts[:, 2],
        "AcceptedCmp3": flags[:, 0], "AcceptedCmp4": flags[:, 1], "AcceptedCmp5": flags[:, 2],
        "AcceptedCmp1": flags[:, 3], "AcceptedCmp2": flags[:, 4], "Complain": flags[:, 5],
        "Z_CostContact": 3, "Z_Revenue": 11, "Response": flags[:, 6],
    })
    frame["Income"] = frame["Income"].astype("float64")
    if quirks:
        missing = rng.random(n) < 0.011
        frame.loc[missing, "Income"] = np.nan
        if n >= 100:
            frame.loc[0, "Year_Birth"] = 1893
            frame.loc[1, "Income"] = 666666.0
    return frame[list(ALL_COLUMNS)]


def write_customers(frame: pd.DataFrame, path: str | Path, *, delimiter: str = "\t",
                    date_format: str = "%d-%m-%Y") -> Path:
    """Write a raw frame as users' files look (Income without decimals, empty where missing)."""
    out = frame.copy()
    out["Income"] = out["Income"].map(lambda v: "" if pd.isna(v) else f"{v:.0f}")
    if date_format != "%d-%m-%Y":
        out["Dt_Customer"] = pd.to_datetime(out["Dt_Customer"], format="%d-%m-%Y").dt.strftime(date_format)
    path = Path(path)
    out.to_csv(path, sep=delimiter, index=False)
    return path


def _p(table: dict[str, float]) -> NDArray[np.float64]:
    p = np.array(list(table.values()), dtype=np.float64)
    shares: NDArray[np.float64] = p / p.sum()
    return shares

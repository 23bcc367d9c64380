"""Loading the "Customer Personality Analysis" customer file and turning it into the seven fields.

Cleaning rules (each applied in this order, each counted in the CleaningReport):

1. ``missing_income``: rows without Income are dropped (24 in the public file).
2. ``implausible_age``: rows whose age at collection time is over 100 (birth years 1893, 1899, 1900).
3. ``implausible_income``: an Income above 500,000 (the 666,666 placeholder in the public file;
   the next highest is about 160,000).
4. ``invalid_value``: any other value that is not a number or breaks a field's range
   (negative amounts or counts, for example).

``age`` is computed relative to the data's collection year: the year of the latest
``Dt_Customer`` (2014 in the public file), not today's year.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from assistant.core.errors import DataFileError
from assistant.core.fields import FIELD_NAMES, FIELDS
from assistant.model.dates import detect_date_format, order_is_ambiguous

log = logging.getLogger(__name__)

MNT_COLUMNS = ("MntWines", "MntFruits", "MntMeatProducts", "MntFishProducts", "MntSweetProducts", "MntGoldProds")
REQUIRED_COLUMNS = (
    "Year_Birth", "Income", "Dt_Customer", "Recency", *MNT_COLUMNS,
    "NumWebPurchases", "NumStorePurchases", "NumWebVisitsMonth",
)
ALL_COLUMNS = (
    "ID", "Year_Birth", "Education", "Marital_Status", "Income", "Kidhome", "Teenhome", "Dt_Customer",
    "Recency", *MNT_COLUMNS, "NumDealsPurchases", "NumWebPurchases", "NumCatalogPurchases",
    "NumStorePurchases", "NumWebVisitsMonth", "AcceptedCmp3", "AcceptedCmp4", "AcceptedCmp5",
    "AcceptedCmp1", "AcceptedCmp2", "Complain", "Z_CostContact", "Z_Revenue", "Response",
)
MAX_AGE = 100
MAX_PLAUSIBLE_INCOME = 500_000
DELIMITERS = ("\t", ";", ",")


class CleaningSummary(TypedDict):
    """A CleaningReport as written in the model card's ``data``."""

    rows_in: int
    rows_kept: int
    rows_dropped: int
    dropped: dict[str, int]
    collection_year: int
    delimiter: str
    date_format: str


@dataclass(frozen=True)
class CleaningReport:
    rows_in: int
    rows_kept: int
    dropped: dict[str, int]
    collection_year: int
    delimiter: str
    date_format: str
    date_order_ambiguous: bool = False   # a/b/yyyy dates with no part above 12: read day first, the year exact

    def as_dict(self) -> CleaningSummary:
        return {
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "rows_dropped": self.rows_in - self.rows_kept,
            "dropped": dict(self.dropped),
            "collection_year": self.collection_year,
            "delimiter": {"\t": "tab", ";": "semicolon", ",": "comma"}[self.delimiter],
            "date_format": self.date_format,
        }


@dataclass(frozen=True)
class CustomerData:
    """The cleaned file: ``raw`` (kept rows, original columns) and ``features`` (the seven fields)."""

    raw: pd.DataFrame
    features: pd.DataFrame
    report: CleaningReport
    sha256: str = field(default="")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def detect_delimiter(header_line: str) -> str:
    """The delimiter of a header line: the one among tab, semicolon, comma that splits it most."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    if counts[best] == 0:
        raise DataFileError("cannot find a delimiter in the header line (expected tab, semicolon or comma)")
    return best


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DataFileError("the file is not text")  # pragma: no cover - latin-1 decodes anything


def read_marketing_file(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Read the raw file with its delimiter detected; return (frame, delimiter)."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path} does not exist (get marketing_campaign.csv, see data/README.md)")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise DataFileError(f"{path} is not a text file")
    text = _decode(raw)
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise DataFileError(f"{path} is empty")
    delimiter = detect_delimiter(first_line)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                            quoting=csv.QUOTE_MINIMAL, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataFileError(f"{path} cannot be parsed as a {delimiter!r}-separated file: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFileError(f"{path.name} is missing required column(s): {', '.join(missing)}")
    return frame, delimiter


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    text = frame[column].astype(str).str.strip().str.replace(",", "", regex=False)
    return pd.to_numeric(text.where(text != "", None), errors="coerce")


# Which raw columns each field is derived from (see derive_fields); batch scoring uses it to name
# the column behind a bad value.
FIELD_SOURCES: dict[str, tuple[str, ...]] = {
    "age": ("Year_Birth",),
    "income": ("Income",),
    "total_spending": MNT_COLUMNS,
    "web_purchases": ("NumWebPurchases",),
    "store_purchases": ("NumStorePurchases",),
    "web_visits_per_month": ("NumWebVisitsMonth",),
    "recency_days": ("Recency",),
}


Column = TypeVar("Column", pd.Series, NDArray[np.float64])
"""A raw column as numbers: a pandas Series (training) or a numpy array (batch scoring)."""


def derive_fields(column: Callable[[str], Column], collection_year: int) -> dict[str, Column]:
    """The seven fields from the raw columns. ``column(name)`` returns a raw column as numbers
    (a Series or a numpy array, NaN where missing); used by clean_customers and batch scoring."""
    spending = column(MNT_COLUMNS[0])
    for name in MNT_COLUMNS[1:]:
        spending = spending + column(name)
    return {
        "age": collection_year - column("Year_Birth"),
        "income": column("Income"),
        "total_spending": spending,
        "web_purchases": column("NumWebPurchases"),
        "store_purchases": column("NumStorePurchases"),
        "web_visits_per_month": column("NumWebVisitsMonth"),
        "recency_days": column("Recency"),
    }


def clean_customers(frame: pd.DataFrame, *, delimiter: str = "\t") -> CustomerData:
    """Apply the cleaning rules and derive the seven fields (see the module docstring)."""
    rows_in = len(frame)
    date_format = detect_date_format(frame["Dt_Customer"])
    dates = pd.to_datetime(frame["Dt_Customer"].astype(str).str.strip(), format=date_format, errors="coerce")
    collection_year = int(dates.max().year)
    income = _numeric(frame, "Income")
    features = pd.DataFrame(derive_fields(lambda column: _numeric(frame, column), collection_year),
                            index=frame.index)

    dropped: dict[str, int] = {}
    keep = pd.Series(True, index=frame.index)

    def rule(name: str, bad: pd.Series) -> None:
        nonlocal keep
        hit = bad & keep
        dropped[name] = int(hit.sum())
        keep &= ~bad

    rule("missing_income", income.isna())
    rule("implausible_age", features["age"] > MAX_AGE)
    rule("implausible_income", income > MAX_PLAUSIBLE_INCOME)
    invalid = features.isna().any(axis=1) | dates.isna()
    for spec in FIELDS:
        column = features[spec.name]
        invalid |= (column < spec.minimum) | (column > spec.maximum)
        if spec.integer:
            invalid |= column.notna() & (column != column.round())
    rule("invalid_value", invalid)

    kept = features[keep].astype({f.name: ("int64" if f.integer else "float64") for f in FIELDS})
    report = CleaningReport(rows_in=rows_in, rows_kept=int(keep.sum()), dropped=dropped,
                            collection_year=collection_year, delimiter=delimiter, date_format=date_format,
                            date_order_ambiguous=order_is_ambiguous(frame["Dt_Customer"], date_format))
    log.info("cleaned customer file: %d rows in, %d kept, dropped %s", rows_in, report.rows_kept, dropped)
    return CustomerData(raw=frame[keep].reset_index(drop=True), features=kept.reset_index(drop=True)[list(FIELD_NAMES)],
                        report=report)


def load_customers(path: str | Path) -> CustomerData:
    """Read, check and clean a marketing file (tab, semicolon or comma; any known date format)."""
    frame, delimiter = read_marketing_file(path)
    data = clean_customers(frame, delimiter=delimiter)
    return CustomerData(raw=data.raw, features=data.features, report=data.report, sha256=file_sha256(Path(path)))


def numeric_raw(raw: pd.DataFrame) -> pd.DataFrame:
    """The raw columns converted to numbers where they are numeric (for profiles and reports)."""
    out = raw.copy()
    for column in out.columns:
        if column in ("Education", "Marital_Status", "Dt_Customer"):
            continue
        converted = _numeric(out, column)
        if converted.notna().sum() >= max(1, int(0.9 * out[column].astype(str).str.strip().ne("").sum())):
            out[column] = converted
    return out


def default_data_path() -> Path:
    """Where the real file usually lives: ../shared/data beside the checkout."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "marketing_campaign.csv"


__all__ = [
    "ALL_COLUMNS", "CleaningReport", "CustomerData", "FIELD_SOURCES", "MNT_COLUMNS", "REQUIRED_COLUMNS",
    "clean_customers", "default_data_path", "derive_fields", "detect_date_format", "detect_delimiter",
    "file_sha256", "load_customers",
    "numeric_raw", "read_marketing_file",
]

"""One rule for the dates of a customer file (``Dt_Customer``), for training and batch scoring alike.

Files come from many tools: the data set's own ``04-09-2012``, spreadsheets' ``4/9/2012 0:00`` (US
order with a time), ``09.04.2012``, ``2012-04-09T00:00``, ``04-Sep-2012``, ``Sep 4, 2012`` and Excel
serial numbers (``41156``). :func:`read_dates` reads a whole column with one reading:

- a time after the date (``0:00``, ``T00:00:00``, ``12:30 PM``) is dropped;
- ``yyyy-mm-dd`` (or with ``/`` or ``.``) is year, month, day;
- ``a/b/yyyy`` (``-``, ``/`` or ``.``): the day/month order comes from the whole column: a first part
  above 12 anywhere means day first, a second part above 12 means month first; both means the column
  is refused. When no value decides it the column is ambiguous: it is read day first (the data set's
  own order) and the reading says so; the year, which is all the age needs, is exact either way;
- month names (``04-Sep-2012``, ``Sep 4, 2012``, ``4 September 2012``) are read as written;
- whole numbers between 1 and 2,958,465 with no other kind of value are Excel serial days (1900 system).

Values that do not fit the column's reading are NaT: the loaders count and report them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assistant.core.errors import DataFileError

_TIME = re.compile(r"(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp][Mm])?(?:Z|[+-]\d{2}:?\d{2})?)$")
_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_ABY = re.compile(r"^(\d{1,2})([-/.])(\d{1,2})\2(\d{4})$")
_NAMED = re.compile(r"[A-Za-z]{3,}")
_SERIAL = re.compile(r"^\d{1,7}(?:\.0+)?$")
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")
_MAX_SERIAL = 2_958_465            # 9999-12-31
_NAMED_FORMATS = ("%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%b %d %Y", "%d-%B-%Y", "%d %B %Y", "%B %d, %Y",
                  "%B %d %Y")


@dataclass(frozen=True)
class DateReading:
    """How a column's dates were read, in words for the model card and messages."""

    kind: str          # "day first", "month first", "year first", "month names", "Excel serial days"
    ambiguous: bool    # day/month order not decided by any value: read day first, the year is exact

    def describe(self) -> str:
        if self.ambiguous:
            return ("dd/mm/yyyy assumed (no day above 12 decides the order: the year is exact, day and month "
                    "may be swapped)")
        return self.kind


def _strip_times(values: pd.Series) -> pd.Series:
    return values.str.replace(_TIME, "", regex=True).str.strip()


def _from_parts(year: pd.Series, month: pd.Series, day: pd.Series) -> pd.Series:
    frame = pd.DataFrame({"year": pd.to_numeric(year, errors="coerce"), "month": pd.to_numeric(month, errors="coerce"),
                          "day": pd.to_numeric(day, errors="coerce")})
    return pd.to_datetime(frame, errors="coerce")


def read_dates(values: pd.Series) -> tuple[pd.Series, DateReading]:
    """``values`` (text) read as dates with one reading for the whole column (see the module docstring);
    NaT where a value does not fit it. DataFileError when the column holds no date at all or mixes day
    first and month first."""
    text = values.astype("string").str.strip()
    present = text.notna() & (text != "")
    if not present.any():
        raise DataFileError("Dt_Customer has no dates")
    sample = text[present]
    if sample.str.fullmatch(_SERIAL).all():
        days = pd.to_numeric(sample, errors="coerce")
        ok = (days >= 1) & (days <= _MAX_SERIAL)
        if ok.all():
            out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
            out[present] = _EXCEL_EPOCH + pd.to_timedelta(days.astype("float64"), unit="D")
            return out, DateReading("Excel serial days", ambiguous=False)
    dates = _strip_times(sample)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    ymd = dates.str.extract(_YMD)
    aby = dates.str.extract(_ABY)
    n_ymd, n_aby = int(ymd[0].notna().sum()), int(aby[0].notna().sum())
    n_named = int(dates.str.contains(_NAMED).sum())
    best = max(("ymd", n_ymd), ("aby", n_aby), ("named", n_named), key=lambda kv: kv[1])[0]
    if n_ymd == n_aby == n_named == 0:
        raise DataFileError(f"Dt_Customer={sample.iloc[0]!r} is not a date in a known format "
                            f"(dd-mm-yyyy, mm/dd/yyyy, yyyy-mm-dd, dd.mm.yyyy, 04-Sep-2012, an Excel serial number)")
    if best == "ymd":
        out[present] = _from_parts(ymd[0], ymd[1], ymd[2])
        return out, DateReading("yyyy-mm-dd", ambiguous=False)
    if best == "aby":
        first = pd.to_numeric(aby[0], errors="coerce")
        second = pd.to_numeric(aby[2], errors="coerce")
        day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
        if day_first and month_first:
            raise DataFileError("Dt_Customer mixes day-first and month-first dates (a first part above 12 in "
                                f"{first.gt(12).idxmax()!r}, a second part above 12 elsewhere): use one order")
        if month_first:
            out[present] = _from_parts(aby[3], aby[0], aby[2])
            return out, DateReading("mm/dd/yyyy (a second part above 12 decides)", ambiguous=False)
        out[present] = _from_parts(aby[3], aby[2], aby[0])
        return out, DateReading("dd/mm/yyyy (a first part above 12 decides)", ambiguous=not day_first)
    parsed = pd.Series(pd.NaT, index=dates.index, dtype="datetime64[ns]")
    for fmt in _NAMED_FORMATS:
        missing = parsed.isna()
        if not missing.any():
            break
        parsed[missing] = pd.to_datetime(dates[missing], format=fmt, errors="coerce")
    out[present] = parsed
    return out, DateReading("month names", ambiguous=False)


def latest_year(values: pd.Series) -> int | None:
    """The year of the latest date in ``values`` by :func:`read_dates`, or None when none is a date."""
    try:
        dates, _ = read_dates(values)
    except DataFileError:
        return None
    latest = dates.max()
    return None if pd.isna(latest) else int(latest.year)


__all__ = ["DateReading", "latest_year", "read_dates", "np"]

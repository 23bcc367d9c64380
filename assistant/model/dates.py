"""One rule for the dates of a customer file (``Dt_Customer``), for training and batch scoring alike.

Files come from many tools: the data set's own ``04-09-2012``, spreadsheets' ``4/9/2012 0:00`` (US
order with a time), ``09.04.2012``, ``2012-04-09T00:00``, ``2012-04-09 00:00:00``, ``04-Sep-2012``
or ``Sep 4, 2012``. :func:`detect_date_format` reads the whole column and gives one ``strptime``
format for it (so every caller parses with ``pd.to_datetime(values, format=...)``):

- the date part: ``yyyy-mm-dd`` (``-``, ``/`` or ``.``) is year, month, day; for ``a/b/yyyy`` the
  day/month order comes from the whole column: a first part above 12 anywhere means day first, a
  second part above 12 means month first, both at once is refused. When no value decides it the column
  is read day first (the data set's own order) and :func:`order_is_ambiguous` says so: the year, all
  the age needs, is exact either way, and the model card says the day and month may be swapped;
- month names (``04-Sep-2012``, ``Sep 4, 2012``, ``4 September 2012``) as written;
- a time after the date (``0:00``, ``T00:00``, ``00:00:00``, ``12:30 PM``) becomes part of the format.

Every refusal names the column, a value and the rule.
"""

from __future__ import annotations

import re

import pandas as pd

from assistant.core.errors import DataFileError

_TIME = re.compile(r"(?P<sep>[ T])(?P<h>\d{1,2}):(?P<m>\d{2})(?P<s>:\d{2})?(?P<f>\.\d+)?(?P<p>\s*[AaPp][Mm])?$")
_YMD = re.compile(r"^\d{4}(?P<sep>[-/.])\d{1,2}(?P=sep)\d{1,2}$")
_ABY = re.compile(r"^(?P<a>\d{1,2})(?P<sep>[-/.])(?P<b>\d{1,2})(?P=sep)\d{4}$")
_NAMED_FORMATS = ("%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%b %d %Y", "%d-%B-%Y", "%d %B %Y", "%B %d, %Y",
                  "%B %d %Y", "%d/%b/%Y", "%d.%b.%Y")
KNOWN = "dd-mm-yyyy, mm/dd/yyyy, yyyy-mm-dd, dd.mm.yyyy, 04-Sep-2012, each with or without a time"


def _sample(values: pd.Series) -> pd.Series:
    text = values.dropna().astype(str).str.strip()
    return text[text != ""]


def _time_format(value: str) -> tuple[str, str]:
    """(the date part of ``value``, the strptime format of its time part or "")."""
    match = _TIME.search(value)
    if match is None:
        return value, ""
    fmt = match["sep"] + ("%I" if match["p"] else "%H") + ":%M" + (":%S" if match["s"] else "")
    fmt += ".%f" if match["f"] else ""
    fmt += (" " if match["p"].startswith(" ") else "") + "%p" if match["p"] else ""
    return value[:match.start()].strip(), fmt


def _date_order(parts: pd.DataFrame) -> tuple[bool, bool]:
    """(day first, decided) for a column of ``a/b/yyyy`` dates."""
    first = pd.to_numeric(parts["a"], errors="coerce")
    second = pd.to_numeric(parts["b"], errors="coerce")
    day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
    if day_first and month_first:
        a = parts["a"][first > 12].index[0]
        raise DataFileError(f"Dt_Customer mixes day-first and month-first dates (a first part above 12 in row "
                            f"{a}, a second part above 12 in another): the day/month order must be one")
    return (not month_first), (day_first or month_first)


def _date_formats(dates: pd.Series) -> list[str]:
    """Candidate strptime formats for the date parts, best first."""
    first = dates.iloc[0]
    ymd = _YMD.match(first)
    if ymd:
        sep = ymd["sep"]
        return [f"%Y{sep}%m{sep}%d"]
    aby = dates.str.extract(_ABY)
    if aby["a"].notna().any():
        sep = str(aby["sep"].dropna().iloc[0])
        day_first, _ = _date_order(aby.dropna())
        return [f"%d{sep}%m{sep}%Y", f"%m{sep}%d{sep}%Y"] if day_first else [f"%m{sep}%d{sep}%Y"]
    return list(_NAMED_FORMATS)


def detect_date_format(values: pd.Series) -> str:
    """The one strptime format of a Dt_Customer column (see the module docstring): the first candidate
    that parses every non-empty value. DataFileError naming a value and the rule otherwise."""
    sample = _sample(values)
    if sample.empty:
        raise DataFileError("Dt_Customer has no dates")
    split = [_time_format(v) for v in sample.drop_duplicates().head(5000)]
    dates = pd.Series([d for d, _ in split], dtype=object)
    times = sorted({t for _, t in split})
    for date_fmt in _date_formats(dates.astype(str)):
        for time_fmt in times or [""]:
            fmt = date_fmt + time_fmt
            if pd.to_datetime(sample, format=fmt, errors="coerce").notna().all():
                return fmt
    raise DataFileError(f"Dt_Customer={sample.iloc[0]!r} is not a date in a known format ({KNOWN}); "
                        f"every date of the column must have the same format")


def order_is_ambiguous(values: pd.Series, fmt: str) -> bool:
    """True when ``fmt`` reads ``a/b/yyyy`` day first only because no value decided the order."""
    if not fmt.startswith("%d") or "%b" in fmt or "%B" in fmt:
        return False
    dates = pd.Series([_time_format(v)[0] for v in _sample(values)], dtype=object).astype(str)
    parts = dates.str.extract(_ABY).dropna()
    return not parts.empty and not _date_order(parts)[1]


def latest_year(values: pd.Series) -> int | None:
    """The year of the latest date of the column by its format, or None when it has no readable date."""
    try:
        fmt = detect_date_format(values)
    except DataFileError:
        return None
    latest = pd.to_datetime(_sample(values), format=fmt, errors="coerce").max()
    return None if pd.isna(latest) else int(latest.year)

"""The header matcher: which customer field a column header names.

One implementation for files and chat: the batch reader (:mod:`assistant.batch.inspect`) maps a customer
file's header through :func:`header_field`, and the chat parser (:mod:`assistant.conversation.parsing`) maps
the header line of a table pasted into a message through the same function. A header names a field by the
field's name, label or synonyms (:mod:`assistant.core.fields`) or by :data:`HEADER_ALIASES` (the data set's
own column names such as ``NumWebPurchases`` among them); case, spaces and punctuation do not matter, and
units and counts that do not change the numbers (``Age (years)``, ``Income in USD``, ``# Web purchases``,
``Recency (days)``) are stripped first.
"""

from __future__ import annotations

import functools
import re

from assistant.core.fields import FIELDS


def norm_header(name: str) -> str:
    """Lower case without spaces or punctuation: ``Customer_ID`` and ``customer id`` -> ``customerid``."""
    return re.sub(r"[\W_]+", "", str(name).strip().lower())


# Units and counts that headers add to a field's name and that do not change its meaning: "Age (years)",
# "Income ($)", "Income in USD", "Recency [days]", "# Web purchases", "Number of store purchases",
# "NumWebPurchases". A unit that would change the numbers ("Income (k$)", "Income (EUR)") is not here,
# so such a column is not taken for the field.
_UNITS = frozenset({"$", "usd", "us$", "dollars", "dollar", "years", "year", "yrs", "yr", "y", "days", "day", "d",
                    "count", "number", "no", "nr", "n", "#", "qty", "permonth", "amonth", "month", "monthly", "mo",
                    "peryear", "ayear", "yearly", "annual", "annually", "pa", "last2years", "2years", "24months",
                    "lastmonth", "total", "amount", "value"})
_UNIT_GROUP = re.compile(r"\s*(?:[\(\[\{]([^\)\]\}]*)[\)\]\}]|,\s*([^,]*)|\s+in\s+(\S+)|[\s_]+([^\s_]+))\s*$")
_COUNT_PREFIX = re.compile(r"^\s*(?:#|no\.?\s+of|nr\.?\s+of|number\s+of|num\.?\s+of|count\s+of|total\s+number\s+of|"
                           r"(?-i:Num(?=[A-Z]))|num[_\s]+|#\s*of)\s*_?", re.IGNORECASE)
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    # Headers seen in customer files beyond the fields' names, labels and synonyms. The raw marketing
    # file's own names come first. The chat parser also takes the ones of two or more words as cues.
    "age": ("customer age", "age of customer"),
    "income": ("Income", "gross income", "customer income", "income per annum"),
    "total_spending": ("total amount spent", "amount spent total", "total spendings", "total sales", "spend total",
                       "total purchases amount", "spent total", "total spent amount"),
    "web_purchases": ("NumWebPurchases", "web orders", "online orders", "website orders", "web purchases count",
                      "internet purchases", "ecommerce purchases", "e-commerce purchases"),
    "store_purchases": ("NumStorePurchases", "store orders", "in-store orders", "instore purchases",
                        "shop orders", "retail purchases", "offline purchases", "in-store visits purchases"),
    "web_visits_per_month": ("NumWebVisitsMonth", "web visits month", "web visits/month", "website visits per month",
                             "site visits per month", "monthly web visits", "monthly website visits",
                             "monthly visits", "visits/month", "visits month", "web visits per mo"),
    "recency_days": ("Recency", "days since last order", "days since last purchased", "days since purchase",
                     "days since last buy", "last purchase days ago", "days since last transaction",
                     "recency days", "days since last shop"),
}


def strip_units(header: str) -> str:
    """``Age (years)`` -> ``Age``; ``Income in USD`` -> ``Income``; ``# Web purchases`` -> ``Web purchases``."""
    text = str(header).replace("\u00a0", " ").replace("\ufeff", "").strip()
    while True:
        match = _UNIT_GROUP.search(text)
        if not match or match.start() == 0:
            break
        unit = next(g for g in match.groups() if g is not None)
        if norm_header(unit) not in _UNITS and unit.strip() not in _UNITS:
            break
        text = text[:match.start()].rstrip()
    stripped = _COUNT_PREFIX.sub("", text, count=1)
    return stripped if stripped.strip() else text


@functools.cache
def _header_keys() -> dict[str, tuple[str, int]]:
    """Normalised header -> (field name, rank): rank 0 for a field's name or label, 1 for a phrase (several
    words), 2 for a single generic word such as ``store`` or ``web``. Keys shared by two fields are dropped."""
    seen: dict[str, dict[str, int]] = {}
    for spec in FIELDS:
        texts = [(spec.name, 0), (spec.label, 0)]
        texts += [(t, 1 if re.search(r"[\s\-]", t.strip()) else 2) for t in spec.synonyms]
        texts += [(t, 1) for t in HEADER_ALIASES.get(spec.name, ())]
        for text, rank in texts:
            key = norm_header(text)
            if key:
                ranks = seen.setdefault(key, {})
                ranks[spec.name] = min(rank, ranks.get(spec.name, rank))
    keys = {key: next(iter(f.items())) for key, f in seen.items() if len(f) == 1}
    for spec in FIELDS:  # a field's own name always wins
        keys[norm_header(spec.name)] = (spec.name, 0)
    return keys


def header_field(name: str) -> tuple[str, int] | None:
    """The field a header names and how specifically (0 name or label, 1 phrase, 2 generic word), or None."""
    keys = _header_keys()
    for candidate in dict.fromkeys((norm_header(name), norm_header(strip_units(name)))):
        for key in (candidate, candidate[:-1] if candidate.endswith("s") else None):
            if key and key in keys:
                return keys[key]
    return None

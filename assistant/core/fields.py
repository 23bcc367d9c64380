"""The seven customer fields, declared once.

This table drives the pydantic schemas (types, ranges, docs), the free-text parser (synonyms),
the web form (label, unit, range), the CLI flags, the CSV headers we read and write, and the
README. Questions and re-asks asked about a field live in ``knowledge/dialogue.yaml``, keyed by
the field name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from assistant.core.errors import InvalidValueError


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    label: str
    unit: str
    description: str
    minimum: float
    maximum: float
    integer: bool
    example: float
    synonyms: tuple[str, ...]
    source: str  # how the field is derived from the raw marketing file
    short: str   # the field named in a sentence or a list: "Last purchase" ("last purchase: 14 days ago")
    unit_one: str = ""   # the unit for exactly one: "day" ("1 day", "14 days"); "" = same as ``unit``
    said: str = "{number}"   # the value after ``short``: {number} (38, $71,000) or {amount} (14 days)
    said_zero: str = ""      # ``said`` for 0, when it reads better ("today"); "" = ``said``

    @property
    def cli_flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def python_type(self) -> type:
        return int if self.integer else float

    def number(self, value: float | None) -> str:
        """The bare number, as in a table under the field's label: ``$71,000``, ``38``, ``45.2``.

        Money has no decimals; other values at most one, and none when it is zero (``49``, not ``49.0``)."""
        return "-" if value is None else format_number(value, money=self.money)

    def amount(self, value: float) -> str:
        """The number with its unit, singular for exactly one: ``14 days``, ``1 day``, ``$71,000``."""
        number = self.number(value)
        if self.money or not self.unit:
            return number
        return f"{number} {self.unit_one or self.unit if number == '1' else self.unit}"

    def format(self, value: float | None) -> str:
        """A value in this field's unit for people: ``$71,000``, ``38 years``, ``14 days``, ``1 day``."""
        return "-" if value is None else self.amount(value)

    def say(self, value: float | None) -> str:
        """The value as said after the field's ``short`` name: ``5`` (web purchases), ``$71,000``
        (income), ``6 a month`` (site visits), ``14 days ago`` / ``today`` (last purchase)."""
        if value is None:
            return "-"
        template = self.said_zero if self.said_zero and float(value) == 0 else self.said
        return template.format(number=self.number(value), amount=self.amount(value))

    @property
    def short_lower(self) -> str:
        return self.short[:1].lower() + self.short[1:]

    @property
    def money(self) -> bool:
        return self.unit == "$"

    def dot_is_ambiguous(self, value: float) -> bool:
        """``71.000`` read as ``value`` (71): ambiguous when 71 and 71,000 are both in this field's
        range (then it is refused, never guessed); otherwise the dot is a decimal point."""
        return self.minimum <= value <= self.maximum and self.minimum <= value * 1000 <= self.maximum

    def number_from_text(self, value: object) -> float:
        """A number written as text, or InvalidValueError naming value and rule. Accepted: thousands
        grouped with commas (``71,000``), spaces (``71 000``) or apostrophes (``71'000``), or with dots
        when there are two or more groups (``1.234.567``); a leading ``$`` in a $ field (``$71,000``).
        Refused with their rule: a decimal comma (``52000,50``), a dot before exactly three digits when
        both readings are in range (``71.000``: 71 or 71000?), another currency, a percentage."""
        text = str(value).strip()
        if self.money:
            text = MONEY_TRAIL.sub(r"\1", MONEY_LEAD.sub(r"\1\2", text, count=1), count=1)
        if OTHER_CURRENCY.search(text):
            raise InvalidValueError(self.name, value, self.currency_rule)
        if PERCENT.match(text):
            raise InvalidValueError(self.name, value, self.percent_rule)
        if GROUPED_OTHER.match(text):
            text = GROUP_MARKS.sub("", text)
        elif DOT_GROUPS.match(text):
            text = text.replace(".", "")
        elif "," in text and COMMA_NUMBER.match(text) and not GROUPED_THOUSANDS.match(text):
            raise InvalidValueError(self.name, value, MISPLACED_COMMA_RULE)
        elif AMBIGUOUS_DOT.match(text) and self.dot_is_ambiguous(float(text)):
            raise InvalidValueError(self.name, value, AMBIGUOUS_DOT_RULE)
        try:
            return float(text.replace(",", ""))
        except ValueError:
            raise InvalidValueError(self.name, value, "is not a number") from None

    @property
    def currency_rule(self) -> str:
        return f"is in another currency ({self.name} is in $)" if self.money else "is not a number"

    @property
    def percent_rule(self) -> str:
        return f"is a percentage ({self.name} is in {self.unit})"

    def check(self, value: object) -> int | float:
        """Return ``value`` as this field's type, or raise InvalidValueError naming value and rule."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            value = self.number_from_text(value)
        try:
            number = float(value)
        except OverflowError:            # a whole number beyond any float (10**309): past one end of the range
            raise InvalidValueError(self.name, value, f"is above the maximum of {_num(self.maximum)}" if value > 0
                                    else f"is below the minimum of {_num(self.minimum)}") from None
        if math.isnan(number) or math.isinf(number):
            raise InvalidValueError(self.name, value, "is not a finite number")
        if number < self.minimum:
            raise InvalidValueError(self.name, value, f"is below the minimum of {_num(self.minimum)}")
        if number > self.maximum:
            raise InvalidValueError(self.name, value, f"is above the maximum of {_num(self.maximum)}")
        if self.integer:
            if not number.is_integer():
                raise InvalidValueError(self.name, value, "must be a whole number")
            return int(number)
        return number


_MARKS = " \u00a0\u202f'\u2019"   # thousands marks besides the comma (RE2, used by batch scoring, reads no \\u escapes)
COMMA_NUMBER = re.compile(r"^[+-]?[\d.," + _MARKS + r"]*,[\d.," + _MARKS + r"]*([eE][+-]?\d+)?$")
GROUPED_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?([eE][+-]?\d+)?$")
"""A number whose commas group thousands (``71,000``, ``1,234,567.5``); any other comma is refused,
never dropped: ``52000,50`` is a decimal comma and must not become 5,200,050."""
MISPLACED_COMMA_RULE = "has a comma that does not separate thousands (write decimals with a point, e.g. 52000.50)"
GROUPED_OTHER = re.compile(r"^[+-]?\d{1,3}([" + _MARKS + r"]\d{3})+(\.\d*)?$")
"""Thousands grouped with spaces (also no-break ones) or apostrophes: ``71 000``, ``1'234'567.5``."""
GROUP_MARKS = re.compile("[" + _MARKS + "]")
DOT_GROUPS = re.compile(r"^[+-]?\d{1,3}(\.\d{3}){2,}$")
"""Two or more dot groups (``1.234.567``): only thousands can be meant."""
AMBIGUOUS_DOT = re.compile(r"^[+-]?[1-9]\d{0,2}\.\d{3}$")
"""``71.000``: 71 with three decimals, or 71000 with a thousands dot (Excel in a European locale)?
Refused when both readings are in the field's range; else the dot is a decimal point."""
AMBIGUOUS_DOT_RULE = ("is ambiguous: the dot may separate thousands or decimals (write thousands without a "
                      "separator, e.g. 71000, and decimals with a point, e.g. 71.5)")
MONEY_LEAD = re.compile(r"^([+-]?)\s*(?:US\s?\$|USD\s?|\$)\s*([\d.])", re.IGNORECASE)
MONEY_TRAIL = re.compile(r"([\d.])\s*(?:\$|USD)$", re.IGNORECASE)
"""A dollar sign in a $ field: ``$71,000``, ``-$5``, ``US$ 71000``, ``USD 71000``, ``71000 $`` (no lookarounds:
pyarrow's RE2 uses the same patterns in batch scoring)."""
OTHER_CURRENCY = re.compile("[\u20ac\u00a3\u00a5\u20a4\u20b9\u20bd]" + r"|\b(EUR|GBP|CHF|JPY|CAD|AUD)\b", re.IGNORECASE)
PERCENT = re.compile(r"^[+-]?(\d[\d,.]*|\.\d+)\s*%$")


def format_number(value: float, *, money: bool = False) -> str:
    """THE number formatter of an answer (tables, reasons, evidence, the result card), so one value
    always reads the same: money without decimals (``$71,000``), anything else with at most one
    decimal and none when it would be zero (``49``, ``45.2``)."""
    if money:
        return f"${value:,.0f}"
    rounded = round(float(value), 1)
    return f"{rounded:,.0f}" if rounded.is_integer() else f"{rounded:,.1f}"


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def format_duration(seconds: float) -> str:
    """How long something took, for people: ``38 ms`` under a second, ``1.4 s`` under ten,
    ``12 s`` under a minute, then ``2 min 05 s`` (never ``0.0 s``)."""
    seconds = max(0.0, float(seconds))
    if seconds < 0.9995:
        return f"{max(1, round(seconds * 1000))} ms"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="age", label="Age", unit="years",
        description=("Age in years. In the training data it is computed relative to 2014, the year the data "
                     "was collected."),
        minimum=18, maximum=110, integer=True, example=38,
        synonyms=("age", "aged", "years old", "yo", "y/o", "yrs old", "born",
                  "year old", "y.o.", "she is", "he is", "she's", "he's",
                  "yr old", "y.o", "years of age", "she was", "he was", "she were", "he were",
                  "customer is", "client is"),
        source="collection year (latest Dt_Customer, 2014) - Year_Birth",
        short="Age", unit_one="year",
    ),
    FieldSpec(
        name="income", label="Yearly income", unit="$",
        description="Yearly household income.",
        minimum=0, maximum=10_000_000, integer=False, example=52000,
        synonyms=("income", "earns", "earning", "earnings", "makes", "making", "salary", "household income",
                  "yearly income", "annual income", "income per year",
                  "earn", "wage", "brings in", "takes home"),
        source="Income",
        short="Income",
    ),
    FieldSpec(
        name="total_spending", label="Total spending", unit="$",
        description="Amount spent on products in the last 2 years (wine, fruit, meat, fish, sweets and gold).",
        minimum=0, maximum=1_000_000, integer=False, example=600,
        synonyms=("total spending", "total spend", "total spent", "spent", "spending", "spends", "spend",
                  "amount spent", "purchases worth",
                  "has spent", "monetary", "totaling", "totalling"),
        source="MntWines + MntFruits + MntMeatProducts + MntFishProducts + MntSweetProducts + MntGoldProds",
        short="Total spending",
    ),
    FieldSpec(
        name="web_purchases", label="Web purchases", unit="purchases",
        description="Number of purchases made through the company's website (last 2 years).",
        minimum=0, maximum=1000, integer=True, example=4,
        synonyms=("web purchases", "online purchases", "website purchases", "online", "web", "website",
                  "buys online", "bought online", "orders online",
                  "web purchase", "online purchase", "website purchase", "buy online", "shop online", "shopped online",
                  "purchase online", "order online", "ordered online", "web order", "online order", "website order",
                  "e-commerce", "internet purchase"),
        source="NumWebPurchases",
        short="Web purchases", unit_one="purchase",
    ),
    FieldSpec(
        name="store_purchases", label="Store purchases", unit="purchases",
        description="Number of purchases made directly in stores (last 2 years).",
        minimum=0, maximum=1000, integer=True, example=6,
        synonyms=("store purchases", "in-store purchases", "in store purchases", "shop purchases", "in-store",
                  "in store", "store", "shop", "in person",
                  "store purchase", "in store purchase", "shop purchase", "store order", "instore",
                  "shop in store", "buy in store", "bought in store", "purchase in store", "in shop",
                  "offline", "retail purchase", "visit store", "visit shop"),
        source="NumStorePurchases",
        short="Store purchases", unit_one="purchase",
    ),
    FieldSpec(
        name="web_visits_per_month", label="Website visits per month", unit="visits/month",
        description="Number of visits to the company's website in the last month.",
        minimum=0, maximum=300, integer=True, example=5,
        synonyms=("web visits per month", "website visits", "site visits", "web visits", "visits per month",
                  "visits a month", "visits", "visit",
                  "visit website", "visit site", "visit web site", "website visit", "site visit", "web visit",
                  "browse website", "browse site", "go website", "go site", "come website", "come site",
                  "log in", "session"),
        source="NumWebVisitsMonth",
        short="Site visits", unit_one="visit/month", said="{number} a month",
    ),
    FieldSpec(
        name="recency_days", label="Days since last purchase", unit="days",
        description="Number of days since the customer's last purchase.",
        minimum=0, maximum=3650, integer=True, example=30,
        synonyms=("recency", "days since last purchase", "last purchase", "last bought", "last order",
                  "last shopped", "days since", "days ago",
                  "last purchased", "last ordered", "hasn't bought", "has not bought", "hasn't purchased",
                  "hasn't ordered", "hasn't shopped", "since last purchase", "last transaction", "last buy"),
        source="Recency",
        short="Last purchase", unit_one="day", said="{amount} ago", said_zero="today",
    ),
)

FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
FIELDS_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}


def get_field(name: str) -> FieldSpec:
    try:
        return FIELDS_BY_NAME[name]
    except KeyError:
        raise InvalidValueError("field", name, f"is not one of {', '.join(FIELD_NAMES)}") from None

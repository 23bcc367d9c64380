"""Free-text understanding: pull customer values out of one chat message.

``parse_message("38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month,
last bought 2 weeks ago")`` gives all seven fields. Pure Python (stdlib ``re``); the only rules are
the ones below, and the words come from the ``synonyms`` of each field in :mod:`assistant.core.fields`.

How a message is read
---------------------
1. Only the first ``MAX_CHARS`` characters are looked at. Curly quotes and unicode dashes become
   their ASCII forms (one character for one, so positions do not move). A pasted table -- a line
   whose every cell (``,``/``;``/tab/``|``) is a field name or synonym, and exactly one line of as
   many numbers under it -- gives its values by column (several rows are a file: not read); a line
   ``income,71000`` (a field cue, a separator, one number) reads as ``income: 71000``.
2. The text is split into clauses on newlines, ``;``, ``!``, ``?``, commas (not the thousands
   separator in ``71,000``), a period followed by a space (not after ``approx.``, ``y.o.``, ...),
   and `` and ``/`` but ``/`` plus `` (not the ``and`` in ``one hundred and twenty``).
3. In each clause two kinds of token are found:

   * numbers: ``71,000``, ``71 000``, ``$1,200.50``, ``€3.5k``, ``USD 500``, ``1.2 million``, ``thirty-five``,
     ``a dozen``, ``once``/``twice``, ``none``; with what is written right after them: a count
     suffix (``5x``, ``5 times``), a rate (``a month``, ``per week``, ``/yr``, ``monthly``; also
     ``monthly`` written before a cue: "monthly income 5k") or a duration (``2 weeks``, ``3 months ago``;
     also ``yesterday``, ``today``, ``last week``, ``a month ago``). Negations (``never``, ``no``,
     ``doesn't``) are zero-tokens. Things that only look like numbers (``#4521``, dates, times, ``20%``,
     ranges ``30-40``, ordinals, ``in 2013``, ``born 1986``) are recognised as junk so they are never
     used. A birth year is not
     turned into an age: the model's age is relative to the collection year (2014), a person's
     age today is not, and guessing either would be wrong for someone; the assistant asks for the age.
     ``71.000`` (a point and exactly three digits, no multiplier) is 71 to some writers and 71,000 to
     others: it is refused with a rule saying so, never guessed. A frequency with no number
     ("visits the site weekly", "every day") is once per period, in a clause with no other number;
   * cues: any synonym of a field (with ``_``/``-``/space or nothing between its words, filler
     words such as "the", "our", "to" allowed between them, and ``s/es/ed/ing`` endings), e.g.
     ``visits the website`` or ``total_spending``.

4. Numbers are attached to cues inside the clause: each cue takes at most one number and each
   number one cue, cue and number must not be separated by another number (or junk) nor by more
   than ``_MAX_GAP`` words (a cue passes over a duration that does not fit it: "spending over 2
   years: 1200"), and the token kinds must fit the field (``_value_for``: money only for
   income/spending, counts and negations only for purchases/visits, durations only for recency,
   or for age when given in years). Among the possible attachments the one with most pairs,
   then fewest words in between, then most "cue before number" pairs is taken
   (``income 71k``, ``71k income``, ``buys online 5x in store 7x`` and ``5x online 7x in store``
   all come out right).
5. A number left over gets a field only through these rules, in this order:

   * ``pending`` (the field the assistant just asked about) takes the leftover number that fits
     it, when there is exactly one ("between 3 and 4" is not answered) and the word after it is
     not a count of something else ("2 kids"; words of our fields and "or so", "I guess"... are
     fine); the content of ``<script>``/``<style>`` elements, Markdown images, link targets and web
     addresses are dropped before anything is read;
   * a duration ending in "ago" (``3 weeks ago``) is a recency (the synonym table lists
     "days ago"); so is a point in time ("yesterday", "last week") in a clause that names a
     purchase ("bought", "ordered", ...) and holds no other number;
   * leading age: a message that *starts* with a bare whole number in the age range followed by a
     comma, and has other cued values after it ("38, makes $71k, ..."), starts with the age;
   * a yearly amount of money (``$71k/yr``, ``28k a year``: a currency, or at least 1,000) is the
     income;
   * otherwise a number with no cue is never guessed.

6. If a field is mentioned twice the later mention wins (a correction). Every value goes through
   ``FieldSpec.check``: valid ones land in ``values``, refused ones in ``rejected``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from assistant.core.errors import InvalidValueError
from assistant.core.fields import AMBIGUOUS_DOT, AMBIGUOUS_DOT_RULE, FIELD_NAMES, FIELDS, FIELDS_BY_NAME
from assistant.core.schemas import ProfileDraft

MAX_CHARS = 10_000

# ------------------------------------------------------------------------------------ tables

_MONEY_FIELDS = frozenset(f.name for f in FIELDS if f.unit == "$")
_COUNT_FIELDS = frozenset(f.name for f in FIELDS if f.unit in ("purchases", "visits/month"))
_DAYS_FIELDS = frozenset(f.name for f in FIELDS if f.unit == "days")
_YEARS_FIELDS = frozenset(f.name for f in FIELDS if f.unit == "years")

# A number with a rate ("$5k a month", "2x a week") is scaled to the field's own period: a year for
# income, the two-year window for purchases and spending, a month for visits. A rate that is not
# listed for a field does not fit it.
_TWO_YEARS = {"year": 2, "month": 24, "week": 104, "day": 730}
_PER_PERIOD: dict[str, dict[str, int]] = {
    "income": {"year": 1, "month": 12, "week": 52},
    "total_spending": _TWO_YEARS,
    "web_purchases": _TWO_YEARS,
    "store_purchases": _TWO_YEARS,
    "web_visits_per_month": {"month": 1, "week": 4, "day": 30},
}
_DAYS_PER = {"day": 1, "week": 7, "month": 30, "year": 365}
_PERIOD_OF = {
    "d": "day", "w": "week", "m": "month", "y": "year", "a": "year",  # by first letter (annum, annually)
}

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}
_MULTIPLIERS = {"k": 1e3, "thousand": 1e3, "grand": 1e3, "m": 1e6, "mm": 1e6, "mn": 1e6,
                "mil": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_AMBIGUOUS_MILLION = frozenset({"m", "mm", "mn", "mil"})  # "2m" is money only
_COUNT_WORDS = {"once": 1, "twice": 2, "thrice": 3}

# Words allowed between the words of a synonym ("visits the website", "shops in the store").
_FILLERS = ("the", "a", "an", "our", "their", "his", "her", "its", "my", "your", "this", "that",
            "to", "on", "at", "of", "from", "in", "for", "per", "was", "is", "has", "have", "had")

# "visits the site weekly": a frequency with no number is once per period -- used only in a clause
# that has no other number ("6 web visits monthly" is 6, not once a month).
_FREQUENCY = re.compile(r"(?<![^\W\d_])(?:(?P<adv>daily|weekly|monthly)|(?:every|each)\s+(?P<per>day|week|month))"
                        r"(?![^\W\d_])", re.IGNORECASE)
# "bought yesterday", "placed an order last week": a point in time is the last purchase when the
# clause names a purchase and holds no other number ("bought 5 times last month" is no recency).
_PURCHASE_WORD = re.compile(r"(?<![^\W\d_])(?:bought|purchased?|ordered|orders?|shopped)(?![^\W\d_])",
                            re.IGNORECASE)
# "28k/yr", "$71k a year" with no cue: a yearly amount of money is an income (spending is counted
# over two years and is said with a cue); small yearly numbers ("6 a year") are never guessed.
_YEARLY_INCOME_MIN = 1000
# A period after these is no end of sentence ("age approx. 40", "38 y.o. male").
_ABBREVIATIONS = ("approx", "appr", "ca", "abt", "est", "avg", "y.o", "p.a", "e.g", "i.e", "vs", "incl")

_MAX_GAP = 4      # most words between a cue and its number
_MAX_NEG_GAP = 1  # most words between "never"/"doesn't" and its cue ("no" must come right before it)

# ------------------------------------------------------------------------------------ patterns

_L = r"(?<![^\W\d_])"  # not preceded by a letter
_R = r"(?![^\W\d_])"   # not followed by a letter
_NB = r"(?<![\w.])"    # a number does not start inside a word or after a decimal point

_WORD = "(?:" + "|".join(sorted([*_UNITS, "hundred", "dozen", *_SCALES], key=len, reverse=True)) + ")" + _R
_WORDS = (rf"(?:an?[\s-]+(?=(?:hundred|thousand|million|billion|dozen){_R}))?"
          rf"{_WORD}(?:[\s-]+(?:and[\s-]+)?{_WORD})*")
_MULT = "|".join(sorted(_MULTIPLIERS, key=len, reverse=True))
_UNIT_WORDS = r"days?|d|weeks?|wks?|w|months?|mos?|years?|yrs?|y|x|times?"
# A decimal comma is read only before a multiplier ("1,2k", "1,5 million"); "52000,50" stays ambiguous.
_DECIMAL_COMMA = re.compile(r"[0-9]+,[0-9]{1,2}")
_DIGITS = (rf"[0-9]+,[0-9]{{1,2}}(?=\s*(?:{_MULT}){_R})"
           r"|[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])(?:\.[0-9]+)?"
           rf"|[0-9]{{1,3}}(?:[ ][0-9]{{3}})+(?:\.[0-9]+)?(?![0-9]|,[0-9]|\s*(?:{_MULT}|{_UNIT_WORDS}){_R})"
           #  71 000: a space groups thousands, but "38 100k", "5 100 days" are two numbers
           r"|[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?")
# "71.000" (no multiplier after it) is 71 or 71,000 depending on the writer's country: refused, never
# guessed, when both readings are in the field's range (fields.AMBIGUOUS_DOT and FieldSpec.dot_is_ambiguous,
# the one rule for chat, API and files).

# One number expression: sign, currency, the number, a multiplier, a currency after it.
_NUMBER = rf"""
    (?P<sign>-)?
    (?P<cur>(?:us\$|[$€£]|(?:usd|eur|gbp){_R})\s*)?
    (?P<sign2>-)?
    (?:(?P<digits>{_DIGITS})
      |{_L}(?P<words>{_WORDS})
      |{_L}(?P<cw>once|twice|thrice){_R}
      |{_L}(?P<zw>none|nothing|nil){_R})
    (?:\s*(?P<mult>{_MULT}){_R})?
    (?P<cur2>\s*(?:(?:dollars?|bucks|usd|eur|euros?|gbp|pounds?|quid){_R}|[$€£]))?
"""
_MONTHS = ("(?:january|february|march|april|may|june|july|august|september|october|november|december"
           r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?")

_TOKEN = re.compile(rf"""
    (?P<junk>                                                   # looks like a number, is not one
        \#\s*[0-9][0-9,.]*                                      #   ids: #4521
      | {_NB}[0-9]+(?:[./-][0-9]+){{2,}}                        #   dates, versions: 2014-03-05
      | {_NB}[0-9]{{1,2}}/[0-9]{{2,4}}(?![0-9])                 #   03/2014, 5/10
      | {_NB}[0-9]+(?:\.[0-9]+)?\s*(?:%|percent{_R})            #   20%
      | {_NB}[0-9]{{1,2}}:[0-9]{{2}}(?::[0-9]{{2}})?            #   10:30
      | {_NB}[0-9]+(?:st|nd|rd|th){_R}                          #   3rd
      | {_NB}[0-9]+(?:\.[0-9]+)?k?\s*-\s*[0-9]+                 #   ranges: 30-40
      | {_L}{_MONTHS}\s*[0-9]{{1,2}}(?:st|nd|rd|th)?(?![0-9])(?:,?\s*[0-9]{{4}})?
      | {_NB}[0-9]{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}{_R}(?:,?\s*[0-9]{{4}})?
      | {_L}(?:in|since|from|during|until|till|by|year|born(?:\s+in)?)\s+(?:19|20)[0-9]{{2}}(?![0-9])
    )
  | {_L}(?P<dw>yesterday|today|last\s+(?:week|month|year)|(?:an?|one)\s+(?:day|week|month|year)\s+ago){_R}
  | (?P<num>{_NB}{_NUMBER}
      (?:(?P<dur>\s*(?P<unit>days?|d|weeks?|wks?|w|months?|mos?|years?|yrs?|y)
                 (?![^\W\d_]|\s*/|\.o|[\s-]*old)(?P<ago>\s+(?:ago|back){_R})?)
        |(?P<times>\s*(?:x|times?){_R})?
         (?P<rate>\s*(?:/\s*|(?:a|an|per|each|every|in\s+a)\s+)(?P<per>day|week|wk|month|mo|year|yr|annum){_R}
                 |\s+(?P<per2>daily|weekly|monthly|yearly|annually){_R})?
      )
    )
  | {_L}(?P<neg>never|no|doesn't|doesnt|does\s+not|don't|dont|do\s+not|didn't|didnt|did\s+not|not\s+any){_R}
""", re.IGNORECASE | re.VERBOSE)

_NUMBER_ONLY = re.compile(rf"\s*{_NUMBER}\s*", re.IGNORECASE | re.VERBOSE)

_CLAUSE_BREAK = re.compile(r"""
    [\n\r;!?|\u2022]
  | (?<![0-9]),|,(?![0-9]{3}(?![0-9])|[0-9]{1,2}\s*(?:k|m|mm|mn|mil|million|thousand|grand|b|bn|billion)(?![^\W\d_]))
                                          # a comma, but not the one in 71,000 or 1,2k
  | {abbr}\.(?=\s)
  | (?<!hundred)(?<!thousand)(?<!million)\s(?:and|but|plus|whereas|while|&)\s
""".replace("{abbr}", "".join(rf"(?<!\b{re.escape(a)})" for a in _ABBREVIATIONS)), re.IGNORECASE | re.VERBOSE)

# "monthly income 5k": a rate written just before a cue applies to its number.
_CUE_RATE = re.compile(rf"{_L}(?P<per>daily|weekly|monthly|yearly)[\s_-]*$", re.IGNORECASE)
_WORD_RUN = re.compile(r"[^\W_]+")
_BARE_NUMBER = re.compile(r"[0-9]+")
_NORMALISE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2212": "-", "\u2013": "-",
                            "\u2014": "-", "\u2010": "-", "\u2011": "-", "\u00a0": " ", "\u2009": " ",
                            "\u202f": " "})


def _synonym_pattern(synonym: str) -> str:
    sep = rf"(?:[\s_-]++(?:(?:{'|'.join(_FILLERS)})[\s_-]++)*|[_-]?)"
    words = [w for w in re.split(r"[\s_-]+", synonym.strip().lower()) if w]
    return sep.join(re.escape(w) + ("(?:s|es|ed|ing)?" if w[-1].isalpha() else "") for w in words)


def _cue_table() -> tuple[re.Pattern[str], dict[str, str]]:
    entries: dict[str, str] = {}
    for spec in FIELDS:
        for synonym in (spec.name.replace("_", " "), *spec.synonyms):
            entries.setdefault(" ".join(re.split(r"[\s_-]+", synonym.strip().lower())), spec.name)
    ordered = sorted(entries.items(), key=lambda e: (-len(e[0]), e[0]))  # longest first
    groups = {f"c{i}": name for i, (_, name) in enumerate(ordered)}
    alternatives = "|".join(f"(?P<c{i}>{_synonym_pattern(s)})" for i, (s, _) in enumerate(ordered))
    return re.compile(rf"{_L}(?:{alternatives}){_R}", re.IGNORECASE), groups


_CUE, _CUE_FIELD = _cue_table()


def _cue_field(m: re.Match[str]) -> str:
    """The field a match of ``_CUE`` names (each of its alternatives is a named group)."""
    return _CUE_FIELD[m.lastgroup or ""]

# ------------------------------------------------------------------------------------ result


@dataclass(frozen=True)
class ParseResult:
    """What one message says: valid ``values`` (field order) and ``rejected`` out-of-rule values."""

    values: dict[str, int | float] = dataclass_field(default_factory=dict)
    rejected: list[InvalidValueError] = dataclass_field(default_factory=list)

    @property
    def draft(self) -> ProfileDraft:
        return ProfileDraft().merged(self.values)

    @property
    def empty(self) -> bool:
        """True when nothing at all was recognised."""
        return not self.values and not self.rejected


# ------------------------------------------------------------------------------------ tokens


@dataclass(slots=True)
class _Tok:
    kind: str                # "cue", "num", "dur", "neg", "junk"
    start: int
    end: int
    field: str = ""          # cue: the field
    value: float = 0.0       # num: the number; dur: days
    raw: float = 0.0         # dur: the number as written ("2" in "2 weeks")
    unit: str = ""           # dur: day/week/month/year
    money: bool = False      # currency written, or "2m"
    count: bool = False      # "5x", "5 times", "twice"
    per: str = ""            # rate: day/week/month/year ("5k a month"; cue: "monthly income")
    ago: bool = False        # dur: "... ago"
    bare: bool = False       # num: nothing but digits ("38")
    word: str = ""           # neg: the word
    raw_text: str = ""       # num: the text, when it is ambiguous ("71.000")
    when: bool = False       # dur: a point in time ("3 weeks ago", "yesterday", "last week")


def _words_value(text: str) -> float:
    total, current = 0.0, 0.0
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in _UNITS:
            current += _UNITS[word]
        elif word == "hundred":
            current = (current or 1.0) * 100
        elif word == "dozen":
            current = (current or 1.0) * 12
        elif word in _SCALES:
            total += (current or 1.0) * _SCALES[word]
            current = 0.0
    return total + current


def _number_value(m: re.Match[str]) -> float:
    if m.group("digits"):
        digits = m.group("digits")
        value = float(digits.replace(" ", "").replace(",", "." if _DECIMAL_COMMA.fullmatch(digits) else ""))
    elif m.group("words"):
        value = _words_value(m.group("words"))
    elif m.group("cw"):
        value = float(_COUNT_WORDS[m.group("cw").lower()])
    else:
        value = 0.0
    if m.group("mult"):
        value *= _MULTIPLIERS[m.group("mult").lower()]
    if m.group("sign") or m.group("sign2"):
        value = -value
    return value


def _token(m: re.Match[str], offset: int) -> _Tok:
    start, end = m.start() + offset, m.end() + offset
    if m.group("junk") is not None:
        return _Tok("junk", start, end)
    if m.group("dw") is not None:
        words = m.group("dw").lower().split()
        if words[0] in ("yesterday", "today"):
            days = 1.0 if words[0] == "yesterday" else 0.0
            return _Tok("dur", start, end, value=days, raw=days, unit="day", when=True)
        unit = words[1]
        return _Tok("dur", start, end, value=float(_DAYS_PER[unit]), raw=1.0, unit=unit,
                    ago=words[-1] == "ago", when=True)
    if m.group("neg") is not None:
        return _Tok("neg", start, end, word=" ".join(m.group("neg").lower().split()))
    value = _number_value(m)
    if m.group("dur"):
        unit = _PERIOD_OF[m.group("unit")[0].lower()]
        return _Tok("dur", start, end, value=value * _DAYS_PER[unit], raw=value, unit=unit,
                    ago=bool(m.group("ago")), when=bool(m.group("ago")))
    mult = (m.group("mult") or "").lower()
    per = m.group("per") or m.group("per2") or ""
    return _Tok(
        "num", start, end, value=value,
        money=bool(m.group("cur") or m.group("cur2") or mult in _AMBIGUOUS_MILLION),
        count=bool(m.group("times") or m.group("cw")),
        per=_PERIOD_OF[per[0].lower()] if per else "",
        bare=bool(m.group("digits")) and _BARE_NUMBER.fullmatch(m.group(0)) is not None,
        raw_text=m.group("digits") if (m.group("digits") and not mult
                                       and AMBIGUOUS_DOT.match(m.group("digits"))) else "",
    )


def _tokens(clause: str, offset: int) -> list[_Tok]:
    """Numbers (and junk, negations) first; cues are then looked for in the text between them."""
    toks: list[_Tok] = []
    pieces: list[str] = []
    last = 0
    for m in _TOKEN.finditer(clause):
        toks.append(_token(m, offset))
        pieces.append(clause[last:m.start()])
        pieces.append("\x00" * (m.end() - m.start()))
        last = m.end()
    pieces.append(clause[last:])
    blanked = "".join(pieces)
    cued: list[tuple[int, int]] = []
    for m in _CUE.finditer(blanked):
        rate = _CUE_RATE.search(blanked, max(0, m.start() - 12), m.start())
        toks.append(_Tok("cue", m.start() + offset, m.end() + offset, field=_cue_field(m),
                         per=_PERIOD_OF[rate.group("per")[0].lower()] if rate else ""))
        cued.append((m.start(), m.end()))
    if not any(t.kind in ("num", "dur", "neg") for t in toks):
        for m in _FREQUENCY.finditer(blanked):
            if not any(a < m.end() and m.start() < b for a, b in cued):
                per = (m.group("adv") or m.group("per"))[0].lower()
                toks.append(_Tok("num", m.start() + offset, m.end() + offset, value=1.0, count=True,
                                 per=_PERIOD_OF[per]))
    toks.sort(key=lambda t: t.start)
    return toks


def _value_for(tok: _Tok, name: str, cue_per: str = "") -> float | None:
    """The value ``tok`` gives field ``name``, or None if that kind of number does not fit it."""
    if tok.kind == "neg":
        return 0.0 if name in _COUNT_FIELDS else None
    if tok.kind == "dur":
        if name in _DAYS_FIELDS:
            return tok.value
        if name in _YEARS_FIELDS and tok.unit == "year":
            return tok.raw
        return None
    if tok.kind != "num":
        return None
    if tok.money and name not in _MONEY_FIELDS:
        return None
    if tok.count and name not in _COUNT_FIELDS:
        return None
    per = tok.per or cue_per
    if per:
        factor = _PER_PERIOD.get(name, {}).get(per)
        return None if factor is None else tok.value * factor
    return tok.value


# ------------------------------------------------------------------------------------ pairing


def _pair(toks: list[_Tok], text: str) -> tuple[list[tuple[str, float, _Tok]], list[_Tok]]:
    """Attach numbers to cues (see module doc, step 4); return (field, value) pairs and leftovers."""
    n = len(toks)
    # best[i]: score of the best attachment of toks[i:]: (pairs, -gap words, cue-before pairs, -gap chars)
    best: list[tuple[int, int, int, int]] = [(0, 0, 0, 0)] * (n + 1)
    pick: list[tuple[int, _Tok, _Tok, float] | None] = [None] * (n + 1)
    for i in range(n - 1, -1, -1):
        best[i], pick[i] = best[i + 1], None
        t = toks[i]
        if t.kind == "junk":
            continue
        skipped = 0  # words of the durations a cue has passed over
        for j in range(i + 1, n):
            u = toks[j]
            gap = len(_WORD_RUN.findall(text, t.end, u.start)) - skipped
            if gap > (_MAX_GAP if t.kind != "neg" else 0 if t.word == "no" else _MAX_NEG_GAP):
                break
            if t.kind == "cue":
                if u.kind == "cue":
                    continue  # a cue may be passed over ("hasn't bought online for 3 months")
                cue, num = t, u
            elif u.kind == "cue":
                cue, num = u, t
            else:
                break
            value = None if (num.kind == "neg" and cue is t) else _value_for(num, cue.field, cue.per)
            if value is not None:
                rest = best[j + 1]
                score = (rest[0] + 1, rest[1] - gap, rest[2] + (cue is t), rest[3] - (u.start - t.end))
                if score > best[i]:
                    best[i], pick[i] = score, (j, cue, num, value)
            if t.kind == "cue":
                if u.kind != "dur" or value is not None:
                    break  # a cue takes the first number after it, or none; it passes over a
                    #        duration that does not fit it ("spending in the last 2 years: 1200")
                skipped += len(_WORD_RUN.findall(text, u.start, u.end))
    pairs: list[tuple[str, float, _Tok]] = []
    used: set[int] = set()
    i = 0
    while i < n:
        chosen = pick[i]
        if chosen is None:
            i += 1
            continue
        j, cue, num, value = chosen
        pairs.append((cue.field, value, num))
        used.add(id(num))
        i = j + 1
    leftovers = [t for t in toks if t.kind in ("num", "dur", "neg") and id(t) not in used]
    return pairs, leftovers


def _clauses(text: str) -> Iterator[tuple[str, int, str]]:
    start = 0
    for m in _CLAUSE_BREAK.finditer(text):
        yield text[start:m.start()], start, m.group()
        start = m.end()
    yield text[start:], start, ""


# ------------------------------------------------------------------------------------ API


def parse_number(text: str) -> float | None:
    """One number expression ("1.2k", "$71,000", "thirty-five", "USD 500") as a float, else None.

    Huge values come back as they are (``1e400`` is ``inf``); ``FieldSpec.check`` refuses them.
    """
    if not isinstance(text, str):
        return None
    m = _NUMBER_ONLY.fullmatch(text[:MAX_CHARS].translate(_NORMALISE))
    return None if m is None else _number_value(m)


_TAG = re.compile(r"</?[A-Za-z][^<>]{0,500}>")
_SCRIPT = re.compile(r"<(script|style)\b[^<>]{0,500}>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_TARGET = r"\((?:[^()\n]|\([^()\n]{0,500}\)){0,2000}\)"   # a link target, with one level of brackets inside
_MD_IMAGE = re.compile(r"!\[[^\[\]\n]{0,500}\]" + _TARGET)
_MD_LINK = re.compile(r"\[([^\[\]\n]{0,500})\]" + _TARGET)
_ADDRESS = re.compile(r"(?i)\b(?:https?://|ftp://|www\.|javascript:|data:|mailto:)\S*")


def _without_markup(text: str) -> str:
    """``text`` without what markup carries besides visible text: elements' tags, script and style
    content, Markdown images, link targets (the link's text stays) and web addresses."""
    text = _MD_LINK.sub(r" \1 ", _MD_IMAGE.sub(" ", text))
    return _ADDRESS.sub(" ", _TAG.sub(" ", _SCRIPT.sub(" ", text)))
# Words that may follow a bare answer to the pending question ("38 I guess", "12 or so", "60k tops");
# any other word right after the number says it counts something else ("2 kids", "3 dogs").
_ANSWER_TAIL = frozenset("""or ish maybe probably roughly approximately approx about around i i'm im and but so
    tops max at most least give or take now currently yes yeah yep ok okay please thanks thank you in total
    overall all together altogether more less than then""".split())
_NEXT_WORD = re.compile(r"\s*([^\W\d_][\w']*)")
# ... and the words of our own fields: their units, labels and synonyms ("5 purchases", "38 years old")
_FIELD_WORDS = frozenset(word for f in FIELDS for text in (f.unit, f.unit_one, f.label, f.short, *f.synonyms)
                         for word in re.findall(r"[^\W\d_][\w']*", text.lower()))
_ANSWER_WORDS = _ANSWER_TAIL | _FIELD_WORDS


def _counts_something_else(text: str, tok: _Tok) -> bool:
    """``2 kids``: the word right after the number names what it counts, and it is none of ours."""
    m = _NEXT_WORD.match(text, tok.end)
    return m is not None and m.group(1).lower() not in _ANSWER_WORDS


_CELL_SPLIT = re.compile(r"\s*[,;\t|]\s*")


def _header_row(text: str) -> tuple[dict[str, str], str]:
    """A pasted table: a line of field names and one line of numbers under it ("age,income\n38,71000").

    Returns the cells by field and the text with both lines blanked (same length, so positions hold).
    Only a header whose every cell is one field cue, followed by exactly one row of as many numbers,
    is read; several rows are a file, not one customer, and are left alone.
    """
    lines = text.split("\n")
    for i in range(len(lines) - 1):
        header = _CELL_SPLIT.split(lines[i].strip())
        if len(header) < 2:
            continue
        cues = [_CUE.fullmatch(cell) for cell in header]
        names = [_cue_field(m) for m in cues if m is not None]
        if len(names) != len(header) or len(set(names)) != len(names):
            continue
        rows = [line for line in lines[i + 1:] if line.strip()]
        cells = _CELL_SPLIT.split(rows[0].strip()) if len(rows) == 1 else []
        if len(cells) != len(names) or any(parse_number(c) is None for c in cells):
            continue
        blanked = [*lines[:i], *(" " * len(line) for line in lines[i:])]
        return dict(zip(names, cells, strict=True)), "\n".join(blanked)
    return {}, _KEY_VALUE_LINE.sub(_key_value, text)


# "income,71000" on a line of its own (a two-column paste): the separator is a colon, not a clause
# break -- only when the first cell is exactly a field cue and the second exactly one number.
_KEY_VALUE_LINE = re.compile(r"(?m)^(\s*)([^,;\t|\n]{1,60})([,;\t|])([^,;\t|\n]{1,60})$")


def _key_value(m: re.Match[str]) -> str:
    if _CUE.fullmatch(m.group(2).strip()) and parse_number(m.group(4)) is not None:
        return m.group(1) + m.group(2) + ":" + m.group(4)
    return m.group(0)


def parse_message(text: str, *, pending: str | None = None) -> ParseResult:
    """Every customer value ``text`` states; ``pending`` is the field just asked about."""
    if not isinstance(text, str):
        return ParseResult()
    # markup carries no customer values ("<img src=x onerror=alert(1)>" is not an age of 1, nor is
    # '![i](x "alert(9)")' a spending of 9); the text between tags and a link's text stay ("<b>38</b>" is 38).
    # "<50k" is not a tag: a tag starts with a letter or /.
    text = _without_markup(text[:MAX_CHARS]).translate(_NORMALISE)
    table, text = _header_row(text)
    found: dict[str, tuple[float, _Tok | None]] = {}
    leftovers: list[_Tok] = []
    purchase_times: list[_Tok] = []
    leading: _Tok | None = None
    seen_tokens = False
    cued_elsewhere = bool(table)
    for clause, offset, brk in _clauses(text):
        toks = _tokens(clause, offset)
        if not toks:
            continue
        pairs, rest = _pair(toks, text)
        if not seen_tokens:
            seen_tokens = True
            # Leading age: "38, makes $71k, ..." -- a description that opens with a bare whole number
            # in the age range, followed by a comma and further cued values, opens with the age.
            if (not pairs and brk == "," and len(toks) == 1 and toks[0].bare
                    and not _WORD_RUN.search(clause.replace(text[toks[0].start:toks[0].end], "", 1))):
                leading = toks[0]
        elif pairs:
            cued_elsewhere = True
        for name, value, tok in pairs:
            found.pop(name, None)
            found[name] = (value, tok)  # a later mention wins
        numbers = [t for t in toks if t.kind in ("num", "dur", "neg")]
        if len(numbers) == 1 and numbers[0] in rest and numbers[0].when and _PURCHASE_WORD.search(clause):
            purchase_times.append(numbers[0])
        leftovers.extend(rest)

    stray = [t for t in leftovers if t.kind in ("num", "dur")]
    if isinstance(pending, str) and pending in FIELDS_BY_NAME and pending not in found and len(stray) <= 1:
        # the answer to the question just asked: the one stray number ("between 3 and 4" is a guess)
        for tok in leftovers:
            if tok.kind == "neg" and tok.word != "never":
                continue
            if tok.kind in ("num", "dur") and _counts_something_else(text, tok):
                continue
            answer = _value_for(tok, pending)
            if answer is not None:
                found[pending] = (answer, tok)
                leftovers = [t for t in leftovers if t is not tok]
                break
    for name in _DAYS_FIELDS - found.keys():
        when = next((t for t in leftovers if t.kind == "dur" and (t.ago or t in purchase_times)), None)
        if when is not None:
            found[name] = (when.value, when)
    for name in _YEARS_FIELDS - found.keys():
        spec = FIELDS_BY_NAME[name]
        if (leading is not None and any(t is leading for t in leftovers) and cued_elsewhere
                and spec.minimum <= leading.value <= spec.maximum):
            found[name] = (leading.value, leading)
    for name in {"income"} & _MONEY_FIELDS - found.keys():
        yearly = next((t for t in leftovers if t.kind == "num" and t.per == "year" and not t.count
                       and (t.money or t.value >= _YEARLY_INCOME_MIN)), None)
        if yearly is not None:
            found[name] = (yearly.value, yearly)

    values: dict[str, int | float] = {}
    rejected: list[InvalidValueError] = []
    for name in FIELD_NAMES:
        if name in found:
            value, source = found[name]
            try:
                if source is not None and source.raw_text and FIELDS_BY_NAME[name].dot_is_ambiguous(value):
                    raise InvalidValueError(name, source.raw_text, AMBIGUOUS_DOT_RULE)
                values[name] = FIELDS_BY_NAME[name].check(value)
            except InvalidValueError as exc:
                rejected.append(exc)
        elif name in table:
            try:
                cell = table[name].strip()
                if AMBIGUOUS_DOT.match(cell) and FIELDS_BY_NAME[name].dot_is_ambiguous(float(cell)):
                    raise InvalidValueError(name, cell, AMBIGUOUS_DOT_RULE)
                values[name] = FIELDS_BY_NAME[name].check(parse_number(table[name]))
            except InvalidValueError as exc:
                rejected.append(exc)
    return ParseResult(values=values, rejected=rejected)

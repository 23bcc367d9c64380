"""Free-text understanding: pull customer values out of one chat message.

``parse_message("38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month,
last bought 2 weeks ago")`` gives all seven fields. Regular expressions plus two libraries (text2num for
number words, rapidfuzz for misspelt cue words; see :mod:`assistant.conversation.words`); the words come
from the ``synonyms`` of each field in :mod:`assistant.core.fields` and the batch reader's header aliases.

Precision first
---------------
A number fills a field only when it is bound to that field: a cue of the field in its clause, a column
header above it, or -- in a message that is just an answer (the number and hedges such as "maybe",
"I guess") -- the question pending. A number that belongs to another noun never fills a field: "2 kids",
"4 stars", "3 complaints", "5 items" (the word after it says what it counts), "order no. 12345",
"zip 90210", "a 30-day window", "5-star", a year ("2012"), a rejected number ("52, not 25", "instead of
3"), a decade ("mid-50s"). A misspelt cue ("imcome", "vists", "recensy") keeps its number: it is read as
the cue it resembles (rapidfuzz ratio >= 80, same first letter) and said back for confirmation
(``ParseResult.fuzzy``), or, when it resembles no field, the number is bound to nothing and fills nothing.
When in doubt nothing is filled: a missing value costs one question, a wrong one costs the answer.
Values read with low certainty (a misspelt cue, a rate converted to the field's period: "2x a month" is
48 purchases over two years) are listed in ``ParseResult.unsure`` for the dialogue to say back.

How a message is read
---------------------
1. Only the first ``MAX_CHARS`` characters are looked at. Curly quotes and unicode dashes become
   their ASCII forms (one character for one, so positions do not move). A pasted table -- a header line
   whose cells (comma, semicolon, tab, pipe, Markdown, two or more spaces) name at least two fields
   through the batch reader's header matcher, and data rows under it -- gives the one row's values by
   column (:mod:`assistant.conversation.tables`; several rows are counted in ``table_rows``, not read).
   Number words in running text become digits (text2num: "seventy one thousand" -> 71000). A line
   ``income,71000`` (a field cue, a separator, one number) reads as ``income: 71000``.
2. The text is split into clauses on newlines, ``;``, ``!``, ``?``, commas (not the thousands
   separator in ``71,000``), a period followed by a space (not after ``approx.``, ``y.o.``, ...),
   and `` and ``/`` but ``/`` plus `` (not the ``and`` in ``one hundred and twenty``), and a spaced dash.
3. In each clause two kinds of token are found:

   * numbers: ``71,000``, ``71 000``, ``$1,200.50``, ``€3.5k``, ``USD 500``, ``1.2 million``, ``thirty-five``,
     ``a dozen``, ``once``/``twice``, ``none``; with what is written right after them: a count
     suffix (``5x``, ``5 times``), a rate (``a month``, ``per week``, ``/yr``, ``monthly``; also
     ``monthly`` written before a cue: "monthly income 5k") or a duration (``2 weeks``, ``3 months ago``;
     also ``yesterday``, ``the day before yesterday``, ``a fortnight ago``, ``last week``, ``a month
     back``; units may be abbreviated: ``wks``, ``mths``). A count with a per-month rate said of the site
     ("on the website 6 times a month") is visits, never purchases. Negations (``never``, ``no``,
     ``doesn't``) are zero-tokens. Things that only look like numbers (``#4521``, dates, times, ``20%``,
     ranges ``30-40``, ordinals, ``in 2013``, ``born 1986``, ``30-day``, ``zip 90210``, ``not 25``,
     decades) are recognised as junk so they are never used. A number followed by a word that is not
     ours ("2 kids") is owned by it: no cue after that word, or a few words before it, takes it. A
     birth year is not turned into an age: the model's age is relative to the collection year (2014), a person's
     age today is not, and guessing either would be wrong for someone; the assistant asks for the age.
     ``71.000`` (a point and exactly three digits, no multiplier) is 71 to some writers and 71,000 to
     others: it is refused with a rule saying so, never guessed. A frequency with no number
     ("visits the site weekly", "every day") is once per period, in a clause with no other number;
   * cues: any synonym of a field (with ``_``/``-``/space or nothing between its words, filler
     words such as "the", "our", "to" allowed between them, and ``s/es/ed/ing`` endings), e.g.
     ``visits the website`` or ``total_spending``; the data set's column names (``NumWebPurchases``,
     ``Recency (days)``); "Maria is 44" (a name and "is") for the age; a misspelt cue word (above).

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
     it, when there is exactly one ("between 3 and 4" is not answered), its clause holds no cue and no
     word besides hedges ("or so", "I guess", "sorry"; "she's 52 not 25" answers nothing pending) and
     the word after it is not a count of something else ("2 kids"); the content of ``<script>``/``<style>``
     elements, Markdown images, link targets and web addresses are dropped before anything is read;
   * a duration ending in "ago" (``3 weeks ago``) is a recency (the synonym table lists
     "days ago"); so is a point in time ("yesterday", "last week") in a clause that names a
     purchase ("bought", "ordered", ...) and holds no other number;
   * leading age: a message that *starts* with a bare whole number in the age range (after a name at
     most: "Maria, 44, ...") followed by a comma, and has other cued values after it ("38, makes $71k,
     ..."), starts with the age;
   * a cue left without a number ("Age?", "Mid-50s?") takes the number of the next clause when that
     clause is only the number and hedges ("no - 54 actually");
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

from assistant.conversation.tables import read_table
from assistant.conversation.words import (
    _ABBREVIATIONS,
    _AMBIGUOUS_MILLION,
    _ANSWER_WORDS,
    _COUNT_FIELDS,
    _COUNT_WORDS,
    _CUE,
    _DAYS_FIELDS,
    _DAYS_PER,
    _FREQUENCY,
    _FUZZY_MIN_LEN,
    _GENDER_ONLY,
    _GENERIC_CUE,
    _GENERIC_WEB,
    _HEDGE_LEAD,
    _HEDGES,
    _L,
    _MAX_GAP,
    _MAX_NEG_GAP,
    _MONEY_FIELDS,
    _MULTIPLIERS,
    _NAME_IS,
    _NAME_LEAD,
    _NEXT_WORD,
    _NOT_MISSPELT,
    _NOT_NAMES,
    _NOT_OWNERS,
    _OTHER_EVENT,
    _PER_PERIOD,
    _PERIOD_OF,
    _PURCHASE_WORD,
    _R,
    _SCALES,
    _UNITS,
    _WORDS_ONLY,
    _YEARLY_INCOME_MIN,
    _YEARS_FIELDS,
    _cue_field,
    _fuzzy_cue,
    _number_words,
)
from assistant.core.errors import InvalidValueError
from assistant.core.fields import AMBIGUOUS_DOT, AMBIGUOUS_DOT_RULE, FIELD_NAMES, FIELDS_BY_NAME
from assistant.core.schemas import ProfileDraft

MAX_CHARS = 10_000

# ------------------------------------------------------------------------------------ patterns

_NB = r"(?<![\w.])"    # a number does not start inside a word or after a decimal point

_WORD = "(?:" + "|".join(sorted([*_UNITS, "hundred", "dozen", *_SCALES], key=len, reverse=True)) + ")" + _R
_WORDS = (rf"(?:an?[\s-]+(?=(?:hundred|thousand|million|billion|dozen){_R}))?"
          rf"{_WORD}(?:[\s-]+(?:and[\s-]+)?{_WORD})*")
_MULT = "|".join(sorted(_MULTIPLIERS, key=len, reverse=True))
_UNIT_WORDS = r"days?|d|weeks?|wks?|w|fortnights?|months?|mths?|mnths?|mos?|years?|yrs?|y|x|times?"
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
      | {_NB}[0-9]+(?:\.[0-9]+)?-(?:days?|weeks?|months?|years?|yrs?|hours?|hrs?|minutes?|mins?|stars?|items?
            |pieces?|pages?|points?|packs?|person|seats?|nights?|pounds?|inch|foot|feet)(?![\w-]*[\s-]*old)
                                                                #   adjectives: a 30-day window, 5-star
      | {_L}(?:early|mid|late)?[\s-]*(?:[1-9]0)'?s{_R}          #   decades: mid-50s, in her 40s
      | {_L}(?:not|instead\s+of|rather\s+than)\s+(?:\$\s*)?[0-9][0-9,.]*\s*(?:k{_R})?
                                                                #   a rejected number: "52, not 25"
      | {_L}(?:zip|zipcode|postcode|postal\s+code|phone|tel|invoice|ticket|sku|ref|reference|case)
            \s*(?:no\.?|number|num|nr|id|code)?\s*[:#]?\s*[0-9][0-9 -]*
      | {_L}(?:order|account|acct|customer|client|member|id)\s*(?:no\.?|number|num|nr|id|code|\#)\s*[:#]?\s*[0-9]+
    )
  | {_L}(?P<dw>(?:the\s+)?day\s+before\s+yesterday|yesterday|today|this\s+morning|last\s+(?:week|month|year|fortnight)
             |(?:an?|one)\s+(?:day|week|fortnight|month|year)\s+(?:ago|back)|fortnight\s+ago){_R}
  | (?P<num>{_NB}{_NUMBER}
      (?:(?P<dur>\s*(?P<unit>days?|d|weeks?|wks?|w|fortnights?|months?|mths?|mnths?|mos?|years?|yrs?|y)
                 (?![^\W\d_]|\s*/|\.o|[\s-]*old)(?P<ago>\s+(?:ago|back){_R})?)
        |(?P<times>\s*(?:x|times?){_R})?
         (?P<rate>\s*(?:/\s*|(?:a|an|per|each|every|in\s+a)\s+)(?P<per>day|week|wk|month|mo|year|yr|annum|hour|hr){_R}
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
  | \s-\s(?!\s*[0-9])                    # a spaced dash between notes ("Rachel, 33 - visits ..."), not "30 - 40"
""".replace("{abbr}", "".join(rf"(?<!\b{re.escape(a)})" for a in _ABBREVIATIONS)), re.IGNORECASE | re.VERBOSE)

# "monthly income 5k": a rate written just before a cue applies to its number.
_CUE_RATE = re.compile(rf"{_L}(?P<per>daily|weekly|monthly|yearly)[\s_-]*$", re.IGNORECASE)
_WORD_RUN = re.compile(r"[^\W_]+")
_BARE_NUMBER = re.compile(r"[0-9]+")
_DECADE = re.compile(r"(?i)(?:early|mid|late)?[\s-]*[1-9]0'?s")
_YEAR = re.compile(r"(?:19[5-9][0-9]|20[0-3][0-9])")   # 1950..2039 written bare: a year, not an amount
_NORMALISE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2212": "-", "\u2013": "-",
                            "\u2014": "-", "\u2010": "-", "\u2011": "-", "\u00a0": " ", "\u2009": " ",
                            "\u202f": " "})


# ------------------------------------------------------------------------------------ result


@dataclass(frozen=True)
class ParseResult:
    """What one message says: valid ``values`` (field order) and ``rejected`` out-of-rule values."""

    values: dict[str, int | float] = dataclass_field(default_factory=dict)
    rejected: list[InvalidValueError] = dataclass_field(default_factory=list)
    fuzzy: dict[str, str] = dataclass_field(default_factory=dict)
    """field -> the misspelt word its value was bound to ("imcome"): said back for confirmation."""
    scaled: dict[str, str] = dataclass_field(default_factory=dict)
    """field -> a rate converted to the field's period ("2 a month" -> 48 web purchases over two years)."""
    table_rows: int = 0
    """Data rows of a table pasted into the message when there were several (none of them is read)."""

    @property
    def unsure(self) -> list[str]:
        """The fields read with low certainty (a misspelt cue, a converted rate), in field order."""
        return [n for n in FIELD_NAMES if n in self.values and (n in self.fuzzy or n in self.scaled)]

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
    year: bool = False       # num: a bare 4-digit year-like number (2012): money at most, never a count or age
    owned: bool = False      # num: the word after it names something else ("2 kids", "4 stars")
    fuzzy: str = ""          # cue: the misspelt word read as this field's cue ("imcome")


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
    if m.group("junk") is not None:   # a decade ("mid-50s") is no value, but says an age is meant
        return _Tok("junk", start, end, field="age" if _DECADE.fullmatch(m.group("junk")) else "")
    if m.group("dw") is not None:
        words = [w for w in m.group("dw").lower().split() if w != "the"]
        if words[0] in ("yesterday", "today", "this", "day"):
            days = {"yesterday": 1.0, "day": 2.0}.get(words[0], 0.0)   # "the day before yesterday" is 2
            return _Tok("dur", start, end, value=days, raw=days, unit="day", when=True)
        unit = words[0] if words[0] == "fortnight" else words[1]
        return _Tok("dur", start, end, value=float(_DAYS_PER[unit]), raw=1.0, unit=unit,
                    ago=words[-1] in ("ago", "back"), when=True)
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
        year=_YEAR.fullmatch(m.group(0)) is not None,
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
    for m in _NAME_IS.finditer(blanked):
        if m.group("name") not in _NOT_NAMES and not any(a < m.end() and m.start() < b for a, b in cued):
            toks.append(_Tok("cue", m.start() + offset, m.end() + offset, field="age"))
            cued.append((m.start(), m.end()))
    for m in _WORD_RUN.finditer(blanked):   # a misspelt cue word ("imcome", "vists"): read, and said back
        word = m.group().lower()
        if len(word) >= _FUZZY_MIN_LEN and word not in _NOT_MISSPELT and not any(
                a < m.end() and m.start() < b for a, b in cued):
            guess = _fuzzy_cue(word)
            if guess is not None:
                toks.append(_Tok("cue", m.start() + offset, m.end() + offset, field=guess, fuzzy=m.group()))
    starts = {t.start - offset for t in toks if t.kind == "cue"}
    for tok in toks:   # "2 kids", "4 stars": the word after a number says what it counts
        if tok.kind == "num" and not tok.count and not tok.per:
            after = _NEXT_WORD.match(clause, tok.end - offset)
            tok.owned = (after is not None and after.group(1).lower() not in _NOT_OWNERS
                         and after.start(1) not in starts)
    if not _PURCHASE_WORD.search(clause) and any(t.kind == "num" and t.count and t.per for t in toks):
        # "on the website 6 times a month": a rate of times on the site is visits, never purchases
        for tok in toks:
            if tok.kind == "cue" and tok.field == "web_purchases" and _GENERIC_WEB.fullmatch(
                    clause[tok.start - offset:tok.end - offset]):
                tok.field = "web_visits_per_month"
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
    if tok.year and name not in _MONEY_FIELDS:
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
            if num.owned and (cue is u or gap > 0 or _GENERIC_CUE.fullmatch(text, cue.start, cue.end)):
                value = None   # "4 stars online", "online: rated 4 stars": the number counts something else
            if not cue.field:   # a misspelt word that names no field ("purchses"): binds, fills nothing
                value = num.value if num.kind == "num" else None
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
def _counts_something_else(text: str, tok: _Tok) -> bool:
    """``2 kids``: the word right after the number names what it counts, and it is none of ours."""
    m = _NEXT_WORD.match(text, tok.end)
    return m is not None and m.group(1).lower() not in _ANSWER_WORDS


# "income,71000" on a line of its own (a two-column paste): the separator is a colon, not a clause
# break -- only when the first cell is exactly a field cue and the second exactly one number.
_KEY_VALUE_LINE = re.compile(r"(?m)^(\s*)([^,;\t|\n]{1,60})([,;\t|])([^,;\t|\n]{1,60})$")


def _key_value(m: re.Match[str]) -> str:
    if _CUE.fullmatch(m.group(2).strip()) and parse_number(m.group(4)) is not None:
        return m.group(1) + m.group(2) + ":" + m.group(4)
    return m.group(0)


def _only_hedges(text: str) -> bool:
    """True when ``text`` holds no word besides hedges and our own field words ("maybe", "I guess")."""
    return all(w.lower() in _HEDGES for w in _WORDS_ONLY.findall(text))


def _header_row(text: str) -> tuple[dict[str, str], int, str]:
    """A pasted table (:func:`assistant.conversation.tables.read_table`), else the two-column lines."""
    table = read_table(text, parse_number)
    return table if table is not None else ({}, 0, _KEY_VALUE_LINE.sub(_key_value, text))


def parse_message(text: str, *, pending: str | None = None) -> ParseResult:
    """Every customer value ``text`` states; ``pending`` is the field just asked about."""
    if not isinstance(text, str):
        return ParseResult()
    # markup carries no customer values ("<img src=x onerror=alert(1)>" is not an age of 1, nor is
    # '![i](x "alert(9)")' a spending of 9); the text between tags and a link's text stay ("<b>38</b>" is 38).
    # "<50k" is not a tag: a tag starts with a letter or /.
    text = _without_markup(text[:MAX_CHARS]).translate(_NORMALISE)
    table, rows, text = _header_row(text)
    text = _number_words(text)
    found: dict[str, tuple[float, _Tok | None]] = {}
    leftovers: list[_Tok] = []
    purchase_times: list[_Tok] = []
    leading: _Tok | None = None
    seen_tokens = False
    cued_elsewhere = bool(table)
    fuzzy: dict[str, str] = {}
    dangling: str | None = None   # the field of a cue left without a number in the clause before
    dangling_brk = ""
    for clause, offset, brk in _clauses(text):
        toks = _tokens(clause, offset)
        if not toks:
            dangling = dangling if _only_hedges(clause) else None
            continue
        pairs, rest = _pair(toks, text)
        numbers = [t for t in toks if t.kind in ("num", "dur", "neg")]
        cues = [t for t in toks if t.kind == "cue"]
        if not seen_tokens:
            seen_tokens = True
            # Leading age: "38, makes $71k, ..." -- a description that opens with a bare whole number
            # in the age range (after a name at most: "Maria, 44, ..."), followed by a comma and further
            # cued values, opens with the age.
            if (not pairs and brk.strip() in (",", "-") and len(toks) == 1 and toks[0].bare
                    and (_NAME_LEAD.match(clause.replace(text[toks[0].start:toks[0].end], "", 1))
                         or _GENDER_ONLY.match(clause.replace(text[toks[0].start:toks[0].end], "", 1)))):
                leading = toks[0]
        elif pairs:
            cued_elsewhere = True
        values_here = [t for t in numbers if t.kind != "neg"]
        if (dangling is not None and (dangling_brk in ("?", "\n") or _HEDGE_LEAD.search(clause)) and not cues
                and len(values_here) == 1 and values_here[0] in rest
                and not any(t.kind == "junk" for t in toks) and _only_hedges(_without(clause, offset, numbers))):
            # "Mid-50s? no - 54 actually", "Age? 54": a cue left without a number, then a clause that
            # is only a number and hedges
            tok = values_here[0]
            value = _value_for(tok, dangling)
            if value is not None:
                pairs.append((dangling, value, tok))
                rest = [t for t in rest if t is not tok]
        for name, value, tok in pairs:
            if not name:
                continue
            found.pop(name, None)
            found[name] = (value, tok)  # a later mention wins
            fuzzy.pop(name, None)
            cue = _cue_of(toks, tok)
            if cue is not None and cue.fuzzy:
                fuzzy[name] = cue.fuzzy
        if _OTHER_EVENT.search(clause) and not _PURCHASE_WORD.search(clause):
            for tok in rest:   # "last seen in store 5 wks ago", "called 2 days ago": no purchase
                tok.ago = False
        if len(numbers) == 1 and numbers[0] in rest and numbers[0].when and _PURCHASE_WORD.search(clause):
            purchase_times.append(numbers[0])
        leftovers.extend(rest)
        unbound = [t for t in cues if t.field and not any(t.field == n for n, _, _ in pairs)]
        dangling = unbound[-1].field if (unbound and not numbers) else (
            "age" if any(t.kind == "junk" and t.field == "age" for t in toks) and not pairs else None)
        dangling_brk = brk

    stray = [t for t in leftovers if t.kind in ("num", "dur")]
    if isinstance(pending, str) and pending in FIELDS_BY_NAME and pending not in found and len(stray) <= 1:
        # the answer to the question just asked: the one stray number, in a clause of its own that holds
        # nothing but hedges ("between 3 and 4" is a guess; "she's 52 not 25" answers nothing pending)
        for tok in leftovers:
            if tok.kind == "neg" and tok.word != "never":
                continue
            if tok.kind in ("num", "dur") and (_counts_something_else(text, tok) or tok.owned):
                continue
            if not _only_hedges(_clause_without(text, tok)):
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
    scaled: dict[str, str] = {}
    for name in FIELD_NAMES:
        if name in found:
            value, source = found[name]
            try:
                if source is not None and source.raw_text and FIELDS_BY_NAME[name].dot_is_ambiguous(value):
                    raise InvalidValueError(name, source.raw_text, AMBIGUOUS_DOT_RULE)
                values[name] = FIELDS_BY_NAME[name].check(value)
                if (source is not None and source.kind == "num" and source.per and name in _COUNT_FIELDS
                        and _PER_PERIOD[name].get(source.per, 1) != 1):
                    scaled[name] = " ".join(text[source.start:source.end].split())
            except InvalidValueError as exc:
                rejected.append(exc)
        elif name in table:
            cell = parse_message(table[name], pending=name)
            values.update(cell.values)
            rejected.extend(cell.rejected)
    return ParseResult(values=values, rejected=rejected, fuzzy={n: w for n, w in fuzzy.items() if n in values},
                       scaled=scaled, table_rows=rows if rows > 1 else 0)


def _cue_of(toks: list[_Tok], num: _Tok) -> _Tok | None:
    """The cue ``num`` was paired with: the nearest cue token in its clause (for saying back a fuzzy read)."""
    cues = [t for t in toks if t.kind == "cue"]
    return min(cues, key=lambda c: abs((c.start + c.end) - (num.start + num.end)), default=None)


def _without(clause: str, offset: int, toks: list[_Tok]) -> str:
    """``clause`` with the text of ``toks`` taken out."""
    out, last = [], 0
    for t in sorted(toks, key=lambda t: t.start):
        out.append(clause[last:t.start - offset])
        last = t.end - offset
    out.append(clause[last:])
    return " ".join(out)


def _clause_without(text: str, tok: _Tok) -> str:
    """The clause of ``text`` that holds ``tok``, without it."""
    for clause, offset, _ in _clauses(text):
        if offset <= tok.start and tok.end <= offset + len(clause):
            return clause[:tok.start - offset] + " " + clause[tok.end - offset:]
    return ""

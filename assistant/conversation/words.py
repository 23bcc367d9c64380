"""The parser's vocabulary: word lists, periods and units, hedges, and the two libraries it uses for words
(text2num for number words in running text, rapidfuzz for misspelt cue words). Read by
:mod:`assistant.conversation.parsing`, whose docstring says how they are used."""

from __future__ import annotations

import re

from rapidfuzz import fuzz, process
from text_to_num import alpha2digit

from assistant.core.fields import FIELDS
from assistant.core.headers import HEADER_ALIASES

_L = r"(?<![^\W\d_])"  # not preceded by a letter
_R = r"(?![^\W\d_])"   # not followed by a letter


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
_DAYS_PER = {"day": 1, "week": 7, "fortnight": 14, "month": 30, "year": 365}
_PERIOD_OF = {
    "d": "day", "w": "week", "m": "month", "y": "year", "a": "year",  # by first letter (annum, annually)
    "f": "fortnight", "h": "hour",   # no field is counted per hour: "30 an hour" fits none
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
            "anything", "any", "something", "stuff", "thing", "single",
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

_EXTRA_CUES = {"web_purchases": ("site",)}
"""Chat-only cues: "on the site 6 times a month" (visits, see ``_GENERIC_WEB``), "bought 3 times on the site"."""


_FUZZY_MIN_LEN = 5
_FUZZY_THRESHOLD = 80   # rapidfuzz ratio (0-100); "imcome"/income 83, "vists"/visits 91, "recensy"/recency 86
_FUZZY_CUES: dict[str, str] = {
    "income": "income", "salary": "income", "earnings": "income", "recency": "recency_days",
    "visits": "web_visits_per_month", "purchases": "", "spending": "total_spending", "spent": "total_spending",
    "website": "web_purchases", "online": "web_purchases",
}
"""The cue words a misspelling is compared with (same first letter, at least ``_FUZZY_MIN_LEN`` letters).
"purchases" alone says no field: a misspelt "purchses" is caught (its number is bound, not passed on) but
fills nothing."""
_NOT_MISSPELT = frozenset("""recent recently visitor visitors visiting visa stored stories story storey spend
    spends sent spelt incomes onliner purchaser purchased purchasing spender spenders websites salaries earnest
    pursues reason reasons record records second seconds special spendy recency purchase purchases""".split())
_GENERIC_WEB = re.compile(r"(?i)web|online|website|site|web\s*site")
_GENERIC_CUE = re.compile(r"(?i)web|online|website|site|web\s*site|store|shop|in[\s-]*store|in\s+person|offline")
"""Single generic words: "shop 5 stars" binds no number that counts something else (as "income 71k gross" does)."""
_NAME_IS = re.compile(r"(?<![^\W\d_])(?P<name>[A-Z][a-z]+)(?:\s+[A-Z][a-z]+)?\s+(?:is|was)(?=\s+\x00\x00(?!\x00))")
"""A name and "is" before a two-digit number ("Maria is 44"): an age, as "she is 44" is (matched in the clause
with its numbers blanked to NULs, so a two-digit number is two NULs)."""
_NOT_NAMES = frozenset("""It This That There What Which Who Where When How He She They We You Total Income Age
    Recency Spending Spend Store Web Online Site Website Visits Purchases Customer Client Price Cost Order""".split())


def _fuzzy_cue(word: str) -> str | None:
    """The field a misspelt cue word stands for, or None (None also for a word that only looks like one)."""
    candidates = [c for c in _FUZZY_CUES if c[0] == word[0]]
    if not candidates:
        return None
    hit = process.extractOne(word, candidates, scorer=fuzz.ratio, score_cutoff=_FUZZY_THRESHOLD)
    return None if hit is None else _FUZZY_CUES[hit[0]]


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
# After a number, words that do not say it counts something else ("spent 1200 on wine", "38 female")
_NOT_OWNERS = _ANSWER_WORDS | frozenset(_FILLERS) | frozenset("""with over during since last past within
    dollars bucks usd eur euros gbp pounds quid gross net before after tax male female woman man lady guy
    mother father mom mum dad single married divorced widowed retired student teacher nurse this these those
    yo yrs yr old ago back when who which where will would should could can may might must not never ever
    still only just each every whole entire full""".split())
# Words besides the number in a message that is just an answer to the pending question ("38 I guess",
# "hmm, maybe 6 I think", "sorry, 52"): hedges and our own field words; any other word (a cue word
# misspelt, a noun) means the number is not the answer.
_HEDGES = _ANSWER_WORDS | frozenset("""think guess say would like sure pretty well hmm um uh er actually
    sorry mean meant make that it it's its should be was is she he they her his their customer client just
    only exactly around roughly about approx ca no not wait oh ah yes the a an""".split())


def _number_words(text: str) -> str:
    """Number words in running text as digits, by text2num ("seventy one thousand" -> 71000); "one",
    "two" (below its threshold) and "a dozen", "twice" stay words for our own grammar."""
    if not _NUMBER_WORD.search(text):
        return text
    return _NUMBER_WORD_RUN.sub(_digits_for, text)


def _digits_for(m: re.Match[str]) -> str:
    try:
        return str(alpha2digit(m.group(), "en"))
    except Exception:   # a library failure must not lose the message: our own word grammar still reads it
        return m.group()


_NUMBER_WORD = re.compile(r"(?i)(?:teen|ty|three|four|five|six|seven|eight|nine|ten|eleven|twelve)(?![^\W\d_])")
_NUMBER_VOCAB = "|".join(sorted([*_UNITS, "hundred", *_SCALES], key=len, reverse=True))
_NUMBER_WORD_RUN = re.compile(rf"(?i){_L}(?<![0-9][\s.,])(?:{_NUMBER_VOCAB})"
                              rf"(?:[\s-]+(?:and[\s-]+)?(?:{_NUMBER_VOCAB}))*{_R}")
"""A run of number words that starts with one (not a scale after digits: "1.2 million" is ours)."""
_NAME_LEAD = re.compile(r"^\W*(?:(?:customer|client|note|re|mr|mrs|ms|dr)\W+)*(?:[A-Z][\w'.-]*\W*){0,3}\(?\W*$")
_HEDGE_LEAD = re.compile(r"(?i)(?<![^\W\d_])(?:no|nope|actually|sorry|i\s+mean|wait|make\s+that|correction|rather"
                         r"|more\s+like)(?![^\W\d_])")
_OTHER_EVENT = re.compile(r"(?i)(?<![^\W\d_])(?:seen|saw|called|phoned|joined|signed|registered|contacted|emailed"
                          r"|complained|returned|logged|opened|moved|met|spoke|visited)(?![^\W\d_])")
_GENDER_ONLY = re.compile(r"(?i)^\W*(?:f|m|female|male|woman|man|lady|guy)\W*$")
_WORDS_ONLY = re.compile(r"[^\W\d_][\w']*")


def _synonym_pattern(synonym: str) -> str:
    sep = rf"(?:[\s_-]++(?:(?:{'|'.join(_FILLERS)})[\s_-]++)*|[_-]?)"
    words = [w for w in re.split(r"[\s_-]+", synonym.strip().lower()) if w]
    return sep.join(re.escape(w) + ("(?:s|es|ed|ing)?" if w[-1].isalpha() else "") for w in words)


def _cue_table() -> tuple[re.Pattern[str], dict[str, str]]:
    entries: dict[str, str] = {}
    for spec in FIELDS:   # the batch reader's header aliases are cues too ("NumWebPurchases 5", "Recency 30")
        for synonym in (spec.name.replace("_", " "), *spec.synonyms, *HEADER_ALIASES.get(spec.name, ()),
                        *_EXTRA_CUES.get(spec.name, ())):
            entries.setdefault(" ".join(re.split(r"[\s_-]+", synonym.strip().lower())), spec.name)
    ordered = sorted(entries.items(), key=lambda e: (-len(e[0]), e[0]))  # longest first
    groups = {f"c{i}": name for i, (_, name) in enumerate(ordered)}
    # grouped by first letter (longest first inside a group): the regex engine then tries one group of
    # alternatives at a word start instead of all of them, which keeps the parser fast
    by_letter: dict[str, list[str]] = {}
    for i, (s, _) in enumerate(ordered):
        by_letter.setdefault(s[0], []).append(f"(?P<c{i}>{_synonym_pattern(s)})")
    alternatives = "|".join(f"(?={re.escape(letter)})(?:{'|'.join(alts)})" for letter, alts in by_letter.items())
    return re.compile(rf"{_L}(?:{alternatives}){_R}", re.IGNORECASE), groups


_CUE, _CUE_FIELD = _cue_table()


def _cue_field(m: re.Match[str]) -> str:
    """The field a match of ``_CUE`` names (each of its alternatives is a named group)."""
    return _CUE_FIELD[m.lastgroup or ""]

"""The conversation engine: one :class:`Dialogue` serves every session (see the package docstring)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.conversation.parsing import ParseResult, parse_message
from assistant.conversation.render import (
    _QUOTES,
    _compile,
    _phrase_pattern,
    _quote,
    _sanitise,
    _share,
    _table,
    _words,
    render_result,
    response_sentence,
    user_text,
)
from assistant.conversation.state import DialogueState, Turn
from assistant.conversation.texts import (
    DEFAULT_MAX_MESSAGE_CHARS,
    DIALOGUE_FILE,
    EXPLAIN_AFTER_FAILURES,
    TRIGGERS,
    DialogueTexts,
    _names_of,
    _range_of,
    _raw,
    load_dialogue_texts,
)
from assistant.core.errors import InvalidValueError, KnowledgeBaseError
from assistant.core.fields import FIELD_NAMES, FIELDS, FIELDS_BY_NAME, FieldSpec
from assistant.core.schemas import SegmentInfo, SegmentResult
from assistant.insights.answers import answer_question
from assistant.insights.summaries import evidence_by_segment

if TYPE_CHECKING:  # pragma: no cover
    from assistant.model.segmentation import SegmentationService

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Message:
    """One message being routed: ``text`` as typed (sanitised), ``norm`` the same with straight quotes
    (the trigger patterns ignore case; positions in ``norm`` match ``text``)."""

    dialogue: Dialogue
    state: DialogueState
    text: str
    norm: str

    @property
    def complete(self) -> bool:
        return self.state.complete

    @property
    def is_question(self) -> bool:
        return self.norm.rstrip().endswith("?")

    @cached_property
    def quiet(self) -> ParseResult:
        """The values stated with a cue ("age 42"); bare numbers are not taken here."""
        return parse_message(self.text)

    @cached_property
    def segments(self) -> list[str]:
        """The segments the message names, in order of first mention."""
        return self.dialogue._mentions(self.norm)

    @cached_property
    def fields(self) -> list[str]:
        """The customer fields the message names, in order of first mention."""
        return self.dialogue._field_mentions(self.norm)


Matcher = Callable[["Dialogue", Message], bool]
Handler = Callable[["Dialogue", Message], "Turn | None"]


@dataclass(frozen=True, slots=True)
class Intent:
    """Something a message can ask for: when ``matches`` says so, ``reply`` answers it (or returns None
    when it cannot after all, and the next intent is tried). A ``plain`` intent applies only to a message
    that states no customer values. The triggers' phrases live in ``knowledge/dialogue.yaml``."""

    name: str
    matches: Matcher
    reply: Handler
    plain: bool = False


class Dialogue:
    """The conversation engine. One per process; stateless and thread-safe."""

    def __init__(self, service: SegmentationService, texts: DialogueTexts, *,
                 max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS, safety_net: bool = True) -> None:
        """``safety_net=False`` lets an unexpected exception through (tests); by default it is
        logged and answered with a short apology, the state unchanged."""
        self.service = service
        self.texts = texts
        self.max_message_chars = int(max_message_chars)
        self.safety_net = safety_net
        self._segments: dict[str, SegmentInfo] = {s.key: s for s in service.segments()}
        unknown = sorted(set(texts.segment_aliases) - set(self._segments))
        if unknown:
            raise KnowledgeBaseError(f"{DIALOGUE_FILE}: segment_aliases names unknown segment(s) {', '.join(unknown)}")
        tr = texts.triggers
        self._re = {name: _compile(getattr(tr, name)) for name in TRIGGERS}
        lead = r"^\W*(?:(?:and|so|ok|okay|but|well|hmm|now|then|also)\W+)*"
        self._what_if_start = re.compile(rf"{lead}(?:{_phrase_pattern(tr.what_if)})(?!\w)", re.IGNORECASE)
        self._what_about_start = re.compile(rf"{lead}(?:{_phrase_pattern(tr.what_about)})(?!\w)", re.IGNORECASE)
        self._fillers = frozenset(texts.fillers)
        aliases: dict[str, str] = {}
        for key, info in self._segments.items():
            words = info.name.lower().split()
            singular = [*words[:-1], words[-1].removesuffix("s")]          # "vip customer"
            first_singular = [words[0].removesuffix("s"), *words[1:]]     # "browser without conversion"
            for alias in (key, info.name, " ".join(singular), " ".join(first_singular),
                          *texts.segment_aliases.get(key, ())):
                aliases.setdefault(_words(alias), key)
        self._alias_key = aliases
        self._segment_re = _compile(list(aliases))
        field_words: dict[str, str] = {}
        for f in FIELDS:
            for word in (f.name, f.label, *f.synonyms):
                field_words.setdefault(_words(word), f.name)
        self._field_word = field_words
        self._field_re = _compile(list(field_words))
        self._evidence = evidence_by_segment(service)

    def render(self, result: SegmentResult) -> str:
        """``render_result`` with the figures behind the segment's strategy."""
        return render_result(result, self.texts, self._evidence.get(result.segment_key, ()))

    @classmethod
    def create(cls, service: SegmentationService, knowledge_dir: str | Path | None = None, *,
               max_message_chars: int = DEFAULT_MAX_MESSAGE_CHARS, safety_net: bool = True) -> Dialogue:
        """Load ``dialogue.yaml`` from ``knowledge_dir`` (default: the service's knowledge folder)."""
        if knowledge_dir is None:
            knowledge_dir = getattr(getattr(service, "knowledge", None), "directory", None)
        return cls(service, load_dialogue_texts(knowledge_dir), max_message_chars=max_message_chars,
                   safety_net=safety_net)

    # ------------------------------------------------------------------ public API

    def greet(self, state: DialogueState | None = None) -> Turn:
        """The opening message (with the first question, or the result if the customer is complete)."""
        state = self._coerce_state(state)
        state, result = self._settle(state)
        follow = self.texts.replies.after_result if result is not None else self._question(state.asking)
        return Turn(self.texts.greeting.format(question=follow), state, result)

    def respond(self, state: DialogueState | None, message: str) -> Turn:
        """Answer one message. Never raises for any message; returns the new state."""
        state = self._coerce_state(state)
        try:
            return self._respond(state, message)
        except Exception:
            if not self.safety_net:
                raise
            log.exception("dialogue failed on a message of %d characters",
                          len(message) if isinstance(message, str) else -1)
            r = self.texts.replies
            try:
                return self._with_followup(state, [r.fallback_complete if state.complete else r.fallback_collecting])
            except Exception:
                log.exception("dialogue failed to apologise")
                return Turn(r.fallback_collecting, state, None)

    # ------------------------------------------------------------------ routing

    def _respond(self, state: DialogueState, message: object) -> Turn:
        r = self.texts.replies
        if not isinstance(message, str):
            message = message.decode("utf-8", "replace") if isinstance(message, (bytes, bytearray)) else (
                "" if message is None else str(message))
        if len(message) > self.max_message_chars:
            return self._with_followup(state, [r.too_long.format(limit=f"{self.max_message_chars:,}")])
        text = _sanitise(message)
        if not text.strip():
            return self._with_followup(state, [r.empty])
        m = Message(self, state, text, text.translate(_QUOTES))  # patterns ignore case; positions match ``text``
        for intent in INTENTS:
            if intent.plain and not m.quiet.empty:
                continue
            if intent.matches(self, m):
                turn = intent.reply(self, m)
                if turn is not None:
                    return turn
        return self._with_followup(state, [r.fallback.format(quote=_quote(text)),
                                           r.fallback_complete if m.complete else r.fallback_collecting])

    # ------------------------------------------------------------------ the intents' replies (see INTENTS)

    def _reply_what_if(self, m: Message) -> Turn | None:
        start = self._what_if_start.search(m.norm)
        return None if start is None else self._what_if(m.state, m.text[start.end():])

    def _reply_what_about(self, m: Message) -> Turn | None:
        start = self._what_about_start.search(m.norm)
        if start is None:
            return None
        hypothetical = parse_message(m.text[start.end():])
        return None if hypothetical.empty else self._what_if(m.state, m.text[start.end():], hypothetical)

    def _reply_new_customer(self, m: Message) -> Turn:
        rest = self._re["new_customer"].sub(" ", m.text)
        return self._new_customer(m.state, self.texts.replies.new_customer, parse_message(rest))

    def _reply_insight(self, m: Message) -> Turn | None:
        insight = answer_question(m.text, self.service)  # what segments buy, channels, campaigns, household
        return None if insight is None else self._with_followup(m.state, [insight])

    def _reply_correction(self, m: Message) -> Turn | None:
        # "make that 60k", "oops, I meant 42": a bare number corrects the value just given
        corrected = parse_message(m.text, pending=m.state.last_field)
        return None if corrected.empty else self._values(m.state, corrected)

    def _reply_values(self, m: Message) -> Turn | None:
        parsed = m.quiet if m.state.asking is None else parse_message(m.text, pending=m.state.asking)
        return None if parsed.empty else self._values(m.state, parsed)

    def _about_mentioned(self, m: Message) -> Turn:
        return self._with_followup(m.state, [self._about(k) for k in m.segments])

    # ------------------------------------------------------------------ matching helpers

    def _only(self, norm: str, trigger: str | None, extra: list[str] | None = None) -> bool:
        """True when ``norm`` holds the trigger (if given) and otherwise only filler words
        (and the names of the ``extra`` segments)."""
        rest = norm
        if trigger is not None:
            pattern = self._re[trigger]
            if not pattern.search(rest):
                return False
            rest = pattern.sub(" ", rest)
        if extra:
            rest = self._segment_re.sub(" ", rest)
        return all(word.lower() in self._fillers for word in re.findall(r"[\w']+", rest))

    def _mentions(self, text: str) -> list[str]:
        """The segments ``text`` names, in order of first mention."""
        keys: list[str] = []
        for m in self._segment_re.finditer(text):
            key = self._alias_key.get(_words(m.group()))
            if key is not None and key not in keys:
                keys.append(key)
        return keys

    def _field_mentions(self, text: str) -> list[str]:
        names: list[str] = []
        for m in self._field_re.finditer(text):
            name = self._field_word.get(_words(m.group()))
            if name is not None and name not in names:
                names.append(name)
        return names

    # ------------------------------------------------------------------ state helpers

    @staticmethod
    def _coerce_state(state: Any) -> DialogueState:
        if state is None:
            return DialogueState()
        if isinstance(state, DialogueState):
            return state
        return DialogueState.model_validate(state)

    def _settle(self, state: DialogueState) -> tuple[DialogueState, SegmentResult | None]:
        """Normalise ``pending`` and compute the result of a complete profile."""
        if state.complete:
            result = self.service.assign(state.profile.to_profile())
            if state.pending is not None or state.segment_key != result.segment_key:
                state = state.model_copy(update={"pending": None, "segment_key": result.segment_key})
            return state, result
        asking = state.asking
        if state.pending != asking or state.segment_key is not None:
            state = state.model_copy(update={"pending": asking, "segment_key": None})
        return state, None

    def _turn(self, state: DialogueState, lines: list[str], result: SegmentResult | None) -> Turn:
        return Turn("\n\n".join(line for line in lines if line), state, result)

    def _with_followup(self, state: DialogueState, lines: list[str]) -> Turn:
        """Lines, then (while collecting) the pending question again; the profile is not touched."""
        state, result = self._settle(state)
        if result is None:
            lines = [*lines, self.texts.replies.resume.format(question=self._question(state.asking))]
        return self._turn(state, lines, result)

    def _question(self, name: str | None) -> str:
        if name is None:
            return self.texts.replies.after_result
        f = FIELDS_BY_NAME[name]
        return self.texts.questions[name].format(
            label=f.label, unit=f.unit, example=f.format(f.example), example_raw=_raw(f.example), **_range_of(f))

    # ------------------------------------------------------------------ collecting values

    def _values(self, state: DialogueState, parsed: ParseResult) -> Turn:
        r = self.texts.replies
        state, old_result = self._settle(state)
        draft = state.profile
        was_complete = old_result is not None
        failures = dict(state.failures)
        updates: dict[str, Any] = {}
        noted, lines = [], []
        for name in FIELD_NAMES:
            if name not in parsed.values:
                continue
            f, value, old = FIELDS_BY_NAME[name], parsed.values[name], getattr(draft, name)
            updates[name] = value
            failures.pop(name, None)
            if old is not None and old != value:
                lines.append(r.corrected.format(**_names_of(f), old=f.say(old), new=f.say(value)))
            else:
                noted.append(self._value(f, value) + (r.unsure_mark if name in parsed.unsure else ""))
        if noted:
            lines.insert(0, r.noted.format(values=", ".join(noted)))
        lines.extend(self._read_back(parsed))
        refused: list[str] = []
        for err in parsed.rejected:
            f = FIELDS_BY_NAME[err.field]
            if f.name in parsed.values:
                continue  # the same message also gave a valid value for it ("age 250, no, 25")
            failures[f.name] = failures.get(f.name, 0) + 1
            lines.append(self._refusal(r.rejected, err, f))
            if failures[f.name] >= EXPLAIN_AFTER_FAILURES:
                lines.append(r.explain.format(**_names_of(f), unit=f.unit, description=f.description,
                                              example=f.format(f.example), **_range_of(f)))
            if was_complete:
                lines.append(r.kept.format(**_names_of(f), value=f.say(getattr(draft, f.name))))
            else:
                updates[f.name] = None  # a refused value clears the slot; it is asked again
                refused.append(f.name)
        new_draft = draft.merged(updates)
        missing = new_draft.missing()
        pending = next((n for n in refused if n in missing), missing[0] if missing else None)
        mentioned = {*parsed.values, *(e.field for e in parsed.rejected)}
        last_field = next(iter(mentioned)) if len(mentioned) == 1 else None
        state = DialogueState(profile=new_draft, pending=pending, failures=failures, segment_key=None,
                              last_field=last_field, last_read=tuple(parsed.values),
                              unsure=tuple(parsed.unsure))
        state, result = self._settle(state)
        if result is None:
            lines.append(self._question(state.asking))
        elif not was_complete:
            lines += [r.complete, self.render(result), r.after_result]
        elif updates and old_result is not None:
            if old_result.segment_key != result.segment_key:
                lines.append(r.segment_changed.format(old_segment=old_result.segment_name,
                                                      new_segment=result.segment_name))
            else:
                lines.append(r.segment_same.format(segment_name=result.segment_name))
            lines.append(self.render(result))
        return self._turn(state, lines, result)

    def _read_back(self, parsed: ParseResult) -> list[str]:
        """One sentence per value read with low certainty: the misspelt word or the converted rate it came
        from, and that "no" changes it."""
        r = self.texts.replies
        lines = []
        for name in parsed.unsure:
            f, value = FIELDS_BY_NAME[name], parsed.values[name]
            if name in parsed.fuzzy:
                lines.append(r.fuzzy_read.format(word=user_text(parsed.fuzzy[name]), **_names_of(f),
                                                 value=f.say(value)))
            else:
                lines.append(r.scaled_read.format(rate=user_text(parsed.scaled[name]), **_names_of(f),
                                                  value=f.say(value)))
        return lines

    def _confirm(self, m: Message) -> Turn:
        """ "yes" keeps the values just read back; "no" / "that's wrong" drops the unsure ones (all of the
        last message's when none was unsure) and asks for them again."""
        r, state = self.texts.replies, m.state
        if not self._only(m.norm, "confirm_no"):
            return self._with_followup(state.model_copy(update={"unsure": (), "last_read": ()}), [r.confirmed])
        names = [n for n in (state.unsure or state.last_read) if getattr(state.profile, n) is not None]
        dropped = self._and([self._value(FIELDS_BY_NAME[n], getattr(state.profile, n)) for n in names])
        profile = state.profile.merged(dict.fromkeys(names))
        fresh = state.model_copy(update={"profile": profile, "pending": names[0] if names else state.pending,
                                         "unsure": (), "last_read": (), "last_field": None, "segment_key": None})
        state, _ = self._settle(fresh)
        return self._turn(state, [r.dropped.format(values=dropped), self._question(state.asking)], None)

    def _reply_table(self, m: Message) -> Turn:
        return self._with_followup(m.state, [self.texts.replies.table_rows.format(rows=f"{m.quiet.table_rows:,}")])

    def _value(self, f: FieldSpec, value: float) -> str:
        return self.texts.replies.value.format(**_names_of(f), value=f.say(value))

    def _and(self, items: list[str]) -> str:
        """``a, b and c`` (the joining word from ``replies.list_and``)."""
        if len(items) < 2:
            return "".join(items)
        return self.texts.replies.list_and.format(items=", ".join(items[:-1]), last=items[-1])

    @staticmethod
    def _refusal(template: str, err: InvalidValueError, f: FieldSpec) -> str:
        """A refused value: ``{problem}`` is the value and its rule (``250 is above the maximum of
        110``), ``{error}`` the whole message (``age=250 is ...``); both carry the user's text."""
        error = str(err)
        problem = error.removeprefix(f"{err.field}=")
        return template.format(error=user_text(error), problem=user_text(problem), **_names_of(f), **_range_of(f))

    # ------------------------------------------------------------------ commands

    def _new_customer(self, state: DialogueState, line: str, parsed: ParseResult | None) -> Turn:
        fresh = DialogueState()
        if parsed is not None and not parsed.empty:
            turn = self._values(fresh, parsed)
            return Turn(line + "\n\n" + turn.marked, turn.state, turn.result)
        fresh, _ = self._settle(fresh)
        return self._turn(fresh, [line, self._question(fresh.asking)], None)

    def _cancel(self, state: DialogueState) -> Turn:
        r = self.texts.replies
        known = state.profile.filled()
        fresh, _ = self._settle(DialogueState())
        if not known:
            return self._turn(fresh, [r.cancel_nothing, self._question(fresh.asking)], None)
        values = ", ".join(self._value(FIELDS_BY_NAME[n], v) for n, v in known.items())
        return self._turn(fresh, [r.cancel.format(values=values), self._question(fresh.asking)], None)

    def _help(self) -> str:
        fields = ", ".join(f"{f.label.lower()} ({f.unit})" for f in FIELDS)
        return self.texts.replies.help.format(fields=fields)

    def _summary(self, state: DialogueState) -> Turn:
        r = self.texts.replies
        known = state.profile.filled()
        if not known:
            return self._with_followup(state, [r.summary_empty])
        lines = "\n".join(r.summary_line.format(**_names_of(FIELDS_BY_NAME[n]), value=FIELDS_BY_NAME[n].say(v))
                          for n, v in known.items())
        state, result = self._settle(state)
        if result is not None:
            return self._turn(state, [r.summary_complete.format(known=lines, segment_name=result.segment_name)], result)
        missing = ", ".join(FIELDS_BY_NAME[n].short_lower for n in state.profile.missing())
        return self._with_followup(state, [r.summary.format(known=lines, missing=missing)])

    def _field_help(self, state: DialogueState, names: list[str]) -> Turn:
        r = self.texts.replies
        lines = []
        for name in names:
            f = FIELDS_BY_NAME[name]
            lines.append(r.field_help.format(**_names_of(f), unit=f.unit, description=f.description,
                                             example=f.format(f.example), **_range_of(f)))
        return self._with_followup(state, lines)

    # ------------------------------------------------------------------ after the result

    def _why(self, state: DialogueState) -> Turn:
        r = self.texts.replies
        state, result = self._settle(state)
        if result is None:
            return self._with_followup(state, [r.why_incomplete])
        reasons = "\n".join(r.bullet.format(text=x) for x in result.reasons)
        return self._turn(state, [r.why.format(segment_name=result.segment_name, reasons=reasons,
                                               confidence=result.confidence.text)], result)

    def _show_result(self, state: DialogueState) -> Turn:
        state, result = self._settle(state)
        if result is None:
            return self._with_followup(state, [self.texts.replies.result_incomplete])
        return self._turn(state, [self.render(result), self.texts.replies.after_result], result)

    def _what_if(self, state: DialogueState, text: str, parsed: ParseResult | None = None) -> Turn:
        r = self.texts.replies
        state, result = self._settle(state)
        if result is None:
            return self._with_followup(state, [r.what_if_incomplete])
        if state.last_field is not None:
            state = state.model_copy(update={"last_field": None})  # "make that ..." no longer means a stored value
        parsed = parse_message(text) if parsed is None else parsed
        refused = [e for e in parsed.rejected if e.field not in parsed.values]
        if refused:
            lines = [self._refusal(r.what_if_rejected, err, FIELDS_BY_NAME[err.field]) for err in refused]
            return self._turn(state, lines, result)
        if not parsed.values:
            return self._turn(state, [r.what_if_nothing], result)
        draft = state.profile
        changes = self._and([
            r.change.format(**_names_of(f), old=f.say(getattr(draft, n)), new=f.say(v))
            for n, v in parsed.values.items() for f in (FIELDS_BY_NAME[n],)])
        hypothetical = self.service.assign(draft.merged(parsed.values).to_profile())
        if hypothetical.segment_key == result.segment_key:
            line = r.what_if_same.format(changes=changes, segment_name=hypothetical.segment_name,
                                         confidence=hypothetical.confidence.text)
        else:
            line = r.what_if_changed.format(changes=changes, old_segment=result.segment_name,
                                            new_segment=hypothetical.segment_name,
                                            confidence=hypothetical.confidence.text)
        lines = [line]
        if result.response is not None and hypothetical.response is not None:
            lines.append(r.what_if_response.format(old=_share(result.response.probability),
                                                   new=_share(hypothetical.response.probability)))
        return self._turn(state, [*lines, r.what_if_footer], result)

    def _target(self, state: DialogueState) -> Turn:
        """Who to contact first: the segments by their response rate, then how to rank a file's customers."""
        r = self.texts.replies
        response = self.service.card.get("response") or {}
        rates: dict[str, float] = response.get("segment_rates") or {}
        overall = response.get("overall_rate")
        if not rates or not overall:
            return self._with_followup(state, [r.target_none])
        ranking = "\n".join(
            r.target_line.format(segment_name=self.service.segment_name(key), rate=_share(rate),
                                 lift=f"{rate / overall:.1f}x")
            for key, rate in sorted(rates.items(), key=lambda kv: -kv[1]))
        return self._with_followup(state, [r.target.format(ranking=ranking, overall_rate=_share(overall))])

    def _why_chance(self, state: DialogueState) -> Turn:
        """Why this customer's chance is what it is: the response sentence with its drivers."""
        r = self.texts.replies
        state, result = self._settle(state)
        if result is None:
            return self._with_followup(state, [r.why_chance_incomplete])
        sentence = response_sentence(result, self.texts)
        if not sentence:
            return self._with_followup(state, [r.target_none])
        return self._turn(state, [r.why_chance.format(sentence=sentence)], result)

    # ------------------------------------------------------------------ the segments

    def _names(self) -> str:
        return ", ".join(s.name for s in self._segments.values())

    def _wants_all(self, norm: str) -> bool:
        return bool(self._re["all"].search(norm) or self._re["list"].search(norm))

    def _compare(self, state: DialogueState, segments: list[str], norm: str) -> Turn:
        r = self.texts.replies
        state, result = self._settle(state)
        keys = list(segments)
        if len(keys) == 1 and result is not None and result.segment_key != keys[0]:
            keys.insert(0, result.segment_key)
        if len(keys) < 2 and self._wants_all(norm):
            keys = list(self._segments)
        if len(keys) < 2:
            return self._with_followup(state, [r.compare_which.format(names=self._names())])
        infos = [self._segments[k] for k in keys]
        t = self.texts.result
        header = [t.column_field, *(s.name for s in infos)]
        rows = [[f.label, *(f.number(s.averages.get(f.name)) for s in infos)] for f in FIELDS]
        if result is not None:
            header.append(t.column_customer)
            for row, f in zip(rows, FIELDS, strict=True):
                row.append(f.number(result.customer.get(f.name)))
        names = infos[0].name
        for s in infos[1:]:
            names = r.versus.format(left=names, right=s.name)
        summaries = "\n".join(r.compare_line.format(name=s.name, summary=s.summary) for s in infos)
        return self._with_followup(state, [r.compare.format(names=names, table=_table(header, rows),
                                                            summaries=summaries)])

    def _strategy(self, state: DialogueState, segments: list[str], norm: str) -> Turn:
        r = self.texts.replies
        state, result = self._settle(state)
        keys = list(segments)
        if not keys and self._re["all"].search(norm):
            keys = list(self._segments)
        if not keys and result is not None:
            keys = [result.segment_key]
        if not keys:
            return self._with_followup(state, [r.strategy_which.format(names=self._names())])
        lines = []
        for key in keys:
            s = self._segments[key]
            lines.append(r.strategy.format(name=s.name, headline=s.strategy.headline,
                                           tactics="\n".join(r.bullet.format(text=x) for x in s.strategy.tactics),
                                           channels=", ".join(s.strategy.channels), kpi=s.strategy.kpi))
        return self._with_followup(state, lines)

    def _sizes(self) -> str:
        t = self.texts.result
        infos = list(self._segments.values())
        rows = [[s.name, f"{s.size:,}", _share(s.share)] for s in infos]
        table = _table([t.column_segment, t.column_size, t.column_share], rows)
        return self.texts.replies.sizes.format(total=f"{sum(s.size for s in infos):,}", table=table)

    def _list(self) -> str:
        r = self.texts.replies
        lines = "\n".join(r.segment_line.format(name=s.name, key=s.key, summary=s.summary)
                          for s in self._segments.values())
        return r.list_segments.format(count=len(self._segments), segments=lines)

    def _about(self, key: str) -> str:
        r = self.texts.replies
        s = self._segments[key]
        return r.about.format(name=s.name, key=s.key, description=s.description,
                              characteristics="\n".join(r.bullet.format(text=c) for c in s.characteristics),
                              size=f"{s.size:,}", share=_share(s.share), headline=s.strategy.headline)


# ============================================================================ the intents

# A message is answered by the first intent, in this order, that matches and replies; failing all, by the
# fallback. To add a chat intent: a trigger in ``Triggers`` with its phrases in ``dialogue.yaml``, a reply
# template, and one entry here (with its handler).


def _said(trigger: str) -> Matcher:
    """The message holds one of the trigger's phrases."""
    return lambda d, m: d._re[trigger].search(m.norm) is not None


def _only_said(trigger: str) -> Matcher:
    """The message is one of the trigger's phrases, give or take filler words."""
    return lambda d, m: d._only(m.norm, trigger)


def _always(d: Dialogue, m: Message) -> bool:
    return True


def _asks_about_fields(d: Dialogue, m: Message) -> bool:
    """ "what does recency mean", "income?" (a field, no segment)."""
    return bool(m.fields) and not m.segments and (
        _said("field_help")(d, m) or (m.is_question and d._only(d._field_re.sub(" ", m.norm), None)))


def _asks_why(d: Dialogue, m: Message) -> bool:
    return _said("why")(d, m) and (m.complete or not m.segments) and (
        d._only(m.norm, "why", extra=m.segments) or m.is_question)


def _asks_about_segments(d: Dialogue, m: Message) -> bool:
    return bool(m.segments) and (_said("about")(d, m) or d._only(m.norm, None, extra=m.segments) or m.is_question)


INTENTS: tuple[Intent, ...] = (
    # a hypothetical on the complete customer
    Intent("what_if", lambda d, m: d._what_if_start.search(m.norm) is not None, Dialogue._reply_what_if),
    Intent("what_about", lambda d, m: m.complete and d._what_about_start.search(m.norm) is not None,
           Dialogue._reply_what_about),
    # commands that start a new customer or drop this one
    Intent("new_customer", _said("new_customer"), Dialogue._reply_new_customer),
    Intent("reset", _only_said("reset"), lambda d, m: d._new_customer(m.state, d.texts.replies.reset, None)),
    Intent("cancel", _only_said("cancel"), lambda d, m: d._cancel(m.state)),
    # a table of several customers pasted into the chat: one at a time, or the Batch tab
    Intent("table", lambda d, m: m.quiet.table_rows > 1, Dialogue._reply_table),
    # "yes" / "no" / "that's wrong" to the values just read back
    Intent("confirm", lambda d, m: bool(m.state.last_read) and (d._only(m.norm, "confirm_no")
                                                                or d._only(m.norm, "confirm_yes")),
           Dialogue._confirm, plain=True),
    # questions and commands, in a message that states no customer values
    Intent("why_chance", _said("why_chance"), lambda d, m: d._why_chance(m.state), plain=True),
    Intent("target", _said("target"), lambda d, m: d._target(m.state), plain=True),
    Intent("insight", _always, Dialogue._reply_insight, plain=True),
    Intent("correction", lambda d, m: bool(m.state.last_field) and _said("correction")(d, m),
           Dialogue._reply_correction, plain=True),
    Intent("birth_year", lambda d, m: _said("birth_year")(d, m) and m.state.profile.age is None,
           lambda d, m: d._with_followup(m.state, [d.texts.replies.birth_year.format(question=d._question("age"))]),
           plain=True),
    Intent("field_help", _asks_about_fields, lambda d, m: d._field_help(m.state, m.fields), plain=True),
    Intent("help", _said("help"), lambda d, m: d._with_followup(m.state, [d._help()]), plain=True),
    Intent("summary", _said("summary"), lambda d, m: d._summary(m.state), plain=True),
    Intent("why", _asks_why, lambda d, m: d._why(m.state), plain=True),
    Intent("result", lambda d, m: d._only(m.norm, "result", extra=m.segments) and (m.complete or not m.segments),
           lambda d, m: d._show_result(m.state), plain=True),
    Intent("compare", _said("compare"), lambda d, m: d._compare(m.state, m.segments, m.norm), plain=True),
    Intent("strategy", _said("strategy"), lambda d, m: d._strategy(m.state, m.segments, m.norm), plain=True),
    Intent("sizes", _said("sizes"), lambda d, m: d._with_followup(m.state, [d._sizes()]), plain=True),
    Intent("list", lambda d, m: _said("list")(d, m) and not m.segments,
           lambda d, m: d._with_followup(m.state, [d._list()]), plain=True),
    Intent("about", _asks_about_segments, Dialogue._about_mentioned, plain=True),
    Intent("hello", _only_said("hello"), lambda d, m: d._with_followup(m.state, [d.texts.replies.hello]), plain=True),
    Intent("thanks", _only_said("thanks"), lambda d, m: d._with_followup(m.state, [d.texts.replies.thanks]),
           plain=True),
    # customer values (a bare number answers the pending question); then a segment named on its own
    Intent("values", _always, Dialogue._reply_values),
    Intent("segment", lambda d, m: bool(m.segments), Dialogue._about_mentioned),
)

"""The conversation: parsing what people type and a per-session state machine over the seven customer fields.

In the spirit of Rasa SDK forms: each field is a slot, the next question is the first empty slot
(in field order), every value goes through the field's rule (the parser calls
``FieldSpec.check``), and a refused value clears its slot and is asked again (after two refusals
on the same field the field is explained too). Once every slot is filled the customer is
assigned to a segment; the conversation then goes on with explanations, what-ifs, corrections
and questions about the segments.

:class:`Dialogue` holds only read-only things (the service, the texts, compiled patterns), so one
instance serves every session and thread. All per-session data lives in :class:`DialogueState`,
a frozen pydantic model: :meth:`Dialogue.respond` returns a new state and never changes the old
one, and the state round-trips through ``model_dump()`` / ``model_validate()`` (the REST API keeps
it server-side, ``gr.State`` holds it).

Every sentence the assistant says lives in ``knowledge/dialogue.yaml`` (validated at load by
:class:`DialogueTexts`); this module only chooses and fills templates. Values are shown the way
``assistant.core.fields`` declares (``FieldSpec.say`` in sentences, ``FieldSpec.number`` in tables).

Replies are Markdown carrying the user's own words (a quoted message, a refused value) as plain
text: the terminal, ``chat --json`` and the REST API show them as typed. Each such span is marked
(:func:`user_text`), so an adapter that renders Markdown escapes exactly those spans with
:meth:`Turn.render` (the Gradio app does); :attr:`Turn.reply` drops the marks.
"""

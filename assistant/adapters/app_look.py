"""The app's look: theme, CSS and the small scripts that bring an answer into view."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from assistant.adapters.result_card import CARD_CSS
from assistant.core.fields import FIELDS

if TYPE_CHECKING:
    pass
from assistant.adapters.app_texts import SEGMENT_PALETTE

ECHO_CHARS = 200  # how much of an over-long message is echoed into the chat
NARROW_BLOCK = 320  # px: side-by-side blocks narrower than this wrap onto their own line


# ---------------------------------------------------------------------------- look (for launch / mount)

APP_THEME = gr.themes.Soft(
    primary_hue="indigo", secondary_hue="slate", neutral_hue="slate", radius_size="md",
    font=["Inter", "ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
).set(
    # plain field titles instead of the theme's tinted pills: seven pills in a column are noisy
    block_title_background_fill="transparent", block_title_text_color="*neutral_800", block_title_padding="0",
    block_label_background_fill="transparent", block_label_text_color="*neutral_600",
    body_text_color_subdued="*neutral_500", button_large_text_size="*text_md",
)

# One coloured top edge per segment card, in the segment's plot colour.
_SEGMENT_CARD_CSS = "".join(f"#segment-{key} {{ border-top: 4px solid {colour} !important; }}\n"
                            for key, colour in SEGMENT_PALETTE.items())

APP_CSS = """
/* width: with auto margins the container would size to its content, and one wide table made the
   whole page scroll sideways in a narrow window (a portal iframe) */
.gradio-container { width: 100% !important; max-width: 1320px !important; margin: 0 auto !important; }
#app-header { padding: 6px 2px 2px; }
#app-header h1 { margin: 0 0 4px; font-size: 1.65rem; }
#app-header p { margin: 0; color: var(--body-text-color-subdued); font-size: 1rem; }
#form-heading h3, .map-caption h3 { margin: 0 0 2px; }
.map-caption p { margin: 2px 0 0; font-size: .9rem; color: var(--body-text-color-subdued); }
.map-caption strong { color: var(--body-text-color); }
#form-heading p { margin: 0; color: var(--body-text-color-subdued); font-size: .9rem; }
#chat table, #form-result table {
  border-collapse: collapse !important; border: none !important; width: 100%; font-size: .9rem; margin: 6px 0 10px;
}
#chat tr, #form-result tr { border: none !important; }
#chat th, #chat td, #form-result th, #form-result td {
  padding: 4px 10px !important; border: none !important;
  border-bottom: 1px solid var(--border-color-primary) !important;
}
#chat th, #chat td, #form-result th, #form-result td {
  overflow-wrap: normal !important; word-break: normal !important;
}
#chat td:not(:first-child), #chat th:not(:first-child), #form-result td:not(:first-child),
#response-quality th, #response-quality td { word-break: normal !important; overflow-wrap: normal !important; }
#form-result th:not(:first-child) { text-align: right !important; font-variant-numeric: tabular-nums; }
/* numbers with their unit stay on one line; headers (long segment names) may wrap */
#chat td:not(:first-child), #form-result td:not(:first-child) { white-space: nowrap; }
#chat td:first-child, #form-result td:first-child { min-width: 7.5em; }
/* a table never widens the chat bubble or the page: it fits (cells wrap); only a table too wide even
   then scrolls sideways inside its bubble */
#chat table, #form-result table { display: table; table-layout: auto; max-width: 100%; }
#chat .message-content, #chat .prose, #form-result .prose { max-width: 100%; min-width: 0; overflow-wrap: anywhere; }
@media (max-width: 640px) {
  /* narrow windows and portal iframes: values and headers may wrap */
  #chat td:not(:first-child), #form-result td:not(:first-child) { white-space: normal; }
  #chat td:first-child, #form-result td:first-child { min-width: 0; }
  #chat th, #chat td, #form-result th, #form-result td { padding: 3px 5px !important; font-size: .85rem; }
  /* the chat's buttons on one line, the chat a little shorter than the screen */
  #chat-buttons button { min-width: 0 !important; padding-left: 6px; padding-right: 6px; }
  #chat { height: min(700px, calc(100svh - 110px)) !important; }
}
#chat th, #form-result th { background: var(--background-fill-secondary); font-weight: 600; vertical-align: bottom; }
/* the segment's name heads the answer: make it the most visible line of it */
#chat h3, #form-result h3 { font-size: 1.3rem !important; font-weight: 700; color: var(--primary-700) !important;
  margin: .5em 0 .25em !important; }
#form-result {
  border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 12px 16px;
  background: var(--background-fill-primary); min-height: 60px;
}
#form-result h3 { margin-top: .2em; }
.segment-map { min-height: 440px; }
.segment-card h3 { margin-top: 0; }
#segment-averages, #selection-table, #batch-table { --font-mono: var(--font); font-size: .9rem; }
#send, #segment-btn { min-width: 120px; }
""" + CARD_CSS + _SEGMENT_CARD_CSS + """
@media (max-width: 640px) {
  /* the page's side padding and the bubbles' side margins would leave a phone's answer 260 px wide */
  /* (Gradio scopes this CSS inside the page's padded container, so it is undone from inside) */
  #app-header, .tabs:has(#chat) { margin-left: -24px !important; margin-right: -24px !important;
    width: calc(100% + 48px) !important; max-width: none !important; }
  #chat .message-row.bubble { margin: 8px 4px !important; max-width: calc(100% - 8px) !important; }
  #chat .message-row.bubble.bot-row { margin-right: 30px !important; max-width: calc(100% - 34px) !important; }
  #chat .message.bot, #chat .message.user { padding: 4px 8px !important; }
  #app-header h1 { font-size: 1.35rem; }
  #app-header p { font-size: .9rem; }
  .result-card { padding: 8px 9px; }
  .result-card .rc-row { grid-template-columns: minmax(5em, 7.4em) minmax(48px, 1fr) auto; gap: 5px;
    font-size: .78rem; padding: 1px 0; }
  .result-card .rc-name { font-size: 1.15rem; }
  .result-card .rc-summary, .result-card ol.rc-tactics { font-size: .92rem; }
  .result-card .rc-strategy { font-size: .95rem; }
  .result-card .rc-legend { gap: 0 10px; }
}
"""

# The Chatbot's own autoscroll is off (it always lands on the LAST line, and a full result is
# several screens tall: the user would see "What the data says", not the segment's name). After
# each chat turn this scrolls the conversation instead: a long reply is shown from its top, a
# short one to the end, as usual. It runs twice because the reply's Markdown renders a moment
# after the event ends.
SHOW_ANSWER_JS = """() => {
  const place = () => {
    const log = document.querySelector('#chat [role="log"]');
    const bots = document.querySelectorAll('#chat [data-testid="bot"]');
    if (!log || !bots.length) return;
    const last = bots[bots.length - 1];
    let top = log.scrollHeight;
    if (last.offsetHeight > log.clientHeight * 0.8) {
      top = last.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop - 8;
    }
    log.scrollTo({top: Math.max(0, top)});
    // a phone, or a short window: bring the chat itself into view when a long answer came in
    const box = document.querySelector('#chat').getBoundingClientRect();
    if (last.offsetHeight > log.clientHeight * 0.8 && (box.top < 0 || box.top > window.innerHeight * 0.4)) {
      window.scrollBy({top: box.top - 4});
    }
  };
  setTimeout(place, 50);
  setTimeout(place, 300);
}"""

def _show_js(selector: str) -> str:
    """JS that scrolls the page so ``selector``'s top is in view (when it is not already in the top half)."""
    return ("() => { const el = document.querySelector('" + selector + "'); if (!el) return;"
            " const top = el.getBoundingClientRect().top;"
            " if (top < 0 || top > window.innerHeight * 0.5) window.scrollBy({top: top - 8}); }")


SHOW_FORM_RESULT_JS = _show_js("#form-result")   # the form's answer, after "Segment this customer"
SHOW_FORM_JS = _show_js("#form-heading")         # the form, after "Use in form"
SHOW_CHAT_JS = _show_js("#chat")                 # the chat, after "Discuss in chat"
EMPTY_FORM_JS = "() => [" + ", ".join(["null"] * len(FIELDS)) + "]"

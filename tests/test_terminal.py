"""The terminal chat: ``python -m assistant chat [--json]`` as a subprocess, and run_chat in-process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.adapters.terminal import markdown_to_text, run_chat
from assistant.core.fields import FIELD_NAMES
from assistant.model.segmentation import SegmentationService

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def service():
    return SegmentationService.load()


def chat(args: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assistant", "chat", *args], input=stdin, cwd=ROOT,
                          capture_output=True, timeout=120)


def check_turn(obj: dict) -> None:
    assert set(obj) == {"reply", "profile", "complete", "result"}
    assert isinstance(obj["reply"], str) and obj["reply"]
    assert list(obj["profile"]) == list(FIELD_NAMES)
    assert all(v is None or isinstance(v, (int, float)) for v in obj["profile"].values())
    assert isinstance(obj["complete"], bool)
    assert obj["complete"] == all(v is not None for v in obj["profile"].values())
    if obj["complete"]:
        assert isinstance(obj["result"], dict)
        assert isinstance(obj["result"]["segment_key"], str) and isinstance(obj["result"]["segment_name"], str)
    else:
        assert obj["result"] is None


def test_json_mode_one_object_per_line():
    lines = [
        b"38",
        b"",
        b"help",
        b"income 71k",
        b"\xff\xfe not utf-8 \xc3",
        b"spent 1.2k, buys online 5x, in store 7x, visits 6x a month",
        b"last bought 2 weeks ago",
        b"why?",
        b"what if she spent 100?",
        b"x" * 20_000,
        "tell me about VIPs \U0001f642 <b>".encode(),
        b"new customer",
    ]
    proc = chat(["--json"], b"\n".join(lines) + b"\n")
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode("ascii").splitlines()  # ASCII-only JSON: safe on any terminal encoding
    assert len(out) == len(lines)
    objs = [json.loads(line) for line in out]
    for obj in objs:
        check_turn(obj)
    assert objs[0]["profile"]["age"] == 38 and "income" in objs[0]["reply"]
    assert objs[3]["profile"]["income"] == 71000
    assert [o["complete"] for o in objs] == [False] * 6 + [True] * 5 + [False]
    result = objs[6]["result"]
    assert result["segment_key"] in {"casual_shoppers", "vip_customers", "browsers_without_conversion",
                                     "digital_enthusiasts"}
    assert result["segment_name"] in objs[6]["reply"]
    assert "10,000" in objs[9]["reply"]  # the over-long line is refused, the customer kept
    assert objs[9]["profile"] == objs[8]["profile"]
    assert "<b>" not in objs[10]["reply"] and "VIP Customers" in objs[10]["reply"]
    assert objs[11]["profile"] == dict.fromkeys(FIELD_NAMES)


def test_json_mode_replies_are_plain_text():
    """User text quoted in a reply, and refused values, come back as typed: no HTML entities, no
    Markdown backslashes (escaping belongs to the Gradio adapter)."""
    lines = ["age 250", "she's <b>great</b> & it's *fine*", "38, makes $71k, spent 1.2k, buys online 1x, in store 7x, "
             "visits 1x a month, last bought 1 day ago", "what if age 250", "compare VIP and Digital Enthusiasts"]
    proc = chat(["--json"], "\n".join(lines).encode() + b"\n")
    assert proc.returncode == 0, proc.stderr.decode()
    objs = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    for obj in objs:
        check_turn(obj)
        assert "&#x27;" not in obj["reply"] and "&lt;" not in obj["reply"] and "&amp;" not in obj["reply"]
        assert "\ue000" not in obj["reply"] and "\ue001" not in obj["reply"]
    assert "I can't use that value for age: 250 is above the maximum of 110. Age must be between 18 and 110 years." \
        in objs[0]["reply"]
    assert "\u201cshe's <b>great</b> & it's *fine*\u201d" in objs[1]["reply"]
    done = objs[2]["reply"]
    assert "web purchases: 1, store purchases: 7, site visits: 1 a month, last purchase: 1 day ago" in done
    assert "1 days" not in done and "purchases 1 purchase" not in done and "Confidence:** Borderline:" not in done
    assert "I can't try that value for age: 250 is above the maximum of 110." in objs[3]["reply"]
    assert objs[4]["reply"].startswith("**VIP Customers vs Digital Enthusiasts** (segment averages)")


def test_interactive_mode_shows_quoted_user_text_as_typed():
    proc = chat([], b"it's <b>x</b> & *y* `z` \\_w_\nquit\n")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "\u201cit's <b>x</b> & *y* `z` \\_w_\u201d" in proc.stdout.decode()


def test_json_mode_without_input_prints_nothing():
    proc = chat(["--json"], b"")
    assert proc.returncode == 0 and proc.stdout == b""


def test_json_mode_without_final_newline():
    proc = chat(["--json"], b"age 40\r\nincome 50k")
    assert proc.returncode == 0
    objs = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(objs) == 2 and objs[1]["profile"]["age"] == 40 and objs[1]["profile"]["income"] == 50000


def test_interactive_mode_greets_answers_and_quits():
    proc = chat([], b"age 40\nquit\nage 50\n")
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode()
    assert "Customer Segment Assistant" in text and "How old is the customer" in text
    assert "Got it \u2014 age: 40." in text and "**" not in text
    assert text.rstrip().endswith("Goodbye!") and "age 50" not in text


def test_interactive_mode_ends_at_eof(service):
    out = io.StringIO()
    assert run_chat(service, json_mode=False, stdin=io.StringIO("hello\n"), stdout=out) == 0
    assert "Hello!" in out.getvalue()


def test_run_chat_in_process_json(service):
    out = io.StringIO()
    stdin = io.StringIO("38, makes $71k, spent 1.2k, buys online 5x, in store 7x, visits 6x a month, "
                        "last bought 2 weeks ago\n" + "y" * 50 + "\nwhy\n")
    assert run_chat(service, json_mode=True, stdin=stdin, stdout=out, max_message_chars=40) == 0
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(objs) == 3
    for obj in objs:
        check_turn(obj)
    # the first line is over the 40-character limit: refused, nothing collected
    assert not objs[0]["complete"] and "40" in objs[0]["reply"] and objs[0]["profile"]["age"] is None
    assert "40" in objs[1]["reply"]


def test_markdown_to_text():
    md = ("### VIP Customers\n\n**Bold** and *italic* with `code` and \\*stars\\* &lt;b&gt;\n\n"
          "| Field | This customer | Average |\n|---|---:|---:|\n| Age | 38 years | 45.9 years |\n"
          "| Yearly income | $71,000 | $76,279 |\n\n> **Note:** outside the range")
    text = markdown_to_text(md)
    assert text.splitlines()[0] == "VIP Customers"
    assert "Bold and italic with code and *stars* <b>" in text
    rows = [line for line in text.splitlines() if line.startswith(("Field", "Age", "Yearly"))]
    assert len(rows) == 3 and len({len(r) for r in rows}) == 1  # aligned columns
    assert rows[1].endswith("45.9 years") and "---" not in text
    assert "  Note: outside the range" in text

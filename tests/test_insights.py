"""Segment insights: profiles against a direct pandas computation, chat answers, texts."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from assistant.core.errors import InvalidValueError, KnowledgeBaseError, ModelError
from assistant.core.knowledge import load_knowledge
from assistant.insights.answers import answer_question, parse_question
from assistant.insights.summaries import (
    fmt_lift,
    fmt_pct,
    fmt_rate,
    segment_profile,
    segment_summary,
    strategy_evidence,
)
from assistant.insights.texts import load_insight_texts
from assistant.model.data import MNT_COLUMNS, clean_customers, numeric_raw
from assistant.model.profiling import compute_profiles
from assistant.model.synthetic import generate_customers

CHANNELS = ["NumWebPurchases", "NumCatalogPurchases", "NumStorePurchases"]
CAMPAIGNS = ["AcceptedCmp1", "AcceptedCmp2", "AcceptedCmp3", "AcceptedCmp4", "AcceptedCmp5"]
KEYS = ("casual_shoppers", "vip_customers", "browsers_without_conversion", "digital_enthusiasts")


def _expected(data, keys: np.ndarray) -> pd.DataFrame:
    """Per-segment figures straight from pandas, independent of assistant.insights."""
    raw = data.raw.copy()
    for c in [*MNT_COLUMNS, *CHANNELS, "NumDealsPurchases", *CAMPAIGNS, "Response", "Kidhome", "Teenhome",
              "Complain", "Income"]:
        raw[c] = pd.to_numeric(raw[c])
    raw["segment"] = keys
    dates = pd.to_datetime(raw["Dt_Customer"], format="%d-%m-%Y")
    raw["tenure"] = (dates.max() - dates).dt.days
    raw["kids"] = (raw["Kidhome"] + raw["Teenhome"]) > 0
    raw["any"] = raw[CAMPAIGNS].max(axis=1) > 0
    g = raw.groupby("segment")
    out = pd.DataFrame({
        "size": g.size(),
        "wine_share": g["MntWines"].sum() / g[list(MNT_COLUMNS)].sum().sum(axis=1),
        "meat_mean": g["MntMeatProducts"].mean(),
        "web_share": g["NumWebPurchases"].sum() / g[CHANNELS].sum().sum(axis=1),
        "deal_share": g["NumDealsPurchases"].sum() / g[CHANNELS].sum().sum(axis=1),
        "response": g["Response"].mean(),
        "any": g["any"].mean(),
        "cmp5": g["AcceptedCmp5"].mean(),
        "children": g["kids"].mean(),
        "children_n": g["kids"].sum(),
        "complain": g["Complain"].mean(),
        "tenure_mean": g["tenure"].mean(),
        "tenure_median": g["tenure"].median(),
        "income_median": g["Income"].median(),
        "phd": g["Education"].apply(lambda s: (s == "PhD").mean()),
        "two_n_cycle": g["Education"].apply(lambda s: (s == "2n Cycle").mean()),
        "marital_other": g["Marital_Status"].apply(lambda s: s.isin(["Alone", "Absurd", "YOLO"]).mean()),
    })
    base = {
        "response": raw["Response"].mean(), "children": raw["kids"].mean(),
        "wine_share": raw["MntWines"].sum() / raw[list(MNT_COLUMNS)].sum().sum(),
        "meat_mean": raw["MntMeatProducts"].mean(), "any": raw["any"].mean(),
        "marital_other_n": int(raw["Marital_Status"].isin(["Alone", "Absurd", "YOLO"]).sum()),
        "tenure_mean": raw["tenure"].mean(),
    }
    return out, base


def _check_against(profiles: dict, expected: pd.DataFrame, base: dict) -> None:
    for key, row in expected.iterrows():
        seg = profiles["segments"][key]
        assert seg["size"] == row["size"]
        assert seg["product_mix"]["MntWines"] == pytest.approx(row["wine_share"])
        assert seg["numeric"]["MntMeatProducts"]["mean"] == pytest.approx(row["meat_mean"])
        assert seg["channel_mix"]["NumWebPurchases"] == pytest.approx(row["web_share"])
        assert seg["deal_share"] == pytest.approx(row["deal_share"])
        assert seg["campaigns"]["Response"] == pytest.approx(row["response"])
        assert seg["campaigns"]["any_accepted"] == pytest.approx(row["any"])
        assert seg["campaigns"]["AcceptedCmp5"] == pytest.approx(row["cmp5"])
        assert seg["children"]["share"] == pytest.approx(row["children"])
        assert seg["children"]["count"] == row["children_n"]
        assert seg["complaint_rate"] == pytest.approx(row["complain"])
        assert seg["tenure_days"]["mean"] == pytest.approx(row["tenure_mean"])
        assert seg["tenure_days"]["median"] == pytest.approx(row["tenure_median"])
        assert seg["numeric"]["Income"]["median"] == pytest.approx(row["income_median"])
        assert seg["education"]["PhD"] == pytest.approx(row["phd"])
        assert seg["education"]["2n Cycle"] == pytest.approx(row["two_n_cycle"])
        assert seg["marital_status"]["Other"] == pytest.approx(row["marital_other"])
        # lifts are segment / base
        assert seg["lift"]["campaigns"]["Response"] == pytest.approx(row["response"] / base["response"])
        assert seg["lift"]["children"] == pytest.approx(row["children"] / base["children"])
        assert seg["lift"]["product_mix"]["MntWines"] == pytest.approx(row["wine_share"] / base["wine_share"])
        assert seg["lift"]["numeric"]["MntMeatProducts"] == pytest.approx(row["meat_mean"] / base["meat_mean"])
    b = profiles["base"]
    assert b["campaigns"]["Response"] == pytest.approx(base["response"])
    assert b["children"]["share"] == pytest.approx(base["children"])
    assert b["marital_status"]["Other"] * b["size"] == pytest.approx(base["marital_other_n"])
    assert b["tenure_days"]["mean"] == pytest.approx(base["tenure_mean"])
    assert sum(s["size"] for s in profiles["segments"].values()) == b["size"]
    for group in [b, *profiles["segments"].values()]:
        if group["size"]:
            assert sum(group["product_mix"].values()) == pytest.approx(1.0)
            assert sum(group["channel_mix"].values()) == pytest.approx(1.0)
            assert sum(group["education"].values()) == pytest.approx(1.0)
            assert sum(group["marital_status"].values()) == pytest.approx(1.0)
    for excluded in ("ID", "Z_CostContact", "Z_Revenue"):
        assert excluded not in b["numeric"]
    assert {"age", "income", "total_spending", "MntGoldProds", "NumWebVisitsMonth", "Year_Birth"} <= set(b["numeric"])


# ------------------------------------------------------------------------ real data


@pytest.mark.realdata
def test_committed_card_profiles_match_pandas_on_the_real_file(service, real_data):
    keys = service.assign_many(real_data.features).to_numpy()
    expected, base = _expected(real_data, keys)
    profiles = service.card["profiles"]
    _check_against(profiles, expected, base)
    assert profiles["reference_date"] == "2014-06-29"
    assert profiles["base"]["size"] == 2212
    # the committed card is the file's profile under the committed model (same seed, same clusters)
    fresh = compute_profiles(real_data, keys, service.knowledge)
    assert json.loads(json.dumps(fresh)) == profiles
    # facts a marketer would check
    seg = profiles["segments"]
    assert max(seg, key=lambda k: seg[k]["campaigns"]["Response"]) == "vip_customers"
    assert seg["vip_customers"]["lift"]["numeric"]["MntWines"] > 1.5
    assert seg["browsers_without_conversion"]["children"]["share"] > profiles["base"]["children"]["share"]


# ------------------------------------------------------------------------ synthetic data (always runs)


@pytest.fixture(scope="module")
def synthetic(service):
    data = clean_customers(generate_customers(1500, seed=3))
    keys = service.assign_many(data.features).to_numpy()
    return data, keys, compute_profiles(data, keys, service.knowledge)


def test_profiles_match_pandas_on_synthetic_data(synthetic):
    data, keys, profiles = synthetic
    expected, base = _expected(data, keys)
    _check_against(profiles, expected, base)


def test_profiles_are_json_and_aggregates_only(synthetic):
    data, _, profiles = synthetic
    json.dumps(profiles, allow_nan=False)  # JSON-safe: raises on NaN or infinity
    # no customer-level values: no list is as long as the customer file
    def lists(obj):
        if isinstance(obj, dict):
            for v in obj.values():
                yield from lists(v)
        elif isinstance(obj, list):
            yield obj
            for v in obj:
                yield from lists(v)
    assert max(len(v) for v in lists(profiles)) < len(data.features) / 10
    assert "ID" not in profiles["base"]["numeric"]
    dist = profiles["distributions"]["income"]
    assert sum(sum(c) for c in dist["counts"].values()) == len(data.features)


def test_profiles_without_optional_columns_and_with_an_empty_segment(service):
    frame = generate_customers(400, seed=5).drop(columns=[*CAMPAIGNS, "Response", "Complain", "Education"])
    data = clean_customers(frame)
    keys = np.array(["vip_customers"] * len(data.features))
    profiles = compute_profiles(data, keys, service.knowledge)
    json.dumps(profiles, allow_nan=False)
    assert profiles["base"]["campaigns"] == {} and profiles["base"]["complaint_rate"] is None
    assert profiles["base"]["education"] == {}
    empty = profiles["segments"]["casual_shoppers"]
    assert empty["size"] == 0 and empty["numeric"]["income"]["mean"] is None and empty["lift"]["children"] is None
    other = copy.copy(service)
    other.card = {**service.card, "profiles": profiles}
    assert "no campaign" in answer_question("which segment responds best to campaigns?", other)
    assert "look much like the average customer" in segment_summary(other, "casual_shoppers")
    assert "No customer" in answer_question("what do casual shoppers buy?", other)
    for question in ("what does each segment buy", "channel mix by segment", "children by segment",
                     "education by segment", "complaints by segment", "how long has each segment been customers",
                     "profile of each segment", "casual shoppers profile"):
        assert answer_question(question, other), question  # renders with an empty segment among the others


def test_compute_profiles_rejects_misaligned_or_unknown_keys(service, synthetic):
    data, keys, _ = synthetic
    with pytest.raises(ValueError, match="entries"):
        compute_profiles(data, keys[:-1], service.knowledge)
    bad = keys.copy()
    bad[0] = "whales"
    with pytest.raises(ValueError, match="whales"):
        compute_profiles(data, bad, service.knowledge)


# ------------------------------------------------------------------------ chat answers on the committed model


@pytest.fixture(scope="module")
def prof(service):
    return service.card["profiles"]


def test_what_do_vip_customers_buy(service, prof):
    answer = answer_question("what do VIP customers buy?", service)
    vip = prof["segments"]["vip_customers"]
    assert "What VIP Customers buy" in answer
    wine_row = next(line for line in answer.splitlines() if line.startswith("| Wine |"))
    assert fmt_pct(vip["product_mix"]["MntWines"]) in wine_row
    assert fmt_lift(vip["lift"]["numeric"]["MntWines"]) in wine_row
    top = max(vip["product_mix"], key=vip["product_mix"].get)
    assert top == "MntWines" and "top product line is wine" in answer
    most = max(vip["lift"]["numeric"][c] for c in MNT_COLUMNS)
    assert fmt_lift(most) in answer
    assert "Casual Shoppers" not in answer


def test_which_segment_responds_best(service, prof):
    answer = answer_question("which segment responds best to campaigns?", service)
    seg = prof["segments"]
    ranked = sorted(seg, key=lambda k: -seg[k]["campaigns"]["Response"])
    names = [service.segment_name(k) for k in ranked]
    rows = [line for line in answer.splitlines() if line.startswith("| ") and not line.startswith("| Segment")]
    assert [r.split(" | ")[0][2:] for r in rows[:4]] == names
    best = seg[ranked[0]]
    assert f"**{names[0]}** respond best: {fmt_rate(best['campaigns']['Response'])}" in answer
    best_any = max(seg, key=lambda k: seg[k]["campaigns"]["any_accepted"])
    rate = fmt_rate(seg[best_any]["campaigns"]["any_accepted"])
    assert f"**{service.segment_name(best_any)}** lead with {rate}" in answer


def test_compare_channel_mix_of_two_segments(service, prof):
    answer = answer_question("compare the channel mix of Browsers and Casual Shoppers", service)
    header = next(line for line in answer.splitlines() if line.startswith("| Channel"))
    assert header == "| Channel | Browsers Without Conversion | Casual Shoppers | All customers |"
    assert "VIP" not in answer and "Digital" not in answer
    web = next(line for line in answer.splitlines() if line.startswith("| Web |"))
    b, c = prof["segments"]["browsers_without_conversion"], prof["segments"]["casual_shoppers"]
    cells = [cell.strip() for cell in web.strip("|").split("|")]
    assert cells[1].startswith(fmt_pct(b["channel_mix"]["NumWebPurchases"]))
    assert cells[2].startswith(fmt_pct(c["channel_mix"]["NumWebPurchases"]))
    assert cells[3] == fmt_pct(prof["base"]["channel_mix"]["NumWebPurchases"])


def test_how_many_digital_enthusiasts_have_children(service, prof):
    answer = answer_question("how many Digital Enthusiasts have children?", service)
    de = prof["segments"]["digital_enthusiasts"]
    assert f"{fmt_pct(de['children']['share'])} of Digital Enthusiasts" in answer
    assert f"({de['children']['count']:,} of {de['size']:,} customers)" in answer


@pytest.mark.parametrize("text, topic, segments", [
    ("what does each segment buy", "products", ()),
    ("What do VIPs buy?", "products", ("vip_customers",)),
    ("who answered the last campaign", "campaigns", ()),
    ("are browsers families?", "children", ("browsers_without_conversion",)),
    ("what's the education of VIPs", "education", ("vip_customers",)),
    ("complaint rate by segment", "complaints", ()),
    ("how long have casual shoppers been customers", "tenure", ("casual_shoppers",)),
    ("Where do digital enthusiasts buy?", "channels", ("digital_enthusiasts",)),
    ("marital status of the vip customer segment", "marital", ("vip_customers",)),
    ("do browsers without conversion accept offers?", "campaigns", ("browsers_without_conversion",)),
    ("digital vs casual: what do they buy", "products", ("digital_enthusiasts", "casual_shoppers")),
])
def test_question_variants_are_recognised(service, text, topic, segments):
    q = parse_question(text, service.knowledge)
    assert q is not None and q.topic == topic and q.segments == segments
    assert answer_question(text, service)


@pytest.mark.parametrize("text", [
    "", "hello", "help", "I am 38, earn 52000, spent 600, 4 web purchases, 6 store purchases, 5 visits, 30 days",
    "age 45 income 70k spends 1200 online 5 store 8 visits 2 recency 40", "what segment is this customer in?",
    "tell me about vips", "reset", "which one?",
])
def test_other_messages_are_not_insight_questions(service, text):
    assert answer_question(text, service) is None


def test_every_topic_renders_for_one_and_for_all_segments(service):
    for question in ("what does each segment buy", "channel mix by segment", "which segment accepts offers",
                     "children by segment", "education by segment", "marital status by segment",
                     "complaints by segment", "how long has each segment been customers", "profile of each segment"):
        assert all(service.segment_name(k) in answer_question(question, service) for k in KEYS), question
    for key in KEYS:
        name = service.segment_name(key)
        for topic in ("buy", "channels", "campaigns", "children", "education", "marital status", "complaints",
                      "how long", "profile"):
            answer = answer_question(f"{name} {topic}", service)
            assert answer and name in answer and "{" not in answer, (name, topic)


# ------------------------------------------------------------------------ summary, evidence, typed profile


def test_summary_cites_the_most_notable_lifts(service, prof):
    vip = prof["segments"]["vip_customers"]
    summary = segment_summary(service, "vip_customers")
    assert summary.startswith("VIP Customers ")
    best_product = max(MNT_COLUMNS, key=lambda c: vip["lift"]["numeric"][c])
    assert f"spend {fmt_lift(vip['lift']['numeric'][best_product])} the average on meat" in summary
    for key in KEYS:
        text = segment_summary(service, key)
        assert text.startswith(service.segment_name(key)) and text.endswith(".")
        assert text.count(",") + text.count(" and ") <= 3


def test_strategy_evidence_cites_response_product_and_channel(service, prof):
    vip = prof["segments"]["vip_customers"]
    lines = strategy_evidence(service, "vip_customers")
    joined = " ".join(lines)
    assert fmt_rate(vip["campaigns"]["Response"]) in lines[0]
    assert fmt_rate(prof["base"]["campaigns"]["Response"]) in lines[0]
    assert "top product line is wine" in joined
    assert "catalogue" in joined  # VIPs' most over-represented channel
    with pytest.raises(InvalidValueError, match=r"segment='whales' is not one of casual_shoppers"):
        strategy_evidence(service, "whales")


def test_segment_profile_model(service, prof):
    p = segment_profile(service, "browsers_without_conversion")
    dumped = json.loads(p.model_dump_json())
    assert dumped["segment_key"] == "browsers_without_conversion"
    assert dumped["segment_name"] == "Browsers Without Conversion"
    seg = prof["segments"]["browsers_without_conversion"]
    assert p.profile.campaigns["Response"] == seg["campaigns"]["Response"]
    assert p.base.size == prof["base"]["size"] and p.summary and p.evidence
    with pytest.raises(InvalidValueError, match="segment='nope'"):
        segment_profile(service, "nope")


def test_a_model_without_profiles(service):
    old = copy.copy(service)
    old.card = {k: v for k, v in service.card.items() if k != "profiles"}
    with pytest.raises(ModelError, match="retrain"):
        segment_profile(old, "vip_customers")
    assert "retrain" in answer_question("what do VIP customers buy?", old)
    assert answer_question("hello", old) is None


# ------------------------------------------------------------------------ texts


def _knowledge_copy(tmp_path, edit):
    from assistant.core.knowledge import default_knowledge_dir

    target = tmp_path / "knowledge"
    shutil.copytree(default_knowledge_dir(), target)
    data = yaml.safe_load((target / "insights.yaml").read_text())
    edit(data)
    (target / "insights.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return target


def test_insights_yaml_is_validated(tmp_path):
    def bad_placeholder(d):
        d["summary"]["more"]["product"] = "spend {lifts} on {product}"

    with pytest.raises(KnowledgeBaseError, match=r"insights.yaml.*summary.more.*lifts"):
        load_insight_texts(_knowledge_copy(tmp_path / "a", bad_placeholder))

    def missing_label(d):
        del d["labels"]["products"]["MntWines"]

    with pytest.raises(KnowledgeBaseError, match="MntWines"):
        load_insight_texts(_knowledge_copy(tmp_path / "b", missing_label))

    def no_phrases(d):
        del d["matching"]["segments"]["vip_customers"]

    with pytest.raises(KnowledgeBaseError, match="vip_customers"):
        load_insight_texts(_knowledge_copy(tmp_path / "c", no_phrases), segment_keys=("vip_customers",))


def test_texts_come_from_the_knowledge_dir(tmp_path, service):
    def rename(d):
        d["base_label"] = "Everyone"

    kb = load_knowledge(_knowledge_copy(tmp_path, rename))
    other = copy.copy(service)
    other.knowledge = kb
    assert "| Everyone |" in answer_question("children by segment", other)


def test_numeric_raw_is_what_profiles_use(synthetic):
    data, _, profiles = synthetic
    raw = numeric_raw(data.raw)
    assert profiles["base"]["numeric"]["MntFruits"]["mean"] == pytest.approx(raw["MntFruits"].mean())


# ------------------------------------------------------------------------ Gradio section


def test_segment_profiles_section_builds_a_page_per_segment(service):
    gr = pytest.importorskip("gradio")
    from assistant.adapters.segments_tab import segment_profiles_section

    with gr.Blocks() as demo:
        with gr.Tab("Segments"):
            segment_profiles_section(service)
    blocks = list(demo.blocks.values())
    plots = [b for b in blocks if isinstance(b, gr.Plot)]
    tabs = [b for b in blocks if isinstance(b, gr.Tab) and str(b.elem_id or "").startswith("profile-")]
    assert len(tabs) == 4 and len(plots) == 12
    texts = " ".join(str(b.value) for b in blocks if isinstance(b, gr.Markdown))
    for key in KEYS:
        assert segment_summary(service, key) in texts
    value = plots[0].value
    payload = json.loads(value["plot"] if isinstance(value, dict) else value.plot)
    assert payload["data"][0]["type"] == "bar" and len(payload["data"]) == 2  # the segment and all customers


# ---------------------------------------------------------------------------- profile plots


@pytest.mark.parametrize("key", KEYS)
def test_profile_plots_read_at_any_width(service, key):
    """Title pinned to the top and legend to the bottom of the figure (container coordinates, so
    they never meet at 360 px or 1440 px), horizontal bars whose category names are never rotated
    and whose value labels each sit at the end of their own bar, hidden rather than shrunk or
    overlapped when a bar is too thin; the side-by-side plots share one height."""
    from assistant.insights.figures import segment_figures

    figs = segment_figures(service, key)
    assert set(figs) == {"product_mix", "channel_mix", "campaigns"}
    for fig in figs.values():
        layout = fig.layout
        assert layout.title.text and layout.title.yref == "container" and layout.title.yanchor == "top"
        assert layout.legend.yref == "container" and layout.legend.y == 0 and layout.legend.yanchor == "bottom"
        assert layout.legend.orientation == "h"
        assert layout.uniformtext.mode == "hide" and layout.uniformtext.minsize >= 9
        assert layout.yaxis.automargin and layout.xaxis.automargin and layout.yaxis.autorange == "reversed"
        assert layout.margin.t >= 40 and layout.margin.b >= 40
        assert len(fig.data) == 2
        for trace in fig.data:
            assert trace.orientation == "h" and trace.textposition == "outside"
            assert len(trace.text) == len(trace.y) and all(trace.text)
            assert trace.hovertemplate and "%{customdata}" in trace.hovertemplate
        rows = len(fig.data[0].y)
        assert layout.height >= 100 + 40 * rows
        top = max(max(t.x) for t in fig.data)
        assert layout.xaxis.range[1] >= top * 1.2          # room for the longest bar's label
    assert figs["product_mix"].layout.height == figs["channel_mix"].layout.height

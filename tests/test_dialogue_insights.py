"""The chat answers questions about segment profiles, from the committed model card."""

import pytest

from assistant.conversation.dialogue import Dialogue
from assistant.conversation.state import DialogueState

VIP = "45 years old, income 90k, spent 2,000, 5 web purchases, 9 store purchases, 2 visits a month, last bought 40 days ago"


@pytest.fixture(scope="module")
def dialogue(service):
    return Dialogue.create(service, safety_net=False)


def ask(dialogue, *messages):
    state = DialogueState()
    turn = None
    for m in messages:
        turn = dialogue.respond(state, m)
        state = turn.state
    return turn


def test_what_do_vip_customers_buy(dialogue, service):
    reply = ask(dialogue, "what do VIP customers buy?").reply
    mix = service.card["profiles"]["segments"]["vip_customers"]["product_mix"]
    top = max(mix, key=lambda k: mix[k])
    assert "VIP Customers" in reply
    assert f"{mix[top]:.0%}" in reply


def test_which_segment_responds_best_to_campaigns(dialogue, service):
    reply = ask(dialogue, "which segment responds best to campaigns?").reply
    segs = service.card["profiles"]["segments"]
    best = max(segs, key=lambda k: segs[k]["campaigns"]["Response"])
    assert service.segment_name(best) in reply.split("\n")[0] + reply


def test_compare_channel_mix(dialogue):
    reply = ask(dialogue, "compare the channel mix of Browsers and Casual Shoppers").reply
    assert "Browsers Without Conversion" in reply and "Casual Shoppers" in reply
    assert "|" in reply  # a side-by-side table


def test_how_many_digital_enthusiasts_have_children(dialogue, service):
    reply = ask(dialogue, "how many Digital Enthusiasts have children?").reply
    children = service.card["profiles"]["segments"]["digital_enthusiasts"]["children"]
    assert "Digital Enthusiasts" in reply
    assert f"{children['share']:.0%}" in reply and f"{children['count']:,}" in reply


def test_insight_questions_do_not_lose_the_partial_customer(dialogue):
    turn = ask(dialogue, "age 38, income 71k", "what do VIP customers buy?")
    assert turn.profile["age"] == 38 and turn.profile["income"] == 71000


def test_the_strategy_cites_the_numbers_behind_it(dialogue):
    turn = ask(dialogue, VIP)
    assert turn.result.segment_key == "vip_customers"
    assert "What the data says" in turn.reply
    assert "%" in turn.reply.split("What the data says")[1]


def test_descriptions_are_still_descriptions(dialogue):
    turn = ask(dialogue, VIP)
    assert turn.complete

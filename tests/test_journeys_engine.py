"""The pure journey interpreter, and journey validation."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from boomerang.core.errors import ValidationFailed
from boomerang.core.localtime import next_local_time
from boomerang.journeys.definition import parse_journey
from boomerang.journeys.engine import (
    AskApproval,
    Converted,
    Decided,
    Evaluate,
    Evaluated,
    Happened,
    SendMessage,
    Start,
    State,
    Wake,
    choose,
    step,
)

T0 = datetime(2024, 5, 1, 12, 0)
CART = {
    "name": "cart",
    "trigger": {"event": "Product Added", "key": "cart_id"},
    "goal": {"event": "Order Completed", "within_days": 7, "same_key": True},
    "start": "wait",
    "nodes": {
        "wait": {
            "type": "wait_event",
            "event": "Checkout Started",
            "same_key": True,
            "timeout_hours": 1,
            "next": "remind",
            "on_event": "done",
        },
        "remind": {"type": "send", "channel": "email", "fallback": ["telegram"], "template": "cart_1", "next": "later"},
        "later": {"type": "wait", "hours": 24, "next": "ab"},
        "ab": {
            "type": "split",
            "variants": [{"name": "a", "weight": 1, "next": "offer"}, {"name": "b", "weight": 1, "next": "done"}],
        },
        "offer": {"type": "send", "channel": "email", "template": "cart_2", "next": "done"},
        "done": {"type": "exit"},
    },
}


def test_abandoned_cart_reminds_after_the_timeout_then_converts():
    j = parse_journey(CART)
    state, commands = step(j, None, Start("i1", "c1", key="k1"), T0)
    assert (state.status, state.node, state.wake_at, commands) == ("waiting", "wait", T0 + timedelta(hours=1), [])
    same, nothing = step(j, state, Wake(), T0 + timedelta(minutes=30))  # not due yet
    assert same.status == "waiting" and nothing == []
    state, commands = step(j, state, Wake(), T0 + timedelta(hours=1))
    assert [type(c) for c in commands] == [SendMessage] and commands[0].channels == ("email", "telegram")
    assert commands[0].key == "i1:remind:1" and state.node == "later"
    state, commands = step(j, state, Happened("Order Completed", key="k1", revenue=42.0), T0 + timedelta(hours=3))
    assert state.outcome == "converted" and commands == [Converted("later", "i1:goal", 42.0, "i1:remind:1")]
    again, more = step(j, state, Wake(), T0 + timedelta(days=2))
    assert again.status == "done" and more == []


def test_an_order_of_another_cart_is_not_the_goal_and_a_checkout_ends_the_wait():
    j = parse_journey(CART)
    state, _ = step(j, None, Start("i1", "c1", key="k1"), T0)
    state, commands = step(j, state, Happened("Order Completed", key="other"), T0 + timedelta(minutes=5))
    assert state.status == "waiting" and commands == []
    state, commands = step(j, state, Happened("Checkout Started", key="k1"), T0 + timedelta(minutes=10))
    assert state.outcome == "exited" and commands == []


def test_state_survives_a_round_trip_through_json():
    j = parse_journey(CART)
    state, _ = step(j, None, Start("i1", "c1", key="k1", timezone="Europe/Kyiv"), T0)
    assert State.from_data(state.to_data()) == state


def test_split_is_stable_and_follows_the_weights():
    j = parse_journey(CART)
    split = j.nodes["ab"]
    picks = Counter(choose(split, f"c{i}", "cart:ab").name for i in range(4000))
    assert abs(picks["a"] - 2000) < 150
    assert {choose(split, "c7", "cart:ab").name for _ in range(5)} == {choose(split, "c7", "cart:ab").name}


def test_control_group_messages_are_marked_held_out():
    j = parse_journey(CART)
    state, _ = step(j, None, Start("i1", "c1", key="k1", control=True), T0)
    _, commands = step(j, state, Wake(), T0 + timedelta(hours=1))
    assert commands[0].held_out is True


def test_approval_and_branch_wait_for_their_answer():
    j = parse_journey(
        {
            "name": "vip",
            "trigger": {"segment": "high_value"},
            "start": "check",
            "nodes": {
                "check": {"type": "branch", "rule": {"reachable": "email"}, "yes": "ask", "no": "end"},
                "ask": {"type": "approval", "note": "a gift for a VIP", "next": "gift", "on_reject": "end"},
                "gift": {"type": "send", "channel": "email", "template": "vip_gift", "next": "end"},
                "end": {"type": "exit"},
            },
        }
    )
    state, commands = step(j, None, Start("i2", "c2"), T0)
    assert state.status == "evaluating" and isinstance(commands[0], Evaluate)
    state, commands = step(j, state, Evaluated(True), T0)
    assert state.status == "approval" and isinstance(commands[0], AskApproval)
    state, commands = step(j, state, Decided(True, template="vip_gift_personal"), T0)
    assert commands[0].template == "vip_gift_personal" and state.outcome == "exited"
    rejected, _ = step(j, step(j, step(j, None, Start("i3", "c3"), T0)[0], Evaluated(True), T0)[0], Decided(False), T0)
    assert rejected.path[-1] == "end"


def test_wait_until_a_local_time():
    assert next_local_time(datetime(2024, 5, 1, 12, 0), "10:00", "Europe/Kyiv") == datetime(2024, 5, 2, 7, 0)
    assert next_local_time(datetime(2024, 5, 1, 6, 0), "10:00", "Europe/Kyiv") == datetime(2024, 5, 1, 7, 0)
    assert next_local_time(datetime(2024, 5, 1, 6, 0), "10:00", "Nowhere/Else") == datetime(2024, 5, 1, 10, 0)


@pytest.mark.parametrize(
    "change, field, reason",
    [
        ({"start": "nowhere"}, "start", "unknown node"),
        (
            {
                "nodes": {
                    **CART["nodes"],
                    "remind": {"type": "send", "channel": "fax", "template": "t", "next": "later"},
                }
            },
            "nodes.remind.channel",
            "unknown channel",
        ),
        ({"nodes": {**CART["nodes"], "later": {"type": "wait", "next": "ab"}}}, "nodes.later", "positive duration"),
        ({"nodes": {**CART["nodes"], "orphan": {"type": "exit"}}}, "nodes", "never reached"),
        ({"trigger": {"evnt": "x"}}, "trigger", "exactly one of"),
        ({"control_share": 1.5}, "control_share", "less than 1"),
        (
            {
                "nodes": {
                    **CART["nodes"],
                    "later": {"type": "branch", "rule": {"reachable": "fax"}, "yes": "ab", "no": "done"},
                }
            },
            "nodes.later.rule.reachable",
            "unknown channel",
        ),
    ],
)
def test_validation_names_the_field(change, field, reason):
    with pytest.raises(ValidationFailed) as info:
        parse_journey({**CART, **change})
    error = info.value.errors[0]
    assert error["field"] == field and reason in error["reason"], error


SEND_THEN_EXIT = {
    "name": "back",
    "trigger": {"event": "Back In Stock"},
    "goal": {"event": "Order Completed", "within_days": 7},
    "start": "tell",
    "nodes": {
        "tell": {"type": "send", "channel": "email", "template": "back_1", "next": "end"},
        "end": {"type": "exit"},
    },
}


def test_the_goal_window_outlives_the_path_and_counts_once():
    j = parse_journey(SEND_THEN_EXIT)
    state, _ = step(j, None, Start("i1", "c1", control=True), T0)
    assert (state.status, state.outcome) == ("done", "exited")
    order = Happened("Order Completed", revenue=30.0)
    state, commands = step(j, state, order, T0 + timedelta(seconds=80))
    assert commands == [Converted("end", "i1:goal", 30.0, "i1:tell:1")]
    assert (state.status, state.outcome) == ("done", "converted")
    _, again = step(j, state, order, T0 + timedelta(days=1))
    assert again == []  # a second order converts the instance no second time
    late, commands = step(j, step(j, None, Start("i2", "c1"), T0)[0], order, T0 + timedelta(days=7, seconds=1))
    assert commands == [] and late.outcome == "exited"


def test_the_goal_window_can_start_at_the_last_message():
    j = parse_journey(
        {
            **CART,
            "goal": {"event": "Order Completed", "within_days": 1, "same_key": True, "counted_from": "last_message"},
        }
    )
    state, _ = step(j, None, Start("i1", "c1", key="k1"), T0)
    state, _ = step(j, state, Wake(), T0 + timedelta(hours=1))  # the reminder goes at T0 + 1 h
    assert state.last_message_at == T0 + timedelta(hours=1)
    assert State.from_data(state.to_data()) == state
    _, commands = step(j, state, Happened("Order Completed", key="k1"), T0 + timedelta(hours=24, minutes=30))
    assert [type(c) for c in commands] == [Converted]  # 23.5 h after the message, 24.5 h after entry

"""Journeys' and campaigns' results as tests, read from the stores: the journey against its control group and the
global one, per send node and per split variant, with the lift over time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from tests.test_dashboard import _login, _user
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.api.app import create_app
from boomerang.cli.app import app as cli
from boomerang.core.errors import ValidationFailed
from boomerang.customers.models import Customer
from boomerang.journeys import rollout, service
from boomerang.journeys.definition import parse_journey
from boomerang.journeys.engine import choose
from boomerang.messaging import attribution
from boomerang.messaging.models import Message
from boomerang.orders.models import Order
from experiments_data import N, load_ab_journey


@pytest.fixture
def journey(ws):
    load_ab_journey(ws)
    return ws


def test_journey_results_have_intervals_per_group_node_and_variant(journey):
    with journey.uow.session() as s:
        result = service.results(s, "ab_welcome", global_control_share=0.05)
    overall = result["journey"]
    groups = overall["groups"]
    assert groups["control"]["units"] == N // 5
    assert groups["treated"]["units"] + groups["global control"]["units"] + groups["control"]["units"] == N
    vs_control, vs_global = overall["comparisons"]
    assert (vs_control["treated"], vs_control["baseline"]) == ("treated", "control")
    conversion = vs_control["conversion"]
    assert conversion["verdict"] == "better" and conversion["low"] > 0 and conversion["sequential"]
    expected = groups["treated"]["conversion_rate"] - groups["control"]["conversion_rate"]
    assert conversion["effect"] == pytest.approx(expected, abs=1e-6)
    assert vs_control["revenue_per_unit"]["method"] == "confidence sequence, CUPED"
    assert vs_global["baseline"] == "global control"
    assert overall["sample_ratio"]["alarm"] is False
    days = [point["day"] for point in overall["over_time"]]
    assert days == sorted(days) and overall["over_time"][-1]["effect"] == pytest.approx(conversion["effect"])
    assert set(result["nodes"]) == {"mail_short", "mail_long"}
    long_vs_short = result["splits"]["ab"]["comparisons"][0]
    assert (long_vs_short["treated"], long_vs_short["baseline"]) == ("long", "short")
    assert long_vs_short["conversion"]["effect"] > 0.05
    assert result["splits"]["ab"]["sample_ratio"]["alarm"] is False


def _message(n: int, cid: str, source: str, at: datetime, status: str = "delivered") -> Message:
    return Message(
        key=f"m{n}",
        source=source,
        customer_id=cid,
        channels=["email"],
        channel="email",
        template="t",
        category="triggered",
        status=status,
        send_after=at,
        created_at=at,
        sent_at=at,
    )


def test_last_touch_attribution_credits_the_last_message_within_the_window(ws):
    day = datetime(2026, 4, 10, 12, 0)
    with ws.uow.session() as s, s.begin():
        for n in range(4):
            s.add(Customer(id=f"a{n}", created_at=day, updated_at=day))
        s.add_all(
            [
                _message(1, "a0", "campaign:spring", day - timedelta(days=3)),
                _message(2, "a0", "journey:welcome", day - timedelta(days=1)),  # the last touch
                _message(3, "a1", "campaign:spring", day - timedelta(days=6)),  # outside 5 days
                _message(4, "a2", "journey-test:welcome", day - timedelta(hours=1)),  # a test run counts for nothing
                _message(5, "a3", "campaign:spring", day - timedelta(hours=2), status="suppressed"),  # never left
                _message(6, "a3", "campaign:spring", day - timedelta(days=2)),
            ]
        )
        for n, cid in enumerate(("a0", "a1", "a2", "a3")):
            s.add(
                Order(
                    id=f"p{n}",
                    customer_id=cid,
                    status="completed",
                    total=10.0 * (n + 1),
                    source="test",
                    attributes={},
                    placed_at=day,
                    updated_at=day,
                )
            )
        s.add(
            Order(
                id="cancelled",
                customer_id="a0",
                status="cancelled",
                total=99.0,
                source="test",
                attributes={},
                placed_at=day,
                updated_at=day,
            )
        )
    with ws.uow.session() as s:
        found = attribution.summary(s, since=datetime(2026, 4, 1), until=datetime(2026, 5, 1))
        wider = attribution.summary(s, since=datetime(2026, 4, 1), until=datetime(2026, 5, 1), window_days=7)
        with pytest.raises(ValidationFailed):
            attribution.summary(s, since=datetime(2026, 4, 1), until=datetime(2026, 5, 1), window_days=0)
    assert {r["source"]: r["revenue"] for r in found["by_source"]} == {"journey:welcome": 10.0, "campaign:spring": 40.0}
    assert found["revenue"] == 100.0 and found["by_channel"] == [{"channel": "email", "orders": 2, "revenue": 50.0}]
    (april,) = found["months"]
    assert april["by_kind"] == {"triggered": 10.0, "mass": 40.0, "other": 0.0, "none": 50.0} and not april["partial"]
    assert april["shares"]["none"] == 0.5
    assert {r["source"]: r["revenue"] for r in wider["by_source"]}["campaign:spring"] == 60.0  # a1's order too


def test_surfaces_list_every_test_with_its_verdict(journey, tmp_path):
    runner, home = CliRunner(), ["--home", str(journey.settings.home)]
    listed = runner.invoke(cli, [*home, "experiments", "list", "--days", "3660", "--json"])
    assert listed.exit_code == 0, listed.output
    (test,) = json.loads(listed.output)["tests"]
    assert test["kind"] == "journey" and test["name"] == "ab_welcome" and test["units"] == N
    assert test["comparisons"][0]["verdict"] == "better"
    shown = runner.invoke(cli, [*home, "report", "incrementality", "--from", "2026-01-01", "--to", "2026-06-30"])
    assert shown.exit_code == 0 and "treated vs control" in shown.output and "better" in shown.output
    stats = runner.invoke(cli, [*home, "journeys", "stats", "ab_welcome"])
    assert "Split ab: its variants" in stats.output and "long vs short" in stats.output
    planned = runner.invoke(cli, [*home, "experiments", "plan", "--base-rate", "0.05", "--lift", "0.01", "--json"])
    assert json.loads(planned.output)["customers"] > 14_000
    wrong = runner.invoke(cli, [*home, "experiments", "plan", "--base-rate", "5"])
    assert wrong.exit_code == 2 and "--base-rate" in wrong.output

    _user(journey, "vera", "viewer")
    client = TestClient(create_app(journey, background=False))
    assert _login(client, "vera").status_code == 303
    page = client.get("/experiments", params={"base_rate": 5, "lift": 1}).text
    assert 'data-test="journey:ab_welcome|treated"' in page and "verdict-better" in page
    assert 'id="plan-answer"' in page and "if you read it once at the end" in page
    assert 'id="plan-error"' in client.get("/experiments", params={"base_rate": 5}).text
    assert client.get("/experiments", params={"base_rate": "many"}).status_code == 400
    journey_page = client.get("/journeys/ab_welcome").text
    assert "Split ab: its variants" in journey_page and "The intervals name a winner: long." in journey_page
    api = Api(journey)
    answer = api.api("GET", "/journeys/ab_welcome/results")
    assert answer.status_code == 200 and answer.json()["splits"]["ab"]["comparisons"][0]["treated"] == "long"
    assert api.api("GET", "/journeys/nowhere/results").status_code == 404


def test_a_split_rolls_out_its_winner_once_the_interval_says_so(journey):
    with journey.uow.session() as s, s.begin():
        definition = service.get(s, "ab_welcome").definition
        nodes = {**definition["nodes"], "ab": {**definition["nodes"]["ab"], "roll_out": True}}
        service.save(s, {**definition, "nodes": nodes}, now=datetime(2026, 5, 20))
        assert rollout.roll_out_winners(s, global_control_share=0.05, now=datetime(2026, 5, 21)) == []  # a draft
        service.set_status(s, "ab_welcome", "active", now=datetime(2026, 5, 21))
        rolled = rollout.roll_out_winners(s, global_control_share=0.05, now=datetime(2026, 5, 21))
        assert rolled == [{"journey": "ab_welcome", "node": "ab", "winner": "long"}]
        row = service.get(s, "ab_welcome")
        split = service.definition_of(s, row.id, row.version).nodes["ab"]
        assert row.version == 3 and row.status == "active" and split.winner == "long"
        assert {choose(split, f"c{n}", "ab_welcome:ab").name for n in range(50)} == {"long"}
        assert rollout.roll_out_winners(s, global_control_share=0.05, now=datetime(2026, 5, 22)) == []  # once
        assert service.results(s, "ab_welcome", global_control_share=0.05)["splits"]["ab"]["rolled_out"] == "long"
    with pytest.raises(ValidationFailed) as refused:
        parse_journey({**definition, "nodes": {**nodes, "ab": {**nodes["ab"], "winner": "medium"}}})
    assert "winner" in refused.value.errors[0]["field"] and "medium" in refused.value.errors[0]["reason"]

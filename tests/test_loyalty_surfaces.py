"""The loyalty ledger from outside (issue 15): orders from every path earn (tracking API, REST, importers), the
API and the CLI, merges and privacy requests, the scheduled round, and migration 0016 on both stores."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from importlib import resources

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.bootstrap import Workspace
from boomerang.cli.app import app as cli
from boomerang.config import LoyaltySettings, Settings
from boomerang.core.clock import FixedClock
from boomerang.customers import privacy
from boomerang.customers import service as customers
from boomerang.customers.models import Consent, Customer
from boomerang.db import create_sql_engine
from boomerang.events import bulk
from boomerang.journeys import runtime
from boomerang.journeys import service as journeys
from boomerang.loyalty import checkout, programme, service
from boomerang.loyalty.models import LoyaltyEntry, LoyaltyLedgerEntry, LoyaltyLot, LoyaltyTransaction
from boomerang.orchestration import rounds

T0 = datetime(2026, 5, 1, 12, 0)


def _customer(ws, cid: str, external_id: str | None = None) -> str:
    with ws.uow.session() as s:
        s.add(Customer(id=cid, external_id=external_id, attributes={}, created_at=T0, updated_at=T0))
    return cid


def _lookup(ws, text: str) -> str:
    with ws.uow.session() as s:
        return customers.lookup(s, text).id


def _award(ws, cid: str, points: int, key: str | None = None) -> None:
    with ws.uow.session() as s:
        service.write(s, [service.points_row(key or f"gift:{cid}", cid, points, source="test", now=ws.now())])


def _proof(ws) -> dict:
    with ws.uow.session() as s:
        return service.check(s)


def _wallet(ws, cid: str, now: datetime | None = None) -> service.Wallet:
    with ws.uow.session() as s:
        return service.wallets(s, [cid], now=now or ws.now())[cid]


def _ledger_size(ws) -> tuple[int, int]:
    with ws.uow.session() as s:
        return (
            s.scalar(sa.select(sa.func.count()).select_from(LoyaltyTransaction)),
            s.scalar(sa.select(sa.func.count()).select_from(LoyaltyLedgerEntry)),
        )


@pytest.fixture
def api(ws) -> Api:
    ws.clock = FixedClock(T0)
    return Api(ws)


# -- orders, whichever way they come -----------------------------------------------------------------------------


def test_tracked_orders_earn_and_refunds_take_back(api):
    order = {"order_id": "t-1", "total": 300, "currency": "EUR", "products": [{"sku": "A", "price": 300}]}
    api.track("track", {"userId": "u-1", "event": "Order Completed", "properties": order}, server=True)
    api.track("track", {"userId": "u-1", "event": "Order Completed", "properties": order}, server=True)  # again
    cid = _lookup(api.ws, "u-1")
    assert _wallet(api.ws, cid).pending == 15
    refund = {"order_id": "t-1", "total": 100}
    api.track("track", {"userId": "u-1", "event": "Order Refunded", "properties": refund}, server=True)
    assert _wallet(api.ws, cid).pending == 10  # a third of 15 taken back
    api.track("track", {"userId": "u-1", "event": "Order Cancelled", "properties": {"order_id": "t-1"}}, server=True)
    assert _wallet(api.ws, cid).pending == 0 and _proof(api.ws)["ok"]


def test_rest_orders_earn_and_their_refunds_take_back(api):
    body = {"id": "r-1", "external_id": "u-rest", "total": 80.0, "lines": [{"sku": "B", "price": 40, "quantity": 2}]}
    assert api.api("POST", "/orders", json=body).status_code == 200
    cid = _lookup(api.ws, "u-rest")
    assert _wallet(api.ws, cid).pending == 4  # at once: the REST call applies its event in its own transaction
    assert api.api("POST", "/orders/r-1/refunds", json={"amount": 40.0, "refund_id": "x"}).status_code == 200
    assert _wallet(api.ws, cid).pending == 2


def test_imported_history_rebuilds_balances_without_telling_anyone(api):
    ws = api.ws
    chunk = bulk.Chunk(
        customers=pd.DataFrame({"external_id": ["imp-1", "imp-2"]}),
        orders=pd.DataFrame(
            {
                "id": ["i-1", "i-2", "i-3"],
                "external_id": ["imp-1", "imp-1", "imp-2"],
                "status": ["paid", "paid", "returned"],
                "placed_at": [T0 - timedelta(days=500), T0 - timedelta(days=30), T0 - timedelta(days=3)],
                "total": [100.0, 200.0, 60.0],
                "refunded_total": [0.0, 0.0, 60.0],
            }
        ),
    )
    for _ in range(2):  # importing again changes nothing
        bulk.load(ws.uow, ws.log, chunk, source="import", now=ws.now())
    cid, other = _lookup(ws, "imp-1"), _lookup(ws, "imp-2")
    assert _ledger_size(ws) == (2, 4)  # i-1 and i-2 earned; i-3 came back whole: nothing
    assert rounds.scheduled(ws)["loyalty"] == {"customers": 1, "expire": 1}  # i-1's points expired long ago
    wallet = _wallet(ws, cid)
    assert (wallet.points, wallet.pending) == (10, 0) and _wallet(ws, other).points == 0
    with ws.log.connect() as conn:  # and no event says anything about points
        assert conn.execute("SELECT count(*) FROM events WHERE event LIKE '%Loyalty%'").fetchone()[0] == 0
    assert _proof(ws)["ok"]


def test_a_journey_awards_points_into_the_ledger_once(api):
    ws = api.ws
    cid = _customer(ws, "cus_journey")
    journey = {
        "name": "bonus",
        "trigger": {"manual": True},
        "control_share": 0,
        "start": "give",
        "nodes": {
            "give": {"type": "loyalty", "action": "award_points", "points": 25, "next": "end"},
            "end": {"type": "exit"},
        },
    }
    with ws.uow.session() as s:
        s.add(Consent(customer_id=cid, channel="email", granted=True, source="test", updated_at=T0))
        journeys.save(s, journey, now=T0)
        journeys.set_status(s, "bonus", "active", now=T0)
    with ws.uow.session() as s:
        runtime.enter_manually(s, "bonus", cid, now=T0)
    rounds.tick(ws)
    wallet = _wallet(ws, cid)
    assert (wallet.points, wallet.expiring_at) == (25, None)  # a year to spend them: not expiring soon
    with ws.uow.session() as s:
        (lot,) = service.account(s, cid, now=T0, settings=ws.settings.loyalty)["lots"]
        (item,) = service.history(s, cid)["items"]
    assert lot["expires_at"] == T0 + timedelta(days=365) and (item["kind"], item["source"]) == (
        "award",
        "journey:bonus",
    )


def test_the_workspace_lends_its_programme_to_the_event_pipeline(tmp_path):
    settings = Settings(home=tmp_path / "ws", loyalty=LoyaltySettings(cashback_percent=10))
    ws = Workspace(settings)
    with ws.uow.session() as s:
        assert programme.of(s).cashback_percent == 10


# -- the API -----------------------------------------------------------------------------------------------------


def test_the_api_shows_points_and_runs_a_checkout(api):
    cid = _customer(api.ws, "cus_api")
    _award(api.ws, cid, 120)
    account = api.api("GET", f"/loyalty/customers/{cid}").json()
    assert (account["balance"], account["pending"], account["held"], account["unit"]) == (120, 0, 0, "points")
    assert account["lots"][0]["remaining"] == 120 and account["totals"]["earned"] == 120
    estimate = api.api("POST", "/loyalty/estimate", json={"customer_id": cid, "lines": [{"price": 50, "quantity": 2}]})
    assert estimate.status_code == 200 and (estimate.json()["earn"], estimate.json()["max_spend"]) == (5, 30)
    body = {"customer_id": cid, "order_id": "api-o1", "points": 30, "total": 100.0}
    held = api.api("POST", "/loyalty/holds", json=body)
    assert held.status_code == 200 and held.json()["state"] == "held"
    assert api.api("POST", "/loyalty/holds", json=body).json() == held.json()
    assert api.api("GET", f"/loyalty/customers/{cid}").json()["held"] == 30
    assert api.api("POST", "/loyalty/holds/api-o1/confirm").json()["state"] == "confirmed"
    adjusted = api.api("POST", "/loyalty/adjust", json={"customer_id": cid, "points": -5, "reason": "typo"})
    assert adjusted.status_code == 200 and adjusted.json()["points"] == -5
    history = api.api("GET", f"/loyalty/customers/{cid}/history").json()["items"]
    assert [(i["kind"], i["change"]) for i in history] == [
        ("adjust", {"wallet": -5}),
        ("redeem", {"held": -30}),
        ("hold", {"wallet": -30, "held": 30}),
        ("award", {"wallet": 120}),
    ]
    body["order_id"] = "api-o2"
    assert api.api("POST", "/loyalty/holds", json=body).status_code == 200
    assert api.api("POST", "/loyalty/holds/api-o2/cancel").json()["state"] == "cancelled"
    assert api.api("GET", f"/loyalty/customers/{cid}").json()["balance"] == 85
    assert api.client.get(f"/api/loyalty/customers/{cid}").status_code == 401  # the secret key is required


def test_bad_input_is_refused_naming_the_field_and_the_ledger_is_untouched(api):
    cid = _customer(api.ws, "cus_bad")
    _award(api.ws, cid, 20)
    body = {"customer_id": cid, "order_id": "bad-1", "points": 5, "total": 100.0}
    api.api("POST", "/loyalty/holds", json={**body, "order_id": "bad-late"})
    before = _ledger_size(api.ws)
    refusals = [
        ("POST", "/loyalty/holds", {**body, "points": -5}, 400, "points"),
        ("POST", "/loyalty/holds", {**body, "points": 2.5}, 400, "points"),
        ("POST", "/loyalty/holds", {**body, "points": "lots"}, 400, "points"),
        ("POST", "/loyalty/holds", {**body, "customer_id": "cus_nobody"}, 404, "customer_id"),
        ("POST", "/loyalty/holds", {**body, "points": 19, "total": 20.0}, 400, "points"),  # beyond the 30% share
        ("POST", "/loyalty/holds", {**body, "points": 16, "total": 1000.0}, 409, "points"),  # beyond the balance
        ("POST", "/loyalty/holds", {**body, "order_id": "bad-late", "points": 6}, 409, "order_id"),
        ("POST", "/loyalty/holds/nothing-held/confirm", None, 404, "order_id"),
        ("POST", "/loyalty/estimate", {"customer_id": cid}, 400, "body"),
        ("POST", "/loyalty/estimate", {"customer_id": cid, "total": -1}, 400, "total"),
        ("POST", "/loyalty/adjust", {"customer_id": cid, "points": 0, "reason": "none"}, 400, "points"),
        ("POST", "/loyalty/adjust", {"customer_id": cid, "points": 1.5, "reason": "half"}, 400, "points"),
        ("POST", "/loyalty/adjust", {"customer_id": cid, "points": -16, "reason": "too many"}, 409, "points"),
        ("POST", "/loyalty/adjust", {"customer_id": cid, "points": 5}, 400, "reason"),
        ("GET", "/loyalty/customers/cus_nobody", None, 404, "customer_id"),
    ]
    for method, path, payload, status, field in refusals:
        response = api.api(method, path, json=payload)
        assert response.status_code == status, (path, payload, response.text)
        answer = response.json()
        assert answer["success"] is False and answer["errors"][0]["field"] == field, (path, payload, answer)
    api.ws.clock = FixedClock(T0 + timedelta(minutes=20))
    late = api.api("POST", "/loyalty/holds/bad-late/confirm")
    assert late.status_code == 409 and "expired" in late.json()["errors"][0]["reason"]
    assert _ledger_size(api.ws) == before and _wallet(api.ws, cid).points == 20


# -- the CLI -----------------------------------------------------------------------------------------------------


def test_the_cli_adjusts_shows_checks_and_expires(ws):
    _customer(ws, "cus_cli", "u-cli")
    runner, home = CliRunner(), ["--home", str(ws.settings.home)]

    def run(*args: str) -> dict:
        result = runner.invoke(cli, [*home, "loyalty", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert run("adjust", "u-cli", "40", "--reason", "welcome", "--reference", "w1")["points"] == 40
    assert run("adjust", "u-cli", "40", "--reason", "welcome", "--reference", "w1")["new"] is False
    assert run("adjust", "cus_cli", "-15", "--reason", "correction")["points"] == -15
    balance = run("balance", "u-cli")
    assert (balance["customer_id"], balance["balance"], len(balance["lots"])) == ("cus_cli", 25, 1)
    assert [i["kind"] for i in run("history", "u-cli")["items"]] == ["adjust", "adjust"]
    assert run("check")["ok"] is True
    assert run("expire") == {"customers": 0}
    shown = runner.invoke(cli, [*home, "loyalty", "balance", "u-cli"])
    assert shown.exit_code == 0 and "25 points to spend" in shown.output
    for args in (["adjust", "u-cli", "-100", "--reason", "x"], ["adjust", "nobody", "5", "--reason", "x"]):
        refused = runner.invoke(cli, [*home, "loyalty", *args])
        assert refused.exit_code == 2 and "error" in refused.output
    assert runner.invoke(cli, [*home, "loyalty", "adjust", "u-cli", "2.5", "--reason", "x"]).exit_code == 2
    assert run("balance", "u-cli")["balance"] == 25


# -- merges and privacy ------------------------------------------------------------------------------------------


def test_a_merge_moves_lots_and_holds_as_a_transfer(api):
    ws = api.ws
    keep, gone = _customer(ws, "cus_keep"), _customer(ws, "cus_gone")
    _award(ws, keep, 10)
    _award(ws, gone, 50)
    with ws.uow.session() as s:
        checkout.hold(s, gone, "m-1", 20, 100.0, settings=ws.settings.loyalty, now=ws.now())
    with ws.uow.session() as s:
        customers.merge(s, keep, gone, now=ws.now())
    wallet = _wallet(ws, keep)
    assert (wallet.points, wallet.held) == (40, 20) and _wallet(ws, gone).points == 0
    with ws.uow.session() as s:
        assert checkout.confirm(s, "m-1", now=ws.now())["customer_id"] == keep
        kinds = [i["kind"] for i in service.history(s, keep)["items"]]
    assert kinds == ["redeem", "transfer", "hold", "award", "award"] and _proof(ws)["ok"]


def test_export_and_erasure_keep_the_ledger_whole_under_the_pseudonym(api):
    ws = api.ws
    cid = _customer(ws, "cus_erased")
    _award(ws, cid, 30, key=f"welcome:{cid}")
    with ws.uow.session() as s:
        checkout.hold(s, cid, "e-1", 10, 100.0, settings=ws.settings.loyalty, now=ws.now())
        doc = privacy.export(s, ws.log, cid, actor="test", now=ws.now())
    assert [e["movement"] for e in doc["loyalty"]] == ["award", "hold"] and doc["loyalty_holds"][0]["points"] == 10
    with ws.uow.session() as s:
        done = privacy.erase(s, ws.log, cid, actor="test", now=ws.now())
    assert done["ended"]["points"] == 30
    with ws.engine.connect() as conn:
        for table in (LoyaltyTransaction, LoyaltyLedgerEntry, LoyaltyLot, LoyaltyEntry):
            text = json.dumps([list(r) for r in conn.execute(sa.select(table)).all()], default=str)
            assert cid not in text, table.__tablename__
    assert _proof(ws)["ok"]


# -- migrations 0016 and 0017 ---------------------------------------------------------------------------------------


def _alembic(conn) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("boomerang") / "migrations" / "ops"))
    cfg.attributes["connection"] = conn
    return cfg


STAND_IN = [
    ("journey:i1:n1", "cus_m1", "points", 50, None, T0 - timedelta(days=2)),
    ("journey:i1:n2", "cus_m1", "promo_code", None, "BMR-KEEP1", T0 - timedelta(days=2)),
    ("journey:i2:n1", "cus_m2", "points", 30, None, T0 - timedelta(days=5)),
    ("erasure:x", "cus_m2", "points", -30, None, T0 - timedelta(days=1)),
    ("journey:i3:n1", "cus_m2", "points", 12, None, T0),
]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_migration_moves_the_stand_in_points_into_lots(store, request, tmp_path):
    url = f"sqlite:///{tmp_path / 'm.sqlite'}" if store == "sqlite" else request.getfixturevalue("pg_url")
    engine = create_sql_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic(conn), "0015")
        conn.execute(
            sa.text(
                "INSERT INTO loyalty_entries (key, customer_id, kind, points, code, source, at) "
                "VALUES (:key, :cid, :kind, :points, :code, 'journey:x', :at)"
            ),
            [dict(zip(("key", "cid", "kind", "points", "code", "at"), row)) for row in STAND_IN],
        )
        command.upgrade(_alembic(conn), "head")  # 0016 moves them; 0017 moves the code into promo_codes
    with Session(engine) as s:
        wallets = service.wallets(s, ["cus_m1", "cus_m2"], now=T0)
        assert (wallets["cus_m1"].points, wallets["cus_m2"].points) == (50, 12)
        assert [c.code for c in wallets["cus_m1"].codes] == ["BMR-KEEP1"]
        assert service.check(s)["ok"] and service.check(s)["transactions"] == 4
        service.write(s, [service.points_row("journey:i1:n1", "cus_m1", 50, source="journey:x", now=T0)])
        assert service.wallets(s, ["cus_m1"], now=T0)["cus_m1"].points == 50  # the same key awards nothing again
        service.write(s, [service.points_row("journey:i9:n1", "cus_m1", 5, source="journey:x", now=T0)])
        s.commit()
    with engine.begin() as conn:
        command.downgrade(_alembic(conn), "0015")
        back = dict(
            conn.execute(sa.text("SELECT customer_id, points FROM loyalty_entries WHERE kind = 'points'")).all()
        )
    assert back == {"cus_m1": 55, "cus_m2": 12}
    engine.dispose()

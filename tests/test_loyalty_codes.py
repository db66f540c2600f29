"""Promo codes (issue 15): generation, uploads and low stock, validation with every refusal, the hold -> confirm
pattern (idempotent by order id, expired holds give their use back, concurrent holds on PostgreSQL), orders'
coupons, journeys' personal codes in wallets, the API and the CLI."""

from __future__ import annotations

import json
import logging
import math
import threading
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from api_helpers import Api
from boomerang.cli.app import app as cli
from boomerang.core.clock import FixedClock
from boomerang.core.errors import Conflict, NotFound, ValidationFailed
from boomerang.customers.models import Customer
from boomerang.loyalty import codes, codes_redeem, service
from boomerang.loyalty.models import PromoCode, PromoRedemption

T0 = datetime(2026, 5, 1, 12, 0)


def _customer(ws, cid: str, external_id: str | None = None) -> str:
    with ws.uow.session() as s:
        s.add(Customer(id=cid, external_id=external_id, attributes={}, created_at=T0, updated_at=T0))
    return cid


def _pool(ws, **spec) -> dict:
    with ws.uow.session() as s:
        return codes.create_pool(s, {"name": "spring", "value": 10, **spec}, now=T0)


def _code(ws, pool: str = "spring") -> str:
    with ws.uow.session() as s:
        return s.scalar(sa.select(PromoCode.code).join_from(PromoCode, codes.POOLS).where(codes.POOLS.c.name == pool))


def test_codes_are_readable_long_enough_and_unique():
    made = codes.random_codes(20_000, prefix="SPR-")
    assert len(set(made)) == 20_000 and all(c.startswith("SPR-") and len(c) == 16 for c in made)
    body = "".join(c[4:] for c in made)
    assert set(body) <= set(codes.ALPHABET) and not set(body) & set("0O1IL")
    assert set(body) == set(codes.ALPHABET)  # every symbol turns up
    assert codes.MIN_LENGTH * math.log2(len(codes.ALPHABET)) >= 50 and codes.MIN_LENGTH == 11
    with pytest.raises(ValidationFailed):
        codes.random_codes(1, length=10)


def test_generation_fills_a_pool_with_exactly_the_count(any_ws):
    _pool(any_ws, prefix="spr-", uses_per_code=3)
    seen = []
    with any_ws.uow.session() as s:
        data = codes.generate(s, "spring", 120_000, now=T0, progress=seen.append)
    assert data["codes"] == data["unused"] == 120_000 and sum(seen) == 120_000
    with any_ws.uow.session() as s:
        assert s.scalar(sa.select(sa.func.count(sa.distinct(PromoCode.code)))) == 120_000
        assert s.scalar(sa.select(sa.func.min(PromoCode.max_uses))) == 3
    assert _code(any_ws).startswith("SPR-")
    with any_ws.uow.session() as s, pytest.raises(ValidationFailed):
        codes.generate(s, "spring", 0, now=T0)


def test_upload_skips_repeats_and_low_stock_is_said_and_logged_once(ws, caplog):
    _pool(ws, name="partner", kind="uploaded", low_stock_alert=3)
    text = "code\nAAA-111\naaa-111\nBBB-222,10%\n"
    with ws.uow.session() as s:
        done = codes.upload(s, "partner", codes.parse_upload(text), now=T0)
    assert (done["uploaded"], done["skipped"], done["unused"]) == (2, 1, 2)
    with caplog.at_level(logging.WARNING, logger="boomerang.loyalty.codes"):
        for _ in range(2):
            with ws.uow.session() as s:
                assert codes.show_pool(s, "partner", now=T0)["low_stock"] is True
    assert sum("partner" in r.message for r in caplog.records) == 1
    _customer(ws, "cus_up")
    with ws.uow.session() as s:
        first = codes.personal(s, "partner", "cus_up", now=T0)
        assert first["code"] == "AAA-111" and first["customer_id"] == "cus_up"
        codes.personal(s, "partner", "cus_up", now=T0)
    with ws.uow.session() as s, pytest.raises(Conflict, match="no unused codes"):
        codes.personal(s, "partner", "cus_up", now=T0)
    with ws.uow.session() as s:
        codes.upload(s, "partner", ["C-1234", "C-2345", "C-3456", "C-4567"], now=T0)
        assert codes.list_pools(s, now=T0)[0]["low_stock"] is False


def test_every_refusal_names_its_reason(any_ws):
    ws = any_ws
    _customer(ws, "cus_a")
    _customer(ws, "cus_b")
    _pool(ws, min_order=50, valid_until=T0 + timedelta(days=10))
    _pool(ws, name="later", valid_from=T0 + timedelta(days=1))
    with ws.uow.session() as s:
        codes.generate(s, "spring", 3, now=T0)
        codes.generate(s, "later", 1, now=T0)
        mine = codes.personal(s, "spring", "cus_a", now=T0)["code"]
    free, later = _code(ws), _code(ws, "later")
    with ws.uow.session() as s:
        s.execute(sa.update(PromoCode).where(PromoCode.code == free).values(uses=1))
    cases = [
        ("NOPE-NOPE", "cus_a", 100, T0, NotFound, "unknown code"),
        (mine, "cus_a", 100, T0 + timedelta(days=11), Conflict, "expired"),
        (later, "cus_a", 100, T0, Conflict, "not valid before"),
        (free, "cus_a", 100, T0, Conflict, "used up"),
        (mine, "cus_b", 100, T0, Conflict, "not this customer's"),
        (mine, "cus_a", 49.99, T0, ValidationFailed, "below the code's minimum"),
        (mine, "nobody", 100, T0, NotFound, "unknown customer"),
        (mine, "cus_a", -1, T0, ValidationFailed, "amount"),
    ]
    for code, cid, total, now, error, reason in cases:
        with ws.uow.session() as s, pytest.raises(error, match=reason):
            codes_redeem.validate(s, code, cid, total, now=now)
    with ws.uow.session() as s:
        ok = codes_redeem.validate(s, mine.lower(), "cus_a", 80, now=T0)
    assert (ok["discount"], ok["uses_left"], ok["discount_kind"]) == (8.0, 1, "percent")


def _held(ws, code: str, order: str, cid: str = "cus_a", now: datetime = T0, ttl: float | None = None) -> dict:
    with ws.uow.session() as s:
        return codes_redeem.hold(s, code, cid, order, 100, now=now, ttl_minutes=ttl)


def _uses(ws, code: str) -> int:
    with ws.uow.session() as s:
        return s.scalar(sa.select(PromoCode.uses).where(PromoCode.code == code))


def test_hold_confirm_cancel_expiry_and_idempotency(any_ws):
    ws = any_ws
    _customer(ws, "cus_a")
    _customer(ws, "cus_b")
    _pool(ws, discount_kind="fixed", value=15)
    with ws.uow.session() as s:
        codes.generate(s, "spring", 1, now=T0)
    code = _code(ws)
    first = _held(ws, code, "o-1")
    assert first["state"] == "held" and first["discount"] == 15 and _held(ws, code, "o-1") == first
    with pytest.raises(Conflict, match="used up"):
        _held(ws, code, "o-2")
    with pytest.raises(Conflict, match="another customer"):
        _held(ws, code, "o-1", cid="cus_b")
    with ws.uow.session() as s:  # cancelled: the use comes back, again changes nothing
        assert codes_redeem.cancel(s, "o-1", now=T0)["redemptions"][0]["state"] == "cancelled"
    with ws.uow.session() as s:
        codes_redeem.cancel(s, "o-1", now=T0)
    assert _uses(ws, code) == 0
    _held(ws, code, "o-2", ttl=5)
    with ws.uow.session() as s, pytest.raises(Conflict, match="expired"):  # too late to confirm
        codes_redeem.confirm(s, "o-2", now=T0 + timedelta(minutes=6))
    assert _uses(ws, code) == 0
    _held(ws, code, "o-3", ttl=5)
    later = T0 + timedelta(minutes=10)
    assert _held(ws, code, "o-4", now=later)["state"] == "held"  # o-3's hold lapsed: its use went back
    with ws.uow.session() as s:
        done = codes_redeem.confirm(s, "o-4", now=later)
    with ws.uow.session() as s:
        assert codes_redeem.confirm(s, "o-4", now=later) == done and done["redemptions"][0]["state"] == "confirmed"
    assert _uses(ws, code) == 1
    with ws.uow.session() as s:
        states = dict(s.execute(sa.select(PromoRedemption.order_id, PromoRedemption.state)).all())
    assert states == {"o-1": "cancelled", "o-2": "expired", "o-3": "expired", "o-4": "confirmed"}
    with ws.uow.session() as s, pytest.raises(NotFound):
        codes_redeem.confirm(s, "o-none", now=T0)


def test_the_round_gives_back_the_uses_of_lapsed_holds(any_ws):
    ws = any_ws
    _customer(ws, "cus_a")
    _pool(ws, discount_kind="fixed", value=15)
    with ws.uow.session() as s:
        codes.generate(s, "spring", 1, now=T0)
    code = _code(ws)
    _held(ws, code, "o-1", ttl=5)
    later = T0 + timedelta(minutes=10)
    with ws.uow.session() as s, pytest.raises(Conflict, match="used up"):  # validation does not take locks
        codes_redeem.validate(s, code, "cus_a", 100, now=later)
    assert codes_redeem.release_expired(ws.uow, T0 + timedelta(minutes=1)) == 0  # not yet
    assert codes_redeem.release_expired(ws.uow, later, chunk=1) == 1
    assert codes_redeem.release_expired(ws.uow, later) == 0 and _uses(ws, code) == 0
    with ws.uow.session() as s:
        assert codes_redeem.validate(s, code, "cus_a", 100, now=later)["uses_left"] == 1


def test_concurrent_holds_on_a_single_use_code_one_wins(pg_ws):
    ws = pg_ws
    for i in range(8):
        _customer(ws, f"cus_{i}")
    _pool(ws)
    with ws.uow.session() as s:
        codes.generate(s, "spring", 1, now=T0)
    code = _code(ws)
    start, results = threading.Barrier(8), [None] * 8

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = _held(ws, code, f"race-{i}", cid=f"cus_{i}")
        except Conflict as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, dict) for r in results) == 1 and _uses(ws, code) == 1
    assert all("used up" in str(r) for r in results if isinstance(r, Conflict))


@pytest.fixture
def api(ws) -> Api:
    ws.clock = FixedClock(T0)
    return Api(ws)


def test_an_order_completed_with_a_coupon_redeems_it_once_and_a_cancel_frees_it(api):
    _pool(api.ws, uses_per_code=2)
    with api.ws.uow.session() as s:
        codes.generate(s, "spring", 1, now=T0)
    code = _code(api.ws)
    order = {"order_id": "c-1", "total": 120, "coupon": code.lower(), "products": [{"sku": "A", "price": 120}]}
    for _ in range(2):  # the same order again: redeemed once
        api.track("track", {"userId": "u-c", "event": "Order Completed", "properties": order}, server=True)
    assert _uses(api.ws, code) == 1
    with api.ws.uow.session() as s:
        row = s.execute(sa.select(PromoRedemption)).scalar_one()
        assert (row.order_id, row.state, row.amount) == ("c-1", "confirmed", 12.0)
    api.track("track", {"userId": "u-c", "event": "Order Cancelled", "properties": {"order_id": "c-1"}}, server=True)
    assert _uses(api.ws, code) == 0


def test_journeys_personal_codes_live_in_the_pool_and_show_in_wallets(ws):
    _customer(ws, "cus_j")
    row = service.code_row("journey:i1:n2", "cus_j", 15.0, 30, source="journey:x", now=T0)
    assert row["code"].startswith("BMR-") and len(row["code"]) == 16
    with ws.uow.session() as s:
        service.write(s, [row])
        service.write(s, [service.code_row("journey:i1:n2", "cus_j", 15.0, 30, source="journey:x", now=T0)])
    with ws.uow.session() as s:
        wallet = service.wallets(s, ["cus_j"], now=T0)["cus_j"]
        assert [(c.code, c.discount_percent) for c in wallet.codes] == [(row["code"], 15.0)]
        assert service.wallets(s, ["cus_j"], now=T0 + timedelta(days=31))["cus_j"].codes == []
        assert codes.show_pool(s, "journeys", now=T0)["personal"] == 1
    with ws.uow.session() as s:
        codes_redeem.hold(s, row["code"], "cus_j", "j-1", 10, now=T0)
        codes_redeem.confirm(s, "j-1", now=T0)
    with ws.uow.session() as s:
        assert service.wallets(s, ["cus_j"], now=T0)["cus_j"].codes == []  # used: no longer offered


def test_the_api_answers_and_refuses(api):
    made = api.api("POST", "/loyalty/pools", json={"name": "web", "value": 20, "low_stock_alert": 5})
    assert made.status_code == 200, made.text
    again = api.api("POST", "/loyalty/pools", json={"name": "web", "value": 20})
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "name"
    bad = api.api("POST", "/loyalty/pools", json={"name": "x", "value": 120})
    assert bad.status_code == 400 and bad.json()["success"] is False and bad.json()["errors"][0]["field"] == "value"
    assert api.api("POST", "/loyalty/pools/web/generate", json={"count": 3}).json()["codes"] == 3
    assert api.api("GET", "/loyalty/pools/web").json()["low_stock"] is True
    assert api.api("GET", "/loyalty/pools/none").status_code == 404
    api.api("POST", "/loyalty/pools", json={"name": "up", "kind": "uploaded", "value": 5})
    sent = api.api(
        "POST", "/loyalty/pools/up/upload", content="X-1111\nX-2222\n", headers={"content-type": "text/plain"}
    )
    assert sent.json()["uploaded"] == 2
    assert api.api("POST", "/loyalty/pools/up/upload", json=["X-3333", "X-1111"]).json()["skipped"] == 1
    assert [p["name"] for p in api.api("GET", "/loyalty/pools").json()] == ["up", "web"]
    _customer(api.ws, "cus_api")
    mine = api.api("POST", "/loyalty/codes/personal", json={"pool": "up", "customer_id": "cus_api"}).json()
    assert mine["code"] == "X-1111"
    body = {"code": "x-1111", "customer_id": "cus_api", "total": 40}
    assert api.api("POST", "/loyalty/codes/validate", json=body).json()["discount"] == 2.0
    other = api.api("POST", "/loyalty/codes/validate", json={**body, "code": "nope-1"})
    assert other.status_code == 404 and other.json()["errors"] == [{"field": "code", "reason": "unknown code 'NOPE-1'"}]
    held = api.api("POST", "/loyalty/codes/holds", json={**body, "order_id": "a-1"})
    assert held.status_code == 200 and held.json()["state"] == "held"
    assert api.api("POST", "/loyalty/codes/holds/a-1/confirm").json()["redemptions"][0]["state"] == "confirmed"
    used = api.api("POST", "/loyalty/codes/holds", json={**body, "order_id": "a-2"})
    assert used.status_code == 409 and used.json()["errors"][0]["reason"] == "the code is used up"
    assert api.api("POST", "/loyalty/codes/holds/a-9/cancel").status_code == 404


def test_the_cli_with_json(ws, tmp_path):
    runner, home = CliRunner(), ["--home", str(ws.settings.home)]

    def run(*args: str) -> dict | list:
        result = runner.invoke(cli, [*home, "codes", *args, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert run("create-pool", "cli", "--value", "5", "--low-stock", "30")["name"] == "cli"
    assert run("generate", "cli", "25")["generated"] == 25
    run("create-pool", "ext", "--kind", "uploaded", "--discount", "free_shipping", "--value", "0")
    (tmp_path / "codes.csv").write_text("code,note\nEXT-0001,a\nEXT-0002,b\n")
    assert run("upload", "ext", str(tmp_path / "codes.csv"))["uploaded"] == 2
    assert run("show", "ext")["low_stock"] is False and len(run("pools")) == 2
    valid = run("validate", "ext-0001", "--total", "30")
    assert valid["free_shipping"] is True and valid["discount"] == 0
    shown = runner.invoke(cli, [*home, "codes", "pools"])
    assert shown.exit_code == 0 and "low stock: cli has 25 unused codes, below 30" in shown.output
    refused = runner.invoke(cli, [*home, "codes", "validate", "NOPE-9", "--total", "3"])
    assert refused.exit_code != 0 and "unknown code" in refused.output

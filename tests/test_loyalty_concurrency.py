"""Many clients holding and confirming against one balance at once never spend a point twice (issue 15): each hold
locks the customer's balance row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's writers take turns)."""

from __future__ import annotations

import random
import threading
from datetime import datetime

import sqlalchemy as sa

from boomerang.core.clock import FixedClock
from boomerang.core.errors import Conflict
from boomerang.customers.models import Customer
from boomerang.loyalty import checkout, service
from boomerang.loyalty.models import LoyaltyHold, LoyaltyTransaction

T0 = datetime(2026, 5, 1, 12, 0)
BALANCE = 1000
CLIENTS = 12
TRIES = 15


def _shop(ws) -> str:
    ws.clock = FixedClock(T0)
    with ws.uow.session() as s:
        s.add(Customer(id="cus_race", attributes={}, created_at=T0, updated_at=T0))
    with ws.uow.session() as s:
        service.write(s, [service.points_row("seed", "cus_race", BALANCE, source="test", now=T0)])
    return "cus_race"


def _together(target, count: int) -> list:
    """Run `target(i)` in `count` threads released at once; what each returned (or raised)."""
    start, results = threading.Barrier(count), [None] * count

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_holds_and_confirms_never_overspend(any_ws):
    ws = any_ws
    cid = _shop(ws)
    programme = ws.settings.loyalty

    def client(i: int) -> tuple[int, int]:
        rng, spent, refused = random.Random(i), 0, 0
        for n in range(TRIES):
            points, order = rng.randint(5, 40), f"race-{i}-{n}"
            try:
                with ws.uow.session() as s:
                    checkout.hold(s, cid, order, points, 10_000.0, settings=programme, now=T0)
                with ws.uow.session() as s:
                    checkout.confirm(s, order, now=T0)
                spent += points
            except Conflict:
                refused += 1
        return spent, refused

    results = _together(client, CLIENTS)
    assert all(isinstance(r, tuple) for r in results), results
    spent = sum(r[0] for r in results)
    assert spent <= BALANCE and sum(r[1] for r in results) > 0  # the balance ran out: some were refused
    with ws.uow.session() as s:
        wallet = service.wallets(s, [cid], now=T0)[cid]
        confirmed = s.scalar(sa.select(sa.func.sum(LoyaltyHold.points)).where(LoyaltyHold.state == "confirmed"))
        proof = service.check(s)
    assert wallet.points == BALANCE - spent and wallet.held == 0 and confirmed == spent
    assert proof["ok"], proof["problems"]


def test_the_same_hold_sent_by_many_clients_at_once_is_one_hold(any_ws):
    ws = any_ws
    cid = _shop(ws)

    def client(_: int) -> dict:
        with ws.uow.session() as s:
            return checkout.hold(s, cid, "same-order", 100, 10_000.0, settings=ws.settings.loyalty, now=T0)

    results = _together(client, 8)
    assert all(isinstance(r, dict) and r["points"] == 100 for r in results), results
    with ws.uow.session() as s:
        holds = s.scalar(
            sa.select(sa.func.count()).select_from(LoyaltyTransaction).where(LoyaltyTransaction.kind == "hold")
        )
        wallet = service.wallets(s, [cid], now=T0)[cid]
        assert service.check(s)["ok"]
    assert holds == 1 and (wallet.points, wallet.held) == (BALANCE - 100, 100)

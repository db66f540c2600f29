"""The points ledger (issue 15): double entry, lots, expiry, orders that earn and give back, checkout holds.

Property tests (hypothesis) drive random sequences of operations through the services and ask `check` to replay
the ledger after each: every transaction sums to zero, no balance ever went below zero, the cached balances equal
the replay. Each example works on customers and orders of its own, so examples share one workspace."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from boomerang.config import LoyaltySettings
from boomerang.core.clock import FixedClock
from boomerang.core.errors import BoomerangError, Conflict, NotFound, ValidationFailed
from boomerang.customers.models import Customer
from boomerang.db import UnitOfWork
from boomerang.loyalty import checkout, programme, service
from boomerang.loyalty import orders as loyalty_orders
from boomerang.loyalty.models import LoyaltyBalance, LoyaltyLot, LoyaltyTransaction
from boomerang.loyalty.orders import OrderState

T0 = datetime(2026, 5, 1, 12, 0)
PROGRAMME = LoyaltySettings()  # 5% cashback, 14 days pending, 365 days to expire, 30% share, 15-minute holds
IDS = itertools.count()
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture
def shop(ws):
    ws.clock = FixedClock(T0)
    return ws


def customer(ws, at: datetime = T0) -> str:
    cid = f"cus_l{next(IDS):06d}"
    with ws.uow.session() as s:
        s.add(Customer(id=cid, attributes={}, created_at=at, updated_at=at))
    return cid


def order(
    oid: str, cid: str | None, total: float, *, refunded: float = 0.0, status: str = "paid", at: datetime = T0
) -> OrderState:
    return OrderState(oid, cid, status, total, refunded, at)


def follow(ws, *orders: OrderState, now: datetime = T0) -> dict:
    with ws.uow.session() as s:
        return loyalty_orders.follow(s, orders, now=now)


def award(ws, cid: str, points: int, *, at: datetime = T0, key: str | None = None) -> None:
    with ws.uow.session() as s:
        service.write(s, [service.points_row(key or f"award:{cid}:{at}", cid, points, source="test", now=at)])


def account(ws, cid: str, now: datetime = T0) -> dict:
    with ws.uow.session() as s:
        return service.account(s, cid, now=now, settings=PROGRAMME)


def cached(ws, cid: str) -> dict:
    with ws.uow.session() as s:
        row = s.get(LoyaltyBalance, cid)
        return {a: getattr(row, a) for a in ("wallet", "pending", "held", "earned", "redeemed", "expired", "adjusted")}


def proof(ws) -> dict:
    with ws.uow.session() as s:
        return service.check(s)


def kinds(ws, cid: str) -> list[str]:
    with ws.uow.session() as s:
        return [i["kind"] for i in reversed(service.history(s, cid, limit=1000)["items"])]


def hold(ws, cid, oid, points, total, now=T0, **kw) -> dict:
    with ws.uow.session() as s:
        return checkout.hold(s, cid, oid, points, total, settings=PROGRAMME, now=now, **kw)


def confirm(ws, oid, now=T0) -> dict:
    with ws.uow.session() as s:
        return checkout.confirm(s, oid, now=now)


def cancel(ws, oid, now=T0) -> dict:
    with ws.uow.session() as s:
        return checkout.cancel(s, oid, now=now)


def ledger_rows(ws) -> tuple[int, int]:
    with ws.uow.session() as s:
        return (
            s.scalar(sa.select(sa.func.count()).select_from(LoyaltyTransaction)),
            s.scalar(sa.select(sa.func.sum(LoyaltyBalance.wallet))) or 0,
        )


# -- orders earn, and give back ----------------------------------------------------------------------------------


def test_an_order_earns_its_cashback_once_as_a_pending_lot_that_becomes_spendable(shop):
    cid = customer(shop)
    assert follow(shop, order("e1", cid, 200.0)) == {"earn": 1}
    assert follow(shop, order("e1", cid, 200.0)) == {}  # a retry earns nothing
    mine = account(shop, cid)
    assert (mine["balance"], mine["pending"], mine["totals"]["earned"]) == (0, 10, 10)
    (lot,) = mine["lots"]
    assert lot["available_at"] == T0 + timedelta(days=14) and lot["expires_at"] == T0 + timedelta(days=14 + 365)
    later = T0 + timedelta(days=14)
    with shop.uow.session() as s:
        assert service.wallets(s, [cid], now=later)[cid].points == 10  # read as of then, before any round ran
    assert service.expire(shop.uow, later) == {"customers": 1, "mature": 1}
    assert cached(shop, cid)["wallet"] == 10 and cached(shop, cid)["pending"] == 0
    assert service.expire(shop.uow, later) == {"customers": 0}  # nothing due twice
    assert kinds(shop, cid) == ["earn", "mature"] and proof(shop)["ok"]


def test_a_partial_refund_takes_back_its_share_and_never_more_than_was_earned(shop):
    cid = customer(shop)
    follow(shop, order("r1", cid, 200.0))  # 10 points
    follow(shop, order("r1", cid, 200.0, refunded=50.0, status="partially_refunded"))  # a quarter: 2 (rounded down)
    assert account(shop, cid)["pending"] == 8
    follow(shop, order("r1", cid, 200.0, refunded=150.0, status="partially_refunded"))  # three quarters: 7 in all
    assert account(shop, cid)["pending"] == 3
    follow(shop, order("r1", cid, 200.0, refunded=400.0, status="returned"))  # more than paid: all 10, no more
    follow(shop, order("r1", cid, 200.0, status="cancelled"))
    mine = account(shop, cid)
    assert (mine["pending"], mine["balance"], mine["totals"]["earned"]) == (0, 0, 0)
    assert kinds(shop, cid) == ["earn", "reverse", "reverse", "reverse"]
    assert proof(shop)["ok"]


def test_a_refund_after_the_points_were_spent_takes_back_only_what_the_lot_still_holds(shop):
    cid = customer(shop)
    paid = T0 - timedelta(days=20)
    follow(shop, order("s1", cid, 200.0, at=paid))  # 10 points, spendable since 6 days
    hold(shop, cid, "s2", 8, 100.0)
    confirm(shop, "s2")
    follow(shop, order("s1", cid, 200.0, status="cancelled"))
    with shop.uow.session() as s:
        reverse = s.scalar(sa.select(LoyaltyTransaction).where(LoyaltyTransaction.kind == "reverse"))
    assert reverse.detail == {"reversed_to": 10, "unrecovered": 8}
    assert account(shop, cid)["balance"] == 0 and cached(shop, cid)["wallet"] == 0
    assert proof(shop)["ok"]


def test_cancelling_an_order_paid_with_points_gives_them_back(shop):
    cid = customer(shop)
    award(shop, cid, 40)
    hold(shop, cid, "p1", 30, 100.0)
    confirm(shop, "p1")
    follow(shop, order("p1", cid, 100.0, refunded=50.0, status="partially_refunded"))  # half back: 15
    assert account(shop, cid)["balance"] == 10 + 15
    follow(shop, order("p1", cid, 100.0, status="cancelled"))  # the rest
    assert account(shop, cid)["balance"] == 40
    assert account(shop, cid)["totals"]["redeemed"] == 0
    assert proof(shop)["ok"]


def test_an_order_first_seen_cancelled_or_unpaid_earns_nothing(shop):
    cid = customer(shop)
    assert follow(shop, order("n1", cid, 100.0, status="cancelled"), order("n2", cid, 100.0, status="placed")) == {}
    assert follow(shop, order("n3", None, 100.0)) == {}  # nobody to earn it
    assert follow(shop, order("n4", cid, 10.0)) == {}  # 5% of 10 is half a point: nothing
    assert account(shop, cid)["pending"] == 0


def test_the_session_lends_the_programme_the_workspace_was_given(shop):
    cid = customer(shop)
    generous = LoyaltySettings(cashback_percent=10, pending_days=0, expiry_days=0)
    uow = UnitOfWork(shop.engine, info=programme.session_info(generous))
    with uow.session() as s:
        loyalty_orders.follow(s, [order("g1", cid, 100.0)], now=T0)
    (lot,) = account(shop, cid)["lots"]
    assert (lot["amount"], lot["state"], lot["expires_at"]) == (10, "available", None)


# -- lots and expiry ---------------------------------------------------------------------------------------------


def test_spending_takes_the_nearest_expiring_lots_first(shop):
    cid = customer(shop)
    for days_ago, points in ((300, 10), (100, 10), (340, 10)):  # expire in 65, 265 and 25 days
        award(shop, cid, points, at=T0 - timedelta(days=days_ago))
    hold(shop, cid, "x1", 15, 100.0)
    lots = {lot["expires_at"]: lot["remaining"] for lot in account(shop, cid)["lots"]}
    assert lots == {T0 + timedelta(days=65): 5, T0 + timedelta(days=265): 10}  # the one expiring first went whole
    assert account(shop, cid)["expiring_soon"] == {"points": 0, "first_at": None, "within_days": 30}
    cancel(shop, "x1")  # back to the very lots they came from
    lots = {lot["expires_at"]: lot["remaining"] for lot in account(shop, cid)["lots"]}
    assert lots == {T0 + timedelta(days=25): 10, T0 + timedelta(days=65): 10, T0 + timedelta(days=265): 10}
    assert account(shop, cid)["expiring_soon"]["points"] == 10
    assert proof(shop)["ok"]


def test_expiry_writes_one_deduction_per_lot(shop):
    cid = customer(shop)
    award(shop, cid, 7, at=T0 - timedelta(days=360))  # expires in 5 days
    award(shop, cid, 9, at=T0 - timedelta(days=350))  # in 15
    hold(shop, cid, "h1", 3, 100.0)  # from the first
    confirm(shop, "h1")
    assert service.expire(shop.uow, T0 + timedelta(days=6)) == {"customers": 1, "expire": 1}
    with shop.uow.session() as s:
        first = s.scalar(sa.select(LoyaltyTransaction).where(LoyaltyTransaction.kind == "expire"))
        lot = s.scalar(sa.select(LoyaltyLot).order_by(LoyaltyLot.id))
    assert first.reference == f"lot:{lot.id}:expire" and (lot.state, lot.remaining) == ("expired", 0)
    assert account(shop, cid, T0 + timedelta(days=6))["balance"] == 9
    assert service.expire(shop.uow, T0 + timedelta(days=6)) == {"customers": 0}
    assert service.expire(shop.uow, T0 + timedelta(days=16)) == {"customers": 1, "expire": 1}
    mine = account(shop, cid, T0 + timedelta(days=16))
    assert mine["balance"] == 0 and mine["totals"] == {"earned": 16, "redeemed": 3, "expired": 13, "adjusted": 0}
    assert proof(shop)["ok"]


def test_points_given_back_to_a_lot_that_expired_meanwhile_are_expired(shop):
    cid = customer(shop)
    award(shop, cid, 10, at=T0 - timedelta(days=364))  # expires tomorrow
    hold(shop, cid, "late", 5, 100.0, ttl_minutes=3 * 24 * 60)
    later = T0 + timedelta(days=2)
    service.expire(shop.uow, later)  # the lot's 5 left expire
    cancel(shop, "late", now=later)
    mine = account(shop, cid, later)
    assert mine["balance"] == 0 and mine["totals"]["expired"] == 10
    assert proof(shop)["ok"]


# -- checkout holds ----------------------------------------------------------------------------------------------


def test_estimate_says_what_an_order_earns_and_the_most_points_may_pay(shop):
    cid = customer(shop)
    award(shop, cid, 100)
    with shop.uow.session() as s:
        small = checkout.estimate(s, cid, 50.0, settings=PROGRAMME, now=T0)
        large = checkout.estimate(s, cid, 1000.0, settings=PROGRAMME, now=T0)
    assert small == {
        "customer_id": cid,
        "total": 50.0,
        "earn": 2,
        "available": 100,
        "share_limit": 15,
        "max_spend": 15,
        "point_value": 1.0,
        "unit": "points",
    }
    assert (large["share_limit"], large["max_spend"], large["earn"]) == (300, 100, 50)


def test_hold_then_confirm_spends_and_both_are_idempotent_by_order_id(shop):
    cid = customer(shop)
    award(shop, cid, 50)
    first = hold(shop, cid, "c1", 20, 100.0)
    assert hold(shop, cid, "c1", 20, 100.0) == first  # the same request: the same hold
    assert (first["state"], account(shop, cid)["balance"], account(shop, cid)["held"]) == ("held", 30, 20)
    with pytest.raises(Conflict) as other:
        hold(shop, cid, "c1", 25, 100.0)
    assert other.value.field == "order_id"
    assert confirm(shop, "c1")["state"] == "confirmed" and confirm(shop, "c1")["state"] == "confirmed"
    mine = account(shop, cid)
    assert (mine["balance"], mine["held"], mine["totals"]["redeemed"]) == (30, 0, 20)
    with pytest.raises(Conflict):
        cancel(shop, "c1")  # spent: the order's cancellation gives them back, not the hold's
    assert kinds(shop, cid) == ["award", "hold", "redeem"]
    assert proof(shop)["ok"]


def test_hold_then_cancel_gives_the_points_back(shop):
    cid = customer(shop)
    award(shop, cid, 50)
    hold(shop, cid, "k1", 10, 100.0)
    assert cancel(shop, "k1")["state"] == "cancelled" and cancel(shop, "k1")["state"] == "cancelled"
    assert account(shop, cid)["balance"] == 50
    with pytest.raises(Conflict):
        confirm(shop, "k1")
    assert proof(shop)["ok"]


def test_an_expired_hold_releases_its_points_lazily_and_in_the_round(shop):
    cid = customer(shop)
    award(shop, cid, 50)
    hold(shop, cid, "t1", 10, 100.0)
    hold(shop, cid, "t2", 10, 100.0)
    later = T0 + timedelta(minutes=16)
    with shop.uow.session() as s:
        assert service.wallets(s, [cid], now=later)[cid].held == 0  # read as of then: nothing held any more
    with pytest.raises(Conflict) as late:
        confirm(shop, "t1", now=later)  # released on the spot (and refused: the request's writes roll back)
    assert "expired" in late.value.message
    assert service.expire(shop.uow, later) == {"customers": 1, "release": 2}
    assert (cached(shop, cid)["wallet"], cached(shop, cid)["held"], cached(shop, cid)["redeemed"]) == (50, 0, 0)
    assert cancel(shop, "t2", now=later)["state"] == "expired"
    assert kinds(shop, cid) == ["award", "hold", "hold", "release", "release"]
    other = customer(shop)
    award(shop, other, 10)
    hold(shop, other, "t3", 3, 100.0)
    assert account(shop, other, later)["balance"] == 10  # a read settles what is due: released
    assert cached(shop, other)["wallet"] == 10 and proof(shop)["ok"]


def test_bad_holds_are_refused_and_the_ledger_is_untouched(shop):
    cid = customer(shop)
    award(shop, cid, 20)
    before = ledger_rows(shop)
    refusals = [
        (lambda: hold(shop, cid, "b1", 0, 100.0), ValidationFailed, "points"),
        (lambda: hold(shop, cid, "b1", -5, 100.0), ValidationFailed, "points"),
        (lambda: hold(shop, cid, "b1", 2.5, 100.0), ValidationFailed, "points"),
        (lambda: hold(shop, cid, "b1", 5, -1.0), ValidationFailed, "total"),
        (lambda: hold(shop, "cus_nobody", "b1", 5, 100.0), NotFound, "customer_id"),
        (lambda: hold(shop, cid, "b1", 31, 100.0), ValidationFailed, "points"),  # beyond the 30% share
        (lambda: hold(shop, cid, "b1", 25, 1000.0), Conflict, "points"),  # beyond the balance
        (lambda: confirm(shop, "never-held"), NotFound, "order_id"),
    ]
    for attempt, error, field in refusals:
        with pytest.raises(error) as refused:
            attempt()
        assert refused.value.errors[0]["field"] == field
    assert ledger_rows(shop) == before and account(shop, cid)["balance"] == 20


def test_adjustments_add_a_lot_or_take_nearest_expiry_first_with_a_reason(shop):
    cid = customer(shop)
    with shop.uow.session() as s:
        service.adjust(s, cid, 30, reason="goodwill", reference="t-1", now=T0, settings=PROGRAMME)
        again = service.adjust(s, cid, 30, reason="goodwill", reference="t-1", now=T0, settings=PROGRAMME)
        service.adjust(s, cid, -12, reason="mistake", now=T0, settings=PROGRAMME)
    assert again["new"] is False and account(shop, cid)["balance"] == 18
    for points, reason, error in (
        (-19, "too much", Conflict),
        (0, "zero", ValidationFailed),
        (5, " ", ValidationFailed),
    ):
        with pytest.raises(error), shop.uow.session() as s:
            service.adjust(s, cid, points, reason=reason, now=T0, settings=PROGRAMME)
    with shop.uow.session() as s:
        items = service.history(s, cid)["items"]
    assert [(i["kind"], i["reason"], i["change"]) for i in items] == [
        ("adjust", "mistake", {"wallet": -12}),
        ("adjust", "goodwill", {"wallet": 30}),
    ]
    assert account(shop, cid)["totals"]["adjusted"] == 18 and proof(shop)["ok"]


def test_a_journey_award_is_written_once_per_key(shop):
    cid = customer(shop)
    award(shop, cid, 25, key="journey-key-1")
    award(shop, cid, 25, key="journey-key-1")
    with shop.uow.session() as s:
        wallet = service.wallets(s, [cid, "cus_other"], now=T0)
    assert wallet[cid].points == 25 and wallet["cus_other"].points == 0


# -- properties --------------------------------------------------------------------------------------------------

AMOUNTS = st.sampled_from([0.0, 9.99, 20.0, 35.5, 100.0, 240.0, 999.0])
ORDER_EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("completed"), st.integers(0, 2), st.just(0.0)),
        st.tuples(st.just("refund"), st.integers(0, 2), st.sampled_from([5.0, 20.0, 50.0, 120.0])),
        st.tuples(st.just("cancel"), st.integers(0, 2), st.just(0.0)),
    ),
    max_size=12,
)


def _orders_after(events: list[tuple], totals: list[float], suffix: str, cid: str) -> list[OrderState]:
    """Each order's state after each event: its total once completed, the refunds seen so far (each once, by its
    position: a retried refund is the same refund), cancelled for good once cancelled."""
    seen: dict[int, dict] = {}
    out = []
    for position, (kind, number, value) in events:
        o = seen.setdefault(number, {"completed": False, "refunds": {}, "cancelled": False})
        if kind == "completed":
            o["completed"] = True
        elif kind == "cancel":
            o["cancelled"] = True
        else:
            o["refunds"][position] = value
        total, refunded = (totals[number] if o["completed"] else 0.0), sum(o["refunds"].values())
        status = "cancelled" if o["cancelled"] else "returned" if refunded >= total and refunded else "paid"
        status = "partially_refunded" if status == "paid" and refunded else status
        out.append(order(f"o{number}{suffix}", cid, total, refunded=refunded, status=status))
    return out


def _balances(ws, cid: str) -> dict:
    return cached(ws, cid)


@PROPERTY
@given(events=ORDER_EVENTS, totals=st.lists(AMOUNTS, min_size=3, max_size=3), data=st.data())
def test_orders_in_any_order_with_retries_land_on_the_same_balances(shop, events, totals, data):
    positioned = list(enumerate(events))
    shuffled = data.draw(st.permutations(positioned))
    retried = shuffled + data.draw(st.lists(st.sampled_from(shuffled), max_size=4)) if shuffled else []
    a, b = customer(shop), customer(shop)
    for state in _orders_after(positioned, totals, f"-{a}", a):
        follow(shop, state)
    for state in _orders_after(retried, totals, f"-{b}", b):
        follow(shop, state)
    if events:
        assert _balances(shop, a) == _balances(shop, b)
    with shop.uow.session() as s:
        lots = s.scalars(sa.select(LoyaltyLot).where(LoyaltyLot.customer_id.in_((a, b)))).all()
    for lot in lots:  # refunds never take back more than was earned
        assert 0 <= lot.reversed <= lot.amount and 0 <= lot.remaining <= lot.amount - lot.reversed
    result = proof(shop)
    assert result["ok"], result["problems"]


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(0, 1), AMOUNTS),
        st.tuples(st.just("refund"), st.integers(0, 1), st.sampled_from([0.25, 0.5, 1.0])),
        st.tuples(st.just("cancel_order"), st.integers(0, 1), st.sampled_from(["o", "h"])),
        st.tuples(st.just("award"), st.integers(0, 1), st.integers(1, 60)),
        st.tuples(st.just("adjust"), st.integers(0, 1), st.integers(-40, 40)),
        st.tuples(st.just("hold"), st.integers(0, 1), st.integers(-1, 30)),
        st.tuples(st.just("confirm"), st.integers(0, 1), st.just(0)),
        st.tuples(st.just("cancel_hold"), st.integers(0, 1), st.just(0)),
        st.tuples(st.just("wait_days"), st.integers(0, 1), st.sampled_from([0.01, 1, 15, 200, 400])),
        st.tuples(st.just("expire"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


@PROPERTY
@given(operations=OPERATIONS)
def test_any_sequence_keeps_the_ledger_balanced_and_never_negative(shop, operations):
    cid = customer(shop)
    now, paid = T0, {}
    award(shop, cid, 100)  # something to spend from the start
    for kind, n, value in operations:
        oid, hid = f"o{n}-{cid}", f"h{n}-{cid}"
        try:
            if kind == "order":
                paid[oid] = value
                follow(shop, order(oid, cid, value, at=now), now=now)
            elif kind == "refund" and oid in paid:
                share = paid[oid] * value
                follow(shop, order(oid, cid, paid[oid], refunded=share, status="partially_refunded"), now=now)
            elif kind == "cancel_order":  # an order of its own, or one paid with a hold
                gone = oid if value == "o" else hid
                follow(shop, order(gone, cid, paid.get(gone, 0.0), status="cancelled", at=now), now=now)
            elif kind == "award":
                award(shop, cid, value, at=now, key=f"award:{cid}:{n}:{now}")
            elif kind == "adjust":
                with shop.uow.session() as s:
                    service.adjust(s, cid, value, reason="prop", now=now, settings=PROGRAMME)
            elif kind == "hold":
                hold(shop, cid, hid, value, 1000.0, now=now)
            elif kind == "confirm":
                confirm(shop, hid, now=now)
                paid[hid] = 1000.0
                follow(shop, order(hid, cid, 1000.0, at=now), now=now)
            elif kind == "cancel_hold":
                cancel(shop, hid, now=now)
            elif kind == "wait_days":
                now += timedelta(days=value)
            elif kind == "expire":
                service.expire(shop.uow, now)
            event(f"{kind} done")
        except BoomerangError as refused:
            event(f"{kind} refused: {type(refused).__name__}")  # nothing written (checked below with the rest)
        mine = account(shop, cid, now)
        assert min(mine["balance"], mine["pending"], mine["held"]) >= 0
    result = proof(shop)
    assert result["ok"], result["problems"]

"""The demo shop simulator: reproducible, consistent between orders and events, loadable twice, and the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from boomerang.customers.models import Consent, ConsentChange, Customer
from boomerang.demo.simulator import SimConfig, estimate_events, simulate
from boomerang.events.bulk import load
from boomerang.orchestration.status import summary
from boomerang.orders.models import Order, OrderLine

SMALL = SimConfig(customers=300, days=120, start=date(2025, 9, 1), seed=7, chunk_events=4000)
FRAMES = ("customers", "products", "orders", "lines", "events")


def _frames(config: SimConfig) -> dict[str, pd.DataFrame]:
    chunks = list(simulate(config))
    return {
        name: pd.concat([getattr(c, name) for c in chunks if getattr(c, name) is not None], ignore_index=True)
        for name in FRAMES
    }


@pytest.fixture(scope="module")
def small() -> list:
    return list(simulate(SMALL))


@pytest.fixture
def loaded(ws, small):
    for chunk in small:
        load(ws.uow, ws.log, chunk, source="demo", now=ws.now())
    return ws


def test_the_same_seed_gives_the_same_shop_and_another_seed_another():
    config = SimConfig(customers=120, days=90, start=date(2025, 1, 1), seed=3, chunk_events=2000)
    first, again = _frames(config), _frames(config)
    for name in FRAMES:
        pd.testing.assert_frame_equal(first[name], again[name])
    other = _frames(SimConfig(customers=120, days=90, start=date(2025, 1, 1), seed=4, chunk_events=2000))
    assert first["customers"]["email"].tolist() != other["customers"]["email"].tolist()
    assert first["orders"]["total"].tolist() != other["orders"]["total"].tolist()
    assert first["events"]["message_id"].str.startswith("demo-3-").all()


def test_chunks_hold_whole_customers_and_the_estimate_is_close(small):
    assert len(small) > 1 and small[0].products is not None and all(c.products is None for c in small[1:])
    events = sum(len(c.events) for c in small)
    assert abs(estimate_events(SMALL) - events) / events < 0.2
    assert max(len(c.events) for c in small) < 3 * SMALL.chunk_events
    seen = set()
    for chunk in small:
        ids = set(chunk.customers["external_id"])
        assert not ids & seen
        seen |= ids
        assert set(chunk.orders["external_id"]) <= ids
        assert set(chunk.events["external_id"].dropna()) <= ids
        assert set(chunk.lines["order_id"]) == set(chunk.orders["id"])
    assert len(seen) == SMALL.customers and "demo-00001" in seen


def test_profiles_are_plausible(small):
    customers = pd.concat([c.customers for c in small])
    events = pd.concat([c.events for c in small])
    assert customers["email"].is_unique
    assert customers["email"].str.fullmatch(r"[a-z0-9.]+@example\.(org|com)").all()
    assert set(customers["locale"]) == {"en", "uk", "ru"}
    assert customers["first_name"].str.contains(r"[А-Яа-яІіЇїЄєҐґ]").any()  # Cyrillic names
    assert customers["birthday"].notna().mean() > 0.7
    assert customers["phone"].dropna().str.fullmatch(r"\+\d{10,14}").all()
    assert customers["telegram_chat_id"].notna().any()
    kyiv = customers[customers["country"] == "UA"]
    assert set(kyiv["timezone"]) == {"Europe/Kyiv"} and set(kyiv["locale"]) <= {"uk", "ru", "en"}
    identify = events[events["event"] == "Identify"]
    first = identify[identify["properties"].map(lambda p: "email" in p)]
    assert first["external_id"].is_unique and len(first) == SMALL.customers
    assert first["anonymous_id"].notna().all()
    assert all(isinstance(p["consents"]["email"], bool) for p in first["properties"])


def test_orders_in_the_store_agree_with_the_events_in_the_log(loaded):
    with loaded.uow.session() as session:
        orders = pd.DataFrame(
            session.execute(
                sa.select(
                    Order.id,
                    Order.status,
                    Order.total,
                    Order.subtotal,
                    Order.refunded_total,
                    Order.placed_at,
                    Customer.external_id,
                ).join(Customer, Customer.id == Order.customer_id)
            ).all(),
            columns=["id", "status", "total", "subtotal", "refunded", "placed_at", "external_id"],
        ).set_index("id")
        lines = pd.DataFrame(
            session.execute(sa.select(OrderLine.order_id, OrderLine.quantity, OrderLine.unit_price)).all(),
            columns=["order_id", "quantity", "unit_price"],
        )
        orphans = session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.customer_id.is_(None)))
    assert orphans == 0 and orders["external_id"].str.startswith("demo-").all()
    with loaded.log.connect() as conn:
        events = conn.execute(
            "SELECT event, properties->>'order_id', CAST(properties->>'total' AS DOUBLE), timestamp, user_id FROM events "
            "WHERE properties->>'order_id' IS NOT NULL AND event LIKE 'Order %'"
        ).df()
    events.columns = ["event", "order_id", "total", "timestamp", "user_id"]
    completed = events[events["event"] == "Order Completed"].set_index("order_id")
    assert set(completed.index) == set(orders.index) and completed.index.is_unique
    assert ((orders["total"] - completed["total"].reindex(orders.index)).abs() < 0.005).all()
    assert (orders["placed_at"] == completed["timestamp"].reindex(orders.index)).all()
    assert (orders["external_id"] == completed["user_id"].reindex(orders.index)).all()
    per_order = (lines["quantity"] * lines["unit_price"]).groupby(lines["order_id"]).sum()
    assert ((per_order.reindex(orders.index) - orders["subtotal"]).abs() < 0.01).all()

    def having(name: str) -> set:
        return set(events.loc[events["event"] == name, "order_id"])

    refunds = events[events["event"] == "Order Refunded"].groupby("order_id")["total"].sum()
    assert ((orders["refunded"] - refunds.reindex(orders.index).fillna(0)).abs() < 0.005).all()
    expected = pd.Series("paid", index=orders.index)
    expected[expected.index.isin(having("Order Shipped"))] = "shipped"
    expected[expected.index.isin(having("Order Delivered"))] = "delivered"
    full = orders["refunded"] >= orders["total"] - 0.005
    expected[orders["refunded"].gt(0) & full] = "returned"
    expected[orders["refunded"].gt(0) & ~full] = "partially_refunded"
    expected[expected.index.isin(having("Order Cancelled"))] = "cancelled"
    assert (orders["status"] == expected).all()
    assert {"delivered", "cancelled", "returned", "partially_refunded"} <= set(orders["status"])


def test_the_funnel_narrows_and_customers_repeat_or_not(loaded):
    data = summary(loaded.uow, loaded.log)
    counts = data["events"]["by_type"]
    assert (
        counts["Product Viewed"] >= counts["Product Added"] >= counts["Checkout Started"] >= counts["Order Completed"]
    )
    assert data["customers"]["identified"] == SMALL.customers
    assert 0.1 < data["repeat_purchase_rate"] < 0.7
    with loaded.log.connect() as conn:
        carts, bought = conn.execute(
            "SELECT count(DISTINCT properties->>'cart_id') FILTER (WHERE event = 'Product Added'), "
            "count(*) FILTER (WHERE event = 'Order Completed') FROM events"
        ).fetchone()
        per_customer = conn.execute(
            "SELECT n, count(*) FROM (SELECT user_id, count(*) AS n FROM events WHERE event = 'Order Completed' "
            "GROUP BY user_id) GROUP BY n"
        ).fetchall()
        span = conn.execute("SELECT min(timestamp), max(timestamp) FROM events").fetchone()
        before_signup = conn.execute(
            "SELECT count(*) FROM events e JOIN events i ON i.event = 'Identify' AND i.anonymous_id = e.anonymous_id "
            "WHERE e.user_id IS NULL AND e.timestamp < i.timestamp"
        ).fetchone()[0]
        surveys = conn.execute(
            "SELECT min(CAST(properties->>'score' AS INT)), max(CAST(properties->>'score' AS INT)) FROM events "
            "WHERE event = 'NPS Survey Answered'"
        ).fetchone()
    assert 0.5 < 1 - bought / carts < 0.85  # most carts are left behind
    repeats = dict(per_customer)
    assert repeats[1] > 0 and sum(v for n, v in repeats.items() if n >= 2) > 0
    assert span[0] >= pd.Timestamp(SMALL.start) and span[1] < pd.Timestamp(SMALL.start + timedelta(days=SMALL.days))
    assert before_signup > 0  # anonymous browsing, then an Identify carrying both ids
    assert 0 <= surveys[0] <= surveys[1] <= 10


def _store_matches_frames(ws, small) -> None:
    orders = pd.concat([c.orders for c in small])
    kept = orders[orders["status"] != "cancelled"]
    data = summary(ws.uow, ws.log)
    assert data["customers"]["identified"] == SMALL.customers
    assert data["orders"] == len(kept)
    assert data["revenue"] == pytest.approx((kept["total"] - kept["refunded_total"]).sum(), abs=0.01)
    assert data["events"]["total"] == sum(len(c.events) for c in small)
    profiles = pd.concat([c.customers for c in small])
    cyrillic = profiles[profiles["last_name"].str.contains(r"[А-Яа-яІіЇїЄєҐґ]")].iloc[0]
    with ws.uow.session() as session:
        stored = session.scalars(sa.select(Customer).where(Customer.external_id == cyrillic["external_id"])).one()
        assert (stored.first_name, stored.last_name, stored.email, stored.birthday, stored.timezone) == (
            cyrillic["first_name"],
            cyrillic["last_name"],
            cyrillic["email"],
            cyrillic["birthday"],
            cyrillic["timezone"],
        )


def _consents(ws) -> tuple[int, int]:
    with ws.uow.session() as session:
        return (
            session.scalar(sa.select(sa.func.count()).select_from(Consent)),
            session.scalar(sa.select(sa.func.count()).select_from(ConsentChange)),
        )


def test_browsing_before_sign_up_and_consents_belong_to_the_customer(loaded, small):
    events = pd.concat([c.events for c in small])
    signed_up = set(events.loc[events["external_id"].notna(), "anonymous_id"].dropna())
    visitors = set(events["anonymous_id"].dropna()) - signed_up
    # nobody who signed up stays anonymous
    assert summary(loaded.uow, loaded.log)["customers"]["anonymous"] == len(visitors)
    with loaded.log.connect() as conn:
        split = conn.execute(
            "SELECT count(*) FROM (SELECT anonymous_id FROM events WHERE anonymous_id IS NOT NULL "
            "GROUP BY anonymous_id HAVING count(DISTINCT customer_id) > 1)"
        ).fetchone()[0]
    assert split == 0
    current, history = _consents(loaded)
    assert current >= SMALL.customers and history >= current  # every customer answered for email at least


def test_loading_the_same_chunks_again_changes_nothing(loaded, small):
    before, consents = summary(loaded.uow, loaded.log), _consents(loaded)
    _store_matches_frames(loaded, small)
    for chunk in small:
        load(loaded.uow, loaded.log, chunk, source="demo", now=loaded.now())
    assert summary(loaded.uow, loaded.log) == before and _consents(loaded) == consents


def test_postgres_gets_the_same_shop(pg_ws, small):
    for _ in range(2):
        for chunk in small:
            load(pg_ws.uow, pg_ws.log, chunk, source="demo", now=pg_ws.now())
        _store_matches_frames(pg_ws, small)


def test_demo_command_prints_the_summary_as_json(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "boomerang",
            "--home",
            str(tmp_path / "ws"),
            "demo",
            "--no-serve",
            "--customers",
            "200",
            "--days",
            "60",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["customers"]["identified"] == 200
    assert data["orders"] > 0 and data["revenue"] > 0 and 0 < data["repeat_purchase_rate"] < 1
    assert data["events"]["total"] > 1000 and data["products"]["total"] > 200
    assert data["home"] == str((tmp_path / "ws").resolve())
    assert (len(data["segments"]), len(data["journeys"]), len(data["templates"])) == (10, 15, 22)


def test_demo_on_a_port_in_use_fails_at_once_naming_the_option(tmp_path):
    """Refused before anything is loaded (the workspace is not even made), not minutes later by the server."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "boomerang", "--home", str(tmp_path / "ws"), "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr
    assert "--port" in done.stderr and f"127.0.0.1:{port} is already in use" in done.stderr
    assert not (tmp_path / "ws").exists()

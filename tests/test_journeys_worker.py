"""A worker process killed at any moment loses no step and sends nothing twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from boomerang.channels.models import FakeChannelLog
from boomerang.customers.models import Consent, Customer
from boomerang.journeys import models as m
from boomerang.journeys import runtime, service
from boomerang.messaging.models import Message

CUSTOMERS = 1000
STEPS = 5
DRIP = {
    "name": "drip",
    "category": "transactional",
    "trigger": {"manual": True},
    "control_share": 0,
    "start": "s1",
    "nodes": {
        **{
            f"s{i}": {"type": "send", "channel": "email", "template": f"drip_{i}", "next": f"w{i}"}
            for i in range(1, STEPS)
        },
        **{f"w{i}": {"type": "wait", "minutes": 0.04, "next": f"s{i + 1}"} for i in range(1, STEPS)},
        f"s{STEPS}": {"type": "send", "channel": "email", "template": f"drip_{STEPS}", "next": "end"},
        "end": {"type": "exit"},
    },
}


def _worker(home) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "boomerang", "--home", str(home), "worker", "--interval", "0.02", "--batch", "40"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _count(ws, query) -> int:
    with ws.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def test_killing_the_worker_mid_run_loses_nothing_and_doubles_nothing(ws):
    now = datetime.now(UTC).replace(tzinfo=None)
    with ws.uow.session() as session:
        session.execute(
            sa.insert(Customer),
            [
                {
                    "id": f"cus_{i:05d}",
                    "attributes": {},
                    "email": f"c{i}@example.com",
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(CUSTOMERS)
            ],
        )
        session.execute(
            sa.insert(Consent),
            [
                {
                    "customer_id": f"cus_{i:05d}",
                    "channel": "email",
                    "granted": True,
                    "source": "test",
                    "updated_at": now,
                }
                for i in range(CUSTOMERS)
            ],
        )
    with ws.uow.session() as session:
        service.save(session, DRIP, now=now)
        service.set_status(session, "drip", "active", now=now)
    with ws.uow.session() as session:
        row = service.get(session, "drip")
        for i in range(CUSTOMERS):
            runtime.enter(session, row, f"cus_{i:05d}", now)
    waiting = sa.select(sa.func.count()).select_from(m.Instance).where(m.Instance.status != "done")
    messages = sa.select(sa.func.count()).select_from(Message)
    rng, kills = random.Random(7), 0
    while kills < 4 and _count(ws, waiting):
        before = _count(ws, messages)
        proc = _worker(ws.settings.home)
        deadline = time.monotonic() + 60
        while _count(ws, messages) == before and time.monotonic() < deadline:  # it is working
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)  # mid-transaction, most likely
        proc.wait()
        kills += 1
    proc = _worker(ws.settings.home)
    try:
        deadline = time.monotonic() + 120
        queued = sa.select(sa.func.count()).select_from(Message).where(Message.status == "queued")
        while (_count(ws, waiting) or _count(ws, queued)) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert kills == 4
    assert _count(ws, waiting) == 0
    with ws.engine.connect() as conn:
        per_node = dict(conn.execute(sa.select(Message.node, sa.func.count()).group_by(Message.node)).all())
        outcomes = dict(conn.execute(sa.select(m.Instance.outcome, sa.func.count()).group_by(m.Instance.outcome)).all())
        paths = {tuple(state["path"]) for (state,) in conn.execute(sa.select(m.Instance.state))}
        sent, distinct = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(FakeChannelLog.message_key)))
        ).one()
        unsent = conn.execute(
            sa.select(sa.func.count()).select_from(Message).where(Message.status != "sent")
        ).scalar_one()
    assert per_node == {f"s{i}": CUSTOMERS for i in range(1, STEPS + 1)}  # no step lost, none twice
    assert outcomes == {"exited": CUSTOMERS}
    assert paths == {(*[n for i in range(1, STEPS) for n in (f"s{i}", f"w{i}")], f"s{STEPS}", "end")}
    assert unsent == 0 and sent == distinct == CUSTOMERS * STEPS  # every message reached the channel once

"""Email end to end: personalised emails rendered and delivered to a local SMTP server over pooled
connections, through the real dispatcher (guards, templates, tracked links, SMTP, the delivery log).

Workload (defaults): each run is a campaign to its own slice of customers (en/ru/uk names, each with
a last order of 3 lines and 4 in-stock recommendations); its messages (a ~6 KB personalised HTML email
with the order's items, recommendations, a dozen tracked links, an open pixel, List-Unsubscribe, and
a text part) are queued, then worker processes dispatch them until none is left, as `boomerang
worker` does. The SMTP server runs in its own process: Postfix's smtp-sink (C, made for SMTP
benchmarks; Debian's postfix package) when installed, else aiosmtpd (tests/smtp_server.py). Every
run checks that each message was sent once and that the server received exactly as many.
Runs: the baseline, one worker with one SMTP connection (no pool), on 10,000 messages; one worker
with a pool; then the main run, 100,000 messages with two workers sharing the outbox.

    python bench/sending.py [--messages 100000] [--workers 2] [--pool 4] [--slice 10000] [--server smtp-sink]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the loopback SMTP server

from boomerang.bootstrap import open_workspace  # noqa: E402
from boomerang.catalog.models import Product  # noqa: E402
from boomerang.channels import config as channel_config  # noqa: E402
from boomerang.config import GuardSettings, Settings  # noqa: E402
from boomerang.core.clock import FixedClock  # noqa: E402
from boomerang.customers.models import Consent, Customer  # noqa: E402
from boomerang.messaging import campaigns, service  # noqa: E402
from boomerang.messaging.models import Message  # noqa: E402
from boomerang.orders.models import Order, OrderLine  # noqa: E402
from boomerang.segments.models import Segment, SegmentMember  # noqa: E402
from smtp_server import SmtpServer  # noqa: E402

NOW = datetime(2026, 3, 10, 12, 0)
NAMES = {
    "en": ["Emma", "Oliver", "Ava", "Liam"],
    "ru": ["Анна", "Иван", "Мария", "Дмитрий"],
    "uk": ["Олена", "Тарас", "Ірина", "Богдан"],
}
ITEMS = """{% for item in order["items"] %}<tr><td style="padding:8px;border-bottom:1px solid #eee">
<a href="{{ item.url }}">{{ item.name }}</a></td><td>{{ item.quantity|int }}</td>
<td style="text-align:right">{{ item.price|money(order.currency) }}</td></tr>{% endfor %}"""
RECS = """{% for p in recommendations %}<td style="width:25%;padding:6px;vertical-align:top">
<a href="{{ p.url }}"><img src="{{ p.image_url }}" width="120" alt="{{ p.name }}"></a><br>
<a href="{{ p.url }}">{{ p.name }}</a><br><b>{{ p.price|money(p.currency) }}</b></td>{% endfor %}"""


def body(greeting: str, intro: str, button: str, more: str) -> str:
    return (
        f'<h1 style="font-size:22px">{greeting}</h1><p>{intro}</p>'
        f'<table style="width:100%;border-collapse:collapse">{ITEMS}</table>'
        f'<p><a href="{{{{ shop.url }}}}/reorder/{{{{ order.id }}}}" style="display:inline-block;padding:12px 20px;'
        f'background:#222;color:#fff;border-radius:6px">{button}</a></p><h2 style="font-size:18px">{more}</h2>'
        f"<table><tr>{RECS}</tr></table>" + '<p style="color:#555">' + "&nbsp;" * 40 + "</p>"
    )


TEMPLATE = {
    "name": "bench_reorder",
    "title": "Time to reorder?",
    "topic": "reminders",
    "default_locale": "en",
    "locales": {
        "en": {
            "subject": "{{ first_name }}, time to reorder?",
            "text": "Your order {{ order.id }} is running out.",
            "email": {
                "html": body(
                    "Hi {{ first_name }}!",
                    "Your last order is probably running low:",
                    "Order again",
                    "You may also like",
                )
            },
        },
        "ru": {
            "subject": "{{ first_name }}, пора повторить заказ?",
            "text": "Заказ {{ order.id }} скоро закончится.",
            "email": {
                "html": body(
                    "Здравствуйте, {{ first_name }}!",
                    "Ваш прошлый заказ скоро закончится:",
                    "Повторить заказ",
                    "Вам может понравиться",
                )
            },
        },
        "uk": {
            "subject": "{{ first_name }}, час повторити замовлення?",
            "text": "Замовлення {{ order.id }} скоро скінчиться.",
            "email": {
                "html": body(
                    "Вітаємо, {{ first_name }}!",
                    "Ваше минуле замовлення скоро скінчиться:",
                    "Замовити ще",
                    "Вам може сподобатися",
                )
            },
        },
    },
}


def serve(pipe) -> None:
    """The aiosmtpd server's process: answers "count" with messages received since the last call, until "stop"."""
    with SmtpServer(keep=False) as server:
        pipe.send(server.port)
        while pipe.recv() == "count":
            pipe.send(server.count)
            server.reset()


class Aiosmtpd:
    """tests/smtp_server.py (Python, asyncio) in its own process."""

    def __init__(self) -> None:
        self.pipe, child = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("spawn").Process(target=serve, args=(child,), daemon=True)
        self.process.start()
        self.port = self.pipe.recv()

    def count(self) -> int:
        self.pipe.send("count")
        return self.pipe.recv()

    def stop(self) -> None:
        self.pipe.send("stop")
        self.process.join(10)


class SmtpSink:
    """Postfix's smtp-sink (C, Debian's postfix package), made for SMTP benchmarks; -c prints its counter."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.out = tempfile.NamedTemporaryFile(prefix="smtp-sink", suffix=".out")
        self.process = subprocess.Popen(
            [shutil.which("smtp-sink"), "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "1000"],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        self.seen = 0
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                break
            time.sleep(0.05)

    def count(self) -> int:
        time.sleep(0.2)  # its counter is written as messages complete
        counters = re.findall(rb"mesg=(\d+)", Path(self.out.name).read_bytes())
        total = int(counters[-1]) if counters else 0
        new, self.seen = total - self.seen, total
        return new

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.out.close()


def workspace(home: Path):
    """The bench's workspace, the same in every process: no caps, no quiet hours, no global control group
    (every customer gets the campaign), the clock fixed at NOW."""
    ws = open_workspace(Settings(home=home))
    ws.settings.guards = GuardSettings(global_control_share=0, caps={}, quiet_start="00:00", quiet_end="00:00")
    ws.clock = FixedClock(NOW)
    return ws


def prepare(home: Path, customers: int, port: int, pool: int):
    ws = workspace(home)
    locales = list(NAMES)
    with ws.engine.begin() as conn:
        conn.execute(
            sa.insert(Product),
            [
                {
                    "sku": f"sku{i}",
                    "name": f"Product {i}",
                    "category": f"Tea > Kind {i % 8}",
                    "price": 5.0 + i % 40,
                    "currency": "EUR",
                    "in_stock": i % 10 != 0,
                    "url": f"https://shop.example.com/p/{i}",
                    "image_url": f"https://cdn.shop.example.com/p/{i}.jpg",
                    "attributes": {},
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for i in range(200)
            ],
        )
        for start in range(0, customers, 10_000):
            ids = range(start, min(customers, start + 10_000))
            conn.execute(
                sa.insert(Customer),
                [
                    {
                        "id": f"c{i:07d}",
                        "email": f"customer{i}@example.com",
                        "first_name": NAMES[locales[i % 3]][i % 4],
                        "locale": locales[i % 3],
                        "attributes": {},
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                sa.insert(Consent),
                [
                    {
                        "customer_id": f"c{i:07d}",
                        "channel": "email",
                        "granted": True,
                        "source": "bench",
                        "updated_at": NOW,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                sa.insert(Order),
                [
                    {
                        "id": f"o{i}",
                        "customer_id": f"c{i:07d}",
                        "status": "completed",
                        "currency": "EUR",
                        "total": 30.0,
                        "source": "bench",
                        "attributes": {},
                        "placed_at": NOW - timedelta(days=30 + i % 60),
                        "updated_at": NOW,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                sa.insert(OrderLine),
                [
                    {
                        "order_id": f"o{i}",
                        "line_no": n,
                        "sku": f"sku{(i + n * 7) % 200}",
                        "name": f"Product {(i + n * 7) % 200}",
                        "category": f"Tea > Kind {(i + n * 7) % 8}",
                        "quantity": 1 + n,
                        "unit_price": 10.0,
                    }
                    for i in ids
                    for n in range(3)
                ],
            )
    with ws.uow.session() as session:
        service.save(session, TEMPLATE, now=NOW)
    configure(ws, port, pool, NOW)
    return ws


def audience(ws, name: str, ids: list[str]) -> None:
    with ws.engine.begin() as conn:
        segment_id = conn.execute(
            sa.insert(Segment).values(
                name=name,
                definition={"event": "Order Completed"},
                triggers=[],
                expires=False,
                size=len(ids),
                refreshed_at=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        ).inserted_primary_key[0]
        for start in range(0, len(ids), 10_000):
            conn.execute(
                sa.insert(SegmentMember),
                [{"segment_id": segment_id, "customer_id": c, "entered_at": NOW} for c in ids[start : start + 10_000]],
            )


def drain(home: Path, batch: int) -> int:
    """One `boomerang worker`'s sending loop, in its own process: dispatch until nothing is due."""
    ws = workspace(home)
    sent = 0
    while True:
        counts = ws.dispatcher.dispatch(now=NOW, limit=batch, rounds=20)
        sent += counts["sent"]
        if not sum(counts.values()):
            ws.channels.close()
            return sent


def send_campaign(ws, name: str, ids: list[str], batch: int, workers: int, server) -> dict:
    """Queue the campaign, then `workers` processes dispatch until nothing is left; checks every message
    was sent once and the server received exactly as many."""
    audience(ws, f"{name}_audience", ids)
    with ws.uow.session() as session:
        campaigns.save(
            session,
            {
                "name": name,
                "segment": f"{name}_audience",
                "template": TEMPLATE["name"],
                "channels": ["email"],
                "holdout_percent": 0,
            },
            now=ws.now(),
        )
        campaigns.schedule(session, name, now=ws.now())
    started = time.perf_counter()
    campaigns.start_due(ws.segments, now=NOW)
    queued = time.perf_counter()
    if workers == 1:
        drain(ws.settings.home, batch)
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pool.starmap(drain, [(ws.settings.home, batch)] * workers)
    done = time.perf_counter()
    received = server.count()
    with ws.uow.session() as session:
        statuses = dict(
            session.execute(
                sa.select(Message.status, sa.func.count())
                .where(Message.source == f"campaign:{name}")
                .group_by(Message.status)
            ).all()
        )
    assert received == len(ids) == statuses.get("sent"), (received, statuses)
    return {"seconds": done - started, "queue": queued - started, "rate": len(ids) / (done - started)}


def configure(ws, port: int, pool: int, at: datetime) -> None:
    with ws.uow.session() as session:
        channel_config.save(
            session,
            "email",
            "smtp",
            {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from_address": "shop@example.com",
                "from_name": "Boomerang Shop",
                "pool_size": pool,
            },
            secret=ws.secret,
            now=at,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--pool", type=int, default=4, help="SMTP connections (and sending threads) per worker")
    parser.add_argument("--workers", type=int, default=2, help="worker processes sharing the outbox")
    parser.add_argument("--slice", type=int, default=10_000, help="messages for each comparison run")
    parser.add_argument("--batch", type=int, default=500, help="messages per dispatch round")
    parser.add_argument(
        "--server", choices=("smtp-sink", "aiosmtpd"), default="smtp-sink" if shutil.which("smtp-sink") else "aiosmtpd"
    )
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: a throw-away server on loopback (Debian's postgresql), as in bench/journeys.py",
    )
    args = parser.parse_args()
    stop_postgres = None
    if args.store == "postgres":
        from pg_server import postgres  # bench/pg_server.py

        os.environ["BOOMERANG_DATABASE_URL"], stop_postgres = postgres()  # every worker process reads it
    server = SmtpSink() if args.server == "smtp-sink" else Aiosmtpd()
    runs = [
        ("1 worker, 1 connection (baseline)", args.slice, 1, 1),
        (f"1 worker, {args.pool} connections", args.slice, 1, args.pool),
        (f"{args.workers} workers, {args.pool} connections each", args.messages, args.workers, args.pool),
    ]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        total = sum(n for _, n, _, _ in runs)
        ws = prepare(Path(tmp) / "ws", total, server.port, 1)
        print(
            f"{total:,} customers with orders and consents in {time.perf_counter() - t:.1f} s; "
            f"store: {args.store}; SMTP server: {args.server}, in its own process"
        )
        ids = iter(f"c{i:07d}" for i in range(total))
        for n, (label, size, workers, pool) in enumerate(runs):
            configure(ws, server.port, pool, NOW + timedelta(seconds=n + 1))
            result = send_campaign(ws, f"run{n}", [next(ids) for _ in range(size)], args.batch, workers, server)
            results.append((label, size, result))
            print(f"  {label}: {result['rate']:,.0f} messages/s", flush=True)
        ws.channels.close()
    server.stop()
    if stop_postgres:
        stop_postgres()
    base = results[0][2]["rate"]
    print(f"\n{'run':<36}{'messages':>10}{'seconds':>9}{'msg/s':>8}{'queued in s':>12}{'vs baseline':>12}")
    for label, size, r in results:
        print(
            f"{label:<36}{size:>10,}{r['seconds']:>9.1f}{r['rate']:>8,.0f}{r['queue']:>12.1f}{r['rate'] / base:>11.2f}x"
        )


if __name__ == "__main__":
    main()

"""Importers on the shared real datasets, with exact counts, idempotency and bad-input errors."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from boomerang.bootstrap import open_workspace
from boomerang.catalog.models import Product
from boomerang.config import Settings
from boomerang.core.errors import ValidationFailed
from boomerang.events.importers import catalog, cdnow, online_retail, orders_csv
from boomerang.orchestration.status import summary
from boomerang.orders.models import Order, OrderLine
from cli_helpers import run_cli
from conftest import DATA

RETAIL = DATA / "uci-online-retail" / "online_retail_to_2011-09-30.csv.gz"
CDNOW = DATA / "cdnow"
JOURNEY = DATA / "completejourney" / "transactions_sample.csv.gz"
CATALOG = Path(__file__).parent / "data" / "catalog"
JOURNEY_COLUMNS = dict(
    customer="household_id",
    date="transaction_timestamp",
    amount="sales_value",
    order_id="basket_id",
    product="product_id",
    quantity="quantity",
)


def _counts(ws) -> tuple:
    s = summary(ws.uow, ws.log)
    return s["customers"]["total"], s["orders"], s["revenue"], s["products"]["total"], s["events"]["total"]


@pytest.fixture(scope="module")
def retail_ws(tmp_path_factory):
    """Online Retail imported twice into one workspace: the results of both runs and the workspace."""
    if not RETAIL.exists():
        pytest.skip(f"{RETAIL} not found")
    ws = open_workspace(Settings(home=tmp_path_factory.mktemp("retail") / "ws"))
    first = online_retail.run(ws.uow, ws.log, RETAIL, now=ws.now())
    counts = _counts(ws)
    second = online_retail.run(ws.uow, ws.log, RETAIL, now=ws.now())
    return ws, first, second, counts


@pytest.mark.shared_data
def test_online_retail_counts(retail_ws):
    ws, first, _, (customers, orders, revenue, products, events) = retail_ws
    assert first.extra["rows"] == 370_931
    assert customers == first.customers == 3_658
    # 18,786 invoices: 3 bad-debt and 1,023 stock write-off invoices (one row each) are skipped,
    # and 2,887 cancellations become refunds.
    assert first.extra["skipped_adjustment_rows"] == 3 + 1_023
    assert first.orders == 18_786 - 3 - 1_023 == 17_760
    assert first.extra["refunds"] == 2_887
    assert orders == 17_760 - 2_887
    assert events == 17_760
    # Revenue is the file's sum of Quantity x UnitPrice (6,781,619.00) without the bad-debt lines (-11,062.06).
    assert revenue == pytest.approx(6_781_619.00 + 11_062.06, abs=0.01)
    assert products == 3_764
    assert first.extra["anonymous_orders"] == 1_702
    with ws.uow.session() as s:
        skus = set(s.scalars(sa.select(Product.sku)))
        assert not skus & {"POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK"}
        assert not any(sku.startswith("gift_") for sku in skus)
        anonymous = s.scalar(sa.select(sa.func.count()).where(Order.customer_id.is_(None), Order.status == "paid"))
        assert anonymous == 1_702


@pytest.mark.shared_data
def test_online_retail_orders_refunds_and_times(retail_ws):
    ws = retail_ws[0]
    with ws.uow.session() as s:
        first = s.get(Order, "536365")
        assert (first.total, first.status, first.currency) == (139.12, "paid", "GBP")
        assert first.placed_at == datetime(2010, 12, 1, 8, 26)  # GMT in winter
        assert s.scalar(sa.select(sa.func.count()).where(OrderLine.order_id == "536365")) == 7
        refund = s.get(Order, "C536379")
        assert (refund.status, refund.total, refund.refunded_total) == ("returned", 0.0, 27.5)
        postage = s.scalars(sa.select(OrderLine).where(OrderLine.order_id == "536370", OrderLine.sku.is_(None))).all()
        assert [line.name for line in postage] == ["POSTAGE"]
        assert s.get(Order, "536370").shipping == 54.0
    with ws.log.connect() as conn:
        (props,) = conn.execute(
            "SELECT properties FROM events WHERE message_id = 'online-retail:order:536365'"
        ).fetchone()
        assert {p["sku"] for p in json.loads(props)["products"]} >= {"85123A", "71053"}


@pytest.mark.shared_data
def test_online_retail_summer_time_is_converted_to_utc():
    raw = pd.read_csv(RETAIL, dtype=str, nrows=400_000)
    row = raw[raw["InvoiceDate"].str.startswith("2011-06-01")].iloc[0]
    frame = online_retail.read(RETAIL)
    stored = frame.loc[row.name, "InvoiceDate"]
    assert stored == pd.Timestamp(row["InvoiceDate"]) - pd.Timedelta(hours=1)


@pytest.mark.shared_data
def test_online_retail_import_twice_changes_nothing(retail_ws):
    ws, first, second, counts = retail_ws
    assert second.events_new == 0
    assert _counts(ws) == counts
    with ws.uow.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(OrderLine)) == first.lines == 369_905


@pytest.mark.shared_data
def test_cdnow_sample_then_master_counts_each_purchase_once(any_ws):
    sample = cdnow.run(any_ws.uow, any_ws.log, CDNOW / "CDNOW_sample.txt", now=any_ws.now())
    assert (sample.customers, sample.orders, sample.events_new) == (2_357, 6_919, 6_919)
    assert _counts(any_ws)[:3] == (2_357, 6_919, 244_091.94)
    if any_ws.engine.dialect.name == "postgresql":
        return  # the master file is the same code on a bigger file; once is enough
    master = cdnow.run(any_ws.uow, any_ws.log, CDNOW / "CDNOW_master.txt", now=any_ws.now())
    assert master.events_new == 69_659 - 6_919
    assert _counts(any_ws)[:3] == (23_570, 69_659, 2_500_315.63)
    assert cdnow.run(any_ws.uow, any_ws.log, CDNOW / "CDNOW_master.txt", now=any_ws.now()).events_new == 0
    assert _counts(any_ws)[:3] == (23_570, 69_659, 2_500_315.63)


def test_cdnow_rejects_a_file_of_another_shape(ws, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("00001 19970101 1\n")
    with pytest.raises(ValidationFailed, match="columns"):
        cdnow.run(ws.uow, ws.log, bad, now=ws.now())
    bad.write_text("00001 1997-01-01 1 11.77\n")
    with pytest.raises(ValidationFailed) as err:
        cdnow.run(ws.uow, ws.log, bad, now=ws.now())
    assert err.value.errors[0]["field"] == "rows[0].date"


@pytest.mark.shared_data
def test_orders_csv_on_complete_journey(ws):
    result = orders_csv.run(ws.uow, ws.log, JOURNEY, now=ws.now(), currency="usd", **JOURNEY_COLUMNS)
    assert (result.customers, result.orders, result.lines) == (2_377, 47_243, 75_000)
    customers, orders, revenue, products, events = _counts(ws)
    assert (customers, orders, events) == (2_377, 47_243, 47_243)
    assert revenue == pytest.approx(233_935.24, abs=0.01)
    s = summary(ws.uow, ws.log)
    assert s["events"]["first"] == "2017-01-01T12:30:27"  # 07:30:27-05:00
    again = orders_csv.run(ws.uow, ws.log, JOURNEY, now=ws.now(), currency="USD", **JOURNEY_COLUMNS)
    assert again.events_new == 0 and _counts(ws) == (customers, orders, revenue, products, events)


def _csv(tmp_path, text: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


SMALL = dict(customer="client", date="day", amount="sum", order_id="order")


def test_orders_csv_refunds_anonymous_orders_local_times_and_gzip(ws, tmp_path):
    text = (
        "order;client;day;sum;sku;qty\n"
        "A1;c1;2024-03-30 23:30;10,50;S1;1\n"
        "A1;c1;2024-03-30 23:30;5;S2;2\n"
        "A2;;2024-04-02 09:00;7;S1;1\n"
        "R1;c1;2024-04-05 10:00;-5;S2;-1\n"
    )
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    result = orders_csv.run(
        ws.uow,
        ws.log,
        path,
        now=ws.now(),
        delimiter=";",
        timezone="Europe/Kyiv",
        product="sku",
        quantity="qty",
        currency="UAH",
        **SMALL,
    )
    assert (result.orders, result.extra["refunds"], result.customers) == (3, 1, 1)
    with ws.uow.session() as s:
        a1 = s.get(Order, "A1")
        assert (a1.total, a1.currency, a1.placed_at) == (15.5, "UAH", datetime(2024, 3, 30, 21, 30))  # UTC+2
        assert s.get(Order, "A2").customer_id is None
        r1 = s.get(Order, "R1")
        assert (r1.status, r1.refunded_total, r1.customer_id) == ("returned", 5.0, a1.customer_id)
        assert s.get(Product, "S2").price == 2.5
    assert summary(ws.uow, ws.log)["revenue"] == 17.5


@pytest.mark.parametrize(
    ("text", "options", "field", "reason"),
    [
        ("order,client,day\n1,c,2024-01-01\n", {}, "--amount", "no column 'sum'"),
        ("order,client,day,sum\n1,c,yesterday,3\n", {}, "rows[0].day", "not a date"),
        ("order,client,day,sum\n1,c,2024-01-01,three\n", {}, "rows[0].sum", "not a number"),
        ("order,client,day,sum\n1,a,2024-01-01,3\n1,b,2024-01-01,3\n", {}, "rows[0].client", "differs"),
        ("order,client,day,sum\n,a,2024-01-01,3\n", {}, "rows[0].order", "empty"),
        (
            "order,client,day,sum\n1,a,01.02.2024,3\n",
            {"date_format": "%d.%m.%Y", "timezone": "Mars/Olympus"},
            "--timezone",
            "unknown time zone",
        ),
    ],
)
def test_orders_csv_bad_input_names_the_field_and_stores_nothing(ws, tmp_path, text, options, field, reason):
    with pytest.raises(ValidationFailed) as err:
        orders_csv.run(ws.uow, ws.log, _csv(tmp_path, text), now=ws.now(), **SMALL, **options)
    assert any(e["field"] == field and reason in e["reason"] for e in err.value.errors), err.value.errors
    assert _counts(ws)[:2] == (0, 0)


def test_catalog_feeds_csv_and_yml(ws):
    yml = catalog.run(ws.uow, ws.log, CATALOG / "shop.yml", now=ws.now())
    assert yml.extra == {"format": "yml", "created": 4, "updated": 0, "unchanged": 4 - 4}
    # the same feed in windows-1251: nothing changes
    again = catalog.run(ws.uow, ws.log, CATALOG / "shop-cp1251.yml", now=ws.now())
    assert again.extra["unchanged"] == 4 and again.products == 0
    csv = catalog.run(ws.uow, ws.log, CATALOG / "shop.csv", now=ws.now())
    assert (csv.extra["created"], csv.products) == (4, 4)
    with ws.uow.session() as s:
        kettle = s.get(Product, "KETTLE-7")
        assert kettle.name == "Электрический чайник Polaris PWK 1725CGL"
        assert kettle.category == "Дом и сад > Кухня > Бытовая техника"
        assert (kettle.price, kettle.currency, kettle.stock_quantity) == (3990, "RUB", 3)
        assert kettle.attributes["Материал"] == ["стекло", "нержавеющая сталь"]
        assert s.get(Product, "TOWEL-3").in_stock is False
        shirt = s.get(Product, "TSHIRT-02")
        assert (shirt.price, shirt.in_stock, shirt.category) == (1290, False, "Одежда > Мужская > Футболки")
        assert s.get(Product, "SOCKS-3").attributes == {"Color": "серый"}


@pytest.mark.parametrize(
    ("name", "text", "field"),
    [
        ("bad.csv", "sku,price\nA,12\nA,13\n", "rows[1].sku"),
        ("bad.csv", "sku,price\nA,-3\n", "rows[0].price"),
        ("bad.csv", "title,price\nA,3\n", "header"),
        (
            "bad.yml",
            "<yml_catalog><shop><offers><offer><price>1</price></offer></offers></shop></yml_catalog>",
            "offers[0].id",
        ),
        ("bad.yml", "<yml_catalog><shop><offers><offer id='x'>", "file"),
        ("bad.yml", "<rss></rss>", "file"),
    ],
)
def test_catalog_bad_feeds_are_rejected_whole(ws, tmp_path, name, text, field):
    catalog.run(ws.uow, ws.log, CATALOG / "shop.csv", now=ws.now())
    with pytest.raises(ValidationFailed) as err:
        catalog.run(ws.uow, ws.log, _csv(tmp_path, text, name), now=ws.now())
    assert err.value.errors[0]["field"] == field, err.value.errors
    assert summary(ws.uow, ws.log)["products"]["total"] == 4


def test_import_cli_json_and_errors(tmp_path):
    home = tmp_path / "ws"
    path = _csv(tmp_path, "order,client,day,sum\n1,c1,2024-01-01,3\n2,c1,2024-02-01,4\n")
    run = [
        "import",
        "orders",
        str(path),
        "--customer",
        "client",
        "--date",
        "day",
        "--amount",
        "sum",
        "--order-id",
        "order",
    ]
    done = run_cli(home, *run, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["orders"] == 2
    bad = run_cli(home, *run[:-8], "--customer", "who", "--date", "day", "--amount", "sum", "--order-id", "order")
    assert bad.returncode == 2 and "--customer" in bad.stderr and "who" in bad.stderr

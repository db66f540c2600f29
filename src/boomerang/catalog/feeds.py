"""Catalog feeds (CSV, YML) parsed into frames of Product columns; no database here."""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path
from typing import IO

import pandas as pd
from lxml import etree

from boomerang.core.errors import ValidationFailed

COLUMNS = (
    "sku",
    "name",
    "category",
    "brand",
    "price",
    "currency",
    "in_stock",
    "stock_quantity",
    "url",
    "image_url",
    "attributes",
)
MAX_ERRORS = 50
CSV_ALIASES = {  # the first alias found wins; the others stay attributes
    "sku": ("sku", "product_id", "offer_id", "id", "артикул"),
    "name": ("name", "title", "название", "наименование"),
    "category": ("category", "category_path", "product_type", "категория"),
    "brand": ("brand", "vendor", "бренд", "производитель"),
    "price": ("price", "цена"),
    "currency": ("currency", "currency_id", "currencyid", "валюта"),
    "in_stock": ("in_stock", "available", "availability", "наличие"),
    "stock_quantity": ("stock", "quantity", "stock_quantity", "count", "остаток"),
    "url": ("url", "link", "ссылка"),
    "image_url": ("image_url", "image", "picture", "image_link", "изображение"),
}
TRUE = {"true", "1", "yes", "y", "да", "in stock", "in_stock", "instock", "available"}
FALSE = {"false", "0", "no", "n", "нет", "out of stock", "out_of_stock", "outofstock", "unavailable"}
YML_FIELDS = {
    "url",
    "price",
    "currencyId",
    "categoryId",
    "picture",
    "name",
    "vendor",
    "count",
    "quantity",
    "stock",
}  # offer children that are columns; every other one is an attribute
CURRENCY_ALIASES = {"RUR": "RUB"}  # YML's old code for the rouble
PARSER_OPTIONS = dict(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True, remove_pis=True
)


class _Problems:
    """Errors gathered while parsing, raised together (at most MAX_ERRORS of them)."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, field: str, reason: str, line: int | None = None) -> None:
        self.items.append({"field": field, "reason": reason, "line": line})
        if len(self.items) >= MAX_ERRORS:
            raise ValidationFailed(self.items)

    def convert(self, field: str, line: int | None, fn, text: str | None):
        """fn(text) for a non-blank text, None for a blank one, None and an error for a bad one."""
        if text is None or not text.strip():
            return None
        try:
            return fn(text.strip())
        except ValueError as exc:
            self.add(field, str(exc), line)
            return None

    def check(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def open_feed(path: str | Path) -> IO[bytes]:
    """The file's bytes, gunzipped when it starts with gzip's magic number."""
    handle = open(path, "rb")
    if handle.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=handle)
    return handle


def number(text: str) -> float:
    """A non-negative decimal; spaces group thousands and a lone comma is the decimal point."""
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text)
    cleaned = cleaned.replace(",", "") if "." in cleaned else cleaned.replace(",", ".")
    if not re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)", cleaned):
        raise ValueError(f"{text!r} is not a number")
    if cleaned.startswith("-"):
        raise ValueError(f"{text!r} is negative")
    return float(cleaned)


def count(text: str) -> int:
    """A non-negative whole number."""
    value = number(text)
    if value != int(value):
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def flag(text: str) -> bool:
    """true/false, 1/0, yes/no (and their usual spellings in feeds)."""
    lowered = text.lower()
    if lowered in TRUE or lowered in FALSE:
        return lowered in TRUE
    raise ValueError(f"{text!r} is not one of true/false, 1/0, yes/no")


def currency(text: str) -> str:
    """An ISO 4217 code, upper case."""
    code = CURRENCY_ALIASES.get(text.upper(), text.upper())
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"{text!r} is not a three-letter currency code")
    return code


def category_path(text: str) -> str | None:
    """'A/B/C' or 'A>B>C' as 'A > B > C'."""
    parts = [p.strip() for p in re.split(r"[/>]", text) if p.strip()]
    return " > ".join(parts) or None


def _frame(rows: list[dict], problems: _Problems, where: str, id_field: str) -> pd.DataFrame:
    first: dict[str, int] = {}
    for index, row in enumerate(rows):
        if row["sku"] is not None and first.setdefault(row["sku"], index) != index:
            problems.add(
                f"{where}[{index}].{id_field}", f"duplicate id {row['sku']!r} (first at {where}[{first[row['sku']]}])"
            )
    problems.check()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("sku", "name", "category", "brand", "currency", "url", "image_url"):
        frame[column] = frame[column].astype("str")
    frame["price"] = frame["price"].astype("Float64")
    frame["stock_quantity"] = frame["stock_quantity"].astype("Int64")
    frame["in_stock"] = frame["in_stock"].astype(bool)
    return frame


def _in_stock(available: bool | None, quantity: int | None) -> bool:
    if available is not None:
        return available
    return quantity is None or quantity > 0


def parse_csv(path: str | Path) -> pd.DataFrame:
    """A CSV feed (comma, semicolon, tab or pipe; UTF-8 or windows-1251) as a frame of Product columns."""
    with open_feed(path) as handle:
        raw = handle.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1251")
    delimiter = max(",;\t|", key=text.split("\n", 1)[0].count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    problems, rows = _Problems(), []
    try:
        header = [h.strip() for h in next(reader, [])]
        keys = [re.sub(r"[\s\-]+", "_", h.lower()) for h in header]
        columns = {f: next((keys.index(a) for a in aliases if a in keys), None) for f, aliases in CSV_ALIASES.items()}
        if columns["sku"] is None:
            raise ValidationFailed(
                [{"field": "header", "line": 1, "reason": "needs an id column: " + ", ".join(CSV_ALIASES["sku"])}]
            )
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append(_csv_row(cells, header, columns, f"rows[{len(rows)}]", reader.line_num, problems))
    except csv.Error as exc:
        raise ValidationFailed(
            [{"field": "file", "reason": f"not valid CSV: {exc}", "line": reader.line_num}]
        ) from None
    return _frame(rows, problems, "rows", "sku")


def _csv_row(cells: list[str], header: list[str], columns: dict, where: str, line: int, problems: _Problems) -> dict:
    """One CSV record as a row; the columns that are no Product field become attributes."""
    if len(cells) > len(header):
        problems.add(where, f"has {len(cells)} cells, the header {len(header)}", line)
    cells = [c.strip() for c in cells[: len(header)]] + [""] * (len(header) - len(cells))
    cell = {f: cells[i] if i is not None else "" for f, i in columns.items()}
    price, code = cell["price"], cell["currency"]
    if match := re.fullmatch(r"([\d\s.,]+?)\s*([A-Za-z]{3})", price):
        price, code = match[1], code or match[2]  # "15.00 USD", as Google's feeds write prices
    quantity = problems.convert(f"{where}.stock_quantity", line, count, cell["stock_quantity"])
    if not cell["sku"]:
        problems.add(f"{where}.sku", "is required", line)
    used = set(columns.values())
    return {
        "sku": cell["sku"] or None,
        "name": cell["name"] or None,
        "brand": cell["brand"] or None,
        "category": category_path(cell["category"]),
        "price": problems.convert(f"{where}.price", line, number, price),
        "currency": problems.convert(f"{where}.currency", line, currency, code),
        "in_stock": _in_stock(problems.convert(f"{where}.in_stock", line, flag, cell["in_stock"]), quantity),
        "stock_quantity": quantity,
        "url": cell["url"] or None,
        "image_url": cell["image_url"] or None,
        "attributes": {header[i]: v for i, v in enumerate(cells) if i not in used and v},
    }


def _text(element) -> str:
    return "".join(element.itertext()).strip()


def _offer(element, where: str, problems: _Problems) -> tuple[dict, str | None]:
    """One <offer> as a row, and its categoryId."""
    line, values, attributes = element.sourceline, {}, {}
    for child in element:
        if not isinstance(child.tag, str):
            continue  # an unexpanded entity reference
        if child.tag == "param" and child.get("name"):
            value = " ".join(filter(None, [_text(child), child.get("unit")]))
            attributes.setdefault(child.get("name"), []).append(value)
        else:
            (values if child.tag in YML_FIELDS else attributes).setdefault(child.tag, []).append(_text(child))
    first = {tag: texts[0] for tag, texts in values.items()}
    for name, value in element.attrib.items():
        if name not in ("id", "available", "type"):
            attributes[name] = [value]
    if "oldprice" in attributes:
        attributes["oldprice"] = [problems.convert(f"{where}.oldprice", line, number, attributes["oldprice"][0])]
    if len(values.get("picture", [])) > 1:
        attributes["pictures"] = [values["picture"]]
    stock_tag = next((t for t in ("count", "quantity", "stock") if first.get(t)), "count")
    quantity = problems.convert(f"{where}.{stock_tag}", line, count, first.get(stock_tag))
    sku = (element.get("id") or "").strip() or None
    if sku is None:
        problems.add(f"{where}.id", "is required", line)
    parts = (attributes.get("typePrefix", [""])[0], first.get("vendor"), attributes.get("model", [""])[0])
    name = first.get("name") or " ".join(filter(None, parts))  # a vendor.model offer's name
    row = {
        "sku": sku,
        "name": name or None,
        "category": None,
        "brand": first.get("vendor") or None,
        "price": problems.convert(f"{where}.price", line, number, first.get("price")),
        "currency": problems.convert(f"{where}.currencyId", line, currency, first.get("currencyId")),
        "in_stock": _in_stock(problems.convert(f"{where}.available", line, flag, element.get("available")), quantity),
        "stock_quantity": quantity,
        "url": first.get("url") or None,
        "image_url": first.get("picture") or None,
        "attributes": {k: v[0] if len(v) == 1 else v for k, v in attributes.items() if v not in ([""], [None])},
    }
    return row, first.get("categoryId")


def _paths(categories: dict[str, tuple[str, str | None]]) -> dict[str, str]:
    """Each category id's 'Root > ... > Leaf' path, following parentId (a cycle stops the walk)."""
    paths = {}
    for cid in categories:
        names, seen, at = [], set(), cid
        while at in categories and at not in seen:
            seen.add(at)
            names.append(categories[at][0])
            at = categories[at][1]
        paths[cid] = " > ".join(reversed(names))
    return paths


def parse_yml(path: str | Path) -> pd.DataFrame:
    """A YML (Yandex Market Language) feed, streamed, as a frame of Product columns."""
    categories, currencies, problems = {}, {}, _Problems()
    rows, category_ids, root = [], [], None
    try:
        with open_feed(path) as handle:
            events = etree.iterparse(handle, events=("end",), tag=("category", "currency", "offer"), **PARSER_OPTIONS)
            for _, element in events:
                root = element.getroottree().getroot() if root is None else root
                if root.tag != "yml_catalog":
                    break
                parent = element.getparent().tag
                if element.tag == "offer" and parent == "offers":
                    row, category_id = _offer(element, f"offers[{len(rows)}]", problems)
                    rows.append(row)
                    category_ids.append(category_id)
                elif element.tag == "category" and parent == "categories" and element.get("id"):
                    categories[element.get("id")] = (_text(element), element.get("parentId"))
                elif element.tag == "currency" and parent == "currencies" and element.get("id"):
                    currencies[element.get("rate", "1")] = element.get("id")
                element.clear()
                while element.getprevious() is not None:  # drop finished siblings: memory stays flat
                    del element.getparent()[0]
            root = events.root if root is None else root
    except etree.XMLSyntaxError as exc:
        raise ValidationFailed([{"field": "file", "reason": f"not valid XML: {exc}", "line": exc.lineno}]) from None
    if root is None or root.tag != "yml_catalog":
        raise ValidationFailed([{"field": "file", "reason": "not a YML feed: the root element must be <yml_catalog>"}])
    paths = _paths(categories)
    default = problems.convert("currencies", None, currency, currencies.get("1"))
    for row, category_id in zip(rows, category_ids):
        row["category"] = paths.get(category_id)
        row["currency"] = row["currency"] or default
    return _frame(rows, problems, "offers", "id")

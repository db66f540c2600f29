"""The shop's own words, for the segment builder's choices: its event names with their properties and frequent
values, its custom attributes, the values of its profile fields and traits, read from the event log.

Properties and attributes come from a sample (the latest events of each name, the latest profiles), parsed
here rather than with an engine's JSON functions, so the same queries run wherever the log lives.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any

import ibis
import orjson
from ibis import _

from boomerang.events.log import EventLog
from boomerang.segments.compile import TRAIT_COLUMNS
from boomerang.segments.definition import TRAITS

MAX_EVENTS = 200  # event names offered, the most frequent first
SAMPLE = 300  # latest events of each name whose properties are read
RECENT_DAYS = 14  # ...taken from the last days the event happened
PROFILE_SAMPLE = 2000  # latest profiles whose custom attributes are read
MAX_PROPERTIES = 60  # properties of one event (or attributes), the most frequent first
MAX_VALUES = 25  # frequent values of one property
MAX_VALUE_LENGTH = 120  # longer texts (descriptions, URLs) are not offered as choices
VALUED_FIELDS = ("city", "country", "locale", "timezone")  # profile fields whose values are worth offering
DAY = re.compile(r"\d{4}-\d{2}-\d{2}([T ][\d:.]+Z?)?")


def read(log: EventLog) -> dict[str, Any]:
    """events, attributes, fields (frequent values of some profile fields), traits (computed or not)."""
    with log.reader() as r:
        e = r.events.filter(r.events.event.notnull() & (r.events.event != ""))
        per_event = e.group_by("event").aggregate(count=e.count(), last=e.timestamp.max())
        counts = per_event.order_by([per_event["count"].desc(), per_event.event]).limit(MAX_EVENTS).execute()
        # the latest events of each name, among those of its last RECENT_DAYS: ranking them all would sort the log
        recent = e.join(per_event.select("event", "last"), "event")
        recent = recent.filter(recent.timestamp >= recent["last"] - ibis.interval(days=RECENT_DAYS))
        ranked = recent.mutate(n=ibis.row_number().over(group_by=recent.event, order_by=recent.timestamp.desc()))
        sample = ranked.filter(ranked.n < SAMPLE).select("event", properties=ranked.properties.cast("string")).execute()
        p = r.profiles
        latest = p.filter(p.attributes.notnull()).order_by(p.last_seen_at.desc())
        attributes = latest.select(attributes=latest.attributes.cast("string")).limit(PROFILE_SAMPLE).execute()
        fields = {name: _top(p, p[name]) for name in VALUED_FIELDS if name in p.columns}
        traits = _traits(r)
    by_event: dict[str, list[Any]] = defaultdict(list)
    for name, text in zip(sample["event"], sample["properties"]):
        by_event[name].append(text)
    events = [
        {
            "name": name,
            "count": int(count),
            "last": None if last is None or last != last else str(last)[:19],
            "properties": describe(by_event.get(name, [])),
        }
        for name, count, last in zip(counts["event"], counts["count"], counts["last"])
    ]
    return {
        "events": events,
        "attributes": describe(list(attributes["attributes"])),
        "fields": fields,
        "traits": traits,
    }


def _top(table: ibis.Table, column: ibis.Value) -> list[str]:
    """The most frequent values of a text column, most frequent first."""
    t = table.select(value=column.cast("string"))
    t = t.filter(t.value.notnull() & (t.value != "")).group_by("value").aggregate(n=_.count())
    found = t.order_by([t.n.desc(), t.value]).limit(MAX_VALUES).execute()
    return [str(v) for v in found["value"]]


def _traits(r) -> list[dict[str, Any]]:
    """Every trait with its type, whether its kind is computed, and the frequent values of text traits."""
    out = []
    kinds = {kind: r.trait(kind) for kind in dict.fromkeys(kind for kind, _ in TRAITS.values())}
    for name, (kind, vtype) in TRAITS.items():
        table, column = kinds[kind], TRAIT_COLUMNS.get(name, name)
        computed = table is not None and column in table.columns
        values = _top(table, table[column]) if computed and vtype == "string" else []
        out.append({"name": name, "kind": kind, "type": vtype, "computed": computed, "values": values})
    return out


def traits_only() -> list[dict[str, Any]]:
    """Every trait with its type, when the log cannot be read: none known to be computed, no values."""
    return [
        {"name": name, "kind": kind, "type": vtype, "computed": False, "values": []}
        for name, (kind, vtype) in TRAITS.items()
    ]


def describe(documents: list[Any]) -> list[dict[str, Any]]:
    """The keys of JSON objects (as text or parsed) with their type and frequent values, the most common first.
    A key's type: number when every value seen is a number, list when a list, date when ISO dates, else string."""
    seen: Counter[str] = Counter()
    kinds: dict[str, set[str]] = defaultdict(set)
    values: dict[str, Counter[str]] = defaultdict(Counter)
    for doc in documents:
        data = _parsed(doc)
        for key, value in data.items():
            if not isinstance(key, str) or value is None or isinstance(value, dict):
                continue
            seen[key] += 1
            kinds[key].add(_kind(value))
            for item in value if isinstance(value, list) else [value]:
                if (
                    isinstance(item, (str, int, float))
                    and not isinstance(item, bool)
                    and len(str(item)) <= MAX_VALUE_LENGTH
                ):
                    values[key][str(item)] += 1
    out = []
    for key, count in seen.most_common(MAX_PROPERTIES):
        found = kinds[key]
        kind = next(iter(found)) if len(found) == 1 else "list" if "list" in found else "string"
        out.append(
            {"name": key, "type": kind, "seen": count, "values": [v for v, _ in values[key].most_common(MAX_VALUES)]}
        )
    return out


def _parsed(doc: Any) -> dict[Any, Any]:
    if isinstance(doc, dict):
        return doc
    if not isinstance(doc, (str, bytes)) or not doc:
        return {}
    try:
        data = orjson.loads(doc)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str) and DAY.fullmatch(value):
        return "date"
    return "string"

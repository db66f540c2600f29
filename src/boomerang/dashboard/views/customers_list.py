"""The customer list's data: its filters and sort as the URL gives them (checked, each bad one named), the
customers a page shows with their order totals, and what the stored per-customer results say of them (RFM group,
lifecycle stage, churn risk: read from the traits the scheduled round keeps, never computed on a page view).

URL parameters, also what other pages link with: `q` (customers.search), `rfm` (an RFM group: champions, loyal,
at_risk...; case and spaces do not matter), `stage` (a lifecycle stage: new, active, sleeping, churned,
reactivated), `churn` (low < 30% <= medium < 70% <= high, the predicted churn risk), `sort` (created, name, orders,
spend, last_order, last_seen, churn) and `dir` (asc, desc), `page`.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from boomerang.core.errors import ValidationFailed
from boomerang.customers import search
from boomerang.metrics.lifecycle import STAGES
from boomerang.metrics.rfm import GROUP_NAMES
from boomerang.orders import per_customer

PAGE = 50
CHURN = {"low": (0.0, 0.3), "medium": (0.3, 0.7), "high": (0.7, math.inf)}
SORTS = (*per_customer.SORTS, "churn")
TRAIT_SORTS = {"churn"}


@dataclass
class Filters:
    q: str = ""
    rfm: str = ""
    stage: str = ""
    churn: str = ""
    sort: str = "created"
    descending: bool = True
    page: int = 1

    @property
    def by_traits(self) -> bool:
        return bool(self.rfm or self.stage or self.churn or self.sort in TRAIT_SORTS)

    def params(self, **changes: Any) -> dict[str, Any]:
        """The URL parameters of this view (with `changes`), defaults left out."""
        values = {
            "q": self.q,
            "rfm": self.rfm,
            "stage": self.stage,
            "churn": self.churn,
            "sort": "" if self.sort == "created" else self.sort,
            "dir": "" if self.descending else "asc",
            **changes,
        }
        return {k: v for k, v in values.items() if v not in ("", None)}


def _choice(value: str, options: tuple[str, ...], name: str, errors: list[dict]) -> str:
    value = value.strip().lower().replace(" ", "_").replace("-", "_").replace("'", "")
    if value and value not in options:
        errors.append({"field": name, "reason": f"'{value}' is not one of {', '.join(options)}"})
        return ""
    return value


def parse(q: str, rfm: str, stage: str, churn: str, sort: str, direction: str, page: int) -> Filters:
    """The filters from the URL; ValidationFailed naming each bad parameter."""
    errors: list[dict] = []
    filters = Filters(
        q=q.strip()[: search.MAX_QUERY],
        rfm=_choice(rfm, GROUP_NAMES, "rfm", errors),
        stage=_choice(stage, STAGES, "stage", errors),
        churn=_choice(churn, tuple(CHURN), "churn", errors),
        sort=_choice(sort, SORTS, "sort", errors) or "created",
        page=page,
    )
    direction = direction.strip().lower()
    if direction not in ("", "asc", "desc"):
        errors.append({"field": "dir", "reason": "asc or desc"})
    filters.descending = direction != "asc"
    if errors:
        raise ValidationFailed(errors)
    return filters


@dataclass
class Traits:
    """What the stored per-customer results say, by customer id; `computed`: which kinds were ever computed."""

    rfm: dict[str, str] = field(default_factory=dict)
    stage: dict[str, str] = field(default_factory=dict)
    churn: dict[str, float] = field(default_factory=dict)
    clv: dict[str, float] = field(default_factory=dict)
    computed: set[str] = field(default_factory=set)


_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def _column(frame, name: str) -> dict[str, Any]:
    if frame is None or name not in frame:
        return {}
    values = frame[["customer_id", name]].dropna()
    return dict(zip(values["customer_id"].astype(str), values[name].tolist()))


def traits(log, customer_ids: list[str] | None = None) -> Traits:
    """The stored results of these customers (a page's), or of every customer, read once per change of the event
    log (what filtering by them needs)."""
    if customer_ids is not None:
        return _read(log, customer_ids)
    stamp = log.fingerprint()
    with _cache_lock:
        if _cache.get("stamp") == stamp and _cache.get("log") is log:
            return _cache["traits"]
    found = _read(log, None)
    with _cache_lock:
        _cache.update(stamp=stamp, log=log, traits=found)
    return found


def _read(log, customer_ids: list[str] | None) -> Traits:
    rfm, lifecycle, predictions = (log.traits(kind, customer_ids) for kind in ("rfm", "lifecycle", "predictions"))
    return Traits(
        rfm=_column(rfm, "rfm_group"),
        stage=_column(lifecycle, "stage"),
        churn=_column(predictions, "churn_probability"),
        clv=_column(predictions, "predicted_clv"),
        computed={k for k, f in (("rfm", rfm), ("stage", lifecycle), ("churn", predictions)) if f is not None},
    )


def bucket(risk: float | None) -> str | None:
    if risk is None:
        return None
    return next(name for name, (low, high) in CHURN.items() if low <= risk < high or name == "high")


def _kept(filters: Filters, t: Traits, cid: str) -> bool:
    return (
        (not filters.rfm or t.rfm.get(cid) == filters.rfm)
        and (not filters.stage or t.stage.get(cid) == filters.stage)
        and (not filters.churn or bucket(t.churn.get(cid)) == filters.churn)
    )


def page(session: Session, log, filters: Filters) -> tuple[list[dict[str, Any]], int, Traits]:
    """The page's rows (customer, totals, rfm, stage, churn, churn bucket), how many customers match, the traits."""
    where = search.matching(session, filters.q)
    offset = (filters.page - 1) * PAGE
    if not filters.by_traits:  # the page's customers' traits alone
        found, total = per_customer.listing(
            session, where, sort=filters.sort, descending=filters.descending, limit=PAGE, offset=offset
        )
        t = traits(log, [c.id for c, _ in found])
    else:
        t = traits(log)
        sql_sort = filters.sort if filters.sort in per_customer.SORTS else "created"
        ids = per_customer.ordered_ids(session, where, sort=sql_sort, descending=filters.descending)
        ids = [i for i in ids if _kept(filters, t, i)]
        if filters.sort == "churn":  # stable: ties keep the newest first; the unknown last either way
            known = [i for i in ids if i in t.churn]
            known.sort(key=t.churn.__getitem__, reverse=filters.descending)
            ids = known + [i for i in ids if i not in t.churn]
        total = len(ids)
        found = per_customer.of_ids(session, ids[offset : offset + PAGE])
    rows = [
        {
            "customer": c,
            "totals": totals,
            "rfm": t.rfm.get(c.id),
            "stage": t.stage.get(c.id),
            "churn": t.churn.get(c.id),
            "churn_bucket": bucket(t.churn.get(c.id)),
        }
        for c, totals in found
    ]
    return rows, total, t

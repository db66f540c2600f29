"""What the pages read from the event log: metrics and the summary (cached while the log is unchanged), a
customer's events, their traits.

Results are kept while the log's files are unchanged, or for `fresh_seconds` whatever happens, so that a
busy shop does not recompute every chart on every page view; one computation of a result runs at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import orjson

from boomerang.bootstrap import Workspace
from boomerang.events.reader import Reader
from boomerang.metrics import rolled
from boomerang.metrics import service as metrics
from boomerang.orchestration.status import summary

PAGE_TRAITS = ("rfm", "lifecycle", "predictions")  # a customer's page reads loyalty from the ledger itself


def _frozen(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in params.items() if v not in (None, "")))


class Analytics:
    def __init__(
        self, ws: Workspace, *, fresh_seconds: float = 60.0, max_entries: int = 256, rollups: bool = True
    ) -> None:
        self.ws = ws
        self.rollups = rollups  # the metrics in metrics.rolled.ROLLED from the log's daily rollup, not its events
        self.fresh_seconds = fresh_seconds
        self.max_entries = max_entries
        self._cache: dict[tuple, tuple[tuple, float, Any]] = {}
        self._lock = threading.Lock()
        self._computing = threading.Lock()
        self._warming = threading.Lock()
        self._local = threading.local()  # a page's shared reader (see `reading`)

    def warm(self, job: Callable[[], Any]) -> None:
        """Run `job` (filling the cache) in the background, unless a warm-up is already running."""
        if not self._warming.acquire(blocking=False):
            return

        def run() -> None:
            try:
                job()
            except Exception:  # an empty or busy log: the page will say so when asked
                pass
            finally:
                self._warming.release()

        threading.Thread(target=run, name="dashboard-warm", daemon=True).start()

    def fingerprint(self) -> tuple:
        return self.ws.log.fingerprint()

    def _hit(self, key: tuple) -> tuple[bool, Any]:
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and (time.monotonic() - hit[1] < self.fresh_seconds or hit[0] == self.fingerprint()):
            return True, hit[2]
        return False, None

    def _cached(self, key: tuple, compute) -> Any:
        found, value = self._hit(key)
        if found:
            return value
        with self._computing:
            found, value = self._hit(key)  # computed by another thread while this one waited
            if found:
                return value
            print_ = self.fingerprint()
            value = compute()
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.pop(min(self._cache, key=lambda k: self._cache[k][1]))
            self._cache[key] = (print_, time.monotonic(), value)
        return value

    def metric(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """The metric's JSON answer (see `boomerang.metrics.service.run`)."""
        params = {k: v for k, v in params.items() if v not in (None, "")}
        if self.rollups:
            compute = lambda: rolled.answer(self.ws.uow, self.ws.log, name, params, self._reader())  # noqa: E731
        else:
            compute = lambda: metrics.run(self.ws.uow, self.ws.log, name, params)  # noqa: E731
        return self._cached(("metric", name, _frozen(params)), compute)

    def sales(self, params: dict[str, Any]) -> dict[str, Any]:
        """Orders and revenue per period (the sales chart): the average order value's answer, without its
        per-customer counts where the rollup can give them alone."""
        return self.metric(rolled.SALES if self.rollups else "average_order_value", params)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """The metrics computed inside the block (a page's) share one reader of the log, opened when the first of
        them is not in the cache, instead of one each."""
        if getattr(self._local, "stack", None) is not None:
            yield
            return
        with ExitStack() as stack:
            self._local.stack, self._local.reader = stack, None
            try:
                yield
            finally:
                self._local.stack = self._local.reader = None

    def _reader(self) -> Reader | None:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            return None
        if self._local.reader is None:
            self._local.reader = stack.enter_context(self.ws.log.reader())
        return self._local.reader

    def summary(self) -> dict[str, Any]:
        return self._cached(("summary",), lambda: summary(self.ws.uow, self.ws.log))

    def events(self, customer_id: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """A page of one customer's events, newest first, and how many there are."""
        page, total = self.ws.log.customer_events(customer_id, limit=limit, offset=offset)
        out = []
        for ts, kind, event, source, props in zip(
            page["timestamp"], page["type"], page["event"], page["source"], page["properties"]
        ):
            pretty, brief = _pretty(props)
            out.append(
                {
                    "timestamp": ts.to_pydatetime(),
                    "type": kind,
                    "event": event,
                    "source": source,
                    "properties": pretty,
                    "brief": brief,
                }
            )
        return out, total

    def traits(self, customer_id: str) -> dict[str, dict[str, Any] | None | bool]:
        """Per kind: the customer's stored row, False when computed without them, None when never computed."""
        stored = self.ws.log.customer_traits([customer_id])  # every kind through one reader
        out: dict[str, dict[str, Any] | None | bool] = {}
        for kind in PAGE_TRAITS:
            rows = stored.get(kind)
            if rows is None:
                out[kind] = None
            elif not rows:
                out[kind] = False
            else:
                out[kind] = {k: (None if _missing(v) else v) for k, v in rows[0].items()}
        return out


def _missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN, NaT
    except (TypeError, ValueError):
        return False


def _pretty(properties: Any, *, brief_chars: int = 120) -> tuple[str, str]:
    """The event's properties as indented JSON text and as a one-line start of it (both escaped by the
    template, never trusted as HTML)."""
    if properties is None:
        return "", ""
    try:
        value = orjson.loads(properties) if isinstance(properties, (str, bytes)) else properties
    except orjson.JSONDecodeError:
        text = str(properties)
        return text, text[:brief_chars]
    if value in ({}, [], None):
        return "", ""
    line = orjson.dumps(value, default=str).decode()
    brief = line if len(line) <= brief_chars else line[: brief_chars - 1] + "…"
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode(), brief

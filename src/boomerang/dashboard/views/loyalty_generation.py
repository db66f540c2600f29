"""Promo codes generated in the background, for counts too large to make while the browser waits: one job at a
time per pool, `BATCH` codes a transaction, its progress kept in the server's memory for the pool's page to follow
(a restart loses the bar, never the codes already committed).

Between two transactions the job stands aside for `GAP` seconds. SQLite's busy handler retries a waiting writer
every 100 ms at most, so a job that began its next transaction at once would win the lock every time, and every
page of the dashboard (each takes the write lock on SQLite) would wait for the whole generation."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Request

from boomerang.core.errors import BoomerangError, Conflict
from boomerang.loyalty import codes

log = logging.getLogger(__name__)
BATCH = 25_000  # codes per transaction of a background generation: some tenths of a second holding the lock
GAP = 0.15  # seconds between two transactions, for the writers waiting on the lock


@dataclass
class Generation:
    """A generation running in the background (or just finished), for the pool's page to follow."""

    pool: str
    count: int
    started: datetime
    committed: int = 0  # codes in transactions done
    drawing: int = 0  # codes of the running transaction, inserted so far
    error: str | None = None
    finished: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        done = min(self.committed + self.drawing, self.count)
        return {
            "pool": self.pool,
            "count": self.count,
            "done": done,
            "committed": self.committed,
            "share": done / self.count if self.count else 1.0,
            "finished": self.finished,
            "error": self.error,
            "started": self.started.isoformat(),
        }


class Generations:
    """The app's background generations, one at a time per pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Generation] = {}

    def get(self, pool: str) -> Generation | None:
        with self._lock:
            return self._jobs.get(pool)

    def forget(self, job: Generation) -> None:
        with self._lock:
            if self._jobs.get(job.pool) is job:
                del self._jobs[job.pool]

    def start(self, board, pool: str, count: int) -> Generation:
        with self._lock:
            running = self._jobs.get(pool)
            if running is not None and not running.finished:
                raise Conflict(
                    f"{running.count:,} codes are being generated in this pool: wait until they are done", field="count"
                )
            job = self._jobs[pool] = Generation(pool=pool, count=count, started=board.ws.now())
        threading.Thread(target=_generate_all, args=(board, job), name=f"codes-{pool}", daemon=True).start()
        return job


_APPS = threading.Lock()


def generations(request: Request) -> Generations:
    state = request.app.state
    with _APPS:
        jobs = getattr(state, "loyalty_generations", None)
        if jobs is None:
            jobs = state.loyalty_generations = Generations()
    return jobs


def _generate_all(board, job: Generation) -> None:
    """The job's codes, `BATCH` a transaction, so that other writers get their turn in between."""

    def advance(n: int) -> None:
        job.drawing += n

    now = board.ws.now()
    try:
        while job.committed < job.count:
            n = min(BATCH, job.count - job.committed)
            job.drawing = 0
            with board.ws.uow.session() as s:
                codes.generate(s, job.pool, n, now=now, progress=advance)
            job.committed += n
            if job.committed < job.count:
                time.sleep(GAP)
    except BoomerangError as exc:
        job.error = exc.message
    except Exception:  # the page says it failed; the log has why
        log.exception("generating codes in pool %s failed", job.pool)
        job.error = "the generation failed: the server's log says why"
    finally:
        job.drawing = 0
        job.finished = True

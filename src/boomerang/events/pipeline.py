"""The background half of `boomerang serve`: processes accepted events and flushes them into the log.

It runs in a process of its own, so that the API answering requests and the processing share no
interpreter lock: on a machine with two cores each gets one. It stops when asked, or when the
server that started it is gone (killed, say), after a last round.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.synchronize
import time

from boomerang.config import Settings

log = logging.getLogger("boomerang.pipeline")
WAKE_SECONDS = 0.5  # how often an idle pipeline checks that its server is still there


def run(settings: Settings, stop: multiprocessing.synchronize.Event, wake: multiprocessing.synchronize.Event) -> None:
    """Process and flush every `flush_interval_seconds`, or at once when woken (events were accepted),
    until stopped or orphaned."""
    from boomerang.bootstrap import open_workspace
    from boomerang.core.clock import naive_utc
    from boomerang.events.flush import flush
    from boomerang.journeys.worker import after_flush, scheduled, tick

    ws = open_workspace(settings)
    interval = settings.ingest.flush_interval_seconds
    parent = multiprocessing.parent_process()
    every, last_refresh = settings.segments_refresh_minutes * 60, time.monotonic()
    while True:
        waited = 0.0
        while waited < interval and not stop.is_set() and (parent is None or parent.is_alive()):
            if wake.wait(min(WAKE_SECONDS, interval - waited)):
                break
            waited += WAKE_SECONDS
        wake.clear()  # what arrives from here on wakes the next round
        done = stop.is_set() or (parent is not None and not parent.is_alive())
        frames: list = []
        try:
            flush(ws, moved=frames)
            after_flush(ws, frames, naive_utc(ws.clock.now()))  # live segments and journeys: the customers just seen
            tick(ws)  # due journey timers and messages
        except Exception:  # noqa: BLE001 - the next round retries; the inbox and the store keep everything
            log.exception("processing, flushing, segments or journeys failed; will retry")
        if time.monotonic() - last_refresh >= every and not done:
            last_refresh = time.monotonic()
            try:
                scheduled(ws)  # rolling windows, relative dates and silences move with time
            except Exception:  # noqa: BLE001
                log.exception("scheduled segments or journeys failed; will retry")
        if done:
            return


class Pipeline:
    """Starts and stops the pipeline process."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited threads, locks or connections
        self._stop = context.Event()
        self._wake = context.Event()
        self._process = context.Process(
            target=run, args=(settings, self._stop, self._wake), name="boomerang-pipeline", daemon=True
        )

    def nudge(self) -> None:
        """Events were accepted: start the next round now rather than at the next interval."""
        self._wake.set()

    def start(self) -> None:
        self._process.start()

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._wake.set()
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()

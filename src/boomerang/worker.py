"""The background work, as processes: the pipeline beside `boomerang serve`, and `boomerang worker`; and the
Telegram bot's long polling, a thread of `serve`.

The pipeline runs in a process of its own, so that the API answering requests and the processing share
no interpreter lock: on a machine with two cores each gets one. It stops when asked, or when the server
that started it is gone (killed, say), after a last round. Both run the rounds of orchestration.rounds.
The bot's poller is a thread of the server, as its webhook would be: customers' commands are few and light,
and a process of their own would cost a third interpreter for a request that mostly waits.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.synchronize
import threading
import time
from typing import TYPE_CHECKING

from boomerang.bootstrap import Workspace, open_workspace
from boomerang.config import Settings
from boomerang.core import collector
from boomerang.orchestration import rounds

if TYPE_CHECKING:
    from boomerang.bot.service import Bot

log = logging.getLogger("boomerang.pipeline")
WAKE_SECONDS = 0.5  # how often an idle pipeline checks that its server is still there


def run(settings: Settings, stop: multiprocessing.synchronize.Event, wake: multiprocessing.synchronize.Event) -> None:
    """Process and flush every `flush_interval_seconds`, or at once when woken (events were accepted),
    until stopped or orphaned."""
    ws = open_workspace(settings)
    collector.tune()
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
        try:
            rounds.signal_catalog_changes(ws)  # their events go into the inbox, flushed just below
        except Exception:  # noqa: BLE001 - the changes stay pending; events move on regardless
            log.exception("fanning out catalog changes failed; will retry")
        try:
            rounds.ingest(ws)  # effects, the log, live segments and journeys: the customers just seen
            rounds.tick(ws)  # due journey timers, campaigns and messages
        except Exception:  # noqa: BLE001 - the next round retries; the inbox and the store keep everything
            log.exception("processing, flushing, segments or journeys failed; will retry")
        if time.monotonic() - last_refresh >= every and not done:
            last_refresh = time.monotonic()
            scheduled(ws, segments_apart=True)  # events keep moving while the segments are recomputed
        if done:
            return


def scheduled(ws: Workspace, *, segments_apart: bool = False) -> None:
    """Every few minutes: what moves with time alone, and forgetting message ids past the deduplication window;
    each retried at the next turn if it fails, neither holding up the other."""
    try:
        rounds.scheduled(ws, segments_apart=segments_apart)  # rolling windows, relative dates and silences
    except Exception:  # noqa: BLE001
        log.exception("scheduled segments or journeys failed; will retry")
    try:
        rounds.forget_seen(ws)
    except Exception:  # noqa: BLE001
        log.exception("forgetting old message ids failed; will retry")
    try:
        rounds.train_recommendations(ws)  # in a thread: the rounds go on while it learns
    except Exception:  # noqa: BLE001
        log.exception("starting the recommendations' training failed; will retry")


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


class BotPoller:
    """The shop's Telegram bot, by long polling in a thread of `serve` (`Bot.keep_polling`): idle while no bot is
    set or Telegram has a webhook for it, so that a shop running only `serve` has a working bot."""

    GRACE_SECONDS = 3.0  # from `stop`: enough to finish the update at hand (a transaction and an answer)

    def __init__(self, bot: Bot) -> None:
        self._stop = threading.Event()
        self._asked = 0.0
        # a daemon: on the way out it is most likely in a long poll, which holds no transaction and has already
        # confirmed what was handled; the process ends it rather than wait up to the poll's 25 seconds
        self._thread = threading.Thread(
            target=bot.keep_polling, args=(self._stop,), name="boomerang-telegram", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask it to stop: it does after the update at hand, or, in a long poll, when the answer comes."""
        self._asked = time.monotonic()
        self._stop.set()

    def join(self) -> bool:
        """Wait until GRACE_SECONDS after `stop` for it to end; whether it did (or is left in a long poll)."""
        self._thread.join(max(0.0, self._asked + self.GRACE_SECONDS - time.monotonic()))
        return not self._thread.is_alive()


def run_forever(
    ws: Workspace, *, interval: float = 1.0, schedule_minutes: float = 5.0, batch: int = 1000, stop=None
) -> None:
    """`boomerang worker`: timers, campaigns, messages and scheduled triggers, until stopped."""
    last = 0.0
    while stop is None or not stop.is_set():
        try:
            rounds.tick(ws, batch=batch)
        except Exception:  # noqa: BLE001 - the next round retries; nothing is lost in the store
            log.exception("journey round failed; will retry")
        if time.monotonic() - last >= schedule_minutes * 60:
            last = time.monotonic()
            scheduled(ws)
        time.sleep(interval)

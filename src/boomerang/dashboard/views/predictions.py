"""The predictions page: the last time-split evaluation of the forecasts (table and reliability curve) with its
date, and a new one started in the background (it takes some seconds to a minute), which the page follows."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from boomerang.core.errors import BoomerangError, Conflict, ValidationFailed
from boomerang.dashboard.views.common import BoardDep, Viewer, checked_form, json_answer, redirect, render
from boomerang.predictions import backtest, evaluation

router = APIRouter()
log = logging.getLogger(__name__)


@dataclass
class Run:
    """An evaluation running in the background, or the last one's failure."""

    started: datetime
    cutoff: str
    horizon_weeks: int
    running: bool = True
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "error": self.error,
            "started": self.started.isoformat(timespec="seconds"),
            "cutoff": self.cutoff,
            "horizon_weeks": self.horizon_weeks,
        }


_LOCK = threading.Lock()


def _current(request: Request) -> Run | None:
    return getattr(request.app.state, "predictions_evaluation", None)


def _run(board, run: Run) -> None:
    ws = board.ws
    try:
        result = backtest.evaluate(ws.uow, ws.log, cutoff=run.cutoff, horizon_weeks=run.horizon_weeks)
        backtest.save(ws.settings.home, result, ws.now())
    except BoomerangError as exc:
        run.error = exc.message
    except Exception:  # the page says it failed; the log has why
        log.exception("evaluating the predictions failed")
        run.error = "the evaluation failed: the server's log says why"
    finally:
        run.running = False


def _chart(result: dict[str, Any]) -> dict[str, Any] | None:
    """The model's reliability curve: per probability bin, its mean forecast and the share who bought."""
    curve = result.get("calibration", {}).get("model", {}).get("curve")
    if not curve:
        return None
    return {
        "type": "line",
        "percent": True,
        "labels": [f"{p['low']:.0%}–{p['high']:.0%}" for p in curve],
        "datasets": [
            {"label": "bought (observed)", "data": [p["observed"] for p in curve]},
            {"label": "P(buy) forecast", "data": [p["predicted"] for p in curve], "borderDash": [5, 4]},
        ],
    }


def _default_cutoff(board) -> str:
    """13 weeks before today: the latest cut-off whose horizon has happened."""
    return (board.ws.now().date() - timedelta(weeks=13)).isoformat()


@router.get("/predictions")
def predictions_page(request: Request, user: Viewer, board: BoardDep) -> Response:
    return _page(request, user, board)


def _page(request: Request, user, board, *, problem: str | None = None, status_code: int = 200, **asked) -> Response:
    result = backtest.last(board.ws.settings.home)
    run = _current(request)
    return render(
        request,
        "predictions.html",
        user=user,
        status_code=status_code,
        problem=problem,
        result=result,
        rows=evaluation.rows(result) if result else [],
        chart=_chart(result) if result else None,
        run=run.as_dict() if run else None,
        cutoff=asked.get("cutoff") or (result or {}).get("cutoff") or _default_cutoff(board),
        horizon_weeks=asked.get("horizon_weeks") or (result or {}).get("horizon_weeks", 13),
    )


@router.get("/predictions/evaluation")
def evaluation_status(request: Request, user: Viewer) -> Response:
    """The background evaluation's state, for the page to follow."""
    run = _current(request)
    return json_answer(run.as_dict() if run else {"running": False, "error": None})


def _form(form) -> tuple[str, int]:
    cutoff, weeks = str(form.get("cutoff") or ""), str(form.get("horizon_weeks") or "13")
    try:
        date.fromisoformat(cutoff)
    except ValueError:
        raise ValidationFailed([{"field": "cutoff", "reason": "a day, YYYY-MM-DD"}]) from None
    if not weeks.isdigit() or not 1 <= int(weeks) <= 520:
        raise ValidationFailed([{"field": "horizon_weeks", "reason": "a whole number of weeks from 1 to 520"}])
    return cutoff, int(weeks)


@router.post("/predictions/evaluation")
async def start_evaluation(request: Request, user: Viewer, board: BoardDep) -> Response:
    """Start an evaluation in the background (one at a time) and go back to the page, which follows it."""
    form = await checked_form(request)
    try:
        cutoff, weeks = _form(form)
        with _LOCK:
            running = _current(request)
            if running is not None and running.running:
                raise Conflict("an evaluation is already running: wait until it is done", field="cutoff")
            run = request.app.state.predictions_evaluation = Run(board.ws.now(), cutoff, weeks)
    except BoomerangError as exc:
        asked = {"cutoff": form.get("cutoff"), "horizon_weeks": form.get("horizon_weeks")}
        return _page(request, user, board, problem=f"{exc.field}: {exc.message}", status_code=exc.status_code, **asked)
    threading.Thread(target=_run, args=(board, run), name="predictions-evaluation", daemon=True).start()
    return redirect("/predictions")

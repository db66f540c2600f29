"""Recommendations: the blocks with their chains in words and how each performed over the last days (impressions,
clicks, attributed orders and revenue, the incremental revenue against its control, and a chart), the trained
model's quality per algorithm on the shop's own purchases, and training it again in the background. The blocks
editor with its live preview is `recommendations_editor`."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from boomerang.core.errors import BoomerangError
from boomerang.dashboard.views.common import BoardDep, Marketer, Viewer, checked_form, json_answer, redirect, render
from boomerang.orchestration import reco_performance, reco_training
from boomerang.recommendations import model as trained
from boomerang.recommendations import store

log = logging.getLogger("boomerang.recommendations")
router = APIRouter()
PAGE = "/recommendations"
# the algorithms as a marketer reads them (blocks.ALGORITHMS says what each does)
STEP_NAMES = {
    "personal": "Personal picks",
    "repeat": "Buy again",
    "als": "Learned taste (ALS)",
    "item_knn": "Customers who bought this also bought",
    "bought_together": "Bought together",
    "similar": "Similar products",
    "recently_viewed": "Recently viewed",
    "popular_in_category": "Best sellers of the category",
    "trending": "Trending this week",
    "popular": "Best sellers",
}
# the offline evaluation's models (reco_training.QUALITY_MODELS and the personal chain) as a marketer reads them
QUALITY_NAMES = {
    "popularity": "Best sellers",
    "top_frequency": "Buy again (most bought by the customer)",
    "bought_together": "Bought together",
    "item_knn": "Customers who bought this also bought",
    "als": "Learned taste (ALS)",
    "tifu_knn": "Repeat and neighbours (TIFU-KNN)",
    "personal chain": "Personal picks (the chain blocks use)",
}
CONTEXT_NAMES = {
    "none": "anywhere",
    "customer": "for a customer",
    "product": "on a product page",
    "category": "on a category page",
    "cart": "in the cart",
}


def training_of(ws) -> reco_training.Trainer:
    return reco_training.trainer(ws.settings.reco_model_path)


def steps(chain: list[str]) -> list[str]:
    return [STEP_NAMES.get(a, a) for a in chain]


def _chart(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    shown = [r for r in rows if r["variants"]["block"]["impressions"] or r["variants"]["control"]["impressions"]]
    if not shown:
        return None
    arms = [r["variants"]["block"] for r in shown]  # the block's own picks; the control's are plain best sellers
    return {
        "type": "bar",
        "labels": [r["block"] for r in shown],
        "datasets": [
            {"label": "Clicks (block)", "data": [b["clicks"] for b in arms]},
            {"label": "Attributed revenue (block)", "data": [round(b["revenue"], 2) for b in arms], "yAxisID": "y2"},
        ],
    }


def _overview(board, days: int) -> dict[str, Any]:
    ws = board.ws
    with ws.uow.session() as s:
        blocks = store.listing(s)
    model = trained.summary(ws.settings.reco_model_path)  # when, from what, its quality: without loading it
    problem = None
    try:
        performance = reco_performance.compute(ws.log, now=ws.now(), days=days, blocks=[b["name"] for b in blocks])
    except BoomerangError as exc:
        performance, problem = None, "; ".join(e["reason"] for e in exc.errors)
    figures = {r["block"]: r for r in performance["blocks"]} if performance else {}
    return {
        "blocks": [{**b, "steps": steps(b["chain"]), "figures": figures.get(b["name"])} for b in blocks],
        "others": [r for name, r in figures.items() if name not in {b["name"] for b in blocks}],
        "performance": performance,
        "problem": problem,
        "chart": _chart(list(figures.values())),
        "model": model,
    }


@router.get(PAGE)
async def blocks_page(
    request: Request,
    user: Viewer,
    board: BoardDep,
    days: int = Query(reco_performance.DEFAULT_DAYS, ge=1, le=reco_performance.MAX_DAYS),
    reset: str = "",
    deleted: str = "",
    trained: str = "",
) -> Response:
    data = await run_in_threadpool(_overview, board, days)
    return render(
        request,
        "recommendations.html",
        user=user,
        days=days,
        contexts=CONTEXT_NAMES,
        quality_names=QUALITY_NAMES,
        training=training_of(board.ws).state,
        reset=reset,
        deleted=deleted,
        trained=trained,
        **data,
    )


@router.post(f"{PAGE}/train")
async def train(request: Request, user: Marketer, board: BoardDep) -> Response:
    """Start training in the background; the page follows it (`/recommendations/train.json`) and reloads."""
    await checked_form(request)
    ws = board.ws
    history = ws.settings.recommendations.history_days
    training_of(ws).start(ws.log, ws.settings.reco_model_path, now=ws.now(), history_days=history)
    return redirect(f"{PAGE}#training")


@router.get(f"{PAGE}/train.json")
def training_state(user: Viewer, board: BoardDep) -> Response:
    state = dict(training_of(board.ws).state)
    for key in ("started", "finished"):
        if key in state:
            state[key] = datetime.fromtimestamp(state[key]).isoformat(timespec="seconds")
    return json_answer(state)

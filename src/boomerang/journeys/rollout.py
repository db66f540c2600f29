"""Rolling out a split's winner: for each active journey whose split node asks for it (`roll_out: true`), once
the variants' always-valid intervals name a winner (experiments.readout.winner), a new version of the journey sets
that node's `winner`, so every customer who reaches it after goes to the winning variant. Instances already past
the node keep their variant; the new version says who decided and the definition shows it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from boomerang.journeys import models as m
from boomerang.journeys import service
from boomerang.journeys.definition import Split


def roll_out_winners(session: Session, *, global_control_share: float, now: datetime) -> list[dict[str, Any]]:
    """The (journey, node, winner) rolled out in this call; the caller commits."""
    done = []
    for row in session.query(m.Journey).filter(m.Journey.status == "active"):
        journey = service.definition_of(session, row.id, row.version)
        waiting = [
            n for n, node in journey.nodes.items() if isinstance(node, Split) and node.roll_out and not node.winner
        ]
        if not waiting:
            continue
        splits = service.results(session, row.name, global_control_share=global_control_share)["splits"]
        decided = {n: splits[n]["winner"] for n in waiting if splits.get(n, {}).get("winner")}
        if not decided:
            continue
        definition = dict(row.definition)
        definition["nodes"] = {
            n: {**node, "winner": decided[n]} if n in decided else node for n, node in definition["nodes"].items()
        }
        service.save(session, definition, now=now)
        done += [{"journey": row.name, "node": n, "winner": w} for n, w in decided.items()]
    return done


def roll_out(uow, *, global_control_share: float, now: datetime) -> list[dict[str, Any]]:
    """roll_out_winners in its own transaction (the worker's scheduled round)."""
    with uow.session() as session, session.begin():
        return roll_out_winners(session, global_control_share=global_control_share, now=now)

"""The segment x goal x channel matrix: which segments are spoken to, for what, on which channels.

A cell lists the journeys and campaigns aimed at a segment with a goal on a channel. Two kinds of
holes are flagged: a segment nobody speaks to (customers left alone), and something aimed at a
segment with no members (money spent on nobody). Journeys and campaigns report what they aim at by
registering a source of `Usage` (see `SOURCES`); the journeys started by a segment are asked directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from boomerang.bootstrap import Workspace
from boomerang.core.vocab import CHANNELS
from boomerang.segments.models import Segment

GOALS = ("first_purchase", "repeat_purchase", "reactivation", "loyalty", "feedback")


@dataclass(frozen=True)
class Usage:
    segment: str
    kind: str  # journey or campaign
    name: str
    goal: str  # one of GOALS
    channels: tuple[str, ...]


SOURCES: list[Callable[[Workspace], list[Usage]]] = []  # journeys and campaigns append theirs


def matrix(ws: Workspace) -> dict[str, Any]:
    from boomerang.journeys.service import matrix_usages  # journeys build on segments: asked, not imported

    usages = matrix_usages(ws) + [u for source in SOURCES for u in source(ws)]
    with ws.uow.session() as session:
        segments = list(session.execute(sa.select(Segment.name, Segment.title, Segment.size).order_by(Segment.name)))
    rows = []
    for name, title, size in segments:
        mine = [u for u in usages if u.segment == name]
        cells = {
            goal: {ch: [f"{u.kind}:{u.name}" for u in mine if u.goal == goal and ch in u.channels] for ch in CHANNELS}
            for goal in GOALS
        }
        flags = []
        if not mine:
            flags.append("nobody speaks to this segment")
        if mine and size == 0:
            flags.append("aimed at a segment with no members")
        if size is None:
            flags.append("never computed: run boomerang segments refresh")
        rows.append(
            {
                "segment": name,
                "title": title,
                "size": size,
                "cells": cells,
                "flags": flags,
                "goals": sorted({u.goal for u in mine}),
                "channels": sorted({c for u in mine for c in u.channels}),
            }
        )
    unknown = sorted({u.segment for u in usages} - {name for name, _, _ in segments})
    return {
        "goals": list(GOALS),
        "channels": list(CHANNELS),
        "rows": rows,
        "holes": sum(1 for r in rows if r["flags"]),
        "unknown_segments": unknown,
    }

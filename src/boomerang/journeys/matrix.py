"""The segment x goal x channel matrix: which segments are spoken to, for what, on which channels.

A cell lists the journeys and campaigns aimed at a segment with a goal on a channel. Two kinds of
holes are flagged: a segment nobody speaks to (customers left alone), and something aimed at a
segment with no members (money spent on nobody). A journey started by a segment speaks to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.vocab import CHANNELS
from boomerang.journeys import models as m
from boomerang.journeys.definition import SegmentTrigger, Send
from boomerang.journeys.service import definition_of, purpose
from boomerang.segments.models import Segment

GOALS = ("first_purchase", "repeat_purchase", "reactivation", "loyalty", "feedback")


@dataclass(frozen=True)
class Usage:
    segment: str
    kind: str  # journey or campaign
    name: str
    goal: str  # one of GOALS
    channels: tuple[str, ...]


def matrix(session: Session) -> dict[str, Any]:
    usages = journey_usages(session)
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


def journey_usages(session: Session) -> list[Usage]:
    """What the active and paused journeys aim at, for the segment x goal x channel matrix: a journey
    started by a segment speaks to it, for its goal, on the channels of its send nodes."""
    rows = list(session.scalars(sa.select(m.Journey).where(m.Journey.status != "draft")))
    journeys = [definition_of(session, row.id, row.version) for row in rows]
    out = []
    for journey in journeys:
        if not isinstance(journey.trigger, SegmentTrigger) or journey.trigger.on != "entered":
            continue
        channels = tuple(
            sorted({ch for n in journey.nodes.values() if isinstance(n, Send) for ch in (n.channel, *n.fallback)})
        )
        out.append(Usage(journey.trigger.segment, "journey", journey.name, purpose(journey), channels))
    return out

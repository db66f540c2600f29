"""Ready-made journeys, one YAML file each under library/: a shop installs them as drafts, edits them
freely and activates the ones it wants.

The journeys triggered by a segment (browse_abandonment, second_order) need their ready-made segment:
`install` saves the ones missing first (a shop's edited segment stays as it is).
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.documents import read
from boomerang.journeys.definition import Journey, SegmentTrigger, parse_journey
from boomerang.journeys.service import save
from boomerang.segments import library as segment_library
from boomerang.segments import service as segments
from boomerang.segments.definition import InSegment, leaves
from boomerang.segments.models import Segment


def raw_definitions() -> list[dict[str, Any]]:
    """Every ready-made journey as plain data, in file name order."""
    folder = resources.files("boomerang") / "journeys" / "library"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return [read(f.read_text("utf-8")) for f in files]


def definitions() -> list[Journey]:
    """Every ready-made journey, validated."""
    return [parse_journey(raw) for raw in raw_definitions()]


def get(name: str) -> dict[str, Any]:
    """One ready-made journey as plain data (to edit before saving)."""
    for raw in raw_definitions():
        if raw["name"] == name:
            return raw
    raise KeyError(name)


def install(session: Session, *, now: datetime) -> list[dict[str, Any]]:
    """Save every ready-made journey as a draft: installing again changes nothing, a journey already
    there keeps its status, and one edited since becomes a new version with the ready-made definition."""
    journeys = definitions()
    _missing_segments(session, {j.trigger.segment for j in journeys if isinstance(j.trigger, SegmentTrigger)}, now)
    return [save(session, raw, now=now) for raw in raw_definitions()]


def ready_segment(name: str) -> bool:
    """Whether a segment of this name is ready-made (saved with a journey of the library that needs it)."""
    return any(d.name == name for d in segment_library.definitions())


def add_ready_segments(session: Session, names: set[str], *, now: datetime) -> None:
    """Save the ready-made segments named that the workspace does not have (a journey started from the library
    on the dashboard's canvas brings its segment along, as `install` does)."""
    _missing_segments(session, names, now)


def _missing_segments(session: Session, names: set[str], now: datetime) -> None:
    """Save the ready-made segments named (and those they use) that the workspace does not have."""
    known = set(session.scalars(sa.select(Segment.name)))
    ready = {d.name: d for d in segment_library.definitions()}
    wanted: list[str] = []

    def want(name: str) -> None:
        if name in known or name in wanted or name not in ready:
            return  # a segment that is neither there nor ready-made: save() names it
        for leaf in leaves(ready[name].tree):
            if isinstance(leaf, InSegment):
                want(leaf.segment)
        wanted.append(name)

    for name in sorted(names):
        want(name)
    for name in wanted:
        segments.save(session, ready[name], now=now)

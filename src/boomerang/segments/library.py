"""Ready-made segments, one YAML file each under library/: a shop installs them and edits them freely."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

import yaml
from sqlalchemy.orm import Session

from boomerang.segments.definition import Definition, InSegment, leaves, parse_definition
from boomerang.segments.service import save


def definitions() -> list[Definition]:
    """Every ready-made definition, those used by others first."""
    folder = resources.files("boomerang") / "segments" / "library"
    found = {
        d.name: d
        for d in (
            parse_definition(yaml.safe_load(f.read_text("utf-8")))
            for f in sorted(folder.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".yaml")
        )
    }
    ordered: list[Definition] = []

    def add(d: Definition) -> None:
        if d in ordered:
            return
        for leaf in leaves(d.tree):
            if isinstance(leaf, InSegment):
                add(found[leaf.segment])
        ordered.append(d)

    for d in found.values():
        add(d)
    return ordered


def install(session: Session, *, now: datetime) -> list[dict[str, Any]]:
    """Save every ready-made segment; installing again over an edited one makes it a new version."""
    return [save(session, d, now=now) for d in definitions()]

"""Templates in the store: save (validated, versioned, each version kept), list, get, delete, the ready-made
library, preview. A locale's email `design` (the designer's blocks) is made into its html and text on save."""

from __future__ import annotations

import re
from datetime import datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from boomerang.core.documents import read
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.messaging import email_design, templates
from boomerang.messaging.models import Template, TemplateVersion
from boomerang.messaging.preferences import TOPICS

NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,199}$")
KEYS = {"name", "title", "topic", "default_locale", "locales"}


def validate(definition: Any) -> dict[str, Any]:
    """The definition, checked; ValidationFailed naming each bad field."""
    if not isinstance(definition, dict):
        raise ValidationFailed([{"field": "template", "reason": "must be an object"}])
    errors = [
        {"field": k, "reason": f"unknown field (one of {', '.join(sorted(KEYS))})"} for k in definition if k not in KEYS
    ]
    name = definition.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        errors.append({"field": "name", "reason": "lowercase letters, digits, _ and -, up to 200"})
    topic = definition.get("topic")
    if topic is not None and topic not in TOPICS:
        errors.append(
            {"field": "topic", "reason": f"unknown topic (one of {', '.join(TOPICS)}; none for transactional)"}
        )
    if errors:
        raise ValidationFailed(errors)
    default = definition.get("default_locale") or "en"
    locales = email_design.compile_locales(definition.get("locales"))
    templates.check(email_design.without_design(locales), default)
    return {
        "name": name,
        "title": str(definition.get("title") or ""),
        "topic": topic,
        "default_locale": default,
        "locales": locales,
    }


def save(session: Session, definition: Any, *, now: datetime) -> Template:
    """Create or replace a template (its version goes up when it changes); flushes."""
    clean = validate(definition)
    row = session.get(Template, clean["name"])
    if row is None:
        row = Template(
            name=clean["name"],
            title=clean["title"],
            topic=clean["topic"],
            default_locale=clean["default_locale"],
            variants=clean["locales"],
            version=1,
            updated_at=now,
        )
        session.add(row)
    elif (row.title, row.topic, row.default_locale, row.variants) != (
        clean["title"],
        clean["topic"],
        clean["default_locale"],
        clean["locales"],
    ):
        row.title, row.topic, row.default_locale, row.variants = (
            clean["title"],
            clean["topic"],
            clean["default_locale"],
            clean["locales"],
        )
        row.version += 1
        row.updated_at = now
    else:
        return row
    session.flush()
    _keep_version(session, row)
    return row


def _keep_version(session: Session, row: Template) -> None:
    session.add(
        TemplateVersion(
            template=row.name,
            version=row.version,
            title=row.title,
            topic=row.topic,
            default_locale=row.default_locale,
            variants=row.variants,
            saved_at=row.updated_at,
        )
    )
    session.flush()


def versions(session: Session, name: str) -> list[dict[str, Any]]:
    """A template's saved versions, newest first (those saved before versions were kept are not there)."""
    rows = session.scalars(
        sa.select(TemplateVersion).where(TemplateVersion.template == name).order_by(TemplateVersion.version.desc())
    )
    return [
        {
            "version": r.version,
            "title": r.title,
            "saved_at": r.saved_at.isoformat(),
            "locales": sorted(r.variants),
            "designed": any(isinstance(v.get("email"), dict) and "design" in v["email"] for v in r.variants.values()),
        }
        for r in rows
    ]


def version_definition(session: Session, name: str, version: Any) -> dict[str, Any]:
    """An earlier version of a template as a definition (to restore it: save it, which makes a new version)."""
    row = (
        session.scalar(
            sa.select(TemplateVersion).where(TemplateVersion.template == name, TemplateVersion.version == version)
        )
        if type(version) is int
        else None
    )
    if row is None:
        raise NotFound(f"template {name!r} has no version {version!r}", field="version")
    return {
        "name": row.template,
        "title": row.title,
        "topic": row.topic,
        "default_locale": row.default_locale,
        "locales": row.variants,
    }


def get(session: Session, name: str) -> Template:
    row = session.get(Template, name)
    if row is None:
        raise NotFound(f"no template {name!r}", field="template")
    return row


def as_dict(row: Template) -> dict[str, Any]:
    return {
        "name": row.name,
        "title": row.title,
        "topic": row.topic,
        "default_locale": row.default_locale,
        "locales": row.variants,
        "version": row.version,
        "updated_at": row.updated_at.isoformat(),
    }


def listing(session: Session) -> list[dict[str, Any]]:
    rows = session.scalars(sa.select(Template).order_by(Template.name))
    return [
        {
            "name": r.name,
            "title": r.title,
            "topic": r.topic,
            "locales": sorted(r.variants),
            "channels": sorted({c for v in r.variants.values() for c in v if c in templates.CHANNEL_FIELDS}),
            "version": r.version,
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]


def delete(session: Session, name: str) -> None:
    """A template and its versions (a new one of the same name starts again at version 1)."""
    session.delete(get(session, name))
    session.execute(sa.delete(TemplateVersion).where(TemplateVersion.template == name))
    session.flush()


def library() -> list[dict[str, Any]]:
    """The ready-made templates (library/*.yaml), as plain data."""
    folder = resources.files("boomerang") / "messaging" / "library"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return [read(f.read_text("utf-8")) for f in files]


def install(session: Session, *, now: datetime, replace: bool = False) -> list[str]:
    """Save the ready-made templates a shop does not have yet (all of them with `replace`)."""
    saved = []
    for definition in library():
        if replace or session.get(Template, definition["name"]) is None:
            save(session, definition, now=now)
            saved.append(definition["name"])
    return saved

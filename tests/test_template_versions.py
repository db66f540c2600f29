"""Template versions: every save that changes a template keeps the version it made; an earlier one is restored
by saving it again (a new version equal to it); deleting a template deletes its history. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from boomerang.core.errors import NotFound
from boomerang.messaging import service


def _definition(subject: str, design: list | None = None) -> dict:
    email = {"design": design} if design is not None else {"html": "<p>{{ first_name }}</p>"}
    return {"name": "welcome", "title": subject, "locales": {"en": {"subject": subject, "email": email}}}


def test_versions_are_kept_and_one_is_restored(any_ws):
    ws = any_ws
    now = ws.now()
    with ws.uow.session() as s:
        service.save(s, _definition("One"), now=now)
        service.save(s, _definition("One"), now=now)  # no change: no version
        service.save(s, _definition("Two", [{"type": "text", "text": "Hi {{ first_name }}"}]), now=now)
    with ws.uow.session() as s:
        listed = service.versions(s, "welcome")
        assert [(v["version"], v["title"], v["designed"]) for v in listed] == [(2, "Two", True), (1, "One", False)]
        old = service.version_definition(s, "welcome", 1)
        assert old["locales"]["en"]["email"] == {"html": "<p>{{ first_name }}</p>"}
        row = service.save(s, old, now=now)
        assert (row.version, row.title, row.variants) == (3, "One", old["locales"])
    with ws.uow.session() as s:
        assert [v["version"] for v in service.versions(s, "welcome")] == [3, 2, 1]
        with pytest.raises(NotFound) as caught:
            service.version_definition(s, "welcome", 7)
        assert caught.value.field == "version"
        service.delete(s, "welcome")
    with ws.uow.session() as s:
        assert service.versions(s, "welcome") == []
        assert service.save(s, _definition("Again"), now=now).version == 1  # a new template, a new history
        assert [v["version"] for v in service.versions(s, "welcome")] == [1]

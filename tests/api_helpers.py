"""Helpers for API tests: a client with keys, and Basic auth as Segment's SDKs send it."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from boomerang.api.app import create_app
from boomerang.auth.service import create_key
from boomerang.events.process import process
from boomerang.orchestration.rounds import move_events


def basic(key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


class Api:
    """A test client on a workspace, with a write key and a secret key."""

    def __init__(self, ws) -> None:
        self.ws = ws
        with ws.uow.session() as session:
            _, self.write_key = create_key(session, kind="write", name="t", now=ws.now())
            _, self.secret_key = create_key(session, kind="secret", name="t", now=ws.now())
        self.client = TestClient(create_app(ws, background=False))

    def track(self, kind: str, body: dict, *, process_now: bool = True, server: bool = False, **kw):
        """A tracking call with the public write key (`server`: the secret key, as the shop's backend sends),
        then the background step the server runs every moment (unless told not to)."""
        key = self.secret_key if server else self.write_key
        response = self.client.post(f"/v1/{kind}", json=body, headers=basic(key), **kw)
        if process_now:
            process(
                self.ws.uow, self.ws.clock, chunk_rows=self.ws.settings.ingest.process_chunk_rows, intake=self.ws.intake
            )
        return response

    def api(self, method: str, path: str, **kw):
        headers = {"Authorization": f"Bearer {self.secret_key}", **kw.pop("headers", {})}
        return self.client.request(method, f"/api{path}", headers=headers, **kw)

    def events(self, sql: str = "SELECT message_id, event, customer_id FROM events ORDER BY message_id"):
        move_events(self.ws)
        with self.ws.log.connect() as conn:
            return conn.execute(sql).fetchall()

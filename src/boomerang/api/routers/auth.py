"""API keys: list, create (the key is shown once), revoke."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.auth.service import create_key, list_keys, revoke_key

router = APIRouter(prefix="/keys", tags=["keys"])


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["write", "secret"]
    name: str = Field(default="", max_length=255)


def _row(key) -> dict:
    return {
        "id": key.id,
        "kind": key.kind,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


@router.get("")
def index(session: SessionDep) -> dict:
    return {"items": [_row(k) for k in list_keys(session)]}


@router.post("", status_code=201)
def create(body: KeyIn, ws: WorkspaceDep, session: SessionDep) -> dict:
    key, plaintext = create_key(session, kind=body.kind, name=body.name, now=ws.now())
    return {**_row(key), "key": plaintext}


@router.delete("/{key_id}")
def revoke(key_id: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    return _row(revoke_key(session, key_id, now=ws.now()))

"""API keys: list, create (the key is shown once), revoke."""

from __future__ import annotations

from fastapi import APIRouter

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.auth.schemas import KeyCreated, KeyIn, KeyList, KeyOut
from boomerang.auth.service import create_key, list_keys, revoke_key

router = APIRouter(prefix="/keys", tags=["keys"])


@router.get("", response_model=KeyList)
def index(session: SessionDep) -> KeyList:
    return KeyList(items=[KeyOut.model_validate(k) for k in list_keys(session)])


@router.post("", status_code=201, response_model=KeyCreated)
def create(body: KeyIn, ws: WorkspaceDep, session: SessionDep) -> KeyCreated:
    key, plaintext = create_key(session, kind=body.kind, name=body.name, now=ws.now(), secret=ws.secret)
    return KeyCreated(**KeyOut.model_validate(key).model_dump(), key=plaintext)


@router.delete("/{key_id}", response_model=KeyOut)
def revoke(key_id: str, ws: WorkspaceDep, session: SessionDep) -> KeyOut:
    return KeyOut.model_validate(revoke_key(session, key_id, now=ws.now()))

"""Channels as JSON: each channel's provider and settings (secrets stored encrypted, answered masked)."""

from __future__ import annotations

from fastapi import APIRouter

from boomerang.api.deps import SessionDep, WorkspaceDep
from boomerang.channels import config
from boomerang.channels.schemas import ChannelList, ChannelOut, ChannelSettings

router = APIRouter(tags=["channels"])


@router.get("/channels", response_model=ChannelList)
def list_channels(ws: WorkspaceDep, session: SessionDep) -> dict:
    return {"items": [config.describe(session, c, secret=ws.secret) for c in config.PROVIDERS]}


@router.get("/channels/{channel}", response_model=ChannelOut)
def get_channel(channel: str, ws: WorkspaceDep, session: SessionDep) -> dict:
    return config.describe(session, channel, secret=ws.secret)


@router.put("/channels/{channel}", response_model=ChannelOut)
def set_channel(channel: str, body: ChannelSettings, ws: WorkspaceDep, session: SessionDep) -> dict:
    """Choose a channel's provider and settings; secrets are stored encrypted and answered masked."""
    config.save(session, channel, body.provider, body.config, secret=ws.secret, enabled=body.enabled, now=ws.now())
    return config.describe(session, channel, secret=ws.secret)

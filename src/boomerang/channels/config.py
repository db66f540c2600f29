"""Channel settings in the store: which provider each channel uses and its configuration.

Each adapter declares its configuration as a pydantic model; fields typed `SecretStr` (passwords,
tokens, private keys) are encrypted with Fernet under a key derived from the workspace secret before
they are stored, are shown masked everywhere, and never reach a log.
"""

from __future__ import annotations

from datetime import datetime
from importlib import import_module
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy.orm import Session

from boomerang.channels.models import ChannelSetting
from boomerang.core.errors import NotFound, ValidationFailed
from boomerang.core.signing import sealer

MASK = "********"
# channel -> provider -> "module:Class" of the adapter (imported when first used)
PROVIDERS: dict[str, dict[str, str]] = {
    "email": {"smtp": "boomerang.channels.smtp:SmtpChannel"},
    "sms": {"generic": "boomerang.channels.sms:GenericSmsChannel", "twilio": "boomerang.channels.sms:TwilioSmsChannel"},
    "telegram": {"bot": "boomerang.channels.telegram:TelegramChannel"},
    "webpush": {"vapid": "boomerang.channels.webpush:WebPushChannel"},
    "inapp": {"inbox": "boomerang.channels.inapp:InAppChannel"},
    "webhook": {"http": "boomerang.channels.webhook:WebhookChannel"},
}
SANDBOX = "sandbox"  # records the message without delivering it: every channel's provider until one is set
for _providers in PROVIDERS.values():
    _providers[SANDBOX] = "boomerang.channels.fake:FakeChannel"
DEFAULT_PROVIDER = {"inapp": "inbox"}  # a channel that needs no outside provider works from the start


def adapter_class(channel: str, provider: str) -> type:
    if channel not in PROVIDERS:
        raise ValidationFailed([{"field": "channel", "reason": f"unknown channel (one of {', '.join(PROVIDERS)})"}])
    if provider not in PROVIDERS[channel]:
        raise ValidationFailed(
            [
                {
                    "field": "provider",
                    "reason": f"{channel} has no provider {provider!r} (one of {', '.join(PROVIDERS[channel])})",
                }
            ]
        )
    module, name = PROVIDERS[channel][provider].split(":")
    return getattr(import_module(module), name)


def sandboxed(session: Session) -> list[str]:
    """The channels whose messages go to the sandbox (recorded, never delivered): nothing set up yet, or the
    sandbox chosen. A disabled channel sends nothing at all, so it is not listed."""
    stored = {row.channel: (row.provider, row.enabled) for row in session.scalars(sa.select(ChannelSetting))}
    found = []
    for channel in PROVIDERS:
        provider, enabled = stored.get(channel, (DEFAULT_PROVIDER.get(channel, SANDBOX), True))
        if provider == SANDBOX and enabled:
            found.append(channel)
    return found


def _fernet(secret: bytes) -> Fernet:
    return sealer(secret, b"boomerang-credentials")


def _secret_fields(model: type[BaseModel]) -> set[str]:
    return {n for n, f in model.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)}


def parse(channel: str, provider: str, values: dict[str, Any], *, keep: BaseModel | None = None) -> BaseModel:
    """A provider's configuration from plain values; a masked or empty secret keeps the one in `keep`."""
    model = adapter_class(channel, provider).Config
    values = dict(values)
    for name in _secret_fields(model):
        if values.get(name) in (None, "", MASK) and keep is not None and getattr(keep, name, None) is not None:
            values[name] = getattr(keep, name).get_secret_value()
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ValidationFailed(
            [{"field": "config." + ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        ) from None


def load(session: Session, channel: str, *, secret: bytes) -> tuple[str, BaseModel, bool]:
    """(provider, configuration, enabled) of a channel; the sandbox when nothing was set."""
    row = session.get(ChannelSetting, channel)
    if row is None:
        provider = DEFAULT_PROVIDER.get(channel, SANDBOX)
        return provider, adapter_class(channel, provider).Config(), True
    model = adapter_class(channel, row.provider).Config
    values = dict(row.config)
    for name in _secret_fields(model):
        if isinstance(values.get(name), dict):
            try:
                values[name] = _fernet(secret).decrypt(values[name]["encrypted"].encode()).decode()
            except InvalidToken:
                raise ValidationFailed(
                    [
                        {
                            "field": f"config.{name}",
                            "reason": "cannot be decrypted: the workspace secret changed; set it again",
                        }
                    ]
                ) from None
    return row.provider, model.model_validate(values), row.enabled


def save(
    session: Session,
    channel: str,
    provider: str,
    values: dict[str, Any],
    *,
    secret: bytes,
    enabled: bool = True,
    now: datetime,
) -> BaseModel:
    """Set a channel's provider and configuration (secrets encrypted); flushes."""
    keep = None
    if (row := session.get(ChannelSetting, channel)) is not None and row.provider == provider:
        keep = load(session, channel, secret=secret)[1]
    config = parse(channel, provider, values, keep=keep)
    stored = config.model_dump(mode="json")
    for name in _secret_fields(type(config)):
        value = getattr(config, name)
        stored[name] = (
            None
            if value is None
            else {"encrypted": _fernet(secret).encrypt(value.get_secret_value().encode()).decode()}
        )
    if row is None:
        row = ChannelSetting(channel=channel, provider=provider, config=stored, enabled=enabled, updated_at=now)
        session.add(row)
    else:
        row.provider, row.config, row.enabled, row.updated_at = provider, stored, enabled, now
    session.flush()
    return config


def describe(session: Session, channel: str, *, secret: bytes) -> dict[str, Any]:
    """A channel's settings for people and machines: secrets masked."""
    if channel not in PROVIDERS:
        raise NotFound(f"no channel {channel!r}", field="channel")
    provider, config, enabled = load(session, channel, secret=secret)
    shown = config.model_dump(mode="json")
    for name in _secret_fields(type(config)):
        shown[name] = MASK if getattr(config, name) is not None else None
    row = session.get(ChannelSetting, channel)
    return {
        "channel": channel,
        "provider": provider,
        "enabled": enabled,
        "config": shown,
        "providers": sorted(PROVIDERS[channel]),
        "updated_at": row.updated_at.isoformat() if row else None,
    }

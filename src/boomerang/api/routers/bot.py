"""Telegram's webhook: the bot's updates, POSTed by Telegram with the secret token `set_webhook` gave it."""

from __future__ import annotations

import hmac
import logging

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from boomerang.bot.service import Bot
from boomerang.channels.telegram import BotApi, BotApiError, TelegramChannel

router = APIRouter(tags=["hooks"])
log = logging.getLogger("boomerang.telegram")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _error(status: int, field: str, reason: str) -> JSONResponse:
    return JSONResponse({"success": False, "errors": [{"field": field, "reason": reason}]}, status_code=status)


@router.post("/hooks/telegram", include_in_schema=False)
async def telegram_update(request: Request):
    """One Update from Telegram; anything without the configured secret token is refused."""
    bot: Bot = request.app.state.ws.bot
    config = await run_in_threadpool(bot.config)
    if config is None:
        return _error(404, "telegram", "telegram is not configured with the bot provider")
    expected = config.webhook_secret.get_secret_value() if config.webhook_secret else None
    if expected is None:  # without it anyone could post a forged /stop for any chat
        return _error(401, SECRET_HEADER, "no webhook secret is configured: set one, then set the webhook again")
    if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), expected.encode()):
        return _error(401, SECRET_HEADER, "missing or wrong secret token")
    try:
        update = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return _error(400, "body", "not valid JSON")
    if not isinstance(update, dict):
        return _error(400, "body", "must be a JSON object (an Update)")
    await run_in_threadpool(_handle, bot, config, update)
    return {"ok": True}


def _handle(bot: Bot, config: TelegramChannel.Config, update: dict) -> None:
    # a client per update: customers' commands are few, and the settings may have changed since the last one
    api = BotApi.from_config(config, max_connections=1)
    try:
        bot.handle_update(api, update, now=bot.clock.now())
    except BotApiError as exc:
        # the change is committed: an error status would make Telegram deliver the update again
        log.warning("telegram: answering update %s failed: %s", update.get("update_id"), exc)
    finally:
        api.close()

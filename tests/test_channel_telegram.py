"""The Telegram channel and bot against a local Bot API (telegram_server.py): sending, deep links, commands,
the preference centre's buttons, the webhook and long polling (by `telegram poll`, and by `serve` itself)."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
from datetime import datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from boomerang.api.app import create_app
from boomerang.api.routers import bot as bot_routes
from boomerang.bot.links import customer_from_token, deep_link, link_token
from boomerang.bot.service import polls
from boomerang.channels import config as channel_config
from boomerang.channels.base import Button, Outbound
from boomerang.channels.telegram import BotApi, TelegramChannel
from boomerang.cli import telegram as telegram_cli
from boomerang.config import Settings, TelegramSettings
from boomerang.customers.models import Consent, Customer, Identity
from boomerang.events.models import inbox
from boomerang.loyalty import rule_versions, rules
from boomerang.loyalty import service as loyalty
from boomerang.messaging import preferences
from serve_support import start_serve
from telegram_server import TelegramServer, callback_update, message_update

NOW = datetime(2026, 3, 10, 12, 0)
CHAT = 4242
SECRET = "hook-secret_1"


@pytest.fixture
def tg():
    with TelegramServer() as server:
        yield server


@pytest.fixture
def api(ws, tg):
    """The workspace with telegram on the bot provider, pointing at the local Bot API; yields a client for it."""
    with ws.uow.session() as session:
        channel_config.save(
            session,
            "telegram",
            "bot",
            {"token": tg.token, "base_url": tg.url, "webhook_secret": SECRET},
            secret=ws.secret,
            now=NOW,
        )
    api = BotApi(tg.token, base_url=tg.url)
    yield api
    api.close()


def add_customer(ws, cid="cus_telegram1", *, locale=None, chat=None) -> str:
    with ws.uow.session() as session:
        session.add(
            Customer(id=cid, locale=locale, telegram_chat_id=chat, attributes={}, created_at=NOW, updated_at=NOW)
        )
    return cid


def say(ws, api, tg, text, *, chat=CHAT, language_code="en") -> str:
    """Send `text` to the bot as the customer in `chat`; the bot's answer."""
    ws.bot.handle_update(api, message_update(chat, text, language_code=language_code), now=NOW)
    return tg.messages(chat)[-1]["text"]


def outbound(to="42", **kw) -> Outbound:
    return Outbound(key="m1", message_id=1, customer_id="cus_1", channel="telegram", to=to, **kw)


# -- the channel adapter ---------------------------------------------------------------------------


def test_sends_html_with_url_buttons_through_the_registry(ws, api, tg):
    with ws.uow.session() as session:
        adapter = ws.channels.get(session, "telegram")
    assert isinstance(adapter, TelegramChannel)
    result = adapter.send(
        outbound(
            text="<b>Back in stock</b> &amp; 10% off",
            buttons=(
                Button("Open the shop", "https://b.example/t/c/abc"),
                Button("My cart", "https://b.example/t/c/def"),
            ),
        )
    )
    assert result.ok and result.provider_id == "1"
    (call,) = tg.calls_to("sendMessage")
    assert call.params == {
        "chat_id": "42",
        "text": "<b>Back in stock</b> &amp; 10% off",
        "parse_mode": "HTML",
        "disable_web_page_preview": True,
        "reply_markup": {
            "inline_keyboard": [
                [{"text": "Open the shop", "url": "https://b.example/t/c/abc"}],
                [{"text": "My cart", "url": "https://b.example/t/c/def"}],
            ]
        },
    }
    assert tg.messages(42)[0]["text"] == "Back in stock & 10% off"
    assert adapter.send(outbound(text="plain")).ok
    assert "reply_markup" not in tg.calls_to("sendMessage")[-1].params
    ws.channels.close()


@pytest.mark.parametrize(
    "kind, status, permanent",
    [
        ("rate_limited", "rate_limited", False),
        ("blocked", "unsubscribed", True),
        ("deactivated", "unsubscribed", True),
        ("chat_not_found", "failed", True),
        ("server_error", "failed", False),
    ],
)
def test_refusals_become_results(tg, kind, status, permanent):
    adapter = TelegramChannel(TelegramChannel.Config(token=tg.token, base_url=tg.url))
    tg.fail(42, kind, retry_after=7)
    result = adapter.send(outbound(text="hi"))
    assert (result.status, result.permanent) == (status, permanent)
    if kind == "rate_limited":
        assert result.retry_after == 7
    if kind == "blocked":
        assert result.error == "Telegram: Forbidden: bot was blocked by the user"
    if kind == "chat_not_found":
        assert "chat not found" in result.error
    assert adapter.send(outbound(text="hi")).ok  # only the next call failed
    adapter.close()


def test_bad_html_is_a_permanent_failure(tg):
    adapter = TelegramChannel(TelegramChannel.Config(token=tg.token, base_url=tg.url))
    result = adapter.send(outbound(text="<div>not Telegram HTML</div>"))
    assert result.status == "failed" and result.permanent and "Unsupported start tag" in result.error
    adapter.close()


def test_the_token_never_shows(tg, caplog):
    caplog.set_level(logging.DEBUG)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    refused = TelegramChannel(TelegramChannel.Config(token=tg.token, base_url=f"http://127.0.0.1:{closed}"))
    result = refused.send(outbound(text="hi"))
    assert result.status == "failed" and not result.permanent
    assert result.error == "Telegram: network error (ConnectError)"
    wrong = TelegramChannel(TelegramChannel.Config(token="123:wrong-token", base_url=tg.url))
    result = wrong.send(outbound(text="hi"))
    assert result.status == "failed" and not result.permanent and "Unauthorized" in result.error
    ok = TelegramChannel(TelegramChannel.Config(token=tg.token, base_url=tg.url))
    assert ok.send(outbound(text="hi")).ok
    assert "/bot***/sendMessage" in caplog.text  # httpx's request log, masked
    assert tg.token not in caplog.text and "wrong-token" not in caplog.text and "42" not in result.error
    for adapter in (refused, wrong, ok):
        adapter.close()


def test_webhook_secret_must_suit_telegram():
    with pytest.raises(ValueError, match="Telegram accepts"):
        TelegramChannel.Config(token="1:x", webhook_secret="has spaces")


# -- deep links ------------------------------------------------------------------------------------


def test_link_tokens_round_trip_and_refuse_tampering(ws):
    cid = "cus_" + "0123456789abcdefghjkmnpq"
    token = link_token(ws.secret, cid)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)
    assert customer_from_token(ws.secret, token) == cid
    assert len(link_token(ws.secret, "c" * 40)) <= 64
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    other = token.replace("cus_0", "cus_1", 1)
    for bad in (flipped, other, "", "start", token[:-3], "_" * 20):
        assert customer_from_token(ws.secret, bad) is None
    assert customer_from_token(b"another workspace", token) is None
    assert deep_link(ws.secret, cid, "@shop_bot") == f"https://t.me/shop_bot?start={token}"


# -- the bot's commands ----------------------------------------------------------------------------


def test_start_with_a_token_binds_the_chat_and_grants_consent(ws, api, tg):
    cid = add_customer(ws, locale="ru-RU")
    with ws.uow.session() as session:  # the earn rules give 40 points for joining the bot
        earn = rules.parse({"base_percent": 1, "bonuses": [{"kind": "telegram_joined", "points": 40}]})
        rule_versions.save(session, earn, now=NOW)
    assert "Добро пожаловать" in say(ws, api, tg, f"/start {link_token(ws.secret, cid)}")
    with ws.uow.session() as session:
        assert session.get(Customer, cid).telegram_chat_id == str(CHAT)
        assert session.get(Identity, ("telegram", str(CHAT))).customer_id == cid
        consent = session.get(Consent, (cid, "telegram"))
        assert (consent.granted, consent.source) == (True, "telegram:/start")
    say(ws, api, tg, f"/start {link_token(ws.secret, cid)}")  # again: nothing new
    with ws.uow.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Identity).where(Identity.kind == "telegram")) == 1
        joined = session.execute(
            sa.select(inbox.c.customer_id, inbox.c.source).where(inbox.c.event == "Telegram Bot Joined")
        ).all()
        assert [tuple(row) for row in joined] == [(cid, "telegram")]  # journeys and segments see it, once
        assert loyalty.wallets(session, [cid], now=NOW)[cid].points == 40  # the bonus, spendable at once


def test_start_without_a_valid_token_explains_how_to_link(ws, api, tg):
    cid = add_customer(ws)
    assert "not linked" in say(ws, api, tg, "/start")
    assert "не связан" in say(ws, api, tg, f"/start {link_token(ws.secret, cid)[:-1]}x", language_code="ru")
    assert "не пов'язаний" in say(ws, api, tg, "/bonus", language_code="uk")
    with ws.uow.session() as session:
        assert session.get(Customer, cid).telegram_chat_id is None
        assert session.get(Consent, (cid, "telegram")) is None


def test_stop_withdraws_the_telegram_consent(ws, api, tg):
    cid = add_customer(ws)
    say(ws, api, tg, f"/start {link_token(ws.secret, cid)}")
    assert "will not write here" in say(ws, api, tg, "/stop")
    with ws.uow.session() as session:
        consent = session.get(Consent, (cid, "telegram"))
        assert (consent.granted, consent.source) == (False, "telegram:/stop")
    assert "not linked" in say(ws, api, tg, "/stop", chat=999)


def test_settings_buttons_change_topics_and_frequency(ws, api, tg):
    cid = add_customer(ws, chat=str(CHAT))
    text = say(ws, api, tg, "/settings")
    assert "✅ Offers and discounts" in text and "How often: As usual" in text
    sent = tg.calls_to("sendMessage")[-1]
    buttons = {b["callback_data"]: b["text"] for row in sent.params["reply_markup"]["inline_keyboard"] for b in row}
    assert buttons["pref:t:offers:off"] == "✅ Offers and discounts" and buttons["pref:f:normal"].startswith("✅")
    message_id = sent.result["message_id"]

    def press(data):
        ws.bot.handle_update(api, callback_update(CHAT, data, message_id=message_id), now=NOW)

    press("pref:t:offers:off")
    press("pref:f:weekly")
    with ws.uow.session() as session:
        prefs = preferences.get(session, cid)
    assert prefs["topics"]["offers"] is False and prefs["topics"]["news"] is True and prefs["frequency"] == "weekly"
    assert [c.params["text"] for c in tg.calls_to("answerCallbackQuery")] == ["Saved", "Saved"]
    edited = tg.messages(CHAT)[-1]
    keyboard = {b["callback_data"]: b["text"] for row in edited["reply_markup"]["inline_keyboard"] for b in row}
    assert keyboard["pref:t:offers:on"] == "Offers and discounts" and keyboard["pref:f:weekly"].startswith("✅")
    press("pref:f:weekly")  # unchanged: answered, not edited (Telegram refuses an edit that changes nothing)
    assert len(tg.calls_to("editMessageText")) == 2 and all(c.status == 200 for c in tg.calls)
    press("pref:stop")
    with ws.uow.session() as session:
        assert not any(preferences.get(session, cid)["channels"].values())
    assert "unsubscribed from all" in tg.messages(CHAT)[-1]["text"]


def test_buttons_from_a_stranger_only_explain(ws, api, tg):
    ws.bot.handle_update(api, callback_update(777, "pref:f:weekly", message_id=1), now=NOW)
    (answer,) = tg.calls_to("answerCallbackQuery")
    assert answer.status == 200 and "not linked" in answer.params["text"]


def test_bonus_shows_points_and_live_promo_codes(ws, api, tg):
    cid = add_customer(ws, locale="uk", chat=str(CHAT))
    with ws.uow.session() as session:
        loyalty.write(
            session, [loyalty.points_row(k, cid, n, source="journey:test", now=NOW) for k, n in [("a", 120), ("b", 30)]]
        )
        live, lapsed = (
            loyalty.code_row(key, cid, 10, days, source="journey:test", now=NOW) for key, days in (("c", 5), ("d", -1))
        )
        loyalty.write(session, [live, lapsed])
    text = say(ws, api, tg, "/bonus")
    assert "Ваші бали: 150" in text and f"{live['code']} −10% (→ 2026-03-15)" in text and lapsed["code"] not in text


# -- webhook and long polling ----------------------------------------------------------------------


def test_webhook_checks_the_secret_token(ws, tg):
    client = TestClient(create_app(ws, background=False))
    update = message_update(CHAT, "/start")
    assert client.post("/hooks/telegram", json=update).status_code == 404  # telegram is still the sandbox
    with ws.uow.session() as session:
        channel_config.save(
            session,
            "telegram",
            "bot",
            {"token": tg.token, "base_url": tg.url, "webhook_secret": SECRET},
            secret=ws.secret,
            now=NOW,
        )
    for headers in ({}, {bot_routes.SECRET_HEADER: "guess"}):
        response = client.post("/hooks/telegram", json=update, headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "success": False,
            "errors": [{"field": "X-Telegram-Bot-Api-Secret-Token", "reason": "missing or wrong secret token"}],
        }
    assert tg.calls == []
    response = client.post("/hooks/telegram", json=update, headers={bot_routes.SECRET_HEADER: SECRET})
    assert response.status_code == 200 and "not linked" in tg.messages(CHAT)[-1]["text"]

    ws.bot.set_webhook("https://shop.example/hooks/telegram")
    assert tg.webhook == {
        "url": "https://shop.example/hooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
    }


def test_long_polling_handles_each_update_once(ws, api, tg):
    cid = add_customer(ws)
    tg.push(message_update(CHAT, f"/start {link_token(ws.secret, cid)}"))
    last = tg.push(message_update(CHAT, "/bonus"))
    assert ws.bot.poll(timeout=0, max_rounds=1) == 2
    assert tg.calls_to("getUpdates")[-1].params["offset"] == last["update_id"] + 1  # confirms what it handled
    assert ws.bot.poll(timeout=0, max_rounds=1) == 0  # confirmed: Telegram does not send them again
    assert [m["text"].split()[0] for m in tg.messages(CHAT)] == ["Welcome", "Your"]
    tg.fail(None, "rate_limited", retry_after=0)  # getUpdates is rate limited once, then works
    tg.push(message_update(CHAT, "/stop"))
    assert ws.bot.poll(timeout=1, max_rounds=2) == 1
    with ws.uow.session() as session:
        assert session.get(Consent, (cid, "telegram")).granted is False


def test_cli_link_and_poll(ws, api, tg):
    cid = add_customer(ws)
    runner = CliRunner()
    result = runner.invoke(telegram_cli.app, ["link", cid, "--json"], obj={"home": ws.settings.home})
    assert result.exit_code == 0, result.output
    assert f"https://t.me/boomerang_test_bot?start={link_token(ws.secret, cid)}" in result.output  # name from getMe
    missing = runner.invoke(telegram_cli.app, ["link", "cus_nobody"], obj={"home": ws.settings.home})
    assert missing.exit_code == 2
    tg.push(message_update(CHAT, "/start"))
    result = runner.invoke(telegram_cli.app, ["poll", "--once"], obj={"home": ws.settings.home})
    assert result.exit_code == 0 and "1 updates handled" in result.output


# -- serve's poller --------------------------------------------------------------------------------


def configure(ws, tg, **config) -> None:
    """Telegram on the bot provider, at the local Bot API (`config` adds to or overrides the right token)."""
    with ws.uow.session() as session:
        channel_config.save(
            session, "telegram", "bot", {"token": tg.token, "base_url": tg.url, **config}, secret=ws.secret, now=NOW
        )


def chat_of(ws, customer_id: str) -> str | None:
    with ws.uow.session() as session:
        return session.get(Customer, customer_id).telegram_chat_id


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


@pytest.fixture
def keep_polling(ws):
    """Starts `ws.bot.keep_polling` in a thread, looking at the settings every `recheck` seconds; stops it after."""
    stop, threads = threading.Event(), []

    def start(recheck: float) -> None:
        threads.append(threading.Thread(target=ws.bot.keep_polling, args=(stop,), kwargs={"recheck": recheck}))
        threads[-1].start()

    yield start
    stop.set()
    for thread in threads:
        thread.join(5)  # the local Bot API holds a long poll for a second
        assert not thread.is_alive()


def test_polls_only_with_a_bot_and_without_a_webhook(ws, tg):
    config = TelegramChannel.Config(token=tg.token, base_url=tg.url)
    assert polls(config, "") and not polls(config, "https://shop.example/hooks/telegram") and not polls(None, "")
    assert ws.bot.polling_config() is None and tg.calls == []  # the sandbox: Telegram is not even asked
    configure(ws, tg, webhook_secret=SECRET)
    assert ws.bot.polling_config().token.get_secret_value() == tg.token
    ws.bot.set_webhook("https://shop.example/hooks/telegram")
    assert ws.bot.polling_config() is None
    assert [c.method for c in tg.calls] == ["getWebhookInfo", "setWebhook", "getWebhookInfo"]


def test_serves_poller_waits_while_a_webhook_is_set(ws, api, tg, keep_polling):
    cid = add_customer(ws)
    ws.bot.set_webhook("https://shop.example/hooks/telegram")
    keep_polling(recheck=0.1)
    wait_for(lambda: len(tg.calls_to("getWebhookInfo")) >= 3)
    assert tg.calls_to("getUpdates") == []  # Telegram pushes to the webhook: nothing to poll
    api.call("deleteWebhook")  # back to long polling, without a restart
    update = tg.push(message_update(CHAT, f"/start {link_token(ws.secret, cid)}"))
    wait_for(lambda: tg.messages(CHAT))  # answered once the link is committed
    assert "Welcome" in tg.messages(CHAT)[-1]["text"] and chat_of(ws, cid) == str(CHAT)
    wait_for(lambda: tg.calls_to("getUpdates")[-1].params.get("offset") == update["update_id"] + 1)


def test_serves_poller_waits_out_errors_and_never_logs_the_token(ws, tg, keep_polling, caplog):
    caplog.set_level(logging.WARNING, logger="boomerang.telegram")
    configure(ws, tg, token="123:wrong-token", webhook_secret=SECRET)
    cid = add_customer(ws)
    keep_polling(recheck=0.2)
    wait_for(lambda: caplog.text.count("(401 Unauthorized); trying again") >= 2)  # refused, and tried again
    configure(ws, tg, webhook_secret=SECRET)  # the right token, as the dashboard saves it: no restart
    tg.push(message_update(CHAT, f"/start {link_token(ws.secret, cid)}"))
    wait_for(lambda: chat_of(ws, cid) == str(CHAT))

    tg.fail(None, "conflict", times=2)  # another poller of the same bot, twice
    wait_for(lambda: caplog.text.count("Conflict: terminated by other getUpdates request") >= 2)
    tg.push(message_update(CHAT, "/bonus"))
    wait_for(lambda: any(m["text"].startswith("Your") for m in tg.messages(CHAT)))

    ws.bot.set_webhook("https://shop.example/hooks/telegram")  # while it polls

    def idle() -> bool:  # looks at the webhook again and again, and polls no more
        methods = [c.method for c in tg.calls if c.method in ("getWebhookInfo", "getUpdates")]
        return methods[-3:] == ["getWebhookInfo"] * 3

    wait_for(idle)
    assert "wrong-token" not in caplog.text and tg.token not in caplog.text


def test_the_poller_in_serve_can_be_turned_off(ws, monkeypatch):
    monkeypatch.setenv("BOOMERANG_TELEGRAM__POLL_IN_SERVE", "false")
    assert Settings().telegram.poll_in_serve is False
    ws.settings.telegram = TelegramSettings(poll_in_serve=False)
    with TestClient(create_app(ws)) as client:
        assert client.app.state.pipeline is not None and client.app.state.poller is None


def _serve(home) -> subprocess.Popen:
    """`boomerang serve` in its own process, with the Telegram settings of the test only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOOMERANG_TELEGRAM__")}
    return start_serve(home, env)[1]


def pending(tg) -> int:
    """Updates Telegram still holds for the bot: neither fetched and confirmed, nor pushed to a webhook."""
    api = BotApi(tg.token, base_url=tg.url)
    try:
        return api.call("getWebhookInfo")["pending_update_count"]
    finally:
        api.close()


def test_serve_polls_the_bot_without_a_webhook_and_stops_cleanly(ws):
    """A shop that runs only `serve`: a customer presses Start on their link and the chat is linked."""
    with TelegramServer(max_poll=30) as tg:  # holds a long poll as Telegram does (serve asks for 25 s)
        configure(ws, tg)
        cid = add_customer(ws)
        proc = _serve(ws.settings.home)
        try:
            wait_for(lambda: tg.calls_to("getWebhookInfo"))  # no webhook: serve polls, no `telegram poll` beside it
            tg.push(message_update(CHAT, f"/start {link_token(ws.secret, cid)}"))
            wait_for(lambda: tg.messages(CHAT))  # answered once the link is committed
            assert "Welcome" in tg.messages(CHAT)[-1]["text"] and chat_of(ws, cid) == str(CHAT)
            # the next long poll confirmed it: Telegram keeps the offset, a restarted serve does not see it again
            wait_for(lambda: pending(tg) == 0)
            began = time.monotonic()
            proc.terminate()  # in the middle of a long poll
            code = proc.wait(timeout=60)
            took = time.monotonic() - began
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        output = proc.stdout.read()
    assert code in (0, -signal.SIGTERM), output
    assert took < 15, f"serve took {took:.1f} s to stop"
    assert "Traceback" not in output and tg.token not in output

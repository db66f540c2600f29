"""SMS: encodings and part counts, transliteration, Twilio and a generic gateway against a local server,
and delivery receipts through the hook routes."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

import pytest

from api_helpers import Api
from boomerang.channels import config as settings
from boomerang.channels.base import Outbound
from boomerang.channels.sms import receipt_key, twilio_signature
from boomerang.channels.sms_text import parts, transliterate
from boomerang.messaging.models import Message, MessageEvent
from sms_server import ACCOUNT_SID, AUTH_TOKEN, SmsServer

PHONE = "+447700900123"
NOW = datetime(2025, 3, 1, 12, 0)
CALLBACK = "https://boomerang.example.com/hooks/sms/twilio"


# -- text ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", ("gsm7", 0)),
        ("a" * 160, ("gsm7", 1)),
        ("a" * 161, ("gsm7", 2)),
        ("a" * 306, ("gsm7", 2)),
        ("a" * 307, ("gsm7", 3)),
        ("€" * 80, ("gsm7", 1)),  # two septets each: 160
        ("€" * 81, ("gsm7", 2)),
        ("a" * 159 + "€", ("gsm7", 2)),
        ("a" * 152 + "^" + "a" * 152, ("gsm7", 3)),  # 306 septets, but the escape pair is not split across parts
        ("{}\\[~]|\f", ("gsm7", 1)),
        ("Ж" * 70, ("ucs2", 1)),
        ("Ж" * 71, ("ucs2", 2)),
        ("Ж" * 134, ("ucs2", 2)),
        ("Ж" * 135, ("ucs2", 3)),
        ("😀" * 35, ("ucs2", 1)),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, ("ucs2", 2)),
        ("a" * 66 + "😀" + "a" * 5, ("ucs2", 2)),  # the surrogate pair moves whole to the second part
        ("Ça coûte 5 €", ("ucs2", 1)),  # û is not GSM-7
        ("Åsa, ñandú? ¿Qué? Ü ß Δ", ("ucs2", 1)),  # ú and é are not GSM-7 either
        ("Åsa, ñandu? ¿Que? Ü ß Δ @£$¥èéùìò", ("gsm7", 1)),
    ],
)
def test_parts(text, expected):
    assert parts(text) == expected


@pytest.mark.parametrize(
    "cyrillic, latin",
    [
        ("Привіт, Їжак", "Pryvit, Yizhak"),
        ("Київ, Львів, Запоріжжя", "Kyiv, Lviv, Zaporizhzhia"),
        ("Ґанок, Згорани, Єнакієве, м'ясо, Юрій", "Ganok, Zghorany, Yenakiieve, miaso, Yurii"),
        ("ЩУКА Щука щука, ЖЮРИ", "SHCHUKA Shchuka shchuka, ZHYURI"),
        ("Привет, Ёжик! Съешь ещё «пирог» — №5", 'Privet, Yozhik! Sesh eshchyo "pirog" - No.5'),
        ("Хорошего дня, Юля", "Khoroshego dnya, Yulya"),
        ("Hello, мир 123", "Hello, mir 123"),
    ],
)
def test_transliterate(cyrillic, latin):
    assert transliterate(cyrillic) == latin
    assert parts(latin)[0] == "gsm7"


def test_transliterate_follows_the_language_when_given():
    assert transliterate("Гарна книга") == "Garna kniga"  # no Ukrainian-only letter: read as Russian
    assert transliterate("Гарна книга", "uk") == "Harna knyha"


# -- sending ---------------------------------------------------------------------------------------


@pytest.fixture
def server():
    with SmsServer() as running:
        yield running


def _outbound(text="Your cart is waiting", to=PHONE, locale="en", **kw) -> Outbound:
    return Outbound(key="m-1", message_id=1, customer_id="cus_1", channel="sms", to=to, text=text, locale=locale, **kw)


def _adapter(ws, provider, values):
    with ws.uow.session() as session:
        settings.save(session, "sms", provider, values, secret=ws.secret, now=NOW)
        return ws.channels.get(session, "sms")


def _twilio(ws, server, **values):
    return _adapter(
        ws,
        "twilio",
        {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "sender": "+15005550006",
            "base_url": server.base_url,
            **values,
        },
    )


def test_twilio_sends_the_form_with_basic_auth_and_returns_the_sid(ws, server):
    adapter = _twilio(ws, server, status_callback_url=CALLBACK)
    result = adapter.send(_outbound())
    assert result.ok and result.provider_id.startswith("SM") and len(result.provider_id) == 34
    [request] = server.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.fields == {
        "To": PHONE,
        "From": "+15005550006",
        "Body": "Your cart is waiting",
        "StatusCallback": CALLBACK,
    }


def test_twilio_messaging_service_instead_of_a_number(ws, server):
    adapter = _twilio(ws, server, sender=None, messaging_service_sid="MG" + "a" * 32)
    assert adapter.send(_outbound()).ok
    assert server.requests[0].fields["MessagingServiceSid"] == "MG" + "a" * 32
    assert "From" not in server.requests[0].fields


def test_twilio_needs_a_sender_and_names_the_field(ws):
    with ws.uow.session() as session, pytest.raises(Exception) as error:
        settings.save(
            session, "sms", "twilio", {"account_sid": ACCOUNT_SID, "auth_token": "t"}, secret=ws.secret, now=NOW
        )
    assert error.value.errors[0]["field"] == "config.messaging_service_sid"


@pytest.mark.parametrize(
    "status, code, headers, expected",
    [
        (400, 21610, {}, ("unsubscribed", True, None)),
        (400, 21211, {}, ("failed", True, None)),
        (400, 21614, {}, ("failed", True, None)),
        (429, 20429, {"Retry_After": "7"}, ("rate_limited", False, 7.0)),
        (429, 20429, {}, ("rate_limited", False, 1.0)),
        (503, 20500, {}, ("failed", False, None)),
        (400, 21408, {}, ("failed", True, None)),
    ],
)
def test_twilio_errors(ws, server, status, code, headers, expected):
    server.fail(PHONE, status, code, f"The 'To' number {PHONE} cannot be reached", **headers)
    result = _twilio(ws, server).send(_outbound())
    assert (result.status, result.permanent, result.retry_after) == expected
    assert str(code) in result.error
    assert PHONE not in result.error and PHONE[1:] not in result.error and AUTH_TOKEN not in result.error


def test_twilio_wrong_token_is_a_credentials_failure_that_does_not_show_it(ws, server):
    result = _twilio(ws, server, auth_token="wrong-token").send(_outbound())
    assert (result.status, result.permanent) == ("failed", True)
    assert "credentials" in result.error and "wrong-token" not in result.error


def test_too_many_parts_fails_permanently_naming_the_count(ws, server):
    result = _twilio(ws, server, max_parts=2).send(_outbound("x" * 400))
    assert (result.status, result.permanent) == ("failed", True)
    assert "3 SMS parts" in result.error
    assert server.requests == []


def test_transliteration_only_when_it_saves_parts(ws, server):
    adapter = _twilio(ws, server, transliterate=True)
    long_text = "Привіт, Їжак! Ваш кошик чекає на вас: завершіть замовлення сьогодні. " * 2
    assert parts(long_text) == ("ucs2", 3)
    assert adapter.send(_outbound(long_text, locale="uk")).ok
    sent = server.requests[-1].fields["Body"]
    assert sent.startswith("Pryvit, Yizhak! Vash koshyk chekaie") and parts(sent) == ("gsm7", 1)
    assert adapter.send(_outbound("Привіт")).ok  # one part either way: sent as written
    assert server.requests[-1].fields["Body"] == "Привіт"


def test_transliteration_off_sends_cyrillic(ws, server):
    assert _twilio(ws, server).send(_outbound("Ж" * 100)).ok
    assert server.requests[-1].fields["Body"] == "Ж" * 100


def test_bad_or_missing_number_fails_before_any_request(ws, server):
    adapter = _twilio(ws, server)
    for to in (None, "07700 900123", "+0123"):
        result = adapter.send(_outbound(to=to))
        assert (result.status, result.permanent) == ("failed", True) and result.error.startswith("to:")
    assert server.requests == []


def test_generic_json_with_auth_header_and_id(ws, server):
    adapter = _adapter(
        ws,
        "generic",
        {"url": f"{server.base_url}/generic", "sender": "Shop", "auth_header": "X-Api-Key", "auth_value": "k-123"},
    )
    result = adapter.send(_outbound())
    assert result.ok and result.provider_id == "gen-1"
    [request] = server.requests
    assert request.headers["x-api-key"] == "k-123" and request.headers["content-type"] == "application/json"
    assert request.fields == {"to": PHONE, "text": "Your cart is waiting", "from": "Shop"}


def test_generic_form_with_custom_fields_and_a_nested_id(ws, server):
    adapter = _adapter(
        ws,
        "generic",
        {
            "url": f"{server.base_url}/generic",
            "format": "form",
            "to_field": "phone",
            "text_field": "message",
            "id_field": "messages.0.id",
        },
    )
    result = adapter.send(_outbound())
    assert result.ok and result.provider_id == "gen-1"
    assert server.requests[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert server.requests[0].fields == {"phone": PHONE, "message": "Your cart is waiting"}


def test_generic_errors_hide_the_number(ws, server):
    adapter = _adapter(ws, "generic", {"url": f"{server.base_url}/generic"})
    server.fail(PHONE, 422, message=f"number {PHONE} (447700900123) is blocked")
    result = adapter.send(_outbound())
    assert (result.status, result.permanent) == ("failed", True)
    assert "422" in result.error and "blocked" in result.error and "7700" not in result.error
    server.fail(PHONE, 502)
    assert (adapter.send(_outbound()).status, adapter.send(_outbound()).permanent) == ("failed", False)
    server.fail(PHONE, 429, Retry_After="3")
    assert adapter.send(_outbound()).retry_after == 3.0


def test_unreachable_gateway_is_temporary(ws):
    adapter = _adapter(ws, "generic", {"url": "http://127.0.0.1:9/send", "timeout": 2})
    result = adapter.send(_outbound())
    assert (result.status, result.permanent) == ("failed", False) and "127.0.0.1" not in result.error


# -- receipts --------------------------------------------------------------------------------------


@pytest.fixture
def hooks(ws):
    return Api(ws)


def _message(ws, provider_id: str) -> int:
    with ws.uow.session() as session:
        message = Message(
            key=f"k-{provider_id}",
            source="journey:test",
            customer_id="cus_1",
            channels=["sms"],
            channel="sms",
            template="t",
            category="triggered",
            status="sent",
            send_after=NOW,
            created_at=NOW,
            sent_at=NOW,
            provider_id=provider_id,
        )
        session.add(message)
        session.flush()
        return message.id


def _status(ws, message_id: int) -> tuple[str, list[tuple[str, str | None]]]:
    with ws.uow.session() as session:
        events = session.query(MessageEvent.kind, MessageEvent.detail).filter_by(message_id=message_id).all()
        return session.get(Message, message_id).status, [tuple(e) for e in events]


def _twilio_settings(ws, callback=CALLBACK):
    with ws.uow.session() as session:
        settings.save(
            session,
            "sms",
            "twilio",
            {
                "account_sid": ACCOUNT_SID,
                "auth_token": AUTH_TOKEN,
                "sender": "+15005550006",
                "status_callback_url": callback,
            },
            secret=ws.secret,
            now=NOW,
        )


def test_twilio_receipts_delivered_and_undelivered(ws, hooks):
    _twilio_settings(ws)
    delivered, lost = _message(ws, "SM" + "1" * 32), _message(ws, "SM" + "2" * 32)
    form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID, "To": PHONE}
    # signed for the public URL Twilio was given (the app sits behind a proxy)
    r = hooks.client.post(
        "/hooks/sms/twilio",
        data=form,
        headers={"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, CALLBACK, form.items())},
    )
    assert r.status_code == 200 and r.json() == {"success": True, "recorded": True}
    form = {"MessageSid": "SM" + "2" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    url = "http://testserver/hooks/sms/twilio"  # or for the URL the request reached
    r = hooks.client.post(
        "/hooks/sms/twilio", data=form, headers={"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, form.items())}
    )
    assert r.status_code == 200, r.text
    assert _status(ws, delivered) == ("delivered", [("delivered", None)])
    assert _status(ws, lost) == ("bounced", [("bounced", "Twilio undelivered (error 30003)")])


def test_twilio_receipt_with_a_bad_signature_is_refused(ws, hooks):
    _twilio_settings(ws)
    message = _message(ws, "SM" + "3" * 32)
    form = {"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered"}
    forged = twilio_signature("not-the-token", CALLBACK, form.items())
    for headers in ({"X-Twilio-Signature": forged}, {}):
        r = hooks.client.post("/hooks/sms/twilio", data=form, headers=headers)
        assert r.status_code == 401
        assert r.json() == {
            "success": False,
            "errors": [{"field": "X-Twilio-Signature", "reason": "missing or not made with the account's auth token"}],
        }
    signed = twilio_signature(AUTH_TOKEN, CALLBACK, form.items())
    r = hooks.client.post(
        "/hooks/sms/twilio", data={**form, "MessageStatus": "failed"}, headers={"X-Twilio-Signature": signed}
    )  # a changed field breaks the signature
    assert r.status_code == 401
    assert _status(ws, message) == ("sent", [])


def test_twilio_receipts_need_twilio_configured(ws, hooks):
    r = hooks.client.post("/hooks/sms/twilio", data={"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert r.status_code == 404 and r.json()["errors"][0]["field"] == "sms"


def test_twilio_interim_states_and_unknown_messages_are_acknowledged(ws, hooks):
    _twilio_settings(ws)
    for form in (
        {"MessageSid": "SM" + "4" * 32, "MessageStatus": "sent"},
        {"MessageSid": "SM" + "9" * 32, "MessageStatus": "delivered"},
    ):
        r = hooks.client.post(
            "/hooks/sms/twilio",
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, CALLBACK, form.items())},
        )
        assert r.json() == {"success": True, "recorded": False}


def _generic(hooks, payload: dict, key: bytes | None = None):
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(key or receipt_key(hooks.ws.secret), body, hashlib.sha256).hexdigest()
    return hooks.client.post(
        "/hooks/sms/generic",
        content=body,
        headers={"X-Boomerang-Signature": signature, "Content-Type": "application/json"},
    )


def test_generic_receipts(ws, hooks):
    delivered, failed = _message(ws, "gen-1"), _message(ws, "gen-2")
    assert _generic(hooks, {"id": "gen-1", "status": "delivered"}).json() == {"success": True, "recorded": True}
    assert _generic(hooks, {"id": "gen-2", "status": "failed", "reason": f"handset {PHONE} off"}).status_code == 200
    assert _status(ws, delivered) == ("delivered", [("delivered", None)])
    assert _status(ws, failed) == ("bounced", [("bounced", "handset *** off")])


def test_generic_receipt_signature_and_payload_checks(ws, hooks):
    message = _message(ws, "gen-3")
    r = _generic(hooks, {"id": "gen-3", "status": "delivered"}, key=b"guess")
    assert r.status_code == 401 and r.json()["errors"][0]["field"] == "X-Boomerang-Signature"
    r = _generic(hooks, {"id": "gen-3", "status": "read"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "status"
    assert _status(ws, message) == ("sent", [])

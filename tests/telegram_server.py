"""A stand-in for the Telegram Bot API on 127.0.0.1, for the channel, contract and dashboard tests.

It answers `/bot<token>/<method>` the way api.telegram.org does: parameters as JSON, form or query
string in, `{"ok": true, "result": ...}` out with realistic Message objects, `{"ok": false, "error_code",
"description"}` for what Telegram would refuse (a wrong token, HTML it cannot parse, a bad button, an
edit that changes nothing). Tests queue updates for getUpdates, make a chat fail, and read every call:

    with TelegramServer() as tg:
        config = {"token": tg.token, "base_url": tg.url}
        tg.fail(42, "blocked")               # the next call for chat 42 answers 403
        tg.push(message_update(42, "/bonus"))
        tg.calls_to("sendMessage")[-1].params
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "123456789:AAtest-TOKEN_for_boomerang"
BOT = {"id": 123456789, "is_bot": True, "first_name": "Boomerang Test", "username": "boomerang_test_bot"}
FAILURES = {  # kind -> (HTTP status, description) as Telegram words them
    "rate_limited": (429, "Too Many Requests: retry after {retry_after}"),
    "blocked": (403, "Forbidden: bot was blocked by the user"),
    "deactivated": (403, "Forbidden: user is deactivated"),
    "chat_not_found": (400, "Bad Request: chat not found"),
    "server_error": (500, "Internal Server Error"),
    "conflict": (
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    ),
}
HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "a",
    "code",
    "pre",
    "span",
    "tg-spoiler",
    "tg-emoji",
    "blockquote",
}
_update_ids = itertools.count(1000)


def message_update(chat_id: int, text: str, *, language_code: str = "en", first_name: str = "Ann") -> dict:
    """An Update with a text message from a private chat."""
    person = {"id": chat_id, "is_bot": False, "first_name": first_name, "language_code": language_code}
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_update_ids),
            "from": person,
            "date": int(time.time()),
            "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": first_name},
        },
    }


def callback_update(chat_id: int, data: str, *, message_id: int, language_code: str = "en") -> dict:
    """An Update for a press on an inline button of the bot's message `message_id` in a private chat."""
    person = {"id": chat_id, "is_bot": False, "first_name": "Ann", "language_code": language_code}
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_update_ids)),
            "from": person,
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": message_id,
                "from": BOT,
                "date": int(time.time()),
                "text": "...",
                "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            },
        },
    }


@dataclass
class Call:
    """One request the server answered."""

    method: str
    params: dict[str, Any]
    status: int
    result: Any  # the answer's `result`; None when it was refused


class Refused(Exception):
    def __init__(self, status: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


class _Tags(HTMLParser):
    """Telegram's HTML: a few tags, properly nested, and the text they leave."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag not in HTML_TAGS:
            raise Refused(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            raise Refused(400, f'Bad Request: can\'t parse entities: Unexpected end tag "{tag}"')

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _plain(text: str, parse_mode: str | None) -> str:
    if parse_mode != "HTML":
        return text
    parser = _Tags()
    parser.feed(text)
    parser.close()
    if parser.open:
        raise Refused(
            400,
            f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"{parser.open[-1]}\"",
        )
    return unescape("".join(parser.text))


def _check_markup(markup: Any) -> None:
    if markup is None:
        return
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise Refused(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not button.get("text"):
            raise Refused(
                400,
                "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
            )
        if "url" in button and not re.match(r"(https?|tg)://", str(button["url"])):
            raise Refused(400, "Bad Request: BUTTON_URL_INVALID")
        if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
            raise Refused(400, "Bad Request: BUTTON_DATA_INVALID")
        if ("url" in button) == ("callback_data" in button):
            raise Refused(400, "Bad Request: can't parse inline keyboard button: an action is needed")


class TelegramServer:
    """The Bot API for one bot (`token`); getUpdates long polls for at most `max_poll` seconds."""

    def __init__(self, token: str = TOKEN, *, max_poll: float = 1.0) -> None:
        self.token, self.max_poll = token, max_poll
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] | None = None
        self._updates: list[dict] = []
        self._failures: dict[str, list[tuple[int, str, dict]]] = {}
        self._messages: dict[tuple[str, int], dict] = {}
        self._ids: dict[str, itertools.count] = {}
        self._lock = threading.Condition()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._http.bot_api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> TelegramServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> TelegramServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests do -------------------------------------------------------------------------

    def push(self, update: dict) -> dict:
        """Queue an Update for getUpdates."""
        with self._lock:
            self._updates.append(update)
            self._lock.notify_all()
        return update

    def fail(self, chat_id: int | str | None, kind: str, *, times: int = 1, retry_after: int = 3) -> None:
        """Answer the next `times` calls for `chat_id` with a failure (see FAILURES); None: calls without a
        chat, such as getUpdates."""
        status, description = FAILURES[kind]
        parameters = {"retry_after": retry_after} if status == 429 else {}
        with self._lock:
            self._failures.setdefault(str(chat_id), []).extend(
                [(status, description.format(retry_after=retry_after), parameters)] * times
            )

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def messages(self, chat_id: int | str) -> list[dict]:
        """The bot's messages in a chat as they are now (after edits), oldest first."""
        with self._lock:
            return [
                m for (chat, _), m in sorted(self._messages.items(), key=lambda kv: kv[0][1]) if chat == str(chat_id)
            ]

    # -- the Bot API ---------------------------------------------------------------------------

    def answer(self, token: str, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        """The HTTP status and body Telegram would answer (the call is recorded)."""
        status, result, body = 200, None, None
        try:
            if token != self.token:
                raise Refused(401, "Unauthorized")
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                raise Refused(404, "Not Found")
            with self._lock:
                failures = self._failures.get(str(params.get("chat_id")))
                failure = failures.pop(0) if failures else None
            if failure:
                raise Refused(failure[0], failure[1], **failure[2])
            result = handler(params)
            body = {"ok": True, "result": result}
        except Refused as exc:
            status, result = exc.status, None
            body = {
                "ok": False,
                "error_code": exc.status,
                "description": exc.description,
                **({"parameters": exc.parameters} if exc.parameters else {}),
            }
        with self._lock:
            self.calls.append(Call(method, params, status, result))
        return status, body

    def _message(self, params: dict, chat: str, message_id: int, text: str) -> dict:
        chat_id = int(chat) if chat.lstrip("-").isdigit() else chat
        message = {
            "message_id": message_id,
            "from": BOT,
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
            "text": text,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message

    def _text(self, params: dict) -> str:
        if not params.get("text"):
            raise Refused(400, "Bad Request: message text is empty")
        text = _plain(str(params["text"]), params.get("parse_mode"))
        if len(text) > 4096:
            raise Refused(400, "Bad Request: message is too long")
        _check_markup(params.get("reply_markup"))
        return text

    def _m_getme(self, params: dict) -> dict:
        return BOT

    def _m_sendmessage(self, params: dict) -> dict:
        if params.get("chat_id") in (None, ""):
            raise Refused(400, "Bad Request: chat_id is empty")
        chat, text = str(params["chat_id"]), self._text(params)
        with self._lock:
            message_id = next(self._ids.setdefault(chat, itertools.count(1)))
            message = self._messages[(chat, message_id)] = self._message(params, chat, message_id, text)
        return message

    def _m_editmessagetext(self, params: dict) -> dict:
        chat, text = str(params.get("chat_id")), self._text(params)
        with self._lock:
            old = self._messages.get((chat, int(params.get("message_id") or 0)))
            if old is None:
                raise Refused(400, "Bad Request: message to edit not found")
            if old["text"] == text and old.get("reply_markup") == params.get("reply_markup"):
                raise Refused(
                    400,
                    "Bad Request: message is not modified: specified new message content and reply "
                    "markup are exactly the same as a current content and reply markup of the message",
                )
            message = self._message(params, chat, old["message_id"], text)
            message["edit_date"] = int(time.time())
            self._messages[(chat, old["message_id"])] = message
        return message

    def _m_answercallbackquery(self, params: dict) -> bool:
        if not params.get("callback_query_id"):
            raise Refused(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        if len(str(params.get("text") or "")) > 200:
            raise Refused(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    def _m_setwebhook(self, params: dict) -> bool:
        url, secret = str(params.get("url") or ""), params.get("secret_token")
        if url and not url.startswith("https://"):
            raise Refused(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise Refused(400, "Bad Request: secret token contains unallowed characters")
        with self._lock:
            self.webhook = (
                {"url": url, "secret_token": secret, "allowed_updates": params.get("allowed_updates")} if url else None
            )
        return True

    def _m_deletewebhook(self, params: dict) -> bool:
        with self._lock:
            self.webhook = None
        return True

    def _m_getwebhookinfo(self, params: dict) -> dict:
        with self._lock:
            hook, pending = self.webhook or {}, len(self._updates)
        info = {"url": hook.get("url", ""), "has_custom_certificate": False, "pending_update_count": pending}
        return {**info, "allowed_updates": hook["allowed_updates"]} if hook.get("allowed_updates") else info

    def _m_getupdates(self, params: dict) -> list[dict]:
        offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), self.max_poll)
        with self._lock:
            if self.webhook:
                raise Refused(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            while True:
                # an offset confirms every update before it: Telegram forgets them
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or (left := deadline - time.monotonic()) <= 0:
                    return self._updates[:limit]
                self._lock.wait(left)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections to Telegram

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read `calls`, not a log

    def _serve(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", url.path)
        if match is None:
            return self._send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        params: dict[str, Any] = dict(parse_qsl(url.query))
        kind = self.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            if kind == "application/json" and body:
                params.update(json.loads(body))
            elif kind == "application/x-www-form-urlencoded":
                # form values are strings; Telegram reads objects (reply_markup) as JSON text
                params.update({k: json.loads(v) if v[:1] in ("{", "[") else v for k, v in parse_qsl(body.decode())})
        except ValueError:
            return self._send(400, {"ok": False, "error_code": 400, "description": "Bad Request: can't parse JSON"})
        self._send(*self.server.bot_api.answer(match[1], match[2], params))  # type: ignore[attr-defined]

    def _send(self, status: int, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        try:
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting, as a poller that was stopped does

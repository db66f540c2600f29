"""A local SMS provider for tests: Twilio's Messages API and a generic JSON/form gateway on 127.0.0.1.

Twilio: POST /2010-04-01/Accounts/{sid}/Messages.json with HTTP Basic auth (sid:token) and a form
body; answers 201 with a message resource like Twilio's, or Twilio's error JSON. Generic: POST
/generic answers {"id", "messages": [{"id"}]}. `fail(number, ...)` makes either answer an error for
one number; every request is kept in `requests`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    fields: dict[str, Any] = field(default_factory=dict)  # the form or JSON body


@dataclass
class Failure:
    status: int
    code: int | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class SmsServer:
    """Run with `with SmsServer() as server:`; `server.base_url` is where to point the adapters."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.requests: list[Recorded] = []
        self.failures: dict[str, Failure] = {}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}"

    def fail(self, number: str, status: int, code: int | None = None, message: str = "", **headers: str) -> None:
        """Answer `status` (with Twilio's error `code`) to every message for `number`."""
        self.failures[number] = Failure(status, code, message, {k.replace("_", "-"): v for k, v in headers.items()})

    def __enter__(self) -> SmsServer:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- answers -----------------------------------------------------------------------------------

    def twilio(self, path: str, headers: dict[str, str], form: dict[str, str]) -> tuple[int, dict, dict]:
        if path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return 404, _twilio_error(20404, "The requested resource was not found", 404), {}
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, _twilio_error(20003, "Authenticate", 401), {}
        if not form.get("To"):
            return 400, _twilio_error(21604, "A 'To' phone number is required.", 400), {}
        if not form.get("Body"):
            return 400, _twilio_error(21602, "Message body is required.", 400), {}
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 400, _twilio_error(21603, "A 'From' phone number is required.", 400), {}
        if failure := self.failures.get(form["To"]):
            return failure.status, _twilio_error(failure.code, failure.message, failure.status), failure.headers
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return (
            201,
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": form["Body"],
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued",
                "subresource_uris": {"media": f"{uri}/Media.json"},
                "to": form["To"],
                "uri": f"{uri}.json",
            },
            {},
        )

    def generic(self, fields: dict[str, Any]) -> tuple[int, dict, dict]:
        if failure := self.failures.get(str(fields.get("to"))):
            return failure.status, {"error": failure.message}, failure.headers
        message_id = f"gen-{len(self.requests)}"
        return 200, {"id": message_id, "status": "queued", "messages": [{"id": message_id}]}, {}


def _twilio_error(code: int | None, message: str, status: int) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _handler(server: SmsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            if headers.get("content-type", "").startswith("application/json"):
                fields = json.loads(body)
            else:
                fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
            server.requests.append(Recorded(self.path, headers, body, fields))
            if self.path.startswith("/generic"):
                status, answer, extra = server.generic(fields)
            else:
                status, answer, extra = server.twilio(self.path, headers, fields)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args) -> None:  # quiet: the test output is for failures
            pass

    return Handler

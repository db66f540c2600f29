"""The email channel over SMTP: a thread-safe pool of smtplib connections, reused across sends.

Each message is multipart/alternative (text, then HTML when given), written by `channels.mime`: non-ASCII
subjects and names go out as RFC 2047 words, bodies as UTF-8 in base64. Its Message-ID
is derived from the message's key and is the provider id that bounce and complaint hooks
(`/hooks/email/events`, signed with `hook_signature`) look the message up by.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import re
import smtplib
import socket
import ssl
import threading
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from boomerang.channels import mime
from boomerang.channels.base import Outbound, SendResult

if TYPE_CHECKING:
    from boomerang.channels.registry import ChannelContext


_ADDRESS = re.compile(r"[^@\s<>]+@[^@\s<>.][^@\s<>]*")
_ANY_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")


def _email_ish(value: str | None) -> str | None:
    if value is not None and not _ADDRESS.fullmatch(value := value.strip()):
        raise ValueError("must be a bare email address like shop@example.com (the name goes in from_name)")
    return value


def message_id(key: str, from_address: str) -> str:
    """The Message-ID of the message with idempotency key `key`: the same key always gives the same id."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{_ascii_domain(from_address).rpartition('@')[2]}>"


def hook_signature(secret: bytes, body: bytes) -> str:
    """The `X-Boomerang-Signature` header value that authenticates `body` posted to /hooks/email/events."""
    key = hashlib.sha256(b"boomerang-email-hooks\0" + secret).digest()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _ascii_domain(address: str) -> str:
    """`address` with an internationalised domain in punycode, so that only a non-ASCII local part needs SMTPUTF8."""
    local, _, domain = address.rpartition("@")
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


def _reply(code: int, text: bytes | str) -> str:
    """A server's reply for people: any address in it replaced, kept short."""
    text = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(_ANY_ADDRESS.sub('<address>', text).split())}"[:300]


class _Tracked:
    """Knows whether the body may have reached the server: before that, a dropped connection can be retried
    on a fresh one without risk of delivering the message twice."""

    data_started = False

    def deliver(self, sender: str, to: str, msg: bytes, options: list[str]) -> None:
        """One message; raises what smtplib's sendmail raises. With a server that offers PIPELINING (RFC 2920)
        and a message from channels.mime (CRLF lines, none starting with a dot: nothing to escape), MAIL,
        RCPT and DATA go in one write: one round trip instead of three, and no regex pass over the body."""
        self.ehlo_or_helo_if_needed()
        if not self.has_extn("pipelining") or b"\n." in msg or not msg.endswith(b"\r\n"):
            self.sendmail(sender, [to], msg, mail_options=options)  # step by step (see data)
            return
        extra = "".join(f" {o}" for o in options)
        self.send(f"MAIL FROM:<{sender}>{extra}\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode())
        (mail, mail_text), (rcpt, rcpt_text), (data, data_text) = self.getreply(), self.getreply(), self.getreply()
        if data == 354 and (mail != 250 or rcpt not in (250, 251)):
            self.send(b".\r\n")  # a server that took DATA anyway gets an empty message, which it must refuse
            self.getreply()
        if mail != 250 or rcpt not in (250, 251) or data != 354:
            self.rset()
            if mail != 250:
                raise smtplib.SMTPSenderRefused(mail, mail_text, sender)
            if rcpt not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({to: (rcpt, rcpt_text)})
            raise smtplib.SMTPDataError(data, data_text)
        self.data_started = True
        self.send(msg + b".\r\n")
        code, reply = self.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)

    def data(self, msg):
        self.data_started = True
        return super().data(msg)


class _Plain(_Tracked, smtplib.SMTP):
    pass


class _Ssl(_Tracked, smtplib.SMTP_SSL):
    pass


class SmtpChannel:
    """Sends email through an SMTP server (a relay, a provider's submission port, a local MTA)."""

    name: ClassVar[str] = "email"
    in_store: ClassVar[bool] = False

    class Config(BaseModel):
        """SMTP settings: where to connect, how to secure and authenticate, and who the mail is from."""

        model_config = ConfigDict(extra="forbid")

        host: str = Field("127.0.0.1", min_length=1)
        port: int = Field(587, ge=1, le=65535)
        security: Literal["none", "starttls", "ssl"] = "starttls"
        username: str | None = None
        password: SecretStr | None = None
        verify_tls: bool = True
        ca_file: str | None = None  # a CA bundle to trust besides the system's (self-signed test servers)
        from_address: str
        from_name: str = ""
        reply_to: str | None = None
        pool_size: int = Field(4, ge=1, le=64)
        timeout: float = Field(10, gt=0)
        rate_per_second: float | None = Field(None, gt=0)  # paced by the registry

        _check_addresses = field_validator("from_address", "reply_to")(_email_ish)

    def __init__(self, config: Config, ctx: ChannelContext | None = None) -> None:
        self.config = config
        self.concurrency = config.pool_size
        self._idle: queue.LifoQueue[_Plain | _Ssl] = queue.LifoQueue()  # the most recently used is the likeliest alive
        self._slots = threading.Semaphore(config.pool_size)  # connections in use or idle never exceed pool_size
        self._closed = False
        self._tls = self._tls_context() if config.security != "none" else None
        self._ehlo_name = socket.getfqdn()  # once: smtplib would look it up for every connection
        self._envelope_from = _ascii_domain(config.from_address)
        self._from = mime.address(config.from_name, self._envelope_from)
        self._reply_to = {"Reply-To": config.reply_to} if config.reply_to else {}

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.ca_file)
        if not self.config.verify_tls:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context

    def compose(self, message: Outbound) -> bytes:
        """The email for `message`, as bytes (channels.mime); HeaderInjection when a header has a line break."""
        return mime.build(
            sender=self._from,
            to=_ascii_domain((message.to or "").strip()),
            subject=message.subject or "",
            message_id=message_id(message.key, self.config.from_address),
            text=message.text,
            html=message.html,
            headers={**self._reply_to, **message.headers},
        )

    def send(self, message: Outbound) -> SendResult:
        to = _ascii_domain((message.to or "").strip())
        if not _ADDRESS.fullmatch(to):
            return SendResult.failed("no valid email address", permanent=True)
        try:
            mail = self.compose(message)
        except mime.HeaderInjection:  # its text could hold an address, so not shown
            return SendResult.failed("cannot build the email: a line break in a header", permanent=True)
        with self._slots:
            try:
                pooled = self._idle.get_nowait()
            except queue.Empty:
                pooled = None
            mid = message_id(message.key, self.config.from_address)
            if pooled is not None and (result := self._attempt(pooled, mail, to, mid)) is not None:
                return result
            return self._attempt(None, mail, to, mid)

    def _attempt(self, conn: _Plain | _Ssl | None, mail: bytes, to: str, mid: str) -> SendResult | None:
        """Send over `conn` (a pooled connection) or a new one; None when the server had dropped the pooled one
        before the message went (an idle timeout, a restart, a 421): the caller tries once more on a new one."""
        pooled = conn is not None
        try:
            conn = conn or self._connect()
            conn.data_started = False
            options = ["SMTPUTF8"] if not (to + self.config.from_address).isascii() else []
            conn.deliver(self._envelope_from, to, mail, options)
            result = SendResult.sent(mid)
        except (smtplib.SMTPException, OSError) as exc:
            gone = conn is not None and conn.sock is None  # smtplib closes it when the server goes
            if pooled and gone and not conn.data_started:
                return None
            if gone and conn.data_started and isinstance(exc, smtplib.SMTPServerDisconnected):
                # the server may have taken the message and lost only its answer: a retry could deliver it twice
                result = SendResult.failed(
                    "lost the connection while sending the message: it may have been "
                    "delivered, so it is not sent again",
                    permanent=True,
                )
            else:
                result = _result(exc, self.config)
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        self._release(conn)
        return result

    def _connect(self) -> _Plain | _Ssl:
        c = self.config
        if c.security == "ssl":
            conn = _Ssl(c.host, c.port, self._ehlo_name, timeout=c.timeout, context=self._tls)
        else:
            conn = _Plain(c.host, c.port, self._ehlo_name, timeout=c.timeout)
        try:
            if c.security == "starttls":
                conn.starttls(context=self._tls)
            if c.username:
                conn.login(c.username, c.password.get_secret_value() if c.password else "")
        except BaseException:
            conn.close()
            raise
        return conn

    def _release(self, conn: _Plain | _Ssl | None) -> None:
        """Back to the pool while it is open and the channel is; closed otherwise."""
        if conn is None or conn.sock is None:
            return
        if self._closed:
            _quit(conn)
        else:
            self._idle.put(conn)

    def close(self) -> None:
        self._closed = True  # connections in use are closed when their send ends
        while True:
            try:
                _quit(self._idle.get_nowait())
            except queue.Empty:
                return


def _quit(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _result(exc: Exception, config: SmtpChannel.Config) -> SendResult:
    """What an smtplib failure means for the message. Server texts are shown with addresses removed;
    the password never appears (smtplib's errors do not hold it and authentication replies are not shown)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        if 500 <= code < 600:
            return SendResult.bounced(f"recipient refused: {_reply(code, text)}")
        return SendResult.failed(f"recipient deferred: {_reply(code, text)}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):  # 535: retrying with the same password cannot help
        return SendResult.failed(
            f"SMTP authentication failed ({exc.smtp_code}): check the username and password in the email channel's "
            "settings",
            permanent=500 <= exc.smtp_code < 600,
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # about the configuration, not this message: once it is fixed the message can go
        return SendResult.failed(f"sender address refused: {_reply(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPDataError):
        return SendResult.failed(
            f"message refused: {_reply(exc.smtp_code, exc.smtp_error)}", permanent=500 <= exc.smtp_code < 600
        )
    if isinstance(exc, smtplib.SMTPConnectError):
        return SendResult.failed(
            f"SMTP server {config.host}:{config.port} refused the connection: {_reply(exc.smtp_code, exc.smtp_error)}"
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):  # smtplib's own words: "timed out", "unexpectedly closed"
        return SendResult.failed(f"lost the connection to SMTP server {config.host}:{config.port}: {exc}")
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendResult.failed(f"SMTP error: {_reply(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # no STARTTLS, no AUTH, no SMTPUTF8
        return SendResult.failed(f"SMTP server {config.host}:{config.port}: {exc}")
    if isinstance(exc, ssl.SSLError):
        why = (
            getattr(exc, "verify_message", None) or exc.reason or exc
        )  # "self-signed certificate", "WRONG_VERSION_NUMBER"
        return SendResult.failed(f"TLS with {config.host}:{config.port} failed: {why}")
    if isinstance(exc, TimeoutError):
        return SendResult.failed(f"SMTP server {config.host}:{config.port} timed out after {config.timeout:g} s")
    if isinstance(exc, OSError):
        return SendResult.failed(f"cannot reach SMTP server {config.host}:{config.port}: {exc.strerror or exc}")
    return SendResult.failed(f"SMTP error: {exc}")  # smtplib's own words ("No suitable authentication method found.")

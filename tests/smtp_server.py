"""A loopback SMTP server for tests and benchmarks, on aiosmtpd.

    with SmtpServer(tls="starttls", username="u", password="p", refuse={"gone@example.com": 550}) as server:
        ...  # connect to server.host:server.port, trusting server.ca_file
        server.received[0].parsed()["Subject"], server.connections

It records every message (`received`: envelope and raw bytes) and counts the connections it accepted;
`tls` is None (plain), "starttls" (required before anything else) or "ssl" (implicit TLS), with a
self-signed certificate for 127.0.0.1 and localhost made for it; with a username, AUTH LOGIN or PLAIN
is required before MAIL; `refuse` answers RCPT for the given addresses with 550 or 451;
`drop_connections()` hangs up on every client, `hang_up_after_data` after each message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import shutil
import ssl
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPLIES = {
    550: "550 5.1.1 <{}>: Recipient address rejected: User unknown",
    451: "451 4.7.1 <{}>: Recipient address rejected: Try again later",
}


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]  # SMTPUTF8, BODY=8BITMIME when the client asked for them
    content: bytes  # as received, dot-unstuffed, CRLF line ends

    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.content, policy=policy.default)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate (also its own CA) and key for 127.0.0.1 and localhost, written into `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class _Handler:
    """aiosmtpd's hooks: AUTH before MAIL when there are credentials, refusals, and the record."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        """aiosmtpd reads commands one line at a time, so pipelined ones work; it only does not say so."""
        session.host_name = hostname
        if self.server.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, smtp, session, envelope, address, mail_options):
        if self.server.username and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        if address in self.server.refuse:
            return REPLIES[self.server.refuse[address]].format(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        self.server.count += 1
        if self.server.keep:
            self.server.received.append(
                Received(
                    envelope.mail_from, list(envelope.rcpt_tos), list(envelope.mail_options), envelope.original_content
                )
            )
        if self.server.hang_up_after_data:
            smtp.transport.close()  # the message is taken; the client never hears so
        return "250 2.0.0 Message accepted"


class _Controller(Controller):
    """Listens on a free port and keeps the live sessions so that the server can drop them."""

    def __init__(self, owner: SmtpServer, **kwargs) -> None:
        # a fixed server name: aiosmtpd would look the host's up for every connection
        super().__init__(_Handler(owner), hostname="127.0.0.1", port=0, server_hostname="smtp.test", **kwargs)
        self.owner = owner
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        smtp = super().factory()
        self.owner.connections += 1
        self.sessions.add(smtp)
        return smtp

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]  # port 0: the one the system chose
        super()._trigger_server()


class SmtpServer:
    """A loopback SMTP server; a context manager (see the module's docstring)."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        tls: Literal["starttls", "ssl"] | None = None,
        username: str | None = None,
        password: str | None = None,
        refuse: Mapping[str, Literal[550, 451]] | None = None,
        keep: bool = True,
        timeout: float = 300,
        hang_up_after_data: bool = False,
        pipelining: bool = False,
    ) -> None:
        self.tls, self.username, self.password = tls, username, password
        self.refuse = dict(refuse or {})
        self.keep = keep  # False: count messages without keeping them (benchmarks)
        self.timeout = timeout  # idle seconds before the server says 421 and hangs up
        self.hang_up_after_data = hang_up_after_data  # take each message, then hang up before answering
        self.pipelining = pipelining  # offer RFC 2920 PIPELINING in EHLO
        self.received: list[Received] = []
        self.count = 0
        self.connections = 0
        self.port = 0
        self.ca_file: str | None = None
        self._folder: Path | None = None
        self._controller: _Controller | None = None

    def start(self) -> SmtpServer:
        options: dict = {"timeout": self.timeout, "auth_require_tls": self.tls == "starttls"}
        if self.tls:
            self._folder = Path(tempfile.mkdtemp(prefix="boomerang-smtp-"))
            cert, key = self_signed(self._folder)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            self.ca_file = str(cert)
            options.update(
                {"tls_context": context, "require_starttls": True}
                if self.tls == "starttls"
                else {"ssl_context": context}
            )
        if self.username:
            options["authenticator"] = self._authenticate
        self._controller = _Controller(self, **options)
        self._controller.start()
        self.port = self._controller.port
        self.connections = 0  # the controller's own check that it started is not a client
        return self

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (self.username.encode(), self.password.encode())
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    def drop_connections(self) -> None:
        """Hang up on every client at once, without a word (as a restarting server would)."""

        async def drop():
            for smtp in list(self._controller.sessions):
                if smtp.transport is not None:
                    smtp.transport.close()

        asyncio.run_coroutine_threadsafe(drop(), self._controller.loop).result(5)

    def reset(self) -> None:
        self.received.clear()
        self.count = self.connections = 0

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

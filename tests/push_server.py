"""A local web push service for tests, and fake browsers that subscribe to it.

`PushServer` listens on https://127.0.0.1 (a throw-away CA in `ca_file`: point REQUESTS_CA_BUNDLE at
it). A POST to /push/<name> must carry a VAPID header (`vapid t=<JWT>, k=<key>`, RFC 8292) whose
ES256 signature verifies with `k`, whose `aud` is this origin and whose `exp` is within 24 hours;
its aes128gcm body is then decrypted (RFC 8291) with that browser's keys and kept in `received`.
`gone(name)` makes an endpoint answer 410, `answer(name, status)` anything else.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class FakeBrowser:
    """What PushManager.subscribe() makes: a P-256 key pair and a 16-byte auth secret, for one endpoint."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> dict:
        """The browser's PushSubscription.toJSON()."""
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)},
        }


@dataclass
class Delivery:
    name: str
    payload: dict
    headers: dict[str, str]
    claims: dict


class PushServer:
    def __init__(self) -> None:
        self.browsers: dict[str, FakeBrowser] = {}
        self.received: list[Delivery] = []
        self.rejected: list[str] = []  # why requests were refused, for failing tests to show
        self.answers: dict[str, tuple[int, dict[str, str]]] = {}
        self.expected_key: str | None = None  # the VAPID public key senders must use, when set
        self._dir = tempfile.TemporaryDirectory()
        self.ca_file, context = _tls(self._dir.name)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.origin = f"https://127.0.0.1:{self.httpd.server_port}"

    def browser(self, name: str) -> FakeBrowser:
        """A new fake browser subscribed at /push/<name>."""
        self.browsers[name] = FakeBrowser(f"{self.origin}/push/{name}")
        return self.browsers[name]

    def gone(self, name: str) -> None:
        self.answer(name, 410)

    def answer(self, name: str, status: int, **headers: str) -> None:
        self.answers[name] = (status, {k.replace("_", "-"): v for k, v in headers.items()})

    def __enter__(self) -> PushServer:
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._dir.cleanup()

    def check_vapid(self, authorization: str) -> dict:
        """The JWT claims of a valid RFC 8292 Authorization header; ValueError saying what is wrong."""
        scheme, _, params = authorization.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"scheme {scheme!r} is not vapid")
        parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
        token, key = parts.get("t", ""), parts.get("k", "")
        if self.expected_key and key != self.expected_key:
            raise ValueError("k is not the application server key the browser subscribed with")
        header_b64, claims_b64, signature_b64 = token.split(".")
        if json.loads(unb64url(header_b64)) != {"typ": "JWT", "alg": "ES256"}:
            raise ValueError("the JWT header is not ES256")
        signature = unb64url(signature_b64)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        try:
            public.verify(
                encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")),
                f"{header_b64}.{claims_b64}".encode(),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            raise ValueError("the JWT signature does not verify with k") from None
        claims = json.loads(unb64url(claims_b64))
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self.origin}")
        if not time.time() < claims.get("exp", 0) <= time.time() + 86400:
            raise ValueError("exp is not within the next 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise ValueError("sub is not a mailto: or https: URL")
        return claims


def _tls(folder: str) -> tuple[str, ssl.SSLContext]:
    """A CA and a certificate for 127.0.0.1 signed by it: (the CA's PEM file, the server's TLS context)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "boomerang test push CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (os.path.join(folder, n) for n in ("ca.pem", "cert.pem", "key.pem"))
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(cert_file, "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context


def _handler(server: PushServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            name = self.path.removeprefix("/push/")
            browser = server.browsers.get(name)
            if browser is None:
                return self._reply(404)
            try:
                claims = server.check_vapid(self.headers.get("authorization", ""))
            except ValueError as exc:
                server.rejected.append(str(exc))
                return self._reply(401)
            if self.headers.get("content-encoding") != "aes128gcm" or "ttl" not in {k.lower() for k in self.headers}:
                server.rejected.append("not aes128gcm or no TTL")
                return self._reply(400)
            if name in server.answers:
                return self._reply(*server.answers[name])
            plain = http_ece.decrypt(
                body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
            )
            server.received.append(Delivery(name, json.loads(plain), dict(self.headers.items()), claims))
            self._reply(201, {"Location": f"{server.origin}/message/{len(server.received)}"})

        def _reply(self, status: int, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Handler

"""Running the server (`boomerang serve`, and `boomerang demo` after loading)."""

from __future__ import annotations

import errno
import socket

from boomerang import __version__
from boomerang.bootstrap import Workspace
from boomerang.cli.output import console, home
from boomerang.core import collector
from boomerang.core.errors import ValidationFailed


def check_port(host: str, port: int) -> None:
    """Refuse at once a port the server could not listen on (another server has it, say), before the minutes a
    demo takes to load: bind it as uvicorn will (SO_REUSEADDR, every address the host names), then let it go."""
    try:
        addresses = {
            (info[0], info[4])
            for info in socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        }
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationFailed([{"field": "--host", "reason": f"cannot listen on {host!r}: {exc}"}]) from None
    for family, address in sorted(addresses):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL:  # an address family the machine does not have: asyncio skips it
                    continue
                busy = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
                raise ValidationFailed(
                    [{"field": "--port", "reason": f"{host}:{port} {busy}: choose another port with --port N"}]
                ) from None


def run_server(ws: Workspace, *, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from boomerang.api.app import create_app

    host, port = host or ws.settings.host, port or ws.settings.port
    check_port(host, port)  # in use: a clear error (exit 2), not uvicorn's
    console.print(
        f"Boomerang {__version__} on http://{host}:{port}  (dashboard: /, API docs: /docs, workspace: {home(ws)})",
        highlight=False,
    )
    app = create_app(ws)
    collector.tune()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)

"""Running the server (`boomerang serve`, and `boomerang demo` after loading)."""

from __future__ import annotations

from boomerang import __version__
from boomerang.bootstrap import Workspace
from boomerang.cli.output import console


def run_server(ws: Workspace, *, host: str | None = None, port: int | None = None) -> None:
    import uvicorn

    from boomerang.api.app import create_app

    host, port = host or ws.settings.host, port or ws.settings.port
    console.print(
        f"Boomerang {__version__} on http://{host}:{port}  (dashboard: /, API docs: /docs, "
        f"workspace: {ws.settings.home})"
    )
    uvicorn.run(create_app(ws), host=host, port=port, log_level="warning", access_log=False)

"""The server-rendered dashboard: login with roles, analytics pages and customer profiles, mounted at `/`."""

from __future__ import annotations


def mount(app, ws, *, warm: bool = True) -> None:
    """Add the dashboard's pages and static files to the API app (imported here: the models must stay light)."""
    from boomerang.dashboard.views import mount as mount_views

    mount_views(app, ws, warm=warm)

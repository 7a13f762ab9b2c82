"""The operator console under `/console/`: server-rendered pages over the same queries and
operator actions the CLI uses (`bridge.admin`, `bridge.alerts`, `bridge.operator`).

`auth.py` decides who gets in; `views.py` maps each page and action to one service call;
`queries.py` holds the reads the pages need beyond the CLI's; `reveal.py` the audited look at
an order's address. Templates and static files ship inside the package (see pyproject).
"""

from __future__ import annotations

from flask import Flask

from ...bootstrap import Bridge
from .auth import ConsoleAuth
from .views import bp


def register(app: Flask, bridge: Bridge) -> None:
    """Mount the console; with no credential configured it answers every URL with a page that
    says it is off (404), never with an open console."""
    settings = bridge.settings.console
    app.extensions["console_auth"] = ConsoleAuth(settings) if settings.enabled else None
    app.register_blueprint(bp)

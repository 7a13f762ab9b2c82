"""Flask application factory: wires the bridge into blueprints. No logic lives here."""

from __future__ import annotations

from flask import Flask

from .bootstrap import Bridge, bootstrap, configure_logging
from .web import errors, fulfillment_service, health, notifications, webhooks


def create_app(bridge: Bridge | None = None) -> Flask:
    bridge = bridge or bootstrap()
    configure_logging(bridge.settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = bridge.settings.max_body_bytes
    app.extensions["bridge"] = bridge
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(fulfillment_service.bp)
    errors.register(app)
    return app


def current_bridge() -> Bridge:
    from flask import current_app

    bridge: Bridge = current_app.extensions["bridge"]
    return bridge

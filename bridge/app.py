"""Flask application factory: wires the bridge into blueprints. No logic lives here."""

from __future__ import annotations

from flask import Flask

from . import metrics
from .bootstrap import Bridge, bootstrap, configure_logging
from .metrics.collect import ScrapeCache
from .settings import Settings
from .web import admission, console, errors, fulfillment_service, health, notifications, observe, webhooks
from .web import metrics as metrics_endpoint


def create_app(bridge: Bridge | None = None) -> Flask:
    if bridge is None:
        settings = Settings.from_env()
        configure_logging(settings.log_level, settings.log_format)
        bridge = bootstrap(settings)
    else:
        configure_logging(bridge.settings.log_level, bridge.settings.log_format)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = bridge.settings.max_body_bytes
    app.extensions["bridge"] = bridge
    app.extensions["metrics_cache"] = ScrapeCache(bridge.settings.metrics_cache_s)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(notifications.bp)
    app.register_blueprint(fulfillment_service.bp)
    app.register_blueprint(metrics_endpoint.bp)
    console.register(app, bridge)
    observe.register(app, bridge)
    errors.register(app)
    metrics.start(bridge.engine, bridge.settings.metrics_flush_s)
    admission.install(app, bridge)
    return app


def current_bridge() -> Bridge:
    from flask import current_app

    bridge: Bridge = current_app.extensions["bridge"]
    return bridge

"""The composition root: builds settings, channels, engine and clock once, for every entry point."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import IO

from sqlalchemy.engine import Engine

from . import logs
from .channels import ChannelsConfig, load_configured_channels
from .clock import Clock, SystemClock
from .settings import Settings, mask_url
from .store import make_engine

log = logging.getLogger("bridge")


@dataclass
class Bridge:
    settings: Settings
    config: ChannelsConfig
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)


def configure_logging(level: str, fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Every process's logging: `fmt` is `text` or `json` (see `bridge/logs.py`)."""
    logs.configure(level, fmt, stream)
    if fmt == "json":
        # gunicorn's worker-side messages (timeouts, exits) go through our handler too; the
        # master's own start-up lines stay in gunicorn's format.
        gunicorn_log = logging.getLogger("gunicorn.error")
        gunicorn_log.handlers.clear()
        gunicorn_log.propagate = True
    # httpx logs every request URL at INFO; our SP-API client logs each call itself, without ids.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # werkzeug only serves the simulator and fake storefronts (gunicorn serves the bridge).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # boto3/botocore log request dumps (signed headers included) at DEBUG; ours say what matters.
    for name in ("boto3", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def bootstrap(
    settings: Settings | None = None,
    config: ChannelsConfig | None = None,
    engine: Engine | None = None,
    clock: Clock | None = None,
) -> Bridge:
    """Load everything or fail before serving anything (a bad channels file never half-starts)."""
    settings = settings or Settings.from_env()
    config = config or load_configured_channels(settings)
    for warning in config.warnings:
        log.warning("channels file: %s", warning)
    engine = engine or make_engine(settings.database_url)
    log.info(
        "fba-bridge ready database=%s channels=%d config=%s",
        mask_url(settings.database_url),
        len(config.channels),
        settings.config_path,
    )
    return Bridge(settings=settings, config=config, engine=engine, clock=clock or SystemClock())

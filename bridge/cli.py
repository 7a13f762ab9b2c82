"""The `bridge` command: operate the bridge from a shell or a Procfile."""

from __future__ import annotations

import sys
from typing import Any

import click

from .channels import ConfigError, load_channels
from .settings import Settings, SettingsError, mask_url


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _bootstrap() -> Any:
    from .bootstrap import bootstrap, configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    try:
        return bootstrap(settings)
    except ConfigError as exc:
        raise click.ClickException(
            f"the channels file has problems; the bridge will not start:\n{exc}"
        ) from None


@click.group()
def main() -> None:
    """fba-bridge: storefront orders shipped by Amazon Multi-Channel Fulfillment."""


@main.command("check-config")
@click.argument("path", required=False)
def check_config(path: str | None) -> None:
    """Validate the channels file (default: $BRIDGE_CONFIG or config/channels.yaml)."""
    target = path or str(_settings().config_path)
    try:
        config = load_channels(target)
    except ConfigError as exc:
        click.echo(f"{len(exc.problems)} problem(s) in {exc.source}:", err=True)
        for problem in exc.problems:
            click.echo("  " + problem.render(exc.source), err=True)
        sys.exit(1)
    for warning in config.warnings:
        click.echo(f"warning: {warning}")
    click.echo(f"{target}: OK ({len(config.channels)} channel(s), {len(config.accounts)} Amazon account(s))")


@main.group()
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (the Procfile's release phase runs this)."""
    from .migrate import upgrade
    from .store import make_engine

    settings = _settings()
    upgrade(make_engine(settings.database_url), revision)
    click.echo(f"database {mask_url(settings.database_url)} is at {revision}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: $PORT or 5000")
@click.option("--workers", type=int, default=2, show_default=True)
def serve(host: str, port: int | None, workers: int) -> None:
    """Serve the webhook endpoints with gunicorn (applies migrations first)."""
    from .migrate import upgrade

    bridge = _bootstrap()
    upgrade(bridge.engine)
    from .web.server import run_gunicorn

    run_gunicorn(host, port or bridge.settings.port, workers)


@main.command()
def worker() -> None:
    """Run queued jobs until SIGTERM (the Procfile's `worker`)."""
    from .runtime import run_worker

    run_worker(_bootstrap())


@main.command()
def clock() -> None:
    """Enqueue periodic work (sync, stale-order sync, retention purge) while holding the lease."""
    from .runtime import run_clock

    run_clock(_bootstrap())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: $PORT or 5000")
def run(host: str, port: int | None) -> None:
    """Everything on one machine: migrations, web, worker, clock (and the simulator if configured)."""
    from .migrate import upgrade
    from .runtime import run_all

    bridge = _bootstrap()
    upgrade(bridge.engine)
    run_all(bridge, host, port or bridge.settings.port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8700, show_default=True)
@click.option(
    "--speed", type=float, default=60.0, show_default=True, help="virtual fulfilment seconds per second"
)
@click.option(
    "--config", "config_path", default=None, help="simulator inventory file (default config/simulator.yaml)"
)
def simulator(host: str, port: int, speed: float, config_path: str | None) -> None:
    """Serve the bundled Amazon MCF simulator over HTTP."""
    from .amazon.simulator import run_simulator

    run_simulator(host, port, speed, config_path or (str(_settings().simulator_config or "") or None))


if __name__ == "__main__":
    main()

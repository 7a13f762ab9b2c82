"""The `bridge` command: operate the bridge from a shell or a Procfile."""

from __future__ import annotations

import sys
from typing import Any

import click

from .channels import INLINE_SOURCE, ConfigError, load_channels, load_configured_channels
from .settings import Settings, SettingsError, mask_url


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _bootstrap() -> Any:
    from .bootstrap import bootstrap, configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
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
    """Validate the channels file (default: $BRIDGE_CONFIG_YAML, $BRIDGE_CONFIG or config/channels.yaml)."""
    settings = _settings()
    target = path or (INLINE_SOURCE if settings.config_yaml else str(settings.config_path))
    try:
        config = load_channels(path) if path else load_configured_channels(settings)
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


@main.command()
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="seconds to wait for the orders"
)
def demo(timeout: float) -> None:
    """Run the whole loop with no credentials: SQLite, the MCF simulator, fake storefronts."""
    from .bootstrap import configure_logging
    from .demo import run_demo

    configure_logging("WARNING")
    sys.exit(run_demo(click.echo, timeout))


def _engine_and_clock() -> tuple[Any, Any]:
    from .clock import SystemClock
    from .store import make_engine

    return make_engine(_settings().database_url), SystemClock()


@main.command()
@click.option("--state", default=None, help="only orders in this state (e.g. needs_attention)")
@click.option("--attention", is_flag=True, help="only orders an operator should look at")
@click.option("--limit", type=int, default=50, show_default=True)
def orders(state: str | None, attention: bool, limit: int) -> None:
    """List orders, newest first."""
    from .admin import list_orders

    engine, _ = _engine_and_clock()
    for o in list_orders(engine, state=state, attention=attention, limit=limit):
        flag = f"  ! {o.attention}" if o.attention else ""
        click.echo(
            f"{o.id:>6} {o.channel_id:<14} {o.display_id:<12} {o.state:<20} amazon={o.amazon_status}{flag}"
        )


@main.command()
@click.argument("channel_id")
@click.argument("external_id")
def order(channel_id: str, external_id: str) -> None:
    """Show one order and its audit trail."""
    from .admin import AdminError, audit_trail, find_order

    engine, _ = _engine_and_clock()
    try:
        row = find_order(engine, channel_id, external_id)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{row.display_id} ({row.channel_id}/{row.external_id}) state={row.state} "
        f"amazon={row.amazon_status or '-'} sellerFulfillmentOrderId={row.seller_fulfillment_order_id or '-'}"
    )
    if row.attention_reason:
        click.echo(f"attention: {row.attention_reason}")
    for e in audit_trail(engine, row.id or 0):
        click.echo(
            f"  {e.at:%Y-%m-%d %H:%M:%S} {e.event:<28} "
            f"{e.from_state or '':>18} -> {e.to_state or '':<18} {e.reason}"
        )


@main.group(invoke_without_command=True)
@click.pass_context
def jobs(ctx: click.Context) -> None:
    """Queue overview; `bridge jobs retry ID` gives a dead-lettered job new attempts."""
    if ctx.invoked_subcommand:
        return
    from .admin import dead_jobs, job_counts

    engine, _ = _engine_and_clock()
    for (kind, status), n in sorted(job_counts(engine).items()):
        click.echo(f"{kind:<12} {status:<8} {n}")
    for job in dead_jobs(engine):
        click.echo(
            f"dead job {job.id} kind={job.kind} order_id={job.order_id} "
            f"attempts={job.attempts}: {job.last_error}"
        )


@jobs.command("retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    from .admin import AdminError, retry_job

    engine, clock = _engine_and_clock()
    try:
        retry_job(engine, clock, job_id)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"job {job_id} queued again")


@main.group(invoke_without_command=True)
@click.option("--all", "include_cleared", is_flag=True, help="also alerts that were cleared")
@click.option("--channel", "channel_id", default=None, help="only this channel's alerts")
@click.pass_context
def alerts(ctx: click.Context, include_cleared: bool, channel_id: str | None) -> None:
    """Operator alerts, newest first: one per cause, with what to do about it."""
    if ctx.invoked_subcommand:
        return
    from .alerts import list_alerts

    engine, _ = _engine_and_clock()
    found = list_alerts(engine, include_cleared=include_cleared, channel_id=channel_id)
    if not found:
        click.echo("no open alerts" if not include_cleared else "no alerts")
        return
    click.echo(
        f"{'ID':>5}  {'LAST SEEN (UTC)':<19}  {'KIND':<20} {'ORDER':<14} {'SEEN':>4}  STATUS / MESSAGE"
    )
    for a in found:
        status = "cleared" if a.cleared_at else ("acknowledged" if a.acknowledged_at else "open")
        click.echo(
            f"{a.id:>5}  {a.last_seen_at:%Y-%m-%d %H:%M:%S}  {a.kind:<20} "
            f"{a.order_display_id or a.account_id or a.channel_id or '-':<14} {a.occurrences:>4}  "
            f"[{status}] {a.message}"
        )


def _alert_action(alert_id: int, action: str) -> None:
    import getpass

    from . import alerts as alerts_module

    engine, clock = _engine_and_clock()
    act = alerts_module.acknowledge if action == "acknowledged" else alerts_module.resolve
    try:
        act(engine, alert_id, f"cli:{getpass.getuser()}", clock.now())
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"alert {alert_id} {action}")


@alerts.command("ack")
@click.argument("alert_id", type=int)
def alerts_ack(alert_id: int) -> None:
    """Mark an alert as seen; it stays listed until its cause is gone or it is resolved."""
    _alert_action(alert_id, "acknowledged")


@alerts.command("resolve")
@click.argument("alert_id", type=int)
def alerts_resolve(alert_id: int) -> None:
    """Close an alert by hand (it opens again if its cause comes back)."""
    _alert_action(alert_id, "resolved")


@main.command("return")
@click.argument("channel_id")
@click.argument("external_id")
@click.option(
    "--item", "items", multiple=True, required=True, help="LINE_ID:QUANTITY[:REASON_CODE], repeatable"
)
@click.option("--comment", default="", help="return comment for Amazon")
def return_(channel_id: str, external_id: str, items: tuple[str, ...], comment: str) -> None:
    """Ask Amazon to authorise a customer return for shipped units."""
    from .admin import AdminError, request_return

    engine, clock = _engine_and_clock()
    try:
        request_return(engine, clock, channel_id, external_id, list(items), comment)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("return queued; `bridge order` shows Amazon's authorisation once the worker ran it")


# --------------------------------------------------------------------------------------------
# Going live: read-only checks against the real APIs


def _checked_config() -> tuple[Settings, Any]:

    settings = _settings()
    try:
        return settings, load_configured_channels(settings)
    except ConfigError as exc:
        raise click.ClickException(
            f"the channels file has problems; run `fba-bridge check-config`:\n{exc}"
        ) from None


def _report(findings: Any) -> None:
    for finding in findings.items:
        click.echo(finding.render())
    missing = sum(1 for f in findings.items if f.status == "missing")
    click.echo("all checks passed" if findings.passed else f"{missing} thing(s) missing")
    if not findings.passed:
        sys.exit(1)


@main.group("check")
def check_group() -> None:
    """Going-live checks: call Amazon or a storefront read-only and say what is missing."""


@check_group.command("amazon")
@click.argument("account_ids", nargs=-1)
def check_amazon_command(account_ids: tuple[str, ...]) -> None:
    """Login with Amazon and one SP-API call for each account (default: all)."""
    from .golive import check_amazon

    settings, config = _checked_config()
    _report(check_amazon(config, settings, account_ids))


@check_group.command("channel")
@click.argument("channel_ids", nargs=-1)
@click.option(
    "--public-url",
    default=None,
    help="the bridge's public address (e.g. https://my-bridge.herokuapp.com): checks that it answers "
    "and that the storefront's webhooks point at it",
)
def check_channel_command(channel_ids: tuple[str, ...], public_url: str | None) -> None:
    """The storefront API, access scopes and webhooks of each channel (default: all)."""
    from .golive import check_channels

    _, config = _checked_config()
    _report(check_channels(config, channel_ids, public_url=public_url))


if __name__ == "__main__":
    main()

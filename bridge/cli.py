"""The `fba-bridge` command (also installed as `bridge`): operate the bridge from a shell or a Procfile."""

from __future__ import annotations

import sys
from typing import Any

import click

from .channels import ConfigError, load_channels
from .command import command as cli_command
from .migrate import DatabaseNotReady
from .orders import OrderState
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


def _not_ready(exc: DatabaseNotReady) -> click.ClickException:
    return click.ClickException(str(exc))


def _ready_engine() -> Any:
    """The database of $DATABASE_URL, which must exist and be migrated (never created here)."""
    from .migrate import open_ready

    try:
        return open_ready(_settings().database_url)
    except DatabaseNotReady as exc:
        raise _not_ready(exc) from None


def _migrate(engine: Any) -> None:
    from .migrate import safe_upgrade

    try:
        safe_upgrade(engine)
    except DatabaseNotReady as exc:
        raise _not_ready(exc) from None


def _require_ready(bridge: Any) -> None:
    """For the long-running processes that do not migrate: worker and clock."""
    from .migrate import check_schema, require_existing

    try:
        require_existing(bridge.settings.database_url)
        check_schema(bridge.engine)
    except DatabaseNotReady as exc:
        raise _not_ready(exc) from None


@click.group()
def main() -> None:
    """fba-bridge: storefront orders shipped by Amazon Multi-Channel Fulfillment."""


@main.command("check-config")
@click.argument("path", required=False)
def check_config(path: str | None) -> None:
    """Validate the channels file (default: $BRIDGE_CONFIG, else ./config/channels.yaml, else the
    bundled example)."""
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
    from .migrate import current_revision, safe_upgrade
    from .store import make_engine

    settings = _settings()
    engine = make_engine(settings.database_url)
    try:
        safe_upgrade(engine, revision)
    except DatabaseNotReady as exc:
        raise _not_ready(exc) from None
    click.echo(f"database {mask_url(settings.database_url)} is at revision {current_revision(engine)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: $PORT or 5000")
@click.option("--workers", type=int, default=2, show_default=True)
def serve(host: str, port: int | None, workers: int) -> None:
    """Serve the webhook endpoints with gunicorn (applies migrations first)."""
    bridge = _bootstrap()
    _migrate(bridge.engine)
    from .web.server import run_gunicorn

    run_gunicorn(host, port or bridge.settings.port, workers)


@main.command()
def worker() -> None:
    """Run queued jobs until SIGTERM (the Procfile's `worker`)."""
    from .amazon.accounts import SimulatorLayoutError
    from .runtime import run_worker

    bridge = _bootstrap()
    _require_ready(bridge)
    try:
        sys.exit(run_worker(bridge))
    except SimulatorLayoutError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def clock() -> None:
    """Enqueue periodic work (sync, stale-order sync, retention purge) while holding the lease."""
    from .runtime import run_clock

    bridge = _bootstrap()
    _require_ready(bridge)
    sys.exit(run_clock(bridge))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: $PORT or 5000")
@click.option(
    "--with-fakes",
    is_flag=True,
    help="also run fake Shopify, WooCommerce and generic shops on loopback and point the example "
    "channels file's storefronts at them (a complete local loop; not for production)",
)
def run(host: str, port: int | None, with_fakes: bool) -> None:
    """Everything on one machine: migrations, web, worker, clock (and the simulator if configured).

    Exits non-zero when one of its processes dies, so a supervisor restarts it."""
    from .runtime import PortInUse, check_port_free, run_all

    port = port or _settings().port
    try:
        check_port_free(host, port)
    except PortInUse as exc:
        raise click.ClickException(str(exc)) from None
    bridge = _bootstrap()
    _migrate(bridge.engine)
    sys.exit(run_all(bridge, host, port, with_fakes=with_fakes))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8700, show_default=True)
@click.option(
    "--speed", type=float, default=60.0, show_default=True, help="virtual fulfilment seconds per second"
)
@click.option(
    "--config",
    "config_path",
    default=None,
    help="simulator inventory file (default: $BRIDGE_SIMULATOR_CONFIG, else config/simulator.yaml)",
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

    return _ready_engine(), SystemClock()


ORDER_STATES = [state.value for state in OrderState]


@main.command()
@click.option(
    "--state",
    type=click.Choice(ORDER_STATES),
    default=None,
    help="only orders in this state: " + ", ".join(ORDER_STATES),
)
@click.option("--attention", is_flag=True, help="only orders an operator should look at")
@click.option("--limit", type=int, default=50, show_default=True)
def orders(state: str | None, attention: bool, limit: int) -> None:
    """List orders, newest first. ORDER is what `order`, `return` take (the shop's order id)."""
    from .admin import list_orders

    engine, _ = _engine_and_clock()
    found = list_orders(engine, state=state, attention=attention, limit=limit)
    if not found:
        click.echo(
            "no orders" + (" in this state" if state else "") + (" need attention" if attention else "")
        )
        return
    click.echo(
        f"{'CHANNEL':<14} {'ORDER':<16} {'NAME':<12} {'STATE':<20} {'AMAZON':<18} "
        f"{'CREATED (UTC)':<16}  {'UPDATED (UTC)':<16}  ATTENTION"
    )
    for o in found:
        click.echo(
            f"{o.channel_id:<14} {o.external_id:<16} {o.display_id:<12} {o.state:<20} {o.amazon_status:<18} "
            f"{o.created_at:%Y-%m-%d %H:%M}  {o.updated_at:%Y-%m-%d %H:%M}  {o.attention}".rstrip()
        )


@main.command()
@click.argument("channel_id")
@click.argument("order_id")
def order(channel_id: str, order_id: str) -> None:
    """Show one order and its audit trail. ORDER_ID is the shop's order id (the ORDER column of
    `orders`) or its name as the shop shows it (e.g. #1001)."""
    from .admin import AdminError, audit_trail, find_order

    engine, _ = _engine_and_clock()
    try:
        row = find_order(engine, channel_id, order_id)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"{row.display_id} ({row.channel_id}/{row.external_id}) state={row.state} "
        f"amazon={row.amazon_status or '-'} sellerFulfillmentOrderId={row.seller_fulfillment_order_id or '-'}"
    )
    click.echo(
        f"created {row.created_at:%Y-%m-%d %H:%M:%S} UTC, updated {row.updated_at:%Y-%m-%d %H:%M:%S} UTC"
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
    """Queue overview; `fba-bridge jobs retry ID` gives a dead-lettered job new attempts."""
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
@click.argument("order_id")
@click.option(
    "--item", "items", multiple=True, required=True, help="LINE_ID:QUANTITY[:REASON_CODE], repeatable"
)
@click.option("--comment", default="", help="return comment for Amazon")
def return_(channel_id: str, order_id: str, items: tuple[str, ...], comment: str) -> None:
    """Ask Amazon to authorise a customer return for shipped units (ORDER_ID as for `order`)."""
    from .admin import AdminError, request_return

    engine, clock = _engine_and_clock()
    try:
        request_return(engine, clock, channel_id, order_id, list(items), comment)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f'return queued; "{cli_command()} order {channel_id} {order_id}" shows Amazon\'s authorisation '
        "once the worker ran it"
    )


if __name__ == "__main__":
    main(prog_name="fba-bridge")

"""The `fba-bridge` command (also installed as `bridge`): operate the bridge from a shell or a Procfile."""

from __future__ import annotations

import sys
from typing import Any

import click

from .channels import INLINE_SOURCE, ConfigError, load_channels, load_configured_channels
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
    configure_logging(settings.log_level, settings.log_format)
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


def _ready_bridge() -> Any:
    """The bridge of a command that needs the database there and migrated (it does not migrate)."""
    bridge = _bootstrap()
    _require_ready(bridge)
    return bridge


def _require_ready(bridge: Any) -> None:
    """For the long-running processes that do not migrate: worker and clock."""
    from .migrate import check_schema, require_existing

    try:
        require_existing(bridge.engine.url.render_as_string(hide_password=False))
        check_schema(bridge.engine)
    except DatabaseNotReady as exc:
        raise _not_ready(exc) from None


@click.group()
def main() -> None:
    """fba-bridge: storefront orders shipped by Amazon Multi-Channel Fulfillment."""


@main.command("check-config")
@click.argument("path", required=False)
@click.option("--offline", is_flag=True, help="do not ask the shops whether their set-up matches")
def check_config(path: str | None, offline: bool) -> None:
    """Validate the channels file (default: $BRIDGE_CONFIG_YAML, $BRIDGE_CONFIG, else
    ./config/channels.yaml, else the bundled example); then, unless --offline, check each Shopify
    channel's locations or fulfillment service against its shop."""
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
    if not offline and not _check_shops(config):
        sys.exit(1)
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

    run_gunicorn(host, port or bridge.settings.port, workers, bridge.settings.web_threads)


@main.command()
def worker() -> None:
    """Run queued jobs until SIGTERM (the Procfile's `worker`)."""
    from .amazon.accounts import SimulatorLayoutError
    from .runtime import run_worker

    bridge = _ready_bridge()
    try:
        sys.exit(run_worker(bridge))
    except SimulatorLayoutError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def clock() -> None:
    """Enqueue periodic work (sync, stale-order sync, retention purge) while holding the lease."""
    from .runtime import run_clock

    bridge = _ready_bridge()
    sys.exit(run_clock(bridge))


@main.command()
def notifications() -> None:
    """Consume Amazon's notifications from SQS until SIGTERM (the Procfile's `notifications`)."""
    from .runtime import run_notifications

    bridge = _ready_bridge()
    if not bridge.settings.sqs.queue_url:
        raise click.ClickException(
            "set BRIDGE_SQS_QUEUE_URL to the queue Amazon sends notifications to (and AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AWS_REGION); `fba-bridge amazon subscribe ACCOUNT --sqs-arn ARN` "
            "subscribes the seller"
        )
    run_notifications(bridge)


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
@click.option(
    "--sqs-endpoint",
    default=None,
    help="a local SQS (e.g. moto on loopback): publish notifications to subscribed queues there",
)
def simulator(host: str, port: int, speed: float, config_path: str | None, sqs_endpoint: str | None) -> None:
    """Serve the bundled Amazon MCF simulator over HTTP."""
    from .amazon.simulator import run_simulator

    settings = _settings()
    run_simulator(
        host, port, speed, config_path or (str(settings.simulator_config or "") or None), sqs_endpoint
    )


@main.command()
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="seconds to wait for the orders"
)
@click.option(
    "--serve",
    is_flag=True,
    help="keep the demo's bridge running with the console open (prints its URL and a one-time password)",
)
@click.option("--port", type=int, default=0, help="with --serve: the console's port (default: any free one)")
def demo(timeout: float, serve: bool, port: int) -> None:
    """Run the whole loop with no credentials: SQLite, the MCF simulator, fake storefronts."""
    import threading

    from .bootstrap import configure_logging
    from .demo import run_demo, serve_console

    configure_logging("WARNING")
    then = serve_console(click.echo, threading.Event().wait) if serve else None
    try:
        sys.exit(run_demo(click.echo, timeout, then=then, port=port))
    except KeyboardInterrupt:
        click.echo("stopped")


@main.command("console-password")
@click.password_option(help="the console password (asked for when not given)")
def console_password(password: str) -> None:
    """Print the hash to set as BRIDGE_CONSOLE_PASSWORD_HASH (the password itself is not stored)."""
    from .web.console.auth import hash_password

    try:
        click.echo(hash_password(password))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


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
@click.option(
    "--resubmit-all",
    is_flag=True,
    help="with --attention: re-submit every parked order (a dry run unless --yes is given)",
)
@click.option("--yes", is_flag=True, help="with --resubmit-all: really re-submit")
def orders(state: str | None, attention: bool, limit: int, resubmit_all: bool, yes: bool) -> None:
    """List orders, newest first. ORDER (or NAME) is what `order` and `return` take."""
    from .admin import account_problems, channel_problems, list_orders

    if resubmit_all:
        if not attention:
            raise click.UsageError("--resubmit-all goes with --attention (it re-submits parked orders)")
        _resubmit_all(yes)
        return
    engine, _ = _engine_and_clock()
    if attention:
        problems = account_problems(engine)
        if problems:
            click.echo("account problems:")
            for a in problems:
                click.echo(f"  ! {a.account_id} [{a.kind}] {a.message}")
        shops = channel_problems(engine)
        if shops:
            click.echo("channel problems:")
            for a in shops:
                click.echo(f"  ! {a.channel_id} [{a.kind}] {a.message}")
        if problems or shops:
            click.echo("orders:")
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


def _operator_name() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _resubmit_all(yes: bool) -> None:
    from . import operator

    bridge = _ready_bridge()
    results = operator.resubmit_all(bridge, actor=_operator_name(), dry_run=not yes)
    if not results:
        click.echo("no parked orders to re-submit")
        return
    for r in results:
        click.echo(f"{r.channel_id:<14} {r.order_ref:<16} {r.state:<18} {r.message}")
    if yes:
        click.echo(f"{sum(r.changed for r in results)} of {len(results)} orders re-submitted")
    else:
        click.echo(f"dry run: {len(results)} orders would be re-submitted; add --yes to do it")


ORDER_ACTIONS = ("show", "resubmit", "approve", "hold", "cancel", "preview")


@main.command()
@click.argument("channel_id")
@click.argument("order_id")
@click.argument("action", type=click.Choice(ORDER_ACTIONS), default="show")
@click.option("--reason", default="", help="with hold: why (goes into the audit trail)")
def order(channel_id: str, order_id: str, action: str, reason: str) -> None:
    """Show one order and its audit trail, or act on it. ORDER_ID is the shop's order id (the
    ORDER column of `orders`) or its name as the shop shows it (e.g. #1001).

    \b
    resubmit  re-plan a parked order against the current channels file and stock
    approve   let an order that waits for approval go to Amazon
    hold      keep an order that has not reached Amazon until it is approved
    cancel    stop the order here (and at Amazon if it is there); the shop's order is not changed
    preview   ask Amazon now whether and at what fee it would ship the order (creates nothing)
    """
    if action != "show":
        _order_action(channel_id, order_id, action, reason)
        return
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


def _order_action(channel_id: str, order_id: str, action: str, reason: str) -> None:
    from . import operator

    bridge = _ready_bridge()
    actor = _operator_name()
    try:
        if action == "preview":
            p = operator.preview_now(bridge, channel_id, order_id, actor=actor)
            click.echo(
                f"{p.order_ref}: speed {p.speed}, "
                + ("fulfillable" if p.fulfillable else "NOT fulfillable")
                + (f"; would be parked: {p.verdict}" if p.verdict else "; would be created")
            )
            for preview in p.previews:
                fees = preview.estimated_fees_total
                fee_text = f"{fees.value} {fees.currency_code}" if fees else "no fee estimate"
                dates = [
                    f"ship {s.earliest_ship_date:%Y-%m-%d}..{s.latest_ship_date:%Y-%m-%d}"
                    for s in preview.shipments
                    if s.earliest_ship_date and s.latest_ship_date
                ]
                click.echo(
                    f"  {preview.shipping_speed_category:<10} "
                    f"{'fulfillable' if preview.is_fulfillable else 'not fulfillable':<16} {fee_text}"
                    + (f"  {', '.join(dates)}" if dates else "")
                )
            return
        if action == "hold":
            result = operator.hold(bridge, channel_id, order_id, actor=actor, reason=reason)
        else:
            result = getattr(operator, action)(bridge, channel_id, order_id, actor=actor)
    except operator.OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{result.order_ref} ({result.channel_id}): {result.message} [state {result.state}]")


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
    from .admin import open_breakers, retrying_jobs

    for waiting in retrying_jobs(engine):
        click.echo(
            f"retrying job {waiting.id} kind={waiting.kind} order={waiting.order} "
            f"attempts={waiting.attempts}/{waiting.max_attempts} "
            f"next={waiting.next_try:%Y-%m-%d %H:%M:%S} UTC: {waiting.last_error}"
        )

    for breaker in open_breakers(engine):
        click.echo(f"open circuit breaker {breaker.key.split(':', 1)[1]}: {breaker.message}")


@jobs.command("retry")
@click.argument("job_id", type=int)
def jobs_retry(job_id: int) -> None:
    from . import operator

    bridge = _ready_bridge()
    try:
        operator.retry_job(bridge, job_id, actor=_operator_name())
    except operator.OperatorError as exc:
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
    from . import operator

    bridge = _ready_bridge()
    act = operator.ack_alert if action == "acknowledged" else operator.resolve_alert
    try:
        act(bridge, alert_id, actor=_operator_name())
    except operator.OperatorError as exc:
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


@main.command("reconcile")
@click.argument("channel_id")
@click.option("--since", help="read orders changed since this ISO 8601 time (default: the channel's cursor)")
def reconcile(channel_id: str, since: str | None) -> None:
    """Run one reconciliation pass of CHANNEL now: read the orders the storefront changed and
    take in every one a webhook did not bring (e.g. after an outage)."""
    from datetime import datetime

    from .pipeline.reconcile import NotReconcilable, PassBusy, run_pass
    from .storefronts.push import PushError
    from .storefronts.registry import Storefronts

    since_at = None
    if since:
        try:
            since_at = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(
                "give an ISO 8601 time such as 2026-12-01T08:00:00Z", param_hint="--since"
            ) from None
        if since_at.tzinfo is None:
            raise click.BadParameter("give a UTC offset, e.g. 2026-12-01T08:00:00Z", param_hint="--since")
    bridge = _ready_bridge()
    storefronts = Storefronts(bridge.clock)
    try:
        summary = run_pass(bridge, storefronts, channel_id, since_at)
    except (NotReconcilable, PassBusy) as exc:
        raise click.ClickException(str(exc)) from None
    except PushError as exc:
        raise click.ClickException(
            f"channel {channel_id}: the storefront could not be read ({exc.code}): {exc.message}; "
            "nothing was skipped, run the command again once it answers"
        ) from None
    finally:
        storefronts.close()
    click.echo(f"channel {channel_id}: orders changed since {summary.since.isoformat()}")
    click.echo(f"  found          {summary.found}")
    click.echo(f"  new orders     {summary.new}")
    click.echo(f"  amendments     {summary.amendments}")
    click.echo(f"  cancellations  {summary.cancellations}")
    click.echo(f"  nothing to do  {summary.nothing_to_do}")
    if summary.rejected:
        click.echo(
            f"  refused        {summary.rejected} (see the log: the order does not match the webhook schema)"
        )
    for hook in summary.webhooks_not_active:
        topic, _, status = hook.partition(":")
        click.echo(f"  webhook {topic} is {status}: set it to Active again in the storefront")
    click.echo(f"  {summary.calls} storefront call(s), {summary.seconds:.1f}s")


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


@main.group()
def amazon() -> None:
    """Amazon account tasks: notification subscriptions, credential rechecks."""


def _notifications_api(account_id: str) -> Any:
    from .amazon.accounts import build_notifications_api

    bridge = _ready_bridge()
    if account_id not in bridge.config.accounts:
        known = ", ".join(sorted(bridge.config.accounts)) or "none"
        raise click.ClickException(
            f"no Amazon account {account_id!r} in the channels file (accounts: {known})"
        )
    return build_notifications_api(bridge, account_id)


@amazon.command("subscribe")
@click.argument("account_id")
@click.option("--sqs-arn", required=True, help="ARN of the SQS queue Amazon should send notifications to")
@click.option("--replace", is_flag=True, help="move an existing subscription that sends elsewhere")
def amazon_subscribe(account_id: str, sqs_arn: str, replace: bool) -> None:
    """Subscribe the seller to FULFILLMENT_ORDER_STATUS notifications on an SQS queue (idempotent)."""
    from .amazon.errors import SpApiError
    from .amazon.subscriptions import SubscriptionError, check_sqs_arn, subscribe

    try:
        check_sqs_arn(sqs_arn)
    except SubscriptionError as exc:
        raise click.ClickException(exc.message) from None
    api = _notifications_api(account_id)
    try:
        result = subscribe(api, sqs_arn, replace=replace)
    except (SubscriptionError, SpApiError) as exc:
        raise click.ClickException(getattr(exc, "message", None) or str(exc)) from None
    finally:
        api.close()
    if result.replaced_subscription_id:
        click.echo(f"removed subscription {result.replaced_subscription_id} (it sent elsewhere)")
    click.echo(
        f"destination {result.destination.destination_id} "
        f"({'created' if result.destination_created else 'exists'}): {result.destination.sqs_arn}"
    )
    click.echo(
        f"subscription {result.subscription.subscription_id} "
        f"({'created' if result.subscription_created else 'exists'}): FULFILLMENT_ORDER_STATUS "
        f"payload {result.subscription.payload_version}"
    )
    click.echo("run the `notifications` process with BRIDGE_SQS_QUEUE_URL set to this queue's URL")


@amazon.command("subscriptions")
@click.argument("account_id")
def amazon_subscriptions(account_id: str) -> None:
    """Show the app's notification destinations and the seller's FULFILLMENT_ORDER_STATUS subscription."""
    from .amazon.errors import SpApiError
    from .amazon.subscriptions import describe

    api = _notifications_api(account_id)
    try:
        state = describe(api)
    except SpApiError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        api.close()
    for d in state.destinations:
        click.echo(f"destination {d.destination_id} {d.name!r}: {d.sqs_arn or '(EventBridge)'}")
    if not state.destinations:
        click.echo("no destinations")
    if state.subscription is None:
        click.echo("no FULFILLMENT_ORDER_STATUS subscription for this seller")
    else:
        target = state.destination.sqs_arn if state.destination else "(destination not listed)"
        click.echo(
            f"subscription {state.subscription.subscription_id}: FULFILLMENT_ORDER_STATUS -> "
            f"{state.subscription.destination_id} {target}"
        )


@main.group()
def shopify() -> None:
    """Shopify set-up: the bridge as a fulfillment service (see README, "Shopify: two ways to connect")."""


@shopify.command("register")
@click.argument("channel_id")
def shopify_register(channel_id: str) -> None:
    """Register the bridge with CHANNEL's shop as a fulfillment service (safe to run again)."""
    from .clock import SystemClock
    from .storefronts.push import PushError
    from .storefronts.shopify_fulfillment import NOTIFICATION_PATH, service_callback_url
    from .storefronts.shopify_push import ShopifyPusher

    try:
        config = load_channels(_settings().config_path)
    except ConfigError as exc:
        raise click.ClickException(f"the channels file has problems:\n{exc}") from None
    channel = config.channel(channel_id)
    if channel is None or channel.platform != "shopify":
        raise click.ClickException(f"no Shopify channel {channel_id!r} in {config.source}")
    if not channel.shopify.fulfillment_service:
        raise click.ClickException(
            f"channel {channel_id} is in {channel.shopify.mode} mode; set shopify.mode: fulfillment_service "
            "and shopify.callback_url first"
        )
    pusher = ShopifyPusher(channel, SystemClock())
    try:
        registration = pusher.assignments.register()
    except PushError as exc:
        raise click.ClickException(f"Shopify refused or could not be reached: {exc.message}") from None
    finally:
        pusher.close()
    service = registration.service
    click.echo(
        f"{registration.outcome}: fulfillment service {service.name!r} ({service.id}), location "
        f"{service.location_name!r} ({service.location_id})"
    )
    click.echo(
        "Shopify posts fulfillment and cancellation requests to "
        f"{service_callback_url(channel)}/{NOTIFICATION_PATH}"
    )
    click.echo("Next: in the Shopify admin, stock the products Amazon ships at that location (see README).")


def _check_shops(config: Any) -> bool:
    """Ask each restricted Shopify channel's shop whether its set-up matches; False on a mismatch.
    An unreachable shop is a warning, not a failure (check-config also runs where shops are not
    reachable, e.g. in CI)."""
    from .clock import SystemClock
    from .storefronts.push import PushError
    from .storefronts.shopify_push import ShopifyPusher

    ok = True
    for channel in config.channels.values():
        releases = channel.fallback.action == "release"
        if (
            channel.platform != "shopify"
            or not channel.enabled
            or not (channel.shopify.restricted or releases)
        ):
            continue
        pusher = ShopifyPusher(channel, SystemClock())
        try:
            problems = pusher.assignments.setup_problems()
        except PushError as exc:
            click.echo(f"warning: {channel.id}: could not reach the shop to check its set-up ({exc.message})")
            continue
        finally:
            pusher.close()
        for problem in problems:
            click.echo(f"  {channel.id}: {problem}", err=True)
        if problems:
            ok = False
        else:
            click.echo(f"{channel.id}: the shop's set-up matches ({channel.shopify.mode})")
    return ok


@amazon.command("recheck")
@click.argument("account_id")
def amazon_recheck(account_id: str) -> None:
    """Ask Login with Amazon now whether ACCOUNT's credentials work; a parked account resumes at once."""
    from .admin import AdminError, recheck_amazon_account
    from .amazon.errors import SpApiError

    bridge = _ready_bridge()
    try:
        recheck_amazon_account(bridge, account_id)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    except SpApiError as exc:
        raise click.ClickException(
            f"Amazon account {account_id} still cannot get an access token: {exc.describe()}"
        ) from None
    click.echo(f"Amazon account {account_id}: credentials accepted; parked work resumes now")


@main.group()
def channels() -> None:
    """Storefront channels: `channels recheck CHANNEL` after fixing a storefront credential."""


@channels.command("recheck")
@click.argument("channel_id")
def channels_recheck(channel_id: str) -> None:
    """Ask CHANNEL's storefront now whether it accepts our credentials; a parked channel's
    push-backs resume at once (the bridge also rechecks on its own every minute)."""
    from .admin import AdminError, recheck_channel
    from .storefronts.push import PushError

    bridge = _bootstrap()
    try:
        checked = recheck_channel(bridge, channel_id)
    except AdminError as exc:
        raise click.ClickException(str(exc)) from None
    except PushError as exc:
        raise click.ClickException(f"channel {channel_id}: {exc.message}") from None
    if checked:
        click.echo(
            f"channel {channel_id}: the storefront accepts our credentials; parked push-backs resume now"
        )
    else:
        click.echo(
            f"channel {channel_id}: this platform has no read-only check; parked push-backs were made due "
            "now and the first one checks the credentials (see `fba-bridge jobs`)"
        )


# fba-bridge inventory


class _ChannelOrCommand(click.Group):
    """`inventory [CHANNEL]` and `inventory sync CHANNEL`: a first word that is not a subcommand
    is the channel to show."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            ctx.meta["inventory_channel"] = args[0]
            args = args[1:]
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return ["[CHANNEL]", *super().collect_usage_pieces(ctx)]


def _when(moment: Any) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment else "-"


@main.group(cls=_ChannelOrCommand, invoke_without_command=True)
@click.option("--sku", default=None, help="only this storefront or Amazon SKU")
@click.option("--limit", type=int, default=200, show_default=True)
@click.pass_context
def inventory(ctx: click.Context, sku: str | None, limit: int) -> None:
    """Stock per storefront SKU: Amazon's sellable units, in flight, the target, the storefront's
    value and when the bridge last pushed it."""
    if ctx.invoked_subcommand:
        return
    from .pipeline.inventory import stock_report

    bridge = _ready_bridge()
    channel_id = ctx.meta.get("inventory_channel")
    if channel_id and bridge.config.channel(channel_id) is None:
        raise click.ClickException(f"no channel {channel_id!r} in {bridge.config.source}")
    cursors, lines = stock_report(bridge, channel_id, sku, limit)
    synced = [c.id for c in bridge.config.channels.values() if c.inventory.sync]
    if not synced:
        click.echo(
            "inventory sync is off for every channel (set `inventory: {sync: true}` in the channels file)"
        )
    for c in cursors:
        click.echo(
            f"Amazon {c.account_id}/{c.marketplace_id}: changes read up to {_when(c.changes_until)} UTC, "
            f"last full read {_when(c.swept_at)} UTC"
        )
    if not lines:
        click.echo("no stock recorded yet" + (" for this SKU" if sku else ""))
        return
    click.echo(
        f"{'CHANNEL':<14} {'SKU':<20} {'AMAZON SKU':<20} {'AMAZON':>7} {'FLYING':>6} {'TARGET':>7} "
        f"{'SHOP':>6} {'PUSHED':>6} {'PUSHED AT (UTC)':<19}  STATUS"
    )
    for line in lines:
        status = line.status if line.status != "ok" else ("in sync" if line.in_sync else "pending")
        detail = f": {line.detail}" if line.detail else ""
        click.echo(
            f"{line.channel_id:<14} {line.storefront_sku:<20} {line.amazon_sku:<20} "
            f"{line.amazon_quantity:>7} {line.in_flight:>6} {line.target:>7} "
            f"{_num(line.storefront_quantity):>6} {_num(line.pushed_quantity):>6} "
            f"{_when(line.pushed_at):<19}  {status}{detail}"
        )


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


@inventory.command("sync")
@click.argument("channel_id")
@click.option("--now", "now_", is_flag=True, help="run the sync and its pushes in this process, now")
@click.option("--full", is_flag=True, help="read every mapped SKU, not only Amazon's changes")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="seconds to wait with --now")
def inventory_sync(channel_id: str, now_: bool, full: bool, timeout: float) -> None:
    """Queue an inventory sync of CHANNEL's Amazon account (with --now: run it here and wait)."""
    import time

    from .pipeline.inventory import JOB_INVENTORY_PUSH, JOB_INVENTORY_SYNC, enqueue_sync, stock_report
    from .store import write_session

    bridge = _ready_bridge()
    channel = bridge.config.channel(channel_id)
    if channel is None:
        raise click.ClickException(f"no channel {channel_id!r} in {bridge.config.source}")
    if not channel.inventory.sync:
        raise click.ClickException(
            f"inventory sync is off for channel {channel_id}; "
            "set `inventory: {sync: true}` in the channels file"
        )
    with write_session(bridge.engine) as session:
        queued = enqueue_sync(session, channel, full=full)
    click.echo(
        f"inventory sync of {channel.account_id}/{channel.marketplace_id} "
        + ("queued" if queued else "already queued or running")
    )
    if not now_:
        click.echo("a worker runs it; `fba-bridge inventory` shows the result")
        return
    from .runtime import HANDLERS, make_worker

    worker = make_worker(bridge)
    worker.handlers = {k: v for k, v in HANDLERS.items() if k in (JOB_INVENTORY_SYNC, JOB_INVENTORY_PUSH)}
    deadline = time.monotonic() + timeout
    ran = 0
    while time.monotonic() < deadline:
        step = worker.drain(limit=100)
        ran += step
        if step == 0:
            break
    _, lines = stock_report(bridge, channel_id, None, 100_000)
    pending = sum(1 for line in lines if not line.in_sync and line.status == "ok")
    problems = sum(1 for line in lines if line.status != "ok")
    click.echo(
        f"ran {ran} job(s): {len(lines)} SKU(s), {len(lines) - pending - problems} in sync, "
        f"{pending} pending, {problems} with a problem "
        f"(see `fba-bridge inventory {channel_id}` and `fba-bridge alerts`)"
    )


@main.group()
def privacy() -> None:
    """Storefront privacy requests (Shopify's customers/data_request)."""


@privacy.command("export")
@click.argument("channel_id")
@click.argument("request", type=int)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="file to write (JSON); created readable by its owner only",
)
def privacy_export(channel_id: str, request: int, out_path: str) -> None:
    """Write what the bridge stores about the orders a customer data request lists. REQUEST is
    the number the privacy alert names (`fba-bridge alerts`). The file holds personal data: send
    it to the merchant and delete it."""
    import json
    import os

    from .pipeline.privacy import ExportError, export_request

    engine, _ = _engine_and_clock()
    try:
        export = export_request(engine, channel_id, request)
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(export.to_json(), handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    click.echo(
        f"wrote {len(export.orders)} order(s) of data request {request} to {out_path}"
        + (f"; {len(export.not_found)} listed order(s) are not stored" if export.not_found else "")
    )


if __name__ == "__main__":
    main(prog_name="fba-bridge")

"""Operating inventory sync: the clock's schedule per channel, `fba-bridge inventory` and
`fba-bridge inventory sync CHANNEL --now` against the embedded simulator and a real generic shop
on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bridge.amazon.simulator import RunningServer, serve_in_thread
from bridge.bootstrap import Bridge
from bridge.channels import ChannelsConfig, InventoryConfig
from bridge.cli import main
from bridge.fakes.generic import FakeGenericReceiver, create_fake_generic_app
from bridge.pipeline.inventory import JOB_INVENTORY_SYNC
from bridge.scheduler import Clock
from bridge.settings import Settings
from bridge.store import JobRecord, read_session
from tests.conftest import EXAMPLE_CONFIG, ROOT, TEST_ENV


def test_the_clock_schedules_each_synced_channel_at_its_interval_sharing_one_job(
    db: Engine, channels_config: ChannelsConfig
) -> None:
    channels = dict(channels_config.channels)
    channels["shop-a"] = replace(
        channels["shop-a"],
        inventory=InventoryConfig(sync=True, interval_s=120.0, location="gid://shopify/Location/1"),
    )
    channels["woo-main"] = replace(
        channels["woo-main"], inventory=InventoryConfig(sync=True, interval_s=600.0)
    )
    bridge = Bridge(Settings(), replace(channels_config, channels=channels), db)
    clock = Clock(bridge)
    scheduled = {job.id: job for job in clock.scheduler.get_jobs()}
    assert "inventory:own-shop" not in scheduled  # sync is off there
    for name, seconds in (("inventory:shop-a", 120), ("inventory:woo-main", 600)):
        trigger = scheduled[name].trigger
        assert isinstance(trigger, IntervalTrigger) and trigger.interval.total_seconds() == seconds
    assert clock.lease.renew()
    scheduled["inventory:shop-a"].func()
    scheduled["inventory:woo-main"].func()  # same account and marketplace: already queued
    with read_session(db) as session:
        [job] = session.execute(select(JobRecord).where(JobRecord.kind == JOB_INVENTORY_SYNC)).scalars()
    assert job.dedupe_key == "inventory_sync:main:ATVPDKIKX0DER"
    assert job.payload["account_id"] == "main" and job.payload["marketplace_id"] == "ATVPDKIKX0DER"


@pytest.fixture
def shop() -> Iterator[tuple[FakeGenericReceiver, RunningServer]]:
    receiver = FakeGenericReceiver(TEST_ENV["OWN_SHOP_SECRET"])
    server = serve_in_thread(create_fake_generic_app(receiver))
    yield receiver, server
    server.stop()


@pytest.fixture
def cli_env(
    tmp_path: Path,
    database_url: str,
    db: Engine,
    shop: tuple[FakeGenericReceiver, RunningServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = EXAMPLE_CONFIG.read_text().replace(
        "    payment:\n      ship_on: [paid, authorized]",
        "    inventory: {sync: true, buffer: 1}\n    payment:\n      ship_on: [paid, authorized]",
    )
    assert "inventory: {sync: true" in text
    config = tmp_path / "channels.yaml"
    config.write_text(text)
    monkeypatch.chdir(ROOT)
    for key, value in {
        **TEST_ENV,
        "DATABASE_URL": database_url,
        "BRIDGE_CONFIG": str(config),
        "OWN_SHOP_CALLBACK_URL": shop[1].base_url + "/fba-bridge/events",
        "LOG_LEVEL": "WARNING",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.mark.usefixtures("cli_env")
def test_inventory_sync_now_runs_the_sync_and_the_pushes_in_process(
    shop: tuple[FakeGenericReceiver, RunningServer],
) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["inventory", "sync", "own-shop", "--now"])
    assert result.exit_code == 0, result.output
    assert "ran 2 job(s): 2 SKU(s), 2 in sync, 0 pending, 0 with a problem" in result.output
    assert shop[0].stock() == {"SKU-1": 299, "SKU-2": 99}  # the buffer holds one unit back

    shown = runner.invoke(main, ["inventory", "own-shop"])
    assert shown.exit_code == 0, shown.output
    assert "Amazon main/ATVPDKIKX0DER: changes read up to" in shown.output
    [row] = [line for line in shown.output.splitlines() if line.startswith("own-shop") and " SKU-1 " in line]
    assert row.split()[:8] == ["own-shop", "SKU-1", "FBA-SKU-1", "300", "0", "299", "299", "299"]
    assert row.endswith("in sync")
    one = runner.invoke(main, ["inventory", "--sku", "FBA-SKU-2"])
    assert [line.split()[1] for line in one.output.splitlines() if line.startswith("own-shop")] == ["SKU-2"]


@pytest.mark.usefixtures("cli_env")
def test_inventory_commands_explain_what_is_wrong() -> None:
    runner = CliRunner()
    off = runner.invoke(main, ["inventory", "sync", "shop-a"])
    assert off.exit_code != 0 and "inventory sync is off for channel shop-a" in off.output
    unknown = runner.invoke(main, ["inventory", "nope"])
    assert unknown.exit_code != 0 and "no channel 'nope'" in unknown.output
    queued = runner.invoke(main, ["inventory", "sync", "own-shop"])
    assert queued.exit_code == 0 and "queued" in queued.output and "a worker runs it" in queued.output
    empty = runner.invoke(main, ["inventory"])
    assert empty.exit_code == 0 and "no stock recorded yet" in empty.output
    assert "[CHANNEL]" in runner.invoke(main, ["inventory", "--help"]).output

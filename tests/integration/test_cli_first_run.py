"""First-run errors: every command on a database that is missing, empty, behind or ahead says so in
one line and names the fix; read-only commands never create a SQLite file; long-running processes
exit instead of failing forever; and the operator listing shows what the other commands take."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bridge.bootstrap import Bridge
from bridge.cli import main
from bridge.migrate import downgrade, head_revision, upgrade
from bridge.orders import OrderState
from bridge.runtime import make_worker
from bridge.scheduler import Clock
from bridge.store import make_engine
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV
from tests.support import shopify_delivery, shopify_order

DB_COMMANDS = [
    ["orders"],
    ["order", "shop-a", "1001"],
    ["order", "shop-a", "1001", "resubmit"],
    ["orders", "--attention", "--resubmit-all"],
    ["jobs"],
    ["jobs", "retry", "1"],
    ["alerts"],
    ["alerts", "ack", "1"],
    ["return", "shop-a", "1001", "--item", "1:1"],
    ["worker"],
    ["clock"],
    ["inventory"],
    ["inventory", "sync", "shop-a"],
    ["amazon", "recheck", "main"],
    ["amazon", "subscriptions", "main"],
    ["reconcile", "shop-a"],
]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BRIDGE_CONFIG", str(EXAMPLE_CONFIG))
    monkeypatch.setenv("BRIDGE_SIMULATOR_URL", "http://127.0.0.1:9")
    return CliRunner()


@pytest.fixture
def restores_schema(engine: Engine) -> Iterator[Engine]:
    """For tests that move the schema away from head: put it back (PostgreSQL's test database is
    shared by the whole session)."""
    yield engine
    head = head_revision(engine)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE alembic_version SET version_num = :head WHERE version_num = '9999'"), {"head": head}
        )
    upgrade(engine)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.mark.parametrize("args", DB_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_a_missing_sqlite_file_is_named_and_never_created(
    cli_env: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    path = tmp_path / "typo.sqlite3"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    line = one_line_error(cli_env.invoke(main, args))
    assert f"the database at sqlite:///{path} does not exist" in line
    assert 'db upgrade" first' in line
    assert not path.exists(), "a read-only command must not create an empty database"


@pytest.mark.parametrize("args", DB_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_an_unmigrated_database_says_to_run_db_upgrade(
    cli_env: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    path = tmp_path / "empty.sqlite3"
    make_engine(f"sqlite:///{path}").connect().close()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    line = one_line_error(cli_env.invoke(main, args))
    assert "is empty (not migrated)" in line and 'db upgrade"' in line


def test_a_database_behind_names_both_revisions(
    cli_env: CliRunner, database_url: str, restores_schema: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = restores_schema
    upgrade(engine)
    downgrade(engine, "0002")
    monkeypatch.setenv("DATABASE_URL", database_url)
    line = one_line_error(cli_env.invoke(main, ["orders"]))
    assert f"is not migrated (at revision 0002, needs {head_revision(engine)})" in line
    upgrade(engine)
    assert cli_env.invoke(main, ["orders"]).exit_code == 0


def test_a_database_from_a_newer_version_is_not_touched(
    cli_env: CliRunner, database_url: str, restores_schema: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    upgrade(restores_schema)
    with restores_schema.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    monkeypatch.setenv("DATABASE_URL", database_url)
    line = one_line_error(cli_env.invoke(main, ["jobs"]))
    assert "at revision 9999, which this version of fba-bridge does not know" in line
    upgrade_line = one_line_error(cli_env.invoke(main, ["db", "upgrade"]))
    assert "cannot migrate the database" in upgrade_line and "9999" in upgrade_line


def test_db_upgrade_into_a_folder_that_does_not_exist_says_which(
    cli_env: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/no/such/dir/bridge.sqlite3")
    line = one_line_error(cli_env.invoke(main, ["db", "upgrade"]))
    assert f"the folder {tmp_path}/no/such/dir does not exist" in line


def test_an_unreachable_postgresql_is_one_line_without_the_password(
    cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://bridge:hunter2-pw@127.0.0.1:9/nowhere")
    for args in (["orders"], ["db", "upgrade"]):
        line = one_line_error(cli_env.invoke(main, args))
        assert "cannot" in line and "127.0.0.1" in line and "hunter2" not in line


def test_postgresql_database_that_does_not_exist_is_one_line(
    cli_env: CliRunner, postgres_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if postgres_url is None:
        pytest.skip("needs BRIDGE_TEST_DATABASE_URL")
    missing = make_engine(postgres_url).url.set(database="bridge_no_such_db")
    monkeypatch.setenv("DATABASE_URL", missing.render_as_string(hide_password=False))
    line = one_line_error(cli_env.invoke(main, ["alerts"]))
    assert "cannot connect to the database" in line and "bridge_no_such_db" in line


def test_worker_refuses_to_run_its_own_embedded_simulator(
    cli_env: CliRunner, database_url: str, db, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("BRIDGE_SIMULATOR_URL")
    line = one_line_error(cli_env.invoke(main, ["worker"]))
    assert "account main uses embedded_simulator, but BRIDGE_SIMULATOR_URL is not set" in line
    assert 'fba-bridge run"' in line or 'run", or start' in line
    assert 'simulator" as its own process and set BRIDGE_SIMULATOR_URL' in line


def test_a_worker_whose_schema_disappears_exits_with_the_reason(
    bridge: Bridge, restores_schema: Engine
) -> None:
    worker = make_worker(bridge, amazon=object())
    downgrade(bridge.engine, "base")
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the worker must stop instead of retrying forever"
    assert "is empty (not migrated)" in worker.fatal and "db upgrade" in worker.fatal


def test_a_clock_whose_schema_disappears_exits_with_the_reason(
    bridge: Bridge, restores_schema: Engine
) -> None:
    clock = Clock(bridge)
    downgrade(bridge.engine, "base")
    thread = threading.Thread(target=clock.run_forever, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the clock must stop instead of retrying forever"
    assert "db upgrade" in clock.fatal


# --------------------------------------------------------------------------------------------
# `orders` and `order`


def _send(client: FlaskClient, order_id: int, name: str) -> None:
    body = shopify_order(order_id)
    body["name"] = name
    raw, headers = shopify_delivery(body)
    assert client.post("/webhooks/shop-a", data=raw, headers=headers).status_code == 200


def test_orders_has_a_header_the_id_order_takes_and_utc_times(
    client: FlaskClient, bridge: Bridge, cli_env: CliRunner, database_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    _send(client, 5001, "#5001")
    listing = cli_env.invoke(main, ["orders"])
    assert listing.exit_code == 0, listing.output
    header, row = listing.output.strip().splitlines()
    assert header.split()[:6] == ["CHANNEL", "ORDER", "NAME", "STATE", "AMAZON", "CREATED"]
    assert "UPDATED (UTC)" in header
    channel, order_id, name, state = row.split()[:4]
    assert (channel, order_id, name, state) == ("shop-a", "5001", "#5001", "received")
    assert f"{bridge.clock.now():%Y-%m-%d %H:%M}" in row
    for given in (order_id, name, "5001"):
        shown = cli_env.invoke(main, ["order", channel, given])
        assert shown.exit_code == 0 and "(shop-a/5001)" in shown.output, shown.output


def test_order_accepts_the_shops_order_name_only_when_unambiguous(
    client: FlaskClient, cli_env: CliRunner, database_url: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    _send(client, 7001, "#SAME")
    _send(client, 7002, "#SAME")
    _send(client, 7003, "#7777")
    assert "(shop-a/7003)" in cli_env.invoke(main, ["order", "shop-a", "#7777"]).output
    ambiguous = one_line_error(cli_env.invoke(main, ["order", "shop-a", "#SAME"]))
    assert "names several orders" in ambiguous and "7001, 7002" in ambiguous
    missing = one_line_error(cli_env.invoke(main, ["order", "shop-a", "nope"]))
    assert "no order 'nope' on channel 'shop-a'" in missing and "fba-bridge orders" in missing


def test_orders_refuses_an_unknown_state_and_lists_the_valid_ones(
    cli_env: CliRunner, database_url: str, db, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = cli_env.invoke(main, ["orders", "--state", "shiped"])
    assert result.exit_code == 2
    for state in OrderState:
        assert state.value in result.output
    empty = cli_env.invoke(main, ["orders", "--state", "shipped"])
    assert empty.exit_code == 0 and empty.output.strip() == "no orders in this state"

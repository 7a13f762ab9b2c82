"""What the benchmarks share: a throw-away migrated database, percentiles, ports, the error type.

The benchmarks run as scripts (`python bench/<name>.py`), which puts this folder on `sys.path`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class BenchError(RuntimeError):
    """The benchmark could not run (a process did not start, the database is unreachable...)."""


@dataclass(frozen=True)
class Database:
    url: str  # what the bridge's processes get as DATABASE_URL
    kind: str  # sqlite | postgresql
    name: str = ""  # the throw-away PostgreSQL database, if any


@contextlib.contextmanager
def prepared_database(requested: str | None, workdir: Path) -> Iterator[Database]:
    """A migrated database: a fresh SQLite file, or a fresh `bench_<random>` database dropped after."""
    from sqlalchemy import text

    from bridge.migrate import upgrade
    from bridge.settings import normalise_database_url
    from bridge.store import make_engine

    url = normalise_database_url(requested) if requested else f"sqlite:///{workdir / 'bench.sqlite3'}"
    if url.startswith("sqlite"):
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield Database(url, "sqlite")
        return
    admin = make_engine(url)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise BenchError(f"cannot create a database on {admin.url.render_as_string()}: {exc}") from exc
    bench_url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(bench_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield Database(bench_url, "postgresql", name)
    finally:
        try:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except Exception as exc:
            print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        admin.dispose()


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p=100 is the maximum); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shopify_line(
    line_id: int, sku: str, quantity: int, price: str, title: str, variant: str, index: int
) -> dict[str, Any]:
    """A Shopify order line as webhooks send it."""
    return {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "sku": sku,
        "quantity": quantity,
        "current_quantity": quantity,
        "fulfillable_quantity": quantity,
        "price": price,
        "requires_shipping": True,
        "name": f"{title} - {variant}",
        "title": title,
        "variant_title": variant,
        "variant_id": 40_000_000_000 + index,
        "product_id": 7_000_000_000 + index,
        "gift_card": False,
    }


def shopify_order(
    order_id: int, number: int, lines: list[dict[str, Any]], total: str, now: str
) -> dict[str, Any]:
    """A paid Shopify order (REST shape, what `orders/create` sends) with a fake bench buyer."""
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": f"#{number}",
        "order_number": number,
        "email": f"buyer{number}@example.com",
        "created_at": now,
        "updated_at": now,
        "cancelled_at": None,
        "currency": "USD",
        "financial_status": "paid",
        "fulfillment_status": None,
        "test": False,
        "total_price": total,
        "line_items": lines,
        "shipping_address": {
            "first_name": "Bench",
            "last_name": f"Buyer {number}",
            "name": f"Bench Buyer {number}",
            "address1": f"{100 + number % 900} Market St",
            "address2": None,
            "city": "San Francisco",
            "province": "California",
            "province_code": "CA",
            "country": "United States",
            "country_code": "US",
            "zip": "94103",
            "phone": "+14155550100",
            "company": None,
        },
        "shipping_lines": [{"title": "Standard Shipping", "code": "STANDARD", "price": "4.99"}],
    }


@dataclass(frozen=True)
class SignedDelivery:
    body: bytes
    webhook_id: str
    event_id: str
    headers: dict[str, str]


def signed_shopify_delivery(
    secret: bytes, order: dict[str, Any], rng: random.Random, shop_domain: str, now: str
) -> SignedDelivery:
    """The body and headers Shopify sends for `orders/create`, ids drawn from `rng` (reproducible)."""
    body = json.dumps(order, separators=(",", ":")).encode()
    webhook_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode(),
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Shop-Domain": shop_domain,
        "X-Shopify-API-Version": "2026-07",
        "X-Shopify-Triggered-At": now,
    }
    return SignedDelivery(body, webhook_id, event_id, headers)


def console_script(name: str, module: str) -> list[str]:
    """The venv's console script `name`, or `python -m module` when it is not installed."""
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def proc_ticks(pid: int | None) -> int | None:
    """utime + stime of a process (all threads), in clock ticks; None without /proc."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])


class Process:
    """A child in its own session (so it can be killed with all its children), logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        text = self.log_text().splitlines()
        return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM (the bridge finishes its current job), then SIGKILL to the whole process group."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only this child and its children
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self.proc = None


def emit(line: dict[str, Any], json_out: Path | None) -> None:
    """Print the bench's one JSON line (its last output) and append it to `json_out` if given,
    so runs can be collected."""
    text = json.dumps(line, separators=(", ", ": "))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        with json_out.open("a", encoding="utf-8") as out:
            out.write(text + "\n")
    print(text, flush=True)

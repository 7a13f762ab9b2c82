"""One SP-API client per configured Amazon account: the pipeline's only way to reach Amazon.

An account marked `embedded_simulator` talks to the bundled simulator instead: in-process
through httpx's WSGI transport, or, when `BRIDGE_SIMULATOR_URL` names a simulator that another
process serves on loopback (what `fba-bridge run` does), over HTTP so every process shares it.
A worker started on its own never builds its own simulator (`require_shared_simulator`).
"""

from __future__ import annotations

from dataclasses import replace

import httpx

from ..bootstrap import Bridge
from ..channels import AmazonAccount, Channel
from ..clock import Clock, ScaledClock, SystemClock
from ..command import command
from .breaker_alerts import AlertingBreakerListener
from .feature_eligibility import FeatureEligibility
from .inventory import FbaInventory
from .limiter import Buckets, DatabaseBuckets
from .notifications_api import NotificationsApi, notifications_client
from .outbound import FulfillmentOutbound, outbound_client
from .simulator import Simulator, create_simulator_app, load_config
from .spapi import SpApiClient, http_client
from .tokens import DatabaseTokenStore

IN_PROCESS_SIMULATOR = "http://simulator.local"


class AmazonAccounts:
    def __init__(
        self,
        clients: dict[str, FulfillmentOutbound],
        simulator: Simulator | None = None,
        *,
        clock: Clock | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._clients = clients
        self._http = http
        self.simulator = simulator
        #: MCF feature eligibility, read rarely and shared by every job of this process.
        self.eligibility = FeatureEligibility(clock or SystemClock())

    def for_channel(self, channel: Channel) -> FulfillmentOutbound:
        return self._clients[channel.account_id]

    def for_account(self, account_id: str) -> FulfillmentOutbound:
        return self._clients[account_id]

    def inventory(self, account_id: str) -> FbaInventory:
        """FBA Inventory for an account, on the same SP-API client (token, breaker, connections)."""
        client = getattr(self._clients[account_id], "client", None)
        if not isinstance(client, SpApiClient):
            raise TypeError(f"the Amazon client of account {account_id!r} exposes no SP-API client")
        return FbaInventory(client)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        if self._http is not None:
            self._http.close()


class SimulatorLayoutError(RuntimeError):
    """The deployment would run more than one simulator; the message says how to run one."""


def require_shared_simulator(bridge: Bridge) -> None:
    """A long-running worker with an `embedded_simulator` account needs `BRIDGE_SIMULATOR_URL`.

    Without it the worker would keep its own in-process simulator: a second worker (or a restart)
    would see none of its orders (404s), and both would hand out the same package ids and
    tracking numbers. `fba-bridge run` serves one simulator and gives every process its URL."""
    embedded = sorted(a.id for a in bridge.config.accounts.values() if a.embedded_simulator)
    if not embedded or bridge.settings.simulator_url:
        return
    cli = command()
    raise SimulatorLayoutError(
        f"Amazon account {', '.join(embedded)} uses embedded_simulator, but BRIDGE_SIMULATOR_URL is not "
        "set: this worker would keep a simulator of its own that no other process sees. Run everything "
        f'on one machine with "{cli} run", or start "{cli} simulator" as its own process and set '
        "BRIDGE_SIMULATOR_URL to its URL for every process (or configure a real Amazon account)"
    )


def simulator_for(bridge: Bridge) -> Simulator:
    """The simulator an in-process embedded account uses, configured from the settings."""
    settings = bridge.settings
    config = load_config(settings.simulator_config) if settings.simulator_config else None
    return Simulator(config, clock=ScaledClock(settings.simulator_speed))


def _simulated(account: AmazonAccount, base_url: str) -> AmazonAccount:
    return replace(
        account, endpoint=base_url, token_endpoint=f"{base_url}/auth/o2/token", local_simulator=True
    )


def route(
    bridge: Bridge, account: AmazonAccount, simulator: Simulator | None = None
) -> tuple[AmazonAccount, httpx.BaseTransport | None, Simulator | None]:
    """Where an account's SP-API calls go: (the account with its endpoints, the transport, the
    in-process simulator serving it, if any). Real accounts are returned unchanged."""
    if not account.embedded_simulator:
        return account, None, simulator
    if bridge.settings.simulator_url and simulator is None:
        return _simulated(account, bridge.settings.simulator_url.rstrip("/")), None, None
    simulator = simulator or simulator_for(bridge)
    transport = httpx.WSGITransport(app=create_simulator_app(simulator))
    return _simulated(account, IN_PROCESS_SIMULATOR), transport, simulator


def build_amazon(
    bridge: Bridge, *, simulator: Simulator | None = None, buckets: Buckets | None = None
) -> AmazonAccounts:
    """Clients for every configured account. Rate budgets default to the database (shared by all
    processes, timed by the database clock); so do LWA access tokens and the parked state of an
    account; open circuit breakers become operator alerts. Accounts reached over the network share
    one HTTP client: 100 sellers are not 100 connection pools whose connections expire unused."""
    buckets = buckets or DatabaseBuckets(bridge.engine, bridge.clock)
    tokens = DatabaseTokenStore(bridge.engine, bridge.clock)
    listener = AlertingBreakerListener(bridge.engine, bridge.clock)
    shared = http_client()
    clients: dict[str, FulfillmentOutbound] = {}
    for configured in bridge.config.accounts.values():
        account, transport, simulator = route(bridge, configured, simulator)
        clients[account.id] = outbound_client(
            account,
            bridge.clock,
            buckets,
            transport,
            http=shared if transport is None else None,
            tokens=tokens,
            breaker_listener=listener,
        )
    return AmazonAccounts(clients, simulator, clock=bridge.clock, http=shared)


def build_notifications_api(
    bridge: Bridge, account_id: str, *, simulator: Simulator | None = None, buckets: Buckets | None = None
) -> NotificationsApi:
    """The Notifications API client of one configured account (`KeyError` if there is none)."""
    account, transport, _ = route(bridge, bridge.config.accounts[account_id], simulator)
    buckets = buckets or DatabaseBuckets(bridge.engine, bridge.clock)
    return notifications_client(account, bridge.clock, buckets, transport)

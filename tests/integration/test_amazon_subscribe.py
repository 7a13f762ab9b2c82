"""`fba-bridge amazon subscribe` against the simulator over real HTTP, checked against Amazon's
Notifications API model (the derived fixture in tests/contracts/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from jsonschema import Draft4Validator

from bridge.amazon.errors import AccessDenied
from bridge.amazon.limiter import MemoryBuckets
from bridge.amazon.notifications_api import NotificationsApi, notifications_client
from bridge.amazon.simulator import RunningServer, Simulator, serve_in_thread
from bridge.amazon.simulator.app import create_simulator_app
from bridge.amazon.subscriptions import SubscriptionError, subscribe
from bridge.channels import AmazonAccount, ChannelsConfig
from bridge.cli import main
from bridge.clock import ManualClock
from tests.conftest import EXAMPLE_CONFIG, TEST_ENV

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "notifications_v1.json"
ARN = "arn:aws:sqs:us-east-1:123456789012:fba-bridge-notifications"
OTHER_ARN = "arn:aws:sqs:us-east-1:123456789012:somewhere-else"


class Recorder(httpx.BaseTransport):
    """Passes requests to a real transport and keeps (operation path, method, body, status, answer)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[tuple[str, str, Any, int, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        if request.url.path.startswith("/notifications/"):
            body = json.loads(request.content) if request.content else None
            answer = json.loads(response.content) if response.content else None
            self.seen.append((request.url.path, request.method, body, response.status_code, answer))
        return response


@pytest.fixture
def live(simulator: Simulator) -> Iterator[RunningServer]:
    server = serve_in_thread(create_simulator_app(simulator))
    yield server
    server.stop()


def account_at(server: RunningServer, channels_config: ChannelsConfig) -> AmazonAccount:
    return replace(
        channels_config.accounts["main"],
        endpoint=server.base_url,
        token_endpoint=f"{server.base_url}/auth/o2/token",
        local_simulator=True,
    )


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def api(
    live: RunningServer, channels_config: ChannelsConfig, clock: ManualClock, recorder: Recorder
) -> Iterator[NotificationsApi]:
    client = notifications_client(account_at(live, channels_config), clock, MemoryBuckets(clock), recorder)
    yield client
    client.close()


def test_subscribing_twice_makes_one_destination_and_one_subscription(
    api: NotificationsApi, simulator: Simulator
) -> None:
    first = subscribe(api, ARN)
    second = subscribe(api, ARN)
    assert (first.destination_created, first.subscription_created) == (True, True)
    assert (second.destination_created, second.subscription_created) == (False, False)
    assert second.subscription == first.subscription
    assert first.subscription.destination_id == first.destination.destination_id
    assert first.subscription.payload_version == "1.0"
    assert simulator.ledger.calls("createDestination") == 1
    assert simulator.ledger.calls("createSubscription") == 1
    assert [s.sqs_arn for s in simulator.notifications.subscribers("FULFILLMENT_ORDER_STATUS")] == [ARN]


def test_destinations_use_a_grantless_token_and_subscriptions_the_sellers(
    api: NotificationsApi, simulator: Simulator
) -> None:
    subscribe(api, ARN)
    assert simulator.ledger.calls("lwaToken") == 2  # one grantless token, one seller token
    with pytest.raises(AccessDenied):
        api.seller.call(api.ops.GET_DESTINATIONS)  # a seller's token on a grantless operation
    with pytest.raises(AccessDenied):
        api.grantless.call(
            api.ops.GET_SUBSCRIPTION, path_params={"notificationType": "FULFILLMENT_ORDER_STATUS"}
        )


def test_a_create_whose_answer_was_lost_is_read_back_not_duplicated(
    api: NotificationsApi, simulator: Simulator
) -> None:
    simulator.inject_fault("createDestination", kind="accept_then_drop")
    simulator.inject_fault("createSubscription", kind="accept_then_drop")
    result = subscribe(api, ARN)
    assert simulator.ledger.calls("createDestination") == 2  # the retry met 409 Conflict
    assert simulator.ledger.calls("createSubscription") == 2
    assert len(simulator.notifications.get_destinations()["payload"]) == 1
    assert result.subscription.destination_id == result.destination.destination_id


def test_a_subscription_to_another_queue_is_only_moved_when_asked(
    api: NotificationsApi, simulator: Simulator
) -> None:
    old = subscribe(api, OTHER_ARN)
    with pytest.raises(SubscriptionError) as refused:
        subscribe(api, ARN)
    assert refused.value.code == "subscribed_elsewhere" and "--replace" in refused.value.message
    moved = subscribe(api, ARN, replace=True)
    assert moved.replaced_subscription_id == old.subscription.subscription_id
    assert [s.sqs_arn for s in simulator.notifications.subscribers("FULFILLMENT_ORDER_STATUS")] == [ARN]


def test_requests_and_answers_match_amazons_model(api: NotificationsApi, recorder: Recorder) -> None:
    subscribe(api, OTHER_ARN)
    subscribe(api, ARN, replace=True)
    contract = json.loads(CONTRACT.read_text())
    definitions = contract["definitions"]
    checked = set()
    for path, method, body, status, answer in recorder.seen:
        operation = _operation(contract, path, method)
        checked.add(operation["operationId"])
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "body":
                _valid({**parameter["schema"], "definitions": definitions}, body)
        schema = operation["responses"][str(status)]["schema"]
        _valid({**schema, "definitions": definitions}, answer if answer is not None else {})
    assert checked == set(contract["x-fba-bridge-contract"]["operations"])


def _operation(contract: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    for template, operations in contract["paths"].items():
        parts, actual = template.strip("/").split("/"), path.strip("/").split("/")
        if len(parts) == len(actual) and all(
            p.startswith("{") or p == a for p, a in zip(parts, actual, strict=True)
        ):
            if method.lower() in operations:
                return dict(operations[method.lower()])
    raise AssertionError(f"{method} {path} is not an operation of the contract")


def _valid(schema: dict[str, Any], document: Any) -> None:
    errors = [e.message for e in Draft4Validator(schema).iter_errors(document)]
    assert not errors, errors


def test_the_cli_subscribes_and_shows_the_subscription(
    live: RunningServer, database_url: str, db: Any, simulator: Simulator
) -> None:
    env = {
        **TEST_ENV,
        "DATABASE_URL": database_url,
        "BRIDGE_CONFIG": str(EXAMPLE_CONFIG),
        "BRIDGE_SIMULATOR_URL": live.base_url,
        "LOG_LEVEL": "WARNING",
    }
    runner = CliRunner()
    first = runner.invoke(main, ["amazon", "subscribe", "main", "--sqs-arn", ARN], env=env)
    assert first.exit_code == 0, first.output
    assert "(created)" in first.output and ARN in first.output
    again = runner.invoke(main, ["amazon", "subscribe", "main", "--sqs-arn", ARN], env=env)
    assert again.exit_code == 0 and "(created)" not in again.output and again.output.count("(exists)") == 2
    shown = runner.invoke(main, ["amazon", "subscriptions", "main"], env=env)
    assert shown.exit_code == 0 and "FULFILLMENT_ORDER_STATUS -> " in shown.output and ARN in shown.output
    bad = runner.invoke(main, ["amazon", "subscribe", "main", "--sqs-arn", "my-queue"], env=env)
    assert bad.exit_code == 1 and "arn:aws:sqs:" in bad.output
    unknown = runner.invoke(main, ["amazon", "subscribe", "nope", "--sqs-arn", ARN], env=env)
    assert unknown.exit_code == 1 and "accounts: main" in unknown.output

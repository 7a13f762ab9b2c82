"""A local SQS for tests: moto's server on loopback (a real HTTP endpoint boto3 talks to).

`local_sqs` starts one server per test session; `sqs_queue` creates a fresh queue per test.
boto3 finds the fake credentials in the environment, the way production finds real ones.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts anything
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass
class LocalSqs:
    endpoint_url: str

    def client(self) -> Any:
        return boto3.client("sqs", region_name=REGION, endpoint_url=self.endpoint_url)


@dataclass
class Queue:
    sqs: LocalSqs
    url: str
    arn: str

    def send(self, body: str | dict[str, Any]) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return str(self.sqs.client().send_message(QueueUrl=self.url, MessageBody=text)["MessageId"])

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) messages."""
        attrs = self.sqs.client().get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def receive(self, wait_s: int = 1) -> list[dict[str, Any]]:
        answer = self.sqs.client().receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return list(answer.get("Messages") or [])


@pytest.fixture(scope="session")
def local_sqs() -> Iterator[LocalSqs]:
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        for key, value in FAKE_AWS_ENV.items():
            patch.setenv(key, value)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield LocalSqs(f"http://{host}:{port}")
        finally:
            server.stop()


@pytest.fixture
def sqs_queue(local_sqs: LocalSqs) -> Queue:
    client = local_sqs.client()
    url = client.create_queue(QueueName=f"fba-bridge-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(local_sqs, url, arn)

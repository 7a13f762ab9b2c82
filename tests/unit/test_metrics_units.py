"""Metrics building blocks: label values, the in-memory buffer, settings and the bearer check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.metrics import catalog, code_label, status_label
from bridge.metrics.events import EventBuffer, Pending
from bridge.settings import Secret, Settings, SettingsError
from bridge.web.auth import bearer_matches

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("status", "label"),
    [
        (200, "200"),
        (429, "429"),
        (503, "503"),
        (418, "4xx"),
        (599, "5xx"),
        (None, "error"),
        ("x", "error"),
        (True, "error"),
        (1000, "error"),
    ],
)
def test_status_labels_stay_a_bounded_set(status: object, label: str) -> None:
    assert status_label(status) == label


def test_codes_that_do_not_look_like_codes_become_other() -> None:
    assert code_label("invalid_signature") == "invalid_signature"
    assert code_label("getFulfillmentOrder") == "getFulfillmentOrder"
    assert code_label("Jon Canary <jon@example.com>") == "other"
    assert code_label("x" * 65) == "other"
    assert code_label(None) == "other"


def test_an_observation_lands_in_its_first_bucket_and_the_sum() -> None:
    buffer = EventBuffer()
    for value in (0.004, 0.005, 0.3, 99.0):
        buffer.observe("h", {"channel": "a"}, value, (0.005, 0.5))
    pending = buffer.take()
    assert pending.sums == {
        ("h_bucket", (("channel", "a"), ("le", "0.005"))): 2,
        ("h_bucket", (("channel", "a"), ("le", "0.5"))): 1,
        ("h_bucket", (("channel", "a"), ("le", "+Inf"))): 1,
        ("h_sum", (("channel", "a"),)): pytest.approx(99.309),
    }
    assert not buffer.take()


def test_counts_put_back_after_a_failed_write_merge_with_newer_ones() -> None:
    buffer = EventBuffer()
    buffer.add("c", {"k": "v"})
    buffer.set_max("m", {}, 5.0)
    failed = buffer.take()
    buffer.add("c", {"k": "v"}, 2)
    buffer.set_max("m", {}, 3.0)
    buffer.put_back(failed)
    pending = buffer.take()
    assert pending.sums == {("c", (("k", "v"),)): 3} and pending.maxes == {("m", ()): 5.0}
    assert not Pending()


def test_metric_settings() -> None:
    defaults = Settings.from_env({})
    assert not defaults.metrics_token and defaults.metrics_flush_s == 5 and defaults.metrics_cache_s == 5
    custom = Settings.from_env(
        {"BRIDGE_METRICS_TOKEN": " s3cret ", "BRIDGE_METRICS_FLUSH_S": "0", "BRIDGE_METRICS_CACHE_S": "15"}
    )
    assert custom.metrics_token == Secret("s3cret") and "s3cret" not in repr(custom)
    assert (custom.metrics_flush_s, custom.metrics_cache_s) == (0, 15)
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(SettingsError, match="BRIDGE_METRICS_FLUSH_S"):
            Settings.from_env({"BRIDGE_METRICS_FLUSH_S": bad})


def test_bearer_check() -> None:
    token = Secret("abc123")
    assert bearer_matches("Bearer abc123", token)
    assert bearer_matches("bearer  abc123 ", token)
    for header in (None, "", "Bearer", "Bearer abc1234", "Basic abc123", "abc123", "Bearer ABC123"):
        assert not bearer_matches(header, token), header
    assert not bearer_matches("Bearer ", Secret(""))


def test_the_readme_documents_every_metric_with_its_labels() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Metrics and logs", 1)[1].split("\n## ", 1)[0]
    row = re.compile(r"^\| `(bridge_\w+)` \| [a-z]+ \| ([^|]*)\|", re.M)
    rows = {m.group(1): m.group(2) for m in row.finditer(section)}
    for family in catalog.FAMILIES:
        assert family.name in rows, family.name
        assert [label.strip(" `") for label in rows[family.name].split(",") if label.strip()] == list(
            family.labels
        ), family.name

"""Log formats and log context (`bridge/logs.py`, `configure_logging`)."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from bridge import logs
from bridge.bootstrap import configure_logging
from bridge.settings import Settings, SettingsError
from tests.conftest import JSON_LOG_KEYS


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """`configure_logging` writing JSON into a buffer; the root logger restored afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("DEBUG", "json", stream)
    yield stream
    logs.remove_handler()
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_stable_keys_and_the_context(configured: io.StringIO) -> None:
    log = logging.getLogger("bridge.test")
    log.info("outside")
    with logs.log_context(job_id=7, order_id=42, channel="shop-a"):
        log.warning("inside %s", "a job")
        with logs.log_context(request_id="req-12345678"):
            log.info("nested")
    log.info("after")

    outside, inside, nested, after = lines(configured)
    for record in (outside, inside, nested, after):
        assert JSON_LOG_KEYS <= record.keys()
        assert str(record["time"]).endswith("+00:00")
    assert (outside["channel"], outside["job_id"], outside["request_id"]) == (None, None, None)
    assert inside["message"] == "inside a job" and inside["level"] == "WARNING"
    assert (inside["logger"], inside["job_id"], inside["order_id"], inside["channel"]) == (
        "bridge.test",
        7,
        42,
        "shop-a",
    )
    assert nested["request_id"] == "req-12345678" and nested["job_id"] == 7
    assert after["job_id"] is None and after["request_id"] is None


def test_a_multi_line_message_stays_one_json_line(configured: io.StringIO) -> None:
    logging.getLogger("bridge.test").error("first\nsecond\n  third")
    [line] = configured.getvalue().splitlines()
    assert json.loads(line)["message"] == "first\nsecond\n  third"


def test_exceptions_are_logged_by_type_and_frames_never_by_message(configured: io.StringIO) -> None:
    def explode() -> None:
        try:
            raise KeyError("jon.canary@example.com")
        except KeyError as exc:
            raise ValueError("42 Canary Wharf Lane") from exc

    try:
        explode()
    except ValueError:
        logging.getLogger("bridge.test").exception("it failed")
    text = configured.getvalue()
    assert "canary" not in text.lower()
    [record] = lines(configured)
    assert record["exc_type"] == "ValueError"
    frames = record["exc_frames"]
    assert isinstance(frames, list) and any("in explode" in frame for frame in frames)
    assert all(frame.startswith("tests/unit/test_logs.py:") for frame in frames)


def test_the_text_format_shows_context_and_withholds_exception_messages() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter_for("text"))
    handler.addFilter(logs.ContextFilter())
    # A handler that formats first with logging's default caches the full exception text on the
    # record; ours must not reuse it.
    first = logging.StreamHandler(io.StringIO())
    log = logging.getLogger("bridge.test.text")
    log.propagate = False
    log.addHandler(first)
    log.addHandler(handler)
    try:
        with logs.log_context(job_id=3, channel="woo-main"):
            try:
                raise RuntimeError("zq.canary@example.org")
            except RuntimeError:
                log.exception("job failed")
    finally:
        log.removeHandler(first)
        log.removeHandler(handler)
        log.propagate = True
    text = stream.getvalue()
    assert "job failed [channel=woo-main job_id=3]" in text
    assert "RuntimeError (message not logged)" in text and "canary" not in text
    assert "test_logs.py" in text


def test_a_callers_request_id_is_another_systems_and_moves_aside(configured: io.StringIO) -> None:
    with logs.log_context(request_id="ours-1234567"):
        logging.getLogger("bridge.amazon").info(
            "spapi call", extra={"request_id": "amzn-1", "operation": "getFeatures", "status": 200}
        )
    [record] = lines(configured)
    assert record["request_id"] == "ours-1234567" and record["upstream_request_id"] == "amzn-1"
    assert (record["operation"], record["status"]) == ("getFeatures", 200)


def test_other_extras_are_left_out_of_json(configured: io.StringIO) -> None:
    logging.getLogger("bridge.test").info("x", extra={"email": "jon.canary@example.com"})
    assert "canary" not in configured.getvalue()


def test_context_does_not_leak_between_threads(configured: io.StringIO) -> None:
    log = logging.getLogger("bridge.test")
    with logs.log_context(job_id=1):
        thread = threading.Thread(target=lambda: log.info("other thread"))
        thread.start()
        thread.join()
    [record] = lines(configured)
    assert record["job_id"] is None


def test_configuring_twice_keeps_one_handler(configured: io.StringIO) -> None:
    configure_logging("INFO", "json", configured)
    root = logging.getLogger()
    assert [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME].__len__() == 1


def test_log_format_setting() -> None:
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})

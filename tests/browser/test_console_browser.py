"""The console in a real browser: Debian's headless Chromium, driven by Selenium through the
system chromedriver (Selenium Manager never downloads anything here), against `fba-bridge demo`
kept running as `demo --serve` keeps it.

Skipped, with the reason, when chromium or chromedriver is not installed; `.ci/run` installs
both. The screenshots in docs/screenshots/ (shown in the README) are written by these tests.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from bridge.demo import DemoEnvironment, run_demo
from bridge.store import JobRecord, OrderRecord, db_now, read_session, write_session
from tests.conftest import ROOT

CHROMIUM = os.environ.get("BRIDGE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BRIDGE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = ROOT / "docs" / "screenshots"
WAIT_S = 60.0

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip(
        f"headless Chromium needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoEnvironment]:
    """`fba-bridge demo` with its story told, then held running until the module's tests end."""
    ready: list[DemoEnvironment] = []
    started, release = threading.Event(), threading.Event()
    outcome: list[int] = []
    lines: list[str] = []

    def hold(env: DemoEnvironment) -> None:
        ready.append(env)
        started.set()
        release.wait(600)

    def run() -> None:
        try:
            outcome.append(run_demo(lines.append, 90, tmp_path_factory.mktemp("demo"), then=hold))
        finally:
            started.set()

    cwd = Path.cwd()
    os.chdir(ROOT)  # the demo reads config/ as `fba-bridge demo` does in a checkout
    thread = threading.Thread(target=run, name="demo", daemon=True)
    thread.start()
    try:
        started.wait(240)
        assert ready, "the demo did not come up:\n" + "\n".join(lines)
        yield ready[0]
    finally:
        release.set()
        thread.join(60)
        os.chdir(cwd)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager: never fetch a browser or a driver
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    try:
        yield driver
    finally:
        driver.quit()


def page_was_being_replaced(exc: WebDriverException) -> bool:
    """An element found on the old page and read after a form post navigated away. Chromium says
    so either as a stale reference or, when the swap lands between its own find and read, as an
    "unknown error" about a node that no longer belongs to the document."""
    if isinstance(exc, (StaleElementReferenceException, NoSuchElementException)):
        return True
    return "does not belong to the document" in str(exc.msg or "")


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll `check`; an element that vanished because the page was being replaced (a form post
    navigating) is not an answer yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except WebDriverException as exc:
            if not page_was_being_replaced(exc):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def text_of(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def sign_in(driver: WebDriver, demo: DemoEnvironment) -> None:
    driver.get(demo.console_url + "orders")
    if "Sign in" not in driver.title:
        return
    driver.find_element(By.NAME, "name").send_keys("Browser Test")
    driver.find_element(By.NAME, "password").send_keys(demo.console_password)
    driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait_for(lambda: driver.title.startswith("Orders"), "the orders page after signing in")


def order_id(demo: DemoEnvironment, channel_id: str, external_id: str) -> int:
    with read_session(demo.bridge.engine) as session:
        row = session.execute(
            select(OrderRecord).where(
                col(OrderRecord.channel_id) == channel_id, col(OrderRecord.external_id) == external_id
            )
        ).scalar_one()
        assert row.id is not None
        return row.id


def test_without_signing_in_the_browser_only_reaches_the_sign_in_page(
    browser: WebDriver, demo: DemoEnvironment
) -> None:
    browser.delete_all_cookies()
    browser.get(demo.console_url + "orders")
    assert browser.title.startswith("Sign in")
    browser.get(demo.console_url + "jobs")
    assert browser.title.startswith("Sign in") and "Dead letters" not in text_of(browser)
    with httpx.Client(base_url=demo.web_url) as http:
        assert http.post(f"/console/orders/{order_id(demo, 'shop-a', '1001')}/cancel").status_code == 401
        assert http.get("/console/health").status_code == 302


def test_signing_in_and_finding_a_demo_order(browser: WebDriver, demo: DemoEnvironment) -> None:
    sign_in(browser, demo)
    assert "#1001" in text_of(browser) and "702" in text_of(browser)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "console-orders.png"))
    browser.set_window_size(390, 844)  # a phone: the table becomes labelled cards
    assert browser.find_element(By.CSS_SELECTOR, "table.list thead").is_displayed() is False
    browser.save_screenshot(str(SCREENSHOTS / "console-orders-phone.png"))
    browser.set_window_size(1280, 1000)
    search = browser.find_element(By.NAME, "q")
    search.clear()
    search.send_keys("1001")
    search.submit()
    wait_for(lambda: "q=1001" in browser.current_url, "the search")
    assert "#1003" not in text_of(browser)
    browser.find_element(By.LINK_TEXT, "#1001").click()
    wait_for(lambda: browser.title.startswith("Order #1001"), "order #1001")
    page = text_of(browser)
    assert "shipped" in page and "Audit trail" in page and "Demo Buyer" not in page
    # console.js turned the UTC times into the viewer's zone; the UTC value stays on hover
    first = browser.find_element(By.CSS_SELECTOR, "time[datetime]")
    assert str(first.get_attribute("title")).endswith("UTC") and "(UTC" in first.text
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    browser.set_window_size(1280, min(max(height, 1000), 2400))  # the whole order in one picture
    browser.save_screenshot(str(SCREENSHOTS / "console-order.png"))
    browser.set_window_size(1280, 1000)


def test_re_submitting_a_parked_order_sends_it_to_amazon(browser: WebDriver, demo: DemoEnvironment) -> None:
    sign_in(browser, demo)
    demo.simulator.set_inventory("FBA-POSTER-A2", 25)  # the poster is back in stock at Amazon
    browser.get(demo.console_url + "orders?attention=1")
    browser.find_element(By.LINK_TEXT, "702").click()
    wait_for(lambda: "needs attention" in text_of(browser), "the parked order's page")
    browser.find_element(By.ID, "action-resubmit").click()
    wait_for(lambda: "queued for submission" in text_of(browser), "the re-submit confirmation")

    def at_amazon() -> bool:
        browser.refresh()
        return "Amazon order id\nwoo-main-702" in text_of(browser) or "created at Amazon" in text_of(browser)

    wait_for(at_amazon, "order 702 to reach Amazon")
    assert "re-submitted by console:Browser Test" in text_of(browser)


def test_csrf_less_and_forged_posts_are_refused(browser: WebDriver, demo: DemoEnvironment) -> None:
    sign_in(browser, demo)
    cookie = browser.get_cookie("fba_console")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    target = f"/console/orders/{order_id(demo, 'shop-a', '1001')}/cancel"
    with httpx.Client(base_url=demo.web_url, cookies={"fba_console": cookie["value"]}) as http:
        assert http.get("/console/orders").status_code == 200  # the session itself is good
        assert http.post(target).status_code == 403
        assert http.post(target, data={"csrf": "forged"}).status_code == 403


def test_retrying_a_dead_job(browser: WebDriver, demo: DemoEnvironment) -> None:
    sign_in(browser, demo)
    engine = demo.bridge.engine
    with write_session(engine) as session:  # a sync job that used up its attempts, as the queue leaves one
        now = db_now(session)
        job = JobRecord(
            kind="sync_order",
            order_id=order_id(demo, "shop-a", "1001"),
            payload={},
            status="dead",
            run_at=now,
            attempts=8,
            max_attempts=8,
            last_error="Amazon answered 503 eight times",
            created_at=now,
            updated_at=now,
        )
        session.add(job)
        session.flush()
        job_id = job.id
    browser.get(demo.console_url + "jobs")
    assert "Amazon answered 503 eight times" in text_of(browser)
    browser.find_element(By.ID, f"retry-{job_id}").click()
    wait_for(lambda: f"job {job_id} queued again" in text_of(browser), "the retry confirmation")

    def finished() -> bool:
        with read_session(engine) as session:
            row = session.get(JobRecord, job_id)
            return row is None or row.status == "done"

    wait_for(finished, "the retried job to run")
    browser.refresh()
    assert f"retry-{job_id}" not in browser.page_source


def test_the_screenshots_are_in_the_docs_folder() -> None:
    for name in ("console-orders.png", "console-order.png"):
        path = SCREENSHOTS / name
        assert path.is_file() and path.stat().st_size > 10_000, f"{path} was not written"

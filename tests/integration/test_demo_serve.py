"""`fba-bridge demo --serve`: the demo keeps running with the console open, on the printed URL,
for the printed one-time password, until Ctrl-C."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import httpx

from tests.conftest import ROOT
from tests.console_support import form_value


def test_demo_serve_prints_a_console_url_and_password_that_sign_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "DATABASE_URL"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "demo", "--serve", "--timeout", "90"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    seen: list[str] = []
    url = password = None
    deadline = time.monotonic() + 100  # the demo tells its story in ~15 s
    try:
        while password is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            if m := re.search(r"console is open at (\S+)", line):
                url = m.group(1)
            if m := re.search(r"one-time password (\S+)", line):
                password = m.group(1)
        assert url and password, "".join(seen)
        chatter = [line for line in seen if " INFO " in line]
        assert not chatter, f"the demo's story is buried in routine log lines: {chatter[:3]}"
        with httpx.Client(base_url=url.removesuffix("/console/"), timeout=10) as http:
            assert http.get("/console/orders").status_code == 302
            token = form_value(http.get("/console/login").text, "token")
            assert http.post("/console/login", data={"token": token, "password": "guess"}).status_code == 401
            token = form_value(http.get("/console/login").text, "token")
            signed_in = http.post(
                "/console/login", data={"token": token, "password": password, "name": "New"}
            )
            assert signed_in.status_code == 302
            page = http.get("/console/orders")
            assert page.status_code == 200 and "#1001" in page.text and "702" in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, 1, -signal.SIGINT), "".join(seen)

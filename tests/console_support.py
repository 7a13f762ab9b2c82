"""Signing into the console from tests: a bridge with a console password, the login form, and
the form token a page carries."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from bridge.settings import ConsoleSettings, Secret

PASSWORD = "console-test-password-7d2f"
# A cheap hash keeps the tests fast; production hashes are scrypt (`fba-bridge console-password`).
PASSWORD_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def console_settings(**changes: object) -> ConsoleSettings:
    return ConsoleSettings(password_hash=Secret(PASSWORD_HASH), **changes)  # type: ignore[arg-type]


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page"
    return match.group(1)


def sign_in(client: FlaskClient, name: str = "Ann", password: str = PASSWORD) -> int:
    page = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"token": form_value(page.get_data(as_text=True), "token"), "name": name, "password": password},
    )
    return response.status_code


def csrf_of(client: FlaskClient, path: str = "/console/orders") -> str:
    return form_value(client.get(path).get_data(as_text=True), "csrf")

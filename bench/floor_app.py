"""The floor receiver of bench/intake.py: the least any webhook receiver on this stack must do.

HMAC check of `X-Shopify-Hmac-Sha256` over the raw body, strict-enough JSON parse (stdlib), and one
committed insert with dedupe on the webhook id (`INSERT ... ON CONFLICT DO NOTHING`) into its own
table of the same database, through the same engine set-up as the bridge (`bridge.store.make_engine`:
SQLite WAL + `BEGIN IMMEDIATE`, or PostgreSQL with psycopg). No schema validation, no canonical
order, no job: what the bridge does beyond this is what the benchmark's ratios measure.

gunicorn loads it as `floor_app:create_app()` with `--chdir bench`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from bridge.settings import normalise_database_url
from bridge.store import make_engine

TABLE = "floor_deliveries"
CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (delivery_key VARCHAR(200) PRIMARY KEY, "
    "body TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL)"
)
INSERT = text(
    f"INSERT INTO {TABLE} (delivery_key, body, received_at) VALUES (:key, :body, :at) "
    "ON CONFLICT (delivery_key) DO NOTHING"
)


def create_app() -> Flask:
    engine = make_engine(normalise_database_url(os.environ["DATABASE_URL"]))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Both gunicorn workers run this at once, and two concurrent `CREATE TABLE IF NOT
            # EXISTS` can both miss the table and one fail on PostgreSQL's catalog: that worker
            # then fails to boot and gunicorn stops the whole floor. One at a time instead.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": TABLE})
        conn.execute(text(CREATE))
    secret = os.environ["SHOP_A_WEBHOOK_SECRET"].encode()
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify(status="ok")

    @app.post("/webhooks/<channel_id>")
    def receive(channel_id: str) -> ResponseReturnValue:
        body = request.get_data()
        given = base64.b64decode(request.headers.get("X-Shopify-Hmac-Sha256", ""))
        if not hmac.compare_digest(given, hmac.new(secret, body, hashlib.sha256).digest()):
            return jsonify(error="invalid_signature"), 401
        try:
            json.loads(body)
        except ValueError:
            return jsonify(error="invalid_json"), 400
        key = request.headers.get("X-Shopify-Webhook-Id", "")
        with engine.begin() as conn:
            inserted = conn.execute(INSERT, {"key": key, "body": body.decode(), "at": time.time()}).rowcount
        return jsonify(status="accepted" if inserted else "duplicate"), 200

    return app

"""Process settings from the environment (12-factor).

Only this module and `channels.py` read `os.environ`. Secrets are wrapped in `Secret` so they
never show up in a `repr`, a log line or an error body by accident.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .resources import example_channels_file, example_simulator_file

DEFAULT_DATABASE_URL = "sqlite:///fba-bridge.sqlite3"
DEFAULT_CONFIG_PATH = "config/channels.yaml"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
DEFAULT_SIMULATOR_CONFIG = "config/simulator.yaml"
#: Webhook admission per web process (bridge/web/admission.py) and gunicorn threads per worker.
DEFAULT_WEBHOOK_CONCURRENCY = 4
DEFAULT_WEBHOOK_DEFER_AT = 2
DEFAULT_WEBHOOK_DEFER_RATE = 50.0
DEFAULT_WEBHOOK_QUEUE = 8
DEFAULT_WEBHOOK_QUEUE_WAIT_S = 0.3
DEFAULT_WEBHOOK_RETRY_AFTER_S = 5
DEFAULT_WEB_THREADS = 16


class SettingsError(ValueError):
    """A setting is present but unusable; the message names the variable and the fix."""


class Secret:
    """A string that refuses to reveal itself in reprs and f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def _scheme_of(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return scheme if _SCHEME.fullmatch(scheme) else "(not a URL)"


def normalise_database_url(url: str) -> str:
    """Accept Heroku's `postgres://` and plain `postgresql://`, and pick the psycopg 3 driver."""
    url = url.strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if not (url.startswith("postgresql+") or url.startswith("sqlite")):
        raise SettingsError(
            f"DATABASE_URL uses an unsupported scheme {_scheme_of(url)!r}; "
            "use postgres://, postgresql:// or sqlite:///path.sqlite3"
        )
    return url


#: Query parameters whose value is (or may be) a credential: libpq's `password` and
#: `sslpassword`, and whatever a driver or proxy names with pass/secret/token/key/auth/credential.
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}")


def mask_url(url: str) -> str:
    """The URL with every credential it can carry replaced by `***`, safe to log.

    Covers the password of `user:password@host` (also with several hosts), query parameters
    such as `?password=`, `?sslpassword=` or `?token=`, and text that is not a URL at all (a
    libpq `key=value` string), which is not echoed.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return "<not a URL>"
    rest, hash_sign, _fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else f"{user}@{hosts}"
    masked_query = ""
    if question:
        parts = []
        for pair in re.split(r"([&;])", query):
            if pair in ("&", ";"):
                parts.append(pair)
                continue
            name, equals, _value = pair.partition("=")
            parts.append(f"{name}=***" if equals and _SECRET_PARAM.search(unquote(name)) else pair)
        masked_query = "?" + "".join(parts)
    return f"{scheme}://{netloc}{slash}{path}{masked_query}{'#***' if hash_sign else ''}"


def _int_env(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number; set it to e.g. {default}") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} is below the minimum {minimum}")
    return value


def _float_env(env: Mapping[str, str], name: str, default: float, *, allow_zero: bool = False) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; set it to e.g. {default}") from None
    if value < 0 or (value == 0 and not allow_zero) or value != value:
        raise SettingsError(f"{name} must be {'zero or ' if allow_zero else ''}positive")
    return value


def _default_file(local: str, packaged: Path) -> Path:
    """`local` (relative to the working directory, as in a checkout) if it exists, else the copy
    the package carries, so an installed wheel runs with no checkout around."""
    path = Path(local)
    return path if path.is_file() else packaged


def _nonnegative_env(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number; set it to e.g. {default}") from None
    if not 0 <= value <= 3600:
        raise SettingsError(f"{name} must be between 0 and 3600 seconds")
    return value


def _local_or_https(url: str, name: str) -> str:
    """`url` if it is https://, or http:// to this machine (a local SQS such as moto); else an error."""
    parts = urlsplit(url)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise SettingsError(f"{name} must be an https:// URL (plain http only to localhost)")
    if parts.username or parts.password:
        raise SettingsError(f"{name} must not carry credentials; AWS credentials come from AWS_* variables")
    return url


_SQS_HOST = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com")


@dataclass(frozen=True)
class SqsSettings:
    """Where Amazon's notifications queue is and how the `notifications` process reads it."""

    queue_url: str = ""
    endpoint_url: str = ""
    region: str = ""
    wait_s: int = 20
    visibility_s: int = 60
    max_receives: int = 5


def _sqs(env: Mapping[str, str]) -> SqsSettings:
    """The Amazon notifications queue: its URL, an optional local endpoint, the region and the
    consumer's knobs. AWS credentials are not read here: boto3's own chain finds them (AWS_*
    variables, a profile or an instance role) and our code never handles them."""
    url = env.get("BRIDGE_SQS_QUEUE_URL", "").strip()
    endpoint = env.get("BRIDGE_SQS_ENDPOINT_URL", "").strip()
    if url:
        _local_or_https(url, "BRIDGE_SQS_QUEUE_URL")
    if endpoint:
        _local_or_https(endpoint, "BRIDGE_SQS_ENDPOINT_URL")
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    if not region and url:
        match = _SQS_HOST.fullmatch(urlsplit(url).hostname or "")
        region = (match.group(1) or match.group(3)) if match else ""
    if url and not region:
        raise SettingsError(
            "set AWS_REGION to the region of BRIDGE_SQS_QUEUE_URL (e.g. us-east-1); it cannot be read "
            "from a queue URL that is not https://sqs.<region>.amazonaws.com/..."
        )
    wait_s = _int_env(env, "BRIDGE_SQS_WAIT_S", 20, minimum=0)
    if wait_s > 20:
        raise SettingsError("BRIDGE_SQS_WAIT_S is at most 20 (SQS's longest long poll)")
    return SqsSettings(
        queue_url=url,
        endpoint_url=endpoint,
        region=region,
        wait_s=wait_s,
        visibility_s=_int_env(env, "BRIDGE_SQS_VISIBILITY_S", 60, minimum=5),
        max_receives=_int_env(env, "BRIDGE_SQS_MAX_RECEIVES", 5),
    )


LOG_FORMATS = ("text", "json")
PASSWORD_HASH_METHODS = ("scrypt:", "pbkdf2:")


@dataclass(frozen=True)
class ConsoleSettings:
    """Who may open the operator console (`/console/`); see the README, "Console".

    Off unless `password_hash` or `trusted_header` is set. The session key signs the console's
    cookies: `BRIDGE_CONSOLE_SECRET_KEY`, or else derived from the password hash (so every web
    process agrees and a new password ends every session).
    """

    password_hash: Secret = field(default_factory=lambda: Secret(""))
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    #: A header a reverse proxy (oauth2-proxy, an OIDC-aware ingress) sets to the signed-in user.
    trusted_header: str = ""
    #: The addresses that proxy connects from; the header is ignored from anyone else.
    trusted_proxies: tuple[str, ...] = ()
    session_hours: float = 12.0

    @property
    def enabled(self) -> bool:
        return bool(self.password_hash) or bool(self.trusted_header)


def _console(env: Mapping[str, str]) -> ConsoleSettings:
    password_hash = env.get("BRIDGE_CONSOLE_PASSWORD_HASH", "").strip()
    if password_hash and not password_hash.startswith(PASSWORD_HASH_METHODS):
        raise SettingsError(
            "BRIDGE_CONSOLE_PASSWORD_HASH is not a password hash; make one with "
            "`fba-bridge console-password` (it prints scrypt:...) and set that"
        )
    secret_key = env.get("BRIDGE_CONSOLE_SECRET_KEY", "").strip()
    if secret_key and len(secret_key) < 32:
        raise SettingsError("BRIDGE_CONSOLE_SECRET_KEY must be at least 32 random characters")
    header = env.get("BRIDGE_CONSOLE_TRUSTED_HEADER", "").strip()
    proxies = tuple(p.strip() for p in env.get("BRIDGE_CONSOLE_TRUSTED_PROXIES", "").split(",") if p.strip())
    if header and not proxies:
        raise SettingsError(
            "BRIDGE_CONSOLE_TRUSTED_HEADER needs BRIDGE_CONSOLE_TRUSTED_PROXIES: the addresses the "
            "reverse proxy connects from (e.g. 127.0.0.1), so nobody else can send the header"
        )
    if header and not secret_key:
        raise SettingsError(
            "BRIDGE_CONSOLE_TRUSTED_HEADER needs BRIDGE_CONSOLE_SECRET_KEY (32+ random characters) "
            "to sign the console's session and form tokens"
        )
    return ConsoleSettings(
        password_hash=Secret(password_hash),
        secret_key=Secret(secret_key),
        trusted_header=header,
        trusted_proxies=proxies,
        session_hours=_float_env(env, "BRIDGE_CONSOLE_SESSION_HOURS", 12.0),
    )


def _alert_webhook(env: Mapping[str, str]) -> tuple[str, Secret]:
    """The operator's alert relay: https (or http to loopback) and a Standard Webhooks secret."""
    url = env.get("BRIDGE_ALERT_WEBHOOK_URL", "").strip()
    secret = env.get("BRIDGE_ALERT_WEBHOOK_SECRET", "")
    if not url:
        return "", Secret("")
    parts = urlsplit(url)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise SettingsError("BRIDGE_ALERT_WEBHOOK_URL must be an https:// URL (plain http only to localhost)")
    if not secret.startswith("whsec_") or len(secret) < 30:
        raise SettingsError(
            "BRIDGE_ALERT_WEBHOOK_SECRET must be set with BRIDGE_ALERT_WEBHOOK_URL: whsec_ followed by "
            'base64 of at least 24 random bytes (e.g. python -c "import base64,os;'
            "print('whsec_'+base64.b64encode(os.urandom(32)).decode())\")"
        )
    return url, Secret(secret)


@dataclass(frozen=True)
class Settings:
    database_url: str = normalise_database_url(DEFAULT_DATABASE_URL)
    config_path: Path = Path(DEFAULT_CONFIG_PATH)
    #: The channels file's text itself (`BRIDGE_CONFIG_YAML`), for platforms where shipping a
    #: file is awkward (a Heroku Button app, a container without a mounted volume).
    config_yaml: str = ""
    port: int = 5000
    log_level: str = "INFO"
    #: `text` (a terminal) or `json` (one object per line, for a log pipeline).
    log_format: str = "text"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Webhook handlers running at once in one web process (0: no bound).
    webhook_concurrency: int = DEFAULT_WEBHOOK_CONCURRENCY
    #: Webhooks that may wait for a free handler, each for at most `webhook_queue_wait_s`;
    #: any more are answered 503 with `Retry-After: webhook_retry_after_s` at once.
    webhook_queue: int = DEFAULT_WEBHOOK_QUEUE
    webhook_queue_wait_s: float = DEFAULT_WEBHOOK_QUEUE_WAIT_S
    webhook_retry_after_s: int = DEFAULT_WEBHOOK_RETRY_AFTER_S
    #: With this many webhook handlers running in the process (this one included), a Shopify or
    #: WooCommerce order delivery is stored and queued for a worker instead of being applied in
    #: the request (`intake.defer`); 1: always, 0: never.
    webhook_defer_at: int = DEFAULT_WEBHOOK_DEFER_AT
    #: Likewise once this many webhooks a second reach the process (0: no rate criterion);
    #: not with `webhook_defer_at` 0, which means never.
    webhook_defer_rate: float = DEFAULT_WEBHOOK_DEFER_RATE
    #: gunicorn threads per web worker (`fba-bridge serve`); more than concurrency + queue, so
    #: spare threads answer refusals at once.
    web_threads: int = DEFAULT_WEB_THREADS
    notifications_token: Secret = field(default_factory=lambda: Secret(""))
    admin_token: Secret = field(default_factory=lambda: Secret(""))
    simulator_url: str = ""
    job_lease_s: float = 60.0
    leader_lease_s: float = 30.0
    sync_interval_s: float = 300.0
    retention_days: int = 30
    #: Finished (`done`) jobs are deleted after this many hours (`compaction.py`).
    job_history_hours: float = 24.0
    #: A worker sleeps at most this long for an Amazon account's rate token; a longer wait sends
    #: the job back to the queue with the token reserved (`bridge.budget`). 0: never sleep.
    rate_wait_s: float = 0.5
    simulator_speed: float = 60.0
    simulator_config: Path | None = None
    alert_webhook_url: str = ""
    alert_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    sqs: SqsSettings = field(default_factory=SqsSettings)
    #: Bearer token for `GET /metrics`; unset keeps the endpoint off.
    metrics_token: Secret = field(default_factory=lambda: Secret(""))
    #: How often a process writes its buffered event counters to the database (0: only when
    #: /metrics is scraped in this process and at exit).
    metrics_flush_s: float = 5.0
    #: How long one scrape's answer is reused by the next scrapes of the same web process.
    metrics_cache_s: float = 5.0
    console: ConsoleSettings = field(default_factory=ConsoleSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in logging.getLevelNamesMapping():
            raise SettingsError(f"LOG_LEVEL={level!r} is not a log level; use DEBUG, INFO, WARNING or ERROR")
        log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
        if log_format not in LOG_FORMATS:
            raise SettingsError(f"LOG_FORMAT={log_format!r} is not a log format; use text or json")
        alert_url, alert_secret = _alert_webhook(env)
        config_yaml = env.get("BRIDGE_CONFIG_YAML") or ""
        if config_yaml.strip() and env.get("BRIDGE_CONFIG"):
            raise SettingsError(
                "BRIDGE_CONFIG and BRIDGE_CONFIG_YAML are both set; keep one: BRIDGE_CONFIG names a "
                "channels file, BRIDGE_CONFIG_YAML holds the file's content"
            )
        return cls(
            database_url=normalise_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            config_path=Path(env["BRIDGE_CONFIG"])
            if env.get("BRIDGE_CONFIG")
            else _default_file(DEFAULT_CONFIG_PATH, example_channels_file()),
            config_yaml=config_yaml if config_yaml.strip() else "",
            port=_int_env(env, "PORT", 5000),
            log_level=level,
            log_format=log_format,
            max_body_bytes=_int_env(env, "BRIDGE_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
            webhook_concurrency=_int_env(
                env, "BRIDGE_WEBHOOK_CONCURRENCY", DEFAULT_WEBHOOK_CONCURRENCY, minimum=0
            ),
            webhook_queue=_int_env(env, "BRIDGE_WEBHOOK_QUEUE", DEFAULT_WEBHOOK_QUEUE, minimum=0),
            webhook_defer_at=_int_env(env, "BRIDGE_WEBHOOK_DEFER_AT", DEFAULT_WEBHOOK_DEFER_AT, minimum=0),
            webhook_defer_rate=_float_env(
                env, "BRIDGE_WEBHOOK_DEFER_RATE", DEFAULT_WEBHOOK_DEFER_RATE, allow_zero=True
            ),
            webhook_queue_wait_s=_nonnegative_env(
                env, "BRIDGE_WEBHOOK_QUEUE_WAIT_S", DEFAULT_WEBHOOK_QUEUE_WAIT_S
            ),
            webhook_retry_after_s=_int_env(
                env, "BRIDGE_WEBHOOK_RETRY_AFTER_S", DEFAULT_WEBHOOK_RETRY_AFTER_S
            ),
            web_threads=_int_env(env, "WEB_THREADS", DEFAULT_WEB_THREADS),
            notifications_token=Secret(env.get("BRIDGE_NOTIFICATIONS_TOKEN", "")),
            admin_token=Secret(env.get("BRIDGE_ADMIN_TOKEN", "")),
            simulator_url=env.get("BRIDGE_SIMULATOR_URL", ""),
            job_lease_s=_float_env(env, "BRIDGE_JOB_LEASE_S", 60.0),
            leader_lease_s=_float_env(env, "BRIDGE_LEADER_LEASE_S", 30.0),
            sync_interval_s=_float_env(env, "BRIDGE_SYNC_INTERVAL_S", 300.0),
            retention_days=_int_env(env, "BRIDGE_RETENTION_DAYS", 30),
            job_history_hours=_float_env(env, "BRIDGE_JOB_HISTORY_HOURS", 24.0),
            rate_wait_s=_nonnegative_env(env, "BRIDGE_RATE_WAIT_S", 0.5),
            simulator_speed=_float_env(env, "BRIDGE_SIMULATOR_SPEED", 60.0),
            simulator_config=Path(env["BRIDGE_SIMULATOR_CONFIG"])
            if env.get("BRIDGE_SIMULATOR_CONFIG")
            else _default_file(DEFAULT_SIMULATOR_CONFIG, example_simulator_file()),
            alert_webhook_url=alert_url,
            alert_webhook_secret=alert_secret,
            sqs=_sqs(env),
            metrics_token=Secret(env.get("BRIDGE_METRICS_TOKEN", "").strip()),
            metrics_flush_s=_float_env(env, "BRIDGE_METRICS_FLUSH_S", 5.0, allow_zero=True),
            metrics_cache_s=_float_env(env, "BRIDGE_METRICS_CACHE_S", 5.0, allow_zero=True),
            console=_console(env),
        )

    def __repr__(self) -> str:
        return (
            f"Settings(database_url={mask_url(self.database_url)!r}, config_path={str(self.config_path)!r}, "
            f"port={self.port}, log_level={self.log_level!r}, max_body_bytes={self.max_body_bytes})"
        )

"""Alembic, driven from code: `fba-bridge db upgrade` and the test fixtures both come through here.

Also the readiness check every other command makes first: a database that does not exist, cannot
be reached or is not at this code's revision gets one line saying so and what to run, instead of
a traceback (and a mistyped SQLite path is never created as an empty file by a read-only command).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from .command import command as cli
from .settings import mask_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class DatabaseNotReady(RuntimeError):
    """The database cannot be used as it is; the message is one line naming the fix.

    `unreachable` is True when the database did not answer (it may come back), False when it
    answered and is missing or at the wrong revision (waiting does not help)."""

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision(engine)


def shown_url(url: object) -> str:
    """A database URL safe to print: every credential form masked (`settings.mask_url`)."""
    try:
        return mask_url(make_url(str(url)).render_as_string(hide_password=True))
    except ArgumentError:
        return "<unparseable database url>"


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL; None for other databases, in-memory and `file:` URIs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    database = parsed.database or ""
    return Path(database) if database and database != ":memory:" else None


def require_existing(url: str) -> None:
    """Refuse a SQLite file that is not there, before anything connects (and would create it)."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise DatabaseNotReady(
            f"the database at {shown_url(url)} does not exist; "
            f'run "{cli()} db upgrade" first (or check DATABASE_URL)'
        )


def connection_problem(exc: DBAPIError) -> str:
    """The driver's reason, first line only (it names host and database, never the password)."""
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    return reason.removeprefix("connection failed: ")


def check_schema(engine: Engine) -> None:
    """Raise `DatabaseNotReady` unless the database answers and is at this code's head revision."""
    where = shown_url(engine.url)
    try:
        current = current_revision(engine)
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"} if current is None else {"?"}
    except DBAPIError as exc:
        raise DatabaseNotReady(
            f"cannot connect to the database at {where}: {connection_problem(exc)}", unreachable=True
        ) from None
    script = ScriptDirectory.from_config(alembic_config(engine))
    head = script.get_current_head()
    if current == head:
        return
    upgrade_hint = f'run "{cli()} db upgrade"'
    if current is None:
        what = "has tables but no migration record" if tables else "is empty (not migrated)"
        raise DatabaseNotReady(f"the database at {where} {what}; {upgrade_hint}")
    try:
        known = script.get_revision(current) is not None
    except CommandError:
        known = False
    if known:
        raise DatabaseNotReady(
            f"the database at {where} is not migrated (at revision {current}, needs {head}); {upgrade_hint}"
        )
    raise DatabaseNotReady(
        f"the database at {where} is at revision {current}, which this version of fba-bridge does not "
        f"know (a newer version migrated it); run that version, or downgrade with it to {head}"
    )


def schema_problem(engine: Engine) -> str | None:
    """Why this database can never work as it is (missing or wrong schema), or None: also None
    when it does not answer, since that may pass."""
    try:
        check_schema(engine)
    except DatabaseNotReady as exc:
        return None if exc.unreachable else str(exc)
    return None


def open_ready(url: str) -> Engine:
    """An engine on an existing, migrated database, or `DatabaseNotReady` (what every command
    except `db upgrade`, `serve` and `run` uses: they migrate themselves)."""
    from .store import make_engine

    require_existing(url)
    engine = make_engine(url)
    try:
        check_schema(engine)
    except DatabaseNotReady:
        engine.dispose()
        raise
    return engine


def safe_upgrade(engine: Engine, revision: str = "head") -> None:
    """`upgrade`, with a database that cannot be opened or reached reported in one line."""
    try:
        upgrade(engine, revision)
    except CommandError as exc:
        raise DatabaseNotReady(
            f"cannot migrate the database at {shown_url(engine.url)}: {str(exc).splitlines()[0]}"
        ) from None
    except DBAPIError as exc:
        where = shown_url(engine.url)
        path = sqlite_file(str(engine.url))
        if path is not None and not path.absolute().parent.is_dir():
            raise DatabaseNotReady(
                f"cannot create the database at {where}: the folder {path.absolute().parent} does not exist"
            ) from None
        raise DatabaseNotReady(
            f"cannot open the database at {where}: {connection_problem(exc)}", unreachable=True
        ) from None

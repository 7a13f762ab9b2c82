"""Migrations and models agree, and every revision can be undone and re-applied."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from bridge.migrate import current_revision, downgrade, head_revision, is_current, upgrade


def test_upgrade_reaches_head_and_matches_the_models(db: Engine) -> None:
    assert is_current(db)
    with db.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []


def test_downgrade_to_base_and_upgrade_again(db: Engine) -> None:
    downgrade(db, "base")
    assert current_revision(db) is None
    upgrade(db)
    assert current_revision(db) == head_revision(db)

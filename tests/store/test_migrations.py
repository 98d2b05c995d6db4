"""Schema migrations: the migrated schema is the ORM schema; old stores upgrade; new are refused."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from forgeml.errors import StoreVersionError
from forgeml.store import Database
from forgeml.store._db import _MIGRATIONS, known_revisions
from forgeml.store._schema import metadata


def _script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_revision_files_form_one_line_ending_at_the_head():
    script = _script()
    assert script.get_heads() == [known_revisions()[-1]]
    chain = [rev.revision for rev in script.walk_revisions()][::-1]
    assert chain == known_revisions()


def test_migrated_schema_equals_the_metadata(store_url):
    db = Database(store_url)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
        assert diff == []
        tables = set(sa.inspect(db.engine).get_table_names())
        assert set(metadata.tables) <= tables
    finally:
        db.close()


def test_every_list_path_is_indexed(store_url):
    db = Database(store_url)
    try:
        inspector = sa.inspect(db.engine)
        runs = {tuple(ix["column_names"]) for ix in inspector.get_indexes("runs")}
        assert ("experiment_id", "start_time", "run_id") in runs
        assert ("start_time", "run_id") in runs
        metric_ix = {tuple(ix["column_names"]) for ix in inspector.get_indexes("metrics")}
        assert ("run_id", "key", "step") in metric_ix
    finally:
        db.close()


def test_an_older_store_upgrades_in_place(store_url):
    from alembic import command

    first = known_revisions()[0]
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, first)
    engine.dispose()
    db = Database(store_url)
    try:
        assert db.current_revision() == known_revisions()[-1]
    finally:
        db.close()


def test_a_newer_store_is_refused(store_url):
    Database(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(StoreVersionError, match=r"9999.*newer"):
        Database(store_url)

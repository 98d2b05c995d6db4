"""Tables of the metadata store: one SQLAlchemy ``MetaData`` for SQLite and PostgreSQL.

Times are integer milliseconds since the Unix epoch (UTC) so both back ends compare and index
them the same way. NaN cannot be stored in a SQLite REAL (it turns into NULL), so metric rows
carry an ``is_nan`` flag and a 0 in ``value`` instead.

Every table that capabilities add later is defined here as well, because the migration
environment must see the whole schema and it lives in the foundation layer.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata"]

# Names constraints deterministically so that Alembic migrations can refer to them on both
# back ends (SQLite batch mode needs named constraints to alter a table).
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# An integer key that is a 64-bit BIGINT on PostgreSQL and the ROWID alias on SQLite.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_KEY = 250
_NAME = 256

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(_NAME), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column(
        "experiment_id",
        sa.Integer,
        sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(_NAME), nullable=False),
    # running | finished | failed | killed; "lost" is derived from a stale heartbeat
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("user_name", sa.String(_NAME), nullable=True),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("heartbeat_at", sa.BigInteger, nullable=True),
    sa.Column("parent_run_id", sa.String(32), nullable=True),
    sa.Column("code_revision", sa.String(64), nullable=True),
    sa.Column("code_dirty", sa.Boolean, nullable=True),
    sa.Column("environment", sa.Text, nullable=True),  # JSON
    sa.Column("error", sa.Text, nullable=True),
    sa.Index(None, "experiment_id", "start_time", "run_id"),
    sa.Index(None, "start_time", "run_id"),
    sa.Index(None, "status", "heartbeat_at"),
    sa.Index(None, "parent_run_id"),
)


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.run_id", ondelete="CASCADE")


run_params = sa.Table(
    "run_params",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column("key", sa.String(_KEY), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON text of the logged value
    sa.Column("value_num", sa.Float, nullable=True),  # set when the value is a finite number
    sa.Index(None, "key", "value_num"),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column("key", sa.String(_KEY), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index(None, "key"),
)

# Metric history: written in batches, read one (run, key) at a time, never joined into lists.
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), _run_fk(), nullable=False),
    sa.Column("key", sa.String(_KEY), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("is_nan", sa.Boolean, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Index(None, "run_id", "key", "step"),
)

# The last value per (run, key): the latest step, then the latest time. Lists, filters and
# ordering read only this table.
latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column("key", sa.String(_KEY), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("is_nan", sa.Boolean, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Index(None, "key", "value"),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_id", sa.String(32), _run_fk(), primary_key=True),
    sa.Column("path", sa.String(500), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # file | dir
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "digest"),
)

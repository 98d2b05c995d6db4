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

# -- datasets (data capability) ---------------------------------------------------------------

# One row per dataset name. Adding a version locks this row (SELECT ... FOR UPDATE on
# PostgreSQL; the write transaction is BEGIN IMMEDIATE on SQLite) and bumps ``latest_version``,
# so concurrent adds of one name get distinct, gap-free version numbers.
datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(_NAME), nullable=False, unique=True),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# An immutable version. ``digest`` is the content hash of the table, ``spec_digest`` the hash of
# the declared roles and type overrides: the same table declared the same way is one version.
# The data itself is a Parquet blob (``data_digest``) in the artifact store; schema, profile and
# quality report are compact JSON kept here, read together with the version.
dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column(
        "dataset_id",
        sa.Integer,
        sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("spec_digest", sa.String(64), nullable=False),
    sa.Column("data_digest", sa.String(64), nullable=False),
    sa.Column("data_size", sa.BigInteger, nullable=False),
    sa.Column("n_rows", sa.BigInteger, nullable=False),
    sa.Column("n_columns", sa.Integer, nullable=False),
    sa.Column("target", sa.String(_NAME), nullable=True),
    sa.Column("time_column", sa.String(_NAME), nullable=True),
    sa.Column("id_column", sa.String(_NAME), nullable=True),
    sa.Column("sensitive", sa.Text, nullable=False),  # JSON list of column names
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("parent_version", sa.Integer, nullable=True),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.Text, nullable=False),  # JSON
    sa.Column("profile", sa.Text, nullable=False),  # JSON
    sa.Column("quality", sa.Text, nullable=False),  # JSON
    sa.Index(None, "dataset_id", "digest"),
    sa.Index(None, "data_digest"),
)

# A recorded train/validation/test split of one version: the per-row assignment is a blob.
dataset_splits = sa.Table(
    "dataset_splits",
    metadata,
    sa.Column("dataset_id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # JSON: fractions, columns used
    sa.Column("counts", sa.Text, nullable=False),  # JSON: rows per part
    sa.Column("assignment_digest", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.ForeignKeyConstraint(
        ["dataset_id", "version"],
        ["dataset_versions.dataset_id", "dataset_versions.version"],
        ondelete="CASCADE",
    ),
)

# -- model registry (registry capability) -----------------------------------------------------

# One row per model name. Registering a version locks this row (SELECT ... FOR UPDATE on
# PostgreSQL; the write transaction is BEGIN IMMEDIATE on SQLite) and bumps ``latest_version``,
# so concurrent registrations of one model get distinct, gap-free version numbers.
models = sa.Table(
    "models",
    metadata,
    sa.Column("model_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(_NAME), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# A registered version: an immutable bundle (a tree blob in the artifact store) plus a status
# that changes over its life: active -> archived -> retired (retired versions are never served).
model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column(
        "model_id",
        sa.Integer,
        sa.ForeignKey("models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("task", sa.String(32), nullable=True),
    sa.Column("bundle_digest", sa.String(64), nullable=False),
    sa.Column("bundle_size", sa.BigInteger, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),  # JSON {name: value}
    # Soft references: a run or dataset may be deleted while the model version stays.
    sa.Column("run_id", sa.String(32), nullable=True),
    sa.Column("dataset", sa.String(300), nullable=True),  # "NAME@VERSION"
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index(None, "run_id"),
    sa.Index(None, "dataset"),
    sa.Index(None, "bundle_digest"),
)

# The current alias -> version mapping. Moving an alias is one UPDATE of one row (an upsert), so
# a reader sees the old or the new version, never no row.
model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(_NAME), nullable=True),
    sa.ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

# Append-only history of every change to a model: registrations, alias moves and removals,
# status changes; who, when and why. "What was @production at time T" is the last alias event
# of (model, alias) at or before T.
model_events = sa.Table(
    "model_events",
    metadata,
    sa.Column("event_id", _BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "model_id",
        sa.Integer,
        sa.ForeignKey("models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(16), nullable=False),  # registered | alias | status
    sa.Column("version", sa.Integer, nullable=True),  # the version the event is about
    sa.Column("alias", sa.String(64), nullable=True),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),  # NULL: the alias was removed
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=True),
    sa.Column("actor", sa.String(_NAME), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index(None, "model_id", "alias", "at"),
    sa.Index(None, "model_id", "at"),
)

# -- serving (serve capability) ---------------------------------------------------------------

# One row per prediction request a model version answered ("primary": the answer the caller got;
# "shadow": a version that saw the same request without answering). Written in batches by the
# server's prediction log, read by monitoring one model and time window at a time. Inputs and
# outputs are compact JSON, column-oriented: {column: [value per row]}. The unique constraint
# makes a retried batch harmless and is the index that request-id lookups use.
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("model", sa.String(_NAME), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # primary | shadow
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),  # JSON {column: [values]}
    # JSON {predictions, probabilities, classes, and quality: {column: {issue: count}} when the
    # inputs had data-quality issues}
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("protocol", sa.String(16), nullable=False),
    # the error code of a request that got no prediction (no outputs, maybe no rows); NULL
    # for a prediction
    sa.Column("error", sa.String(64), nullable=True),
    sa.UniqueConstraint("request_id", "role"),
    sa.Index(None, "model", "time_ms"),
)

# Ground truth sent back for a request: one label per row. The effective labels (what
# monitoring and the loop read): the first feedback, or the latest correction.
prediction_feedback = sa.Table(
    "prediction_feedback",
    metadata,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("labels", sa.Text, nullable=False),  # JSON list
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
)

# Every labelling of a request, append-only: revision 1 is the first feedback, each correction
# the next revision (who, when, why). The history behind prediction_feedback's current row.
feedback_revisions = sa.Table(
    "feedback_revisions",
    metadata,
    sa.Column("request_id", sa.String(36), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("labels", sa.Text, nullable=False),  # JSON list
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
    sa.Column("reason", sa.String(1000), nullable=True),
)

# How the server splits a model's traffic between versions (canary, A/B, shadows). A cleared
# route keeps its row with a NULL config, so its revision keeps increasing when it is set again
# and a poller comparing revisions never mistakes a new route for the one it saw before.
serving_routes = sa.Table(
    "serving_routes",
    metadata,
    sa.Column("model", sa.String(_NAME), primary_key=True),
    sa.Column("config", sa.Text, nullable=True),  # JSON; NULL: cleared
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(_NAME), nullable=True),
    sa.Column("revision", sa.Integer, nullable=False),
)

# -- monitoring (monitor capability) ----------------------------------------------------------

# One row per alert a rule raised on one window of a served model's log. The unique key makes
# evaluating the same window again (a restarted watcher, an on-demand check) add nothing.
monitor_alerts = sa.Table(
    "monitor_alerts",
    metadata,
    sa.Column("alert_id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(_NAME), nullable=False),
    sa.Column("model", sa.String(_NAME), nullable=False),
    sa.Column("ref", sa.String(_NAME), nullable=False),  # NAME@ALIAS as monitored
    sa.Column("metric", sa.String(_NAME), nullable=False),
    sa.Column("op", sa.String(4), nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("window_start_ms", sa.BigInteger, nullable=False),
    sa.Column("window_end_ms", sa.BigInteger, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # pending | sent | failed: <reason> | none (no webhook configured)
    sa.Column("delivery", sa.String(_NAME), nullable=False),
    sa.UniqueConstraint("rule", "model", "window_start_ms", "window_end_ms"),
    sa.Index(None, "model", "created_at"),
)

# The latest monitored value of each model and metric (drift scores, true and estimated
# performance), which the server exposes as Prometheus gauges.
monitor_results = sa.Table(
    "monitor_results",
    metadata,
    sa.Column("model", sa.String(_NAME), primary_key=True),
    sa.Column("metric", sa.String(_NAME), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("is_nan", sa.Boolean, nullable=False),
    sa.Column("window_start_ms", sa.BigInteger, nullable=False),
    sa.Column("window_end_ms", sa.BigInteger, nullable=False),
    sa.Column("computed_at", sa.BigInteger, nullable=False),
)

# Small JSON documents that let a long-running monitor resume where it stopped.
monitor_state = sa.Table(
    "monitor_state",
    metadata,
    sa.Column("key", sa.String(_NAME), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# -- continuous training (loop workflow) ------------------------------------------------------

# Every step a retraining loop takes, written when it starts and again when it ends, so a loop
# restarted after a crash finds the step it was in and finishes it once. ``key`` names the step
# within the model's history ("cycle-3/train"); starting the same key again counts an attempt
# instead of adding a row.
loop_steps = sa.Table(
    "loop_steps",
    metadata,
    sa.Column("step_id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(_NAME), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("key", sa.String(_KEY), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # started | finished | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("finished_at", sa.BigInteger, nullable=True),
    sa.Column("holder", sa.String(_NAME), nullable=False),
    sa.Column("output", sa.Text, nullable=True),  # JSON
    sa.Column("error", sa.Text, nullable=True),
    sa.UniqueConstraint("model", "key"),
    sa.Index(None, "model", "state"),
)

# Every decision a loop made, passed or failed, with its reasons: triggers, the
# champion/challenger comparison, each gate, rollout, promotion and rollback.
loop_decisions = sa.Table(
    "loop_decisions",
    metadata,
    sa.Column("decision_id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(_NAME), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(_NAME), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(_NAME), nullable=False),
    sa.Index(None, "model", "decision_id"),
)

# Who may act on a model's loop: one holder until ``expires_at``; the holder renews it while it
# works, anyone may take it once it expired.
loop_leases = sa.Table(
    "loop_leases",
    metadata,
    sa.Column("model", sa.String(_NAME), primary_key=True),
    sa.Column("holder", sa.String(_NAME), nullable=False),
    sa.Column("acquired_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
)

# Small JSON state a model's loop carries between passes (cursors, the candidate in rollout).
loop_state = sa.Table(
    "loop_state",
    metadata,
    sa.Column("model", sa.String(_NAME), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# -- security (foundation) ----------------------------------------------------------------------

# API keys. Only a digest of the secret part is stored (sha256 of a 256-bit random secret), so a
# key cannot be recovered from the store; ``key_id`` is the public prefix a presented key is
# looked up by. A revoked key keeps its row (the audit log and "keys list" name it).
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(_NAME), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(_NAME), nullable=True),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_by", sa.String(_NAME), nullable=True),
)

# Who may move an alias of a model ("*" for every model): roles and named principals (JSON
# lists). No row: the role matrix alone decides.
alias_guards = sa.Table(
    "alias_guards",
    metadata,
    sa.Column("model", sa.String(_NAME), primary_key=True),
    sa.Column("alias", sa.String(_KEY), primary_key=True),
    sa.Column("roles", sa.Text, nullable=False),
    sa.Column("principals", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(_NAME), nullable=True),
)

# The audit log: one row per state change, append-only, hash-chained. ``hash`` is the sha256 of
# the previous entry's hash and this entry's content, so an edited, deleted or reordered entry
# breaks the chain from there on. ``audit_head`` (one row) holds the last sequence number and
# hash: writers lock it to allocate the next number, and it reveals a deleted tail.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", _BigId, primary_key=True, autoincrement=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(_NAME), nullable=False),
    sa.Column("actor_kind", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(_NAME), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object", sa.String(512), nullable=False),
    sa.Column("before", sa.Text, nullable=True),  # JSON
    sa.Column("after", sa.Text, nullable=True),  # JSON
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index(None, "at"),
    sa.Index(None, "actor", "at"),
    sa.Index(None, "object", "at"),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

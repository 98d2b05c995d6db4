"""loop: steps, decisions, leases and state of continuous training

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 14:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "loop_steps",
        sa.Column("step_id", _BigId, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("step_id", name=op.f("pk_loop_steps")),
        sa.UniqueConstraint("model", "key", name=op.f("uq_loop_steps_model_key")),
    )
    op.create_index(
        op.f("ix_loop_steps_model_state"), "loop_steps", ["model", "state"], unique=False
    )
    op.create_table(
        "loop_decisions",
        sa.Column("decision_id", _BigId, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_loop_decisions")),
    )
    op.create_index(
        op.f("ix_loop_decisions_model_decision_id"),
        "loop_decisions",
        ["model", "decision_id"],
        unique=False,
    )
    op.create_table(
        "loop_leases",
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_loop_leases")),
    )
    op.create_table(
        "loop_state",
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", name=op.f("pk_loop_state")),
    )


def downgrade() -> None:
    op.drop_table("loop_state")
    op.drop_table("loop_leases")
    op.drop_index(op.f("ix_loop_decisions_model_decision_id"), table_name="loop_decisions")
    op.drop_table("loop_decisions")
    op.drop_index(op.f("ix_loop_steps_model_state"), table_name="loop_steps")
    op.drop_table("loop_steps")

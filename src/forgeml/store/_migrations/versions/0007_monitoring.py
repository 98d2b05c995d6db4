"""monitoring: alerts, latest monitored values, monitor state

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-29 13:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_alerts",
        sa.Column(
            "alert_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("rule", sa.String(length=256), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("ref", sa.String(length=256), nullable=False),
        sa.Column("metric", sa.String(length=256), nullable=False),
        sa.Column("op", sa.String(length=4), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivery", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_monitor_alerts")),
        sa.UniqueConstraint(
            "rule",
            "model",
            "window_start_ms",
            "window_end_ms",
            name=op.f("uq_monitor_alerts_rule_model_window_start_ms_window_end_ms"),
        ),
    )
    op.create_index(
        op.f("ix_monitor_alerts_model_created_at"),
        "monitor_alerts",
        ["model", "created_at"],
        unique=False,
    )
    op.create_table(
        "monitor_results",
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("metric", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "metric", name=op.f("pk_monitor_results")),
    )
    op.create_table(
        "monitor_state",
        sa.Column("key", sa.String(length=256), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_monitor_state")),
    )


def downgrade() -> None:
    op.drop_table("monitor_state")
    op.drop_table("monitor_results")
    op.drop_index(op.f("ix_monitor_alerts_model_created_at"), table_name="monitor_alerts")
    op.drop_table("monitor_alerts")

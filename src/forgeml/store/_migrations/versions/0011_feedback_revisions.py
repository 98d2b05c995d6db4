"""feedback revisions: every labelling of a request (the first feedback and its corrections)

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-05 19:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback_revisions",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("time_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("request_id", "revision", name=op.f("pk_feedback_revisions")),
    )
    # labels stored before revisions were kept are their requests' first revision
    op.execute(
        "INSERT INTO feedback_revisions (request_id, revision, labels, time_ms, created_by) "
        "SELECT request_id, 1, labels, time_ms, created_by FROM prediction_feedback"
    )


def downgrade() -> None:
    op.drop_table("feedback_revisions")

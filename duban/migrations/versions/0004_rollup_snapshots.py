"""rollup snapshots

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COUNTS = (
    "tasks",
    "done_tasks",
    "overdue_tasks",
    "due_soon_tasks",
    "red",
    "yellow",
    "green",
    "milestones",
    "done_milestones",
    "due_milestones",
    "on_time_milestones",
    "overdue_milestones",
)


def upgrade() -> None:
    op.create_table(
        "rollup_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_rollup_snapshots_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_snapshots")),
        sa.UniqueConstraint("plan_id", "day", "scope", "key", name=op.f("uq_rollup_snapshots_plan_id")),
    )
    with op.batch_alter_table("rollup_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rollup_snapshots_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rollup_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollup_snapshots_day"))
    op.drop_table("rollup_snapshots")

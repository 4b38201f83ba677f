"""a plan's life in an office: announcement, plan and task ends, what the sheet said, office lines, bulletins

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("ends_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("announce_on_import", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("bulletin_every", sa.String(length=20), nullable=False, server_default="week"))
    with op.batch_alter_table("plan_roles") as batch:
        batch.add_column(sa.Column("scope", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ends_on", sa.Date(), nullable=True))
    with op.batch_alter_table("milestones") as batch:
        batch.add_column(sa.Column("sheet_due_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("origin", sa.String(length=20), nullable=False, server_default="plan"))
    op.create_table(
        "bulletins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_bulletins_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulletins")),
        sa.UniqueConstraint("plan_id", "kind", "number", name=op.f("uq_bulletins_plan_id")),
    )
    op.create_index(op.f("ix_bulletins_plan_id"), "bulletins", ["plan_id"], unique=False)
    _fill()


def _fill() -> None:
    """Existing plans were told about their tasks under the old rules (reminders started at
    import): they count as announced then.  The sheet's date of each milestone is its baseline
    moved by every import since (not by approved extensions); 需整改 steps come from reviews."""
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE tasks SET announced_at = assigned_at"))
    bind.execute(sa.text("UPDATE milestones SET sheet_due_date = baseline_due_date"))
    moved: dict[int, str] = {}
    rows = bind.execute(
        sa.text("SELECT milestone_id, data FROM events WHERE kind = 'milestone_due_changed' AND milestone_id IS NOT NULL ORDER BY at, id")
    )
    for mid, data in rows:
        value = json.loads(data) if isinstance(data, str) else data
        if isinstance(value, dict) and value.get("to"):
            moved[mid] = value["to"]
    for mid, to in moved.items():
        bind.execute(sa.text("UPDATE milestones SET sheet_due_date = :to WHERE id = :id"), {"to": to, "id": mid})
    bind.execute(
        sa.text(
            "UPDATE milestones SET origin = 'review' WHERE id IN "
            "(SELECT follow_up_milestone_id FROM review_items WHERE follow_up_milestone_id IS NOT NULL)"
        )
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_bulletins_plan_id"), table_name="bulletins")
    op.drop_table("bulletins")
    with op.batch_alter_table("milestones") as batch:
        batch.drop_column("origin")
        batch.drop_column("sheet_due_date")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("ends_on")
        batch.drop_column("announced_at")
    with op.batch_alter_table("plan_roles") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("bulletin_every")
        batch.drop_column("announce_on_import")
        batch.drop_column("ends_on")

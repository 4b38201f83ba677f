"""people's staff number and chat-app ids; held ledger items; chat to-dos; person sessions;
numbered 督办单

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("staff_no", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("wecom_userid", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("dingtalk_userid", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("feishu_open_id", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_people_staff_no"), "people", ["staff_no"], unique=False)
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "chat_todos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("milestone_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("vendor", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_chat_todos_plan_id_plans")),
        sa.ForeignKeyConstraint(["milestone_id"], ["milestones.id"], name=op.f("fk_chat_todos_milestone_id_milestones")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_chat_todos_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_todos")),
        sa.UniqueConstraint("vendor", "milestone_id", "person_id", name=op.f("uq_chat_todos_vendor")),
    )
    op.create_index(op.f("ix_chat_todos_plan_id"), "chat_todos", ["plan_id"], unique=False)
    op.create_index(op.f("ix_chat_todos_milestone_id"), "chat_todos", ["milestone_id"], unique=False)
    op.create_table(
        "person_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_person_sessions_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_sessions")),
    )
    op.create_index(op.f("ix_person_sessions_person_id"), "person_sessions", ["person_id"], unique=False)
    op.create_table(
        "supervision_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_supervision_notices_plan_id_plans")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_supervision_notices_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supervision_notices")),
        sa.UniqueConstraint("plan_id", "year", "number", name=op.f("uq_supervision_notices_plan_id")),
    )
    op.create_index(op.f("ix_supervision_notices_plan_id"), "supervision_notices", ["plan_id"], unique=False)
    op.create_index(op.f("ix_supervision_notices_task_id"), "supervision_notices", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_supervision_notices_task_id"), table_name="supervision_notices")
    op.drop_index(op.f("ix_supervision_notices_plan_id"), table_name="supervision_notices")
    op.drop_table("supervision_notices")
    op.drop_index(op.f("ix_person_sessions_person_id"), table_name="person_sessions")
    op.drop_table("person_sessions")
    op.drop_index(op.f("ix_chat_todos_milestone_id"), table_name="chat_todos")
    op.drop_index(op.f("ix_chat_todos_plan_id"), table_name="chat_todos")
    op.drop_table("chat_todos")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("not_before")
    op.drop_index(op.f("ix_people_staff_no"), table_name="people")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("feishu_open_id")
        batch.drop_column("dingtalk_userid")
        batch.drop_column("wecom_userid")
        batch.drop_column("staff_no")

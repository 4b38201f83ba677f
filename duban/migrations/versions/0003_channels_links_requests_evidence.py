"""channels, deliveries, action links, requests and evidence

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["digest_id"], ["digests.id"], name=op.f("fk_deliveries_digest_id_digests")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deliveries_digest_id"), ["digest_id"], unique=False)

    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("milestone_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("new_due_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["decided_by_id"], ["people.id"], name=op.f("fk_requests_decided_by_id_people")),
        sa.ForeignKeyConstraint(["milestone_id"], ["milestones.id"], name=op.f("fk_requests_milestone_id_milestones")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_requests_person_id_people")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_requests_plan_id_plans")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_requests_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index("ix_requests_status_plan", ["status", "plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_requests_task_id"), ["task_id"], unique=False)

    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("milestone_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("stored_name", sa.String(length=100), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_evidence_event_id_events")),
        sa.ForeignKeyConstraint(["milestone_id"], ["milestones.id"], name=op.f("fk_evidence_milestone_id_milestones")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_evidence_person_id_people")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_evidence_plan_id_plans")),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], name=op.f("fk_evidence_request_id_requests")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_evidence_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_task_id"), ["task_id"], unique=False)

    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("milestone_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["milestone_id"], ["milestones.id"], name=op.f("fk_links_milestone_id_milestones")),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_links_person_id_people")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_links_plan_id_plans")),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"], name=op.f("fk_links_request_id_requests")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_links_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_links_token_hash")),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index("ix_links_person_task", ["person_id", "task_id", "action"], unique=False)
        batch_op.create_index(batch_op.f("ix_links_plan_id"), ["plan_id"], unique=False)

    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_urls", sa.JSON(), nullable=False, server_default="[]"))

    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("delivered_via", sa.String(length=200), nullable=True))
        # group-channel digests (a department's bot, the leading group, the office) have no person
        batch_op.add_column(sa.Column("audience", sa.String(length=20), nullable=False, server_default="person"))
        batch_op.add_column(sa.Column("department_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_digests_department_id_departments"), "departments", ["department_id"], ["id"])
        batch_op.alter_column("recipient_id", existing_type=sa.Integer(), nullable=True)

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        # a notice that concerns no task ("a person could not be reached")
        batch_op.alter_column("task_id", existing_type=sa.Integer(), nullable=True)

    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channels", sa.JSON(), nullable=False, server_default="{}"))

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("channels")

    op.execute("DELETE FROM notifications WHERE task_id IS NULL")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.alter_column("task_id", existing_type=sa.Integer(), nullable=False)

    op.execute("DELETE FROM deliveries WHERE digest_id IN (SELECT id FROM digests WHERE recipient_id IS NULL)")
    op.execute("UPDATE notifications SET digest_id = NULL WHERE digest_id IN (SELECT id FROM digests WHERE recipient_id IS NULL)")
    op.execute("DELETE FROM digests WHERE recipient_id IS NULL")
    with op.batch_alter_table("digests", schema=None) as batch_op:
        batch_op.alter_column("recipient_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f("fk_digests_department_id_departments"), type_="foreignkey")
        batch_op.drop_column("department_id")
        batch_op.drop_column("audience")
        batch_op.drop_column("delivered_via")
        batch_op.drop_column("payload")

    with op.batch_alter_table("departments", schema=None) as batch_op:
        batch_op.drop_column("notify_urls")

    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_links_plan_id"))
        batch_op.drop_index("ix_links_person_task")

    op.drop_table("links")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_task_id"))

    op.drop_table("evidence")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_task_id"))
        batch_op.drop_index("ix_requests_status_plan")

    op.drop_table("requests")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_digest_id"))

    op.drop_table("deliveries")
    # ### end Alembic commands ###

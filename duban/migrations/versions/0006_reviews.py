"""reviews (督查): reviews, review items; review links and evidence

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("ask", sa.Text(), nullable=False),
        sa.Column("scope_kind", sa.String(length=20), nullable=False),
        sa.Column("scope_values", sa.JSON(), nullable=False),
        sa.Column("reply_by", sa.Date(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answers_closed_on", sa.Date(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=200), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("wake_round", sa.Integer(), nullable=False),
        sa.Column("report_html", sa.String(length=1000), nullable=True),
        sa.Column("report_xlsx", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_reviews_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
    )
    op.create_index("ix_reviews_status_plan", "reviews", ["status", "plan_id"], unique=False)
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("done", sa.Text(), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("next_steps", sa.Text(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=True),
        sa.Column("verdict", sa.String(length=20), nullable=True),
        sa.Column("verdict_note", sa.Text(), nullable=False),
        sa.Column("verdict_by", sa.String(length=200), nullable=True),
        sa.Column("verdict_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("follow_up_milestone_id", sa.Integer(), nullable=True),
        sa.Column("follow_up_owner_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["follow_up_milestone_id"], ["milestones.id"], name=op.f("fk_review_items_follow_up_milestone_id_milestones")
        ),
        sa.ForeignKeyConstraint(["follow_up_owner_id"], ["people.id"], name=op.f("fk_review_items_follow_up_owner_id_people")),
        sa.ForeignKeyConstraint(["owner_id"], ["people.id"], name=op.f("fk_review_items_owner_id_people")),
        sa.ForeignKeyConstraint(["review_id"], ["reviews.id"], name=op.f("fk_review_items_review_id_reviews")),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name=op.f("fk_review_items_task_id_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_items")),
        sa.UniqueConstraint("review_id", "task_id", name=op.f("uq_review_items_review_id")),
    )
    op.create_index(op.f("ix_review_items_review_id"), "review_items", ["review_id"], unique=False)
    op.create_index(op.f("ix_review_items_task_id"), "review_items", ["task_id"], unique=False)
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("review_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("review_item_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_links_review_id_reviews"), "reviews", ["review_id"], ["id"])
        batch.create_foreign_key(op.f("fk_links_review_item_id_review_items"), "review_items", ["review_item_id"], ["id"])
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("review_item_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_evidence_review_item_id_review_items"), "review_items", ["review_item_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.drop_constraint(op.f("fk_evidence_review_item_id_review_items"), type_="foreignkey")
        batch.drop_column("review_item_id")
    with op.batch_alter_table("links") as batch:
        batch.drop_constraint(op.f("fk_links_review_item_id_review_items"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_links_review_id_reviews"), type_="foreignkey")
        batch.drop_column("review_item_id")
        batch.drop_column("review_id")
    op.drop_index(op.f("ix_review_items_task_id"), table_name="review_items")
    op.drop_index(op.f("ix_review_items_review_id"), table_name="review_items")
    op.drop_table("review_items")
    op.drop_index("ix_reviews_status_plan", table_name="reviews")
    op.drop_table("reviews")

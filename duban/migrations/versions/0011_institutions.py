"""institutions above plans; accounts and read-only links belong to an institution (or the province)

Every existing plan, account and read-only link joins one institution, ``default``, named after
the first plan's organization (本单位 when it has none): an installation that ran one school
keeps working as it did, and its accounts keep acting.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    institutions = op.create_table(
        "institutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_institutions")),
        sa.UniqueConstraint("code", name=op.f("uq_institutions_code")),
    )
    conn = op.get_bind()
    first = conn.execute(sa.text("SELECT organization FROM plans ORDER BY id LIMIT 1")).first()
    queries = ("SELECT 1 FROM accounts LIMIT 1", "SELECT 1 FROM dashboard_links LIMIT 1")
    used = first is not None or any(conn.execute(sa.text(q)).first() for q in queries)
    default_id = None
    if used:
        name = ((first[0] if first else "") or "").strip() or "本单位"
        op.bulk_insert(
            institutions,
            [{"id": 1, "code": "default", "name": name, "settings": {}, "active": True, "created_at": dt.datetime.now(dt.UTC)}],
        )
        default_id = 1
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('institutions', 'id'), 1)"))
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("institution_id", sa.Integer(), nullable=True))
    if default_id is not None:
        conn.execute(sa.text("UPDATE plans SET institution_id = :i"), {"i": default_id})
    with op.batch_alter_table("plans") as batch:
        batch.alter_column("institution_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(op.f("fk_plans_institution_id_institutions"), "institutions", ["institution_id"], ["id"])
        batch.create_index(op.f("ix_plans_institution_id"), ["institution_id"], unique=False)
    for table in ("accounts", "dashboard_links"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("institution_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(op.f(f"fk_{table}_institution_id_institutions"), "institutions", ["institution_id"], ["id"])
        if default_id is not None:
            conn.execute(sa.text(f"UPDATE {table} SET institution_id = :i"), {"i": default_id})  # noqa: S608 - a fixed table name


def downgrade() -> None:
    for table in ("dashboard_links", "accounts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"fk_{table}_institution_id_institutions"), type_="foreignkey")
            batch.drop_column("institution_id")
    with op.batch_alter_table("plans") as batch:
        batch.drop_index(op.f("ix_plans_institution_id"))
        batch.drop_constraint(op.f("fk_plans_institution_id_institutions"), type_="foreignkey")
        batch.drop_column("institution_id")
    op.drop_table("institutions")

"""Write intents: the writes Concord is about to make, recorded before the API call and cleared with the
batch's links, so a crash in between is recovered from instead of read back as a user's edit.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from sync.store, so this revision stays what it was when the models change.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "write_intents",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("crm_id", sa.String(255), nullable=True),
        sa.Column("erp_id", sa.String(255), nullable=True),
        sa.Column("is_create", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("base", sa.Text(), nullable=False),
        sa.Column("written", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_write_intents"),
    )
    op.create_index("ix_write_intents_crm_id_entity", "write_intents", ["crm_id", "entity"])
    op.create_index("ix_write_intents_erp_id_entity", "write_intents", ["erp_id", "entity"])


def downgrade() -> None:
    op.drop_index("ix_write_intents_erp_id_entity", table_name="write_intents")
    op.drop_index("ix_write_intents_crm_id_entity", table_name="write_intents")
    op.drop_table("write_intents")

"""The initial state store schema: links, cursors, inbox, dead letters, conflicts, runs, leases, match index.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from sync.store, so this revision stays what it was when the models change.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)
OPEN = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("crm_id", sa.String(255), nullable=False),
        sa.Column("erp_id", sa.String(255), nullable=False),
        sa.Column("crm_hash", sa.String(64), nullable=True),
        sa.Column("erp_hash", sa.String(64), nullable=True),
        sa.Column("base", sa.Text(), nullable=True),
        sa.Column("crm_updated_at", TS, nullable=True),
        sa.Column("erp_updated_at", TS, nullable=True),
        sa.Column("synced_at", TS, nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_links"),
        sa.UniqueConstraint("crm_id", "entity", name="uq_links_crm_id_entity"),
        sa.UniqueConstraint("erp_id", "entity", name="uq_links_erp_id_entity"),
    )
    op.create_table(
        "cursors",
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("epoch", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "system", "entity", name="pk_cursors"),
    )
    op.create_table(
        "inbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("object", sa.String(128), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("claimed_by", sa.String(255), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("processed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("system", "event_id", name="uq_inbox_system_event_id"),
    )
    op.create_index("ix_inbox_pending", "inbox", ["id"], sqlite_where=sa.text("processed_at IS NULL"),
                    postgresql_where=sa.text("processed_at IS NULL"))
    op.create_table(
        "dead_letters",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("error_class", sa.String(255), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("field", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", TS, nullable=False),
        sa.Column("last_failed_at", TS, nullable=False),
        sa.Column("next_retry_at", TS, nullable=True),
        sa.Column("parked", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    # At most one open dead letter per record and pipeline: a repeat failure updates it.
    op.create_index("uq_dead_letters_open", "dead_letters", ["pipeline", "system", "record_id"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index("ix_dead_letters_due", "dead_letters", ["pipeline", "next_retry_at"],
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_table(
        "conflicts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("link_id", ID, nullable=True),
        sa.Column("crm_id", sa.String(255), nullable=False),
        sa.Column("erp_id", sa.String(255), nullable=True),
        sa.Column("crm_version", sa.Text(), nullable=False),
        sa.Column("erp_version", sa.Text(), nullable=False),
        sa.Column("base", sa.Text(), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("detected_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("resolution", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_conflicts"),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], name="fk_conflicts_link_id_links", ondelete="SET NULL"),
    )
    op.create_index("uq_conflicts_open", "conflicts", ["entity", "crm_id"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_table(
        "runs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("instance", sa.String(255), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("api_calls", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_pipeline_started_at", "runs", ["pipeline", "started_at"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "match_index",
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("record_id", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entity", "system", "kind", "record_id", name="pk_match_index"),
    )
    op.create_index("ix_match_index_lookup", "match_index", ["value", "kind", "entity", "system"])


def downgrade() -> None:
    op.drop_index("ix_match_index_lookup", table_name="match_index")
    op.drop_table("match_index")
    op.drop_table("leases")
    op.drop_index("ix_runs_pipeline_started_at", table_name="runs")
    op.drop_table("runs")
    op.drop_index("uq_conflicts_open", table_name="conflicts")
    op.drop_table("conflicts")
    op.drop_index("ix_dead_letters_due", table_name="dead_letters")
    op.drop_index("uq_dead_letters_open", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_index("ix_inbox_pending", table_name="inbox")
    op.drop_table("inbox")
    op.drop_table("cursors")
    op.drop_table("links")

"""Distributed drafts: one version written by many processes, part by part
(`run.upsert_artifact` / `run.finish_artifact`); see catalog/schema.py.

Revision ID: 0004
Revises: 0003
Create Date: 2027-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME = sa.String(128)
DIGEST = sa.String(160)
PATH = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("project", NAME, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("type", NAME, nullable=False),
        sa.Column("distributed_id", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("created_at", nullable=False),
        _ts("updated_at", nullable=False),
        _ts("expires_at", nullable=False),
        sa.Column("version_id", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_drafts"),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name="fk_drafts_version_id_versions",
                                ondelete="SET NULL"),
        sa.CheckConstraint("state IN ('open', 'sealed', 'finished', 'aborted')", name="ck_drafts_state"),
    )
    op.create_index("ix_drafts_project_name_distributed_id", "drafts", ["project", "name", "distributed_id"])
    op.create_index("ix_drafts_state_expires_at", "drafts", ["state", "expires_at"])
    op.create_table(
        "draft_parts",
        sa.Column("draft_id", sa.Integer, nullable=False),
        sa.Column("part_id", sa.String(256), nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(128)),
        _ts("added_at", nullable=False),
        sa.PrimaryKeyConstraint("draft_id", "part_id", name="pk_draft_parts"),
        sa.ForeignKeyConstraint(["draft_id"], ["drafts.id"], name="fk_draft_parts_draft_id_drafts",
                                ondelete="CASCADE"),
    )
    op.create_table(
        "draft_files",
        sa.Column("draft_id", sa.Integer, nullable=False),
        sa.Column("part_id", sa.String(256), nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("draft_id", "part_id", "path", name="pk_draft_files"),
        sa.ForeignKeyConstraint(["draft_id"], ["drafts.id"], name="fk_draft_files_draft_id_drafts",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_draft_files_digest", "draft_files", ["digest"])


def downgrade() -> None:
    for table in ("draft_files", "draft_parts", "drafts"):
        op.drop_table(table)

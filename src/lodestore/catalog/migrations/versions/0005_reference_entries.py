"""Reference entries: files a version names by URI (s3://, file://, http(s)://) without
storing their bytes, with what identifies their content (see catalog/schema.py).

Revision ID: 0005
Revises: 0004
Create Date: 2027-02-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PATH = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "reference_entries",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("digest", sa.String(160)),
        sa.Column("etag", sa.String(256)),
        sa.Column("object_version", sa.String(1024)),
        sa.Column("last_modified", sa.String(64)),
        sa.PrimaryKeyConstraint("version_id", "path", name="pk_reference_entries"),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name="fk_reference_entries_version_id_versions",
                                ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("reference_entries")

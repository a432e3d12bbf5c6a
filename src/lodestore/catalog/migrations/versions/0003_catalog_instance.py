"""The catalog's identity: an instance id (a uuid made once) and a generation bumped by
every transaction that commits, deletes or purges versions. The content store records
both, so gc can refuse to sweep a store whose catalog was replaced (store/binding.py).

An existing catalog gets its id now, and generation 1 if it holds versions (0 if not).

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "catalog_instance",
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name="pk_catalog_instance"),
    )
    has_versions = op.get_bind().execute(sa.text("SELECT 1 FROM versions LIMIT 1")).first() is not None
    op.bulk_insert(table, [{"instance_id": str(uuid.uuid4()), "generation": 1 if has_versions else 0}])


def downgrade() -> None:
    op.drop_table("catalog_instance")

"""PostgreSQL catalogs: every string column compares byte-wise (COLLATE "C"), as SQLite
and Python do, whatever the server's default collation (see catalog/dialect.py); and the
draft_keys table that serialises concurrent first upserts of one draft.

On SQLite only draft_keys is new: its strings always compared byte-wise.

Revision ID: 0006
Revises: 0005
Create Date: 2027-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NAME = sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql")
DISTRIBUTED_ID = sa.String(256).with_variant(sa.String(256, collation="C"), "postgresql")

# (table, column, SQL type) of every string column as of 0005, written out so this
# revision stays what it was whatever schema.py becomes.
_STRING_COLUMNS = {
    "catalog_instance": [("instance_id", "varchar(36)")],
    "projects": [("name", "varchar(128)")],
    "artifacts": [("name", "varchar(128)"), ("type", "varchar(128)"), ("description", "text")],
    "runs": [("id", "varchar(128)"), ("name", "text"), ("group_name", "text"), ("job_type", "text"),
             ("notes", "text"), ("state", "varchar(16)"), ("host", "text")],
    "run_history": [("run_id", "varchar(128)")],
    "versions": [("digest", "varchar(160)"), ("description", "text"), ("created_by_run", "varchar(128)"),
                 ("state", "varchar(16)")],
    "alias_events": [("alias", "varchar(128)"), ("run_id", "varchar(128)")],
    "aliases": [("alias", "varchar(128)")],
    "drafts": [("project", "varchar(128)"), ("name", "varchar(128)"), ("type", "varchar(128)"),
               ("distributed_id", "varchar(256)"), ("state", "varchar(16)")],
    "manifest_entries": [("path", "text"), ("digest", "varchar(160)")],
    "reference_entries": [("path", "text"), ("uri", "text"), ("digest", "varchar(160)"), ("etag", "varchar(256)"),
                          ("object_version", "varchar(1024)"), ("last_modified", "varchar(64)")],
    "run_inputs": [("run_id", "varchar(128)")],
    "run_outputs": [("run_id", "varchar(128)")],
    "version_tags": [("tag", "varchar(128)")],
    "draft_files": [("part_id", "varchar(256)"), ("path", "text"), ("digest", "varchar(160)")],
    "draft_parts": [("part_id", "varchar(256)"), ("digest", "varchar(160)"), ("run_id", "varchar(128)")],
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in _STRING_COLUMNS.items():
            changes = ", ".join(f'ALTER COLUMN {col} TYPE {sql_type} COLLATE "C"' for col, sql_type in columns)
            op.execute(f"ALTER TABLE {table} {changes}")
    op.create_table(
        "draft_keys",
        sa.Column("project", NAME, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("distributed_id", DISTRIBUTED_ID, nullable=False),
        sa.PrimaryKeyConstraint("project", "name", "distributed_id", name="pk_draft_keys"),
    )


def downgrade() -> None:
    op.drop_table("draft_keys")
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in _STRING_COLUMNS.items():
            changes = ", ".join(f'ALTER COLUMN {col} TYPE {sql_type} COLLATE "default"' for col, sql_type in columns)
            op.execute(f"ALTER TABLE {table} {changes}")

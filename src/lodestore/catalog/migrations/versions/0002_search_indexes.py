"""Indexes for the search language's common terms.

``name=x`` across projects (the unique (project_id, name) index only helps within one
project), ``alias:x`` from the alias side (the primary key starts with artifact_id),
``run.job_type=x``. Tags (``ix_version_tags_tag``), type (``ix_artifacts_type``) and
created (``ix_versions_created_at``) were indexed from the start.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_artifacts_name", "artifacts", ["name"]),
    ("ix_aliases_alias", "aliases", ["alias"]),
    ("ix_runs_job_type", "runs", ["job_type"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)

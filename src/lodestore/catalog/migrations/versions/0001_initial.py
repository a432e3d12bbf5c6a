"""Initial catalog schema: projects, artifacts, versions, manifests, aliases and their
history, tags, runs with metric history and lineage.

Written out table by table (not ``metadata.create_all``) so this revision stays what it
was on the day it shipped, whatever ``schema.py`` becomes later.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = sa.String(128)
DIGEST = sa.String(160)
RUN_ID = sa.String(128)
PATH = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(col: str, table: str, ref: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [col], [f"{ref}.id"], name=f"fk_{table}_{col}_{ref}", ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", NAME, nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("name", name="uq_projects_name"),
    )

    op.create_table(
        "artifacts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("type", NAME, nullable=False),
        _ts("created_at", nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("retention", sa.JSON),
        sa.Column("last_index", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.UniqueConstraint("project_id", "name", name="uq_artifacts_project_id_name"),
        _fk("project_id", "artifacts", "projects", "CASCADE"),
    )
    op.create_index("ix_artifacts_type", "artifacts", ["type"])

    op.create_table(
        "runs",
        sa.Column("id", RUN_ID, nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("group_name", sa.Text),
        sa.Column("job_type", sa.Text),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer),
        _ts("created_at", nullable=False),
        _ts("finished_at"),
        _ts("heartbeat_at"),
        sa.Column("host", sa.Text),
        sa.Column("pid", sa.Integer),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.CheckConstraint("state IN ('running', 'finished', 'failed', 'crashed')", name="ck_runs_state"),
        _fk("project_id", "runs", "projects", "CASCADE"),
    )
    op.create_index("ix_runs_project_id_created_at", "runs", ["project_id", "created_at"])
    op.create_index("ix_runs_state_heartbeat_at", "runs", ["state", "heartbeat_at"])
    op.create_index("ix_runs_group_name", "runs", ["group_name"])

    op.create_table(
        "run_history",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_history"),
        _fk("run_id", "run_history", "runs", "CASCADE"),
    )
    op.create_index("ix_run_history_run_id_step", "run_history", ["run_id", "step"])

    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("artifact_id", sa.Integer, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("metadata", sa.JSON, nullable=False),
        _ts("created_at", nullable=False),
        sa.Column("created_by_run", RUN_ID),
        sa.Column("state", sa.String(16), nullable=False, server_default="live"),
        _ts("deleted_at"),
        sa.Column("ttl_seconds", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_versions"),
        sa.UniqueConstraint("artifact_id", "idx", name="uq_versions_artifact_id_idx"),
        sa.CheckConstraint("state IN ('live', 'deleted', 'broken')", name="ck_versions_state"),
        _fk("artifact_id", "versions", "artifacts", "CASCADE"),
        sa.ForeignKeyConstraint(
            ["created_by_run"], ["runs.id"], name="fk_versions_created_by_run_runs", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_versions_artifact_id_digest", "versions", ["artifact_id", "digest"])
    op.create_index("ix_versions_digest", "versions", ["digest"])
    op.create_index("ix_versions_created_at", "versions", ["created_at"])
    op.create_index("ix_versions_created_by_run", "versions", ["created_by_run"])
    op.create_index("ix_versions_state_deleted_at", "versions", ["state", "deleted_at"])

    op.create_table(
        "manifest_entries",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("path", PATH, nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("version_id", "path", name="pk_manifest_entries"),
        _fk("version_id", "manifest_entries", "versions", "CASCADE"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_manifest_entries_digest", "manifest_entries", ["digest"])

    op.create_table(
        "aliases",
        sa.Column("artifact_id", sa.Integer, nullable=False),
        sa.Column("alias", NAME, nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("artifact_id", "alias", name="pk_aliases"),
        _fk("artifact_id", "aliases", "artifacts", "CASCADE"),
        _fk("version_id", "aliases", "versions", "CASCADE"),
    )
    op.create_index("ix_aliases_version_id", "aliases", ["version_id"])

    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("artifact_id", sa.Integer, nullable=False),
        sa.Column("alias", NAME, nullable=False),
        sa.Column("from_version_id", sa.Integer),
        sa.Column("to_version_id", sa.Integer),
        sa.Column("from_idx", sa.Integer),
        sa.Column("to_idx", sa.Integer),
        sa.Column("run_id", RUN_ID),
        _ts("at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alias_events"),
        _fk("artifact_id", "alias_events", "artifacts", "CASCADE"),
        _fk("from_version_id", "alias_events", "versions", "SET NULL"),
        _fk("to_version_id", "alias_events", "versions", "SET NULL"),
        _fk("run_id", "alias_events", "runs", "SET NULL"),
    )
    op.create_index("ix_alias_events_artifact_id_id", "alias_events", ["artifact_id", "id"])

    op.create_table(
        "version_tags",
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("tag", NAME, nullable=False),
        sa.PrimaryKeyConstraint("version_id", "tag", name="pk_version_tags"),
        _fk("version_id", "version_tags", "versions", "CASCADE"),
    )
    op.create_index("ix_version_tags_tag", "version_tags", ["tag"])

    for table in ("run_inputs", "run_outputs"):
        op.create_table(
            table,
            sa.Column("run_id", RUN_ID, nullable=False),
            sa.Column("version_id", sa.Integer, nullable=False),
            _ts("at", nullable=False),
            sa.PrimaryKeyConstraint("run_id", "version_id", name=f"pk_{table}"),
            _fk("run_id", table, "runs", "CASCADE"),
            _fk("version_id", table, "versions", "CASCADE"),
        )
        op.create_index(f"ix_{table}_version_id", table, ["version_id"])


def downgrade() -> None:
    for table in (
        "run_outputs", "run_inputs", "version_tags", "alias_events", "aliases",
        "manifest_entries", "versions", "run_history", "runs", "artifacts", "projects",
    ):
        op.drop_table(table)

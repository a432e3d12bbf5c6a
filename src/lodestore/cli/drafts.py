"""lode drafts ls | show | abort: distributed drafts (versions being written by many
processes, see sdk/distributed.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import human_size, key_values, print_json, stdout, table, when

if TYPE_CHECKING:  # the door is imported when a command runs (cli/context.py)
    from lodestore.sdk.service import DraftRecord

drafts_app = typer.Typer(help="Versions being written by parallel writers (upsert_artifact).", no_args_is_help=True)
app.add_typer(drafts_app, name="drafts")


def _json(d: DraftRecord, now: datetime) -> dict:
    return {"id": d.id, "draft": d.qualified_name, "project": d.project, "artifact": d.name, "type": d.type,
            "distributed_id": d.distributed_id, "state": d.shown_state(now), "parts": d.part_count,
            "files": d.file_count, "size": d.size, "created_at": d.created_at, "updated_at": d.updated_at,
            "expires_at": d.expires_at, "version_id": d.version_id}


@drafts_app.command("ls")
def list_drafts(
    project: str | None = typer.Option(None, "--project", "-p"),
    show_all: bool = typer.Option(False, "--all", help="Finished and aborted drafts too."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Drafts still open (or expired, or being finished), newest first."""
    now = datetime.now(UTC)
    found = [d for d in context.service().drafts(project) if show_all or d.state in ("open", "sealed")]
    if as_json:
        print_json([_json(d, now) for d in found])
        return
    table(["id", "draft", "type", "state", "parts", "files", "size", "expires"],
          [[d.id, d.qualified_name, d.type, d.shown_state(now), d.part_count, d.file_count, human_size(d.size),
            when(d.expires_at)] for d in found])


@drafts_app.command("show")
def show_draft(which: str = typer.Argument(..., help="Draft id or project/artifact@distributed_id."),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """A draft and its parts (id, files, run that sent it)."""
    svc = context.service()
    d = svc.find_draft(which)
    parts = svc.draft_parts(d)
    now = datetime.now(UTC)
    if as_json:
        print_json({**_json(d, now), "parts": [
            {"part_id": p.part_id, "run_id": p.run_id, "added_at": p.added_at, "files": len(p.entries),
             "size": sum(e.size for e in p.entries), "paths": [e.path for e in p.entries]} for p in parts]})
        return
    key_values([("type", d.type), ("state", d.shown_state(now)), ("created", when(d.created_at)),
                ("expires", when(d.expires_at)), ("files", f"{d.file_count} ({human_size(d.size)})")],
               title=f"draft {d.id}: {d.qualified_name}")
    table(["part", "run", "added", "files", "size"],
          [[p.part_id, p.run_id or "-", when(p.added_at), len(p.entries), human_size(sum(e.size for e in p.entries))]
           for p in parts])


@drafts_app.command("abort")
def abort_draft(which: str = typer.Argument(..., help="Draft id or project/artifact@distributed_id.")) -> None:
    """Drop an unfinished draft; its bytes are reclaimed by the next `lode gc`."""
    svc = context.service()
    d = svc.abort_draft(svc.find_draft(which))
    stdout.print(f"aborted draft {d.id} ({d.qualified_name})", markup=False)

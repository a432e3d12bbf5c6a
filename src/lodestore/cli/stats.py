"""lode stats: what the store holds, logically and on disk, measured (sdk/lifecycle.py)."""

from __future__ import annotations

import typer

from lodestore.cli import context
from lodestore.cli.main import app
from lodestore.cli.output import human_size, key_values, print_json, table
from lodestore.sdk import lifecycle


@app.command()
def stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Logical vs stored bytes, dedup ratio, per type and per artifact, what gc would free."""
    s = lifecycle.stats(context.repo())
    if as_json:
        print_json(s)
        return
    key_values([
        ("logical", human_size(s["logical_bytes"])), ("stored", human_size(s["stored_bytes"])),
        ("saved", human_size(s["saved_bytes"])),
        ("dedup ratio", "-" if s["dedup_ratio"] is None else f"{s['dedup_ratio']:.2f}x"),
        ("soft-deleted", (f"{human_size(s['soft_deleted_logical_bytes'])} logical, "
                          f"{human_size(s['soft_deleted_exclusive_bytes'])} held only by them")),
        ("gc reclaimable", human_size(s["gc_reclaimable_bytes"])),
        ("packs / chunks / files", f"{s['packs']} / {s['chunks']} / {s['files']}"),
    ], title="store")
    table(["type", "artifacts", "versions", "logical"],
          [[t, v["artifacts"], v["versions"], human_size(v["logical_bytes"])] for t, v in sorted(s["types"].items())])
    table(["artifact", "type", "versions", "deleted", "logical", "exclusive"],
          [[a["name"], a["type"], a["versions"], a["deleted_versions"], human_size(a["logical_bytes"]),
            human_size(a["exclusive_bytes"])] for a in s["artifacts"]])

"""lode stats: what the store holds, logically and on disk, measured (sdk/accounting.py, typed StoreFigures)."""

from __future__ import annotations

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import human_size, key_values, print_json, table


def _ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


@app.command()
def stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Logical, unique and stored bytes, dedup and compression savings, per type and per
    artifact, soft-deleted bytes and what gc would free."""
    s = context.service().stats()
    if as_json:
        print_json(s.to_dict())
        return
    d = s.disk
    key_values([
        ("logical (live versions)", human_size(s.logical_bytes)),
        ("unique (distinct chunks)", human_size(s.unique_bytes)),
        ("stored, live chunks", human_size(s.live_stored_bytes)),
        ("on disk", f"{human_size(s.stored_bytes)} (packs {human_size(d.packs)}, index "
                    f"{human_size(d.index)}, catalog {human_size(d.catalog)}, tmp {human_size(d.tmp)})"),
        ("saved by dedup", human_size(s.dedup_saved_bytes)),
        ("saved by compression", human_size(s.compression_saved_bytes)),
        ("record headers", human_size(s.record_overhead_bytes)),
        ("dedup ratio", _ratio(s.dedup_ratio)),
        ("versions", f"{s.versions} ({s.broken_versions} broken), {s.deleted_versions} soft-deleted"),
        ("soft-deleted", (f"{human_size(s.soft_deleted_logical_bytes)} logical, "
                          f"{human_size(s.soft_deleted_exclusive_bytes)} stored only by them")),
        ("gc reclaimable", f"{human_size(s.gc_reclaimable_bytes)}; held back by the grace period: "
                           f"{human_size(s.gc_held_by_grace_bytes)}"),
        ("packs / chunks / files", f"{s.packs} / {s.chunks} / {s.files}"),
    ], title="store")
    table(["type", "artifacts", "versions", "logical", "stored", "saved", "dedup"],
          [[t, v.artifacts, v.versions, human_size(v.logical_bytes), human_size(v.stored_bytes),
            human_size(v.saved_bytes), _ratio(v.dedup_ratio)] for t, v in sorted(s.types.items())])
    table(["artifact", "type", "versions", "deleted", "logical", "stored", "exclusive"],
          [[a.name, a.type, a.versions, a.deleted_versions, human_size(a.logical_bytes),
            human_size(a.stored_bytes), human_size(a.exclusive_bytes)] for a in s.artifacts])

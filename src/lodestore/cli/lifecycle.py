"""rm, restore, gc, prune, retention, fsck: the lifecycle of versions and their bytes."""

from __future__ import annotations

import sys

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import human_size, key_values, print_json, stderr, stdout, table
from lodestore.errors import CorruptionError, InvalidInputError
from lodestore.names import parse_ref


def _ref(ref: str):
    r = parse_ref(ref)
    if not r.selector:
        raise InvalidInputError(f"{ref!r}: name a version, e.g. {r.project}/{r.name}:v0")
    return r


@app.command("rm")
def rm(
    refs: list[str] = typer.Argument(..., help="project/artifact:version (repeatable)."),
    permanent: bool = typer.Option(False, "--permanent", help="Erase for good (bytes go at the next gc)."),
    delete_aliases: bool = typer.Option(False, "--delete-aliases", help="Also delete versions holding aliases."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete versions: hidden and recoverable with `lode restore`, unless --permanent.

    Example: lode rm zoo/animals:v0
    """
    svc = context.service()
    done = []
    for ref in refs:
        record = svc.version(_ref(ref), include_deleted=permanent)
        name = record.qualified_name
        svc.delete(record, permanent=permanent, delete_aliases=delete_aliases)
        done.append(name)
        if not as_json:
            verb = "deleted for good" if permanent else "deleted (restore with `lode restore`)"
            stdout.print(f"{name}: {verb}", markup=False)
    if as_json:
        print_json({"deleted": done, "permanent": permanent})


@app.command()
def restore(
    ref: str = typer.Argument(..., help="project/artifact:version"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Bring back a soft-deleted version."""
    done = context.service().restore(_ref(ref))
    record, before, restored = done.version, done.was, done.restored
    if as_json:
        print_json({"restored": record.qualified_name if restored else None, "name": record.qualified_name,
                    "state": record.state, "was": before, "aliases": list(record.aliases)})
        return
    if not restored:
        stdout.print(f"{record.qualified_name} is not deleted (state: {record.state}); nothing to restore",
                     markup=False)
        return
    stdout.print(f"restored {record.qualified_name} (aliases: {', '.join(record.aliases) or '-'})", markup=False)
    if record.state == "broken":
        stderr.print(f"warning: {record.qualified_name} is broken: `lode fsck` found some of its bytes lost, so it "
                     "is never served; log the same data again and run `lode fsck --repair` to heal it",
                     markup=False)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _print_gc_plan(plan, dry_run: bool) -> None:
    """The plan, before anything changes: what goes now, what goes later, what stays why."""
    stdout.print(("would remove" if dry_run else "plan:") +
                 f" {plan.dead_files} unreferenced file(s) ({human_size(plan.dead_file_bytes)} logical), "
                 f"{plan.dead_chunks} chunk(s); retire {len(plan.delete_packs)} pack(s), "
                 f"repack {len(plan.repack)} (moving {human_size(plan.live_bytes_moved)} still in use), "
                 f"delete {len(plan.orphan_packs)} unindexed pack file(s), {len(plan.stale_tmp)} stale tmp "
                 f"folder(s)", markup=False)
    _print_bytes(plan, "frees" if not dry_run else "would free")
    sys.stdout.flush()  # the plan shows before a long execution starts, even through a pipe


def _print_bytes(plan, verb: str) -> None:
    stdout.print(f"  {verb} {human_size(max(plan.bytes_freed, 0))} on disk now"
                 + (f" (repack writes {human_size(-plan.bytes_freed)} more than it deletes now)"
                    if plan.bytes_freed < 0 else ""), markup=False)
    if plan.bytes_retired:
        stdout.print(f"  {human_size(plan.bytes_retired)} in retired packs stay {_minutes(plan.reader_grace_seconds)}"
                     " for readers that located them just now; the next gc after that deletes them",
                     markup=False)
    if plan.bytes_pending:
        stdout.print(f"  {human_size(plan.bytes_pending)} retired by an earlier gc are still inside the "
                     f"{_minutes(plan.reader_grace_seconds)} reader grace: a later gc deletes them", markup=False)
    if plan.bytes_held_by_grace:
        stdout.print(f"  held back: {human_size(plan.bytes_held_by_grace)} unreferenced but written less than "
                     f"{_minutes(plan.grace_seconds)} ago (may belong to a log in progress); a gc after that "
                     "frees them (--grace 0 if nothing is logging)", markup=False)


@app.command()
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Print the plan, change nothing."),
    grace: float | None = typer.Option(None, "--grace", help="Seconds: younger unreferenced bytes are kept "
                                       "(default $LODESTORE_GC_GRACE_SECONDS, else 600)."),
    repack_threshold: float = typer.Option(
        0.5, "--repack-threshold", min=0.0, max=1.0,
        help="Repack a pack once more than this fraction of it is dead (0: repack any pack with dead "
             "bytes, so everything unreferenced is freed; 1: never repack, only delete whole dead packs)."),
    adopt_catalog: bool = typer.Option(
        False, "--adopt-catalog",
        help="Bind the store to the current catalog.db although it is not the one the store was written "
             "with (deleted, emptied or restored from an old backup): every byte it does not reference is "
             "then garbage. Without it, gc refuses such a store (exit 4)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reclaim bytes no version references (soft-deleted versions keep theirs until purged).

    Prints its plan first, then what it did. --json: {"plan": ..., "result": ...}.
    """
    plan = context.service().gc(dry_run=dry_run, grace=grace, repack_threshold=repack_threshold,
                                on_plan=None if as_json else lambda p: _print_gc_plan(p, dry_run),
                                adopt_catalog=adopt_catalog)
    if as_json:
        result = plan.to_dict()
        planned = None if plan.planned is None else plan.planned.to_dict()
        print_json({"dry_run": dry_run, "plan": result if dry_run else planned,
                    "result": None if dry_run else result})
    elif not dry_run:
        stdout.print("done:", markup=False)
        _print_bytes(plan, "freed")


@app.command()
def prune(
    dry_run: bool = typer.Option(False, "--dry-run", "-n"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Apply every retention policy (and version TTLs): soft-delete what they drop."""

    svc = context.service()

    def show(plan) -> None:
        if as_json:
            return
        stdout.print(f"{'would delete' if dry_run else 'deleting'} {len(plan.drop)} version(s) "
                     "(soft delete: `lode restore` brings them back)", markup=False)
        if plan.drop:
            table(["version", "size", "reason", "removes aliases"],
                  [[r.qualified_name, human_size(r.size), plan.reasons[r.id],
                    ", ".join(svc.custom_aliases(r)) or "-"] for r in plan.drop])
            held = [r for r in plan.drop if svc.custom_aliases(r)]
            if held:
                stdout.print(f"{len(held)} of them hold aliases, which the delete removes (the policy has no "
                             "--keep-aliased; restoring a version does not bring its aliases back)", markup=False)

    plan = svc.prune(dry_run=dry_run, on_plan=show)
    if as_json:
        print_json({"dry_run": dry_run, "drop": plan.as_dict()})


retention_app = typer.Typer(help="Per-artifact retention policies, applied by `lode prune`.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("set")
def retention_set(
    name: str = typer.Argument(..., help="project/artifact"),
    keep_last: int | None = typer.Option(None, "--keep-last", help="Keep the N newest versions."),
    keep_aliased: bool | None = typer.Option(None, "--keep-aliased/--no-keep-aliased",
                                             help="Never drop versions holding an alias (or stop protecting them)."),
    max_age: int | None = typer.Option(None, "--max-age-days", help="Drop versions older than this."),
    no_keep_last: bool = typer.Option(False, "--no-keep-last", help="Remove the keep-last setting."),
    no_max_age: bool = typer.Option(False, "--no-max-age", help="Remove the max-age setting."),
    clear: bool = typer.Option(False, "--clear", help="Remove the whole policy."),
) -> None:
    """Change an artifact's policy: only the settings given change, the rest stay.

    Example: lode retention set zoo/animals --keep-last 5 --keep-aliased
    """
    with context.sdk_imports():
        from lodestore.sdk.service import RetentionUpdate  # noqa: PLC0415  (not with `lode`: cli/context.py)

    r = parse_ref(name)
    update = RetentionUpdate(
        keep_last=keep_last, keep_aliased=keep_aliased,
        max_age_seconds=None if max_age is None else max_age * 86400,
        unset=tuple(k for k, drop in (("keep_last", no_keep_last), ("max_age_seconds", no_max_age)) if drop))
    if clear and update != RetentionUpdate():
        raise InvalidInputError("--clear removes the whole policy; give it alone")
    policy = context.service().set_retention(r.project, r.name, update, clear=clear)
    stdout.print(f"{r.project}/{r.name}: retention {policy or 'cleared'}", markup=False)


@retention_app.command("show")
def retention_show(
    name: str | None = typer.Argument(None, help="project/artifact (default: all)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    svc = context.service()
    if name:
        r = parse_ref(name)
        rows = [(f"{r.project}/{r.name}", svc.retention(r.project, r.name))]
    else:
        rows = [(f"{a.project}/{a.name}", policy) for a, policy in svc.retentions()]
    if as_json:
        print_json({n: p for n, p in rows})
        return
    table(["artifact", "keep last", "keep aliased", "max age"], [
        [n, (p or {}).get("keep_last", "-"), (p or {}).get("keep_aliased", "-"),
         "-" if not p or p.get("max_age_seconds") is None else f"{p['max_age_seconds'] // 86400}d"]
        for n, p in rows
    ])


@app.command()
def fsck(
    repair: bool = typer.Option(False, "--repair", help="Quarantine corrupt packs, rebuild the index, "
                                "mark affected versions broken."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check every pack, chunk, index entry and manifest. Exit code 6 if new damage is found.

    Versions already marked broken by an earlier repair are listed but do not fail the check.
    """
    with context.sdk_imports():
        from lodestore.sdk.service import ADOPT_HINT  # noqa: PLC0415  (not with `lode`: cli/context.py)

    result = context.service().fsck(repair=repair)
    final = result.repaired.after if result.repaired is not None else result
    if as_json:
        print_json(result.to_dict())
    else:
        report = result.report
        key_values([
            ("packs checked", report.packs_checked), ("chunks checked", report.chunks_checked),
            ("files checked", report.files_checked),
            ("corrupt packs", ", ".join(report.corrupt_packs) or "-"),
            ("missing packs", ", ".join(report.missing_packs) or "-"),
            ("bad index entries", len(report.bad_index_entries)),
            ("lost files", len(report.bad_files) + len(result.missing_files)),
            ("affected versions", ", ".join(result.affected_versions) or "-"),
            ("known broken (earlier repair)", ", ".join(result.known_broken_versions) or "-"),
            ("bytes back (repair marks live)", ", ".join(result.healable_versions) or "-"),
            ("orphan packs (gc)", len(report.orphan_packs)),
            ("stale tmp (gc)", len(report.stale_tmp)),
        ], title="fsck: " + ("clean" if result.ok else "DAMAGE FOUND"))
        if result.catalog_mismatch:
            stderr.print(f"WRONG CATALOG: {result.catalog_mismatch}; the store holds "
                         f"{result.unreferenced_files} file(s) this catalog does not reference. "
                         f"gc and fsck --repair refuse this store: {ADOPT_HINT}", markup=False)
        if result.repaired is not None:
            rep = result.repaired
            stdout.print(f"repaired: quarantined {len(rep.store.quarantined)} pack(s), salvaged "
                         f"{rep.store.salvaged_chunks} chunk(s), forgot {len(rep.store.lost_files)} lost file(s) "
                         "(logging the data again stores them), marked broken: "
                         f"{', '.join(rep.marked_broken) or '-'}"
                         + (f"; soft-deleted, restore brings them back broken: {', '.join(rep.deleted_affected)}"
                            if rep.deleted_affected else "")
                         + (f"; bytes back, marked live: {', '.join(rep.healed)}" if rep.healed else ""),
                         markup=False)
            stdout.print("after repair: " + ("clean" if final.ok else "DAMAGE REMAINS"), markup=False)
        if final.ok and final.known_broken_versions:
            stdout.print(f"{len(final.known_broken_versions)} version(s) stay broken (their bytes are lost): "
                         "log the data again and run `lode fsck --repair`, or delete them", markup=False)
    if not final.ok:
        if final.catalog_mismatch:
            raise CorruptionError(f"fsck: the catalog is not the store's own: {final.catalog_mismatch}")
        raise CorruptionError("fsck found damage" + ("" if repair else "; `lode fsck --repair` quarantines it"))

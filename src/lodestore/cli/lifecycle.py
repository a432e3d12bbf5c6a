"""rm, restore, gc, prune, retention, fsck: the lifecycle of versions and their bytes."""

from __future__ import annotations

import typer

from lodestore.cli import context
from lodestore.cli.main import app
from lodestore.cli.output import human_size, key_values, print_json, stdout, table
from lodestore.errors import CorruptionError, InvalidInputError
from lodestore.names import parse_ref
from lodestore.sdk import lifecycle


def _ref(ref: str):
    r = parse_ref(ref)
    if not r.selector:
        raise InvalidInputError(f"{ref!r}: name a version, e.g. {r.project}/{r.name}:v0")
    return r


@app.command("rm")
def rm(
    refs: list[str] = typer.Argument(..., help="project/artifact:version (repeatable)."),  # noqa: B008
    permanent: bool = typer.Option(False, "--permanent", help="Erase for good (bytes go at the next gc)."),
    delete_aliases: bool = typer.Option(False, "--delete-aliases", help="Also delete versions holding aliases."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete versions: hidden and recoverable with `lode restore`, unless --permanent.

    Example: lode rm zoo/animals:v0
    """
    repo = context.repo()
    done = []
    for ref in refs:
        r = _ref(ref)
        record = repo.catalog.get_version(r.project, r.name, r.selector, include_deleted=permanent)
        name = record.qualified_name
        lifecycle.delete_version(repo, record, permanent=permanent, delete_aliases=delete_aliases)
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
    r = _ref(ref)
    record = lifecycle.restore_version(context.repo(), r.project, r.name, r.selector)
    if as_json:
        print_json({"restored": record.qualified_name, "aliases": list(record.aliases)})
    else:
        stdout.print(f"restored {record.qualified_name} (aliases: {', '.join(record.aliases) or '-'})",
                     markup=False)


def _print_gc_plan(plan, dry_run: bool) -> None:
    stdout.print(("would remove" if dry_run else "plan:") +
                 f" {plan.dead_files} unreferenced file(s) ({human_size(plan.dead_file_bytes)} logical), "
                 f"{plan.dead_chunks} chunk(s); delete {len(plan.delete_packs)} pack(s), "
                 f"repack {len(plan.repack)} ({human_size(plan.live_bytes_moved)} kept), "
                 f"{len(plan.orphan_packs)} orphan pack(s), {len(plan.stale_tmp)} stale tmp folder(s); "
                 f"frees {human_size(plan.bytes_freed)}", markup=False)


@app.command()
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Print the plan, change nothing."),
    grace: float | None = typer.Option(None, "--grace", help="Seconds: younger bytes are kept (default 3600)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Reclaim bytes no version references (soft-deleted versions keep theirs until purged)."""
    plan = lifecycle.gc(context.repo(), dry_run=dry_run, grace=grace,
                        on_plan=None if as_json else lambda p: _print_gc_plan(p, dry_run))
    if as_json:
        print_json(plan.as_dict())
    elif not dry_run:
        later = (f"; {len(plan.deferred_packs)} retired pack(s) stay a few minutes for readers, "
                 "deleted by the next gc") if plan.deferred_packs else ""
        stdout.print(f"done: freed {human_size(plan.bytes_freed)}{later}", markup=False)


@app.command()
def prune(
    dry_run: bool = typer.Option(False, "--dry-run", "-n"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Apply every retention policy (and version TTLs): soft-delete what they drop."""

    def show(plan) -> None:
        if as_json:
            return
        stdout.print(f"{'would delete' if dry_run else 'deleting'} {len(plan.drop)} version(s)", markup=False)
        if plan.drop:
            table(["version", "size", "reason"],
                  [[r.qualified_name, human_size(r.size), plan.reasons[r.id]] for r in plan.drop])

    plan = lifecycle.prune(context.repo(), dry_run=dry_run, on_plan=show)
    if as_json:
        print_json({"dry_run": dry_run, "drop": plan.as_dict()})


retention_app = typer.Typer(help="Per-artifact retention policies, applied by `lode prune`.", no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("set")
def retention_set(
    name: str = typer.Argument(..., help="project/artifact"),
    keep_last: int | None = typer.Option(None, "--keep-last", help="Keep the N newest versions."),
    keep_aliased: bool = typer.Option(False, "--keep-aliased", help="Never drop versions holding an alias."),
    max_age: int | None = typer.Option(None, "--max-age-days", help="Drop versions older than this."),
    clear: bool = typer.Option(False, "--clear", help="Remove the policy."),
) -> None:
    """Example: lode retention set zoo/animals --keep-last 5 --keep-aliased"""
    r = parse_ref(name)
    repo = context.repo()
    if clear:
        repo.catalog.set_retention(r.project, r.name, None)
        stdout.print(f"{r.project}/{r.name}: retention cleared", markup=False)
        return
    policy = {"keep_aliased": keep_aliased}
    if keep_last is not None:
        policy["keep_last"] = keep_last
    if max_age is not None:
        policy["max_age_seconds"] = max_age * 86400
    repo.catalog.set_retention(r.project, r.name, lifecycle.check_policy(policy))
    stdout.print(f"{r.project}/{r.name}: retention {policy}", markup=False)


@retention_app.command("show")
def retention_show(
    name: str | None = typer.Argument(None, help="project/artifact (default: all)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    repo = context.repo()
    if name:
        r = parse_ref(name)
        rows = [(f"{r.project}/{r.name}", repo.catalog.get_retention(r.project, r.name))]
    else:
        rows = [(f"{a.project}/{a.name}", repo.catalog.get_retention(a.project, a.name))
                for a in repo.catalog.list_artifacts()]
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
    """Check every pack, chunk, index entry and manifest. Exit code 6 if damage is found."""
    result = lifecycle.fsck(context.repo(), repair=repair)
    if as_json:
        print_json(result)
    else:
        key_values([
            ("packs checked", result["packs_checked"]), ("chunks checked", result["chunks_checked"]),
            ("files checked", result["files_checked"]),
            ("corrupt packs", ", ".join(result["corrupt_packs"]) or "-"),
            ("missing packs", ", ".join(result["missing_packs"]) or "-"),
            ("bad index entries", len(result["bad_index_entries"])),
            ("lost files", len(result["bad_files"]) + len(result["missing_files"])),
            ("affected versions", ", ".join(result["affected_versions"]) or "-"),
            ("orphan packs (gc)", len(result["orphan_packs"])),
            ("stale tmp (gc)", len(result["stale_tmp"])),
        ], title="fsck: " + ("clean" if result["ok"] else "DAMAGE FOUND"))
        if repair:
            rep = result["repaired"]
            stdout.print(f"repaired: quarantined {len(rep['quarantined'])} pack(s), salvaged "
                         f"{rep['salvaged_chunks']} chunk(s), marked broken: "
                         f"{', '.join(rep['marked_broken']) or '-'}", markup=False)
    if not result["ok"] and not repair:
        raise CorruptionError("fsck found damage; `lode fsck --repair` quarantines it")

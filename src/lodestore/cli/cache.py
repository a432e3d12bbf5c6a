"""lode cache ls | cleanup | verify: the download cache (sdk/cache.py)."""

from __future__ import annotations

import time

import typer

from lodestore.cli import context
from lodestore.cli.app import app
from lodestore.cli.output import human_size, print_json, stdout, table
from lodestore.errors import CorruptionError

cache_app = typer.Typer(help="The download cache (hard-link sources), least recently used first.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _when(t: float) -> str:
    return "-" if not t else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


@cache_app.command("ls")
def ls(as_json: bool = typer.Option(False, "--json")) -> None:
    """Cached files, least recently used first, with the total."""
    svc = context.service()
    items = svc.cache_entries()
    cap = svc.cache_max_bytes()
    if as_json:
        print_json({"total_bytes": sum(e.size for e in items), "max_bytes": cap, "entries": [
            {"digest": e.digest, "size": e.size, "last_used": e.last_used, "links": e.links} for e in items]})
        return
    limit = f"cap {human_size(cap)}" if cap is not None else "no cap"
    table(["digest", "size", "last used", "links"],
          [[e.digest[:16], human_size(e.size), _when(e.last_used), e.links] for e in items],
          title=f"cache: {len(items)} files, {human_size(sum(e.size for e in items))} "
                f"({limit}, $LODESTORE_CACHE_MAX_BYTES)")


@cache_app.command("cleanup")
def cleanup(
    max_size: str = typer.Argument(..., help="Keep at most this much, e.g. 1GB, 500MB, 0."),
    dry_run: bool = typer.Option(False, "--dry-run", "-n"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Evict least recently used files until the cache fits (downloads keep their links)."""
    evicted = context.service().cache_cleanup(max_size, dry_run=dry_run)
    freed = sum(e.size for e in evicted)
    if as_json:
        print_json({"dry_run": dry_run, "evicted": [e.digest for e in evicted], "freed_bytes": freed})
    else:
        stdout.print(f"{'would evict' if dry_run else 'evicted'} {len(evicted)} file(s), {human_size(freed)}",
                     markup=False)


@cache_app.command("verify")
def verify(
    fix: bool = typer.Option(False, "--fix", help="Remove bad copies (written again on next use)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Check every cached copy against its digest. Exit code 6 if a bad one is kept."""
    bad = context.service().cache_verify(fix=fix)
    if as_json:
        print_json({"bad": [{"digest": e.digest, "problem": why} for e, why in bad], "fixed": fix})
    else:
        for e, why in bad:
            stdout.print(f"{e.digest[:16]}: {why}" + (" (removed)" if fix else ""), markup=False)
        stdout.print(f"{len(bad)} bad cached file(s)", markup=False)
    if bad and not fix:
        raise CorruptionError(f"{len(bad)} cached file(s) are bad; `lode cache verify --fix` removes them")

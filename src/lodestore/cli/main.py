"""`lode`: the command line. Each group of commands lives in its own module and registers
itself on `app`; errors become one red line and a stable exit code (errors.py), and so do
the operating system's refusals (no permission, no such folder, disk full, ...)."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from lodestore.cli import context
from lodestore.cli.output import stderr
from lodestore.config import checked_root
from lodestore.errors import OS_ERROR_EXIT_CODE, CorruptionError, LodestoreError, is_database_damage

app = typer.Typer(
    name="lode",
    help="lodestore: versioned, deduplicated artifacts for machine learning, local first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _global(
    # str, not Path: Path("") is "." and an empty --root must be told apart to be refused
    root: Optional[str] = typer.Option(
        None, "--root", envvar="LODESTORE_DIR", help="Store folder (default: $LODESTORE_DIR, else ~/.lodestore)."
    ),
) -> None:
    context.state["root"] = None if root is None else Path(checked_root(root, "--root"))


def _register() -> None:
    from lodestore.cli import aliases, artifacts, demo  # noqa: F401  (modules register commands)

    for optional in ("lifecycle", "lineage", "stats", "cache"):
        try:
            __import__(f"lodestore.cli.{optional}")
        except ModuleNotFoundError as e:
            if e.name != f"lodestore.cli.{optional}":
                raise


def main(argv: list[str] | None = None) -> None:
    _register()
    try:
        # In non-standalone mode Typer *returns* the code of an Exit (and turns Ctrl-C
        # into Exit(130)) instead of raising it: a dropped return value exited 0.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            if code == 130:
                stderr.print("aborted")
            sys.exit(code)
    except LodestoreError as e:
        stderr.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        sys.exit(e.exit_code)
    except OSError as e:
        stderr.print(f"[red]error:[/red] {escape(describe_os_error(e))}", highlight=False)
        sys.exit(OS_ERROR_EXIT_CODE)
    except (typer.Abort, KeyboardInterrupt):
        stderr.print("aborted")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except _usage_errors() as e:  # usage errors carry their own exit code and message
        show = getattr(e, "show", None)
        if callable(show):
            show()
        else:
            stderr.print(f"[red]error:[/red] {e}", highlight=False, markup=False)
        sys.exit(getattr(e, "exit_code", 2))
    except Exception as e:
        if is_database_damage(e):  # a damage the catalog and index checks did not name
            stderr.print(f"[red]error:[/red] {escape(str(getattr(e, 'orig', e)))}: a database of the store is "
                         "corrupted; run `lode fsck` (index.db is rebuilt by `lode fsck --repair`, catalog.db "
                         "must come from a backup)", highlight=False)
            sys.exit(CorruptionError.exit_code)
        text = describe_database_refusal(e)
        if text is None:
            raise  # a bug: the traceback is what a report needs
        stderr.print(f"[red]error:[/red] {escape(text)}", highlight=False)
        sys.exit(OS_ERROR_EXIT_CODE)


_HINTS = {
    errno.EACCES: "no permission",
    errno.EPERM: "not permitted",
    errno.ENOSPC: "the disk is full; free space and retry (see `lode cache cleanup`, `lode gc`)",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.ENAMETOOLONG: "a file or folder name is too long for this file system",
    errno.EEXIST: "a file is in the way where a folder is needed",
    errno.ENOTDIR: "a file is in the way where a folder is needed",
}


def describe_os_error(e: OSError) -> str:
    """One line: what failed, on which path, and what to do about it where that is clear."""
    what = e.strerror or str(e)
    hint = _HINTS.get(e.errno or -1)
    paths = " -> ".join(str(p) for p in (e.filename, e.filename2) if p is not None)
    text = f"{paths}: {what}" if paths else what
    if hint and hint.lower() not in what.lower():
        text += f" ({hint})"
    return text


# SQLite's primary result codes for refusals of the operating system, not bugs: SQLITE_PERM,
# SQLITE_BUSY, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
_SQLITE_REFUSALS = {3: "no permission", 5: "another process holds the database for too long",
                    8: "the database is read-only here (no permission to write the store?)",
                    10: "disk I/O error", 13: "the disk is full", 14: "cannot open the database file"}


def describe_database_refusal(e: BaseException) -> str | None:
    """One line for a SQLite error that is the system's refusal (raw, or wrapped by
    SQLAlchemy in `.orig`); None for anything else."""
    import sqlite3

    orig = getattr(e, "orig", e)
    code = getattr(orig, "sqlite_errorcode", None)
    if not isinstance(orig, sqlite3.Error) or code is None or code & 0xFF not in _SQLITE_REFUSALS:
        return None
    return f"the store's database refused: {orig} ({_SQLITE_REFUSALS[code & 0xFF]})"


def _usage_errors() -> tuple[type[Exception], ...]:
    """Click's exception base: recent Typer vendors Click as `typer._click` (its errors
    derive from `typer.TyperException`, not `click.ClickException`), older Typer uses Click."""
    kinds: list[type[Exception]] = []
    if hasattr(typer, "TyperException"):
        kinds.append(typer.TyperException)
    try:
        import click

        kinds.append(click.ClickException)
    except ImportError:  # pragma: no cover - Typer without Click
        pass
    return tuple(kinds)

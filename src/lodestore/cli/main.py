"""`lode`: the command line. Each group of commands lives in its own module and registers
itself on `app` (cli/app.py); errors become one red line and a stable exit code
(errors.py), and so do the operating system's refusals (no permission, no such folder,
disk full, ...)."""

from __future__ import annotations

import errno
import sqlite3
import sys

import typer

# The command modules register their commands on `app` as they are imported, in this
# order, which is the order of `lode --help` (hence not sorted).
# isort: off
from lodestore.cli import (  # noqa: F401
    aliases, artifacts, demo, lifecycle, lineage, stats, cache, drafts, transfer, remote, db, ui,
)
# isort: on
from lodestore.cli.app import app
from lodestore.cli.output import error_line, stderr
from lodestore.errors import OS_ERROR_EXIT_CODE, CorruptionError, LodestoreError, is_database_damage


def main(argv: list[str] | None = None) -> None:
    try:
        # In non-standalone mode Typer *returns* the code of an Exit (and turns Ctrl-C
        # into Exit(130)) instead of raising it: a dropped return value exited 0.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            if code == 130:
                stderr.print("aborted")
            sys.exit(code)
    except LodestoreError as e:
        error_line(str(e))
        sys.exit(e.exit_code)
    except OSError as e:
        error_line(describe_os_error(e))
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
            error_line(str(e))
        sys.exit(getattr(e, "exit_code", 2))
    except Exception as e:
        if is_database_damage(e):  # a damage the catalog and index checks did not name
            error_line(f"{getattr(e, 'orig', e)}: a database of the store is corrupted; run `lode fsck` "
                       "(index.db is rebuilt by `lode fsck --repair`, catalog.db must come from a backup)")
            sys.exit(CorruptionError.exit_code)
        text = describe_database_refusal(e)
        if text is None:
            raise  # a bug: the traceback is what a report needs
        error_line(text)
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
        # Imported only here, on a usage error: importing Click costs 6-9 ms of every `lode`
        # start (python -X importtime, typer 0.29), and recent Typer does not load it.
        import click  # noqa: PLC0415

        kinds.append(click.ClickException)
    except ImportError:  # pragma: no cover - Typer without Click
        pass
    return tuple(kinds)


if __name__ == "__main__":  # python -m lodestore.cli.main
    main()

"""Terminal feedback: progress bars on a terminal, silence when piped, notices on stderr."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from lodestore import settings

stderr = Console(stderr=True)
QUIET_ENV = settings.QUIET


def interactive() -> bool:
    return sys.stderr.isatty() and not settings.quiet()


def notice(message: str) -> None:
    """A one-line message for the person at the terminal (never on stdout, which may be JSON)."""
    if not settings.quiet():
        stderr.print(f"[dim]lodestore:[/dim] {escape(message)}", highlight=False)


@contextlib.contextmanager
def byte_progress(description: str, total: int) -> Iterator:
    """Yield a callback taking a byte count; draws a bar only on an interactive terminal
    and only for transfers big enough to be worth watching."""
    if not interactive() or total < 32 * 1024 * 1024:
        yield lambda n: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=stderr, transient=True,
    )
    with progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)

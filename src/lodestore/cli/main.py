"""`lode`: the command line. Each group of commands lives in its own module and registers
itself on `app`; errors become one red line and a stable exit code (errors.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from lodestore.cli import context
from lodestore.cli.output import stderr
from lodestore.errors import LodestoreError

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
    root: Optional[Path] = typer.Option(
        None, "--root", envvar="LODESTORE_DIR", help="Store folder (default: $LODESTORE_DIR, else ~/.lodestore)."
    ),
) -> None:
    context.state["root"] = root


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
        app(args=argv, standalone_mode=False)
    except LodestoreError as e:
        stderr.print(f"[red]error:[/red] {escape(str(e))}", highlight=False)
        sys.exit(e.exit_code)
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

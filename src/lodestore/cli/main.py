"""`lode`: the command line. Each group of commands lives in its own module and registers
itself on `app`; errors become one red line and a stable exit code (errors.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

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
        stderr.print(f"[red]error:[/red] {e}", highlight=False)
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        stderr.print("aborted")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # click usage errors carry their own exit code and message
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise

"""The `lode` Typer application and its global options (--root; --remote, --store,
--catalog for a team pair). Each command module
(artifacts, aliases, lifecycle, ...) imports `app` from here and registers its commands
on it; cli/main.py imports those modules and runs the app, so nothing imports main."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lodestore import settings
from lodestore.cli import context
from lodestore.config import checked_root

app = typer.Typer(
    name="lode",
    help="lodestore: versioned, deduplicated artifacts for machine learning, local first.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _global(
    ctx: typer.Context,
    # str, not Path: Path("") is "." and an empty --root must be told apart to be refused
    root: Optional[str] = typer.Option(  # noqa: UP045  (Typer reads the annotation at run time)
        None, "--root", envvar=settings.ROOT, help="Store folder (default: $LODESTORE_DIR, else ~/.lodestore)."
    ),
    remote: Optional[str] = typer.Option(  # noqa: UP045
        None, "--remote", envvar=settings.REMOTE, help="Use a named team store (lode remote add) instead."
    ),
    store: Optional[str] = typer.Option(  # noqa: UP045
        None, "--store", envvar=settings.STORE, help="Team content store: s3://bucket/prefix."
    ),
    catalog: Optional[str] = typer.Option(  # noqa: UP045
        None, "--catalog", envvar=settings.CATALOG, help="Team catalog: postgresql://user@host/db."
    ),
) -> None:
    # Options read from their variables are left to sdk/locations.py, which reads the same
    # variables: only what the command line says overrides them (a --root from
    # $LODESTORE_DIR is the default folder, and must not hide $LODESTORE_STORE/CATALOG;
    # an explicit --root is that embedded store).
    def given(name: str, value: str | None) -> str | None:
        # by name: Typer ships its own copy of click, whose enum is not click's
        source = ctx.get_parameter_source(name)
        return None if source is not None and source.name == "ENVIRONMENT" else value

    root = given("root", root)
    context.state["root"] = None if root is None else Path(checked_root(root, "--root"))
    context.team.update(remote=given("remote", remote) or None, store=given("store", store) or None,
                        catalog=given("catalog", catalog) or None)

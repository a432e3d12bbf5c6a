"""The `lode` Typer application and its global options (--root; --remote, --store,
--catalog for a team pair). Each command module
(artifacts, aliases, lifecycle, ...) imports `app` from here and registers its commands
on it; cli/main.py imports those modules and runs the app, so nothing imports main."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
import typer.core

from lodestore import settings
from lodestore.cli import context
from lodestore.config import checked_root

try:  # Typer >= 0.2x coerces every value given to a command through a Pydantic TypeAdapter
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
except ImportError:  # pragma: no cover - an older Typer coerces with Click's types: nothing to skip
    RuntimeParam = None  # type: ignore[assignment, misc]


if RuntimeParam is not None and getattr(typer.core, "build_runtime_param", None) is build_runtime_param:

    class _AsGiven(RuntimeParam):  # type: ignore[misc, valid-type]
        """A `str` or `bool` value taken as the command line gave it: what Typer's Pydantic
        adapters for `str` and `bool` return for a value of that type (typer/_adapters.py).
        Typer builds an adapter for each parameter a command is given, and importing
        Pydantic for that cost ~50 ms of every `lode ls` (pydantic, pydantic_core,
        annotated_types: python -X importtime, 2-core VM), a third of its start-up budget.
        Any other value (a string for a bool, bytes from a caller of `app`) still goes
        through Typer's own adapter, built then."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if type(value) is self.annotation:
                return value
            return build_runtime_param(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)

    def _runtime_param(descriptor: TypeDescriptor) -> Any:
        """Typer's coercion for a parameter, `_AsGiven` for a plain str or bool."""
        if (descriptor.annotation in (str, bool) and descriptor.file_annotation is None
                and descriptor.parameter_info.parser is None):
            return _AsGiven(descriptor.parameter_info, descriptor.annotation)
        return build_runtime_param(descriptor)

    typer.core.build_runtime_param = _runtime_param  # what _TyperParameter.get_runtime_param calls

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

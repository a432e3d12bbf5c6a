"""lode ui: the web page (lodestore/web/)."""

from __future__ import annotations

import typer

from lodestore.cli import context
from lodestore.cli.app import app


@app.command()
def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless you say otherwise)."),
    port: int = typer.Option(23300, "--port", help="Port (0: any free one)."),
    read_only: bool = typer.Option(False, "--read-only", help="Refuse every edit."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
) -> None:
    """Serve a local web page to browse, search, compare and curate artifacts.

    Prints a URL with a one-time token (it becomes a cookie); nothing opens unless --open.
    Example: lode ui --read-only
    """
    # Imported here: Starlette and uvicorn cost ~0.1 s, which no other command should pay.
    from lodestore.web.server import serve  # noqa: PLC0415

    if not 0 <= port <= 65535:
        raise typer.BadParameter("port must be between 0 and 65535", param_hint="--port")
    serve(context.service(), host=host, port=port, read_only=read_only, open_browser=open_browser)

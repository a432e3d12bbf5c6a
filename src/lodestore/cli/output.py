"""How the CLI prints: Rich tables for people, `--json` for programs, sizes humanised."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lodestore.json_values import finite_json

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A Rich console made on its first use: `lode --help` and usage errors print through
    Typer, not Rich, and importing Rich's console, table and markup costs ~20 ms of every
    start (python -X importtime, 2-core VM), an eighth of the `lode --help` budget."""

    def __init__(self, *, stderr: bool):
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console  # noqa: PLC0415  (imported on first print: see the class)

            # soft_wrap: long lines (paths, digests, error messages) stay whole for grep and logs
            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return getattr(self._console, name)


stdout = _LazyConsole(stderr=False)
stderr = _LazyConsole(stderr=True)


def escape(text: str) -> str:
    """Rich's markup escape (a file named "[b]x" prints as itself), imported when used."""
    from rich.markup import escape as rich_escape  # noqa: PLC0415  (Rich on first print: see _LazyConsole)

    return rich_escape(text)


def error_line(text: str) -> None:
    """The one red line a failed command prints (plain text, never read as markup)."""
    stderr.print(f"[red]error:[/red] {escape(text)}", highlight=False)


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def when(dt: datetime | None) -> str:
    if dt is None:
        return "-"
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _default(o: Any) -> Any:
    if isinstance(o, datetime):
        return o.isoformat()
    if is_dataclass(o):
        return asdict(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def print_json(data: Any) -> None:
    """Valid JSON, always: a NaN or infinity read from a row written before such values
    were stored as null prints as null (JSON has no such numbers)."""
    sys.stdout.write(_json_text(data) + "\n")


def print_json_list(items: Iterable[Any], page: int = 1000) -> None:
    """What `print_json(list(items))` prints, encoded and written `page` items at a time:
    a listing of a million files is never held whole (a list of them cost ~2 KB a file)."""
    first = True
    for chunk in _pages(items, page):
        text = _json_text(chunk)  # "[\n  item,\n  item\n]": the items' lines, as in the whole list
        sys.stdout.write(("[\n" if first else ",\n") + text[2:-2])
        first = False
    sys.stdout.write("[]\n" if first else "\n]\n")


def print_json_with_lists(head: dict[str, Any], lists: Iterable[tuple[str, Iterable[Any]]],
                          page: int = 1000) -> None:
    """What `print_json({**head, key: list(items), ...})` prints for the (key, items) of
    `lists`, each list encoded and written `page` items at a time (`lode diff --json` of
    100,000 changed files)."""
    text = _json_text(head)  # "{\n  ...\n}" (or "{}")
    sys.stdout.write(text[:-2] if head else "{")
    first_key = not head
    for key, items in lists:
        sys.stdout.write(("\n" if first_key else ",\n") + "  " + json.dumps(key) + ": ")
        first_key = False
        first = True
        for chunk in _pages(items, page):
            lines = _json_text(chunk)[2:-2].split("\n")  # the items' lines, one level in
            sys.stdout.write(("[\n" if first else ",\n") + "\n".join("  " + line for line in lines))
            first = False
        sys.stdout.write("[]" if first else "\n  ]")
    sys.stdout.write("}\n" if first_key else "\n}\n")


def _pages(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    page: list[Any] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


def _json_text(data: Any) -> str:
    """print_json's text without the final newline."""
    plain = finite_json(json.loads(json.dumps(data, default=_default)))
    return json.dumps(plain, indent=2, sort_keys=False, allow_nan=False)


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    from rich.table import Table  # noqa: PLC0415  (Rich on first print: see _LazyConsole)
    from rich.text import Text  # noqa: PLC0415

    t = Table(title=Text(title) if title else None, show_edge=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        # Text, not str: a cell is data (a file named "[b]x", metadata "[/x]"), never Rich markup
        t.add_row(*[Text("" if v is None else str(v)) for v in r])
    stdout.print(t)


def key_values(pairs: list[tuple[str, Any]], title: str | None = None) -> None:
    if title:
        stdout.print(f"[bold]{escape(title)}[/bold]")
    width = max(len(k) for k, _ in pairs) + 1
    for k, v in pairs:
        stdout.print(f"  {k + ':':<{width}} {v}", markup=False)

"""Reading a store on media this process cannot write.

A store is often read where nobody may write it: a read-only mount, a file-system
snapshot, a colleague's store that is readable but not ours to change. Reads must work
there and create nothing (no lock file, tmp/, cache/ or staging/ folder). The hard part
is SQLite: both databases (catalog.db, store/index.db) are in WAL mode, and a WAL reader
normally creates and writes the -shm (shared-memory) file beside the database, so a
plain open fails in a folder it cannot write.

How a database is opened, decided per file from its folder (`sqlite_read_only_query`):

- **The folder is writable**: normally, read-write (anything else would be refused
  later, by SQLite, in a less clear way).
- **Not writable, and a -wal file is beside the database**: ``mode=ro``. The -wal file
  exists while some connection has the database open (a writer on a mount that can
  write it: the colleague's case) and after a crash, and it may hold commits not yet in
  the main file. ``mode=ro`` reads them, through the -shm file the writer keeps, and
  sees the writer's later commits too (SQLite 3.22+). ``immutable=1`` would ignore the
  WAL and read an older state, or miss whole tables. A -wal file with no -shm (a
  snapshot taken after a crash) cannot be read here: SQLite says it cannot open the
  file; open the store once where it is writable.
- **Not writable and no -wal file**: ``immutable=1``. Nobody has the database open (the
  last connection to close folds the WAL into the main file and removes it), so the
  main file is the whole state; ``mode=ro`` cannot open it at all (it would have to
  create the -shm). immutable tells SQLite that nobody changes the file: no locks, no
  -shm. Right for media nobody writes (a read-only mount, a snapshot). The one risk is a
  writer on another mount starting while this command reads, which could fold its
  commits into the main file under it (a busy WAL does so after ~1,000 pages, and at its
  last close): the read may then fail; run the command again.

The URIs are built from parts (`sqlite_file_uri`), never by pasting a path into a
string: a '?', '#' or '%' in a folder name would otherwise be read as URI syntax.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, urlencode


def writable_folder(folder: Path) -> bool:
    """Whether this process may create files in `folder` (False on a read-only mount,
    even for root: access(2) answers EROFS there)."""
    return os.access(folder, os.W_OK | os.X_OK)


def sqlite_read_only_query(db_path: Path) -> dict[str, str] | None:
    """The URI parameters to open `db_path` with when its folder cannot be written
    (see the module docstring for which and why); None when it can (open normally)."""
    db_path = Path(db_path)
    if writable_folder(db_path.parent):
        return None
    if os.path.exists(f"{db_path}-wal"):
        return {"mode": "ro"}
    return {"immutable": "1"}


def sqlite_uri_path(db_path: Path) -> str:
    """`db_path` as the path part of a SQLite ``file:`` URI, every character that is
    URI syntax ('?', '#', '%', spaces, ...) percent-encoded."""
    return "file:" + quote(str(Path(db_path).resolve()), safe="/")


def sqlite_file_uri(db_path: Path, query: dict[str, str]) -> str:
    """A SQLite ``file:`` URI for `db_path` with `query` (for sqlite3.connect(uri=True))."""
    return f"{sqlite_uri_path(db_path)}?{urlencode(query)}"

"""Where a store lives: the embedded default (a local folder holding both foundations) or
a team pair (an S3-compatible bucket for the bytes, PostgreSQL for the catalog, or any mix
of the two with local parts), and the named remotes that spell a pair with one word.

Precedence, highest first: arguments (``init(store=..., catalog=...)``, ``--store``,
``--catalog``; a store folder named alone, ``init(root=DIR)`` or ``lode --root DIR``,
is that embedded store), a named remote (``remote=``, ``--remote``, ``$LODESTORE_REMOTE``), the
variables ``$LODESTORE_STORE`` / ``$LODESTORE_CATALOG``, then the embedded default
(``$LODESTORE_DIR``, else ``~/.lodestore``: ``store/`` and ``catalog.db`` inside).

A team pair still has a local side: a folder under the local root, one per pair, for
what a machine keeps for itself (the S3 store's index and pack cache, the download
cache, staging). It is never the embedded store's own folder, so a team pair and the
embedded store never share a content store bound to another catalog.

Remotes are a client setting, like git's: ``<local root>/remotes.json``, written whole
(temp file + rename). A catalog URL's password is shown masked wherever it is printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lodestore import settings
from lodestore.config import resolve_root
from lodestore.errors import InvalidInputError, NotFoundError
from lodestore.names import validate_name

REMOTES_FILE = "remotes.json"
# S3 bucket names: 3-63 characters of lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
CATALOG_SCHEMES = ("postgresql", "postgresql+psycopg", "sqlite")


@dataclass(frozen=True)
class Location:
    """One store, resolved: its local folder and, for a team pair, the URLs of its parts.

    `store_url` None: the content store is `root/store`; `catalog_url` None: the catalog
    is `root/catalog.db`. For a team pair `root` is that pair's local side."""

    root: Path
    store_url: str | None = None
    catalog_url: str | None = None
    remote: str | None = None  # the remote's name, when it was named

    @property
    def embedded(self) -> bool:
        return self.store_url is None and self.catalog_url is None

    def describe_catalog(self) -> str:
        if self.catalog_url is None:
            return str(self.root / "catalog.db")
        return mask_password(self.catalog_url)

    def describe(self) -> str:
        """For messages: the folder, or the pair with the password masked."""
        if self.embedded:
            return str(self.root)
        store = self.store_url or str(self.root / "store")
        catalog = self.describe_catalog()
        name = f"remote {self.remote!r}: " if self.remote else ""
        return f"{name}store {store}, catalog {catalog}"


@dataclass(frozen=True)
class Remote:
    """A named team pair (`lode remote add`)."""

    name: str
    store: str | None
    catalog: str | None

    def to_dict(self, reveal: bool = False) -> dict[str, str | None]:
        catalog = self.catalog if reveal or self.catalog is None else mask_password(self.catalog)
        return {"name": self.name, "store": self.store, "catalog": catalog}


def resolve_location(root: str | os.PathLike[str] | None = None, *, store: str | None = None,
                     catalog: str | None = None, remote: str | None = None) -> Location:
    """The store these settings name (see the module docstring for the precedence)."""
    local_root = resolve_root(root)
    if root is not None and store is None and catalog is None and remote is None:
        # A store folder named in the call (`init(root=DIR)`, `lode --root DIR`) is that
        # embedded store: the team variables of the environment do not redirect it.
        return Location(local_root)
    remote = remote or settings.remote()
    named: Remote | None = None
    if remote is not None and (store is None or catalog is None):
        named = get_remote(local_root, remote)
    store = store or (named.store if named else None) or settings.store_url()
    catalog = catalog or (named.catalog if named else None) or settings.catalog_url()
    store = checked_store_url(store) if store is not None else None
    catalog = checked_catalog_url(catalog) if catalog is not None else None
    if store is None and catalog is None:
        return Location(local_root)
    return Location(_local_side(local_root, store, catalog), store, catalog, named.name if named else None)


def _local_side(local_root: Path, store: str | None, catalog: str | None) -> Path:
    key = hashlib.sha256(f"{store or ''}\n{catalog or ''}".encode()).hexdigest()[:16]
    return local_root / "team" / key


def checked_store_url(url: str) -> str:
    """`s3://bucket[/prefix]` or a local folder (a path or `file://` URL), canonical."""
    text = url.strip()
    if not text:
        raise InvalidInputError("the store is empty; name an s3://bucket/prefix or a folder")
    if text.startswith("s3://"):
        parts = urlsplit(text)
        if not _BUCKET.match(parts.netloc or ""):
            raise InvalidInputError(f"not an S3 bucket name in {url!r}: 3-63 lowercase letters, digits, dots, hyphens")
        prefix = parts.path.strip("/")
        if parts.query or parts.fragment or any(p in ("", ".", "..") for p in prefix.split("/") if prefix):
            raise InvalidInputError(f"not a store location: {url!r} (use s3://bucket/prefix)")
        return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"
    if "://" in text and not text.startswith("file://"):
        raise InvalidInputError(f"unsupported store location {url!r}: use s3://bucket/prefix or a local folder")
    path = Path(text[len("file://"):] if text.startswith("file://") else text).expanduser().resolve()
    return str(path)


def checked_catalog_url(url: str) -> str:
    """A PostgreSQL URL (`postgresql://user@host/db`) or a SQLite one (`sqlite:///path`)."""
    text = url.strip()
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme not in CATALOG_SCHEMES:
        raise InvalidInputError(f"unsupported catalog {mask_password(text)!r}: use postgresql://user@host/db "
                                "or sqlite:///path/catalog.db")
    if scheme == "sqlite" and not text.startswith("sqlite:///"):
        raise InvalidInputError(f"a SQLite catalog is a file: sqlite:///path/catalog.db, not {text!r}")
    return text


def mask_password(url: str) -> str:
    """The URL with its password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# --- named remotes ----------------------------------------------------------------------
def list_remotes(local_root: Path) -> list[Remote]:
    path = local_root / REMOTES_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise InvalidInputError(f"{path} is not readable JSON ({e}); fix or remove it") from None
    try:
        return [Remote(name, entry.get("store"), entry.get("catalog")) for name, entry in sorted(data.items())]
    except AttributeError:
        raise InvalidInputError(f"{path} is not a remotes file (an object of names); fix or remove it") from None


def get_remote(local_root: Path, name: str) -> Remote:
    for remote in list_remotes(local_root):
        if remote.name == name:
            return remote
    known = ", ".join(r.name for r in list_remotes(local_root)) or "none"
    raise NotFoundError(f"no remote named {name!r} (known: {known}); add one with "
                        "`lode remote add NAME --store s3://... --catalog postgresql://...`")


def add_remote(local_root: Path, name: str, store: str | None, catalog: str | None,
               replace: bool = False) -> Remote:
    validate_name(name, "remote name")
    if store is None and catalog is None:
        raise InvalidInputError("a remote needs --store, --catalog or both")
    remote = Remote(name, checked_store_url(store) if store else None,
                    checked_catalog_url(catalog) if catalog else None)
    remotes = {r.name: r for r in list_remotes(local_root)}
    if name in remotes and not replace:
        raise InvalidInputError(f"remote {name!r} exists; remove it first or pass --replace")
    remotes[name] = remote
    _write(local_root, remotes)
    return remote


def remove_remote(local_root: Path, name: str) -> Remote:
    remotes = {r.name: r for r in list_remotes(local_root)}
    if name not in remotes:
        get_remote(local_root, name)  # raises, listing the known ones
    removed = remotes.pop(name)
    _write(local_root, remotes)
    return removed


def _write(local_root: Path, remotes: dict[str, Remote]) -> None:
    """The whole file, written under a temp name and renamed (never half a file); private
    to the user, since a catalog URL may carry a password."""
    local_root.mkdir(parents=True, exist_ok=True)
    data = {r.name: {"store": r.store, "catalog": r.catalog} for r in remotes.values()}
    fd, tmp = tempfile.mkstemp(dir=local_root, prefix=".remotes-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, local_root / REMOTES_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Every error lodestore raises on purpose.

Each class carries a stable CLI exit code, and where a standard exception fits too
the class has two parents (like huggingface_hub's `LocalEntryNotFoundError`), so a
caller can catch either `FileNotFoundError` or `lodestore.NotFoundError`.
"""

from __future__ import annotations

# What `lode` exits with when the operating system refuses a file operation (no
# permission, no such folder, a file in the way, disk full, name too long): the SDK lets
# those OSErrors through as they are, the CLI prints them as one line. (1 is any other
# LodestoreError without a code of its own, 130 an interrupt.)
OS_ERROR_EXIT_CODE = 9


class LodestoreError(Exception):
    """Base of every lodestore error; `exit_code` is what the CLI exits with."""

    exit_code = 1


class InvalidNameError(LodestoreError, ValueError):
    """A project, artifact, alias, tag or entry name breaks the naming rules."""

    exit_code = 2


class InvalidInputError(LodestoreError, ValueError):
    """An argument is malformed (bad JSON, a directory where a file is needed, ...)."""

    exit_code = 2
    column: int | None = None  # 1-based column of a query text where it went wrong, when known


class NotFoundError(LodestoreError, LookupError):
    """An artifact, version, alias, run or entry does not exist; the message lists what does."""

    exit_code = 3


class SourceFileNotFoundError(NotFoundError, FileNotFoundError):
    """A local path given to add_file/add_dir/put does not exist."""

    exit_code = 3


class ConflictError(LodestoreError):
    """The request contradicts the stored state (duplicate entry, type mismatch, alias held)."""

    exit_code = 4


class ImmutableError(LodestoreError, PermissionError):
    """Something tried to change what a logged version fixed forever (its files)."""

    exit_code = 4


class FileChangedError(LodestoreError):
    """A file changed while it was being read, so what was read is not a real state of it."""

    exit_code = 5


class CorruptionError(LodestoreError):
    """Stored bytes do not match their digest; they are never served."""

    exit_code = 6


# SQLite's result codes for a database file that is damaged (SQLITE_CORRUPT) or is not
# a database at all (SQLITE_NOTADB): corrupted data, exit 6, never a traceback.
_SQLITE_DAMAGE_CODES = (11, 26)


def is_database_damage(e: BaseException) -> bool:
    """True for a SQLite error (raw, or wrapped by SQLAlchemy in `.orig`) saying the
    database file itself is damaged, as opposed to a refusal of the system or a bug."""
    orig = getattr(e, "orig", e)
    code = getattr(orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _SQLITE_DAMAGE_CODES


# SQLITE_FULL: a write found the disk (or the database's size limit) full.
_SQLITE_FULL = 13


def is_disk_full(e: BaseException) -> bool:
    """True for a SQLite error (raw, or wrapped by SQLAlchemy in `.orig`) saying a write
    found the disk full."""
    code = getattr(getattr(e, "orig", e), "sqlite_errorcode", None)
    return code is not None and code & 0xFF == _SQLITE_FULL


class VerificationError(LodestoreError):
    """Files on disk differ from a version's manifest (`Artifact.verify`)."""

    exit_code = 7


class StoreFormatError(LodestoreError):
    """The store on disk has a format this version of lodestore cannot read."""

    exit_code = 8


class CatalogUnavailableError(LodestoreError, ConnectionError):
    """The catalog's database server (PostgreSQL) cannot be used: it does not answer within
    the connect timeout, refuses the user or password, has no such database, or dropped
    the connection mid-transaction (which then rolled back). The message names the catalog,
    its password masked. Like the operating system's refusals, exit 9."""

    exit_code = OS_ERROR_EXIT_CODE


class ReadOnlyStoreError(LodestoreError, PermissionError):
    """A write (log, gc, alias, delete, ...) was asked of a store this process cannot
    write: a read-only mount or snapshot, or someone else's store. Reads still work;
    nothing was changed. The exit code is the OS refusals' (9)."""

    exit_code = OS_ERROR_EXIT_CODE

    def __init__(self, root: object, doing: str):
        super().__init__(f"the store is read-only here ({root}): cannot {doing}; reads still work")


class RemoteStoreError(LodestoreError, ConnectionError):
    """A remote store (an S3 bucket) cannot be used: its endpoint does not answer, it
    refuses the credentials, the bucket does not exist, or it failed mid-transfer. The
    message names the store; nothing half-written is visible. Like the operating
    system's refusals, exit 9."""

    exit_code = OS_ERROR_EXIT_CODE

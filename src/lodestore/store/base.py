"""The content-store interface: files in, files out, addressed by content digest.

A file's digest is the BLAKE3-256 of its whole content (hex), so anyone can check a
downloaded file with `b3sum`. How a backend keeps the bytes (whole, chunked, packed,
compressed, local or remote) is its own business behind this interface.

Contract (tested for every backend by ``tests/store/contract.py``):
- Writes go through a `WriteSession`; nothing a session wrote is visible (`has()` is
  False) until `commit()` returns, and after it returns every byte is durable. Bytes a
  committed session stored are safe from gc until the session is closed (the with
  block's end); after that, only gc's grace period protects them until referenced.
- Objects are write-once: storing the same content twice stores it once.
- Every read is verified against the digest; corrupt bytes raise CorruptionError and
  are never written to a destination under its final name (or left beside it).
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

ProgressCallback = Callable[[int], None]  # called with a number of bytes just processed


@dataclass(frozen=True)
class FileRef:
    """What the store returns for a stored file: its content digest and size."""

    digest: str
    size: int


@dataclass(frozen=True)
class StoreStats:
    """Physical accounting of a store."""

    stored_bytes: int  # bytes on disk in packs (after compression, including dead bytes)
    file_count: int  # distinct files known to the index
    chunk_count: int
    pack_count: int
    chunk_bytes: int  # raw (uncompressed) bytes of all distinct chunks


class WriteSession(abc.ABC):
    """Collects files into the store; `commit()` makes them visible all at once.

    Used as a context manager: leaving the block without commit() (or with an exception)
    aborts, removing whatever the session had written but not committed.
    """

    @abc.abstractmethod
    def add_file(self, path: str | os.PathLike[str], progress: ProgressCallback | None = None) -> FileRef:
        """Store a local file. Raises FileChangedError if the file changes while read."""

    def add_files(self, paths: Iterable[str | os.PathLike[str]],
                  progress: ProgressCallback | None = None) -> list[FileRef]:
        """Store many local files, refs in order. Backends override it to pipeline the
        reads and batch their lookups (the local store does); semantics as add_file."""
        return [self.add_file(p, progress) for p in paths]

    @abc.abstractmethod
    def add_bytes(self, data: bytes) -> FileRef:
        """Store an in-memory file."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make everything added durable and visible."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop everything added and not committed."""

    def close(self) -> None:  # optional: a backend without locks has nothing to release
        """Release what the session still holds after commit (the local store: its shared
        gc lock). The with block calls it on exit, so a caller that commits a catalog
        version inside the block keeps gc away until that version exists."""

    def __enter__(self) -> WriteSession:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self.committed:
            self.abort()
        self.close()

    committed: bool = False


class ContentStore(abc.ABC):
    """Bytes by digest. See the module docstring for the contract."""

    @abc.abstractmethod
    def session(self) -> WriteSession:
        """Start a write session."""

    @abc.abstractmethod
    def has(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def missing(self, digests: Iterable[str]) -> set[str]:
        """The subset of `digests` the store does not hold (one round trip, not N)."""

    @abc.abstractmethod
    def file_size(self, digest: str) -> int:
        """NotFoundError if absent."""

    @abc.abstractmethod
    def read_bytes(self, digest: str) -> bytes:
        """Whole content, verified. For small files; use materialize for large ones."""

    @abc.abstractmethod
    def iter_content(self, digest: str) -> Iterator[bytes]:
        """Content in pieces, each chunk verified before it is yielded."""

    @abc.abstractmethod
    def materialize(self, digest: str, dest: str | os.PathLike[str],
                    progress: ProgressCallback | None = None) -> None:
        """Write the file to `dest` atomically (temp file + rename) after verifying it.

        On CorruptionError nothing is left at `dest` (an older file there is untouched).
        """

    def materialize_many(self, items: list[tuple[str, str]], progress: ProgressCallback | None = None,
                         threads: int = 1) -> None:
        """materialize() each (digest, destination) pair, each file atomic and verified;
        the destinations' folders exist. A store may batch its lookups and reads. An
        error carries the failed pair's index in `err.item`."""
        for i, (digest, dest) in enumerate(items):
            try:
                self.materialize(digest, dest, progress=progress)
            except Exception as err:
                err.item = i  # type: ignore[attr-defined]
                raise

    @abc.abstractmethod
    def iter_files(self) -> Iterator[FileRef]:
        """Every file the store holds."""

    @abc.abstractmethod
    def stats(self) -> StoreStats: ...

    @abc.abstractmethod
    def close(self) -> None: ...

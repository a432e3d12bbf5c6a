"""Building a manifest from local files, and its digest."""

from __future__ import annotations

import blake3

from lodestore.catalog.base import ManifestEntry


def manifest_digest(entries: list[ManifestEntry]) -> str:
    """BLAKE3 of the sorted (path, digest, size) lines: identical content, identical digest."""
    h = blake3.blake3()
    for e in sorted(entries, key=lambda e: e.path):
        h.update(f"{e.path}\x00{e.digest}\x00{e.size}\n".encode())
    return h.hexdigest()

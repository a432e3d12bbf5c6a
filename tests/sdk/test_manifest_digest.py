"""The digest a log computes batch by batch (ManifestHasher.add_rows, references merged
in where their paths fall) is the digest of the whole sorted manifest."""

from __future__ import annotations

from lodestore.catalog.records import ManifestEntry
from lodestore.sdk.manifest import ManifestHasher, manifest_digest


def test_batched_rows_with_references_between_them_digest_as_the_whole_manifest():
    files = [ManifestEntry(f"d/f{i:03d}", f"{i:064x}", i) for i in range(50)]
    # before, between, inside one batch, at a batch's edge and after every file
    refs = [ManifestEntry(p, "ref", 0) for p in ("a", "d/f009x", "d/f010x", "d/f019x", "d/f0200", "z")]
    hasher = ManifestHasher(refs)
    for start in range(0, 50, 10):
        hasher.add_rows([(e.path, e.digest, e.size) for e in files[start : start + 10]])
    assert hasher.hexdigest() == manifest_digest(files + refs)

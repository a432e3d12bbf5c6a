"""The on-disk format of a local store (format.json): parameters that must never drift.

This module *is* the format: chunking, whole-file limit, pack size and compression.
(The pack file's byte layout is in packs.py, the index's tables in index.py.)

Everything here is written into ``<root>/store/format.json`` when a store is created
and checked when it is opened; golden tests (tests/store/test_golden.py) pin chunk
boundaries and digests so a release that changed them by accident fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from lodestore.errors import StoreFormatError
from lodestore.store import atomic

# 2: pack version 2 (packs.py: a block's chunks back to back, headers leading each
# block). A store of format 1 is read as it is and upgraded in place on its first
# writable open (upgrade_from below); an older lodestore then refuses it ("upgrade").
FORMAT_VERSION = 2
PACK_VERSION = 2
HASH_NAME = "blake3-256"

# Content-defined chunking (FastCDC 2020 via pyfastcdc 0.3.1, normalized chunking 1).
# 64 KiB average: shared/bench/LIMITS.md measured 11 % new bytes for a torch.save
# fine-tune saved under a new file name at 64 KiB versus 13-14 % at 256 KiB and 23-27 %
# at 1 MiB; in-place edits and insertions dedup equally well at any size. The price is
# ~13,000 index rows per GiB (real mean chunk ~ avg + min = 80 KiB), cheap in SQLite.
CHUNK_AVG = 64 * 1024
CHUNK_MIN = 16 * 1024  # pyfastcdc default (avg / 4)
CHUNK_MAX = 256 * 1024  # pyfastcdc default (avg * 4)
CHUNK_NORMALIZATION: Final = 1  # Final: a Literal[1], the type pyfastcdc asks for

# Files up to this size are stored as one piece: chunking them gains little (a change
# rewrites most of a small file anyway) and one record per file keeps the index small.
WHOLE_FILE_LIMIT = 1024 * 1024

# Pack files collect chunks so that 20,000 small files are a handful of files on disk
# and an object store later sees few, large requests. Packs close at this size.
PACK_TARGET_SIZE = 64 * 1024 * 1024

# zstd level 1: 570-1,300 MB/s; higher levels gain ~nothing on float weights (LIMITS.md).
ZSTD_LEVEL = 1
# A chunk is kept compressed only if it shrinks below this fraction of its raw size.
# Measured on the bench's torch.save fine-tune (float32 weights, 2,584 chunks of
# epoch3.pt): zstd-1 gives 0.924 (level 3: the same 0.924) at 620 MB/s, and decompresses
# at only ~370 MB/s. Keeping those chunks compressed would save 7.6 % of their space but
# make logging them ~1.6x and downloading them ~7x slower than cp (2.7 GB/s here), so
# float weights are stored raw on purpose: 0.92 sits just below what they reach. Text,
# JSON, CSV and code reach 0.2-0.5 and are kept compressed.
COMPRESS_KEEP_RATIO = 0.92
# Probe size: compressibility is judged on a prefix so random data costs ~nothing.
COMPRESS_PROBE = 4096

# How much of a file is read per step; bounds memory whatever the file size (the write
# pipeline keeps 3 windows: ~25 MB). 8 MiB: as fast as 16 MiB on 1 GiB, half the memory.
READ_WINDOW = 8 * 1024 * 1024


def format_description() -> dict:
    return {
        "format": FORMAT_VERSION,
        "hash": HASH_NAME,
        "chunker": {
            "algorithm": "fastcdc2020/pyfastcdc-0.3.1",
            "avg": CHUNK_AVG,
            "min": CHUNK_MIN,
            "max": CHUNK_MAX,
            "normalization": CHUNK_NORMALIZATION,
            "whole_file_limit": WHOLE_FILE_LIMIT,
        },
        "pack": {"version": PACK_VERSION, "target_size": PACK_TARGET_SIZE, "compression": f"zstd-{ZSTD_LEVEL}"},
    }


def previous_format_description() -> dict:
    """Format 1: the same in every part but the pack layout (version 1: a header before
    each record), which packs.py still reads. A store described so is upgraded, not refused."""
    desc = format_description()
    desc["format"] = 1
    desc["pack"] = {**desc["pack"], "version": 1}
    return desc


def ensure_format_file(store_dir: Path, upgrade: bool = True) -> dict:
    """Create format.json for a new store, or check an existing one describes exactly
    the format this code writes: format number, hash, every chunker parameter and every
    pack parameter (version, target size, compression); anything else is refused.

    A store of the previous format (previous_format_description) is read as it is: with
    `upgrade` (a store this process may write), its format.json is rewritten to this
    format first, so the packs written from now on (version 2) are never opened by an
    older lodestore, which refuses format 2; its old packs stay and are read as before."""
    path = store_dir / "format.json"
    if path.exists():
        try:
            found = json.loads(path.read_text())
        except ValueError as e:
            raise StoreFormatError(f"{path} is not valid JSON: {e}") from None
        if found == previous_format_description():
            if not upgrade:
                return found
            desc = format_description()
            atomic.write_bytes(path, json.dumps(desc, indent=2) + "\n")
            return desc
        if not isinstance(found, dict) or found.get("format") != FORMAT_VERSION or found.get("hash") != HASH_NAME:
            found = found if isinstance(found, dict) else {}
            raise StoreFormatError(
                f"store at {store_dir} has format {found.get('format')} ({found.get('hash')}); "
                f"this lodestore reads format {FORMAT_VERSION} ({HASH_NAME}). Upgrade lodestore."
            )
        expected = format_description()
        for part in ("chunker", "pack"):
            if found.get(part) != expected[part]:
                raise StoreFormatError(
                    f"store at {store_dir} was written with {part} {found.get(part)}, this lodestore "
                    f"writes {part} {expected[part]}; refusing to mix them"
                )
        unknown = sorted(set(found) - set(expected))
        if unknown:  # a newer lodestore's format: parts this one would not honour
            raise StoreFormatError(
                f"store at {store_dir} has format parts this lodestore does not know ({', '.join(unknown)}); "
                "upgrade lodestore"
            )
        return found
    store_dir.mkdir(parents=True, exist_ok=True)
    desc = format_description()
    atomic.write_bytes(path, json.dumps(desc, indent=2) + "\n")
    return desc

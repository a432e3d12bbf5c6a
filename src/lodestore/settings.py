"""Every ``LODESTORE_*`` environment variable, read here and nowhere else.

Each setting is a function, read when it is asked for (a test or a long-lived process
may change the environment); the modules that give a value its meaning parse it
(`lodestore.config` the store folder, `lodestore.sdk.cache` sizes, ...). A leaf module:
it imports nothing of lodestore, so the store, the catalog and the SDK may all use it.
"""

from __future__ import annotations

import os

ROOT = "LODESTORE_DIR"  # the store folder (default ~/.lodestore)
STORE = "LODESTORE_STORE"  # a team content store: s3://bucket/prefix (sdk/locations.py)
CATALOG = "LODESTORE_CATALOG"  # a team catalog: postgresql://user@host/db
REMOTE = "LODESTORE_REMOTE"  # a named remote (lode remote add) to use instead of the local store
PROJECT = "LODESTORE_PROJECT"  # the project of a run or reference that names none
QUIET = "LODESTORE_QUIET"  # no notices, no progress bars
CACHE_MAX_BYTES = "LODESTORE_CACHE_MAX_BYTES"  # the download cache's cap ("10GB", "off")
S3_CACHE_MAX_BYTES = "LODESTORE_S3_CACHE_MAX_BYTES"  # an S3 store's local pack cache cap ("4GiB")
GC_GRACE_SECONDS = "LODESTORE_GC_GRACE_SECONDS"  # gc spares unreferenced bytes younger than this
HEARTBEAT_SECONDS = "LODESTORE_HEARTBEAT_SECONDS"  # how often a live run refreshes its heartbeat
STALE_SECONDS = "LODESTORE_STALE_SECONDS"  # a silent "running" run is crashed after this
TEST_PAUSE_AT = "LODESTORE_TEST_PAUSE_AT"  # tests only: lodestore.testhooks
TEST_PAUSE_FILE = "LODESTORE_TEST_PAUSE_FILE"  # tests only: lodestore.testhooks
TEST_DELAY_AT = "LODESTORE_TEST_DELAY_AT"  # "<phase>:<seconds>": testhooks.delay_point


def _text(name: str) -> str | None:
    """The variable's value, None if unset or blank (an empty export means "not set")."""
    value = os.environ.get(name, "").strip()
    return value or None


def root_dir() -> str | None:
    return _text(ROOT)


def store_url() -> str | None:
    return _text(STORE)


def catalog_url() -> str | None:
    return _text(CATALOG)


def remote() -> str | None:
    return _text(REMOTE)


def project() -> str | None:
    return _text(PROJECT)


def quiet() -> bool:
    return bool(os.environ.get(QUIET))


def cache_max_bytes() -> str | None:
    return _text(CACHE_MAX_BYTES)


def s3_cache_max_bytes() -> str | None:
    return _text(S3_CACHE_MAX_BYTES)


def gc_grace_seconds() -> str | None:
    return _text(GC_GRACE_SECONDS)


def heartbeat_seconds() -> float:
    return float(_text(HEARTBEAT_SECONDS) or "30")


def stale_seconds() -> float:
    return float(_text(STALE_SECONDS) or "300")


def test_pause_at() -> str | None:
    return os.environ.get(TEST_PAUSE_AT)


def test_pause_file() -> str | None:
    return os.environ.get(TEST_PAUSE_FILE)


def test_delay_at() -> str:
    return os.environ.get(TEST_DELAY_AT, "")

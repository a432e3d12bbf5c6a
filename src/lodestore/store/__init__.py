"""The content store: bytes by digest, knowing nothing of artifacts or versions."""

from lodestore.store.base import ContentStore, FileRef, StoreStats, WriteSession
from lodestore.store.local import LocalContentStore

__all__ = ["ContentStore", "FileRef", "LocalContentStore", "StoreStats", "WriteSession"]

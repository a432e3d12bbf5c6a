"""Write sessions of an S3 content store: the local store's session (session.py: the
same chunking, dedup lookups, compression and packs), with the bucket behind it.

- Before anything is looked up, the session registers its writer lease (s3_leases.py,
  waiting while a gc holds the store) and syncs the index cache (s3_index.py): it dedups
  against every chunk any machine committed, and against none a gc is deleting.
- Each full pack is uploaded as soon as it is closed, on UPLOAD_THREADS threads (parts
  of a large pack in parallel too), while the next one is written; at most
  MAX_PENDING_UPLOADS wait, so adding files paces with the upload and the add_file
  progress callback tracks what reached the bucket within a pack or two.
- commit waits for every upload, then PUTs the session's index object: the commit
  point. Only then is the local index cache updated. A failure before that PUT leaves
  no index object, so nothing of the session is visible anywhere (its uploaded packs
  are unindexed: gc deletes them after the grace).
- abort deletes the packs it uploaded; close releases the lease (after the caller's
  catalog commit, like the local store's shared gc lock).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from lodestore.store.index import SharedState
from lodestore.store.packs import PackEntry, PackWriter
from lodestore.store.s3_leases import WriterLease
from lodestore.store.s3_packs import pack_name
from lodestore.store.session import LocalWriteSession

if TYPE_CHECKING:
    from lodestore.store.s3 import BucketCacheStore

T = TypeVar("T")
UPLOAD_THREADS = 2
MAX_PENDING_UPLOADS = 2


class S3WriteSession(LocalWriteSession):
    def __init__(self, store: BucketCacheStore):
        self._lease = WriterLease(store.bucket)
        self._uploads: list[tuple[str, Future]] = []
        self._entries: dict[str, list[PackEntry]] = {}
        self._index_name: str | None = None
        self._upload_pool = ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="lodestore-s3-upload")
        try:
            store.sync()
            super().__init__(store)
        except BaseException:
            self._upload_pool.shutdown()
            self._lease.release()
            raise
        self.s3_store = store

    @property
    def holds_lease(self) -> bool:
        """Its lease is held: it synced the index after taking it and no gc can sweep the
        store until it is released, so nothing the index cache lists now can be gone."""
        return self._lease.held

    def _rotate(self) -> None:
        writer = self._writer
        assert writer is not None  # only called with a pack open
        entries = list(writer.entries)  # the finish thread clears them once the trailer is written
        super()._rotate()
        pack_id, writer, _count, finished = self._packs[-1]
        self._entries[pack_id] = entries
        pending = [f for _, f in self._uploads if not f.done()]
        while len(pending) >= MAX_PENDING_UPLOADS:  # pace the writer with the uploads
            pending.pop(0).result()
        self._uploads.append((pack_id, self._upload_pool.submit(self._upload, pack_id, writer, finished)))

    def _adopted(self, pack_id: str, pack, entries: list[PackEntry], done: Future) -> None:
        """A pack received whole is uploaded like a pack this session wrote."""
        self._entries[pack_id] = entries
        self._uploads.append((pack_id, self._upload_pool.submit(self._upload, pack_id, pack, done)))

    def _upload(self, pack_id: str, writer: PackWriter, finished: Future) -> None:
        finished.result()
        self.s3_store.bucket.upload_file(pack_name(pack_id), writer.tmp_path)

    def _publish(self) -> None:
        """Wait for every upload, then PUT the index object (the commit point). Its rows
        are handed over as iterators, encoded as they are read (s3_index.write_object):
        a 20,000-file session's rows are never all in memory at once."""
        for _, upload in self._uploads:
            upload.result()
        now = time.time()
        files = _peeked((d, size, count, recipe, now) for d, size, count, recipe in self.new_file_rows())
        touched = _peeked((d, now) for d in self.reused_digests())
        if not (self._packs or files or touched):
            return
        state = SharedState(
            packs=[(pid, writer.size, count, now) for pid, writer, count, _ in self._packs],
            chunks=((e.digest, pid, e.offset, e.stored_len, e.raw_len, e.codec)  # type: ignore[arg-type]
                    for pid, entries in self._entries.items() for e in entries),
            files=files or [],  # type: ignore[arg-type]
            touched=touched or [],  # type: ignore[arg-type]
        )
        self._index_name = self.s3_store.index_sync.publish(state)

    def commit(self) -> None:
        super().commit()
        if self._index_name is not None:
            self.store.index.mark_shared_index(self._index_name)
        self.s3_store.packs.trim()  # the session's packs joined the cache

    def abort(self) -> None:
        if not self._closed and not self.committed:
            uploaded = []
            for pid, upload in self._uploads:
                try:
                    upload.result()
                    uploaded.append(pack_name(pid))
                except Exception:
                    pass
            if uploaded:
                try:
                    self.s3_store.bucket.delete(uploaded)
                except Exception:
                    pass
        super().abort()

    def close(self) -> None:
        super().close()
        self._upload_pool.shutdown(wait=True)
        self._lease.release()


def _peeked(rows: Iterator[T]) -> Iterator[T] | None:
    """`rows` as they were, or None if there are none (asked before the object is begun)."""
    first = next(rows, _NONE)
    return None if first is _NONE else itertools.chain((first,), rows)  # type: ignore[arg-type]


_NONE = object()

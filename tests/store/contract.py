"""The ContentStore contract (src/lodestore/store/base.py), as tests every backend adopts.

A backend's test module adopts the whole suite in three lines::

    class TestS3ContentStore(ContentStoreContract):
        @pytest.fixture
        def store(self, tmp_path, s3_bucket):
            return S3ContentStore(s3_bucket)

The `store` fixture must give an empty store, private to the test. A backend that
stages writes locally may override `leftover_temp_paths` so that abort and materialize
are also checked for stray temp files.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import blake3
import pytest

from lodestore.errors import (
    CorruptionError,
    InvalidInputError,
    NotFoundError,
    SourceFileNotFoundError,
)
from lodestore.store.base import ContentStore, FileRef
from lodestore.store.layout import WHOLE_FILE_LIMIT

from .data import MiB, random_bytes, text_bytes
from .transfer_contract import TransferContract


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def put(store: ContentStore, *items: bytes | Path) -> list[FileRef]:
    """Store bytes (add_bytes) and paths (add_file) in one committed session."""
    with store.session() as s:
        refs = [s.add_file(i) if isinstance(i, Path) else s.add_bytes(i) for i in items]
        s.commit()
    return refs


def listing(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


ABSENT = b3(b"content nobody ever stored")


class ContentStoreContract(TransferContract):
    # For one random file stored once: record header, pack magic, trailer and footer.
    overhead_allowance = 1024

    def corrupt_stored_bytes(self, store: ContentStore, digest: str) -> None:
        """Backend hook: damage, where the backend keeps them, some stored bytes of the
        file `digest` (one flipped byte in the middle of its content is enough). Every
        backend must provide it: a store that cannot show it detects corruption has not
        shown it keeps the contract."""
        raise NotImplementedError(f"{type(self).__name__} must implement corrupt_stored_bytes")

    def leftover_temp_paths(self, store: ContentStore) -> list[Path]:
        """Temp files a backend left behind; by default looks in `store.tmp_dir` if any."""
        tmp_dir = getattr(store, "tmp_dir", None)
        if tmp_dir is None:
            return []
        return [p for p in Path(tmp_dir).rglob("*")]

    @pytest.fixture
    def src(self, tmp_path: Path) -> Path:
        d = tmp_path / "src"
        d.mkdir()
        return d

    @pytest.fixture
    def out(self, tmp_path: Path) -> Path:
        d = tmp_path / "out"
        d.mkdir()
        return d

    # --- adding ---------------------------------------------------------------
    @pytest.mark.parametrize(
        "data", [b"", b"hello", random_bytes(100_000, 1)], ids=["empty", "hello", "100k"]
    )
    def test_add_bytes_returns_blake3_digest_and_size(self, store, data):
        with store.session() as s:
            ref = s.add_bytes(data)
            s.commit()
        assert ref == FileRef(digest=b3(data), size=len(data))
        assert store.file_size(ref.digest) == len(data)

    def test_add_file_returns_blake3_digest_and_size(self, store, src):
        data = random_bytes(3 * MiB, 2) + text_bytes(MiB, 2)
        (src / "model.bin").write_bytes(data)
        (ref,) = put(store, src / "model.bin")
        assert ref == FileRef(b3(data), len(data))
        assert store.file_size(ref.digest) == len(data)
        assert ref in set(store.iter_files())

    def test_progress_reports_every_byte(self, store, src, out):
        data = random_bytes(2 * MiB + 17, 3)
        (src / "f").write_bytes(data)
        seen: list[int] = []
        with store.session() as s:
            ref = s.add_file(src / "f", progress=seen.append)
            s.commit()
        assert sum(seen) == len(data)
        seen.clear()
        store.materialize(ref.digest, out / "f", progress=seen.append)
        assert sum(seen) == len(data)

    # --- visibility -----------------------------------------------------------
    def test_nothing_visible_before_commit(self, store, src):
        small, big = b"small file", random_bytes(3 * MiB, 4)
        (src / "big").write_bytes(big)
        with store.session() as s:
            refs = [s.add_bytes(small), s.add_file(src / "big")]
            for ref in refs:
                assert not store.has(ref.digest)
            assert store.missing([r.digest for r in refs]) == {r.digest for r in refs}
            assert list(store.iter_files()) == []
            with pytest.raises(NotFoundError):
                store.read_bytes(refs[0].digest)
            s.commit()
        for ref in refs:
            assert store.has(ref.digest)
        assert store.missing([r.digest for r in refs]) == set()
        assert set(store.iter_files()) == set(refs)

    def test_abort_leaves_nothing(self, store, src):
        before = store.stats()
        (src / "big").write_bytes(random_bytes(3 * MiB, 5))
        s = store.session()
        refs = [s.add_bytes(b"abc"), s.add_file(src / "big")]
        s.abort()
        assert not any(store.has(r.digest) for r in refs)
        assert list(store.iter_files()) == []
        assert store.stats() == before
        assert self.leftover_temp_paths(store) == []

    def test_exception_inside_with_block_aborts(self, store, src):
        before = store.stats()
        (src / "big").write_bytes(random_bytes(3 * MiB, 6))
        refs = []
        with pytest.raises(RuntimeError, match="boom"), store.session() as s:
            refs.append(s.add_file(src / "big"))
            refs.append(s.add_bytes(b"also dropped"))
            raise RuntimeError("boom")
        assert store.missing([r.digest for r in refs]) == {r.digest for r in refs}
        assert store.stats() == before
        assert self.leftover_temp_paths(store) == []

    def test_leaving_with_block_without_commit_aborts(self, store):
        with store.session() as s:
            ref = s.add_bytes(b"never committed")
        assert not store.has(ref.digest)
        assert self.leftover_temp_paths(store) == []

    def test_interleaved_sessions_are_independent(self, store):
        a, b = store.session(), store.session()
        ra = a.add_bytes(b"from session a")
        rb = b.add_bytes(b"from session b")
        b.commit()
        a.abort()
        assert store.has(rb.digest)
        assert not store.has(ra.digest)
        assert store.read_bytes(rb.digest) == b"from session b"

    # --- dedup ----------------------------------------------------------------
    def test_identical_content_is_stored_once(self, store, src):
        data = random_bytes(3 * MiB, 7) + text_bytes(MiB, 7)
        (src / "a.bin").write_bytes(data)
        (src / "renamed.bin").write_bytes(data)
        (first,) = put(store, src / "a.bin")
        after_first = store.stats()
        refs = put(store, src / "a.bin", src / "renamed.bin", data)
        assert refs == [first] * 3
        assert store.stats().stored_bytes == after_first.stored_bytes
        assert store.stats().file_count == after_first.file_count == 1

    def test_identical_content_within_one_session_is_stored_once(self, store, src):
        data = random_bytes(2 * MiB, 8)
        (src / "x").write_bytes(data)
        (src / "y").write_bytes(data)
        put(store, src / "x", src / "y", data)
        stats = store.stats()
        assert stats.file_count == 1
        assert stats.chunk_bytes == len(data)  # random data: every chunk distinct, each stored once
        assert stats.stored_bytes < len(data) * 1.01

    def test_repeated_content_inside_a_file_is_stored_once(self, store):
        zeros = bytes(4 * MiB)  # every chunk is the same run of zeros
        (ref,) = put(store, zeros)
        assert store.read_bytes(ref.digest) == zeros
        assert store.stats().chunk_bytes < len(zeros) // 10
        assert store.stats().stored_bytes < len(zeros) // 10

    # --- sizes ----------------------------------------------------------------
    def test_empty_file(self, store, src, out):
        (src / "empty").write_bytes(b"")
        (ref,) = put(store, src / "empty")
        assert ref == FileRef(b3(b""), 0)
        assert store.read_bytes(ref.digest) == b""
        assert b"".join(store.iter_content(ref.digest)) == b""
        store.materialize(ref.digest, out / "empty")
        assert (out / "empty").read_bytes() == b""

    @pytest.mark.parametrize("size", [WHOLE_FILE_LIMIT - 1, WHOLE_FILE_LIMIT, WHOLE_FILE_LIMIT + 1])
    def test_sizes_around_whole_file_limit(self, store, src, out, size):
        data = random_bytes(size, size)
        (src / "f").write_bytes(data)
        (ref,) = put(store, src / "f")
        assert ref == FileRef(b3(data), size)
        assert store.read_bytes(ref.digest) == data
        store.materialize(ref.digest, out / "f")
        assert (out / "f").read_bytes() == data

    def test_large_multi_chunk_roundtrip(self, store, src, out):
        data = random_bytes(4 * MiB, 10) + text_bytes(3 * MiB, 10)
        (src / "big").write_bytes(data)
        (ref,) = put(store, src / "big")
        assert store.read_bytes(ref.digest) == data
        pieces = list(store.iter_content(ref.digest))
        assert len(pieces) > 1 and all(pieces)
        assert b"".join(pieces) == data
        store.materialize(ref.digest, out / "big")
        assert (out / "big").read_bytes() == data
        assert listing(out) == {"big"}

    def test_many_small_files_in_one_session(self, store):
        files = [random_bytes(1 + i * 37, i) for i in range(200)]
        refs = put(store, *files)
        assert store.missing([r.digest for r in refs]) == set()
        for ref, data in zip(refs, files, strict=True):
            assert store.read_bytes(ref.digest) == data

    # --- compression ----------------------------------------------------------
    @pytest.mark.parametrize("size", [200_000, 3 * MiB], ids=["whole", "chunked"])
    def test_compressible_data_is_stored_smaller(self, store, size):
        data = text_bytes(size, 11)
        put(store, data)
        assert store.stats().stored_bytes < size / 2

    def test_random_data_is_not_expanded(self, store):
        data = random_bytes(512 * 1024, 12)
        put(store, data)
        assert len(data) <= store.stats().stored_bytes <= len(data) + self.overhead_allowance

    # --- materialize ----------------------------------------------------------
    def test_materialize_replaces_existing_dest_atomically(self, store, out):
        new = random_bytes(2 * MiB, 13)
        (ref,) = put(store, new)
        dest = out / "weights.bin"
        dest.write_bytes(b"old content")
        os.link(dest, out / "old-link")  # sees the old inode: an in-place rewrite would show here
        old_inode = dest.stat().st_ino
        store.materialize(ref.digest, dest)
        assert dest.read_bytes() == new
        assert dest.stat().st_ino != old_inode
        assert (out / "old-link").read_bytes() == b"old content"
        assert listing(out) == {"weights.bin", "old-link"}

    def test_materialize_into_a_directory_fails_cleanly(self, store, out):
        (ref,) = put(store, b"some bytes")
        (out / "taken").mkdir()
        with pytest.raises(OSError):
            store.materialize(ref.digest, out / "taken")
        assert listing(out) == {"taken"}
        assert listing(out / "taken") == set()

    # --- lookups --------------------------------------------------------------
    def test_missing_on_a_mix(self, store):
        a, b = put(store, b"stored a", b"stored b")
        asked = [a.digest, ABSENT, b.digest, b3(b"other"), ABSENT]
        assert store.missing(asked) == {ABSENT, b3(b"other")}
        assert store.missing([]) == set()

    def test_unknown_digest_raises_not_found(self, store, out):
        put(store, b"something else")
        assert not store.has(ABSENT)
        with pytest.raises(NotFoundError):
            store.file_size(ABSENT)
        with pytest.raises(NotFoundError):
            store.read_bytes(ABSENT)
        with pytest.raises(NotFoundError):
            list(store.iter_content(ABSENT))
        with pytest.raises(NotFoundError):
            store.materialize(ABSENT, out / "x")
        assert listing(out) == set()

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "abc",
            "zz" * 32,
            ABSENT[:-1],
            ABSENT + "0",
            ABSENT.upper(),
            ABSENT[:32] + " " + ABSENT[32:],
            "../" + ABSENT[3:],
        ],
        ids=["empty", "short", "not-hex", "63", "65", "upper", "space", "path"],
    )
    def test_malformed_digest_raises_invalid_input(self, store, out, bad):
        for call in (
            lambda: store.has(bad),
            lambda: store.missing([ABSENT, bad]),
            lambda: store.file_size(bad),
            lambda: store.read_bytes(bad),
            lambda: list(store.iter_content(bad)),
            lambda: store.materialize(bad, out / "x"),
            lambda: store.recipes([ABSENT, bad]),  # a page of digests is checked in one go (index.joined_digests)
            lambda: store.pack_shares([ABSENT, bad]),
            lambda: store.file_packs([ABSENT, bad]),
        ):
            with pytest.raises(InvalidInputError):
                call()
        assert listing(out) == set()

    def test_digests_checked_together_are_each_checked(self, store):
        """One short and one long digest together are as long as two digests: still refused."""
        for call in (store.recipes, store.pack_shares, store.file_packs):
            with pytest.raises(InvalidInputError, match="not a content digest"):
                call([ABSENT[:-1], ABSENT + "0"])

    # --- bad input to add_file ------------------------------------------------
    def test_add_file_on_missing_path(self, store, src):
        with store.session() as s:
            with pytest.raises(SourceFileNotFoundError) as info:
                s.add_file(src / "no-such-file")
            # callers may catch either the standard or the domain error
            assert isinstance(info.value, FileNotFoundError)
            assert isinstance(info.value, NotFoundError)
            assert "no-such-file" in str(info.value)
            ref = s.add_bytes(b"the session is still usable")
            s.commit()
        assert store.has(ref.digest)

    def test_add_file_on_a_directory(self, store, src):
        (src / "sub").mkdir()
        with store.session() as s, pytest.raises(InvalidInputError):
            s.add_file(src / "sub")

    # --- corruption -------------------------------------------------------------
    @pytest.mark.parametrize("size", [100_000, 3 * MiB], ids=["small", "chunked"])
    def test_corruption_is_detected_and_nothing_lands_at_the_destination(self, store, out, size):
        data = random_bytes(size, 20) if size < MiB else random_bytes(2 * MiB, 21) + text_bytes(size - 2 * MiB, 21)
        (ref,) = put(store, data)
        self.corrupt_stored_bytes(store, ref.digest)
        (out / "kept").write_bytes(b"an older file")
        for dest in (out / "fresh", out / "kept"):
            with pytest.raises(CorruptionError):
                store.materialize(ref.digest, dest)
        assert listing(out) == {"kept"}  # no file under the new name, no temp file beside it
        assert (out / "kept").read_bytes() == b"an older file"
        with pytest.raises(CorruptionError):
            store.read_bytes(ref.digest)
        with pytest.raises(CorruptionError):
            b"".join(store.iter_content(ref.digest))

    # --- maintenance: gc, fsck, repair, usage, catalog binding --------------------
    def test_gc_beside_a_concurrent_writer_loses_nothing_committed(self, store):
        """A real thread logs files while gc sweeps again and again with no grace: every
        file the writer committed (and listed as live before closing its session, as
        the SDK commits a version) is still there and reads back; garbage goes."""
        garbage = put(store, random_bytes(300_000, 40), random_bytes(200_000, 41))
        kept: dict[str, bytes] = {}
        errors: list[BaseException] = []

        def writer() -> None:
            try:
                for i in range(25):
                    data = random_bytes(60_000 + i, 100 + i)
                    with store.session() as s:
                        ref = s.add_bytes(data)
                        s.commit()
                        kept[ref.digest] = data  # "the catalog commits its version" before close
            except BaseException as e:
                errors.append(e)

        thread = threading.Thread(target=writer)
        thread.start()
        sweeps = 0
        while thread.is_alive() or sweeps < 2:
            store.gc(lambda: set(kept), grace=0, repack_threshold=0)
            sweeps += 1
        thread.join()
        assert not errors, errors
        store.gc(lambda: set(kept), grace=0, repack_threshold=0)
        assert len(kept) == 25
        for digest, data in kept.items():
            assert store.read_bytes(digest) == data
        assert not any(store.has(r.digest) for r in garbage)
        assert store.fsck().ok

    def test_gc_plan_then_sweep_with_grace(self, store):
        live, dead = put(store, random_bytes(100_000, 42), random_bytes(150_000, 43))
        held = store.plan_gc({live.digest}, grace=3600)
        assert held.dead_files == 0 and held.files_held_by_grace == 1  # younger than the grace
        plan = store.plan_gc({live.digest}, grace=0)
        assert (plan.dead_files, plan.dead_file_bytes) == (1, 150_000) and not plan.executed
        seen: list = []
        done = store.gc(lambda: {live.digest}, grace=0, repack_threshold=0, on_plan=seen.append)
        assert done.executed and seen == [done] and done.planned is not None and done.planned.dead_files == 1
        assert store.has(live.digest) and not store.has(dead.digest)
        assert store.read_bytes(live.digest) == random_bytes(100_000, 42)
        assert store.gc(lambda: {live.digest}, grace=0, dry_run=True).dead_files == 0

    def test_fsck_finds_a_corrupted_pack(self, store):
        good, bad = put(store, random_bytes(200_000, 44), random_bytes(3 * MiB, 45))
        assert store.fsck().ok
        self.corrupt_stored_bytes(store, bad.digest)
        report = store.fsck()
        assert not report.ok
        assert report.bad_files == [bad.digest] and report.corrupt_packs and report.corrupt_chunks
        assert {good.digest, bad.digest} <= report.indexed_files
        assert report.to_dict()["bad_files"] == [bad.digest] and "indexed_files" not in report.to_dict()

    def test_repair_salvages_what_verifies_and_forgets_what_is_lost(self, store):
        good_data, bad_data = random_bytes(200_000, 46), random_bytes(3 * MiB, 47)
        good, bad = put(store, good_data, bad_data)
        self.corrupt_stored_bytes(store, bad.digest)
        result = store.repair(store.fsck())
        assert result.lost_files == [bad.digest] and result.quarantined
        assert not store.has(bad.digest) and store.lost_files() == {bad.digest: len(bad_data)}
        assert store.read_bytes(good.digest) == good_data  # salvaged
        assert store.fsck().ok
        put(store, bad_data)  # logging the same data again stores it again
        assert store.read_bytes(bad.digest) == bad_data and store.lost_files() == {}

    def test_usage_of_groups_exclusive_and_shared_bytes(self, store):
        only_a, shared, only_b = random_bytes(300_000, 48), random_bytes(200_000, 49), random_bytes(100_000, 50)
        a, s, b = put(store, only_a, shared, only_b)
        (alone,) = put(store, random_bytes(250_000, 51))  # a session of its own
        slack = self.overhead_allowance
        u = store.usage({"a": [a.digest, s.digest], "b": [s.digest, b.digest], "c": [alone.digest], "none": []})
        assert (u["a"].raw_bytes, u["a"].exclusive_raw_bytes) == (500_000, 300_000)
        assert (u["b"].raw_bytes, u["b"].exclusive_raw_bytes) == (300_000, 100_000)
        assert 300_000 <= u["a"].exclusive_stored_bytes <= 300_000 + slack  # random bytes: stored raw
        assert 100_000 <= u["b"].exclusive_stored_bytes <= 100_000 + slack
        assert 250_000 <= u["c"].exclusive_stored_bytes <= 250_000 + slack
        assert 500_000 <= u["a"].stored_bytes <= 500_000 + slack
        shared_stored = u["a"].stored_bytes - u["a"].exclusive_stored_bytes
        assert abs(u["a"].shared_stored_bytes - (u["a"].exclusive_stored_bytes + shared_stored / 2)) <= slack
        assert u["none"] == type(u["none"])()  # nothing held: all zero
        assert store.disk_usage().packs >= 850_000

    def test_files_sharing_chunks(self, store):
        big = random_bytes(3 * MiB, 52)
        edited = big[: MiB] + b"x" + big[MiB + 1 :]
        original, copy, other = put(store, big, edited, random_bytes(3 * MiB, 53))
        assert store.files_sharing_chunks([original.digest]) == {copy.digest}
        assert store.files_sharing_chunks([other.digest]) == set()

    def test_catalog_binding_refuses_another_catalog(self, store):
        assert store.catalog_binding() is None and not store.holds_content()
        store.bind_catalog("catalog-a", 3)
        store.advance_catalog("catalog-a", 2)  # generations only go up
        store.advance_catalog("catalog-b", 9)  # another catalog cannot claim the bytes by logging
        assert (store.catalog_binding().catalog_id, store.catalog_binding().generation) == ("catalog-a", 3)
        store.advance_catalog("catalog-a", 5)
        assert store.catalog_binding().generation == 5
        store.bind_catalog("catalog-b", 1)  # an explicit adoption
        assert (store.catalog_binding().catalog_id, store.catalog_binding().generation) == ("catalog-b", 1)
        put(store, b"some content")
        assert store.holds_content()

"""The transfer half of the ContentStore contract (base.py: `recipes`, `missing_chunks`,
`read_frames`, `WriteSession.add_frames`, `read_chunks`, `WriteSession.add_chunks`,
`WriteSession.add_recipes`, and whole packs: `pack_shares`, `file_packs`, `copy_pack`,
`WriteSession.received_pack_path` / `check_pack` / `adopt_pack`): what push, pull and import rely on, for every backend.

`ContentStoreContract` inherits this class, so a backend adopting the contract runs these
too. Transfers go between the backend's `store` and a `peer` store: a local store by
default (so an S3 backend is checked both ways against a local one); a backend may
override `peer` to give a second store of its own kind.
"""

from __future__ import annotations

from pathlib import Path

import blake3
import pytest

from lodestore.errors import CorruptionError, NotFoundError
from lodestore.store import codec
from lodestore.store.base import ChunkFrame, ContentStore, FilePacks, FileRecipe, FileRef
from lodestore.store.local import LocalContentStore

from .data import MiB, random_bytes, text_bytes


def _b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _put(store: ContentStore, *items: bytes) -> list[FileRef]:
    with store.session() as s:
        refs = [s.add_bytes(i) for i in items]
        s.commit()
    return refs


def transfer(src: ContentStore, dst: ContentStore, digests: list[str]) -> list[str]:
    """The protocol sdk/transfer.py follows, bare: which files `dst` lacks, their recipes
    from `src`, which of their chunks `dst` lacks (one batch), those chunks moved, the
    recipes recorded, one commit. Returns the chunk digests that were moved. Chunks move
    in their stored form (`read_frames` -> `add_frames`), as sdk/transfer.py moves them."""
    lacking = src.recipes(dst.missing(digests))
    needed = list(dict.fromkeys(c for r in lacking.values() for c in r.chunks))
    to_move = dst.missing_chunks(needed)
    moved: list[str] = []

    def counted():
        for frame in src.read_frames([c for c in needed if c in to_move]):
            moved.append(frame.digest.hex())
            yield frame

    with dst.session() as s:
        s.add_frames(counted())
        s.add_recipes(lacking.values())
        s.commit()
    return moved


def move_packs(src: ContentStore, dst: ContentStore, digests: list[str]) -> set[bytes]:
    """sdk/transfer.py's whole-pack path, bare: every pack holding the files' chunks copied
    whole into one session of `dst` and adopted, the recipes recorded, one commit.
    Returns the chunks adopted."""
    recipes = src.recipes(digests)
    chunks = list(dict.fromkeys(c for r in recipes.values() for c in r.chunks))
    held: set[bytes] = set()
    with dst.session() as s:
        for share in src.pack_shares(chunks):
            path = s.received_pack_path()
            src.copy_pack(share.pack_id, path)
            held |= set(s.adopt_pack(s.check_pack(path)))
        s.add_recipes(recipes.values())
        s.commit()
    return held


def _tamper(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


class TransferContract:
    @pytest.fixture
    def peer(self, tmp_path: Path):
        other = LocalContentStore(tmp_path / "peer")
        yield other
        other.close()

    def test_round_trip_both_ways(self, store, peer):
        items = [b"", b"small", random_bytes(300_000, 60), random_bytes(2 * MiB, 61) + text_bytes(2 * MiB, 61)]
        refs = _put(store, *items)
        transfer(store, peer, [r.digest for r in refs])
        for ref, data in zip(refs, items, strict=True):
            assert peer.read_bytes(ref.digest) == data and peer.file_size(ref.digest) == len(data)
        back = items[3][:MiB] + b"edited" + items[3][MiB:]
        (edited,) = _put(peer, back)
        moved = transfer(peer, store, [r.digest for r in refs] + [edited.digest])
        assert store.read_bytes(edited.digest) == back
        assert 0 < len(moved) <= 3  # the chunks the edit touched, nothing else
        assert store.fsck().ok and peer.fsck().ok

    def test_recipes_of_stored_files_only(self, store):
        data = random_bytes(3 * MiB, 62)
        small, big = _put(store, b"one chunk", data)
        got = store.recipes([small.digest, big.digest, _b3(b"never stored")])
        assert set(got) == {small.digest, big.digest}
        assert got[small.digest] == FileRecipe(small.digest, len(b"one chunk"), (small.digest,))
        assert got[big.digest].size == len(data) and len(got[big.digest].chunks) > 10
        chunks = dict(store.read_chunks(got[big.digest].chunks))
        assert b"".join(chunks[c] for c in got[big.digest].chunks) == data

    def test_missing_chunks_of_many_at_once(self, store):
        (ref,) = _put(store, random_bytes(2 * MiB, 63))
        stored = list(store.recipes([ref.digest])[ref.digest].chunks)
        absent = [_b3(i.to_bytes(4, "little")) for i in range(5_000)]
        assert store.missing_chunks(stored + absent) == set(absent)

    def test_dedup_a_chunk_the_destination_has_is_not_sent(self, store, peer):
        base = random_bytes(4 * MiB, 64)
        v2 = base[: 2 * MiB] + b"a few new bytes" + base[2 * MiB :]
        (v1_ref,) = _put(store, base)
        transfer(store, peer, [v1_ref.digest])
        before = peer.stats()
        (v2_ref,) = _put(store, v2)
        moved = transfer(store, peer, [v2_ref.digest])
        total = len(store.recipes([v2_ref.digest])[v2_ref.digest].chunks)
        assert 0 < len(moved) <= 3 < total
        assert peer.stats().chunk_count == before.chunk_count + len(moved)
        assert peer.read_bytes(v2_ref.digest) == v2
        assert transfer(store, peer, [v1_ref.digest, v2_ref.digest]) == []  # nothing left to move

    def test_read_chunks_verifies_and_names_an_unknown_chunk(self, store):
        data = random_bytes(3 * MiB, 65)
        (ref,) = _put(store, data)
        chunks = store.recipes([ref.digest])[ref.digest].chunks
        with pytest.raises(NotFoundError):
            list(store.read_chunks([chunks[0], _b3(b"no such chunk")]))
        self.corrupt_stored_bytes(store, ref.digest)  # type: ignore[attr-defined]  (ContentStoreContract's hook)
        with pytest.raises(CorruptionError):
            list(store.read_chunks(chunks))

    def test_a_corrupted_chunk_is_refused_and_nothing_of_it_kept(self, store):
        data = random_bytes(200_000, 66)
        digest = _b3(data)
        tampered = data[:1000] + bytes([data[1000] ^ 1]) + data[1001:]
        before = store.stats()
        with store.session() as s:
            with pytest.raises(CorruptionError):
                s.add_chunks([(digest, tampered)])
            s.commit()
        assert store.missing_chunks([digest]) == {digest}
        assert store.stats().chunk_count == before.chunk_count
        with store.session() as s:
            s.add_chunks([(digest, data)])  # the right bytes are still welcome
            s.add_recipes([FileRecipe(digest, len(data), (digest,))])
            s.commit()
        assert store.read_bytes(digest) == data

    def test_a_recipe_with_a_missing_chunk_is_refused(self, store):
        a, b = random_bytes(100_000, 67), random_bytes(100_000, 68)
        (ref_a,) = _put(store, a)
        recipe = FileRecipe(_b3(a + b), len(a + b), (ref_a.digest, _b3(b)))
        with store.session() as s:
            with pytest.raises(NotFoundError, match=_b3(b)[:16]):
                s.add_recipes([recipe])
            s.commit()
        assert not store.has(recipe.digest)

    def test_a_recipe_whose_chunks_do_not_make_its_file_is_refused(self, store):
        a, b = random_bytes(100_000, 69), random_bytes(100_000, 70)
        whole = a + b
        with store.session() as s:
            s.add_chunks([(_b3(a), a), (_b3(b), b)])
            with pytest.raises(CorruptionError):  # right chunks, wrong order: other bytes
                s.add_recipes([FileRecipe(_b3(whole), len(whole), (_b3(b), _b3(a)))])
            with pytest.raises(CorruptionError):  # sizes that do not add up
                s.add_recipes([FileRecipe(_b3(whole), len(whole) + 1, (_b3(a), _b3(b)))])
            s.commit()
        assert not store.has(_b3(whole))
        with store.session() as s:  # the chunks the session added are there for a right recipe
            s.add_recipes([FileRecipe(_b3(whole), len(whole), (_b3(a), _b3(b)))])
            s.commit()
        assert store.read_bytes(_b3(whole)) == whole

    def test_nothing_received_is_visible_before_commit(self, store, peer):
        data = random_bytes(2 * MiB, 71) + text_bytes(MiB, 71)
        (ref,) = _put(peer, data)
        recipe = peer.recipes([ref.digest])[ref.digest]
        with store.session() as s:
            s.add_chunks(peer.read_chunks(recipe.chunks))
            s.add_recipes([recipe])
            assert not store.has(ref.digest)
            assert store.missing_chunks(recipe.chunks) == set(recipe.chunks)
            s.commit()
        assert store.has(ref.digest) and store.missing_chunks(recipe.chunks) == set()
        assert store.read_bytes(ref.digest) == data

    def test_abort_drops_everything_received(self, store, peer):
        data = random_bytes(3 * MiB, 72)
        (ref,) = _put(peer, data)
        recipe = peer.recipes([ref.digest])[ref.digest]
        before = store.stats()
        s = store.session()
        s.add_chunks(peer.read_chunks(recipe.chunks))
        s.add_recipes([recipe])
        s.abort()
        assert not store.has(ref.digest)
        assert store.missing_chunks(recipe.chunks) == set(recipe.chunks)
        assert store.stats() == before
        assert self.leftover_temp_paths(store) == []  # type: ignore[attr-defined]  (ContentStoreContract's hook)

    def test_frames_arrive_as_stored_and_raw_chunks_still_move(self, store, peer, tmp_path):
        """A frame is appended as it came: text compressed at the source stays compressed
        at the destination (no probe, no recompression), and the bytes read back; the raw
        path (read_chunks -> add_chunks) moves the same content too."""
        text, noise = text_bytes(2 * MiB, 73), random_bytes(MiB, 74)
        refs = _put(store, text, noise)
        recipes = store.recipes([r.digest for r in refs])
        chunks = [c for r in refs for c in recipes[r.digest].chunks]
        frames = list(store.read_frames(chunks))
        assert sorted(f.digest.hex() for f in frames) == sorted(set(chunks))
        assert {f.codec for f in frames} == {codec.RAW, codec.ZSTD}
        with peer.session() as s:
            s.add_frames(frames)
            s.add_recipes(recipes.values())
            s.commit()
        assert peer.read_bytes(refs[0].digest) == text and peer.read_bytes(refs[1].digest) == noise
        stored = sum(len(f.stored) for f in frames)
        assert stored < len(text) // 2 + len(noise) and peer.stats().stored_bytes < stored + 64 * 1024
        other = LocalContentStore(tmp_path / "raw")
        with other.session() as s:
            s.add_chunks(store.read_chunks(chunks))
            s.add_recipes(recipes.values())
            s.commit()
        assert other.read_bytes(refs[0].digest) == text
        other.close()

    @pytest.mark.parametrize("kind", ["raw", "zstd", "length", "codec"])
    def test_a_tampered_frame_is_refused_and_nothing_of_it_kept(self, store, kind):
        """The receiver decodes and hashes every frame: a flipped byte in a raw or a
        compressed frame, a wrong length or an unknown codec is refused with
        CorruptionError and nothing of it is stored; the right frame is welcome after."""
        data = text_bytes(300_000, 75) if kind in ("zstd", "codec") else random_bytes(300_000, 75)
        digest = blake3.blake3(data).digest()
        codec_id, stored = codec.encode(data)
        good = ChunkFrame(digest, codec_id, len(data), bytes(stored))
        assert good.codec == (codec.ZSTD if kind in ("zstd", "codec") else codec.RAW)
        flipped = bytearray(stored)
        flipped[len(flipped) // 2] ^= 1
        bad = {"raw": ChunkFrame(digest, codec_id, len(data), bytes(flipped)),
               "zstd": ChunkFrame(digest, codec_id, len(data), bytes(flipped)),
               "length": ChunkFrame(digest, codec_id, len(data) - 1, bytes(stored)),
               "codec": ChunkFrame(digest, 7, len(data), bytes(stored))}[kind]
        before = store.stats()
        with store.session() as s:
            with pytest.raises(CorruptionError, match="does not match its digest"):
                s.add_frames([bad])
            s.commit()
        assert store.missing_chunks([digest.hex()]) == {digest.hex()}
        assert store.stats().chunk_count == before.chunk_count
        with store.session() as s:
            s.add_frames([good])
            s.add_recipes([FileRecipe(digest.hex(), len(data), (digest.hex(),))])
            s.commit()
        assert store.read_bytes(digest.hex()) == data

    def test_read_frames_names_an_unknown_chunk(self, store):
        (ref,) = _put(store, random_bytes(3 * MiB, 76))
        chunks = store.recipes([ref.digest])[ref.digest].chunks
        with pytest.raises(NotFoundError):
            list(store.read_frames([chunks[0], _b3(b"no such chunk")]))


    def test_whole_packs_move_both_ways_checked_and_indexed(self, store, peer):
        items = [b"small", random_bytes(300_000, 80), random_bytes(2 * MiB, 81) + text_bytes(2 * MiB, 81)]
        refs = _put(store, *items)
        chunks = [c for r in store.recipes([r.digest for r in refs]).values() for c in r.chunks]
        shares = store.pack_shares([*chunks, _b3(b"not stored")])
        assert sum(s.wanted_chunks for s in shares) == len(set(chunks))  # an unknown chunk is left out
        assert all(0 < s.wanted_fraction <= 1 for s in shares)
        assert move_packs(store, peer, [r.digest for r in refs]) == {bytes.fromhex(c) for c in chunks}
        for ref, data in zip(refs, items, strict=True):
            assert peer.read_bytes(ref.digest) == data
        (back,) = _put(peer, b"made at the peer" * 1000)
        move_packs(peer, store, [back.digest])  # the peer's packs hold the items too: dead bytes here
        assert store.read_bytes(back.digest) == b"made at the peer" * 1000
        assert store.fsck().ok and peer.fsck().ok

    def test_file_packs_weigh_every_chunk_of_the_files_once_in_the_order_they_are_needed(self, store):
        first = _put(store, b"small", random_bytes(2 * MiB, 84) + text_bytes(2 * MiB, 84))
        recipes = store.recipes([r.digest for r in first])
        chunks = list(dict.fromkeys(c for r in recipes.values() for c in r.chunks))
        assert len(chunks) > 2  # a file of several chunks
        (piece,) = [data for _, data in store.read_chunks([recipes[first[1].digest].chunks[0]])]
        (later,) = _put(store, b"in a pack of its own" * 100)
        (same_as_a_chunk,) = _put(store, piece)  # a one-chunk file that is a chunk of the large one
        absent = _b3(b"not stored")
        asked = [later.digest, *(r.digest for r in first), first[0].digest, same_as_a_chunk.digest, absent]

        found = store.file_packs(asked)

        # the same packs and counts as pack_shares of their chunks: each chunk once
        by_chunks = {s.pack_id: s for s in store.pack_shares([*chunks, later.digest])}
        assert {s.pack_id: s for s in found.shares} == by_chunks
        assert sum(s.wanted_chunks for s in found.shares) == len(chunks) + 1
        # the pack the first file asked for needs comes first
        assert found.shares[0].pack_id == store.pack_shares([later.digest])[0].pack_id
        assert found.chunked == [first[1].digest] and found.absent == [absent]
        assert store.file_packs([]) == FilePacks([], [], [])
        assert store.file_packs([absent]) == FilePacks([], [], [absent])

    def test_a_tampered_pack_is_refused_whole_and_nothing_of_it_kept(self, store, peer):
        data = random_bytes(500_000, 82)
        (ref,) = _put(peer, data)
        (share,) = peer.pack_shares(peer.recipes([ref.digest])[ref.digest].chunks)
        for at in (share.size // 2, share.size - 30):  # a chunk's bytes; the trailer
            with store.session() as s:
                path = s.received_pack_path()
                peer.copy_pack(share.pack_id, path)
                _tamper(Path(path), at)
                with pytest.raises(CorruptionError):
                    s.check_pack(path)
                assert not Path(path).exists()
                s.commit()
            assert store.missing_chunks([ref.digest]) == {ref.digest}
            assert store.stats().pack_count == 0
        assert move_packs(peer, store, [ref.digest])  # the pack as it is stored is welcome
        assert store.read_bytes(ref.digest) == data

    def test_a_pack_adopted_twice_is_indexed_once_and_gc_reclaims_the_copy(self, store, peer):
        data = random_bytes(400_000, 83)
        (ref,) = _put(peer, data)
        move_packs(peer, store, [ref.digest])
        move_packs(peer, store, [ref.digest])  # again: another copy of the same chunks
        assert store.stats().chunk_count == 1 and store.stats().pack_count == 2
        assert store.read_bytes(ref.digest) == data and store.fsck().ok
        plan = store.gc(lambda: {ref.digest}, grace=0)
        assert store.read_bytes(ref.digest) == data
        assert plan.orphan_packs or plan.delete_packs or plan.repack or plan.deferred_packs

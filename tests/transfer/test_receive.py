"""The receiving end of a copy, on real local stores: packs adopted whole are indexed at
commit from the session's memory up to ADOPTED_ROWS and staged past it, recipes are
checked against either, and a page of recipes with one bad digest is refused whole."""

from __future__ import annotations

import random

import blake3
import pytest

from lodestore.errors import CorruptionError, InvalidInputError
from lodestore.sdk import transfer
from lodestore.store import session as session_mod
from lodestore.store.base import FileRecipe
from lodestore.store.local import LocalContentStore

MiB = 1024 * 1024


def _pack_per_item(store: LocalContentStore, items: list[bytes]) -> list[str]:
    """Each item stored by a session of its own: a pack each."""
    digests = []
    for data in items:
        with store.session() as s:
            digests.append(s.add_bytes(data).digest)
            s.commit()
    return digests


def _adopt_all(src: LocalContentStore, dst: LocalContentStore, digests: list[str]) -> None:
    """Every pack of `src` holding these files copied whole into one session of `dst`,
    adopted, the files recorded, one commit (sdk/transfer.py's whole-pack path, bare)."""
    recipes = src.recipes(digests)
    with dst.session() as s:
        for share in src.pack_shares(list(dict.fromkeys(c for r in recipes.values() for c in r.chunks))):
            path = s.received_pack_path()
            src.copy_pack(share.pack_id, path)
            s.adopt_pack(s.check_pack(path))
        s.add_recipes(recipes.values())
        s.commit()


@pytest.mark.parametrize("held_in_memory", [10**6, 1], ids=["all-in-memory", "past-the-bound-staged"])
def test_packs_adopted_whole_are_indexed_and_their_files_checked_held_or_staged(tmp_path, monkeypatch,
                                                                               held_in_memory):
    monkeypatch.setattr(session_mod, "ADOPTED_ROWS", held_in_memory)
    src, dst = LocalContentStore(tmp_path / "src"), LocalContentStore(tmp_path / "dst")
    rng = random.Random(7)
    items = [rng.randbytes(3 * MiB), b"one small file", rng.randbytes(200_000), rng.randbytes(5 * MiB)]
    digests = _pack_per_item(src, items)
    _adopt_all(src, dst, digests)  # files of many chunks are read back from the adopted packs
    for digest, data in zip(digests, items, strict=True):
        assert dst.read_bytes(digest) == data
    assert dst.stats().pack_count == len(items) and dst.fsck().ok
    assert dst.missing_chunks([c for r in src.recipes(digests).values() for c in r.chunks]) == set()


def test_a_page_of_recipes_with_one_bad_digest_is_refused_naming_it_and_records_nothing(tmp_path):
    store = LocalContentStore(tmp_path / "store")
    digests = _pack_per_item(store, [b"a", b"b"])
    with store.session() as s:
        good = [FileRecipe(d, 1, (d,)) for d in digests]
        bad = digests[1].upper()
        unstored = blake3.blake3(b"ab").hexdigest()  # a file of two chunks, one spelled wrong
        for page in ([*good, FileRecipe(bad, 1, (bad,))], [*good, FileRecipe(unstored, 2, (digests[0], bad))]):
            with pytest.raises(InvalidInputError, match=bad):
                s.add_recipes(page)
        assert list(s.new_file_rows()) == []


# Where a version-2 pack's first block lies: magic (8 bytes), the block header ("LPBK",
# count: 8), then each record's header (digest 32, codec 1, raw_len 4, stored_len 4).
_FIRST_RECORD = 8 + 8
_SECOND_RECORD = _FIRST_RECORD + 41


@pytest.mark.parametrize("at", [8, 12, _FIRST_RECORD, _FIRST_RECORD + 32, _FIRST_RECORD + 33, _FIRST_RECORD + 37,
                                _SECOND_RECORD + 5, _SECOND_RECORD + 40],
                         ids=["block-magic", "block-count", "digest", "codec", "raw-len", "stored-len",
                              "second-digest", "second-stored-len"])
def test_a_received_pack_whose_record_headers_disagree_with_its_trailer_is_refused(tmp_path, at):
    src, dst = LocalContentStore(tmp_path / "src"), LocalContentStore(tmp_path / "dst")
    with src.session() as s:
        digests = [s.add_bytes(f"file {i}".encode() * 50).digest for i in range(5)]  # one pack, one block
        s.commit()
    (share,) = src.pack_shares(digests)
    with dst.session() as s:
        path = s.received_pack_path()
        src.copy_pack(share.pack_id, path)
        data = bytearray(path.read_bytes())
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(CorruptionError, match="received"):
            s.check_pack(path)
        assert not path.exists()
        s.commit()
    assert dst.missing_chunks(digests) == set(digests) and dst.stats().pack_count == 0


def test_a_copy_into_an_empty_store_records_each_page_as_its_packs_arrive_never_before(here, there, make,
                                                                                      monkeypatch):
    """Into a store that held nothing, a page's files are recorded as soon as the packs
    holding their chunks are adopted, while later packs still download (not all after
    the last one), and never before: at every batch commit, each file the destination
    shows has every chunk it needs (a copy killed there leaves no file without them)."""
    monkeypatch.setattr(session_mod, "PACK_TARGET_SIZE", 256 * 1024)  # the source's packs: dozens
    monkeypatch.setattr(transfer, "ADOPT_THREADS", 1)  # the packs arrive in the order the files need them
    rng = random.Random(11)
    files = {f"f{i:05d}.bin": rng.randbytes(4096) for i in range(3 * transfer.FILE_PAGE)}
    files["big.bin"] = rng.randbytes(3 * MiB)  # many chunks, in several packs
    make("zoo/data", files)
    digests = {blake3.blake3(data).hexdigest() for data in files.values()}
    recipes = here._repo.store.recipes(digests)
    dest = there._repo.store
    recorded_at_commits: list[int] = []

    def after_each_batch_commit(phase: str) -> None:
        if phase == "transfer-after-batch-commit":
            recorded = digests - dest.missing(digests)
            assert dest.missing_chunks([c for d in recorded for c in recipes[d].chunks]) == set()
            recorded_at_commits.append(len(recorded))

    monkeypatch.setattr(transfer, "pause_point", after_each_batch_commit)
    source = transfer.RepositorySource(here._repo, transfer.select_versions(here._repo, ["zoo/data:v0"]))

    result = transfer.copy_versions(source, there._repo, commit_bytes=512 * 1024)

    assert result.files_moved == len(files) and result.bytes_moved == sum(map(len, files.values()))
    assert any(0 < n < len(digests) for n in recorded_at_commits), recorded_at_commits
    assert recorded_at_commits[-1] == len(digests)
    out = there.download(there.version("zoo/data:v0"), there._repo.root.parent / "out")
    assert all((out / rel).read_bytes() == data for rel, data in files.items())
    assert dest.fsck().ok

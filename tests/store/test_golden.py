"""Golden tests: the on-disk format, pinned.

Chunk boundaries and digests decide which bytes a store shares between versions and
what every manifest and pack refers to. If a test here fails, the on-disk format has
changed (a new pyfastcdc, other chunker parameters, another hash, another pack layout):
that needs a FORMAT_VERSION bump in lodestore/store/layout.py and a migration, never
an update of these literals alone.
"""

from __future__ import annotations

import json
import random
import struct

import blake3
import zstandard

from lodestore.store import packs
from lodestore.store.chunking import chunk_bytes
from lodestore.store.layout import FORMAT_VERSION, format_description
from lodestore.store.local import LocalContentStore

from .data import MiB
from .sql import index_sql


def golden_input() -> bytes:
    """3 MiB of seeded random bytes (weights) followed by ~1.1 MB of text (logs)."""
    text = "".join(
        f"{i:06d} the quick brown fox jumps over the lazy dog {i * i % 9973}\n" for i in range(20000)
    )
    return random.Random(1234).randbytes(3 * MiB) + text.encode()


GOLDEN_SIZE = 4263436
GOLDEN_FILE_DIGEST = "ba4b5c61590aefda916674de3fa2ddfec43ed7ba959f01f1b9d93f5594ac515c"

GOLDEN_CHUNK_LENGTHS = [
    26146,
    125990,
    103605,
    109929,
    51575,
    57500,
    51658,
    63231,
    131867,
    145148,
    95407,
    79989,
    77798,
    23012,
    28605,
    57285,
    29708,
    97809,
    135458,
    32919,
    35679,
    27086,
    163428,
    129655,
    157653,
    91716,
    95092,
    66990,
    79104,
    17443,
    75688,
    70486,
    43676,
    87455,
    77018,
    169190,
    97161,
    67263,
    202770,
    22899,
    72162,
    75690,
    71992,
    63205,
    123422,
    121046,
    88549,
    124024,
    95631,
    68644,
    56980,
]

GOLDEN_CHUNK_DIGESTS = [
    "018a6bd5ca2808efe45d8714bb1765da5c0c727b578313f371ca1fc5d97e112d",
    "b782046b173086641b164589f882f46a9c19b2b16e0c807c39db3165c5efc5e2",
    "96c3716635626afd7928b630749d35e1151f7c37040e4c3fb49f49fe9ceaa052",
    "a5d1450a7e26e17ec23f85f9a2efbef4155ace167a9581249c0f45f7796201f2",
    "e6f9d4664d6b9fe8c0c11f0441cb8f7259f328b0c19cfb5e1bb5dec0bd5122e4",
    "e587754de57b13fd8805968ec70dbcd918ad8bc2e552baf763369bbedc3701cb",
    "c73448ff21ec30e8aeefbe7ee1896e76b251c52983b171bc9e8b9d7b710241f7",
    "d449234721cdb3f4f07e359fb1230b8515e253388c5f2e29b7079382cb593370",
    "c9251b2c9be8fd8795a5176fdde07c31be8338b4e7efb77823fd4219bc1e3b98",
    "9d9fdc6deb0d542789b83a006b51888b5c3ad2a404ae95dc326ac43e1456304b",
    "bea9ee29d8bc90971366a9d91dd7e0a1887717854e9cf2024e663b6b9a94f52c",
    "7948c866a3a4376a9f83484ea73cdf2fa3d0f46cde4625be212fcc9f39766a65",
    "da89f94453b9e7cf7a453868898814c180f493330f529ed366c6c1d6f20f0c15",
    "2aa09ad5c50ad5c476252f0072212cf8f6646887b1f6cde57b2e1235405f2cc0",
    "d0bbc65d816be108e8502ba3b9df8fd30595c91c1624029365c5aaba8cc681e5",
    "ec258a7bb3340e3a83b611aabc118c9f32ca48c2e560f1db1a86f80691116b48",
    "b61082cf3478629dd5712a589cdb30c89daa09e7b55a5b2d046c3481e30aafe4",
    "a99fbb54781d84cfbe2b7f708cf63a82dd9560347700e0ac00f7335b44ae479d",
    "6aab09ba1f9bcb1691b89adc1360aeef326d9496941ccb74779417b77315459e",
    "2317d1a8099b81e47cc10f2b91d8f71c56c0e8cfef1441205b5042d27125580c",
    "9077d450f77e207b16d6445a8284bc6d092a586926acfbf4201759e097d656e0",
    "1a3215a6e8caafaafe4f5d25289fc1a9f91a3834168af0a63960be60f5b467ec",
    "3738e1dc090b243bfb32d359926d8698bfeb4f7fcc72c50c647ebdc5be00db3f",
    "f1529a8827b03244f1178b2309049400614084d55550a3a9ed91cddf241dcf59",
    "f8912d43c81ae4c71ab44ffa97a711da236fcff500c73eb468d1303bdf5cebaa",
    "564eb026aa76c1f95350d9469aee70d5b13c58a687f066a2bde152bfcae11a4a",
    "6023da46d82eae2080968d560f5ef81ab8bef845fa9a80ff53e6abcda10725e5",
    "7c0c8b588bf7c555a611f8eb40533e2bed1576dcceafc0ed9c6a9eeeb5879f90",
    "542d706f16596102675bdbf5aa51ebb4a3285031d0723183cfaaa00578b4926e",
    "687e0ab3d0359097b1a24cd12d04b2ab19a84396080d1ad3e6336fa330e414f3",
    "496f1fa13493b6f08e3a49df37a6d6b36ecaa6c546373f523fbcb802d86390b0",
    "abcb29ba9de5c8c0632a041ae9f4ae9db9cd0c9895b997e2205c42322696187b",
    "1f753af1db4984fa95e31ca9ef9afc7c06e4f25de5650dcf7034b1cb6f851c9f",
    "1c8cb987ebbe7c7465fe2f55e603757ebf37a2b329759745ea5d2c95234523f6",
    "f20cc09597341ad408c50d4863c0e2aee9de0e31d3096b095332e252ef390c86",
    "fa06b5a0b44fd5575ec9ff3d126d041bd8e976eaf5213abddc99fe0453a6c847",
    "eb9b1446d21b89278f4a40093cf5ecd7abccd962e29b7cba0750c63bba6076f9",
    "91742ded90c43b4e59cab5b77075dbc14139a9b4457a3e7be67b74f827a88240",
    "22b55ad93476d7226f561791ba9bd384e521bf5bf36014e8148a896d22e2e1c7",
    "1b9f711ac3ae2b14fff34345df8eab1cbd28da350de8a3c85a8257e0ae7c08f8",
    "6f5017f5df83b5227a27ddfa137cb5283382231930b2e9f2f522c3ab223f789d",
    "57cd69791740a711a51e97b08d2aca00cd1418d11a2f422499af9be164750645",
    "01573072d2a996890da1a69881a392139c59c5a1d5084c1f5ef0ddf11e6f0de7",
    "b7f5b54a106f93d40f0c4c3537e157617a0984634289f5b83118760079be2208",
    "bed82df21076b53a97f8c4a310738859bcf883e82da12127b3fe176bf2b59689",
    "0f0326bb054656b38363cb5418163d5a71f2eb7b130950633841a7526d34adb0",
    "2637cfbc5f7ab56e9009029ef774ec0b4184de3eb503bfacd1ae6513b5e4c8f5",
    "2508b74a9acf792969eb969ee1f0e490f909a545e634195742c799e9ab11740c",
    "f07979d977c2502f00f52d88bfe889a60d215d6e3bc31958d32da1898a24b819",
    "3bfa7cd5ad33a0787778dbb3afa68e19ed1af43e4632438885f4ffe0f8efaa14",
    "c2c3188b462cb2a190d04fd006b798690c80ed3ed7b62b53f07860f0ac84fd23",
]

EMPTY_DIGEST = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
HELLO_DIGEST = "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"

GOLDEN_FORMAT = {
    "format": 2,
    "hash": "blake3-256",
    "chunker": {
        "algorithm": "fastcdc2020/pyfastcdc-0.3.1",
        "avg": 65536,
        "min": 16384,
        "max": 262144,
        "normalization": 1,
        "whole_file_limit": 1048576,
    },
    "pack": {"version": 2, "target_size": 67108864, "compression": "zstd-1"},
}


def test_file_digests():
    assert blake3.blake3(b"").hexdigest() == EMPTY_DIGEST
    assert blake3.blake3(b"hello").hexdigest() == HELLO_DIGEST
    data = golden_input()
    assert len(data) == GOLDEN_SIZE
    assert blake3.blake3(data).hexdigest() == GOLDEN_FILE_DIGEST


def test_chunk_boundaries_and_digests():
    chunks = chunk_bytes(golden_input())
    assert [len(c) for c in chunks] == GOLDEN_CHUNK_LENGTHS
    assert [blake3.blake3(c).hexdigest() for c in chunks] == GOLDEN_CHUNK_DIGESTS


def test_store_writes_the_golden_recipe(tmp_path):
    """The store's own streaming path (add_file) gives the same digests and recipe."""
    (tmp_path / "golden.bin").write_bytes(golden_input())
    (tmp_path / "hello.txt").write_bytes(b"hello")
    (tmp_path / "empty").write_bytes(b"")
    store = LocalContentStore(tmp_path / "store")
    try:
        with store.session() as s:
            refs = [s.add_file(tmp_path / n) for n in ("golden.bin", "hello.txt", "empty")]
            s.commit()
        assert [r.digest for r in refs] == [GOLDEN_FILE_DIGEST, HELLO_DIGEST, EMPTY_DIGEST]
        assert json.loads((tmp_path / "store" / "format.json").read_text()) == GOLDEN_FORMAT
        ((count, recipe),) = index_sql(store,
            "SELECT chunk_count, recipe FROM files WHERE digest=?", [bytes.fromhex(GOLDEN_FILE_DIGEST)]
        )
        assert count == len(GOLDEN_CHUNK_DIGESTS)
        assert recipe == b"".join(bytes.fromhex(d) for d in GOLDEN_CHUNK_DIGESTS)
        # small files are one record under the file digest, with no recipe
        assert index_sql(store,
            "SELECT chunk_count, recipe FROM files WHERE digest=?", [bytes.fromhex(HELLO_DIGEST)]
        ) == [(1, None)]
    finally:
        store.close()


def test_format_description():
    assert FORMAT_VERSION == 2
    assert format_description() == GOLDEN_FORMAT


def test_pack_layout(tmp_path):
    """A pack (version 2) holding b"hello" and b"world!" raw in one block, byte for byte:
    the block's headers, then both records' bytes back to back (the compressed trailer is
    checked after decompression: zstd's output bytes may differ between zstd releases).
    Version 1 packs (a header before each record) are pinned by tests/store/test_old_store.py,
    which reads a store the version-1 code wrote."""
    path = tmp_path / "p.pack"
    world = blake3.blake3(b"world!").digest()
    w = packs.PackWriter(path, fsync=False)
    w.append_block([(bytes.fromhex(HELLO_DIGEST), 0, 5, b"hello"), (world, 0, 6, b"world!")])
    w.finish()
    blob = path.read_bytes()
    block = (b"LODEPK02" + b"LPBK" + bytes.fromhex("02000000")
             + bytes.fromhex(HELLO_DIGEST) + bytes.fromhex("000500000005000000")
             + world + bytes.fromhex("000600000006000000")
             + b"hello" + b"world!")
    assert blob[: len(block)] == block
    trailer_offset, trailer_len, count, magic = struct.unpack("<QII8s", blob[-24:])
    assert (trailer_offset, count, magic) == (len(block), 2, b"LODEPKTR")
    assert trailer_offset + trailer_len + 24 == len(blob)
    trailer = zstandard.ZstdDecompressor().decompress(blob[trailer_offset : trailer_offset + trailer_len])
    # entry: digest, codec u8, offset u64 (of the stored bytes: 8 magic + 8 block head + 2 x 41), raw u32, stored u32
    assert trailer == (bytes.fromhex(HELLO_DIGEST) + bytes.fromhex("0062000000000000000500000005000000")
                       + world + bytes.fromhex("0067000000000000000600000006000000"))

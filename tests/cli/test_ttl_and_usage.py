"""`lode put --ttl`, TTL and both exclusive figures in `lode info`, and `lode versions`
accounting computed for the versions shown."""

from __future__ import annotations

from pathlib import Path

import lodestore


def test_put_ttl_is_shown_by_info_and_pruned(lode, tmp_path: Path) -> None:
    src = tmp_path / "labels.csv"
    src.write_text("id,label\n" + "".join(f"{i},cat\n" for i in range(20000)))
    r = lode("put", src, "--name", "zoo/labels", "--type", "dataset", "--ttl", "30d", "--json")
    assert r.code == 0, r.err
    assert r.json()["ttl_seconds"] == 30 * 86400

    info = lode("info", "zoo/labels:v0", "--json").json()
    assert info["ttl_seconds"] == 30 * 86400
    # compressible CSV: stored exclusive bytes are smaller than the logical ones
    assert 0 < info["exclusive_size"] < info["exclusive_logical"] == src.stat().st_size
    text = lode("info", "zoo/labels:v0").out
    assert "30d" in text and "lode prune" in text

    # a TTL already expired is applied by prune
    art = lodestore.Api().artifact("zoo/labels:v0")
    assert art.ttl.days == 30
    r = lode("put", src, "--name", "zoo/short", "--ttl", "1s")
    assert r.code == 0, r.err
    import time

    time.sleep(1.2)
    plan = lode("prune", "--dry-run", "--json")
    assert plan.code == 0, plan.err
    assert "zoo/short" in plan.out and "zoo/labels" not in plan.out


def test_put_refuses_a_bad_ttl(lode, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("a")
    for bad in ("soon", "0d", "-3h"):
        r = lode("put", src, "--name", "zoo/a", "--ttl", bad)
        assert r.code == 2 and "duration" in r.err, (bad, r.err)
    assert lode("ls", "--json").json() == []


def test_versions_shows_exclusive_for_each_shown_version(lode, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "shared.bin").write_bytes(b"s" * 5000 + bytes(range(256)) * 40)
    lode("put", d, "--name", "zoo/d")
    (d / "only_v1.bin").write_bytes(bytes(range(256)) * 100 + b"v1")
    lode("put", d, "--name", "zoo/d")
    rows = lode("versions", "zoo/d", "--json").json()
    assert [r["version"] for r in rows] == ["v0", "v1"]
    v0, v1 = rows
    assert v0["exclusive_size"] == 0  # everything v0 holds, v1 holds too
    assert v1["exclusive_size"] > 0  # only_v1.bin

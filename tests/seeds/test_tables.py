"""Tables in artifacts: `Table(columns, data)` / `Table(dataframe=)`, `add_data`, stored
as Parquet, `artifact.add(table, name)` / `artifact.get(name)`, partitioned tables, and
their previews in `lode files` / `lode show` (issue 15)."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import lodestore

# Also on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too


def _log(*objs: tuple[object, str]) -> lodestore.Artifact:
    with lodestore.init(project="t") as run:
        art = lodestore.Artifact("tab", type="dataset")
        for obj, name in objs:
            art.add(obj, name)
        run.log_artifact(art)
    return lodestore.Api().artifact("t/tab:latest")


def test_table_round_trip_as_parquet(store, tmp_path):
    table = lodestore.Table(columns=["a", "b", "c"], data=[[1, 2, 4]])
    table.add_data(2, 4, 8)
    art = _log((table, "metrics/scores"))
    assert [f.path for f in art.files()] == ["metrics/scores.table.parquet"]
    assert art.get("metrics/scores") == table
    # a downloaded version is plain Parquet, read by any dataframe library
    folder = art.download(root=tmp_path / "dl")
    assert pq.read_table(folder / "metrics/scores.table.parquet").to_pylist() == [
        {"a": 1, "b": 2, "c": 4}, {"a": 2, "b": 4, "c": 8}]


def test_table_from_a_dataframe(store):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [1.5, 2.5], "label": ["cat", "dog"]})
    got = _log((lodestore.Table(dataframe=df), "df")).get("df")
    assert got.columns == ["x", "label"] and got.data == [[1.5, "cat"], [2.5, "dog"]]
    assert got.get_dataframe().equals(df)


def test_partitioned_table_reads_its_parts_as_one(store):
    parts = [(lodestore.Table(columns=["a", "b"], data=[[i, i * 2]]), f"parts/table_{i}") for i in (10, 2, 1)]
    art = _log(*parts, (lodestore.data_types.PartitionedTable("parts"), "distributed_table"))
    assert art.get("distributed_table").data == [[1, 2], [2, 4], [10, 20]]  # natural order of the part names
    assert art.get("parts/table_2").data == [[2, 4]]


def test_bad_tables_are_refused_clearly(store):
    with pytest.raises(lodestore.InvalidInputError, match="has 2 values"):
        lodestore.Table(columns=["a", "b"]).add_data(1)
    with pytest.raises(lodestore.InvalidInputError, match="Table or PartitionedTable"):
        lodestore.Artifact("x", type="t").add("not a table", "n")
    art = _log((lodestore.Table(columns=["a"], data=[[1]]), "only"))
    with pytest.raises(lodestore.NotFoundError, match=r"no table 'other' \(tables: only\)"):
        art.get("other")


def test_lode_files_and_show_preview_the_first_rows(store, lode):
    rows = [[i, f"row{i}"] for i in range(8)]
    _log((lodestore.Table(columns=["n", "label"], data=rows), "big"))
    files = lode("files", "t/tab:latest")
    assert files.code == 0 and "table big: 8 rows (first 5)" in files.out and "row4" in files.out
    assert "row5" not in files.out
    shown = lode("show", "t/tab:latest", "big", "--rows", "7")
    assert "row6" in shown.out and "row7" not in shown.out
    assert lode("show", "t/tab:latest", "big", "--json").json() == {
        "columns": ["n", "label"], "rows": rows[:5], "total_rows": 8}
    missing = lode("show", "t/tab:latest", "nope")
    assert missing.code == 3 and "no table 'nope'" in missing.err

"""Tables inside artifacts: `Table` (W&B's ``wandb.Table``) and `PartitionedTable`.

A table is stored as one Parquet file in the artifact, entry ``<name>.table.parquet``,
so pandas, polars, DuckDB or pyarrow read a downloaded version directly. A partitioned
table is a small JSON entry ``<name>.partitioned-table.json`` naming a folder of table
parts (the FAQ's Ray sample writes one part per writer into ``parts/``);
``artifact.get(name)`` reads every part back as one table, parts in natural order of
their paths (``table_2`` before ``table_10``).

Parquet needs pyarrow (``pip install 'lodestore[tables]'``). It is imported on the first
table operation, not with lodestore: importing it costs ~200 ms and ~30 MB, which every
`lode` command and every store process would pay (tests/store measure both). Without
it, a table operation says what to install.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from lodestore.errors import InvalidInputError, LodestoreError

TABLE_SUFFIX = ".table.parquet"
PARTITIONED_SUFFIX = ".partitioned-table.json"
PREVIEW_ROWS = 5


class TablesUnavailableError(LodestoreError):
    """pyarrow is not installed."""

    exit_code = 2


def _arrow() -> Any:
    """The pyarrow module, imported on first use (see the module docstring)."""
    try:
        import pyarrow  # noqa: PLC0415  (optional and heavy: imported on the first table operation)
    except ImportError:
        raise TablesUnavailableError("tables are stored as Parquet, which needs pyarrow: "
                                     "pip install 'lodestore[tables]'") from None
    return pyarrow


def _parquet() -> Any:
    _arrow()
    import pyarrow.parquet  # noqa: PLC0415  (as _arrow)

    return pyarrow.parquet


class Table:
    """Rows under named columns. ``Table(columns=["a", "b"], data=[[1, 2]])``,
    ``Table(dataframe=df)`` (a pandas DataFrame, or anything pyarrow takes), then
    ``add_data(3, 4)``. `columns`, `data` (list of rows), `get_dataframe()`."""

    def __init__(self, columns: Sequence[str] | None = None, data: Iterable[Sequence[Any]] | None = None,
                 dataframe: Any = None):
        if dataframe is not None:
            if data is not None:
                raise InvalidInputError("Table takes data= or dataframe=, not both")
            arrow = _arrow().Table.from_pandas(dataframe, preserve_index=False) \
                if hasattr(dataframe, "to_numpy") else _arrow().table(dataframe)
            columns = columns or arrow.column_names
            data = [list(r.values()) for r in arrow.to_pylist()]
        rows = [list(r) for r in (data or [])]
        if columns is None:
            width = len(rows[0]) if rows else 0
            columns = [f"col{i}" for i in range(width)]  # W&B's default names are positional too
        self.columns = [str(c) for c in columns]
        if len(set(self.columns)) != len(self.columns):
            raise InvalidInputError(f"Table columns must be unique, got {self.columns}")
        self.data: list[list[Any]] = []
        for row in rows:
            self.add_data(*row)

    def add_data(self, *values: Any) -> None:
        """Append one row (one value per column)."""
        if len(values) != len(self.columns):
            raise InvalidInputError(f"a row of this table has {len(self.columns)} values ({', '.join(self.columns)}),"
                                    f" got {len(values)}")
        self.data.append(list(values))

    def to_arrow(self) -> Any:
        arrow = _arrow()
        try:
            return arrow.table({c: [row[i] for row in self.data] for i, c in enumerate(self.columns)})
        except (arrow.ArrowInvalid, arrow.ArrowTypeError) as e:
            raise InvalidInputError(f"table values cannot be stored as Parquet columns: {e}") from None

    def get_dataframe(self) -> Any:
        """A pandas DataFrame (needs pandas)."""
        return self.to_arrow().to_pandas()

    def to_parquet(self) -> bytes:
        buf = io.BytesIO()
        _parquet().write_table(self.to_arrow(), buf)
        return buf.getvalue()

    @classmethod
    def from_parquet(cls, data: bytes) -> Table:
        arrow = _parquet().read_table(io.BytesIO(data))
        return cls(columns=arrow.column_names, data=[list(r.values()) for r in arrow.to_pylist()])

    @classmethod
    def concat(cls, tables: list[Table]) -> Table:
        """One table of the rows of `tables` in order; their columns must agree."""
        if not tables:
            return cls(columns=[])
        columns = tables[0].columns
        for t in tables[1:]:
            if t.columns != columns:
                raise InvalidInputError(f"table parts disagree on columns: {columns} vs {t.columns}")
        return cls(columns=columns, data=[row for t in tables for row in t.data])

    def preview(self, rows: int = PREVIEW_ROWS) -> list[list[Any]]:
        return self.data[:rows]

    def __len__(self) -> int:
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (self.columns, self.data) == (other.columns, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Table columns={self.columns} rows={len(self.data)}>"


class PartitionedTable:
    """A table whose rows are the table parts under a folder of the artifact
    (``PartitionedTable("parts")``); W&B's ``wandb.data_types.PartitionedTable``."""

    def __init__(self, parts_path: str):
        if not isinstance(parts_path, str) or not parts_path.strip("/"):
            raise InvalidInputError(f"PartitionedTable needs the folder of its parts, not {parts_path!r}")
        self.parts_path = parts_path.strip("/")

    def to_json(self) -> bytes:
        return json.dumps({"parts_path": self.parts_path}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> PartitionedTable:
        try:
            return cls(json.loads(data)["parts_path"])
        except (ValueError, KeyError, TypeError):
            raise InvalidInputError("not a partitioned-table entry (expected {\"parts_path\": ...})") from None

    def part_entries(self, paths: Iterable[str]) -> list[str]:
        """The table entries under the parts folder, in natural order."""
        prefix = self.parts_path + "/"
        return sorted((p for p in paths if p.startswith(prefix) and p.endswith(TABLE_SUFFIX)), key=natural_key)

    def __repr__(self) -> str:
        return f"<PartitionedTable {self.parts_path}/>"


def natural_key(path: str) -> list[Any]:
    """``table_2`` before ``table_10``: digit runs compare as numbers."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def entry_name(obj: Table | PartitionedTable, name: str) -> tuple[str, bytes]:
    """The artifact entry `artifact.add(obj, name)` writes, and its bytes."""
    if isinstance(obj, Table):
        return name + TABLE_SUFFIX, obj.to_parquet()
    if isinstance(obj, PartitionedTable):
        return name + PARTITIONED_SUFFIX, obj.to_json()
    raise InvalidInputError(f"artifact.add() takes a Table or PartitionedTable, not {type(obj).__name__} "
                            "(use add_file / add_dir for files)")


def table_name(path: str) -> str | None:
    """The name a table entry was added under (None if `path` is not a table entry)."""
    for suffix in (TABLE_SUFFIX, PARTITIONED_SUFFIX):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return None

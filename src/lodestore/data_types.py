"""W&B's ``wandb.data_types`` module: the table types, so ``import lodestore as wandb``
code can write ``wandb.data_types.PartitionedTable(...)``."""

from lodestore.sdk.tables import PartitionedTable, Table

__all__ = ["PartitionedTable", "Table"]

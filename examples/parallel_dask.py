"""Parallel writers to one version with Dask (``pip install 'dask[distributed]'``): each
task is a run that upserts its part under an explicit part id, so a task Dask retries
after a worker died re-sends the same part (a no-op); the finish refuses to commit
until every part is in.

    python3 examples/parallel_dask.py [N]
"""

import sys
import time

from dask.distributed import Client, LocalCluster

import lodestore

GROUP = f"dask-writers-{round(time.time())}"


def write(i: int) -> str:
    with lodestore.init(project="examples", group=GROUP) as run:
        art = lodestore.Artifact("dask-table", type="dataset")
        art.add(lodestore.Table(columns=["i", "square"], data=[[i, i * i]]), f"parts/part_{i}")
        run.upsert_artifact(art, part_id=f"part-{i}")
    return f"part-{i}"


def main(n: int) -> None:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        parts = client.gather(client.map(write, range(n)))
    with lodestore.init(project="examples", group=GROUP) as run:
        art = lodestore.Artifact("dask-table", type="dataset")
        art.add(lodestore.data_types.PartitionedTable("parts"), "squares")
        version = run.finish_artifact(art, expected_parts=parts)
    print(version.qualified_name, version.get("squares").data)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)

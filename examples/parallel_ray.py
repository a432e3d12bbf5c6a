"""The W&B FAQ's "log an artifact with distributed processes" sample, as written, on
lodestore (`import lodestore as wandb`): five Ray tasks each upsert one table part into
one version, then one run finishes it. Needs `pip install ray` (in the test extra;
tests/seeds/test_ray.py runs it).

    python3 examples/parallel_ray.py
"""

import time

import ray

import lodestore as wandb

ray.init()

artifact_type = "dataset"
artifact_name = "parallel-artifact"
table_name = "distributed_table"
parts_path = "parts"
num_parallel = 5

# Each batch of parallel writers should have its own unique group name.
group_name = "writer-group-{}".format(round(time.time()))


@ray.remote
def train(i):
    """Our writer job. Each writer will add one table part to the artifact."""
    with wandb.init(group=group_name) as run:
        artifact = wandb.Artifact(name=artifact_name, type=artifact_type)
        table = wandb.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]])
        artifact.add(table, "{}/table_{}".format(parts_path, i))
        run.upsert_artifact(artifact)


result_ids = [train.remote(i) for i in range(num_parallel)]
ray.get(result_ids)

with wandb.init(group=group_name) as run:
    artifact = wandb.Artifact(artifact_name, type=artifact_type)
    artifact.add(wandb.data_types.PartitionedTable(parts_path), table_name)
    run.finish_artifact(artifact)

print(wandb.Api().artifact(f"{artifact_name}:latest").get(table_name).data)

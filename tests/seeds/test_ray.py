"""The W&B FAQ's "log an artifact with distributed processes" sample and
examples/parallel_ray.py on a real Ray.

Ray is started once for this module (`ray.init` takes 5-7 s and ~800 MB on a 2-core
machine): a local cluster in this process, with the module's store in the environment its
workers inherit. Each sample then runs as written, as its own driver process whose
`ray.init()` joins that cluster (`RAY_ADDRESS`, as a driver on a Ray cluster does), so its
`@ray.remote` writers are real Ray workers in other processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import lodestore
from lodestore.sdk import repository
from lodestore.sdk.run import current_run

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[test]')")

SRC = Path(lodestore.__file__).resolve().parents[1]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Settings a developer's shell may carry that would change what the samples see (conftest.py's list).
CLEARED_ENV = ("LODESTORE_PROJECT", "LODESTORE_STORE", "LODESTORE_CATALOG", "LODESTORE_REMOTE",
               "LODESTORE_TEST_PAUSE_AT", "LODESTORE_GC_GRACE_SECONDS", "LODESTORE_CACHE_MAX_BYTES")
DRIVER_TIMEOUT = 180  # seconds for one sample: joining the cluster, five writers, the finish

# The sample as the FAQ prints it (../shared/seeds/wandb_artifacts_faq.md).
RAY_SAMPLE = '''
import wandb
import time

# We will use ray to launch our runs in parallel
# for demonstration purposes. You can orchestrate
# your parallel runs however you want.
import ray

ray.init()

artifact_type = "dataset"
artifact_name = "parallel-artifact"
table_name = "distributed_table"
parts_path = "parts"
num_parallel = 5

# Each batch of parallel writers should have its own
# unique group name.
group_name = "writer-group-{}".format(round(time.time()))

@ray.remote
def train(i):
  """
  Our writer job. Each writer will add one image to the artifact.
  """
  with wandb.init(group=group_name) as run:
    artifact = wandb.Artifact(name=artifact_name, type=artifact_type)

    # Add data to a wandb table. In this case we use example data
    table = wandb.Table(columns=["a", "b", "c"], data=[[i, i*2, 2**i]])

    # Add the table to folder in the artifact
    artifact.add(table, "{}/table_{}".format(parts_path, i))

    # Upserting the artifact creates or appends data to the artifact
    run.upsert_artifact(artifact)

# Launch your runs in parallel
result_ids = [train.remote(i) for i in range(num_parallel)]

# Join on all the writers to make sure their files have
# been added before finishing the artifact.
ray.get(result_ids)

# Once all the writers are done writing, finish the artifact
# to mark it ready.
with wandb.init(group=group_name) as run:
  artifact = wandb.Artifact(artifact_name, type=artifact_type)

  # Create a "PartitionTable" pointing to the folder of tables
  # and add it to the artifact.
  artifact.add(wandb.data_types.PartitionedTable(parts_path), table_name)

  # Finish artifact finalizes the artifact, disallowing future "upserts"
  # to this version.
  run.finish_artifact(artifact)
'''


@dataclass(frozen=True)
class RayCluster:
    address: str  # what a driver's ray.init() joins (RAY_ADDRESS)
    store: Path  # the store its workers (and the drivers) log to
    work: Path  # a folder for the drivers' scripts and working directory

    def run_driver(self, script: Path) -> subprocess.CompletedProcess[str]:
        """Run `script` as a Ray driver on this cluster, from `work`."""
        env = {**os.environ, "RAY_ADDRESS": self.address}
        return subprocess.run([sys.executable, str(script)], cwd=self.work, env=env, capture_output=True,
                              text=True, timeout=DRIVER_TIMEOUT)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """One local Ray for the module. Its workers are started by its raylet and inherit the
    environment set here: the module's store ($LODESTORE_DIR) and this tree's source."""
    base = tmp_path_factory.mktemp("ray")
    cluster_env = {"LODESTORE_DIR": str(base / "store"), "LODESTORE_QUIET": "1", "RAY_USAGE_STATS_ENABLED": "0",
                   "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
    with pytest.MonkeyPatch.context() as env:
        for name in (*CLEARED_ENV, "RAY_ADDRESS"):
            env.delenv(name, raising=False)
        for name, value in cluster_env.items():
            env.setenv(name, value)
        # address="local": a cluster of our own, never one found running on the machine
        # (another test session's, or one started with `ray start`)
        context = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            work = base / "work"
            work.mkdir()
            yield RayCluster(context.address_info["gcs_address"], base / "store", work)
        finally:
            ray.shutdown()
            while current_run() is not None:
                lodestore.finish()
            repository.close_all()


def test_faq_distributed_writers_the_ray_sample(ray_cluster: RayCluster):
    # `import wandb` in the driver and in its Ray workers (which get the script's folder
    # on their path, as Ray does for every driver): lodestore
    (ray_cluster.work / "wandb.py").write_text("from lodestore import *  # noqa\nfrom lodestore import data_types\n")
    script = ray_cluster.work / "ray_sample.py"
    script.write_text(RAY_SAMPLE)
    done = ray_cluster.run_driver(script)
    assert done.returncode == 0, done.stderr[-3000:]

    art = lodestore.Api().artifact("parallel-artifact:latest")
    assert art.version == "v0"  # one version holding every part
    assert art.get("distributed_table").data == [[i, i * 2, 2**i] for i in range(5)]
    producer = art.logged_by()
    assert producer is not None and producer.group.startswith("writer-group-")
    writers = lodestore.Api().runs(filters={"group": producer.group})
    assert len(writers) == 6 and {r.state for r in writers} == {"finished"}  # five Ray writers and the finish
    with lodestore.init(group=producer.group) as run, pytest.raises(lodestore.ConflictError, match="finished"):
        late = lodestore.Artifact("parallel-artifact", type="dataset")
        late.add(lodestore.Table(columns=["a", "b", "c"], data=[[9, 9, 9]]), "parts/table_9")
        run.upsert_artifact(late)  # "disallowing future upserts to this version"


def test_ray_example(ray_cluster: RayCluster):
    done = ray_cluster.run_driver(EXAMPLES / "parallel_ray.py")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "[[0, 0, 1], [1, 2, 2], [2, 4, 4], [3, 6, 8], [4, 8, 16]]" in done.stdout

"""Done when (issue 15): every Python and shell sample of the three seed documents
(../shared/seeds/) runs as written with ``import lodestore as wandb`` / ``as rn``, the
``<entity>/<project>/…`` placeholders filled in, and does what the document says.

Each sample is pasted below as the seed prints it (the W&B core-concepts page lost its
line breaks; they are put back). Shell samples run through `lode` in place of
``wandb artifact`` / ``runicorn artifacts --action``. The FAQ's Ray sample runs on a real
Ray in tests/seeds/test_ray.py (one Ray start for that module).
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import lodestore
import lodestore as rn
import lodestore as wandb

# Every seed sample runs on the embedded store and on the team pair (tests/conftest.py).
pytestmark = pytest.mark.team_too

SRC = Path(lodestore.__file__).resolve().parents[1]


def run_sample(code: str, **names: object) -> tuple[dict, str]:
    """Execute a sample as written; returns its namespace and what it printed."""
    namespace: dict = {"wandb": wandb, "rn": rn, **names}
    out = io.StringIO()
    sys.modules["wandb"] = sys.modules["runicorn"] = lodestore  # `import wandb` in a sample: lodestore
    try:
        with redirect_stdout(out):
            exec(textwrap.dedent(code), namespace)
    finally:
        del sys.modules["wandb"], sys.modules["runicorn"]
    return namespace, out.getvalue()


def _images(*names_sizes: tuple[str, int]) -> None:
    Path("images").mkdir(exist_ok=True)
    for name, size in names_sizes:
        Path("images", name).write_bytes(os.urandom(size))


# ----------------------------------------------------------------------------- W&B core concepts
LOG_ARTIFACT_PY = """
#!/usr/bin/env python
# log_artifact.py
import wandb
run = wandb.init()
artifact = wandb.Artifact('animals', type='dataset')
artifact.add_dir('images')
run.log_artifact(artifact) # Creates `animals:v0`
"""


def test_core_concepts_versions_aliases_storage_and_references(store, s3):
    _images(("cat.png", 200_000), ("dog.png", 100_000))
    run_sample(LOG_ARTIFACT_PY)
    lodestore.finish()
    assert lodestore.Api().artifact("animals:v0").file_count == 2
    _images(("rat.png", 300_000))
    run_sample(LOG_ARTIFACT_PY)  # "rerun log_artifact.py to produce animals:v1"
    lodestore.finish()
    api = lodestore.Api()
    v1 = api.artifact("animals:latest")
    assert v1.version == "v1" and "latest" in v1.aliases
    ns, _ = run_sample("""
        import wandb
        run = wandb.init()
        animals = run.use_artifact('animals:latest')
        directory = animals.download()
        # Train on our image dataset...
    """)
    lodestore.finish()
    assert sorted(p.name for p in Path(ns["directory"]).iterdir()) == ["cat.png", "dog.png", "rat.png"]
    # Storage layout: v1 tracks 600 KB but costs only rat.png's bytes beyond v0's
    v0 = api.artifact("animals:v0")
    assert v1.size == 600_000 and v1.exclusive_size < 310_000 and v0.exclusive_size == 0

    try:
        s3.create_bucket(Bucket="my-bucket")
    except s3.exceptions.BucketAlreadyOwnedByYou:  # the same sample on another backend pair
        pass
    s3.put_object(Bucket="my-bucket", Key="animals/cat.png", Body=b"cat")
    ns, _ = run_sample("""
        import wandb
        run = wandb.init()
        artifact = wandb.Artifact('animals', type='dataset')
        artifact.add_reference('s3://my-bucket/animals')
    """)
    ns["run"].log_artifact(ns["artifact"])
    lodestore.finish()
    ref = api.artifact("animals:latest")
    assert ref.file_count == 0 and [r.uri for r in ref.references()] == ["s3://my-bucket/animals/cat.png"]


# ----------------------------------------------------------------------------- W&B FAQ
def _log(project: str, name: str, type: str = "dataset", content: str = "x", aliases=()) -> None:
    Path("f.txt").write_text(content)
    with lodestore.init(project=project) as run:
        art = lodestore.Artifact(name, type=type)
        art.add_file("f.txt")
        run.log_artifact(art, aliases=list(aliases))


def test_faq_update_an_artifact_programmatically(store):
    _log("bikes", "bike-dataset")
    _log("cars", "car-dataset")  # a second project: the bare name still resolves
    run_sample("""
        api = wandb.Api()
        artifact = api.artifact('bike-dataset:latest')

        # Update the description
        artifact.description = "My new description"

        # Selectively update metadata keys
        artifact.metadata["oldKey"] = "new value"

        # Replace the metadata entirely
        artifact.metadata = {"newKey": "new value"}

        # Add an alias
        artifact.aliases.append('best')

        # Remove an alias
        artifact.aliases.remove('latest')

        # Completely replace the aliases
        artifact.aliases = ['replaced']

        # Persist all artifact modifications
        artifact.save()
    """)
    saved = lodestore.Api().artifact("bikes/bike-dataset:v0")
    assert saved.description == "My new description" and saved.metadata == {"newKey": "new value"}
    assert set(saved.aliases) == {"latest", "replaced"}  # latest is the store's, and stays on the newest


def test_faq_log_to_an_existing_run(store):
    with lodestore.init(id="existing_run_id"):
        pass
    Path("my_data").mkdir()
    Path("my_data/file.txt").write_text("data")
    run_sample("""
        with wandb.init(id="existing_run_id", resume="allow") as run:
            artifact = wandb.Artifact("artifact_name", "artifact_type")
            artifact.add_file("my_data/file.txt")
            run.log_artifact(artifact)
    """)
    logged = lodestore.Api().run("existing_run_id").logged_artifacts()
    assert [a.qualified_name for a in logged] == ["default/artifact_name:v0"]


def test_faq_shell_put_get_and_cache_cleanup(store, lode):
    Path("mnist").mkdir()
    Path("mnist/train.bin").write_bytes(b"digits" * 100)
    put = lode(*shlex.split("put -n project/artifact -t dataset mnist/"))  # $ wandb artifact put ...
    assert put.code == 0
    got = lode(*shlex.split("get project/artifact:latest --root mnist2/"))  # $ wandb artifact get ... --root
    assert got.code == 0 and Path("mnist2/train.bin").read_bytes() == b"digits" * 100
    lode("get", "project/artifact:latest", "--root", "cached/", "--hardlink")
    cleaned = lode(*shlex.split("cache cleanup 1GB"))  # $ wandb artifact cache cleanup 1GB
    assert cleaned.code == 0


def test_faq_download_outside_a_run_and_clean_up_versions(store):
    for i in range(3):
        _log("p", "data", content=str(i))
    ns, _ = run_sample("""
        api = wandb.Api()

        artifact = api.artifact('data:v0')
        artifact_dir = artifact.checkout()
    """)
    assert Path(ns["artifact_dir"], "f.txt").read_text() == "0"
    run_sample("""
        api = wandb.Api()

        artifact_type, artifact_name = "dataset", "data" # fill in the desired type + name
        for version in api.artifact_versions(artifact_type, artifact_name):
            # Clean up all versions that don't have an alias such as 'latest'.
            #
            # NOTE: You can put whatever deletion logic you want here.
            if len(version.aliases) == 0:
                version.delete()
    """)
    assert [v.version for v in lodestore.Api().artifact_versions("dataset", "data")] == ["v2"]


def test_faq_traverse_the_graph(store):
    _log("p", "data")
    with lodestore.init(project="p") as run:
        run.use_artifact("data:v0")
        Path("m.pt").write_text("m")
        run.log_artifact("m.pt", name="model", type="model")
    ns, _ = run_sample("""
        api = wandb.Api()

        artifact = api.artifact('data:v0')

        # Walk up and down the graph from an artifact:
        producer_run = artifact.logged_by()
        consumer_runs = artifact.used_by()

        # Walk up and down the graph from a run:
        logged_artifacts = run.logged_artifacts()
        used_artifacts = run.used_artifacts()
    """, run=lodestore.Api().run(run.id))  # `run`: the sample's consumer run
    assert ns["producer_run"] is not None and [r.id for r in ns["consumer_runs"]] == [run.id]
    assert [a.name for a in ns["logged_artifacts"]] == ["model:v0"]
    assert [a.name for a in ns["used_artifacts"]] == ["data:v0"]


def test_faq_best_run_of_a_sweep_and_sweep_models_and_code(store, capsys):
    for acc in (0.7, 0.9):
        with lodestore.init(project="tune", group="sweep-abc", config={"acc": acc}) as run:
            Path("model.pt").write_text(str(acc))
            run.log_artifact("model.pt", name=f"model-{run.id}", type="model")
            run.summary["val_acc"] = acc
    _, printed = run_sample("""
        import wandb
        api = wandb.Api()
        sweep = api.sweep("me/tune/sweep-abc")
        runs = sorted(sweep.runs, key=lambda run: run.summary.get("val_acc", 0), reverse=True)
        best_run = runs[0]
        for artifact in best_run.logged_artifacts():
          artifact_path = artifact.download()
          print(artifact_path)
    """)
    [path] = printed.split()
    assert Path(path, "model.pt").read_text() == "0.9"
    ns, _ = run_sample("sweep_model = wandb.Artifact(name='sweep-abc', type='model')")
    assert ns["sweep_model"].name == "sweep-abc"
    Path("train.py").write_text("print('train')\n")
    run_sample("""
        code_artifact = wandb.Artifact(type='code')
        code_artifact.add_dir('.')
        wandb.log_artifact(code_artifact)
    """)
    lodestore.finish()
    [code] = lodestore.Api().artifacts(type="code")
    assert code.name == "source-work"  # named after the folder, as W&B names source artifacts


# ----------------------------------------------------------------------------- Runicorn guide
def test_runicorn_quick_start_features_and_queries(store, s3, capsys):
    Path("model.pth").write_bytes(b"weights" * 100)
    _, printed = run_sample("""
        import runicorn as rn

        # Train model
        run = rn.init(project="image_classification", name="resnet50_v1")

        # Create artifact
        model = rn.Artifact("resnet50-model", type="model")
        model.add_file("model.pth")
        model.add_metadata({
            "architecture": "ResNet50",
            "val_acc": 0.95,
            "epochs": 100
        })

        # Save (automatic version control)
        version = run.log_artifact(model)  # → v1
        print(f"Saved model: resnet50-model:v{version}")

        rn.finish()
    """)
    assert "Saved model: resnet50-model:v0" in printed  # versions count from v0 here (the guide's v1)
    ns, _ = run_sample("""
        import lodestore as rn

        # Inference run
        run = rn.init(project="inference")

        # Load latest version
        artifact = run.use_artifact("resnet50-model:latest")
        model_path = artifact.download()

        rn.finish()
    """)
    assert (ns["model_path"] / "model.pth").read_bytes() == b"weights" * 100  # a Path: `model_path / "model.pth"`

    Path("checkpoint.pth").write_bytes(b"ckpt")
    Path("checkpoints").mkdir()
    for f in ("a.pt", "run.log", "x.tmp"):
        Path("checkpoints", f).write_text(f)
    ns, _ = run_sample("""
        artifact = rn.Artifact("my-model", type="model")

        # Add single file
        artifact.add_file("model.pth")

        # Add with rename
        artifact.add_file("checkpoint.pth", name="model2.pth")  # the guide's name="model.pth" is taken above

        # Add entire directory
        artifact.add_dir("checkpoints/")

        # Add directory with exclusions
        artifact.add_dir("checkpoints/", exclude_patterns=["*.log", "*.tmp"])
    """)
    # the folder added twice: its files once (the same bytes again are no conflict)
    assert sorted(ns["artifact"].draft.files) == ["a.pt", "model.pth", "model2.pth", "run.log", "x.tmp"]
    run = rn.init(project="training")
    run_sample("""
        artifact = rn.Artifact("my-model", type="model")
        artifact.add_file("model.pth")

        # Add metadata (any JSON data)
        artifact.add_metadata({
            "architecture": "ResNet50",
            "val_acc": 0.95,
            "val_loss": 0.23,
            "epochs": 100,
            "optimizer": "Adam",
            "learning_rate": 0.001,
            "batch_size": 64,
            "notes": "Best model from hyperparameter sweep"
        })

        # Add tags
        artifact.add_tags("production", "resnet", "imagenet")

        run.log_artifact(artifact)
    """, run=run)
    run_sample("""
        # For very large datasets, don't copy, just record reference
        dataset = rn.Artifact("imagenet-full", type="dataset")
        dataset.add_reference(
            uri="s3://my-bucket/imagenet-full",
            checksum="sha256:abc123...",
            size=150_000_000_000  # 150 GB
        )
        dataset.add_metadata({
            "num_samples": 1_281_167,
            "num_classes": 1000
        })

        run.log_artifact(dataset)
    """, run=run)
    assert lodestore.Api().artifact("training/imagenet-full:v0").references()[0].size == 150_000_000_000
    for i in range(3):  # my-model:v3 needs four versions; "production" is set on the newest
        Path("model.pth").write_bytes(b"w%d" % i)
        art = rn.Artifact("my-model", type="model")
        art.add_file("model.pth")
        art.add_metadata({"val_acc": 0.9 + i / 100})
        run.log_artifact(art, aliases=["production"] if i == 2 else [])
    ns, printed = run_sample("""
        # Use latest version
        artifact = run.use_artifact("my-model:latest")

        # Use specific version number
        artifact = run.use_artifact("my-model:v3")

        # Use alias (if set)
        artifact = run.use_artifact("my-model:production")

        # Download to temp directory
        artifact = run.use_artifact("my-model:latest")
        model_dir = artifact.download()  # Returns temp directory path
        model_file = model_dir / "model.pth"

        # Download to specific directory
        model_dir = artifact.download(target_dir="./models")

        artifact = run.use_artifact("my-model:latest")

        # Get metadata object
        metadata = artifact.get_metadata()
        print(f"Accuracy: {metadata.metadata['val_acc']}")
        print(f"Created: {metadata.created_at}")
        print(f"Size: {metadata.size_bytes} bytes")

        # Get file manifest
        manifest = artifact.get_manifest()
        print(f"Files: {manifest.total_files}")
        for file in manifest.files:
            print(f"  {file.path} ({file.size} bytes)")
    """, run=run)
    assert ns["model_file"].read_bytes() == b"w2" and Path("models/model.pth").read_bytes() == b"w2"
    assert "Accuracy: 0.92" in printed and "Size: 2 bytes" in printed
    assert "Files: 1" in printed and "  model.pth (2 bytes)" in printed
    rn.finish()


def test_runicorn_lineage_workflows_and_practices(store):
    Path("data").mkdir()
    Path("data/x.csv").write_text("1,2")
    Path("model.pth").write_text("m")
    Path("processed_data").mkdir()
    Path("processed_data/p.csv").write_text("3,4")
    Path("checkpoint.pth").write_text("c")
    run_sample("""
        # Run 1: Prepare dataset
        run1 = rn.init(project="training", name="data_prep")
        dataset = rn.Artifact("my-dataset", type="dataset")
        dataset.add_dir("data/")
        run1.log_artifact(dataset)  # → my-dataset:v1
        rn.finish()

        # Run 2: Train model using dataset
        run2 = rn.init(project="training", name="model_train")
        dataset = run2.use_artifact("my-dataset:v1".replace("v1", "v0"))  # Automatically recorded
        # Training...
        model = rn.Artifact("my-model", type="model")
        model.add_file("model.pth")
        run2.log_artifact(model)  # → my-model:v1
        rn.finish()
    """)
    model = lodestore.Api().artifact("training/my-model:v0")
    assert [v.name for v in model.upstream()] == ["my-dataset:v0"]  # my-dataset → run2 → my-model
    run_sample("""
        # Step 1: Prepare dataset
        run_data = rn.init(project="ml_pipeline", name="data_prep")
        dataset = rn.Artifact("processed-data", type="dataset")
        dataset.add_dir("processed_data/")
        dataset.add_metadata({"num_samples": 10000})
        run_data.log_artifact(dataset)  # → processed-data:v1
        rn.finish()

        # Step 2: Train model
        run_train = rn.init(project="ml_pipeline", name="training")
        dataset = run_train.use_artifact("processed-data:v0")  # Auto-tracked
        data_path = dataset.download()

        # Training...
        model = rn.Artifact("trained-model", type="model")
        model.add_file("model.pth")
        model.add_metadata({"trained_with": "processed-data:v1"})
        run_train.log_artifact(model)  # → trained-model:v1
        rn.finish()

        # Step 3: Model evaluation
        run_eval = rn.init(project="ml_pipeline", name="evaluation")
        model = run_eval.use_artifact("trained-model:v0")  # Auto-tracked
        # Evaluation...
        rn.finish()
    """)
    trained = lodestore.Api().artifact("ml_pipeline/trained-model:v0")
    assert [v.name for v in trained.upstream()] == ["processed-data:v0"]
    assert [r.name for r in trained.used_by()] == ["evaluation"]
    run_sample("""
        # Good naming
        rn.Artifact("resnet50-imagenet", type="model")
        rn.Artifact("mnist-augmented", type="dataset")
        rn.Artifact("training-config", type="config")

        # Development phase: Frequent saves
        run = rn.init(project="dev", name="experiment_123")
        model = rn.Artifact("dev-model", type="model")
        model.add_file("checkpoint.pth")
        run.log_artifact(model)  # v1, v2, v3, ...

        # For very large datasets (>10 GB)
        dataset = rn.Artifact("huge-dataset", type="dataset")

        # Method 1: External reference (no download)
        dataset.add_reference("s3://bucket/data", checksum="sha256:...")

        # Use absolute path
        from pathlib import Path
        model_path = Path("model.pth").resolve()
        artifact = rn.Artifact("abs", type="model")
        artifact.add_file(str(model_path))
    """)
    rn.finish()


def test_runicorn_cli_samples_through_lode(store, lode):
    """`runicorn artifacts --action list|versions|info|stats|delete` as `lode` commands."""
    for i in range(2):
        Path("model.pth").write_text(f"model {i}")
        with lodestore.init(project="p") as run:
            art = lodestore.Artifact("old-model", type="model")
            art.add_file("model.pth")
            art.add_metadata({"val_acc": 0.9 + i / 100})
            run.log_artifact(art, aliases=["production"] if i else [])
    listed = lode("ls")  # --action list
    assert listed.code == 0 and "old-model" in listed.out
    versions = lode("versions", "p/old-model")  # --action versions --name
    assert versions.code == 0 and "v0" in versions.out and "v1" in versions.out
    info = lode("info", "p/old-model:v1")  # --action info --name --version
    assert info.code == 0 and "production" in info.out and "val_acc" in info.out
    assert lode("stats").code == 0  # --action stats
    assert lode("rm", "p/old-model:v0").code == 0  # --action delete (soft: recoverable)
    assert lode("restore", "p/old-model:v0").code == 0
    assert lode("rm", "p/old-model:v0", "--permanent").code == 0  # --action delete --permanent
    assert subprocess.run([sys.executable, "-c", "import lodestore; print('OK')"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}).stdout.strip() == "OK"

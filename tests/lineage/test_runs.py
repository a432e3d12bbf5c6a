"""Runs: init options, metrics, a write-through summary, resume, crash states (real
subprocesses that raise and that are SIGKILLed), save_code, logging a path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import pytest

import lodestore
from lodestore.sdk import liveness
from lodestore.sdk.run import effective_state


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "work" / "train_script.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_init_options_log_and_live_summary(store: Path) -> None:
    run = lodestore.init(project="zoo", name="train-1", config={"lr": 0.1}, group="sweep-1", job_type="train",
                         tags=["a", "b"], notes="first try", id="run1")
    run.log({"loss": 0.5})
    run.log({"loss": 0.25}, step=10)
    run.log({"loss": 0.2})
    run.summary["val_acc"] = 0.95
    run.config["batch"] = 32
    live = lodestore.Api().run("run1")  # visible while the run is still going
    assert live.state == "running"
    assert live.summary["val_acc"] == 0.95 and live.summary["loss"] == 0.2
    assert live.config == {"lr": 0.1, "batch": 32} and run.config.lr == 0.1
    assert (live.group, live.job_type, live.tags, live.notes, live.name) == (
        "sweep-1", "train", ("a", "b"), "first try", "train-1")
    assert [h["_step"] for h in live.history()] == [0, 10, 11]
    run.finish()
    done = lodestore.Api().run("zoo/run1")
    assert done.state == "finished" and done.exit_code == 0 and done.finished_at is not None
    assert done.summary["val_acc"] == 0.95


def test_summary_refuses_unserialisable_values(store: Path) -> None:
    with lodestore.init(project="zoo") as run:
        with pytest.raises(lodestore.InvalidInputError):
            run.summary["bad"] = object()
        assert "bad" not in run.summary
        with pytest.raises(lodestore.InvalidInputError):
            run.log("loss")  # type: ignore[arg-type]


def test_finish_with_exit_code_and_context_manager_exception(store: Path) -> None:
    run = lodestore.init(project="zoo")
    run.finish(exit_code=3)
    assert lodestore.Api().run(run.id).state == "failed"
    with pytest.raises(RuntimeError):
        with lodestore.init(project="zoo") as r2:
            raise RuntimeError("boom")
    assert lodestore.Api().run(r2.id).state == "failed"


def test_resume_must_unknown_id_is_not_found(store: Path) -> None:
    with pytest.raises(lodestore.NotFoundError, match="nope"):
        lodestore.init(project="zoo", id="nope", resume="must")
    with pytest.raises(lodestore.InvalidInputError):
        lodestore.init(project="zoo", id="x", resume="sometimes")


def test_log_artifact_to_existing_run(store: Path, tmp_path: Path) -> None:
    with lodestore.init(project="zoo", id="abc", config={"lr": 1}) as run:
        run.log({"loss": 1.0})
    with pytest.raises(lodestore.ConflictError):
        lodestore.init(project="zoo", id="abc")  # exists and resume not asked for
    (tmp_path / "late.txt").write_text("late result")
    with lodestore.init(id="abc", resume="allow") as run:
        art = lodestore.Artifact("late", "result")
        art.add_file(tmp_path / "late.txt")
        run.log_artifact(art)
        run.log({"loss": 0.5})
    api_run = lodestore.Api().run("abc")
    assert [a.qualified_name for a in api_run.logged_artifacts()] == ["zoo/late:v0"]
    assert api_run.state == "finished" and api_run.config == {"lr": 1}
    assert [h["_step"] for h in api_run.history()] == [0, 1]  # steps continue after resume
    assert lodestore.Api().artifact("zoo/late:v0").logged_by().id == "abc"


def test_log_artifact_accepts_a_path(store: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    (tmp_path / "single.txt").write_text("x")
    with lodestore.init(project="zoo") as run:
        a = run.log_artifact(folder, name="model", type="model")
        b = run.log_artifact(tmp_path / "single.txt")
    assert (a.qualified_name, a.type, [f.path for f in a.files()]) == ("zoo/model:v0", "model", ["w.bin"])
    assert (b.qualified_name, b.type) == ("zoo/single.txt:v0", "unspecified")


def test_heartbeat_thread_refreshes_a_live_run(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(liveness, "HEARTBEAT_SECONDS", 0.05)
    run = lodestore.init(project="zoo")
    first = lodestore.Api().run(run.id).heartbeat_at
    deadline = time.time() + 5
    while lodestore.Api().run(run.id).heartbeat_at == first and time.time() < deadline:
        time.sleep(0.05)
    assert lodestore.Api().run(run.id).heartbeat_at > first
    run.finish()


def test_uncaught_exception_in_a_process_marks_the_run_failed(store: Path, tmp_path: Path) -> None:
    script = _script(tmp_path, """
        import lodestore
        run = lodestore.init(project="zoo", id="crasher")
        run.log({"loss": 1.0})
        raise ValueError("training diverged")
    """)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "training diverged" in done.stderr
    r = lodestore.Api().run("crasher")
    assert (r.state, r.exit_code) == ("failed", 1)


def test_sigkilled_process_is_reported_crashed(store: Path, tmp_path: Path, lode) -> None:
    script = _script(tmp_path, """
        import sys, time, lodestore
        run = lodestore.init(project="zoo", id="victim")
        print(run.id, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "victim"
        assert lodestore.Api().run("victim").state == "running"  # alive
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    record = lodestore.Api().run("victim").record
    assert record.state == "running"  # nothing could mark it: the process died instantly
    # heartbeat fresh: still reported running (it could be a slow step on another host)
    assert effective_state(record) == "running"
    # heartbeat stale and the pid dead on this host: crashed
    assert effective_state(record, now=record.heartbeat_at + timedelta(minutes=6)) == "crashed"
    assert effective_state(record, stale_after=timedelta(0)) == "crashed"
    # a live pid on this host with a stale heartbeat (a suspended process) stays running
    alive = record.__class__(**{**record.__dict__, "pid": os.getpid()})
    assert effective_state(alive, now=record.heartbeat_at + timedelta(hours=1)) == "running"
    # Api and CLI report it, with the threshold from $LODESTORE_STALE_SECONDS in a fresh process
    env = {**os.environ, "LODESTORE_STALE_SECONDS": "0"}
    out = subprocess.run([sys.executable, "-m", "lodestore.cli.main", "runs", "--json"], capture_output=True,
                         text=True, env=env, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():  # the module may not be runnable with -m
        out = subprocess.run([sys.executable, "-c", "from lodestore.cli.main import main; main()", "runs",
                              "--json"], capture_output=True, text=True, env=env, timeout=60)
    import json

    assert {r["id"]: r["state"] for r in json.loads(out.stdout)} == {"victim": "crashed"}
    crashed = subprocess.run(
        [sys.executable, "-c", "import lodestore; print([r.id for r in lodestore.Api().runs(filters={'state': "
                               "'crashed'})])"], capture_output=True, text=True, env=env, timeout=60)
    assert crashed.stdout.strip() == "['victim']"


def test_save_code_logs_the_launching_script(store: Path, tmp_path: Path) -> None:
    script = _script(tmp_path, """
        import lodestore
        with lodestore.init(project="zoo", id="coder", save_code=True) as run:
            pass
    """)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    logged = lodestore.Api().run("coder").logged_artifacts()
    assert [(a.type, [f.path for f in a.files()]) for a in logged] == [("code", ["train_script.py"])]
    assert logged[0].logged_by().id == "coder"
    out = tmp_path / "code-out"
    logged[0].download(out)
    assert (out / "train_script.py").read_text() == script.read_text()

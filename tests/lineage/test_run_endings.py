"""How a run's end is recorded, in real subprocesses: sys.exit with and without
finish(), SystemExit inside `with init()`, a script that just ends, Ctrl-C, SIGTERM
(with and without the program's own handler), forked children that must not end their
parent's run; and resuming: never/must/allow, project conflicts, live holders."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lodestore
from lodestore.catalog.records import RunRecord
from lodestore.sdk.repository import Repository


def _run_script(tmp_path: Path, body: str, timeout: float = 60) -> subprocess.CompletedProcess:
    script = tmp_path / "work" / "job.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True,
                          timeout=timeout)


@contextmanager
def _script_running(tmp_path: Path, body: str) -> Iterator[subprocess.Popen]:
    """The script started in its own process; killed and reaped at the end if it still runs."""
    script = tmp_path / "work" / "job.py"
    script.write_text(textwrap.dedent(body))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _outcome(run_id: str) -> tuple[str, int | None]:
    r = lodestore.Api().run(run_id)
    return r.state, r.exit_code


@pytest.mark.parametrize("ending, returncode, outcome", [
    ("sys.exit(3)", 3, ("failed", 3)),
    ("sys.exit(0)", 0, ("finished", 0)),
    ("sys.exit()", 0, ("finished", 0)),
    ("sys.exit('bad config')", 1, ("failed", 1)),
    ("pass", 0, ("finished", 0)),  # the script just ends, nobody calls finish()
    ("raise KeyboardInterrupt", -signal.SIGINT, ("failed", 130)),
])
def test_a_script_ending_without_finish(store: Path, tmp_path: Path, ending: str, returncode: int,
                                        outcome: tuple[str, int]) -> None:
    done = _run_script(tmp_path, f"""
        import sys, lodestore
        run = lodestore.init(project="zoo", id="job")
        run.log({{"loss": 1.0}})
        {ending}
    """)
    assert done.returncode == returncode, done.stderr
    assert _outcome("job") == outcome


@pytest.mark.parametrize("code, outcome", [(0, ("finished", 0)), (None, ("finished", 0)), (4, ("failed", 4))])
def test_system_exit_inside_with_init_uses_its_code(store: Path, tmp_path: Path, code, outcome) -> None:
    done = _run_script(tmp_path, f"""
        import sys, lodestore
        with lodestore.init(project="zoo", id="job") as run:
            sys.exit({code!r})
    """)
    assert done.returncode == (code or 0), done.stderr
    assert _outcome("job") == outcome


def test_sigterm_marks_the_run_failed_and_the_process_dies_by_the_signal(store: Path, tmp_path: Path) -> None:
    with _script_running(tmp_path, """
        import time, lodestore
        run = lodestore.init(project="zoo", id="victim")
        print("ready", flush=True)
        time.sleep(60)
    """) as proc:
        assert proc.stdout.readline().strip() == "ready"
        assert _outcome("victim") == ("running", None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == -signal.SIGTERM  # the default action still happens
    r = lodestore.Api().run("victim")
    assert (r.state, r.exit_code, r.record.state) == ("failed", 143, "failed")
    assert r.finished_at is not None


def test_sigterm_while_the_main_thread_holds_the_runs_lock(store: Path, tmp_path: Path) -> None:
    """SIGTERM lands in the middle of a write (here: a summary update made slow): the
    handler cannot finish the run from outside, so it unwinds the main thread, whose
    write then completes its cleanup and the end is still recorded."""
    with _script_running(tmp_path, """
        import time, lodestore
        run = lodestore.init(project="zoo", id="busy")
        door = run._service  # every catalog write of a run goes through it
        real, slow = door.update_run, [True]

        def slow_update(run_id, **fields):  # a write that takes long, holding the run's lock
            if slow and "summary" in fields:
                slow.clear()
                print("inside", flush=True)
                time.sleep(30)
            return real(run_id, **fields)

        door.update_run = slow_update
        run.summary["x"] = 1
    """) as proc:
        assert proc.stdout.readline().strip() == "inside"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (143, -signal.SIGTERM), proc.stderr.read()
    assert _outcome("busy") == ("failed", 143)


@pytest.mark.parametrize("handler, returncode, outcome", [
    # the program's handler checkpoints and exits with its own code
    ("def on_term(signum, frame):\n    sys.exit(7)", 7, ("failed", 7)),
    # the program's handler only asks the loop to stop; the script then ends cleanly
    ("def on_term(signum, frame):\n    global stop\n    stop = True", 0, ("finished", 0)),
])
def test_sigterm_chains_to_the_programs_own_handler(store: Path, tmp_path: Path, handler: str,
                                                     returncode: int, outcome) -> None:
    with _script_running(tmp_path, "import signal, sys, time, lodestore\nstop = False\n" + handler + """
signal.signal(signal.SIGTERM, on_term)
run = lodestore.init(project="zoo", id="polite")
print("ready", flush=True)
deadline = time.time() + 60
while not stop and time.time() < deadline:
    time.sleep(0.05)
print("stopped cleanly", flush=True)
""") as proc:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == returncode, proc.stderr.read()
    assert _outcome("polite") == outcome


def test_forked_children_do_not_end_the_parents_run(store: Path, tmp_path: Path) -> None:
    """A DataLoader-style worker inherits the hooks: its sys.exit and its SIGTERM must
    leave the parent's run running."""
    done = _run_script(tmp_path, """
        import os, signal, sys, time, lodestore
        run = lodestore.init(project="zoo", id="parent")
        child = os.fork()
        if child == 0:
            sys.exit(3)  # runs atexit hooks in the child
        os.waitpid(child, 0)
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
        time.sleep(0.3)
        os.kill(child, signal.SIGTERM)
        _, status = os.waitpid(child, 0)
        print("child", os.WTERMSIG(status) if os.WIFSIGNALED(status) else "exited", flush=True)
        print("state", lodestore.Api().run("parent").state, flush=True)
        run.finish()
    """)
    assert done.returncode == 0, done.stderr
    assert f"child {int(signal.SIGTERM)}" in done.stdout and "state running" in done.stdout, done.stdout
    assert _outcome("parent") == ("finished", 0)


# --------------------------------------------------------------------------- resume
def test_resume_never_refuses_an_existing_id(store: Path) -> None:
    lodestore.init(project="zoo", id="abc").finish()
    with pytest.raises(lodestore.ConflictError, match="already exists"):
        lodestore.init(project="zoo", id="abc", resume="never")
    assert _outcome("abc") == ("finished", 0)  # untouched


def test_resume_must_continues_an_existing_run(store: Path) -> None:
    with lodestore.init(project="zoo", id="abc", config={"lr": 0.1}) as run:
        run.log({"loss": 1.0})
    with lodestore.init(id="abc", resume="must", config={"epochs": 3}) as run:
        assert (run.project, run.state) == ("zoo", "running")
        assert dict(run.config) == {"lr": 0.1, "epochs": 3}
        run.log({"loss": 0.5})
    r = lodestore.Api().run("abc")
    assert (r.state, [h["_step"] for h in r.history()]) == ("finished", [0, 1])


def test_resume_in_another_project_is_a_conflict(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lodestore.init(project="zoo", id="abc").finish()
    with pytest.raises(lodestore.ConflictError, match="belongs to project 'zoo'"):
        lodestore.init(project="other", id="abc", resume="allow")
    monkeypatch.setenv("LODESTORE_PROJECT", "other")
    with pytest.raises(lodestore.ConflictError, match="belongs to project 'zoo'"):
        lodestore.init(id="abc", resume="allow")
    monkeypatch.delenv("LODESTORE_PROJECT")
    assert _outcome("abc") == ("finished", 0)
    assert lodestore.Api().runs("other") == []
    with lodestore.init(project="zoo", id="abc", resume="allow") as run:  # its own project: fine
        assert run.project == "zoo"


def test_a_run_held_by_a_live_process_cannot_be_resumed(store: Path, tmp_path: Path) -> None:
    with _script_running(tmp_path, """
        import time, lodestore
        run = lodestore.init(project="zoo", id="shared")
        print("ready", flush=True)
        time.sleep(60)
    """) as proc:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(lodestore.ConflictError, match=f"still running in process {proc.pid}"):
            lodestore.init(id="shared", resume="allow")
        proc.kill()  # SIGKILL: nothing is recorded, but the pid is gone
        proc.wait(timeout=30)
    with lodestore.init(id="shared", resume="allow") as run:  # the holder is dead: resume at once
        assert run.state == "running"
    assert _outcome("shared") == ("finished", 0)


def test_a_run_active_in_this_process_cannot_be_resumed_twice(store: Path) -> None:
    run = lodestore.init(project="zoo", id="abc")
    with pytest.raises(lodestore.ConflictError, match="already active in this process"):
        lodestore.init(id="abc", resume="allow")
    run.finish()
    lodestore.init(id="abc", resume="allow").finish()


def test_a_run_on_another_host_is_held_while_its_heartbeat_is_fresh(store: Path) -> None:
    catalog = Repository.open(store).catalog
    now = datetime.now(UTC)
    for rid, beat in (("fresh", now), ("stale", now - timedelta(hours=1))):
        catalog.create_run(RunRecord(
            id=rid, project="zoo", name=None, group=None, job_type=None, tags=(), notes=None, config={},
            summary={}, state="running", exit_code=None, created_at=beat, finished_at=None, heartbeat_at=beat,
            host=socket.gethostname() + "-elsewhere", pid=1))
    with pytest.raises(lodestore.ConflictError, match="is running on host .*-elsewhere"):
        lodestore.init(id="fresh", resume="allow")
    with lodestore.init(id="stale", resume="allow") as run:  # silent for an hour: taken over
        assert run.state == "running"
    assert _outcome("stale") == ("finished", 0) and catalog.get_run("fresh").pid == 1

#!/usr/bin/env python3
"""The pull figure of bench/team.py alone, for A/B work on the pull path.

`setup WORKDIR STATE`: start SeaweedFS and PostgreSQL (tests/real_services.py), log
dataset_v1 and dataset_v2 of WORKDIR into a team pair as bench/team.py does, write the
servers' settings to STATE (JSON) and keep the servers up until STATE is removed.
`run STATE REPS SRC...`: REPS rounds, each a boto3 download of the pack objects (the
reference) then one pull per SRC (a `src` folder: PYTHONPATH of that step), in turn, in
fresh processes (bench/team_steps.py); prints each run and the medians.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))  # bench/team.py, not tests/team

import real_services  # noqa: E402
from run import rm, step_env  # noqa: E402
from team import BUCKET, start_servers  # noqa: E402


def step(state: dict, src: str | None, machine: Path | None, *args: str) -> dict:
    env = {k: v for k, v in step_env().items() if not k.startswith("LODESTORE_") or k == "LODESTORE_QUIET"}
    env.update(state["env"])
    if src:
        env["PYTHONPATH"] = src
    if machine is not None:
        env["LODESTORE_DIR"] = str(machine)
    subprocess.run(["sync"], check=True)
    out = subprocess.run([sys.executable, str(HERE / "team_steps.py"), *args], capture_output=True, text=True,
                         env=env)
    if out.returncode != 0:
        raise RuntimeError(f"step {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def setup(work: Path, state_path: Path) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="lodestore-team-pull-"))
    s3, pg = start_servers(scratch)
    try:
        state = {"env": s3.env(), "scratch": str(scratch), "store": f"s3://{BUCKET}/data",
                 "catalog": pg.create_database()}
        for tag, ds in (("a", "dataset_v1"), ("b", "dataset_v2")):
            m = scratch / f"machine-{tag}"
            m.mkdir()
            print(step(state, None, m, "log", state["store"], state["catalog"], "data", "dataset", str(work / ds)))
        state["keys"] = step(state, None, scratch / "machine-keys", "pack_keys", state["store"], state["catalog"],
                             "bench/data:v1")
        state_path.write_text(json.dumps(state))
        print("ready", flush=True)
        while state_path.exists():
            time.sleep(1)
    finally:
        real_services.kill(s3.process)
        real_services.stop_postgres(pg)
        rm(scratch)


def run(state_path: Path, reps: int, srcs: list[str]) -> None:
    state = json.loads(state_path.read_text())
    scratch = Path(state["scratch"])
    keys = state["keys"]
    times: dict[str, list[float]] = {s: [] for s in ["ref", *srcs]}
    cpu: dict[str, list[float]] = {s: [] for s in srcs}
    for _ in range(reps):
        target = scratch / "reference-download"
        r = step(state, None, None, "download_ref", keys["bucket"], str(target), *keys["keys"])
        rm(target)
        times["ref"].append(r["seconds"])
        print(f"ref {r['seconds']:.2f} s", flush=True)
        for src in srcs[len(times["ref"]) % len(srcs):] + srcs[: len(times["ref"]) % len(srcs)]:  # order rotates
            machine = scratch / "machine-pull"
            rm(machine)
            machine.mkdir()
            r = step(state, src, machine, "pull", state["store"], state["catalog"], "bench/data:v1", str(machine))
            rm(machine)
            times[src].append(r["seconds"])
            cpu[src].append(r["cpu_seconds"])
            print(f"{src}: {r['seconds']:.2f} s cpu {r['cpu_seconds']:.2f} rss {r['maxrss_mb']:.0f} MB", flush=True)
    ref = statistics.median(times["ref"])
    for k, v in times.items():
        cpu_text = f", cpu {statistics.median(cpu[k]):.2f} s" if k in cpu else ""
        print(f"median {k}: {statistics.median(v):.2f} s ({statistics.median(v) / ref:.2f} x ref){cpu_text} "
              f"{[round(x, 2) for x in v]}")


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        run(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])

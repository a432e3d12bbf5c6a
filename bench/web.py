#!/usr/bin/env python3
"""Benchmark of `lode ui` (issue 13, "Figures"): not run in CI.

Generates a store of 1,000 artifacts and 10,000 versions (x --scale), two versions of
100,000 files (x --scale) that differ in 10% of their files, and a lineage chain of
2,000 nodes (x --scale), then starts a real `lode ui` process and prints:

- the time from starting `lode ui` to its first answer (goal: 1.5 s at full size);
- API latency, median and p95, of the artifacts list, a versions page, a files folder
  page, a lineage request and a compare of the two big versions, each next to the
  latency of a trivial call (/api/v1/ping) on the same server (goal: <= 5x); the calls
  are timed round-robin, so the machine's load weighs on each alike;
- the server's peak memory after serving the big version, the stat cards and the big
  version's own bytes (goal: <= 200 MB);
- in headless Chromium (if /usr/bin/chromium and playwright are there): time from
  navigation to a rendered artifacts table, files tab and lineage tab, next to the
  page's own empty "not found" page (goal: each tab within 1 s).

Usage: python bench/web.py [--scale 0.1] [--workdir DIR] [--reps 30] [--keep]

With --workdir, the generated store is kept there and a later run with the same
--workdir measures it again instead of generating it anew (sizes.json records its scale).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

import lodestore  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def generate(root: Path, work: Path, scale: float) -> dict[str, int]:
    """The store: A artifacts x 10 versions, each version logged by a run that used the
    previous artifact's latest version (a lineage chain), plus the two big versions."""
    artifacts = max(2, round(1000 * scale))
    files = max(100, round(100_000 * scale))
    chain = max(4, round(2000 * scale))  # lineage nodes: half runs, half versions
    t = time.perf_counter()
    src = work / "one"
    src.mkdir(parents=True)
    for a in range(artifacts):
        with lodestore.init(project="bench", name=f"make-a{a}", root=root, job_type="make") as run:
            if a and a * 2 < chain:
                run.use_artifact(f"bench/a{a - 1}:latest")
            for v in range(10):
                (src / "data.txt").write_text(f"artifact {a} version {v}\n")
                art = lodestore.Artifact(f"a{a}", type="dataset" if a % 3 else "model", metadata={"v": v, "a": a})
                art.add_file(str(src / "data.txt"))
                run.log_artifact(art)
    big = work / "big"
    for i in range(files):
        p = big / f"d{i % 100:03d}" / f"f{i:06d}.txt"
        if i < 100:
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"file {i}\n")
    for v in range(2):
        if v:
            for i in range(0, files, 10):
                (big / f"d{i % 100:03d}" / f"f{i:06d}.txt").write_text(f"file {i} changed\n")
        art = lodestore.Artifact("big", type="dataset")
        art.add_dir(str(big))
        api_log(root, art)
    print(f"generated {artifacts:,} artifacts, {artifacts * 10 + 2:,} versions, two {files:,}-file versions, "
          f"a lineage chain of ~{chain:,} nodes in {time.perf_counter() - t:.0f} s", flush=True)
    return {"artifacts": artifacts, "files": files, "chain": chain}


def api_log(root: Path, art: lodestore.Artifact) -> None:
    with lodestore.init(project="bench", name="big", root=root) as run:
        run.log_artifact(art)


class Client:
    def __init__(self, url: str):
        self.base = url.split("/?", 1)[0]
        self.token = url.rsplit("token=", 1)[1]
        parts = urlsplit(self.base)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)

    def get(self, path: str) -> float:
        t = time.perf_counter()
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise SystemExit(f"{path}: HTTP {resp.status}: {body[:300]!r}")
        return time.perf_counter() - t


def start(root: Path) -> tuple[subprocess.Popen, str, float]:
    t = time.perf_counter()
    env = {**os.environ, "LODESTORE_QUIET": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "lodestore.cli.main", "--root", str(root), "ui", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "?token=" in line:
            url = line.strip()
            break
    else:
        raise SystemExit("lode ui did not start")
    Client(url).get("/api/v1/ping")
    return proc, url, time.perf_counter() - t


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def api_figures(url: str, reps: int, sizes: dict[str, int]) -> None:
    c = Client(url)
    big = "/api/v1/projects/bench/artifacts/big"
    focus = quote(f"bench/a{max(1, sizes['chain'] // 4)}:v5")
    calls = {
        "trivial call (ping)": "/api/v1/ping",
        "artifacts list (50)": "/api/v1/artifacts?sort=-created&limit=50",
        "versions page (50)": "/api/v1/projects/bench/artifacts/a1/versions?limit=50",
        f"files folder page ({sizes['files'] // 100:,} files)": big + "/versions/v1/files?folder=d042&limit=200",
        "files root (100 folders)": big + "/versions/v1/files",
        "lineage request": f"/api/v1/lineage?node={focus}",
        f"compare two {sizes['files']:,}-file versions": "/api/v1/diff?a=bench/big:v0&b=bench/big:v1&limit=100",
        # measurements (accounting passes) the server keeps until the store changes: the
        # first call measures (its time is the last column), the next ones reuse it
        "stat cards (/stats, whole store)": "/api/v1/stats",
        f"own bytes of the {sizes['files']:,}-file version": big + "/versions/v1?own_bytes=true",
    }
    # the first call of each (for the figures measured once and kept: the measure itself),
    # then the calls round-robin, so a burst of load on this shared machine hits every
    # call alike instead of the one being timed at that moment
    first = {label: c.get(path) for label, path in calls.items()}
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(reps):
        for label, path in calls.items():
            samples[label].append(c.get(path))
    ref = statistics.median(samples["trivial call (ping)"])
    print(f"\n{'API call':<42} {'median':>9} {'p95':>9} {'x ping':>8}   (goal <= 5x)   first call")
    for label in calls:
        med, p95 = stats(samples[label])
        print(f"{label:<42} {med * 1000:8.1f}ms {p95 * 1000:8.1f}ms {med / ref:7.1f}x   {first[label] * 1000:10.1f}ms")


def browser_figures(url: str, reps: int) -> None:
    if not Path(CHROMIUM).exists():
        print("\nchromium not installed: browser figures skipped")
        return
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415  (optional: only this step needs it)
    except ImportError:
        print("\nplaywright not installed: browser figures skipped")
        return
    base = url.split("/?", 1)[0]
    pages = {
        "empty page (not found)": ("/no-such-page", "h1"),
        "artifacts table": ("/", "main table tbody tr"),
        "files tab (root of the big version)": ("/artifacts/bench/big/v1?tab=files", "#panel-files tbody tr"),
        "files tab (a 1,000-file folder)": ("/artifacts/bench/big/v1?tab=files&folder=d042", "#panel-files tbody tr"),
        "lineage tab": ("/artifacts/bench/a1/v5?tab=lineage", "#lineage-canvas svg"),
    }
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = b.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-ready]")
        print(f"\n{'browser: navigation to rendered':<42} {'median':>9} {'p95':>9}   (goal <= 1 s)")
        for label, (path, selector) in pages.items():
            samples = []
            for _ in range(max(3, reps // 5)):
                t = time.perf_counter()
                page.goto(base + path)
                page.wait_for_selector(selector)
                page.wait_for_selector("body[data-ready]")
                samples.append(time.perf_counter() - t)
            med, p95 = stats(samples)
            print(f"{label:<42} {med * 1000:8.0f}ms {p95 * 1000:8.0f}ms")
        b.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lode-web-bench-"))
    root = work / "store"
    os.environ["LODESTORE_QUIET"] = "1"
    try:
        sizes = generated_before(work, args.scale)
        if sizes is None:
            sizes = generate(root, work, args.scale)
            (work / "sizes.json").write_text(json.dumps({"scale": args.scale, **sizes}))
        proc, url, ready = start(root)
        try:
            print(f"lode ui ready (spawn to first answer): {ready:.2f} s  (goal <= 1.5 s; a bare `python -c pass`: "
                  f"{python_start():.2f} s)")
            api_figures(url, args.reps, sizes)
            rss = peak_rss_mb(proc.pid)
            print(f"\nserver peak memory after serving the big version: {rss:.0f} MB (goal <= 200 MB)")
            browser_figures(url, args.reps)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def generated_before(work: Path, scale: float) -> dict[str, int] | None:
    """The sizes of a store a previous run generated in `work` at the same scale, or None."""
    try:
        recorded = json.loads((work / "sizes.json").read_text())
    except (OSError, ValueError):
        return None
    if recorded.pop("scale", None) != scale:
        raise SystemExit(f"{work} holds a store of another scale: give another --workdir")
    print(f"measuring the store generated before in {work}", flush=True)
    return recorded


def python_start() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()

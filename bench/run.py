#!/usr/bin/env python3
"""lodestore benchmark on the standard workloads (shared/bench/make_workloads.py).

Every figure is printed next to its physical reference measured in the same run (`cp`,
`cp -r`) as a ratio, with the goal from the issue. The script checks the store's bytes
(downloads compared with the sources, version counts) and exits non-zero if they are
wrong: a benchmark that measured a broken store is worse than none. Timing goals are
reported, not enforced (the machine is shared and noisy), unless --strict.

Usage: python bench/run.py [--scale 0.25] [--workdir DIR] [--keep] [--strict] [--json]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_WORKLOADS = HERE.parent.parent / "shared" / "bench" / "make_workloads.py"


def sh_time(cmd: list[str]) -> float:
    subprocess.run(["sync"], check=True)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def step(*args: str) -> dict:
    subprocess.run(["sync"], check=True)
    out = subprocess.run([sys.executable, str(HERE / "steps.py"), *args], check=True, capture_output=True, text=True,
                         env={**os.environ, "LODESTORE_QUIET": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def same_tree(a: Path, b: Path) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(a / d, b / d) for d in cmp.common_dirs)


def make_finetune(work: Path, scale: float) -> tuple[Path, Path] | None:
    """A torch.save fine-tune: ~200 MB float32 model, last 10 % of layers changed, saved
    under a new file name (torch.save writes the name into every zip entry)."""
    try:
        import torch
    except ImportError:
        return None
    v1, v2 = work / "epoch3.pt", work / "epoch4.pt"
    if v1.exists() and v2.exists():
        return v1, v2
    gen = torch.Generator().manual_seed(7)
    layers = max(10, int(40 * scale))  # 5 MB layers at every scale, like a real model's
    state = {f"layer{i}.weight": torch.randn(1024, 1250, generator=gen) for i in range(layers)}
    torch.save(state, v1)
    for i in range(layers - layers // 10, layers):
        state[f"layer{i}.weight"] = torch.randn(1024, 1250, generator=gen)
    torch.save(state, v2)
    return v1, v2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workdir", type=Path, default=None, help="Where workloads live (reused if present).")
    ap.add_argument("--workloads-script", type=Path, default=DEFAULT_WORKLOADS)
    ap.add_argument("--keep", action="store_true", help="Keep the store and downloads.")
    ap.add_argument("--strict", action="store_true", help="Also fail when a goal is missed.")
    ap.add_argument("--json", action="store_true", help="Print the table as JSON too.")
    args = ap.parse_args()

    work = args.workdir or Path(tempfile.gettempdir()) / f"lodestore-bench-{args.scale}"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(args.workloads_script), str(work), "--scale", str(args.scale)], check=True,
                   stdout=subprocess.DEVNULL)
    scratch = Path(tempfile.mkdtemp(prefix="lodestore-bench-run-", dir=work))
    store = scratch / "store"
    rows: list[dict] = []
    errors: list[str] = []

    def row(name: str, value: float, unit: str, reference: float | None, ref_name: str, goal: str, ok: bool,
            rss: float | None = None) -> None:
        ratio = value / reference if reference else None
        rows.append({"step": name, "value": value, "unit": unit, "reference": reference, "reference_name": ref_name,
                     "ratio": ratio, "goal": goal, "met": ok, "peak_rss_mb": rss})

    ckpt1, ckpt2, ckpt2s = work / "ckpt_v1.bin", work / "ckpt_v2.bin", work / "ckpt_v2s.bin"
    ds1, ds2 = work / "dataset_v1", work / "dataset_v2"
    size = ckpt1.stat().st_size

    # --- checkpoints ---------------------------------------------------------------
    cp_ckpt = sh_time(["cp", str(ckpt1), str(scratch / "cp_ckpt.bin")])
    (scratch / "cp_ckpt.bin").unlink()
    r = step("log", str(store), "model", "model", str(ckpt1), "model.bin")
    row("log ckpt_v1 (new)", r["seconds"], "s", cp_ckpt, "cp", "<= 1.5 x cp", r["seconds"] <= 1.5 * cp_ckpt, r["maxrss_mb"])
    if r["version"] != "v0":
        errors.append(f"ckpt_v1 logged as {r['version']}, expected v0")
    r = step("log", str(store), "model", "model", str(ckpt2), "model.bin")
    frac = r["new_bytes"] / size
    row("new bytes: ckpt_v2 after v1 (10% in place)", frac * 100, "% of file", None, "-", "<= 12 %", frac <= 0.12,
        r["maxrss_mb"])
    r = step("log", str(store), "model", "model", str(ckpt2s), "model.bin")
    frac = r["new_bytes"] / size
    row("new bytes: ckpt_v2s after v1 (4 KiB inserted)", frac * 100, "% of file", None, "-", "<= 2 %", frac <= 0.02,
        r["maxrss_mb"])

    tune = make_finetune(work, args.scale)
    if tune is None:
        print("note: torch is not installed; the torch.save fine-tune row is skipped (pip install torch==2.13.0)")
    else:
        step("log", str(store), "finetune", "model", str(tune[0]))
        r = step("log", str(store), "finetune", "model", str(tune[1]))
        frac = r["new_bytes"] / tune[1].stat().st_size
        row("new bytes: torch.save fine-tune, renamed file", frac * 100, "% of file", None, "-", "<= 12 %",
            frac <= 0.12, r["maxrss_mb"])

    # --- datasets ------------------------------------------------------------------
    cp_ds = sh_time(["cp", "-r", str(ds1), str(scratch / "cp_ds")])
    shutil.rmtree(scratch / "cp_ds")
    r = step("log", str(store), "data", "dataset", str(ds1))
    row("log dataset_v1", r["seconds"], "s", cp_ds, "cp -r", "<= 1.0 x cp -r", r["seconds"] <= cp_ds, r["maxrss_mb"])
    cp_ds2 = sh_time(["cp", "-r", str(ds2), str(scratch / "cp_ds2")])
    shutil.rmtree(scratch / "cp_ds2")
    r = step("log", str(store), "data", "dataset", str(ds2))
    row("log dataset_v2 after v1", r["seconds"], "s", cp_ds2, "cp -r", "<= 0.3 x cp -r", r["seconds"] <= 0.3 * cp_ds2,
        r["maxrss_mb"])
    if r["version"] != "v1":
        errors.append(f"dataset_v2 logged as {r['version']}, expected v1")
    r = step("log", str(store), "data", "dataset", str(ds2))
    row("re-log dataset_v2 unchanged", r["seconds"], "s", cp_ds2, "cp -r", "<= 0.5 s, no new version",
        r["seconds"] <= 0.5 and r["new_versions"] == 0, r["maxrss_mb"])
    if r["new_versions"] != 0 or r["created"]:
        errors.append("re-logging unchanged dataset_v2 created a new version")

    # --- downloads -----------------------------------------------------------------
    # downloads are repeatable: alternate reference and step 3 times, report medians
    refs, runs = [], []
    for _ in range(3):
        refs.append(sh_time(["cp", str(ckpt2), str(scratch / "cp_ckpt2.bin")]))
        (scratch / "cp_ckpt2.bin").unlink()
        shutil.rmtree(scratch / "dl_ckpt", ignore_errors=True)
        runs.append(step("download", str(store), "bench/model:v1", str(scratch / "dl_ckpt")))
    cp_ckpt2 = sorted(refs)[1]
    r = sorted(runs, key=lambda x: x["seconds"])[1]
    row("download ckpt_v2 (empty folder, median of 3)", r["seconds"], "s", cp_ckpt2, "cp", "<= 1.0 x cp", r["seconds"] <= cp_ckpt2,
        r["maxrss_mb"])
    if not filecmp.cmp(ckpt2, scratch / "dl_ckpt" / "model.bin", shallow=False):
        errors.append("downloaded ckpt_v2 differs from the source")
    shutil.rmtree(scratch / "dl_ckpt")
    refs, runs = [], []
    for _ in range(3):
        refs.append(sh_time(["cp", "-r", str(ds2), str(scratch / "cp_ds2")]))
        shutil.rmtree(scratch / "cp_ds2")
        shutil.rmtree(scratch / "dl_ds", ignore_errors=True)
        runs.append(step("download", str(store), "bench/data:v1", str(scratch / "dl_ds")))
    cp_ds2 = sorted(refs)[1]
    r = sorted(runs, key=lambda x: x["seconds"])[1]
    row("download dataset_v2 (empty folder, median of 3)", r["seconds"], "s", cp_ds2, "cp -r", "<= 1.0 x cp -r",
        r["seconds"] <= cp_ds2, r["maxrss_mb"])
    if not same_tree(ds2, scratch / "dl_ds"):
        errors.append("downloaded dataset_v2 differs from the source")

    peak = max(x["peak_rss_mb"] for x in rows if x["peak_rss_mb"] is not None)
    row("peak RSS of any step", peak, "MB", None, "-", "<= 150 MB", peak <= 150)

    # --- report --------------------------------------------------------------------
    print(f"\nlodestore bench, scale {args.scale} (ckpt {size / 2**20:.0f} MiB), workloads in {work}\n")
    header = f"{'step':<48} {'value':>10} {'unit':<10} {'reference':>12} {'ratio':>7}  {'goal':<26} met"
    print(header)
    print("-" * len(header))
    for x in rows:
        ref = f"{x['reference']:.2f}s {x['reference_name']}" if x["reference"] else "-"
        ratio = f"{x['ratio']:.2f}" if x["ratio"] is not None else "-"
        rss = f"  (peak {x['peak_rss_mb']:.0f} MB)" if x["peak_rss_mb"] else ""
        print(f"{x['step']:<48} {x['value']:>10.2f} {x['unit']:<10} {ref:>12} {ratio:>7}  {x['goal']:<26} "
              f"{'yes' if x['met'] else 'NO'}{rss}")
    if args.json:
        print(json.dumps(rows, indent=2))
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    if errors:
        print("\nSTORE ERRORS (the figures above are not valid):", *errors, sep="\n  ")
        return 1
    missed = [x["step"] for x in rows if not x["met"]]
    if missed:
        print(f"\ngoals missed ({len(missed)}): " + "; ".join(missed))
        if args.strict:
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

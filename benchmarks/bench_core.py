"""Core benchmarks (issue 2): resolve latency, register throughput, scaling in versions.

Run by hand: `python benchmarks/bench_core.py [--size-mb 512]`. Prints a table. Targets:
in-process resolve of an alias < 1 ms and flat in the number of versions; `omrw resolve` as a
new process < 200 ms; register within 1.5x of `cp -r` of the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omr_workflows.registry import Registry, version_key


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _package(root: Path, size_mb: int) -> Path:
    root.mkdir(parents=True)
    chunk = os.urandom(1 << 20)
    with open(root / "model.pt", "wb") as f:
        for _ in range(size_mb):
            f.write(chunk)
    for i in range(50):
        (root / f"small-{i:02d}.json").write_text(json.dumps({"i": i}))
    return root


def _clone_versions(reg_root: Path, task: str, model: str, template: str, count: int) -> None:
    """Make `count` extra versions by copying a registered one (resolve cost is what we measure)."""
    src = reg_root / version_key(task, model, template)
    manifest = json.loads((src / "omr_manifest.json").read_text())
    for i in range(count):
        name = f"c{i:06d}"
        dst = reg_root / version_key(task, model, name)
        if dst.exists():
            continue
        shutil.copytree(src, dst, copy_function=os.link)  # hard links: no extra disk
        manifest["version"] = name
        (dst / "omr_manifest.json").unlink()
        (dst / "omr_manifest.json").write_text(json.dumps(manifest))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=25)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pkg = _package(tmp / "pkg", args.size_mb)
        # Warm the page cache, then time cp -r and register on the same files.
        subprocess.run(["cat", *map(str, pkg.iterdir())], stdout=subprocess.DEVNULL, check=True)
        cp_times, reg_times, cpu_times = [], [], []

        def timed(fn) -> float:
            # Start each run with no dirty pages from the previous one, and end it on disk:
            # otherwise one run pays for another's writeback.
            subprocess.run(["sync"], check=True)
            t0 = time.perf_counter()
            fn()
            subprocess.run(["sync"], check=True)
            return time.perf_counter() - t0

        for i in range(3):
            cpu_times.append(timed(lambda: subprocess.run(
                ["cp", "-r", "--reflink=never", str(pkg), str(tmp / f"cpu{i}")], check=True)))
            shutil.rmtree(tmp / f"cpu{i}")
            cp_times.append(timed(lambda: subprocess.run(["cp", "-r", str(pkg), str(tmp / f"cp{i}")], check=True)))
            shutil.rmtree(tmp / f"cp{i}")
            reg_times.append(timed(lambda: Registry(str(tmp / f"reg{i}")).register("bench", "m", "v1", pkg)))
            if i:
                shutil.rmtree(tmp / f"reg{i}")
        gb = (args.size_mb + 0.05) / 1024
        cp_t, reg_t = statistics.median(cp_times), statistics.median(reg_times)
        cpu_t = statistics.median(cpu_times)
        rows += [("cp -r (page cache -> disk, incl. sync)", f"{gb / cp_t:.2f} GB/s", f"{cp_t:.2f} s"),
                 ("cp -r --reflink=never (user-space copy)", f"{gb / cpu_t:.2f} GB/s", f"{cpu_t:.2f} s"),
                 ("omrw register (copy + sha256 + xxh3, fsync)", f"{gb / reg_t:.2f} GB/s",
                  f"{reg_t:.2f} s = {reg_t / cp_t:.2f}x cp (target <= 1.5x)")]

        reg = Registry(str(tmp / "reg0"))
        reg.promote("bench/m@v1", "production")
        for n in (10, 1000, 10_000):
            _clone_versions(tmp / "reg0", "bench", "m", "v1", n - 1)
            alias_ms = _median_ms(lambda: reg.resolve("bench/m@production"), args.repeat)
            ver_ms = _median_ms(lambda: reg.resolve("bench/m@c000000"), args.repeat)
            fresh = Registry(str(tmp / "reg0"))
            rows.append((f"in-process resolve, {n} versions", f"alias {alias_ms:.3f} ms", f"version {ver_ms:.3f} ms"))
            del fresh
        env = dict(os.environ, OMR_REGISTRY=str(tmp / "reg0"))
        omrw = [str(Path(sys.executable).parent / "omrw")]
        cli_ms = _median_ms(lambda: subprocess.run([*omrw, "resolve", "bench/m@production"], env=env,
                                                   stdout=subprocess.DEVNULL, check=True), max(20, args.repeat))
        py_ms = _median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 20)
        rows.append(("`omrw resolve` as a new process (10,000 versions)", f"{cli_ms:.0f} ms",
                     f"python -c pass: {py_ms:.0f} ms (target < 200 ms)"))

    from rich.console import Console
    from rich.table import Table

    table = Table("measurement", "result", "detail", title=f"omr-workflows core ({os.cpu_count()} CPUs)")
    for r in rows:
        table.add_row(*r)
    Console().print(table)


if __name__ == "__main__":
    main()

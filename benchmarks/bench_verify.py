"""Verification throughput, run by hand: `python benchmarks/bench_verify.py [--size-gib 1]`.

Registers one model package once (one large file, a few medium ones, many small ones; all
in the page cache afterwards) and times, best of --repeat runs:

* raw read: `readinto` of every file into one reusable buffer, in this process;
* `omrw verify --mode fast` with --jobs 1 and 2, and `--mode strict` (whole processes);
* the fast engine in-process (run_shard repeated in one process: no start-up, no planning);
* inside each `omrw verify`, the time spent checking units (the report's `seconds`);
* `sha256sum -c sha256sums.txt` and `xargs -P N sha256sum` (coreutils);
* fast mode split over 1, 2 and 4 shards run as concurrent processes, then verify-merge.

Targets (issue 3): fast >= 0.6x raw read, strict >= 4x `sha256sum -c`, --jobs 2 no slower
than --jobs 1. Timings are wall-clock on a shared machine: note the load average printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MiB = 1 << 20
OMRW = [sys.executable, "-m", "omr_workflows.cli.main"]


def make_package(root: Path, total: int) -> None:
    """Half the bytes in one file, 3/8 in eight medium files, 1/8 in 256 small ones."""
    root.mkdir(parents=True)
    block = os.urandom(16 * MiB)

    def write(path: Path, size: int, salt: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left, i = size, 0
            while left:
                piece = block[: min(left, len(block))]
                f.write(salt.to_bytes(8, "little") + i.to_bytes(8, "little") + piece[16:])
                left -= len(piece)
                i += 1

    write(root / "weights.bin", total // 2, 1)
    for i in range(8):
        write(root / "shards" / f"part{i}.bin", total * 3 // 64, 100 + i)
    small = total // 8 // 256
    for i in range(256):
        write(root / "small" / f"f{i:03d}.bin", max(16, small), 1000 + i)


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(cmd, cwd=None, env=None, ok=(0,)) -> str:
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode not in ok:
        raise SystemExit(f"{' '.join(map(str, cmd))} exited {p.returncode}: {p.stderr}")
    return p.stdout


def best_verify(cmd, env, repeat: int) -> tuple[float, float]:
    """(wall seconds, seconds spent checking units inside that process) of the fastest run."""
    import json

    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = run([*cmd, "--json"], env=env)
        runs.append((time.perf_counter() - t0, json.loads(out)["seconds"]))
    return min(runs)


def raw_read(files: list[Path], buf_size: int = 4 * MiB) -> None:
    buf = bytearray(buf_size)
    for path in files:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gib", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--keep", action="store_true", help="keep the temporary registry")
    args = ap.parse_args()

    from omr_workflows.registry import Registry, version_key
    from omr_workflows.verify.run import build_plan, run_shard

    tmp = Path(tempfile.mkdtemp(prefix="omr-bench-verify-"))
    total = int(args.size_gib * (1 << 30))
    try:
        make_package(tmp / "pkg", total)
        registry = str(tmp / "registry")
        reg = Registry(registry)
        reg.register("bench", "model", "v1", tmp / "pkg")
        shutil.rmtree(tmp / "pkg")  # only the registry copy stays in the page cache
        vdir = Path(registry) / version_key("bench", "model", "v1")
        files = sorted(p for p in vdir.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        env = dict(os.environ, OMR_REGISTRY=registry)
        raw_read(files)  # warm the page cache

        rows: list[tuple[str, float, str]] = []

        def add(name: str, seconds: float, note: str = "") -> float:
            rows.append((name, seconds, note))
            return seconds

        t_raw = add("raw read (readinto, 4 MiB buffer, 1 thread)", best(lambda: raw_read(files), args.repeat),
                    "baseline, repeat runs in one process")
        (tmp / "files.txt").write_text("\n".join(map(str, files)) + "\n")
        fresh = ("import sys\nbuf = bytearray(4 << 20)\nfor p in open(sys.argv[1]).read().split():\n"
                 "    with open(p, 'rb', buffering=0) as f:\n        while f.readinto(buf): pass\n")
        t_raw_fresh = add("raw read, fresh python process", best(lambda: run([sys.executable, "-c", fresh, str(tmp / "files.txt")]),
                                                   args.repeat), "incl. ~25 ms interpreter start-up")
        t_start = add("omrw --version (interpreter start-up)", best(lambda: run([*OMRW, "--version"], env=env),
                                                                   args.repeat), "fixed cost, not per byte")
        add("omrw verify --plan (start-up + plan)",
            best(lambda: run([*OMRW, "verify", "--all", "--plan", "--shards", "1"], env=env), args.repeat),
            "fixed cost, not per byte")
        plan = build_plan(reg, all_versions=True, mode="fast", shards=1)
        for jobs in (1, 2):
            add(f"fast engine, warm, in this process (--jobs {jobs})",
                best(lambda: run_shard(reg.storage, plan, 1, jobs), args.repeat), "repeat runs in one process")
        t_fast, t_fast_units = {}, {}
        for jobs in (1, 2):
            wall, inner = best_verify([*OMRW, "verify", "--all", "--mode", "fast", "--jobs", str(jobs)], env,
                                      args.repeat)
            t_fast[jobs] = add(f"omrw verify --mode fast --jobs {jobs}", wall)
            t_fast_units[jobs] = add("  of which checking units (report 'seconds')", inner)
        wall, inner = best_verify([*OMRW, "verify", "--all", "--mode", "strict", "--jobs", str(args.jobs)], env,
                                  args.repeat)
        t_strict = add(f"omrw verify --mode strict --jobs {args.jobs}", wall)
        t_strict_engine = add("  of which checking units (report 'seconds')", inner)
        t_sum = add("sha256sum -c sha256sums.txt", best(lambda: run(["sha256sum", "--quiet", "-c", "sha256sums.txt"],
                                                                  cwd=vdir), max(1, args.repeat - 1)))
        listing = "\n".join(str(p.relative_to(vdir)) for p in files if p.name != "sha256sums.txt") + "\n"
        (tmp / "list.txt").write_text(listing)
        add(f"xargs -P {args.jobs} sha256sum", best(lambda: run(
            ["sh", "-c", f"xargs -P {args.jobs} -n 16 sha256sum < {tmp / 'list.txt'} > /dev/null"], cwd=vdir),
            max(1, args.repeat - 1)))
        for n in (1, 2, 4):
            reports = [tmp / f"shard-{n}-{i}.json" for i in range(1, n + 1)]

            def shards(n=n, reports=reports) -> None:
                procs = [subprocess.Popen([*OMRW, "verify", "--all", "--shard", f"{i}/{n}", "--jobs",
                                           str(max(1, args.jobs // n)), "--report", str(r)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for i, r in enumerate(reports, 1)]
                for p in procs:
                    if p.wait() != 0:
                        raise SystemExit(f"shard failed ({p.returncode})")
                run([*OMRW, "verify-merge", *map(str, reports)])

            add(f"fast, {n} shard process(es) + verify-merge", best(shards, args.repeat),
                f"--jobs {max(1, args.jobs // n)} each")

        gb = size / 1e9
        print(f"\n{size / MiB:.0f} MiB in {len(files)} files (1 large, 8 medium, 256 small + sidecars), page cache; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (shared machine)\n")
        print(f"{'what':52} {'seconds':>8} {'GB/s':>7}  note")
        for name, seconds, note in rows:
            rate = f"{gb / seconds:7.2f}" if "fixed cost" not in note else "      -"
            print(f"{name:52} {seconds:8.3f} {rate}  {note}")
        fast = min(t_fast.values())
        print()
        print(f"fast vs raw read:       {t_raw / fast:5.2f}x   (target >= 0.6x)  "
              f"[checking units only: {t_raw / min(t_fast_units.values()):.2f}x; "
              f"warm engine: {t_raw / min(s for n, s, _ in rows if n.startswith('fast engine')):.2f}x; "
              f"interpreter start-up {t_start:.3f} s]")
        print(f"fast vs raw read in a fresh process: {t_raw_fresh / fast:5.2f}x  "
              f"[checking units only: {t_raw_fresh / min(t_fast_units.values()):.2f}x]")
        print(f"strict vs sha256sum -c: {t_sum / t_strict:5.2f}x   (target >= 4x)  "
              f"[checking units only: {t_sum / t_strict_engine:.2f}x]")
        print(f"fast --jobs 2 / --jobs 1 time: {t_fast[2] / t_fast[1]:5.2f}   (target <= 1.0)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 13's targets in one table, each beside its anchor command, measured in the same run.

Run by hand: `python benchmarks/bench_speed.py [--size-gib 1] [--versions 10000] [--models 10000]`.
Medians of paired runs (page cache warm); bytecode compiled first, as `pip install` leaves it.
Prints one row per target: what was measured, the anchor, the ratio or value, met / not met.
`--quick` shrinks every size (for trying the script, not for citing).
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

MiB = 1 << 20
PY = sys.executable
OMRW = [PY, "-m", "omr_workflows.cli.main"]
ROWS: list[tuple[str, str, str, str, str]] = []


def row(target: str, measured: str, anchor: str, value: str, met: bool | None) -> None:
    ROWS.append((target, measured, anchor, value, "n/a" if met is None else ("met" if met else "NOT met")))
    print(f"  {target}: {measured} | {anchor} | {value} | {ROWS[-1][-1]}", flush=True)


def timed(cmd, env=None, cwd=None, stdin=None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=stdin)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} exited {p.returncode}: {p.stderr.decode()[-2000:]}")
    return time.perf_counter() - t0


def paired(a, b, n: int) -> tuple[float, float]:
    """Medians of `n` alternating runs of two callables (load drifts hit both alike)."""
    ta, tb = [], []
    for _ in range(n):
        t = time.perf_counter(); a(); ta.append(time.perf_counter() - t)
        t = time.perf_counter(); b(); tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def sync() -> None:
    subprocess.run(["sync"], check=True)


def max_rss_mb(cmd, env) -> float:
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{cmd} exited {p.returncode}: {p.stderr[-2000:]}")
    return int(p.stderr.strip().splitlines()[-1]) / 1024


# ---------------------------------------------------------------------- start-up
def bench_startup(tmp: Path, env: dict, n: int) -> None:
    from omr_workflows.registry import Registry
    from tests.conftest import make_artifacts

    reg_url = str(tmp / "startup-reg")
    reg = Registry(reg_url)
    for i in range(10):
        reg.register("cls", "m", f"v{i}", make_artifacts(tmp / f"startup-pkg{i}", seed=str(i)))
    reg.promote("cls/m@v3", "production")
    omrw = str(Path(PY).parent / "omrw")
    e = dict(env, OMR_REGISTRY=reg_url)
    cli, bare = paired(lambda: timed([omrw, "resolve", "cls/m@production"], e), lambda: timed([PY, "-c", "pass"], e), n)
    row("resolve, fresh process", f"{cli * 1000:.1f} ms", f"python -c pass {bare * 1000:.1f} ms",
        f"{cli / bare:.1f}x (<= 60 ms and <= 4x)", cli <= 0.060 and cli <= 4 * bare)


# ---------------------------------------------------------------------- Snakemake
def bench_snakemake(tmp: Path, env: dict, jobs: int, inputs: int) -> None:
    import bench_snakemake as bs

    registry = bs.make_registry(tmp / "smk", max(jobs, 1))
    work = tmp / "smk" / "wf"
    work.mkdir()
    empty = tmp / "smk" / "empty"
    empty.mkdir()
    (empty / "wrapper.py").write_text('open(snakemake.output[0], "w").close()\n')
    (empty / "environment.yaml").write_text("channels: [conda-forge]\ndependencies: [python]\n")
    (work / "Snakefile").write_text(bs.SNAKEFILE.format(wrappers=bs.WRAPPERS, empty=empty))
    os.symlink(tmp / "smk" / "local", work / "local")
    e = dict(env, OMR_REGISTRY=registry, OMR_CACHE=str(tmp / "smk-cache"),
             PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p))
    e["PATH"] = os.pathsep.join([str(Path(PY).parent), e.get("PATH", "")])
    e.pop("OMR_RUN_DIR", None)
    touch = min(bs.run(work, "touch", jobs, 1, e) for _ in range(2))
    empty = min(bs.run(work, "empty", jobs, 1, e) for _ in range(2))
    wrapper = min(bs.run(work, "resolve", jobs, 1, e) for _ in range(2))
    over = (wrapper - touch) / jobs
    row("Snakemake resolve wrapper", f"{wrapper / jobs * 1000:.0f} ms/job ({jobs} jobs)",
        f"touch rule {touch / jobs * 1000:.0f} ms/job; an empty Python wrapper {empty / jobs * 1000:.0f} ms/job",
        f"+{over * 1000:.0f} ms/job (<= 100)", over <= 0.100)
    registry_many = bs.make_registry(tmp / "smk-plugin", inputs)
    plugin = bs.plugin_in_process(registry_many, inputs, tmp / "smk-plugin-local")
    row("storage plugin, inputs of one model", f"{plugin:.2f} s for {inputs}", "-", f"(< 1 s for 1,000)",
        plugin < 1.0 * inputs / 1000 if inputs >= 1000 else None)


# ---------------------------------------------------------------------- bytes
def bench_bytes(tmp: Path, env: dict, size: int, big: int | None, repeat: int) -> None:
    import bench_verify as bv
    from omr_workflows.registry import Registry

    def package(root: Path, total: int, uniform: bool) -> Path:
        if uniform:
            root.mkdir(parents=True)
            block = os.urandom(MiB)
            for i in range(16):
                with open(root / f"part{i:02d}.bin", "wb") as f:
                    for j in range(total // 16 // MiB):
                        f.write(i.to_bytes(4, "little") + j.to_bytes(4, "little") + block[8:])
        else:
            bv.make_package(root, total)
        return root

    e = dict(env)
    for label, uniform in (("16 x 64 MiB", True), ("mixed package", False)):
        pkg = package(tmp / f"bytes-{uniform}", size, uniform)
        url = str(tmp / f"bytes-reg-{uniform}")
        Registry(url).register("b", "m", "v1", pkg)
        vdir = Path(url) / "tasks/b/models/m/versions/v1"
        e["OMR_REGISTRY"] = url
        subprocess.run(["cat", *[str(p) for p in vdir.rglob("*") if p.is_file()]], stdout=subprocess.DEVNULL)
        strict, gnu = paired(lambda: timed([*OMRW, "verify", "b/m@v1", "--mode", "strict"], e),
                             lambda: timed(["sha256sum", "--quiet", "-c", "sha256sums.txt"], e, cwd=vdir), repeat)
        row(f"strict verify {size // MiB} MiB ({label})", f"{strict:.2f} s", f"sha256sum -c {gnu:.2f} s",
            f"{gnu / strict:.1f}x faster (>= 8x)", gnu / strict >= 8)
        if uniform:
            files = [p for p in vdir.rglob("*") if p.is_file()]
            fast, raw = paired(lambda: timed([*OMRW, "verify", "b/m@v1", "--mode", "fast"], e),
                               lambda: bv.raw_read(files), repeat)
            row(f"fast verify {size // MiB} MiB", f"{fast:.2f} s", f"raw read {raw:.2f} s",
                f"{raw / fast:.2f}x of raw read (>= 0.6x)", raw / fast >= 0.6)
            dst = tmp / "cp-dst"

            def cp():
                shutil.rmtree(dst, ignore_errors=True); sync()
                timed(["cp", "-r", str(pkg), str(dst)]); sync()

            def register():
                shutil.rmtree(tmp / "reg-dst", ignore_errors=True); sync()
                timed([*OMRW, "--registry", str(tmp / "reg-dst"), "register", "b/m", "--version", "v1",
                       "--artifacts", str(pkg), "--no-provenance"], e)
                sync()
            reg_t, cp_t = paired(register, cp, repeat)
            row(f"register {size // MiB} MiB", f"{reg_t:.2f} s", f"cp -r && sync {cp_t:.2f} s",
                f"{reg_t / cp_t:.2f}x (<= 1.1x)", reg_t / cp_t <= 1.1)
            shutil.rmtree(dst, ignore_errors=True)
            shutil.rmtree(tmp / "reg-dst", ignore_errors=True)
        shutil.rmtree(pkg, ignore_errors=True) if not uniform else None
    if big:
        pkg = package(tmp / "big", big, True)
        url = str(tmp / "big-reg")
        e["OMR_REGISTRY"] = url
        rss_reg = max_rss_mb([*OMRW, "register", "b/m", "--version", "v1", "--artifacts", str(pkg), "--no-provenance"], e)
        shutil.rmtree(pkg)
        vdir = Path(url) / "tasks/b/models/m/versions/v1"
        files = [p for p in vdir.rglob("*") if p.is_file()]
        subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL)
        fast_big = min(timed([*OMRW, "verify", "b/m@v1", "--mode", "fast"], e) for _ in range(repeat))
        raw_big = min((lambda t: (bv.raw_read(files), time.perf_counter() - t)[1])(time.perf_counter())
                      for _ in range(repeat))
        fast_small = min(timed([*OMRW, "--registry", str(tmp / "bytes-reg-True"), "verify", "b/m@v1", "--mode", "fast"], e)
                         for _ in range(repeat))
        raw_small_files = [p for p in (tmp / "bytes-reg-True/tasks/b/models/m/versions/v1").rglob("*") if p.is_file()]
        raw_small = min((lambda t: (bv.raw_read(raw_small_files), time.perf_counter() - t)[1])(time.perf_counter())
                        for _ in range(repeat))
        marginal = (raw_big - raw_small) / max(fast_big - fast_small, 1e-9)
        row(f"fast verify marginal {size // MiB} -> {big // MiB} MiB", f"{fast_big - fast_small:.2f} s",
            f"raw read {raw_big - raw_small:.2f} s", f"{marginal:.2f}x (>= 0.85x)", marginal >= 0.85)
        rss_ver = max_rss_mb([*OMRW, "verify", "b/m@v1", "--mode", "strict"], e)
        row(f"memory, register {big // MiB} MiB", f"{rss_reg:.0f} MB RSS", "-", "(< 200 MB)", rss_reg < 200)
        row(f"memory, strict verify {big // MiB} MiB", f"{rss_ver:.0f} MB RSS", "-", "(< 200 MB)", rss_ver < 200)
        shutil.rmtree(url, ignore_errors=True)


# ---------------------------------------------------------------------- growth
def bench_growth(tmp: Path, env: dict, versions: int, models: int, n: int) -> None:
    from omr_workflows.registry import Registry

    pkg = tmp / "tiny"
    pkg.mkdir()
    (pkg / "w.bin").write_bytes(b"w" * 64)
    url = str(tmp / "growth-reg")
    reg = Registry(url)

    def per_op(count_at: int) -> tuple[float, float, float]:
        reg_t, pro_t, res_t = [], [], []
        for i in range(n):
            name = f"probe{count_at}-{i}"
            t = time.perf_counter(); reg.register("g", "m", name, pkg, set_latest=False); reg_t.append(time.perf_counter() - t)
            t = time.perf_counter(); reg.promote(f"g/m@{name}", "staging"); pro_t.append(time.perf_counter() - t)
            t = time.perf_counter(); reg.resolve("g/m@staging", materialize=False); res_t.append(time.perf_counter() - t)
        return statistics.median(reg_t), statistics.median(pro_t), statistics.median(res_t)

    for i in range(10):
        reg.register("g", "m", f"v{i:06d}", pkg, set_latest=False)
    small = per_op(10)
    t0 = time.perf_counter()
    for i in range(10, versions):
        reg.register("g", "m", f"v{i:06d}", pkg, set_latest=False)
    fill = time.perf_counter() - t0
    large = per_op(versions)
    for label, a, b in zip(("register", "promote", "resolve (in-process)"), small, large):
        row(f"{label} at {versions:,} versions", f"{b * 1000:.1f} ms", f"at 10 versions {a * 1000:.1f} ms",
            f"{b / a:.2f}x (<= 1.2x)", b / a <= 1.2)
    events = versions + 3 * n
    e = dict(env, OMR_REGISTRY=url)
    hist = min(timed([*OMRW, "history", "g/m", "--json"], e) for _ in range(2))
    aud = min(timed([*OMRW, "audit", "g/m"], e) for _ in range(2))
    row(f"history, {events:,} events", f"{hist:.2f} s", "-", "(< 1 s)", hist < 1)
    row(f"audit, {events:,} events", f"{aud:.2f} s", "-", "(< 1 s)", aud < 1)
    print(f"  (filled {versions:,} versions in {fill:.0f} s)", flush=True)

    wide = str(tmp / "wide-reg")
    wreg = Registry(wide)
    t0 = time.perf_counter()
    for mi in range(models):
        for vi in range(10):
            wreg.register("w", f"m{mi:05d}", f"v{vi}", pkg)
    print(f"  (filled {models:,} models x 10 versions in {time.perf_counter() - t0:.0f} s)", flush=True)
    e = dict(env, OMR_REGISTRY=wide)
    lst = min(timed([*OMRW, "list", "--json"], e) for _ in range(2))
    plan = min(timed([*OMRW, "verify", "--all", "--plan", "--shards", "4"], e) for _ in range(2))
    row(f"list, {models:,} models x 10", f"{lst:.2f} s", "-", "(< 5 s)", lst < 5 if models >= 10_000 else None)
    row(f"verify --all planning, {models:,} x 10", f"{plan:.2f} s", "-", "(< 5 s)", plan < 5 if models >= 10_000 else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gib", type=float, default=1.0)
    ap.add_argument("--big-gib", type=float, default=4.0, help="marginal throughput and memory (0: skip)")
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=100, help="Snakemake jobs per run")
    ap.add_argument("--inputs", type=int, default=1000, help="storage-plugin inputs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=["startup", "snakemake", "bytes", "growth"])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.size_gib, args.big_gib, args.versions, args.models, args.jobs, args.inputs = 0.0625, 0.125, 200, 100, 10, 100
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "OMR_RUN_DIR", "OMR_VERIFY")}
    subprocess.run([PY, "-m", "compileall", "-q", str(REPO / "omr_workflows")], check=True, env=env)
    tmp = Path(tempfile.mkdtemp(prefix="omr-bench-speed-", dir=os.environ.get("TMPDIR")))
    env["OMR_CACHE"] = str(tmp / "cache")
    try:
        if "startup" in args.only:
            bench_startup(tmp, env, max(20, args.repeat * 10))
        if "snakemake" in args.only:
            bench_snakemake(tmp, env, args.jobs, args.inputs)
        if "bytes" in args.only:
            bench_bytes(tmp, env, int(args.size_gib * 1024) * MiB,
                        int(args.big_gib * 1024) * MiB if args.big_gib else None, args.repeat)
        if "growth" in args.only:
            bench_growth(tmp, env, args.versions, args.models, 5)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"\nomr-workflows speed targets (issue 13): {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load {load:.1f}\n")
    print("| target | measured | anchor (same run) | ratio / value | |")
    print("|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()

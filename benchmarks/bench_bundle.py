"""Bundle benchmarks (issue 12): what `omrw export`, `import` and `mirror` cost next to the plain
tool that moves the same bytes.

Run by hand: `python benchmarks/bench_bundle.py [--size-mb 1024] [--runs 3]`. Prints a table.
One package of SIZE MiB (64 MiB random files) is registered in a local registry; every
measurement is a median over --runs, page cache warm (the bytes are read once before), each
omrw command run alternately with its anchor so drift of the machine hits both, and `sync`
(untimed) before each so writeback of the last one is not billed to the next.
Target: each omrw command within 1.5x of its anchor:
  export        vs  tar -cf X -C VERSIONDIR .
  import        vs  tar -xf X -C FRESH && sha256sum of every extracted file (import hashes everything)
  mirror        vs  cp -r VERSIONDIR DST && sync
  mirror again  vs  omrw resolve on the target (nothing to copy: it should read only metadata)
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

OMRW = [sys.executable, "-m", "omr_workflows.cli.main"]
TARGET = 1.5


def omrw(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([*OMRW, *args], capture_output=True, text=True, env=dict(os.environ))
    if proc.returncode:
        raise SystemExit(f"omrw {' '.join(args)} failed: {proc.stderr}")
    return proc


def sh(cmd: str) -> None:
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{cmd} failed: {proc.stderr}")


def timed(fn) -> float:
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_package(root: Path, size_mb: int) -> Path:
    root.mkdir(parents=True)
    n_files = max(1, size_mb // 64)
    per_file = size_mb // n_files
    for i in range(n_files):
        with open(root / f"shard-{i:03d}.bin", "wb") as f:
            for _ in range(per_file):
                f.write(os.urandom(1 << 20))
    (root / "config.json").write_text('{"layers": 4}')
    return root


def warm(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                while f.read(8 << 20):
                    pass


def clear(*paths: Path) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the registries and bundles go (default: the temp folder)")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=opts.dir, prefix="omr-bench-bundle-") as tmp:
        tmp = Path(tmp)
        src = str(tmp / "src")
        pkg = make_package(tmp / "pkg", opts.size_mb)
        out = json.loads(omrw("register", "t/m", "--version", "v1", "--artifacts", str(pkg), "--no-provenance",
                              "--json", "--registry", src).stdout)
        shutil.rmtree(pkg)
        vdir = Path(out["package_path"])
        warm(vdir)

        bundle, anchor_tar = tmp / "b.tar", tmp / "x.tar"
        times: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in ("export", "import", "mirror",
                                                                                  "mirror2")}
        for i in range(opts.runs):
            # (a) export vs tar -cf
            clear(bundle, anchor_tar)
            times["export"][0].append(timed(lambda: sh(f"tar -cf {anchor_tar} -C {vdir} .")))
            times["export"][1].append(timed(lambda: omrw("export", "t/m@v1", "-o", str(bundle), "--registry", src)))
            warm(vdir)  # the bundle and the tar are both in the page cache now too
            # (b) import vs tar -xf + sha256sum of every file
            fresh, imported = tmp / f"fresh{i}", tmp / f"imported{i}"
            fresh.mkdir()
            times["import"][0].append(timed(lambda: sh(
                f"tar -xf {anchor_tar} -C {fresh} && find {fresh} -type f -print0 | xargs -0 sha256sum >/dev/null")))
            times["import"][1].append(timed(lambda: omrw("import", str(bundle), "--registry", str(imported))))
            clear(fresh, imported, bundle, anchor_tar)
            warm(vdir)
            # (c) mirror vs cp -r && sync; (d) the second mirror, nothing to copy, vs a resolve there
            copied, mirrored = tmp / f"copied{i}", tmp / f"mirrored{i}"
            times["mirror"][0].append(timed(lambda: sh(f"cp -r {vdir} {copied} && sync")))
            times["mirror"][1].append(timed(lambda: omrw("mirror", src, str(mirrored), "--model", "t/m")))
            times["mirror2"][0].append(timed(lambda: omrw("resolve", "t/m@v1", "--registry", str(mirrored))))
            times["mirror2"][1].append(timed(lambda: omrw("mirror", src, str(mirrored), "--model", "t/m")))
            clear(copied, mirrored)

    size = f"{opts.size_mb} MiB"
    labels = {
        "export": (f"export {size}", "tar -cf X -C versiondir ."),
        "import": (f"import {size} bundle, fresh registry", "tar -xf X -C fresh && sha256sum every file"),
        "mirror": (f"mirror {size} local->local", "cp -r versiondir DST && sync"),
        "mirror2": ("mirror again (nothing to copy)", "omrw resolve on DST"),
    }
    rows = []
    for key, (anchor_t, omrw_t) in times.items():
        a, o = statistics.median(anchor_t), statistics.median(omrw_t)
        ratio = o / a if a else float("inf")
        rows.append((labels[key][0], labels[key][1], f"{a:.2f}", f"{o:.2f}", f"{ratio:.2f}x", f"{TARGET}x",
                     "met" if ratio <= TARGET else "not met"))
    head = ("what", "anchor", "anchor s", "omrw s", "ratio", "target", "met?")
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    print(f"bundle benchmarks: {opts.size_mb} MiB in {max(1, opts.size_mb // 64)} files, median of {opts.runs} "
          f"run(s), page cache warm")
    for r in [head, *rows]:
        print("  ".join(f"{c:<{w}}" if j < 2 else f"{c:>{w}}" for j, (c, w) in enumerate(zip(r, widths))).rstrip())


if __name__ == "__main__":
    main()

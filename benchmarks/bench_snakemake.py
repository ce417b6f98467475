"""Per-job overhead of the Snakemake integration, against rules that only touch their output.

    python benchmarks/bench_snakemake.py [--jobs 1 100] [--cores 1] [--repeat 1]

Rows (each a real `python -m snakemake` run in a fresh temp dir, wall time):

* touch             N jobs whose rule only runs `touch {output}` (the baseline)
* empty wrapper     N jobs using a wrapper that only creates its output (Snakemake's own
                    cost of running a Python wrapper script)
* shell: omrw       N jobs running `omrw resolve --json` in a shell rule (the CLI's own cost)
* resolve wrapper   N jobs using the omr/resolve wrapper (one `omrw resolve --json` each)
* local input       N jobs reading a local file each, then touching their output (baseline)
* storage.omr       N jobs reading `storage.omr("omr://bench/model@production#part-I.bin")`,
                    N distinct files of one model: resolution, mtime/exists/size, retrieval

plus the storage plugin on its own (in-process, no Snakemake): N objects of one model
through exists/mtime/size/checksum/retrieve.

Targets: the resolve wrapper adds < 100 ms per job over `touch`; the storage plugin
resolves 100 inputs of one model in < 1 s in total.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's omr_workflows and storage plugin, installed or not
WRAPPERS = REPO / "snakemake_rules" / "wrappers"

SNAKEFILE = """
N = int(config["njobs"])
KIND = config["kind"]

rule all:
    input: expand("out/{{kind}}/{{i}}.txt", kind=KIND, i=range(N))

rule touch:
    output: "out/touch/{{i}}.txt"
    shell: "touch {{output}}"

rule resolve_wrapper:
    output: "out/resolve/{{i}}.txt"
    params: ref="bench/model@production"
    wrapper: "file:{wrappers}/omr/resolve"

rule empty_wrapper:
    output: "out/empty/{{i}}.txt"
    wrapper: "file:{empty}"

rule resolve_shell:
    output: "out/shell/{{i}}.txt"
    shell: "omrw resolve bench/model@production --json > {{output}}"

rule local_input:
    input: "local/part-{{i}}.bin"
    output: "out/local/{{i}}.txt"
    shell: "touch {{output}}"

rule storage_input:
    input: storage.omr("omr://bench/model@production#part-{{i}}.bin")
    output: "out/storage/{{i}}.txt"
    shell: "touch {{output}}"
"""


def make_registry(root: Path, files: int) -> str:
    from omr_workflows.registry import Registry

    art = root / "artifacts"
    art.mkdir(parents=True)
    for i in range(files):
        (art / f"part-{i}.bin").write_bytes(os.urandom(4096))
    url = str(root / "registry")
    Registry(url).register("bench", "model", "v1", str(art), aliases=["production"], reason="benchmark")
    local = root / "local"
    shutil.copytree(art, local)
    return url


def run(work: Path, kind: str, n: int, cores: int, env: dict) -> float:
    for d in ("out", ".snakemake"):
        shutil.rmtree(work / d, ignore_errors=True)
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "all",
           "--config", f"kind={kind}", f"njobs={n}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"snakemake failed for {kind} n={n}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return elapsed


def plugin_in_process(registry: str, n: int, tmp: Path) -> float:
    from snakemake_storage_plugin_omr import StorageProvider, StorageProviderSettings

    t0 = time.perf_counter()
    provider = StorageProvider(local_prefix=tmp / "plugin-local", logger=logging.getLogger("bench"),
                               settings=StorageProviderSettings(registry=registry, verify="fast"))
    for i in range(n):
        obj = provider.object(f"omr://bench/model@production#part-{i}.bin")
        assert obj.exists()
        obj.mtime()
        obj.size()
        obj.checksum()
        obj.retrieve_object()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 100])
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell; the best is reported")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="omr-bench-smk-"))
    try:
        registry = make_registry(tmp, max(args.jobs))
        work = tmp / "wf"
        work.mkdir()
        empty = tmp / "empty-wrapper"
        empty.mkdir()
        (empty / "wrapper.py").write_text('open(snakemake.output[0], "w").close()\n')
        (empty / "environment.yaml").write_text("channels: [conda-forge]\ndependencies: [python]\n")
        (work / "Snakefile").write_text(SNAKEFILE.format(wrappers=WRAPPERS, empty=empty))
        os.symlink(tmp / "local", work / "local")
        env = dict(os.environ, OMR_REGISTRY=registry, OMR_CACHE=str(tmp / "cache"),
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.pop("OMR_RUN_DIR", None)
        results: dict[tuple[str, int], float] = {}
        for n in args.jobs:
            for kind in ("touch", "empty", "shell", "resolve", "local", "storage"):
                results[kind, n] = min(run(work, kind, n, args.cores, env) for _ in range(args.repeat))
            results["plugin", n] = min(plugin_in_process(registry, n, tmp / f"p{n}-{r}") for r in range(args.repeat))

        print(f"\nSnakemake {snakemake_version()}, --cores {args.cores}, wall seconds (best of {args.repeat})\n")
        print(f"| {'case':<34} | {'jobs':>4} | {'total s':>8} | {'per job ms':>10} | {'over baseline, per job ms':>26} |")
        print(f"|{'-' * 36}|{'-' * 6}|{'-' * 10}|{'-' * 12}|{'-' * 28}|")
        for n in args.jobs:
            rows = [("touch rule (baseline)", "touch", None), ("empty Python wrapper", "empty", "touch"),
                    ("shell: omrw resolve --json", "shell", "touch"),
                    ("resolve wrapper", "resolve", "touch"),
                    ("local-file input (baseline)", "local", None), ("storage.omr input", "storage", "local")]
            for label, kind, base in rows:
                total = results[kind, n]
                over = f"{(total - results[base, n]) / n * 1000:.1f}" if base else ""
                print(f"| {label:<34} | {n:>4} | {total:>8.2f} | {total / n * 1000:>10.1f} | {over:>26} |")
            total = results["plugin", n]
            print(f"| {'storage plugin alone (in-process)':<34} | {n:>4} | {total:>8.3f} | {total / n * 1000:>10.2f} | "
                  f"{'':>26} |")
        print("\nTargets: resolve wrapper < 100 ms/job over touch; storage.omr: 100 inputs of one model < 1 s in total.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def snakemake_version() -> str:
    from importlib.metadata import version

    return version("snakemake")


if __name__ == "__main__":
    main()

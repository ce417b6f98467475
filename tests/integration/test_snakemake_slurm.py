"""The rule library's scattered verification on a real single-node SLURM cluster through
`snakemake-executor-plugin-slurm` (`--executor slurm`): every shard is its own SLURM job (Snakemake's
submission lines, checked against `scontrol show job`), the merge runs locally, and a corrupted byte
fails exactly the shard that holds it.

Accounting is off in the test cluster, so the executor polls with `--slurm-status-command
squeue` (sacct would never answer and the executor would wait forever). The jobstep plugin
drops SLURM_* variables before its inner `srun`, so an `srun` shim first on PATH puts
SLURM_CONF back. Snakemake runs under `timeout -s INT` (it ignores SIGTERM) so a hang
cannot stall CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.engines.conftest import RULES, toy_files

# One single-node cluster per run: every test that uses it goes to the same xdist worker.
pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slurm, pytest.mark.slow, pytest.mark.snakemake]

REPO = Path(__file__).resolve().parents[2]
SHARDS = 3
DEADLINE = 420  # seconds for one Snakemake run on the cluster (about 7 s of start-up per job)


def _registry(root: Path) -> str:
    from omr_workflows.registry import Registry

    url = str(root / "registry")
    for i, name in enumerate(["alpha", "beta", "gamma", "delta"]):
        art = root / f"art-{name}"
        art.mkdir(parents=True)
        for rel, data in toy_files(name).items():
            (art / rel).write_bytes(data)
        (art / f"weights-{name}.bin").write_bytes(bytes(range(256)) * (64 + i))
        Registry(url).register("demo", name, "v1", str(art), aliases=["production"])
    return url


def _workflow(root: Path, registry: str) -> Path:
    work = root / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(f'configfile: "config.yaml"\ninclude: "{RULES / "omr.smk"}"\n')
    (work / "config.yaml").write_text(yaml.safe_dump({"omr": {
        "registry": registry, "targets": ["verify"], "scatter": SHARDS,
        "verification": {"scope": "all", "mode": "fast", "jobs": 1}}}))
    return work


def _srun_shim(root: Path, conf: str) -> Path:
    srun = shutil.which("srun")
    assert srun, "srun not on PATH"
    bin_dir = root / "srun-shim"
    bin_dir.mkdir()
    shim = bin_dir / "srun"
    shim.write_text(f"#!/bin/sh\nexport SLURM_CONF='{conf}'\nexec '{srun}' \"$@\"\n")
    shim.chmod(0o755)
    return bin_dir


def _run(work: Path, env: dict, *extra: str) -> subprocess.CompletedProcess:
    cmd = ["timeout", "-s", "INT", "-k", "30", str(DEADLINE), sys.executable, "-m", "snakemake",
           "--executor", "slurm", "--jobs", str(SHARDS), "--slurm-status-command", "squeue",
           "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1",
           "--default-resources", "mem_mb=300", "runtime=10", "--latency-wait", "10", "omr_all", *extra]
    return subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=DEADLINE + 60)


SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: [^)]*/rule_omr_verify_shard/([0-9]+-of-[0-9]+)/")


def _submitted(proc) -> dict[str, str]:
    """{scatter item: SLURM job id} from Snakemake's own "submitted with SLURM jobid" lines."""
    return {m.group(2): m.group(1) for m in SUBMITTED.finditer(proc.stdout + proc.stderr)}


def _dump(proc, cluster, work: Path) -> str:
    logs = "\n".join(f"--- {p.relative_to(work)}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted(work.rglob("*.log")) if p.is_file())
    return (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-8000:]}\n"
            f"{logs}\n--- cluster\n{cluster.logs()}")


def test_scattered_verification_runs_each_shard_as_a_slurm_job(slurm_cluster, job_env, tmp_path):
    registry = _registry(tmp_path)
    work = _workflow(tmp_path, registry)
    shim = _srun_shim(tmp_path, slurm_cluster.env["SLURM_CONF"])
    pythonpath = os.pathsep.join(p for p in (str(REPO), job_env.get("PYTHONPATH", "")) if p)
    env = slurm_cluster.environ({**job_env, "PATH": os.pathsep.join([str(shim), job_env["PATH"]]),
                                 "PYTHONPATH": pythonpath, "OMR_REGISTRY": registry})

    proc = _run(work, env)
    assert proc.returncode == 0, _dump(proc, slurm_cluster, work)
    assert json.loads((work / "omr/verify/report.json").read_text())
    submitted = _submitted(proc)
    assert sorted(submitted) == [f"{i}-of-{SHARDS}" for i in range(1, SHARDS + 1)], proc.stderr[-3000:]
    assert len(set(submitted.values())) == SHARDS
    for shard, job_id in submitted.items():
        states = slurm_cluster.job_states(job_id)
        assert states and all(st.ok for st in states), (shard, states)

    # A corrupted byte fails the shard holding that file; the others succeed.
    from omr_workflows.registry import Registry

    victim = Path(Registry(registry).resolve("demo/gamma@v1").path) / "weights-gamma.bin"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0x10
    victim.chmod(0o644)
    victim.write_bytes(bytes(data))
    shutil.rmtree(work / "omr/verify")
    proc = _run(work, env, "--keep-going")
    assert proc.returncode != 0, _dump(proc, slurm_cluster, work)
    assert len(_submitted(proc)) == SHARDS
    failed = [i for i in range(1, SHARDS + 1) if not (work / f"omr/verify/shards/{i}-of-{SHARDS}.json").exists()]
    assert len(failed) == 1, _dump(proc, slurm_cluster, work)
    log = (work / f"omr/logs/verify/{failed[0]}-of-{SHARDS}.log").read_text()
    assert "weights-gamma.bin" in log, log
    assert not (work / "omr/verify/report.json").exists()

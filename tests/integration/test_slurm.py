"""On a real single-node SLURM cluster: job arrays with a dependent job, and the HPC example
(examples/hpc/submit.sh) verifying a registry in shards and merging the reports.

Accounting is off in the test cluster, so a job's outcome is read from the files it writes (the
example writes an exit-code file per shard and for the merge) and cross-checked with the state
`scontrol show job` keeps after the job ends.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from omr_workflows.constants import MANIFEST_NAME
from omr_workflows.registry import Registry
from tests.conftest import make_artifacts

# One single-node cluster per run: every test that uses it goes to the same xdist worker.
pytestmark = [pytest.mark.xdist_group("slurm"), pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SUBMIT = REPO / "examples" / "hpc" / "submit.sh"


def test_array_and_dependent_job_complete(slurm_cluster, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    array = slurm_cluster.sbatch([
        "--array=0-3", f"--output={out}/array-%A_%a.out",
        "--wrap", f'echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_JOB_ID" > {out}/task-$SLURM_ARRAY_TASK_ID',
    ])
    # The dependent job records what it saw: all four task files must exist when it starts.
    after = slurm_cluster.sbatch([
        f"--dependency=afterany:{array}", f"--output={out}/after-%j.out",
        "--wrap", f"ls {out} | grep -c '^task-' > {out}/after.count; exit 3",
    ])
    states = slurm_cluster.wait([array, after], timeout=180)

    for i in range(4):
        assert (out / f"task-{i}").read_text() == f"task {i} of {array}\n"
    assert (out / "after.count").read_text().strip() == "4"
    tasks = states[array]
    assert sorted(s.array_task for s in tasks) == ["0", "1", "2", "3"]
    assert all(s.ok for s in tasks), tasks
    # The deliberate `exit 3` shows that a failing job is seen as failed, not as completed.
    [dependent] = states[after]
    assert dependent.state == "FAILED" and dependent.exit_code == "3:0", dependent


# ---------------------------------------------------------------------- examples/hpc
BIG = "weights/big.bin"
BIG_SIZE = 2 * 64 * 1024 * 1024 + 1024 * 1024   # three 64 MiB chunks: split across shards in fast mode


def _build_registry(root: Path, work: Path) -> Registry:
    reg = Registry(str(root))
    reg.register("cls", "pbmc", "2026-01-01_001", make_artifacts(work / "a1", seed="a"))
    reg.register("cls", "pbmc", "2026-01-02_001", make_artifacts(work / "a2", seed="b"))
    big = make_artifacts(work / "a3", seed="c")
    (big / BIG).parent.mkdir(parents=True, exist_ok=True)
    (big / BIG).write_bytes(random.Random(7).randbytes(BIG_SIZE))
    reg.register("seg", "lung", "v1", big)
    return reg


def _files_on_disk(root: Path) -> dict[tuple[str, str], int]:
    """(TASK/MODEL@VERSION, path) -> size of every file the registry holds for its versions,
    read from the file system, not from any report or manifest (the manifest itself excluded:
    the version check covers it)."""
    out = {}
    for vdir in root.glob("tasks/*/models/*/versions/*"):
        ref = f"{vdir.parents[3].name}/{vdir.parents[1].name}@{vdir.name}"
        for f in vdir.rglob("*"):
            if f.is_file() and f.name != MANIFEST_NAME:
                out[(ref, f.relative_to(vdir).as_posix())] = f.stat().st_size
    return out


def _submit(cluster, env: dict[str, str], out: Path, *args: str) -> dict[str, str]:
    proc = subprocess.run([str(SUBMIT), "--out", str(out), *args], capture_output=True,
                          text=True, env=cluster.environ(env), cwd=out.parent, timeout=120)
    assert proc.returncode == 0, f"submit.sh exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    ids = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert set(ids) == {"OMRW_ARRAY_JOB", "OMRW_MERGE_JOB", "OMRW_SHARDS", "OMRW_OUT"}, proc.stdout
    assert Path(ids["OMRW_OUT"]) == out, proc.stdout
    return ids


def _job_logs(out: Path) -> str:
    return "\n".join(f"----- {p.name} -----\n{p.read_text(errors='replace')}"
                     for p in sorted((out / "logs").glob("*")))


def _exit_code(path: Path, out: Path) -> int:
    assert path.exists(), f"{path.name} missing: the job died before recording omrw's exit code\n{_job_logs(out)}"
    return int(path.read_text())


def test_hpc_example_verifies_in_shards_and_merge_catches_corruption(slurm_cluster, job_env, tmp_path):
    root = tmp_path / "registry"
    _build_registry(root, tmp_path / "artifacts")
    on_disk = _files_on_disk(root)
    env = {**job_env, "OMR_REGISTRY": str(root)}

    # 1. A clean registry: three shards on the cluster, merged, every byte on disk covered once.
    out = tmp_path / "run-clean"
    ids = _submit(slurm_cluster, env, out, "--shards", "3")
    assert ids["OMRW_SHARDS"] == "3"
    states = slurm_cluster.wait([ids["OMRW_ARRAY_JOB"], ids["OMRW_MERGE_JOB"]], timeout=300)
    logs = _job_logs(out)
    assert [_exit_code(out / f"shard-{i}.exit", out) for i in (1, 2, 3)] == [0, 0, 0], logs
    assert _exit_code(out / "merge.exit", out) == 0, logs
    assert all(s.ok for job in states.values() for s in job), (states, logs)
    assert sorted(s.array_task for s in states[ids["OMRW_ARRAY_JOB"]]) == ["0", "1", "2"]

    merged = json.loads((out / "merged.json").read_text())
    plan = json.loads((out / "plan.json").read_text())
    assert merged["ok"] is True
    assert merged["plan"]["shard_count"] == 3 and merged["plan"]["plan_digest"] == plan["plan_digest"]
    assert sorted(s["index"] for s in merged["shards"]) == [1, 2, 3]
    assert merged["failures"] == []
    units = merged["units"]
    assert len(units) == merged["plan"]["units"] and len({u["id"] for u in units}) == len(units)
    assert all(u["result"] == "ok" for u in units)
    assert {v["ref"]: v["result"] for v in merged["versions"]} == {
        "cls/pbmc@2026-01-01_001": "ok", "cls/pbmc@2026-01-02_001": "ok", "seg/lung@v1": "ok"}
    # Coverage judged against the file system: every file, every byte, exactly once.
    covered: dict[tuple[str, str], int] = {}
    for u in units:
        if u["kind"] in ("file", "chunks"):
            covered[(u["version"], u["path"])] = covered.get((u["version"], u["path"]), 0) + u["length"]
    assert covered == on_disk
    assert merged["plan"]["bytes"] == sum(on_disk.values())
    # The large file was cut into chunk ranges, and those went to different shards (nodes).
    big_units = [u for u in units if u["path"] == BIG]
    assert len(big_units) == 3 and {u["kind"] for u in big_units} == {"chunks"}
    assert len({u["shard"] for u in big_units}) >= 2
    # Every shard report was written by its own array task.
    for i in (1, 2, 3):
        shard = json.loads((out / f"shard-{i}.json").read_text())
        assert shard["shard"] == i and shard["ok"] is True
        assert shard["plan"]["plan_digest"] == plan["plan_digest"]

    # 2. A missing shard: the merge job of the example refuses to merge two reports of three.
    partial = tmp_path / "run-partial"
    (partial / "logs").mkdir(parents=True)
    for i in (1, 3):
        (partial / f"shard-{i}.json").write_bytes((out / f"shard-{i}.json").read_bytes())
    merge_only = slurm_cluster.sbatch(
        ["--export=ALL", f"--output={partial}/logs/merge-%j.out", str(SUBMIT.parent / "merge.sbatch"), str(partial)],
        env=env)
    slurm_cluster.wait([merge_only], timeout=120)
    assert _exit_code(partial / "merge.exit", partial) == 1, _job_logs(partial)
    assert not (partial / "merged.json").exists() or json.loads((partial / "merged.json").read_text())["ok"] is False
    assert "missing shard(s) 2/3" in _job_logs(partial)

    # 3. One flipped byte inside the second chunk of the large file: the shard that holds that
    #    chunk fails, the others pass, and the merge fails naming the file.
    big_path = next(root.glob("tasks/seg/models/lung/versions/v1/**/big.bin"))
    flipped = 64 * 1024 * 1024 + 12345
    with open(big_path, "r+b") as f:
        f.seek(flipped)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    bad_shard = next(u["shard"] for u in big_units if u["offset"] <= flipped < u["offset"] + u["length"])

    # This time submit.sh plans the shard count itself: ~129 MiB at 64 MiB per shard -> 3.
    out2 = tmp_path / "run-corrupt"
    ids2 = _submit(slurm_cluster, env, out2, "--bytes-per-shard", "64M")
    assert ids2["OMRW_SHARDS"] == "3"
    states2 = slurm_cluster.wait([ids2["OMRW_ARRAY_JOB"], ids2["OMRW_MERGE_JOB"]], timeout=300)
    logs2 = _job_logs(out2)
    # Same manifests, same plan: the shard that holds the flipped chunk is known from run 1.
    assert json.loads((out2 / "plan.json").read_text())["plan_digest"] == plan["plan_digest"]
    shard_codes = {i: _exit_code(out2 / f"shard-{i}.exit", out2) for i in (1, 2, 3)}
    assert shard_codes == {i: (1 if i == bad_shard else 0) for i in (1, 2, 3)}, logs2
    assert _exit_code(out2 / "merge.exit", out2) == 1, logs2
    tasks = {s.array_task: s for s in states2[ids2["OMRW_ARRAY_JOB"]]}
    assert tasks[str(bad_shard - 1)].state == "FAILED" and tasks[str(bad_shard - 1)].exit_code == "1:0", tasks
    [merge_state] = states2[ids2["OMRW_MERGE_JOB"]]
    assert merge_state.state == "FAILED" and merge_state.exit_code == "1:0", merge_state

    merged2 = json.loads((out2 / "merged.json").read_text())
    assert merged2["ok"] is False
    assert [(f["version"], f["path"]) for f in merged2["failures"]] == [("seg/lung@v1", BIG)]
    assert {v["ref"]: v["result"] for v in merged2["versions"]}["seg/lung@v1"] == "fail"
    assert BIG in logs2


@pytest.mark.parametrize("args, env_registry, message", [
    ([], False, "no registry"),
    (["--mode", "quick"], True, "--mode must be fast or strict"),
    (["--shards", "0"], True, "--shards must be a positive integer"),
    (["--frobnicate"], True, "unknown option '--frobnicate'"),
    (["--out"], True, "option --out needs a value"),
], ids=["no-registry", "bad-mode", "zero-shards", "unknown-option", "missing-value"])
def test_submit_rejects_bad_input(slurm_cluster, job_env, tmp_path, args, env_registry, message):
    env = {**job_env, **({"OMR_REGISTRY": str(tmp_path / "registry")} if env_registry else {})}
    proc = subprocess.run([str(SUBMIT), *args], capture_output=True, text=True, env=slurm_cluster.environ(env),
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in proc.stderr and proc.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing written: no default output dir
    assert slurm_cluster.queue() == []


def test_submit_refuses_an_out_dir_with_old_reports(slurm_cluster, job_env, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "shard-1.json").write_text("{}")
    proc = subprocess.run([str(SUBMIT), "--shards", "2", "--out", str(out)], capture_output=True, text=True,
                          env=slurm_cluster.environ({**job_env, "OMR_REGISTRY": str(tmp_path / "registry")}),
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "already holds reports" in proc.stderr, proc.stderr
    assert slurm_cluster.queue() == []

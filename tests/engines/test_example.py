"""examples/snakemake end to end: run.sh from a clean copy (twice: idempotent), a promotion
between two runs reruns exactly the jobs that use the model and the provenance table names
the new version, and a lock file stops that rerun.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, dry_run_jobs, run_snakemake, snakemake_env

pytestmark = [pytest.mark.snakemake, pytest.mark.slow]
EXAMPLE = REPO / "examples" / "snakemake"
MODEL = "toy/nearest_centroid"
INFERENCE_JOBS = {"omr_resolve": 1, "omr_fetch": 1, "omr_provenance": 1, "predict_storage": 1,
                  "predict_library": 1, "agreement": 1, "all": 1}


@pytest.fixture
def example(tmp_path) -> Path:
    copy = tmp_path / "example"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("work", ".snakemake", "__pycache__"))
    return copy


def run_sh(example: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = snakemake_env(extra={"PYTHON": sys.executable, **(env or {})})
    full["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), full.get("PATH", "")])
    proc = subprocess.run(["bash", str(example / "run.sh")], capture_output=True, text=True, env=full, timeout=600,
                          cwd=example.parent)
    if proc.returncode != 0:
        print(proc.stdout[-5000:], proc.stderr[-8000:])
    assert proc.returncode == 0
    return proc


def smk(example: Path, *args: str, check: bool = True):
    """The example's own Snakemake invocation (as in run.sh), registry under its work dir."""
    work = example / "work"
    return run_snakemake(work, "--snakefile", str(example / "Snakefile"), "--cores", "2", *args,
                         env={"OMR_REGISTRY": str(work / "registry")}, check=check)


def jobs(example: Path, *args: str) -> dict:
    work = example / "work"
    return dry_run_jobs(work, "--snakefile", str(example / "Snakefile"), *args,
                        env={"OMR_REGISTRY": str(work / "registry")})


def registry(example: Path):
    from omr_workflows.registry import Registry

    return Registry(str(example / "work" / "registry"))


def test_run_sh_from_a_clean_copy_and_again(example):
    first = run_sh(example)
    work = example / "work"
    res = registry(example).resolve(f"{MODEL}@production")
    assert res.version == "v1"
    storage = (work / "results/predictions/storage.tsv").read_text()
    assert storage == (work / "results/predictions/library.tsv").read_text()
    assert len(storage.splitlines()) == 13 and "setosa" in storage
    table = (work / "results/omr/provenance/omr_provenance.md").read_text()
    assert res.digest in table and "| v1 |" in table
    html = (work / "report.html").read_text()
    decoded = [base64.b64decode(m.group(1)).decode("utf-8", "replace")
               for m in re.finditer(r"base64,([A-Za-z0-9+/=]+)", html)]
    assert any("<table" in t and res.digest in t for t in decoded), "report.html lacks the pinned-models table"
    assert "registry:" in first.stdout
    again = run_sh(example)
    assert again.stdout.count("Nothing to be done") + again.stderr.count("Nothing to be done") == 2
    assert registry(example).resolve(f"{MODEL}@production").version == "v1"


def test_a_promotion_between_runs_reruns_exactly_the_dependent_jobs(example):
    run_sh(example)
    work = example / "work"
    before = (work / "results/predictions/storage.tsv").stat().st_mtime
    # The training workflow again with another hyperparameter: v2, promoted to production.
    smk(example, "publish", "--config", "version=v2", "shrinkage=0.6")
    new = registry(example).resolve(f"{MODEL}@production")
    assert new.version == "v2"

    assert jobs(example) == INFERENCE_JOBS
    summary = smk(example, "--detailed-summary").stdout
    assert re.search(r"results/omr/resolved/classifier\.json\t.*\tparams changed", summary), summary
    smk(example)
    assert (work / "results/predictions/storage.tsv").stat().st_mtime > before
    table = (work / "results/omr/provenance/omr_provenance.md").read_text()
    assert "| v2 |" in table and new.digest in table
    assert json.loads((work / "results/omr/resolved/classifier.json").read_text())["digest"] == new.digest
    assert jobs(example) == {}


def test_a_lock_file_stops_the_rerun(example):
    run_sh(example)
    work = example / "work"
    from tests.conftest import run_omrw

    run_omrw("lock", f"{MODEL}@production", "-o", str(work / "omr.lock.json"), registry=str(work / "registry"),
             check=True)
    smk(example, "--config", "lock=omr.lock.json")   # switching to the lock may rerun once
    predictions = (work / "results/predictions/storage.tsv").read_text()

    smk(example, "publish", "--config", "version=v2", "shrinkage=0.6")
    assert registry(example).resolve(f"{MODEL}@production").version == "v2"
    assert jobs(example, "--config", "lock=omr.lock.json") == {}
    assert jobs(example) == INFERENCE_JOBS          # unpinned, the same workflow would rerun
    smk(example, "--config", "lock=omr.lock.json", "--forcerun", "omr_resolve", "predict_storage")
    assert (work / "results/predictions/storage.tsv").read_text() == predictions
    assert json.loads((work / "results/omr/resolved/classifier.json").read_text())["version"] == "v1"


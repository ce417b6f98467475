"""The checks that need the real tools: `nextflow lint`, the nf-test specs, and runs of the example
pipeline. They run when `nextflow` / `nf-test` are on PATH and are skipped (saying so) otherwise;
CI machines without Nextflow rely on the parser, lint and script-block tests in this folder."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .conftest import EXAMPLE, MODULES, NF_FILES
from .harness import bin_dir

NEXTFLOW = shutil.which("nextflow")
NF_TEST = shutil.which("nf-test")

needs_nextflow = pytest.mark.skipif(NEXTFLOW is None, reason="nextflow is not on PATH")
needs_nf_test = pytest.mark.skipif(NF_TEST is None or NEXTFLOW is None, reason="nf-test (and nextflow) not on PATH")

pytestmark = [pytest.mark.nextflow, pytest.mark.slow]


def tool_env() -> dict:
    # omrw and python3 of this interpreter first, as a conda env from environment.yml would give
    return dict(os.environ, PATH=bin_dir() + os.pathsep + os.environ["PATH"], NXF_ANSI_LOG="false")


def run(cmd, cwd, timeout=1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout[-6000:]}\n" \
                                 f"{proc.stderr[-6000:]}"
    return proc


@needs_nextflow
def test_nextflow_lint():
    run([NEXTFLOW, "lint", *map(str, NF_FILES)], cwd=MODULES.parent)


@needs_nextflow
def test_example_stub_run(tmp_path):
    out = tmp_path / "results"
    run([NEXTFLOW, "run", str(EXAMPLE), "-profile", "test", "-stub", "-work-dir", str(tmp_path / "work"),
         "--outdir", str(out)], cwd=tmp_path)
    assert (out / "predictions" / "pbmc.predictions.tsv").exists()
    assert (out / "omr_provenance" / "omr_provenance.html").exists()


@needs_nextflow
def test_example_test_profile_run(tmp_path):
    registry = tmp_path / "omr-test-registry"
    subprocess.run(["bash", str(EXAMPLE / "assets" / "make_test_registry.sh"), str(registry)], check=True,
                   env=tool_env(), capture_output=True)
    out = tmp_path / "results"
    run([NEXTFLOW, "run", str(EXAMPLE), "-profile", "test", "--omr_registry", str(registry), "-work-dir",
         str(tmp_path / "work"), "--outdir", str(out)], cwd=tmp_path)
    import json

    report = json.loads((out / "omr_provenance" / "omr_provenance.json").read_text())
    assert [m["version"] for m in report["models"]] == ["2026-01-01_001"]
    assert (out / "predictions" / "pbmc.predictions.tsv").read_text().startswith("cell\tlabel\tscore")


@needs_nf_test
def test_nf_test_specs(tmp_path):
    run([NF_TEST, "test", "--verbose"], cwd=MODULES, timeout=3600)

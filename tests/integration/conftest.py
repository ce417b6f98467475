"""Fixtures for integration tests that need real services: a single-node SLURM cluster.

The cluster (tests/slurm_cluster.py) is started once per session, only when a test asks for it,
and is always stopped at the end of the session. Tests are skipped, with the reason, where
SLURM/munge are not installed (`.ci/install-slurm.sh` installs them as root) or not run as root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.slurm_cluster import SlurmCluster, missing_reason

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with SlurmCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def job_path(tmp_path_factory) -> str:
    """A PATH for batch jobs on which `omrw` is this checkout run by this interpreter.

    Jobs start from a clean shell on the node, so they must not depend on an activated venv: the
    shim calls sys.executable, and PYTHONPATH (see job_env) points at the checkout under test.
    """
    bin_dir = tmp_path_factory.mktemp("job-bin")
    shim = bin_dir / "omrw"
    shim.write_text(f"#!/bin/sh\nexec '{sys.executable}' -m omr_workflows.cli.main \"$@\"\n")
    shim.chmod(0o755)
    return os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ.get("PATH", "")])


@pytest.fixture
def job_env(job_path) -> dict[str, str]:
    """Variables to add to the environment of sbatch (jobs get them through --export=ALL)."""
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {"PATH": job_path, "PYTHONPATH": pythonpath}

"""`omrw components`: where the shipped Snakemake rule library, wrappers and Nextflow modules
are, in this checkout and in an installed wheel (which must also make the storage plugin
visible to Snakemake).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import run_omrw

from .conftest import REPO

MARKERS = {"snakemake": "omr.smk", "wrappers": "omr/resolve/wrapper.py", "nextflow": "omr"}


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_components_prints_the_checkout_paths(name):
    proc = run_omrw("components", name, check=True)
    path = Path(proc.stdout.strip())
    assert (path / MARKERS[name]).exists()
    assert path.resolve().is_relative_to(REPO.resolve())
    doc = run_omrw("components", name, "--json", check=True).json
    assert doc == {"component": name, "path": str(path)}


def test_components_without_argument_lists_all_three():
    doc = run_omrw("components", "--json", check=True).json
    assert sorted(doc) == sorted(MARKERS)
    assert Path(doc["wrappers"]) == Path(doc["snakemake"]) / "wrappers"


def test_unknown_component_is_a_usage_error():
    proc = run_omrw("components", "cwl")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.slow
@pytest.mark.snakemake
def test_an_installed_wheel_ships_the_components_and_the_plugin(tmp_path):
    """Build the wheel from a copy of the checkout, install it into a fresh venv (its
    dependencies borrowed from this environment), then: `omrw components` points into that
    venv, and Snakemake's plugin scan (pkgutil.iter_modules over sys.path) finds the `omr`
    storage plugin with no PYTHONPATH."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", "*.egg-info", "__pycache__", "work", ".snakemake",
                                                            ".hypothesis", ".pytest_cache", ".venv", "build", "dist"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src),
                    "-w", str(dist)], check=True, capture_output=True, timeout=300)
    venv = tmp_path / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # dependencies from this environment, after the venv's own site-packages (a plain path,
    # so the editable install of this checkout living there is not activated)
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("omr_workflows-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    py = str(venv / "bin/python")
    for name, marker in MARKERS.items():
        proc = subprocess.run([py, "-m", "omr_workflows.cli.main", "components", name], capture_output=True,
                              text=True, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        path = Path(proc.stdout.strip())
        assert path.is_relative_to(site) and (path / marker).exists(), path
    work = tmp_path / "wf"
    work.mkdir()
    proc = subprocess.run([py, "-c", "import pkgutil; print(sorted(m.name for m in pkgutil.iter_modules() "
                                     "if m.name.startswith('snakemake_storage_plugin_')))"],
                          capture_output=True, text=True, env=env, cwd=work)
    assert "snakemake_storage_plugin_omr" in proc.stdout, proc.stdout + proc.stderr

"""`make_nf_core_layout.sh` writes the layout nf-core tools installs from, following the rules of
nf-core tools (4.2.1, `nf_core/synced_repo.py`, `nf_core/components/components_utils.py`):
modules under `modules/<org_path>/`, a module's path is its process name lower-cased with `_` as
`/`, a subworkflow's includes of modules start with `../../../` and go through `modules/`.
(The install itself was checked once by hand with nf-core tools; it needs network and Nextflow.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import MODULES, REPO
from .nflint import lint_includes
from .nfparse import parse_includes, parse_processes, reftrace_parse


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("nf-core-branch")
    subprocess.run(["bash", str(MODULES / "make_nf_core_layout.sh"), str(out)], check=True, capture_output=True)
    return out


def test_nf_core_yml(layout):
    assert yaml.safe_load((layout / ".nf-core.yml").read_text()) == {"repository_type": "modules", "org_path": "omr"}
    root = yaml.safe_load((REPO / ".nf-core.yml").read_text())
    assert root == {"repository_type": "modules", "org_path": "omr"}


def test_modules_are_where_their_process_names_say(layout):
    org = layout / "modules" / "omr"
    mains = sorted(org.glob("**/main.nf"))
    assert len(mains) == len(list((MODULES / "omr").glob("*/main.nf")))
    for main in mains:
        [proc] = parse_processes(main.read_text(), main)
        assert proc.name.lower().replace("_", "/") == str(main.parent.relative_to(org))
        assert main.read_bytes() == (MODULES / "omr" / main.parent.name / "main.nf").read_bytes()
        for f in ("meta.yml", "environment.yml", "tests/main.nf.test"):
            assert (main.parent / f).exists()


def test_subworkflow_includes_follow_nf_core_rules(layout):
    org = layout / "modules" / "omr"
    subworkflows = sorted((layout / "subworkflows" / "omr").glob("*/main.nf"))
    assert [p.parent.name for p in subworkflows] == ["omr_provenance", "omr_verify_parallel"]
    for main in subworkflows:
        assert reftrace_parse(main).ok
        assert lint_includes(main) == []                 # every include resolves in the layout
        for inc in parse_includes(main.read_text(), main):
            assert inc.source.startswith("../../../") and "/modules/" in inc.source
            for name in inc.names.values():                # nf-core: module path from the process name
                assert (org / name.lower().replace("_", "/") / "main.nf").exists()


def test_nf_test_paths_resolve(layout):
    for spec in sorted(layout.glob("**/tests/main.nf.test")):
        text = spec.read_text()
        for rel in re.findall(r'script "([^"]+)"', text):
            assert (spec.parent / rel).resolve().exists(), f"{spec}: {rel}"
        module_dir = spec.parent.parent
        for rel in re.findall(r'\$\{moduleDir\}/([^"]+)"', text):
            assert (module_dir / rel).resolve().exists(), f"{spec}: {rel}"


def test_in_repo_nf_test_paths_resolve():
    for spec in sorted(MODULES.glob("**/tests/main.nf.test")):
        text = spec.read_text()
        for rel in re.findall(r'script "([^"]+)"', text):
            assert (spec.parent / rel).resolve().exists(), f"{spec}: {rel}"
        for rel in re.findall(r'\$\{moduleDir\}/([^"]+)"', text):
            assert (spec.parent.parent / rel).resolve().exists(), f"{spec}: {rel}"

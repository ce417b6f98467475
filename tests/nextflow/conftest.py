"""Fixtures for the Nextflow checks: the component files, a real registry with the toy model,
and a runner for one task's script block against it."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from .harness import DEFAULT_SHELL, run_process

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "nextflow_modules"
MODULE_DIRS = sorted(p.parent for p in (MODULES / "omr").glob("*/main.nf"))
SUBWORKFLOW_DIRS = sorted(p.parent for p in (MODULES / "subworkflows").glob("*/main.nf"))
EXAMPLE = REPO / "examples" / "nextflow"
NF_FILES = sorted([*MODULES.rglob("*.nf"), *EXAMPLE.rglob("*.nf")])
TOY_MODEL = MODULES / "tests" / "data" / "toy_model"
MODEL = "celltype/pbmc"


def module_main(name: str) -> Path:
    return MODULES / "omr" / name / "main.nf"


@pytest.fixture
def toy_registry(tmp_path) -> str:
    """A local registry: the toy model as celltype/pbmc v1 (latest, production) and v2 (latest)."""
    from omr_workflows.registry import Registry

    url = str(tmp_path / "registry")
    reg = Registry(url)
    reg.register("celltype", "pbmc", "v1", str(TOY_MODEL), reason="fixture")
    reg.promote(f"{MODEL}@v1", "production", reason="fixture")
    v2 = tmp_path / "v2"
    v2.mkdir()
    for f in TOY_MODEL.iterdir():
        (v2 / f.name).write_bytes(f.read_bytes())
    (v2 / "metrics.json").write_text('{"auc": 0.98}\n')
    reg.register("celltype", "pbmc", "v2", str(v2), reason="fixture")
    return url


@pytest.fixture
def run_task(tmp_path):
    """run_task(module, inputs, registry=..., **kw) -> TaskResult, each in a fresh work dir."""
    counter = itertools.count(1)

    def run(module: str | Path, inputs: dict, registry: str | None = None, *, env: dict | None = None,
            shell=DEFAULT_SHELL, **kw):
        main = module if isinstance(module, Path) else module_main(module)
        full_env = dict(env or {})
        if registry:
            full_env["OMR_REGISTRY"] = registry
        workdir = tmp_path / "work" / f"{next(counter):03d}-{main.parent.name}"
        return run_process(main, inputs, workdir, env=full_env, shell=shell, **kw)

    return run


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())

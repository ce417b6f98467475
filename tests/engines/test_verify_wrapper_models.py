"""The verify wrapper with `params.models` of two models verifies both: corrupting the second
model fails the run (it passes `--model` once per model, which `omrw verify` now appends)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import WRAPPERS, register_toy, run_snakemake

pytestmark = pytest.mark.snakemake

SNAKEFILE = """
rule verify_models:
    output: "verify/models.json"
    log: "logs/verify_models.log"
    params:
        models=["demo/toy", "demo/other"],
        mode=config.get("mode", "fast"),
    wrapper: "omr/verify"
"""


@pytest.fixture
def two_model_registry(tmp_path, toy_registry) -> str:
    from omr_workflows.registry import Registry

    reg = Registry(toy_registry.url)
    art = tmp_path / "art-other"
    art.mkdir()
    (art / "model.json").write_text('{"kind": "other"}\n')
    (art / "labels.txt").write_text("x\ny\n")
    reg.register("demo", "other", "o1", str(art), reason="test fixture")
    register_toy(toy_registry.url, tmp_path, "v3", "three", latest=False)
    return toy_registry.url


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    return work


def test_both_models_are_in_the_report(tmp_path, two_model_registry):
    work = _workdir(tmp_path)
    run_snakemake(work, "--cores", "1", "--wrapper-prefix", f"file:{WRAPPERS}/", registry=two_model_registry)
    report = json.loads((work / "verify/models.json").read_text())
    refs = sorted(v["ref"] for v in report["versions"])
    assert refs == ["demo/other@o1", "demo/toy@v1", "demo/toy@v2", "demo/toy@v3"]


@pytest.mark.parametrize("mode, corrupted", [("fast", "demo/other@o1"), ("strict", "demo/other@o1"),
                                              ("fast", "demo/toy@v2")])
def test_a_corrupted_model_fails_the_run_first_or_second(tmp_path, two_model_registry, mode, corrupted):
    from omr_workflows.registry import Registry

    path = Path(Registry(two_model_registry).resolve(corrupted).path) / "model.json"
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    work = _workdir(tmp_path)
    proc = run_snakemake(work, "--cores", "1", "--wrapper-prefix", f"file:{WRAPPERS}/", "--config", f"mode={mode}",
                         registry=two_model_registry, check=False)
    assert proc.returncode != 0
    log = (work / "logs/verify_models.log").read_text()
    assert corrupted in log and "model.json" in log, log
    assert "--model demo/toy --model demo/other" in log.splitlines()[0]

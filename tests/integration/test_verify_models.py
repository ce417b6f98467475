"""`omrw verify --model A --model B` verifies every model named, not only the last one
(issue 9, class 8: argparse `store` kept only B, a silent pass for A)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omr_workflows.registry import Registry
from tests.conftest import make_artifacts, run_omrw


def corrupt(registry: str, ref: str, rel: str) -> None:
    path = Path(Registry(registry).resolve(ref).path) / rel
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def two_models(local_registry, tmp_path) -> str:
    reg = Registry(local_registry)
    for model, seed in (("a", "x"), ("b", "y")):
        for version in ("v1", "v2"):
            reg.register("cls", model, version, make_artifacts(tmp_path / f"pkg-{model}-{version}", seed=seed + version))
    return local_registry


def test_two_models_are_both_verified(two_models):
    proc = run_omrw("verify", "--model", "cls/a", "--model", "cls/b", "--json", registry=two_models)
    assert proc.returncode == 0, proc.stderr
    assert sorted(v["ref"] for v in proc.json["versions"]) == ["cls/a@v1", "cls/a@v2", "cls/b@v1", "cls/b@v2"]
    assert proc.json["selection"] == ["--model cls/a", "--model cls/b"]


@pytest.mark.parametrize("order", [("cls/a", "cls/b"), ("cls/b", "cls/a")])
@pytest.mark.parametrize("mode", ["fast", "strict"])
def test_a_corrupted_model_fails_the_run_wherever_it_is_named(two_models, order, mode):
    corrupt(two_models, "cls/b@v1", "model.pt")
    proc = run_omrw("verify", "--model", order[0], "--model", order[1], "--mode", mode, registry=two_models)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cls/b@v1" in proc.stderr and "model.pt" in proc.stderr
    assert "cls/a@" not in proc.stderr


def test_a_named_model_without_versions_is_an_error_not_skipped(two_models):
    proc = run_omrw("verify", "--model", "cls/a", "--model", "cls/nosuch", registry=two_models)
    assert proc.returncode == 3 and "cls/nosuch" in proc.stderr


def test_a_repeated_model_is_verified_once(two_models):
    proc = run_omrw("verify", "--model", "cls/a", "--model", "cls/a", "--json", registry=two_models)
    assert proc.returncode == 0, proc.stderr
    assert sorted(v["ref"] for v in proc.json["versions"]) == ["cls/a@v1", "cls/a@v2"]

"""Tamper evidence (issue 2, acceptance 8): one flipped byte in any file of a version, or a
truncation, makes `omrw resolve --verify strict` and `omrw verify` exit 1 naming the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from omr_workflows.registry import Registry, version_key
from tests.conftest import make_artifacts, run_omrw

FILES = ["model.pt", "model_genes.txt", "label_map.json", "metrics.json", "feature_schema.json",
         "extra/notes.txt", "model_meta.json", "sha256sums.txt", "omr_manifest.json"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("pristine")
    Registry(str(base / "registry")).register("cls", "m", "v1", make_artifacts(base / "pkg"))
    return base / "registry"


@pytest.fixture
def registry(pristine, tmp_path) -> Path:
    copy = tmp_path / "registry"
    shutil.copytree(pristine, copy)
    return copy


def _flip(path: Path, pos: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if pos is None else pos
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def _assert_caught(registry: Path, name: str) -> None:
    for args in (["resolve", "cls/m@v1", "--verify", "strict"], ["verify", "cls/m@v1", "--mode", "strict"],
                 ["verify", "cls/m@v1", "--mode", "fast"]):
        p = run_omrw(*args, registry=str(registry))
        assert p.returncode == 1, (args, name, p.returncode, p.stdout, p.stderr)
        assert name in p.stderr, (args, name, p.stderr)


def test_pristine_verifies(registry):
    for args in (["resolve", "cls/m@v1", "--verify", "strict"], ["verify", "cls/m@v1", "--mode", "strict"]):
        assert run_omrw(*args, registry=str(registry)).returncode == 0


@pytest.mark.parametrize("name", FILES)
def test_flipped_byte(registry, name):
    _flip(registry / version_key("cls", "m", "v1") / name)
    _assert_caught(registry, name)


@pytest.mark.parametrize("name", FILES)
def test_truncated(registry, name):
    path = registry / version_key("cls", "m", "v1") / name
    path.write_bytes(path.read_bytes()[:-3])
    _assert_caught(registry, name)

"""Compatibility with omnibioai-model-registry 0.1.x in both directions (DESIGN 3), against the
real package from PyPI, and our drop-in OmniBioAI entry points.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

omni = pytest.importorskip("omnibioai_model_registry", reason="omnibioai-model-registry not installed")

import omr_workflows  # noqa: E402
from omr_workflows.registry import Registry, version_key  # noqa: E402
from tests.conftest import make_artifacts, run_omrw  # noqa: E402


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "shared-registry"
    monkeypatch.setenv("OMNIBIOAI_MODEL_REGISTRY_ROOT", str(root))
    return root


def _omni_package(root: Path, seed: str = "a") -> Path:
    art = make_artifacts(root, seed=seed)
    (art / "sha256sums.txt").write_text("")  # 0.1.1 checks it exists before writing its own
    return art


def test_omnibioai_registry_resolves_and_verifies_with_omrw(root, tmp_path):
    art = _omni_package(tmp_path / "pkg")
    omni.register_model("celltype", "pbmc", "2026-01-01_001", art, {"framework": "torch"})
    omni.promote_model("celltype", "pbmc", "production", "2026-01-01_001", actor="alice", reason="ok")
    # omrw finds the registry through OMNIBIOAI_MODEL_REGISTRY_ROOT alone. Their versions are legacy and
    # unanchored: resolvable, but strict verification checks them only against themselves, so it needs an
    # explicit --trust-legacy.
    untrusted = run_omrw("resolve", "celltype/pbmc@production", "--verify", "strict")
    assert untrusted.returncode == 1 and "--trust-legacy" in untrusted.stderr
    p = run_omrw("resolve", "celltype/pbmc@production", "--verify", "strict", "--trust-legacy", "--json", check=True)
    assert p.json["version"] == "2026-01-01_001" and p.json["legacy"] is True and p.json["selector_kind"] == "alias"
    assert p.json["anchored"] is False
    assert Path(p.json["path"]) == root / version_key("celltype", "pbmc", "2026-01-01_001")
    assert run_omrw("resolve", "celltype/pbmc@2026-01-01_001", "--verify", "fast", check=True).returncode == 0
    hist = run_omrw("history", "celltype/pbmc", "--json", check=True).json
    assert any(e.get("alias") == "production" and e.get("actor") == "alice" for e in hist)
    # A flipped byte in a file their manifest covers is caught, naming the file.
    f = Path(p.json["path"]) / "model.pt"
    f.write_bytes(b"X" + f.read_bytes()[1:])
    bad = run_omrw("resolve", "celltype/pbmc@production", "--verify", "strict", "--trust-legacy")
    assert bad.returncode == 1 and "model.pt" in bad.stderr
    # We can promote on their registry once omrw has verified and recorded the version (adopt);
    # their reader follows our alias file.
    omni.register_model("celltype", "pbmc", "2026-01-02_001", _omni_package(tmp_path / "pkg2", seed="z"), {})
    refused = run_omrw("promote", "celltype/pbmc@2026-01-02_001", "--to", "production")
    assert refused.returncode == 1 and "adopt" in refused.stderr
    run_omrw("adopt", "celltype/pbmc@2026-01-02_001", "--reason", "trained with omnibioai", check=True)
    run_omrw("promote", "celltype/pbmc@2026-01-02_001", "--to", "production", check=True)
    strict = run_omrw("resolve", "celltype/pbmc@production", "--verify", "strict", "--json", check=True).json
    assert strict["version"] == "2026-01-02_001" and strict["legacy"] is True and strict["anchored"] is True
    assert omni.resolve_model("celltype", "pbmc@production").endswith("2026-01-02_001")


def test_omrw_versions_resolve_with_omnibioai(root, tmp_path):
    art = make_artifacts(tmp_path / "pkg")
    run_omrw("register", "celltype/pbmc", "--version", "v1", "--artifacts", str(art), "--alias", "production",
             check=True)
    path = omni.resolve_model("celltype", "pbmc@production", verify=True)
    assert Path(path) == root / version_key("celltype", "pbmc", "v1")
    assert omni.resolve_model("celltype", "pbmc@v1", verify=True) == path
    meta = json.loads((Path(path) / "model_meta.json").read_text())
    assert {"task", "model_name", "version", "created_at"} <= set(meta)
    # Their verification really checks our sha256sums.txt: a flipped byte fails there too.
    (Path(path) / "label_map.json").write_bytes(b"{}")
    with pytest.raises(omni.errors.IntegrityError if hasattr(omni, "errors") else Exception):
        omni.resolve_model("celltype", "pbmc@production", verify=True)


def test_their_log_and_ours_agree(root, tmp_path):
    art = make_artifacts(tmp_path / "pkg")
    run_omrw("register", "celltype/pbmc", "--version", "v1", "--artifacts", str(art), check=True)
    run_omrw("promote", "celltype/pbmc@v1", "--to", "staging", "--reason", "qa", check=True)
    log = root / "tasks/celltype/models/pbmc/audit/promotions.jsonl"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["alias"], line["version"]) for line in lines] == [("latest", "v1"), ("staging", "v1")]
    assert {"task", "model_name", "alias", "version", "actor", "reason", "ts_utc"} <= set(lines[-1])


def test_drop_in_entry_points(root, tmp_path):
    art = make_artifacts(tmp_path / "pkg")
    out = omr_workflows.register_model("celltype", "pbmc", "v1", art, {"note": "x"})
    assert out["ok"] and out["version"] == "v1" and out["package_path"].endswith("v1") and "model.pt" in out["hashes"]
    omr_workflows.promote_model("celltype", "pbmc", "production", "v1", actor="bob", reason="go")
    path = omr_workflows.resolve_model("celltype", "pbmc@production", verify=True)
    assert Path(path) == root / version_key("celltype", "pbmc", "v1")
    assert omni.resolve_model("celltype", "pbmc@production", verify=True) == path
    events = Registry(str(root)).history("celltype", "pbmc")
    assert events[-1]["actor"] == "bob" and events[-1]["alias"] == "production"
    with pytest.raises(omr_workflows.ConflictError):
        omr_workflows.register_model("celltype", "pbmc", "v1", art, {})

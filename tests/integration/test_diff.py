"""`omrw diff REF_A REF_B`: files (with sizes), metadata, params, provenance and metrics, human
and --json; plus the pure `diff_versions` on hand-made sides."""

from __future__ import annotations

import json

import pytest

from omr_workflows.diff import FileInfo, Side, diff_versions, flatten, render
from tests.conftest import make_artifacts, run_omrw

HEX = "cd" * 32


@pytest.fixture
def two_versions(any_registry, tmp_path) -> str:
    reg = any_registry
    a = make_artifacts(tmp_path / "a", seed="a")
    b = make_artifacts(tmp_path / "b", seed="a")
    (b / "metrics.json").write_text(json.dumps({"auc": 0.99, "f1": {"macro": 0.8}, "n": 10}))
    (a / "metrics.json").write_text(json.dumps({"auc": 0.97, "f1": {"macro": 0.8}, "loss": 0.2}))
    (b / "model.pt").write_bytes(b"bigger model " * 400)
    (b / "extra" / "notes.txt").unlink()
    (b / "calibration.json").write_text("{}")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"framework": "torch", "description": "first"}))
    run_omrw("register", "cls/m", "--version", "v1", "--artifacts", str(a), "--param", "lr=0.01", "--param",
             "epochs=10", "--metadata", str(meta), "--dataset", f"s3://b/train.h5ad@sha256:{HEX}",
             "--code-dir", str(tmp_path), registry=reg, check=True)
    meta.write_text(json.dumps({"framework": "torch", "description": "second", "license": "MIT"}))
    run_omrw("register", "cls/m", "--version", "v2", "--artifacts", str(b), "--param", "lr=0.001", "--param",
             "epochs=10", "--param", "dropout=0.1", "--metadata", str(meta), "--dataset", "s3://b/train2.h5ad",
             "--code-dir", str(tmp_path), registry=reg, check=True)
    return reg


def test_diff_json(two_versions):
    d = run_omrw("diff", "cls/m@v1", "cls/m@latest", "--json", registry=two_versions, check=True).json
    assert (d["a"], d["b"]) == ("omr://cls/m@v1", "omr://cls/m@v2") and d["same_content"] is False
    files = {f["path"]: f for f in d["files"]}
    assert files["calibration.json"] == {"path": "calibration.json", "change": "added", "size_a": None, "size_b": 2}
    assert files["extra/notes.txt"]["change"] == "removed" and files["extra/notes.txt"]["size_a"] == len("seed a\n")
    assert files["model.pt"] == {"path": "model.pt", "change": "changed", "size_a": 3000, "size_b": 13 * 400}
    assert files["metrics.json"]["change"] == "changed"
    assert set(files) == {"calibration.json", "extra/notes.txt", "model.pt", "metrics.json"}
    assert d["unchanged_files"] == 3  # genes, label map, feature schema (sidecars are compared as fields)
    assert "model_meta.json" not in files and "sha256sums.txt" not in files

    params = {c["key"]: c for c in d["params"]}
    assert params["lr"] == {"key": "lr", "change": "changed", "a": 0.01, "b": 0.001, "delta": None}
    assert params["dropout"]["change"] == "added" and "epochs" not in params
    meta = {c["key"]: c for c in d["metadata"]}
    assert meta["description"]["a"] == "first" and meta["license"]["change"] == "added"
    assert meta["version"]["b"] == "v2" and "framework" not in meta
    prov = {c["key"]: c for c in d["provenance"]}
    assert prov["datasets"]["change"] == "changed"
    assert "environment.digest" not in prov  # same machine, same environment
    metrics = {c["key"]: c for c in d["metrics"]}
    assert metrics["auc"]["delta"] == pytest.approx(0.02)
    assert metrics["loss"]["change"] == "removed" and metrics["n"]["change"] == "added"
    assert "f1.macro" not in metrics


def test_diff_human(two_versions):
    out = run_omrw("diff", "cls/m@v1", "cls/m@v2", registry=two_versions, check=True).stdout
    assert "files: 1 added, 1 removed, 2 changed, 3 unchanged" in out
    assert "+ calibration.json (2 B)" in out and "- extra/notes.txt (7 B)" in out
    assert "~ model.pt (3000 B -> 5200 B)" in out
    assert "~ lr: 0.01 -> 0.001" in out and "+ dropout: 0.1" in out
    assert "~ auc: 0.97 -> 0.99 (+0.02)" in out


def test_diff_same_content_and_missing_metrics(local_registry, tmp_path):
    pkg = make_artifacts(tmp_path / "p")
    for v in ("v1", "v2"):
        run_omrw("register", "cls/m", "--version", v, "--artifacts", str(pkg), "--no-provenance",
                 registry=local_registry, check=True)
    d = run_omrw("diff", "cls/m@v1", "cls/m@v2", "--json", registry=local_registry, check=True).json
    assert d["same_content"] is True and d["files"] == [] and d["params"] == [] and d["provenance"] == []
    assert d["metrics"] == []  # both have metrics.json, nothing changed
    (pkg / "metrics.json").unlink()
    run_omrw("register", "cls/m", "--version", "v3", "--artifacts", str(pkg), "--no-provenance",
             registry=local_registry, check=True)
    d = run_omrw("diff", "cls/m@v1", "cls/m@v3", "--json", registry=local_registry, check=True).json
    assert d["metrics"] is None and d["files"][0]["change"] == "removed"
    out = run_omrw("diff", "cls/m@v1", "cls/m@v3", registry=local_registry, check=True).stdout
    assert "metrics: not compared" in out


def test_diff_errors(local_registry, tmp_path):
    run_omrw("register", "cls/m", "--version", "v1", "--artifacts", str(make_artifacts(tmp_path / "p")),
             "--no-provenance", registry=local_registry, check=True)
    p = run_omrw("diff", "cls/m@v1", "cls/m@v9", registry=local_registry)
    assert p.returncode == 3 and "cls/m@v9" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = run_omrw("diff", "cls/m@v1", "bad ref", registry=local_registry)
    assert p.returncode == 2 and "bad ref" in p.stderr


def test_diff_against_an_omnibioai_version(tmp_path, monkeypatch):
    omni = pytest.importorskip("omnibioai_model_registry")
    root = tmp_path / "reg"
    monkeypatch.setenv("OMNIBIOAI_MODEL_REGISTRY_ROOT", str(root))
    art = make_artifacts(tmp_path / "pkg")
    (art / "sha256sums.txt").write_text("")
    omni.register_model("cls", "m", "old", art, {"framework": "torch"})
    run_omrw("register", "cls/m", "--version", "new", "--artifacts", str(make_artifacts(tmp_path / "pkg2", seed="z")),
             "--no-provenance", check=True)
    d = run_omrw("diff", "cls/m@old", "cls/m@new", "--json", check=True).json
    files = {f["path"]: f for f in d["files"]}
    assert files["model.pt"]["change"] == "changed" and files["model.pt"]["size_a"] is None
    assert "sha256sums.txt" not in files and "model_meta.json" not in files


# ---------------------------------------------------------------------- pure function
def _side(version, files, meta=None, metrics=None):
    return Side(ref=f"t/m@{version}", uri=f"omr://t/m@{version}", version=version, digest="sha256:" + version[-1] * 64,
                files={p: FileInfo(size=s, sha256=h) for p, (s, h) in files.items()}, meta=meta or {}, metrics=metrics)


def test_diff_versions_pure():
    a = _side("v1", {"w.bin": (10, "a"), "same.txt": (1, "s")}, {"params": {"opt": {"lr": 1}}, "x": [1, 2]},
              metrics={"acc": 0.5, "flag": True})
    b = _side("v2", {"w.bin": (10, "b"), "same.txt": (1, "s")}, {"params": {"opt": {"lr": 2}}, "x": [1, 2, 3]},
              metrics={"acc": 1, "flag": False})
    d = diff_versions(a, b)
    assert [(f.path, f.change, f.size_a, f.size_b) for f in d.files] == [("w.bin", "changed", 10, 10)]
    assert d.unchanged_files == 1
    assert [(c.key, c.a, c.b) for c in d.params] == [("opt.lr", 1, 2)]
    assert [(c.key, c.change) for c in d.metadata] == [("x", "changed")]
    deltas = {c.key: c.delta for c in d.metrics}
    assert deltas == {"acc": 0.5, "flag": None}  # booleans are not numbers
    assert diff_versions(a, a).files == [] and diff_versions(a, a).metrics == []
    assert "1 changed" in render(d)
    assert flatten({"a": {"b": {}, "c": 1}}) == {"a.b": {}, "a.c": 1}
    # 1 and 1.0 and True are different values in a record.
    e = diff_versions(_side("v1", {}, {"k": 1}), _side("v2", {}, {"k": True}))
    assert [c.key for c in e.metadata] == ["k"]

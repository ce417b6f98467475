"""Bad input (DESIGN 2.3, 6): one clear line, the right exit code, and nothing written outside the root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from omr_workflows.registry import Registry, model_key, version_key
from tests.conftest import make_artifacts, run_omrw


def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def sandbox(tmp_path):
    """A registry inside a sandbox folder; everything outside the registry must stay untouched."""
    box = tmp_path / "box"
    reg = box / "registry"
    art = make_artifacts(box / "pkg")
    Registry(str(reg)).register("cls", "m", "v1", art)
    return box, reg, art


def _fails(code: int, *args: str, registry: Path, must_name: str, box: Path, cwd: Path | None = None):
    before = _snapshot(box)
    p = run_omrw(*args, registry=str(registry), cwd=str(cwd or box))
    assert p.returncode == code, (args, p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("omrw: error:"), p.stderr
    assert "Traceback" not in p.stderr
    assert must_name in lines[0], (must_name, lines[0])
    assert _snapshot(box) == before, "a failed command wrote files"
    return p


@pytest.mark.parametrize("task,model,version,name", [
    ("..", "m", "v9", ".."), ("cls", "..", "v9", ".."), ("cls", "m", "..", ".."), ("cls", "m", "../x", "../x"),
    ("cls", "m", "a/b", "a/b"), ("cls", "m", "/etc/passwd", "/etc/passwd"), ("cls", "m", "", "''"),
    ("cls", "m", "v" * 200, "200 characters"), ("/abs", "m", "v9", "/abs"),
])
def test_bad_names(sandbox, task, model, version, name):
    box, reg, art = sandbox
    _fails(2, "register", f"{task}/{model}", "--version", version, "--artifacts", str(art),
           registry=reg, must_name=name, box=box)


@pytest.mark.parametrize("ref", ["cls/m@../x", "../../etc/passwd", "cls/m#../x", "cls/m#/etc/passwd", "cls/m@a/b"])
def test_bad_refs(sandbox, ref):
    box, reg, _ = sandbox
    _fails(2, "resolve", ref, registry=reg, must_name="invalid reference", box=box)
    _fails(2, "promote", ref, "--to", "production", registry=reg, must_name="invalid reference", box=box)


def test_symlink_pointing_outside(sandbox, tmp_path):
    box, reg, _ = sandbox
    art = make_artifacts(box / "evil")
    (box / "secret.txt").write_text("secret")
    os.symlink(box / "secret.txt", art / "leak.txt")
    _fails(2, "register", "cls/m", "--version", "v2", "--artifacts", str(art), registry=reg,
           must_name="leak.txt", box=box)
    os.unlink(art / "leak.txt")
    os.symlink("/etc", art / "etc")
    _fails(2, "register", "cls/m", "--version", "v2", "--artifacts", str(art), registry=reg,
           must_name="etc", box=box)


def test_symlink_inside_is_followed(sandbox):
    box, reg, _ = sandbox
    art = make_artifacts(box / "linked")
    os.symlink("model.pt", art / "alias.pt")
    run_omrw("register", "cls/m", "--version", "v3", "--artifacts", str(art), registry=str(reg), check=True)
    res = Registry(str(reg)).resolve("cls/m@v3#alias.pt", verify="strict")
    assert Path(res.file_path).read_bytes() == (art / "model.pt").read_bytes()
    assert not Path(res.file_path).is_symlink()


@pytest.mark.parametrize("line", ["../x", "/etc/passwd"])
def test_shipped_sha256sums_with_unsafe_path(sandbox, line):
    box, reg, _ = sandbox
    art = make_artifacts(box / f"sums{abs(hash(line))}")
    (art / "sha256sums.txt").write_text(f"{'0' * 64}  {line}\n")
    _fails(2, "register", "cls/m", "--version", "v4", "--artifacts", str(art), registry=reg,
           must_name=line, box=box)


@pytest.mark.parametrize("path", ["../x", "/etc/passwd"])
def test_published_manifest_or_sums_naming_outside(sandbox, path):
    box, reg, _ = sandbox
    vdir = Path(reg) / version_key("cls", "m", "v1")
    manifest = json.loads((vdir / "omr_manifest.json").read_text())
    manifest["content"]["files"][0]["path"] = path
    (vdir / "omr_manifest.json").write_text(json.dumps(manifest))
    for args in (["resolve", "cls/m@v1", "--verify", "strict"], ["show", "cls/m@v1"]):
        _fails(2, *args, registry=reg, must_name=path, box=box)
    # A legacy (omnibioai) version whose sha256sums.txt names a path outside.
    legacy = Path(reg) / version_key("cls", "m", "old")
    legacy.mkdir(parents=True)
    (legacy / "model.pt").write_bytes(b"x")
    (legacy / "sha256sums.txt").write_text(f"{'0' * 64}  {path}\n")
    _fails(2, "resolve", "cls/m@old", "--verify", "strict", registry=reg, must_name=path, box=box)


def test_invalid_json_metadata(sandbox):
    box, reg, art = sandbox
    (box / "meta.json").write_text("{not json")
    _fails(2, "register", "cls/m", "--version", "v5", "--artifacts", str(art), "--metadata", str(box / "meta.json"),
           registry=reg, must_name="meta.json", box=box)
    (box / "list.json").write_text("[1, 2]")
    _fails(2, "register", "cls/m", "--version", "v5", "--artifacts", str(art), "--metadata", str(box / "list.json"),
           registry=reg, must_name="JSON object", box=box)
    (art / "model_meta.json").write_text("{broken")
    _fails(2, "register", "cls/m", "--version", "v5", "--artifacts", str(art), registry=reg,
           must_name="model_meta.json", box=box)


def test_missing_artifacts_folder(sandbox):
    box, reg, _ = sandbox
    _fails(2, "register", "cls/m", "--version", "v6", "--artifacts", str(box / "nope"), registry=reg,
           must_name="nope", box=box)


def test_bad_param(sandbox):
    box, reg, art = sandbox
    _fails(2, "register", "cls/m", "--version", "v7", "--artifacts", str(art), "--param", "novalue",
           registry=reg, must_name="novalue", box=box)


def test_existing_version_is_conflict(sandbox):
    box, reg, art = sandbox
    _fails(4, "register", "cls/m", "--version", "v1", "--artifacts", str(art), registry=reg,
           must_name="cls/m@v1", box=box)


def test_resolving_missing_creates_nothing(tmp_path):
    box = tmp_path / "empty"
    box.mkdir()
    reg = box / "registry"
    for ref in ("cls/missing", "cls/missing@production", "cls/missing@v1", "cls/missing#x"):
        _fails(3, "resolve", ref, registry=reg, must_name="cls/missing", box=box)
    assert not reg.exists()
    _fails(3, "promote", "cls/missing@v1", "--to", "production", registry=reg, must_name="cls/missing", box=box)
    _fails(3, "history", "cls/missing", registry=reg, must_name="cls/missing", box=box)
    assert not reg.exists()


def test_missing_file_and_digest(sandbox):
    box, reg, _ = sandbox
    _fails(3, "resolve", "cls/m@v1#nope.txt", registry=reg, must_name="nope.txt", box=box)
    _fails(3, "resolve", "cls/m@sha256:" + "0" * 64, registry=reg, must_name="sha256:" + "0" * 64, box=box)


def test_unreachable_storage_is_exit_5(tmp_path):
    p = run_omrw("resolve", "cls/m", registry="nosuchscheme://bucket/x")
    assert p.returncode == 5 and p.stderr.count("\n") == 1 and "nosuchscheme" in p.stderr


def test_usage_error_is_exit_2():
    p = run_omrw("promote", "cls/m@v1")
    assert p.returncode == 2 and "--to" in p.stderr

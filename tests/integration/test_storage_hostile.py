"""Hostile registry contents, end to end through the real CLI (docs/DESIGN.md 2.3 and 11).

A member of the group that can write a shared registry plants symlinks and FIFOs. omrw must
never write or delete through a link, never accept a link as a published file, and never
hang on a FIFO: every command finishes quickly with a non-zero exit and a one-line error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from omr_workflows import layout
from tests.conftest import make_artifacts, run_omrw

TASK, MODEL = "cls", "m"
REF = f"{TASK}/{MODEL}@v1"
MKEY = layout.model_key(TASK, MODEL)
VKEY = layout.version_key(TASK, MODEL, "v1")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def _one_line_error(proc, findings_allowed: bool = False) -> None:
    """One `omrw: error: ...` line on stderr; `verify` may precede it with one line per finding."""
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    if findings_allowed:
        assert lines and lines[-1].startswith("omrw: error: "), proc.stderr
        assert all(line.startswith("omrw: ") for line in lines), proc.stderr
    else:
        assert len(lines) == 1, f"expected a one-line error, got:\n{proc.stderr}"


@pytest.fixture
def registry(tmp_path) -> Path:
    reg = tmp_path / "registry"
    pkg = make_artifacts(tmp_path / "pkg")
    run_omrw("register", f"{TASK}/{MODEL}", "--version", "v1", "--artifacts", str(pkg), "--no-provenance",
             registry=str(reg), check=True)
    return reg


@pytest.fixture
def outside(tmp_path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    return out


def test_symlinked_promotions_log_is_never_appended(registry, outside):
    log = registry / layout.promotions_log_key(MKEY)
    victim = outside / "promotions.jsonl"
    victim.write_bytes(b"someone else's file\n")
    if log.exists() or log.is_symlink():
        log.unlink()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.symlink_to(victim)
    p = run_omrw("promote", REF, "--to", "production", "--reason", "r", registry=str(registry), timeout=60)
    assert victim.read_bytes() == b"someone else's file\n"
    assert log.is_symlink() and os.readlink(log) == str(victim)
    # The compat log is a derived view: the promote may commit its event and leave the
    # planted link for `omrw audit` to report, or refuse; it never writes through it.
    assert p.returncode in (0, 1), (p.returncode, p.stderr)
    if p.returncode:
        _one_line_error(p)
        assert "promotions.jsonl" in p.stderr


def test_symlinked_promotions_log_is_reported_by_audit(registry, outside):
    log = registry / layout.promotions_log_key(MKEY)
    (outside / "promotions.jsonl").write_bytes(b"")
    if log.exists() or log.is_symlink():
        log.unlink()
    log.parent.mkdir(parents=True, exist_ok=True)
    log.symlink_to(outside / "promotions.jsonl")
    p = run_omrw("audit", f"{TASK}/{MODEL}", registry=str(registry), timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "promotions.jsonl" in p.stdout + p.stderr


def test_symlinked_staging_folder_makes_gc_delete_nothing_outside(registry, outside):
    old = "omr1-0000000001-aaaaaaaaaaaa"
    (outside / f"v9.{old}" / "sub").mkdir(parents=True)
    (outside / f"v9.{old}" / "sub" / "data.bin").write_bytes(b"precious")
    (outside / f"v9.{old}.lease").write_bytes(
        b'{"token": "%s", "version": "v9", "host": "h", "pid": 1, "heartbeat": 1, "ttl": 1}' % old.encode())
    (outside / f".x.{old}.tmp").write_bytes(b"tmp")
    (outside / "unrelated").mkdir()
    (outside / "unrelated" / "keep.txt").write_bytes(b"keep")
    staging = registry / layout.staging_root(MKEY)
    if staging.exists():
        shutil.rmtree(staging)
    staging.symlink_to(outside)
    before = _snapshot(outside)
    p = run_omrw("gc", "--older-than", "0", "--json", registry=str(registry), timeout=60)
    assert _snapshot(outside) == before, "gc deleted files outside the registry"
    assert sorted(os.listdir(outside)) == sorted([f"v9.{old}", f"v9.{old}.lease", f".x.{old}.tmp", "unrelated"])
    assert p.returncode in (0, 1), (p.returncode, p.stderr)
    assert (registry / VKEY / "model.pt").is_file(), "gc touched a published version"


def test_published_file_replaced_by_symlink_fails_strict_verify(registry, outside):
    published = registry / VKEY / "model.pt"
    copy = outside / "model.pt"
    shutil.copyfile(published, copy)
    published.unlink()
    published.symlink_to(copy)
    p = run_omrw("verify", "--mode", "strict", REF, registry=str(registry), timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "model.pt" in p.stdout + p.stderr
    p = run_omrw("verify", "--mode", "strict", REF, "--json", registry=str(registry), timeout=60)
    assert p.returncode == 1
    assert "not a regular file" in p.stdout


FIFO_TARGETS = {
    "manifest": layout.manifest_key(VKEY),
    "alias": layout.alias_key(MKEY, "latest"),
    "event": layout.event_key(MKEY, 1),
    "meta": layout.meta_key(VKEY),
}
COMMANDS = {
    "resolve": lambda ref: ["resolve", ref],
    "verify": lambda ref: ["verify", "--mode", "strict", ref],
    "audit": lambda ref: ["audit", f"{TASK}/{MODEL}"],
    "show": lambda ref: ["show", ref],
}
# (target, command) pairs that do not read the planted file, and rightly succeed: an alias
# resolves from the log (its pointer is only a cache) and `resolve --verify none` reads no
# version file. `omrw audit` names the FIFO in both cases (the alias-audit and meta-audit cases).
NOT_READ = {("alias", "resolve"), ("alias", "verify"), ("alias", "show"), ("meta", "resolve")}


def _fifo_cases():
    for target in FIFO_TARGETS:
        for command in COMMANDS:
            yield pytest.param(target, command, id=f"{target}-{command}")


@pytest.mark.parametrize("target,command", list(_fifo_cases()))
def test_fifo_never_hangs_a_command(registry, target, command):
    path = registry / FIFO_TARGETS[target]
    assert path.is_file(), f"{FIFO_TARGETS[target]} should exist after register"
    path.unlink()
    os.mkfifo(path)
    ref = f"{TASK}/{MODEL}@latest" if target == "alias" else REF
    # A hang fails the test through subprocess.TimeoutExpired instead of blocking the suite.
    p = run_omrw(*COMMANDS[command](ref), registry=str(registry), timeout=20)
    if (target, command) in NOT_READ:
        assert p.returncode == 0, p.stderr
        return
    assert p.returncode != 0, f"omrw {command} accepted a FIFO at {FIFO_TARGETS[target]}:\n{p.stdout}"
    _one_line_error(p, findings_allowed=command == "verify")
    if command == "audit":
        assert FIFO_TARGETS[target].rsplit("/", 1)[-1] in p.stderr, p.stderr

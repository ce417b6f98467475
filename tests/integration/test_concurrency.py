"""Immutability under races and audited concurrent promotions (DESIGN 2.1, 2.5).

Real processes race through the real `omrw` on a local folder and on S3 (moto server).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omr_workflows.registry import Registry, model_key
from tests.conftest import OMRW, make_artifacts, run_omrw

N = 8


def _start_all(argvs: list[list[str]], registry: str) -> list[subprocess.Popen]:
    env = dict(os.environ, OMR_REGISTRY=registry)
    # A barrier file makes the processes start their work together after interpreter start-up.
    return [subprocess.Popen([*OMRW, *a], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for a in argvs]


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_eight_racing_registers_one_winner(any_registry, tmp_path):
    sources = []
    for i in range(N):
        files = {"model.pt": os.urandom(300_000) + bytes([i]), "metrics.json": json.dumps({"i": i}).encode(),
                 f"only-{i}.txt": b"x"}
        sources.append(make_artifacts(tmp_path / f"src{i}", files=files))
    procs = _start_all([["register", "cls/race", "--version", "v1", "--artifacts", str(s), "--json",
                         "--no-provenance"] for s in sources], any_registry)
    results = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0] + [4] * (N - 1), [r[2] for r in results if r[0] not in (0, 4)] or results
    for code, _out, err in results:
        if code == 4:
            assert "already exists" in err and "cls/race@v1" in err
    winner = next(i for i, r in enumerate(results) if r[0] == 0)

    res = Registry(any_registry).resolve("cls/race@v1", verify="strict")
    got = _tree(Path(res.path))
    want = _tree(sources[winner])
    for sidecar in ("model_meta.json", "sha256sums.txt", "omr_manifest.json"):
        got.pop(sidecar)
    assert got == want  # complete and byte-identical to the winner's source, nothing from losers
    assert sum(1 for ev in Registry(any_registry).history("cls", "race") if ev["kind"] == "register") == 1


@pytest.mark.slow
def test_eight_concurrent_promotions_lose_no_event(any_registry, tmp_path):
    reg = Registry(any_registry)
    for i in range(N):
        reg.register("cls", "promo", f"v{i}", make_artifacts(tmp_path / f"a{i}", seed=str(i)))
    procs = _start_all([["promote", f"cls/promo@v{i}", "--to", "production", "--reason", f"r{i}", "--json"]
                        for i in range(N)], any_registry)
    results = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [r[0] for r in results] == [0] * N, results

    events = [e for e in reg.history("cls", "promo") if e["kind"] == "promote"]
    assert len(events) == N
    assert sorted(e["reason"] for e in events) == sorted(f"r{i}" for i in range(N))
    # Each promotion names the production version it replaced: the chain of from_version is unbroken.
    for before, after in zip(events, events[1:]):
        assert after["from_version"] == before["version"]
    assert reg.audit("cls", "promo")["ok"], reg.audit("cls", "promo")
    head = json.loads(reg.storage.read_bytes(f"{model_key('cls', 'promo')}/audit/head.json"))
    assert head["seq"] == reg.state("cls", "promo").seq  # head converged on the newest event
    assert reg.resolve("cls/promo@production").version == events[-1]["version"]
    stages = reg.state("cls", "promo").stages
    assert [v for v, s in stages.items() if s == "production"] == [events[-1]["version"]]


def _events_dir(registry: str) -> Path:
    return Path(registry) / model_key("cls", "chain") / "audit" / "events"


@pytest.fixture
def chained(local_registry, tmp_path) -> str:
    reg = Registry(local_registry)
    for i in range(3):
        reg.register("cls", "chain", f"v{i}", make_artifacts(tmp_path / f"a{i}", seed=str(i)))
        reg.promote(f"cls/chain@v{i}", "production")
    assert run_omrw("audit", "cls/chain", registry=local_registry).returncode == 0
    return local_registry


def _audit_fails_naming(registry: str, *names: str) -> None:
    p = run_omrw("audit", registry=registry)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1
    for name in names:
        assert name in p.stderr, p.stderr


def test_audit_detects_edited_event(chained):
    path = _events_dir(chained) / "0000000003.json"
    path.write_bytes(path.read_bytes().replace(b'"actor":"', b'"actor":"mallory-'))
    _audit_fails_naming(chained, "event 3")


def test_audit_detects_edited_last_event(chained):
    last = sorted(_events_dir(chained).iterdir())[-1]
    last.write_bytes(last.read_bytes().replace(b'"reason":null', b'"reason":"forged"'))
    _audit_fails_naming(chained, f"event {int(last.stem)}")


def test_audit_detects_deleted_event(chained):
    (_events_dir(chained) / "0000000002.json").unlink()
    _audit_fails_naming(chained, "event 2 is missing")


def test_audit_detects_reordered_events(chained):
    d = _events_dir(chained)
    a, b = d / "0000000002.json", d / "0000000004.json"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    _audit_fails_naming(chained, "event 2", "event 4")


def test_audit_detects_moved_alias_pointer(chained):
    alias = Path(chained) / model_key("cls", "chain") / "aliases" / "production.json"
    alias.write_text(alias.read_text().replace('"version": "v2"', '"version": "v0"'))
    _audit_fails_naming(chained, "alias production")

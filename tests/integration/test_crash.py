"""Crash safety (DESIGN 2.2): a register, promote or gc killed with SIGKILL at any instant
leaves the old truth or the new one, never a mix, does not burn the version name, and
leaves only debris `gc` removes (issue 9, acceptance 3).

A killed register's lease stays live for its ttl (`OMR_LEASE_TTL`): gc must not touch it
before then. These tests run with a short ttl and wait past it (counted from the kill, so
the checks made meanwhile are not wasted time) before calling gc or retrying.

After a kill at a random instant v1 is in exactly one of three states:
* invisible: resolve exits 3, not listed; gc removes all debris, a retry succeeds;
* unanchored (published, killed before its register event): resolve exits 1 naming "not in
  the audit log", not listed; a retry with the same bytes completes it
  (`completed_interrupted`) once the killed attempt's lease has expired;
* complete (the event landed): resolve exits 0 and strict verification passes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from omr_workflows import layout
from omr_workflows.registry import Registry, model_key
from tests.conftest import OMRW, make_artifacts, run_omrw

TTL = 1.5
MODEL = "cls/crash"
BOTH = pytest.mark.parametrize("any_registry", ["local", pytest.param("s3", marks=pytest.mark.s3)],
                               indirect=True)


@pytest.fixture(autouse=True)
def _short_lease(monkeypatch):
    """Every omrw started here (and the in-process Registry) uses a 1.5 s lease ttl."""
    monkeypatch.setenv("OMR_LEASE_TTL", str(TTL))


def _big_artifacts(root: Path, size: int = 4 << 20) -> Path:
    # Large enough that a kill after a random delay lands inside the copy most of the time.
    return make_artifacts(root, files={f"shard{i}.bin": os.urandom(size) for i in range(6)} |
                          {"model.pt": b"weights", "metrics.json": b"{}"})


def _register(registry: str, src: Path, extra_env: dict | None = None, version: str = "v1") -> subprocess.Popen:
    env = dict(os.environ, OMR_REGISTRY=registry, **(extra_env or {}))
    return subprocess.Popen([*OMRW, "register", MODEL, "--version", version, "--artifacts", str(src),
                             "--no-provenance"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_past_lease(killed_at: float) -> None:
    """The killed process beat its lease at most at `killed_at`: sleep until it is provably dead."""
    time.sleep(max(0.0, killed_at + TTL + 0.25 - time.monotonic()))


def _listed(registry: str, version: str = "v1") -> bool:
    reg = Registry(registry)
    in_versions = version in reg.versions("cls", "crash")
    in_list = any(r["version"] == version for r in reg.list())
    assert in_versions == in_list, f"versions() and list() disagree about {version}"
    return in_list


def _state(registry: str) -> str:
    """Which of the three allowed states v1 is in (asserting everything else agrees)."""
    p = run_omrw("resolve", f"{MODEL}@v1", "--json", registry=registry)
    listed = _listed(registry)
    if p.returncode == 0:
        assert listed, "resolvable but not listed"
        Registry(registry).verify_version("cls", "crash", "v1", "strict")
        return "complete"
    assert not listed, f"listed although resolve exits {p.returncode}: {p.stderr}"
    if p.returncode == 1:
        assert "not in the audit log" in p.stderr, p.stderr
        return "unanchored"
    assert p.returncode == 3, p.stderr
    return "invisible"


def _state_of(registry: str, version: str) -> int:
    return run_omrw("resolve", f"{MODEL}@{version}", registry=registry).returncode


def _debris(registry: str) -> list[str]:
    return Registry(registry).gc(older_than=0, dry_run=True)


def _gc(registry: str, state: str) -> list[str]:
    removed = run_omrw("gc", "--older-than", "0", "--json", registry=registry, check=True).json["removed"]
    for key in removed:
        if state == "invisible":
            # Only the killed attempt's own upload area may go (object stores), never a version.
            assert "/versions/" not in key or "/.omr-data/" in key, key
        else:
            assert "/versions/" not in key, f"gc removed part of a published version: {key}"
    assert _debris(registry) == []
    return removed


def _retry(registry: str, src: Path, completes: bool) -> None:
    p = run_omrw("register", MODEL, "--version", "v1", "--artifacts", str(src), "--no-provenance", "--json",
                 registry=registry)
    assert p.returncode == 0, f"the version name was burned by the crash: {p.stderr}"
    assert p.json["completed_interrupted"] is completes, p.json
    assert _state(registry) == "complete"


def _check_recovers(registry: str, src: Path, state: str, killed_at: float) -> None:
    _wait_past_lease(killed_at)
    if state == "complete":
        _gc(registry, state)  # at most the killed winner's lease
        assert _state(registry) == "complete"
        p = run_omrw("register", MODEL, "--version", "v1", "--artifacts", str(src), "--no-provenance",
                     registry=registry)
        assert p.returncode == 4, p.stderr  # versions are immutable
    elif state == "unanchored":
        _retry(registry, src, completes=True)  # the dead lease no longer blocks the completion
        _gc(registry, "complete")
    else:
        _gc(registry, state)
        assert _state(registry) == "invisible"
        _retry(registry, src, completes=False)
    Registry(registry).storage.remove_tree(model_key("cls", "crash"))


@pytest.mark.slow
@pytest.mark.parametrize("step", ["copy", "sidecars", "publish"])
def test_injected_kill_at_each_step(any_registry, tmp_path, step):
    # The injected kills land at a fixed step, so on S3 small shards do (uploads are slow there).
    src = _big_artifacts(tmp_path / "src", 4 << 20 if "://" not in any_registry else 256 << 10)
    # 3 kills per step locally (+14 random kills below: 23 trials); 2 per step on S3.
    for _ in range(3 if "://" not in any_registry else 2):
        p = _register(any_registry, src, {"OMR_FAULT_CRASH_AT": step})
        assert p.wait(timeout=120) == -signal.SIGKILL
        killed_at = time.monotonic()
        if _debris(any_registry) and time.monotonic() - killed_at < TTL - 1.0:
            pytest.fail("gc would remove the staging area of a register whose lease is still live")
        assert _state(any_registry) == "invisible"
        _wait_past_lease(killed_at)
        assert _debris(any_registry), f"a kill at {step} should leave staging debris for gc once the lease expired"
        _check_recovers(any_registry, src, "invisible", killed_at)


@pytest.mark.slow
def test_random_kills(local_registry, tmp_path):
    src = _big_artifacts(tmp_path / "src")
    # Measure one register, then kill 14 more at uniformly random instants within it.
    t0 = time.monotonic()
    assert _register(local_registry, src).wait(timeout=120) == 0
    duration = time.monotonic() - t0
    Registry(local_registry).storage.remove_tree(model_key("cls", "crash"))
    rng = random.Random(1234)
    seen = []
    for _ in range(14):
        p = _register(local_registry, src)
        time.sleep(rng.uniform(0.05, duration))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        killed_at = time.monotonic()
        state = _state(local_registry) if p.returncode == -signal.SIGKILL else "complete"
        seen.append(state)
        _check_recovers(local_registry, src, state, killed_at)
    assert "invisible" in seen, seen


# ---------------------------------------------------------------------- promote, register commit, gc
def _setup_two_versions(registry: str, tmp_path: Path) -> Registry:
    """v1 (production) and v2 (latest), registered and promoted in process."""
    reg = Registry(registry)
    for v in ("v1", "v2"):
        reg.register("cls", "crash", v, make_artifacts(tmp_path / v, seed=v), actor="t")
    reg.promote(f"{MODEL}@v1", "production", reason="first", actor="t")
    return reg


def _alias_views(registry: str, alias: str) -> dict[str, str | None]:
    """Which version `resolve` (the CLI), `list` and `history` (in process: the same code) say the alias names."""
    res = run_omrw("resolve", f"{MODEL}@{alias}", "--json", registry=registry, check=True).json
    reg = Registry(registry)
    in_list = [r["version"] for r in reg.list("cls", "crash") if alias in r["aliases"]]
    assert len(in_list) <= 1, in_list
    moved = [e["version"] for e in reg.history("cls", "crash") if e.get("alias") == alias]
    return {"resolve": res["version"], "list": in_list[0] if in_list else None,
            "history": moved[-1] if moved else None}


def _pointer_version(registry: str, alias: str) -> str:
    reg = Registry(registry)
    return json.loads(reg.storage.read_bytes(layout.alias_key(model_key("cls", "crash"), alias)))["version"]


def _audit(registry: str, *extra: str):
    return run_omrw("audit", MODEL, "--json", *extra, registry=registry)


@pytest.mark.slow
@BOTH
@pytest.mark.parametrize("step", ["after-event", "after-head", "after-pointer"])
def test_promote_killed_at_each_step(any_registry, tmp_path, step):
    _setup_two_versions(any_registry, tmp_path)
    p = run_omrw("promote", f"{MODEL}@v2", "--to", "production", "--reason", "kill me", registry=any_registry,
                 env={"OMR_FAULT_CRASH_AT": step})
    assert p.returncode == -signal.SIGKILL, p.stderr
    # The event landed in every step: it is the commit point, so every reader says v2.
    assert _alias_views(any_registry, "production") == {"resolve": "v2", "list": "v2", "history": "v2"}
    rows = {r["version"]: r for r in Registry(any_registry).list("cls", "crash")}
    assert rows["v2"]["stage"] == "production" and rows["v1"]["stage"] == "archived", rows
    events = Registry(any_registry).history("cls", "crash")
    assert [e["kind"] for e in events] == ["register", "register", "promote", "promote"]
    assert events[-1]["reason"] == "kill me"

    audit = _audit(any_registry)
    if step == "after-pointer":
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert _pointer_version(any_registry, "production") == "v2"
        repaired = _audit(any_registry, "--repair")
        assert repaired.returncode == 0 and repaired.json["repaired"] == [], repaired.stdout
    else:
        # The pointer file still names v1: audit reports exactly that (a head one event behind,
        # after-event, is allowed lag and no finding), and repair rewrites it (and the head).
        assert _pointer_version(any_registry, "production") == "v1"
        assert audit.returncode == 1, audit.stdout + audit.stderr
        assert audit.json["problems"] == ["tasks/cls/models/crash: alias production points to v1 but audit "
                                          "event 4 set it to v2"], audit.json
        repaired = _audit(any_registry, "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        expected = {"aliases/production.json"} | ({"audit/head.json"} if step == "after-event" else set())
        assert {k.split("/crash/", 1)[1] for k in repaired.json["repaired"]} == expected, repaired.json
        assert _pointer_version(any_registry, "production") == "v2"
        assert _audit(any_registry).returncode == 0
    assert _alias_views(any_registry, "production") == {"resolve": "v2", "list": "v2", "history": "v2"}
    # The log goes on from the healed state: the next promote chains on event 4.
    run_omrw("promote", f"{MODEL}@v1", "--to", "production", "--rollback", registry=any_registry, check=True)
    assert _alias_views(any_registry, "production") == {"resolve": "v1", "list": "v1", "history": "v1"}
    assert _audit(any_registry).returncode == 0
    for v in ("v1", "v2"):
        Registry(any_registry).verify_version("cls", "crash", v, "strict")


def test_audit_ok_right_after_register(local_registry, tmp_path):
    run_omrw("register", MODEL, "--version", "v1", "--artifacts", str(make_artifacts(tmp_path / "a")),
             "--no-provenance", registry=local_registry, check=True)
    audit = _audit(local_registry)
    assert audit.returncode == 0, audit.stdout


@pytest.mark.slow
@BOTH
@pytest.mark.parametrize("step", ["after-event", "after-head"])
def test_register_killed_after_its_event(any_registry, tmp_path, step):
    Registry(any_registry).register("cls", "crash", "v0", make_artifacts(tmp_path / "v0", seed="0"), actor="t")
    src = make_artifacts(tmp_path / "src")
    p = run_omrw("register", MODEL, "--version", "v1", "--artifacts", str(src), "--no-provenance",
                 registry=any_registry, env={"OMR_FAULT_CRASH_AT": step})
    assert p.returncode == -signal.SIGKILL, p.stderr
    killed_at = time.monotonic()
    # Committed: the version exists and `latest` names it, although its anchor and pointer were never written.
    assert _state(any_registry) == "complete"
    assert _alias_views(any_registry, "latest") == {"resolve": "v1", "list": "v1", "history": "v1"}
    assert [e["kind"] for e in Registry(any_registry).history("cls", "crash")] == ["register", "register"]
    assert _pointer_version(any_registry, "latest") == "v0"
    audit = _audit(any_registry)
    assert audit.returncode == 1
    # Only derived files are behind: the anchor, its digest-index entry and the pointer.
    assert all("anchor file" in x or "digest index entry" in x or "alias latest points to v0" in x
               for x in audit.json["problems"]), audit.json
    repaired = _audit(any_registry, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert _pointer_version(any_registry, "latest") == "v1"
    assert _audit(any_registry).returncode == 0, _audit(any_registry).stdout
    # The killed register still holds its lease; once dead, gc removes that lease and nothing else.
    _wait_past_lease(killed_at)
    _gc(any_registry, "complete")
    assert _state(any_registry) == "complete"
    again = run_omrw("register", MODEL, "--version", "v1", "--artifacts", str(src), "--no-provenance",
                     registry=any_registry)
    assert again.returncode == 4, again.stderr


@pytest.mark.slow
@BOTH
def test_gc_killed_while_removing(any_registry, tmp_path):
    _setup_two_versions(any_registry, tmp_path)
    src = make_artifacts(tmp_path / "src", files={f"f{i}.bin": os.urandom(1 << 16) for i in range(4)})
    killed = []
    for v in ("v3", "v4"):
        p = _register(any_registry, src, {"OMR_FAULT_CRASH_AT": "copy"}, version=v)
        assert p.wait(timeout=120) == -signal.SIGKILL
        killed.append(time.monotonic())
    _wait_past_lease(killed[-1])
    before = _debris(any_registry)
    assert len(before) >= 4, before  # two staging areas and two leases, all dead

    p = run_omrw("gc", "--older-than", "0", registry=any_registry, env={"OMR_FAULT_CRASH_AT": "gc-remove"})
    assert p.returncode == -signal.SIGKILL, p.stderr
    left = _debris(any_registry)
    assert set(left) < set(before) and len(left) == len(before) - 1, (before, left)
    # Nothing a reader sees changed: the old truth everywhere, and the log is intact.
    assert _alias_views(any_registry, "production") == {"resolve": "v1", "list": "v1", "history": "v1"}
    assert _alias_views(any_registry, "latest")["resolve"] == "v2"
    assert sorted(r["version"] for r in Registry(any_registry).list()) == ["v1", "v2"]
    for v in ("v3", "v4"):
        assert run_omrw("resolve", f"{MODEL}@{v}", registry=any_registry).returncode == 3
    audit = _audit(any_registry)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    # The next gc finishes the job; the published versions are whole.
    removed = _gc(any_registry, "invisible")
    assert sorted(removed) == sorted(left)
    for v in ("v1", "v2"):
        Registry(any_registry).verify_version("cls", "crash", v, "strict")
    for v in ("v3", "v4"):  # the names were not burned
        assert run_omrw("register", MODEL, "--version", v, "--artifacts", str(src), "--no-provenance",
                        registry=any_registry).returncode == 0
        assert _state_of(any_registry, v) == 0

"""Crash safety of `omrw import` and `omrw mirror` (issue 12, acceptance 3): a SIGKILL at a
random instant (20 trials) or at each crash point the code has never leaves a partial
version, and rerunning the same command completes.

Intake is two-phase (omr_workflows/bundle/intake.py): every version is staged and checked,
then each is published and its `import` event appended (the commit point). So after a kill
each version is in exactly one of three states (as after a killed register, test_crash.py):
* invisible: resolve exits 3, not listed;
* unanchored (published, killed before its event): resolve exits 1 naming "not in the audit
  log", not listed, never served;
* complete (its event landed): resolve exits 0, strict verification passes, source digest.
Versions are committed in order, so a later one is never further along than an earlier one.

The killed command's lease stays live for `OMR_LEASE_TTL` (short here). Only completing an
unanchored version needs it dead, so the rerun waits past it (counted from the kill) only then;
otherwise it runs at once (a live dead lease must not block it). The rerun exits 0, every version
strictly verifies with the source digest, `gc` touches no published byte, `omrw audit` exits 0,
and the log holds exactly one import event per version.

A kill after an import event and before its anchor is healed by the rerun (the version is
"present" and its derived files are written). Known gap (KNOWN_LAG below): a kill after event
1 of a fresh model and before its head.json makes the rerun refuse to append (the hardened
core cannot tell a head never written from a deleted one) until `omrw audit --repair`. The
deterministic test at that point checks the rest and xfails naming it (strictly: fixing it
turns it red, so the entry goes). Random kills landing there run `omrw audit --repair`, check
everything else, and warn.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest

from omr_workflows.registry import Registry
from tests.conftest import ISOLATED_VARS, OMRW, make_artifacts, run_omrw

pytestmark = pytest.mark.slow

TTL = 1.5
TASK, NAME = "cls", "bund"
MODEL = f"{TASK}/{NAME}"
VERSIONS = ("v1", "v2")
SEED = 20240612
RANK = {"invisible": 0, "unanchored": 1, "complete": 2}
# Crash points after an event and before its derived files: the rerun does not heal them.
KNOWN_LAG = {
    "after-event": "a kill after audit event 1 and before head.json: the rerun refuses to append (exit 1, "
                   "'head.json is missing') until `omrw audit --repair`",
}


@pytest.fixture(autouse=True)
def _short_lease(monkeypatch):
    monkeypatch.setenv("OMR_LEASE_TTL", str(TTL))


def _env(**extra: str) -> dict:
    return dict(os.environ, OMR_LEASE_TTL=str(TTL), **extra)


def _popen(args: list[str], **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen([*OMRW, *args], env=_env(**extra_env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _run_parallel(*commands: list[str]) -> list[subprocess.CompletedProcess]:
    """Several read-only omrw commands at once (each is mostly interpreter start-up)."""
    procs = [(c, _popen(c)) for c in commands]
    out = []
    for c, p in procs:
        stdout, stderr = p.communicate(timeout=120)
        done = subprocess.CompletedProcess(c, p.returncode, stdout, stderr)
        done.json = json.loads(stdout) if "--json" in c and p.returncode == 0 and stdout.strip() else None
        out.append(done)
    return out


class Bundle:
    """One source registry (cls/bund v1, v2; production -> v1) and its bundle."""

    def __init__(self, root: Path, shard: int):
        self.source = str(root / "source")
        reg = Registry(self.source)
        for v in VERSIONS:
            files = {f"shard{i}.bin": os.urandom(shard) for i in range(6)}
            files |= {"model.pt": f"weights {v}".encode(), "metrics.json": b"{}"}
            reg.register(TASK, NAME, v, make_artifacts(root / f"pkg-{v}", files=files), actor="t")
        reg.promote(f"{MODEL}@v1", "production", reason="bundle alias", actor="t")
        self.digests = {v: reg.version(TASK, NAME, v).digest for v in VERSIONS}
        self.path = str(root / "bund.tar")
        from omr_workflows.bundle.ops import export

        export(reg, [f"{MODEL}@{v}" for v in VERSIONS], self.path, actor="t")
        self.durations: dict[str, float] = {}


def _make_bundle(tmp_path_factory, name: str, shard: int) -> Bundle:
    root = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:  # the autouse isolation is per test; this is per module
        for var in ISOLATED_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("HOME", str(root / "home"))
        mp.setenv("OMR_CACHE", str(root / "cache"))
        return Bundle(root, shard)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Bundle:
    # ~6 x 4 MiB per version: a kill after a random delay lands inside the copy most of the time.
    return _make_bundle(tmp_path_factory, "bundle", 4 << 20)


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory) -> Bundle:
    # On S3 (moto) uploads are slow: small shards keep a trial to a few seconds.
    return _make_bundle(tmp_path_factory, "small-bundle", 256 << 10)


def _command(kind: str, b: Bundle, target: str) -> list[str]:
    if kind == "import":
        return ["import", b.path, "--registry", target]
    return ["mirror", b.source, target, "--model", MODEL]


def _duration(kind: str, b: Bundle, target: str) -> float:
    """How long one uninterrupted run takes (measured once per command and target kind)."""
    key = f"{kind} {'s3' if '://' in target else 'local'}"
    if key not in b.durations:
        t0 = time.monotonic()
        p = _popen([*_command(kind, b, target), "--json"])
        out, err = p.communicate(timeout=300)
        b.durations[key] = time.monotonic() - t0
        assert p.returncode == 0, err
        rows = json.loads(out)["versions"]
        assert [r["ref"] for r in rows] == [f"{MODEL}@{v}" for v in VERSIONS], rows
        assert {r["status"] for r in rows} == {"imported" if kind == "import" else "copied"}, rows
    return b.durations[key]


# ---------------------------------------------------------------------- the checks
def _states(target: str, b: Bundle, ctx: str, lag: list[str]) -> dict[str, str]:
    """Each version's state after a kill (asserting resolve, strict verify and list agree)."""
    procs = _run_parallel(*[["resolve", f"{MODEL}@{v}", "--verify", "strict", "--json", "--registry", target]
                            for v in VERSIONS])
    reg = Registry(target)
    try:
        listed = {r["version"] for r in reg.list(TASK, NAME)}
        in_versions = set(reg.versions(TASK, NAME))
    except Exception as e:  # noqa: BLE001 - the message is the finding
        pytest.fail(f"{ctx}: list after the kill raised {type(e).__name__}: {e}")
    assert listed == in_versions, f"{ctx}: versions() and list() disagree: {in_versions} vs {listed}"
    states = {}
    for v, p in zip(VERSIONS, procs):
        if p.returncode == 1 and "head.json is missing" in p.stderr and v in listed:
            # KNOWN_LAG["after-event"]: committed, but strict verification refuses a log without its head.
            lag.append(f"strict verify of {v} refused: head.json missing")
            p = run_omrw("resolve", f"{MODEL}@{v}", "--json", registry=target)
            assert p.returncode == 0, f"{ctx}: {v} is listed but does not resolve: {p.stderr}"
            p.json["verified"] = "strict"  # checked after the rerun
        if p.returncode == 0:
            assert p.json["digest"] == b.digests[v], f"{ctx}: {v} resolves to another digest: {p.json}"
            assert p.json["verified"] == "strict", f"{ctx}: {p.json}"
            assert v in listed, f"{ctx}: {v} resolves but is not listed"
            states[v] = "complete"
            continue
        assert v not in listed, f"{ctx}: {v} is listed although resolve exits {p.returncode}: {p.stderr}"
        if p.returncode == 1:
            assert "not in the audit log" in p.stderr, f"{ctx}: {v} is a partial version: {p.stderr}"
            states[v] = "unanchored"
        else:
            assert p.returncode == 3, f"{ctx}: resolve {v} exited {p.returncode}: {p.stderr}"
            states[v] = "invisible"
    ranks = [RANK[states[v]] for v in VERSIONS]
    assert ranks == sorted(ranks, reverse=True), f"{ctx}: a later version got further than an earlier one: {states}"
    return states


def _wait_past_lease(killed_at: float, states: dict[str, str]) -> None:
    """The killed command beat its lease at most at `killed_at`. Only completing an unanchored version
    needs it dead (the rerun must know no one else is committing it): wait only then."""
    if "unanchored" in states.values():
        time.sleep(max(0.0, killed_at + TTL + 0.25 - time.monotonic()))


def _lag_problems(audit_json: dict | None) -> bool:
    problems = (audit_json or {}).get("problems") or []
    # Only KNOWN_LAG's symptom: a missing anchor or digest-index entry is healed by the rerun now.
    return bool(problems) and all("head.json" in x or "behind the log" in x for x in problems)


def _repair(target: str, ctx: str) -> None:
    p = run_omrw("audit", MODEL, "--repair", "--json", registry=target)
    assert p.returncode == 0, f"{ctx}: audit --repair failed: {p.stdout}{p.stderr}"


def _rerun_completes(cmd: list[str], target: str, b: Bundle, ctx: str, states: dict[str, str]) -> list[str]:
    """Rerun `cmd` and check it completed everything; returns the KNOWN_LAG symptoms met on the way."""
    lag = []
    p = run_omrw(*cmd, "--json", timeout=300)
    if p.returncode == 1 and "head.json is missing" in p.stderr:
        lag.append("rerun refused: head.json missing")
        _repair(target, ctx)
        p = run_omrw(*cmd, "--json", timeout=300)
    assert p.returncode == 0, f"{ctx}: the rerun after the kill failed ({p.returncode}): {p.stderr}"
    new = "imported" if cmd[0] == "import" else "copied"
    for row in p.json["versions"]:
        v = row["ref"].rsplit("@", 1)[1]
        assert row["digest"] == b.digests[v], f"{ctx}: {row}"
        # Only a version whose event landed is "present"; an unanchored one is completed by the rerun.
        want = {"present"} if states[v] == "complete" else {new}
        assert row["status"] in want, f"{ctx}: {v} was {states[v]} after the kill; rerun said {row}"

    # The killed attempt's staging area is debris now: gc removes it and no published byte.
    for key in Registry(target).gc(older_than=0):
        assert "/versions/" not in key or "/.omr-data/" in key, f"{ctx}: gc removed part of a version: {key}"

    verify, audit = _run_parallel(["verify", "--mode", "strict", *[f"{MODEL}@{v}" for v in VERSIONS], "--json",
                                   "--registry", target],
                                  ["audit", MODEL, "--json", "--registry", target])
    assert verify.returncode == 0, f"{ctx}: strict verify after the rerun: {verify.stdout}{verify.stderr}"
    assert {r["version"]: (r["result"], r["digest"]) for r in verify.json["versions"]} == \
        {v: ("ok", b.digests[v]) for v in VERSIONS}, f"{ctx}: {verify.json['versions']}"
    if audit.returncode != 0:
        audit_json = json.loads(audit.stdout) if audit.stdout.strip() else None
        assert _lag_problems(audit_json), f"{ctx}: audit after the rerun: {audit.stdout}{audit.stderr}"
        lag.append(f"audit after the rerun: {audit_json['problems']}")
        _repair(target, ctx)
        assert run_omrw("audit", MODEL, registry=target).returncode == 0, ctx

    events = Registry(target).history(TASK, NAME)
    imports = sorted(e["version"] for e in events if e["kind"] == "import")
    assert imports == list(VERSIONS), f"{ctx}: import events {imports}, want one per version: {events}"
    return lag


def _kill_trials(kind: str, b: Bundle, new_target, n: int, rng: random.Random, label: str) -> list[str]:
    """n kills at random instants within one uninterrupted run, each on a fresh target."""
    T = _duration(kind, b, new_target()) * 1.05
    seen, lag = [], []
    for i in range(n):
        target = new_target()
        cmd = _command(kind, b, target)
        delay = rng.uniform(0, T)
        p = _popen(cmd)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)  # a no-op when it already finished
        _, err = p.communicate(timeout=120)
        killed_at = time.monotonic()
        ctx = f"{label} seed={SEED} trial={i} kill at {delay:.3f}s of T={T:.3f}s"
        assert p.returncode in (0, -signal.SIGKILL), f"{ctx}: exited {p.returncode}: {err}"
        trial_lag: list[str] = []
        states = _states(target, b, ctx, trial_lag)
        if p.returncode == 0:
            assert set(states.values()) == {"complete"}, f"{ctx}: finished, yet {states}"
        seen.append(tuple(states[v] for v in VERSIONS))
        _wait_past_lease(killed_at, states)
        trial_lag += _rerun_completes(cmd, target, b, ctx, states)
        lag += [f"{ctx}: {x}" for x in trial_lag]
    if lag:
        warnings.warn("known gap (see module docstring) met by random kills:\n" + "\n".join(lag), stacklevel=2)
    print(f"{label} seed={SEED} T={T:.3f}s states after each kill: {seen}")
    return [",".join(s) for s in seen]


def _fresh(tmp_path: Path):
    count = iter(range(1000))
    return lambda: str(tmp_path / f"target{next(count)}")


def _fresh_s3(s3_registry: str):
    count = iter(range(1000))
    return lambda: f"{s3_registry}/t{next(count)}"


# ---------------------------------------------------------------------- random kills
def test_import_killed_at_random_instants(bundle, tmp_path):
    seen = _kill_trials("import", bundle, _fresh(tmp_path), 10, random.Random(SEED), "import")
    # The bundle is big enough that most kills land inside the copy, not before or after it.
    assert sum(s != "complete,complete" for s in seen) >= 3, f"seed={SEED}: kills rarely interrupted: {seen}"


def test_mirror_killed_at_random_instants(bundle, tmp_path):
    seen = _kill_trials("mirror", bundle, _fresh(tmp_path), 10, random.Random(SEED + 1), "mirror")
    assert sum(s != "complete,complete" for s in seen) >= 3, f"seed={SEED + 1}: kills rarely interrupted: {seen}"
    assert Registry(bundle.source).list(TASK, NAME)  # the source is untouched
    assert run_omrw("audit", registry=bundle.source).returncode == 0


@pytest.mark.s3
def test_mirror_into_s3_killed_at_a_random_instant(small_bundle, s3_registry):
    # One trial: every omrw start on S3 costs ~1 s (s3fs import, moto); the import into S3 is
    # killed at its riskiest step below.
    _kill_trials("mirror", small_bundle, _fresh_s3(s3_registry), 1, random.Random(SEED + 2), "mirror -> s3")


# ---------------------------------------------------------------------- kills at each crash point
def _killed_at(kind: str, b: Bundle, target: str, step: str, *extra: str) -> tuple[list[str], dict, float, list]:
    cmd = [*_command(kind, b, target), *extra]
    p = _popen(cmd, OMR_FAULT_CRASH_AT=step)
    _, err = p.communicate(timeout=120)
    killed_at = time.monotonic()
    assert p.returncode == -signal.SIGKILL, f"{kind} at {step}: exited {p.returncode}: {err}"
    lag: list[str] = []
    return cmd, _states(target, b, f"{kind} killed at {step}", lag), killed_at, lag


def _recovers(cmd: list[str], target: str, b: Bundle, step: str, states: dict, killed_at: float,
              lag: list[str]) -> None:
    _wait_past_lease(killed_at, states)
    lag = lag + _rerun_completes(cmd, target, b, f"{cmd[0]} killed at {step}", states)
    if step in KNOWN_LAG:
        assert lag, f"the gap at {step} is fixed: remove it from KNOWN_LAG"
        pytest.xfail(f"{KNOWN_LAG[step]}: {lag}")
    assert not lag, lag


# (crash point, the states it must leave)
IMPORT_STEPS = [
    ("import-staged", ("invisible", "invisible")),      # v1 staged, v2 not yet: nothing visible
    ("publish", ("invisible", "invisible")),            # inside the storage publish of v1
    ("import-published", ("unanchored", "invisible")),  # v1 published, its event not appended
    ("after-event", ("complete", "invisible")),         # v1's event landed, head.json not written
    ("after-head", ("complete", "invisible")),          # v1's event and head landed, not its anchor
]


@pytest.mark.parametrize("step,expect", IMPORT_STEPS, ids=[s for s, _ in IMPORT_STEPS])
def test_import_killed_at_each_step(bundle, tmp_path, step, expect):
    target = str(tmp_path / "target")
    cmd, states, killed_at, lag = _killed_at("import", bundle, target, step)
    assert tuple(states[v] for v in VERSIONS) == expect, states
    _recovers(cmd, target, bundle, step, states, killed_at, lag)


def test_import_with_aliases_killed_after_a_pointer(bundle, tmp_path):
    """--aliases: both versions are committed before the first promote; the rerun moves the rest."""
    target = str(tmp_path / "target")
    cmd, states, killed_at, lag = _killed_at("import", bundle, target, "after-pointer", "--aliases")
    assert set(states.values()) == {"complete"}, states
    _recovers(cmd, target, bundle, "after-pointer", states, killed_at, lag)
    res = run_omrw("resolve", f"{MODEL}@production", "--json", registry=target, check=True).json
    assert (res["version"], res["digest"]) == ("v1", bundle.digests["v1"]), res
    kinds = [e["kind"] for e in Registry(target).history(TASK, NAME)]
    assert kinds.count("promote") == 2, kinds  # latest (from the first run) and production, once each


def test_mirror_killed_after_publish(bundle, tmp_path):
    """Mirror's incremental check must not take the unanchored v1 for "present": the rerun completes it."""
    target = str(tmp_path / "target")
    cmd, states, killed_at, lag = _killed_at("mirror", bundle, target, "import-published")
    assert tuple(states[v] for v in VERSIONS) == ("unanchored", "invisible"), states
    _recovers(cmd, target, bundle, "import-published", states, killed_at, lag)


@pytest.mark.s3
def test_import_into_s3_killed_after_publish(small_bundle, s3_registry):
    target = f"{s3_registry}/t"
    cmd, states, killed_at, lag = _killed_at("import", small_bundle, target, "import-published")
    assert tuple(states[v] for v in VERSIONS) == ("unanchored", "invisible"), states
    _recovers(cmd, target, small_bundle, "import-published", states, killed_at, lag)

"""gc racing register (issue 9, acceptance 2; DESIGN 2.2): `omrw gc --older-than 0` run at
random instants of a register's copy never removes a live attempt's staging area, never
exits 5, and a register either publishes a complete version or fails leaving none.

Each trial registers a new version of one model (trials are independent) and starts gc, sometimes
twice, after a random delay inside the measured copy window. Half the trials use a short
lease ttl (`OMR_LEASE_TTL=1`), so the register must keep its lease alive by heartbeats
while gc looks; the others the default ttl.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from omr_workflows import layout
from omr_workflows.errors import OmrError
from omr_workflows.registry import Registry, model_key
from tests.conftest import OMRW, make_artifacts, run_omrw

TRIALS = 20
MODEL = "cls/race"
SIDECARS = {"model_meta.json", "sha256sums.txt"}


def _package(root: Path, n: int, size: int) -> Path:
    files = {f"part{i:02d}/shard{i:02d}.bin": os.urandom(size) for i in range(n)}
    return make_artifacts(root, files=files | {"model.pt": b"weights", "metrics.json": b'{"auc": 0.9}'})


def _popen(args: list[str], registry: str, env: dict | None = None) -> subprocess.Popen:
    full = dict(os.environ, OMR_REGISTRY=registry, **(env or {}))
    return subprocess.Popen([*OMRW, *args], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _register(registry: str, version: str, src: Path, env: dict | None = None) -> subprocess.Popen:
    return _popen(["register", MODEL, "--version", version, "--artifacts", str(src), "--no-provenance"],
                  registry, env)


def _gc(registry: str) -> subprocess.Popen:
    return _popen(["gc", "--older-than", "0", "--json"], registry)


def _staging_started(reg: Registry, version: str, p: subprocess.Popen, timeout: float = 60) -> float:
    """Wait until the register's lease (created before anything else is staged) shows up, or it exits."""
    root = layout.staging_root(model_key("cls", "race"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(name.startswith(f"{version}.") for name in reg.storage.listdir(root)) or p.poll() is not None:
            return time.monotonic()
        time.sleep(0.01)
    pytest.fail(f"register of {MODEL}@{version} did not start staging within {timeout} s")


def _calibrate(registry: str, src: Path) -> float:
    """Seconds from the lease appearing to the register's end, from one undisturbed run."""
    reg = Registry(registry)
    p = _register(registry, "calibrate", src)
    started = _staging_started(reg, "calibrate", p)
    _out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return time.monotonic() - started


def _exit_code_of_resolve(reg: Registry, ref: str) -> int:
    try:
        reg.resolve(ref, materialize=False)
    except OmrError as e:
        return e.exit_code
    return 0


def _check_trial(reg: Registry, version: str, src: Path, reg_rc: int, reg_err: str) -> bool:
    """Assert the outcome is all-or-nothing; True when the register published."""
    ref = f"{MODEL}@{version}"
    getattr(reg.storage, "invalidate", lambda: None)()  # see _reg
    listed = any(r["version"] == version for r in reg.list("cls", "race"))
    rc = _exit_code_of_resolve(reg, ref)
    if reg_rc == 0:
        assert rc == 0, f"register exited 0 but {ref} does not resolve (exit {rc})"
        assert listed, f"register exited 0 but {ref} is not listed"
        reg.verify_version("cls", "race", version, "strict")
        stored = {f["path"] for f in reg.show(ref)["files"]} - SIDECARS
        expected = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
        assert stored == expected, f"register exited 0 with a partial version: missing {sorted(expected - stored)[:5]}"
        return True
    assert reg_rc > 0, f"register died from signal {-reg_rc}: {reg_err}"
    assert rc in (1, 3), f"a failed register ({reg_err.strip()}) left {ref} resolvable (exit {rc})"
    assert not listed, f"a failed register ({reg_err.strip()}) left {ref} listed"
    return False


def _race(registry: str, src: Path, seed: int) -> None:
    window = _calibrate(registry, src)
    reg = Registry(registry)
    rng = random.Random(seed)
    outcomes = []
    for trial in range(TRIALS):
        version = f"t{trial:02d}"
        env = {"OMR_LEASE_TTL": "1"} if trial % 2 else {}
        p = _register(registry, version, src, env)
        _staging_started(reg, version, p)
        time.sleep(rng.uniform(0.0, window))  # a random instant from staging start to publish
        gcs = [_gc(registry)]
        if rng.random() < 0.4:
            time.sleep(rng.uniform(0.0, 0.3))
            gcs.append(_gc(registry))
        for g in gcs:
            _out, err = g.communicate(timeout=120)
            assert g.returncode == 0, f"trial {trial}: gc exited {g.returncode}: {err}"
        _out, reg_err = p.communicate(timeout=120)
        outcomes.append(_check_trial(reg, version, src, p.returncode, reg_err))
    # Nothing of a published version is debris, and a last gc after everything ends still exits 0.
    final = run_omrw("gc", "--older-than", "0", "--json", registry=registry)
    assert final.returncode == 0, final.stderr
    assert all("/versions/" not in k or "/.omr-data/" in k for k in final.json["removed"]), final.json
    reg = Registry(registry)
    for trial, published in enumerate(outcomes):
        if published:
            reg.verify_version("cls", "race", f"t{trial:02d}", "strict")
    print(f"{registry}: {sum(outcomes)}/{TRIALS} registers published, window {window:.2f} s")


@pytest.mark.slow
def test_gc_races_register_local(local_registry, tmp_path):
    # ~40 files of 1.5 MB: the copy takes about half a second here.
    _race(local_registry, _package(tmp_path / "src", 40, 1536 << 10), seed=9)


@pytest.mark.slow
@pytest.mark.s3
def test_gc_races_register_s3(s3_registry, tmp_path):
    # Fewer, smaller files: one object per file upload keeps 20 trials within about a minute.
    _race(s3_registry, _package(tmp_path / "src", 12, 32 << 10), seed=10)

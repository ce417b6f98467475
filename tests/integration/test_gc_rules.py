"""gc removes only what is provably dead (issue 9, class 1): its own token grammar, never a
published version's files, nothing of a version whose manifest cannot be read, and it never
exits 5 because one removal failed.
"""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from omr_workflows import layout
from omr_workflows.registry import Registry
from omr_workflows.storage.base import lease_bytes
from tests.conftest import make_artifacts, run_omrw

TASK, MODEL = "cls", "gc"
REF = f"{TASK}/{MODEL}@v1"


def _register(registry: str, tmp_path: Path, files: dict[str, bytes] | None = None) -> None:
    art = make_artifacts(tmp_path / "art", files=files)
    run_omrw("register", f"{TASK}/{MODEL}", "--version", "v1", "--artifacts", str(art), "--no-provenance",
             registry=registry, check=True)


def _dead_lease(storage, version: str, token: str) -> str:
    key = layout.lease_key(layout.model_key(TASK, MODEL), version, token)
    storage.write_replace(key, lease_bytes(token, version, 1.0, heartbeat=time.time() - 3600))
    return key


def test_artifact_folders_that_look_like_debris_are_never_touched(local_registry, tmp_path):
    # A published local version whose artifacts have folders named like 0.1's staging tokens.
    _register(local_registry, tmp_path, files={"model.pt": b"w", ".omr-data/2024/part.bin": b"p",
                                              "runs/v1.1700000000-abcdef/log.txt": b"l"})
    p = run_omrw("gc", "--older-than", "0", "--json", registry=local_registry, check=True)
    assert p.json["removed"] == []
    assert run_omrw("verify", "--mode", "strict", REF, registry=local_registry).returncode == 0


def test_only_names_of_the_exact_token_grammar_are_candidates(local_registry, tmp_path):
    _register(local_registry, tmp_path)
    root = Path(local_registry) / layout.staging_root(layout.model_key(TASK, MODEL))
    root.mkdir(parents=True, exist_ok=True)
    # Look-alikes of staging folders and temp files (old grammar, or hand-made): kept.
    for name in ("v1.1700000000-abcdef123456", "v9.omr1-1700000000-XYZ", "notes.omr1-1700000000-abcdef123456.old"):
        (root / name).mkdir()
    (Path(local_registry) / layout.model_key(TASK, MODEL) / ".head.json.1700000000.tmp").write_text("x")
    p = run_omrw("gc", "--older-than", "0", "--json", registry=local_registry, check=True)
    assert p.json["removed"] == []
    # A real dead attempt (its lease expired an hour ago) goes, with its lease.
    reg = Registry(local_registry)
    token = layout.new_token()
    dead = Path(local_registry) / layout.staging_key(layout.model_key(TASK, MODEL), "v2", token)
    dead.mkdir()
    (dead / "model.pt").write_bytes(b"partial")
    lease = _dead_lease(reg.storage, "v2", token)
    removed = run_omrw("gc", "--older-than", "0", "--json", registry=local_registry, check=True).json["removed"]
    assert sorted(removed) == sorted([layout.staging_key(layout.model_key(TASK, MODEL), "v2", token), lease])


@pytest.mark.s3
def test_unreadable_manifest_on_s3_keeps_every_object_of_the_version(s3_registry, tmp_path):
    _register(s3_registry, tmp_path)
    reg = Registry(s3_registry)
    vkey = layout.version_key(TASK, MODEL, "v1")
    # A dead loser's upload area beside the winner's, then the commit object damaged.
    token = layout.new_token()
    reg.storage.write_replace(f"{vkey}/{layout.remote_data_dir(token)}/model.pt", b"loser")
    _dead_lease(reg.storage, "v1", token)
    before = sorted(f.rel for f in reg.storage.walk(vkey))
    original = reg.storage.read_bytes(layout.manifest_key(vkey))
    reg.storage.write_replace(layout.manifest_key(vkey), b"{not json")
    p = run_omrw("gc", "--older-than", "0", "--json", registry=s3_registry, check=True)
    assert p.json["removed"] == []
    assert sorted(f.rel for f in reg.storage.walk(vkey)) == before
    # With the manifest intact again only the dead loser's area (and its lease) go.
    reg.storage.write_replace(layout.manifest_key(vkey), original)
    removed = run_omrw("gc", "--older-than", "0", "--json", registry=s3_registry, check=True).json["removed"]
    assert any(k.endswith(f".omr-data/{token}") for k in removed) and len(removed) == 2
    assert run_omrw("verify", "--mode", "strict", REF, registry=s3_registry).returncode == 0


def test_a_failing_removal_is_skipped_never_exit_5(local_registry, tmp_path, monkeypatch):
    _register(local_registry, tmp_path)
    reg = Registry(local_registry)
    mkey = layout.model_key(TASK, MODEL)
    keys = []
    for version in ("v2", "v3"):
        token = layout.new_token()
        (Path(local_registry) / layout.staging_key(mkey, version, token)).mkdir(parents=True)
        keys.append(layout.staging_key(mkey, version, token))
        keys.append(_dead_lease(reg.storage, version, token))
    real = type(reg.storage).remove_tree

    def flaky(self, key):
        if key == keys[0]:
            raise OSError(errno.ENOTEMPTY, "Directory not empty")  # injected: a writer refilled it
        return real(self, key)

    monkeypatch.setattr(type(reg.storage), "remove_tree", flaky)
    removed = reg.gc(older_than=0)
    assert keys[0] not in removed and set(keys[1:]) <= set(removed)

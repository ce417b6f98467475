"""Deprecate, retire, prune and the retention policy, with the real `omrw`.

A retired version's record stays so every old reference gets a clear answer (exit 3, when, who,
why); prune removes bytes only after its event, never what an alias, a pending request or a
given lock file pins; a SIGKILL at any instant leaves the version intact or cleanly retired.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_artifacts, run_omrw

MK = "celltype/pbmc"


@pytest.fixture
def reg(tmp_path, local_registry):
    for i in range(1, 5):
        run_omrw("register", MK, "--version", f"v{i}", "--artifacts", str(make_artifacts(tmp_path / f"a{i}",
                                                                                          seed=str(i))),
                 "--no-provenance", registry=local_registry, check=True)
        run_omrw("promote", f"{MK}@v{i}", "--to", "production", registry=local_registry, check=True)
    return local_registry


def _vdir(registry: str, v: str) -> Path:
    return Path(registry) / "tasks" / "celltype" / "models" / "pbmc" / "versions" / v


def _audit_ok(registry: str) -> None:
    out = run_omrw("audit", "--json", registry=registry)
    assert out.returncode == 0 and out.json["ok"], out.stdout + out.stderr


def test_deprecated_versions_resolve_with_a_warning_and_can_be_refused(reg):
    run_omrw("deprecate", f"{MK}@v1", "--reason", "superseded by v4", "--actor", "alice", registry=reg, check=True)
    out = run_omrw("resolve", f"{MK}@v1", "--json", registry=reg, check=True)
    assert "deprecated" in out.stderr and "superseded by v4" in out.stderr and "alice" in out.stderr
    assert "superseded by v4" in out.json["deprecated"]
    refused = run_omrw("resolve", f"{MK}@v1", registry=reg, env={"OMR_REFUSE_DEPRECATED": "1"})
    assert refused.returncode == 4 and "deprecated" in refused.stderr
    assert run_omrw("deprecate", f"{MK}@v1", "--reason", "again", "--json", registry=reg,
                    check=True).json["event_seq"] is None  # already: no second event
    assert run_omrw("deprecate", f"{MK}@v1", registry=reg).returncode == 2  # --reason is required
    _audit_ok(reg)


def test_retired_versions_answer_exit_3_with_when_who_why(reg, tmp_path):
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", f"{MK}@v2", "-o", str(lock), registry=reg, check=True)
    held = run_omrw("retire", f"{MK}@v4", "--reason", "x", registry=reg)
    assert held.returncode == 4 and "@production" in held.stderr and "@latest" in held.stderr
    run_omrw("retire", f"{MK}@v2", "--reason", "calibration bug", "--actor", "bob", registry=reg, check=True)
    for args in (("resolve", f"{MK}@v2"), ("resolve", f"{MK}@v2", "--lock", str(lock)),
                 ("verify", f"{MK}@v2"), ("show", f"{MK}@v2")):
        out = run_omrw(*args, registry=reg)
        assert out.returncode == 3, (args, out.stderr)
        assert "retired on" in out.stderr and "by bob: calibration bug" in out.stderr, out.stderr
        assert out.stderr.count("\n") == 1
    promoted = run_omrw("promote", f"{MK}@v2", "--to", "staging", registry=reg)
    assert promoted.returncode == 3 and "retired" in promoted.stderr
    rows = run_omrw("list", MK, "--json", registry=reg, check=True).json
    assert {r["version"]: r["lifecycle"] for r in rows}["v2"] == "retired"
    # verify --all skips it (its bytes may be pruned) and still checks the others.
    out = run_omrw("verify", "--all", "--json", registry=reg, check=True)
    assert sorted(v["ref"] for v in out.json["versions"]) == [f"{MK}@v1", f"{MK}@v3", f"{MK}@v4"]
    _audit_ok(reg)


def test_prune_keeps_what_aliases_requests_and_locks_pin(reg, tmp_path):
    run_omrw("promote", f"{MK}@v1", "--to", "candidate", registry=reg, check=True)
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", f"{MK}@v2", "-o", str(lock), registry=reg, check=True)
    before = {v: sorted(p.name for p in _vdir(reg, v).rglob("*")) for v in ("v1", "v2", "v3", "v4")}
    dry = run_omrw("prune", "--keep-archived", "0", "--lock", str(lock), "--dry-run", "--json", registry=reg,
                   check=True).json
    assert [r["version"] for r in dry["pruned"]] == ["v3"]
    assert {r["version"]: r["kept_because"] for r in dry["kept"]} == {"v1": "alias @candidate",
                                                                      "v2": f"lock file {lock}"}
    assert {v: sorted(p.name for p in _vdir(reg, v).rglob("*")) for v in before} == before
    out = run_omrw("prune", "--keep-archived", "0", "--lock", str(lock), "--json", registry=reg, check=True).json
    assert [r["version"] for r in out["pruned"]] == ["v3"]
    left = sorted(p.name for p in _vdir(reg, "v3").rglob("*") if p.is_file())
    assert left == ["model_meta.json", "omr_manifest.json", "sha256sums.txt"]
    for v in ("v1", "v2", "v4"):
        assert sorted(p.name for p in _vdir(reg, v).rglob("*")) == before[v]
    kinds = [e["kind"] for e in run_omrw("history", MK, "--json", registry=reg, check=True).json][-2:]
    assert kinds == ["retire", "prune"]
    gone = run_omrw("resolve", f"{MK}@v3", registry=reg)
    assert gone.returncode == 3 and "files were removed" in gone.stderr
    _audit_ok(reg)
    assert run_omrw("verify", "--all", "--mode", "strict", registry=reg).returncode == 0


def test_retention_policy_file_and_its_lock_files(reg, tmp_path):
    run_omrw("lock", f"{MK}@v1", "-o", str(tmp_path / "pins.json"), registry=reg, check=True)
    (tmp_path / "retention.yaml").write_text("rules:\n  - match: 'celltype/*'\n    keep_archived: 1\n"
                                             "lock_files: [pins.json]\n")
    out = run_omrw("prune", "--policy", str(tmp_path / "retention.yaml"), "--json", registry=reg, check=True).json
    assert [r["version"] for r in out["pruned"]] == ["v2"]  # v3 is the newest archived; v1 is pinned
    assert [r["version"] for r in out["kept"]] == ["v1"]
    (tmp_path / "bad.yaml").write_text("rules:\n  - keep_archived: -1\n")
    bad = run_omrw("prune", "--policy", str(tmp_path / "bad.yaml"), registry=reg)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


@pytest.mark.parametrize("step", ["after-retire", "prune-remove"])
def test_sigkill_during_prune_leaves_the_version_intact_or_cleanly_retired(reg, step):
    files = sorted(p.name for p in _vdir(reg, "v1").rglob("*") if p.is_file())
    out = run_omrw("prune", "--keep-archived", "2", registry=reg, env={"OMR_FAULT_CRASH_AT": step})
    assert out.returncode == -9
    gone = run_omrw("resolve", f"{MK}@v1", registry=reg)
    assert gone.returncode == 3 and "retired" in gone.stderr
    _audit_ok(reg)
    now = sorted(p.name for p in _vdir(reg, "v1").rglob("*") if p.is_file())
    assert now == files  # killed before its first file was removed
    run_omrw("prune", "--keep-archived", "2", registry=reg, check=True)  # finishes the job
    assert sorted(p.name for p in _vdir(reg, "v1").rglob("*") if p.is_file()) == [
        "model_meta.json", "omr_manifest.json", "sha256sums.txt"]
    events = [e["kind"] for e in run_omrw("history", MK, "--json", registry=reg, check=True).json]
    assert events.count("retire") == 1 and events.count("prune") == 1
    _audit_ok(reg)


def test_model_card_is_stored_shown_and_exclusive(tmp_path, local_registry):
    card = tmp_path / "card.md"
    card.write_text("# PBMC classifier\n\nIntended use: research only.\n")
    art = make_artifacts(tmp_path / "a")
    run_omrw("register", MK, "--version", "v1", "--artifacts", str(art), "--card", str(card), "--no-provenance",
             registry=local_registry, check=True)
    shown = run_omrw("show", f"{MK}@v1", "--json", registry=local_registry, check=True).json
    assert shown["card"].startswith("# PBMC classifier") and "model_card.md" in {f["path"] for f in shown["files"]}
    assert "Intended use: research only." in run_omrw("show", f"{MK}@v1", registry=local_registry, check=True).stdout
    (art / "model_card.md").write_text("other")
    twice = run_omrw("register", MK, "--version", "v2", "--artifacts", str(art), "--card", str(card),
                     "--no-provenance", registry=local_registry)
    assert twice.returncode == 2 and "model_card.md" in twice.stderr
    assert json.loads((Path(local_registry) / "tasks/celltype/models/pbmc/audit/head.json").read_text())["seq"] == 1

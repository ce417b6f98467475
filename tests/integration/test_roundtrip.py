"""Register/resolve/promote/history/audit round trip on a local registry and on S3 (moto server)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from omr_workflows.registry import Registry
from tests.conftest import make_artifacts, run_omrw


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_round_trip(any_registry, tmp_path):
    reg = any_registry
    a1 = make_artifacts(tmp_path / "a1", seed="a")
    a2 = make_artifacts(tmp_path / "a2", seed="b")
    r1 = run_omrw("register", "cls/pbmc", "--version", "2026-02-13_001", "--artifacts", str(a1), "--json",
                  "--param", "lr=0.01", "--reason", "first", registry=reg, check=True).json
    assert r1["version"] == "2026-02-13_001" and r1["digest"].startswith("sha256:")
    r2 = run_omrw("register", "cls/pbmc", "--version", "2026-02-14_001", "--artifacts", str(a2), "--json",
                  registry=reg, check=True).json
    assert r2["digest"] != r1["digest"]

    latest = run_omrw("resolve", "cls/pbmc", "--json", registry=reg, check=True).json
    assert latest["version"] == "2026-02-14_001" and latest["selector_kind"] == "alias"
    for key in ("ref", "task", "model", "version", "selector_kind", "digest", "uri", "path", "registry"):
        assert latest[key]
    # The path is a real local folder whose bytes are the source's, for local and remote registries.
    assert _sha(Path(latest["path"]) / "model.pt") == _sha(a2 / "model.pt")

    run_omrw("promote", "cls/pbmc@2026-02-13_001", "--to", "production", "--reason", "val AUC 0.97",
             registry=reg, check=True)
    prod = run_omrw("resolve", "omr://cls/pbmc@production", "--verify", "strict", "--json", registry=reg,
                    check=True).json
    assert prod["version"] == "2026-02-13_001" and prod["verified"] == "strict"
    assert prod["digest"] == r1["digest"]

    by_digest = run_omrw("resolve", f"cls/pbmc@{r1['digest']}", "--json", registry=reg, check=True).json
    assert by_digest["version"] == "2026-02-13_001" and by_digest["selector_kind"] == "digest"
    one_file = run_omrw("resolve", "cls/pbmc@2026-02-14_001#extra/notes.txt", registry=reg, check=True)
    assert Path(one_file.stdout.strip()).read_text() == "seed b\n"

    run_omrw("promote", "cls/pbmc@2026-02-14_001", "--to", "production", "--reason", "better", registry=reg,
             check=True)
    hist = run_omrw("history", "cls/pbmc", "--json", registry=reg, check=True).json
    kinds = [(e["kind"], e.get("alias"), e["version"]) for e in hist]
    assert kinds == [("register", "latest", "2026-02-13_001"), ("register", "latest", "2026-02-14_001"),
                     ("promote", "production", "2026-02-13_001"), ("promote", "production", "2026-02-14_001")]
    assert hist[-1]["from_version"] == "2026-02-13_001"
    assert hist[-1]["stage_moves"] == {"2026-02-14_001": "production", "2026-02-13_001": "archived"}
    assert hist[2]["reason"] == "val AUC 0.97" and "@" in hist[2]["actor"]

    listing = run_omrw("list", "cls/pbmc", "--json", registry=reg, check=True).json
    stages = {r["version"]: r["stage"] for r in listing}
    assert stages == {"2026-02-13_001": "archived", "2026-02-14_001": "production"}

    audit = run_omrw("audit", "--json", registry=reg, check=True).json
    assert audit["ok"] and audit["models"] == ["cls/pbmc"]
    show = run_omrw("show", "cls/pbmc@production", "--json", registry=reg, check=True).json
    assert {f["path"] for f in show["files"]} >= {"model.pt", "extra/notes.txt", "model_meta.json", "sha256sums.txt"}
    assert show["meta"]["params"] == {} and show["stage"] == "production"
    first = run_omrw("show", "cls/pbmc@2026-02-13_001", "--json", registry=reg, check=True).json
    assert first["meta"]["params"] == {"lr": 0.01} and first["stage"] == "archived"


def test_stage_policy_rollback_and_demotion(local_registry, tmp_path):
    reg = Registry(local_registry)
    for i in range(3):
        reg.register("t", "m", f"v{i}", make_artifacts(tmp_path / f"a{i}", seed=str(i)))
    reg.promote("t/m@v0", "production")
    reg.promote("t/m@v1", "production")  # v0 -> archived
    assert reg.state("t", "m").stages == {"v0": "archived", "v1": "production"}
    p = run_omrw("promote", "t/m@v0", "--to", "production", registry=local_registry)
    assert p.returncode == 4 and "--rollback" in p.stderr and "archived" in p.stderr
    ev = reg.promote("t/m@v0", "production", rollback=True, reason="v1 regressed")
    assert ev.rollback and ev.from_version == "v1" and ev.stage_moves == {"v0": "production", "v1": "archived"}
    reg.promote("t/m@v2", "production", demote_to="staging")
    assert reg.state("t", "m").stages["v0"] == "staging"
    reg.promote("t/m@v1", "staging")
    assert reg.state("t", "m").stages["v1"] == "staging"
    assert reg.resolve("t/m@staging").version == "v1"


def test_alias_wins_over_version_of_same_name(local_registry, tmp_path):
    reg = Registry(local_registry)
    reg.register("t", "m", "prod", make_artifacts(tmp_path / "a", seed="a"))
    reg.register("t", "m", "v2", make_artifacts(tmp_path / "b", seed="b"))
    reg.promote("t/m@v2", "prod")
    res = reg.resolve("t/m@prod")
    assert res.version == "v2" and res.selector_kind == "alias"


def test_json_on_every_command(local_registry, artifacts):
    run_omrw("register", "t/m", "--version", "v1", "--artifacts", str(artifacts), registry=local_registry, check=True)
    for args in (["list"], ["show", "t/m"], ["history", "t/m"], ["audit"], ["gc"], ["resolve", "t/m"],
                 ["promote", "t/m@v1", "--to", "staging"]):
        p = run_omrw(*args, "--json", registry=local_registry, check=True)
        assert p.json is not None, args
    # --json and --registry are accepted before the subcommand too.
    p = run_omrw("--json", "--registry", local_registry, "resolve", "t/m", check=True)
    assert p.json["version"] == "v1"


def test_version_flag():
    p = run_omrw("--version", check=True)
    assert p.stdout.startswith("omrw ")

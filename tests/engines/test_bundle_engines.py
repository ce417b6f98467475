"""Bundles and mirrors from Snakemake: the rule library's omr_import and omr_mirror (through
`include:` and `module`), on real registries with real `omrw` and `python -m snakemake`.

An imported bundle makes its version resolvable in the target with the digest it had in the
source; a mirror run twice copies nothing the second time (`bytes_copied == 0`); a mirror by
lock file copies exactly what the lock (made by omr_lock in the same run) pins; a conflicting
version fails the job with omrw's exit code and leaves no output.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from .conftest import RULES, dry_run_jobs, omrw_cli, register_toy, run_snakemake

pytestmark = pytest.mark.snakemake
LIBRARY = RULES / "omr.smk"

INCLUDE = f"""
configfile: "config.yaml"
include: "{LIBRARY}"

rule all:
    default_target: True
    input: rules.omr_all.input
"""

MODULE = f"""
configfile: "config.yaml"

module omr:
    snakefile: "{LIBRARY}"
    config: config["omr"]

use rule * from omr

rule all:
    default_target: True
    input: rules.omr_all.input
"""


def workflow(tmp_path: Path, style: str, omr: dict) -> Path:
    work = tmp_path / f"wf-{style}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "Snakefile").write_text(textwrap.dedent(INCLUDE if style == "include" else MODULE))
    (work / "config.yaml").write_text(yaml.safe_dump({"omr": omr}))
    return work


def export(registry: str, bundle: Path, *refs: str) -> dict:
    return json.loads(omrw_cli("export", *refs, "-o", str(bundle), "--json", registry=registry).stdout)


def _json(path: Path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("style", ["include", "module"])
def test_import_makes_the_version_resolvable_with_the_same_digest(tmp_path, toy_registry, style):
    from omr_workflows.registry import Registry

    target = str(tmp_path / "target")
    work = workflow(tmp_path, style, {"registry": target, "targets": ["import"],
                                      "import": {"toy": {"bundle": "toy.tar", "aliases": True, "reason": "site copy"}}})
    exported = export(toy_registry.url, work / "toy.tar", "demo/toy@production")
    assert dry_run_jobs(work) == {"omr_import": 1, "all": 1}
    run_snakemake(work, "--cores", "1")

    out = _json(work / "omr/imported/toy.json")
    assert out["bundle_digest"] == exported["bundle_digest"]
    assert [(v["ref"], v["digest"], v["status"]) for v in out["versions"]] == [
        ("demo/toy@v1", toy_registry.v1_digest, "imported")]
    reg = Registry(target)
    assert reg.resolve("demo/toy@v1").digest == toy_registry.v1_digest
    assert reg.resolve("demo/toy@production").digest == toy_registry.v1_digest      # aliases: true
    (event,) = [e for e in reg.history("demo", "toy") if e["kind"] == "import"]
    assert (event["version"], event["digest"], event["reason"]) == ("v1", toy_registry.v1_digest, "site copy")
    assert (work / "omr/logs/import/toy.log").read_text().startswith("$ ")
    # The run records say the intake produced v1 (kind import) and moved its aliases.
    recs = [json.loads(p.read_text()) for p in (work / "omr/provenance/records/import-toy").glob("*.json")]
    assert ("import", "v1", toy_registry.v1_digest) in {(r["kind"], r["version"], r["digest"]) for r in recs}
    assert {r["alias"] for r in recs if r["kind"] == "promote"} >= {"production"}

    # importing the same bundle again is a no-op
    run_snakemake(work, "--cores", "1", "--forcerun", "omr_import")
    again = _json(work / "omr/imported/toy.json")
    assert [(v["status"], v["event_seq"]) for v in again["versions"]] == [("present", None)]
    assert (again["files_copied"], again["bytes_copied"]) == (0, 0)
    assert len([e for e in reg.history("demo", "toy") if e["kind"] == "import"]) == 1


def test_import_of_a_conflicting_version_fails_the_job(tmp_path, toy_registry):
    target = str(tmp_path / "target")
    register_toy(target, tmp_path / "other", "v1", "not the same bytes")
    work = workflow(tmp_path, "include", {"registry": target, "targets": ["import"],
                                          "import": {"toy": {"bundle": "toy.tar"}}})
    export(toy_registry.url, work / "toy.tar", "demo/toy@v1")
    proc = run_snakemake(work, "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "omr_import: omrw import exited 4" in proc.stdout + proc.stderr
    assert "demo/toy@v1" in (work / "omr/logs/import/toy.log").read_text()
    assert not (work / "omr/imported/toy.json").exists()


@pytest.mark.parametrize("style", ["include", "module"])
def test_mirror_twice_copies_nothing_the_second_time(tmp_path, toy_registry, style):
    from omr_workflows.registry import Registry

    target = str(tmp_path / "mirror")
    work = workflow(tmp_path, style, {"targets": ["mirror"], "mirror": {
        "toy": {"source": toy_registry.url, "target": target, "models": ["demo/toy"], "aliases": True, "jobs": 2}}})
    run_snakemake(work, "--cores", "2")
    first = _json(work / "omr/mirrored/toy.json")
    assert sorted((v["ref"], v["digest"], v["status"]) for v in first["versions"]) == [
        ("demo/toy@v1", toy_registry.v1_digest, "copied"), ("demo/toy@v2", toy_registry.v2_digest, "copied")]
    assert first["bytes_copied"] > 0 and first["files_copied"] > 0
    line = (work / "omr/logs/mirror/toy.log").read_text().splitlines()[0]
    assert "--model demo/toy --aliases --jobs 2" in line
    reg = Registry(target)
    assert reg.resolve("demo/toy@production").digest == toy_registry.v1_digest
    assert reg.resolve("demo/toy@v2").digest == toy_registry.v2_digest

    run_snakemake(work, "--cores", "2", "--forcerun", "omr_mirror")
    second = _json(work / "omr/mirrored/toy.json")
    assert sorted((v["ref"], v["status"]) for v in second["versions"]) == [
        ("demo/toy@v1", "present"), ("demo/toy@v2", "present")]
    assert (second["files_copied"], second["bytes_copied"]) == (0, 0)


def test_mirror_by_a_lock_made_in_the_same_run(tmp_path, toy_registry):
    from omr_workflows.registry import Registry

    target = str(tmp_path / "mirror")
    work = workflow(tmp_path, "include", {
        "registry": toy_registry.url, "models": {"toy": "demo/toy@production"}, "lock": "pins.lock.json",
        "targets": ["mirror"], "mirror": {"pinned": {"source": toy_registry.url, "target": target,
                                                     "lock": "pins.lock.json"}}})
    assert dry_run_jobs(work) == {"omr_lock": 1, "omr_mirror": 1, "all": 1}
    run_snakemake(work, "--cores", "1")
    out = _json(work / "omr/mirrored/pinned.json")
    assert [(v["ref"], v["digest"], v["status"]) for v in out["versions"]] == [
        ("demo/toy@v1", toy_registry.v1_digest, "copied")]
    assert Registry(target).resolve("demo/toy@v1").digest == toy_registry.v1_digest
    assert "--lock pins.lock.json" in (work / "omr/logs/mirror/pinned.log").read_text().splitlines()[0]


@pytest.mark.parametrize("entry, message", [
    ({"source": "a", "target": "b", "models": ["demo/toy"], "all": True}, "mirror.toy needs exactly one of"),
    ({"source": "a", "target": "b"}, "mirror.toy needs exactly one of"),
    ({"source": "a", "models": ["demo/toy"]}, "target"),
])
def test_bad_mirror_config_is_refused_before_anything_runs(tmp_path, entry, message):
    work = workflow(tmp_path, "include", {"targets": ["mirror"], "mirror": {"toy": entry}})
    proc = run_snakemake(work, "-n", "--cores", "1", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr

"""Acceptance 2: the `script:` blocks of OMR_VERIFYPLAN, then OMR_VERIFY once per shard of the plan,
then OMR_VERIFYMERGE (what the OMR_VERIFY_PARALLEL subworkflow runs, task by task) reproduce
`omrw verify --all`'s result, on a clean and on a corrupted registry, in both modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from omr_workflows.registry import Registry

from ..conftest import make_artifacts, run_omrw
from .conftest import read_json
from .harness import TaskFailed


@pytest.fixture
def registry(tmp_path) -> str:
    """Four versions of three models in two tasks; one 3 MB file so shards differ in bytes."""
    url = str(tmp_path / "registry")
    reg = Registry(url)
    for task, model, version, seed in (("cls", "a", "v1", "a"), ("cls", "a", "v2", "b"), ("cls", "b", "v1", "c"),
                                       ("seg", "c", "v1", "d")):
        files = None
        if model == "c":
            files = {"model.pt": bytes(range(256)) * 12288, "model_genes.txt": b"G1\nG2\n", "label_map.json": b"{}",
                     "metrics.json": b"{}", "feature_schema.json": b"{}"}
        pkg = make_artifacts(tmp_path / f"pkg-{task}-{model}-{version}", files=files, seed=seed)
        reg.register(task, model, version, str(pkg), reason="fixture")
    return url


def corrupt(registry: str) -> set[tuple[str, str]]:
    """One flipped byte (same size) and one truncation; returns the (version, path) pairs broken."""
    reg = Registry(registry)
    a = Path(reg.resolve("cls/a@v2").path) / "model.pt"
    data = bytearray(a.read_bytes())
    data[100] ^= 0x01
    a.chmod(0o644)
    a.write_bytes(bytes(data))
    c = Path(reg.resolve("seg/c@v1").path) / "model.pt"
    c.chmod(0o644)
    c.write_bytes(c.read_bytes()[:-10])
    return {("cls/a@v2", "model.pt"), ("seg/c@v1", "model.pt")}


def run_pipeline(run_task, registry: str, mode: str, shards: int, refs=None, between_shards=None):
    """The subworkflow's tasks in order; returns (plan header, shard results, merge result)."""
    refs = [] if refs is None else refs
    plan = run_task("verifyplan", {"meta": {"id": "all"}, "refs": refs, "mode": mode, "shards": shards}, registry)
    header = read_json(plan.outputs["plan"][3])
    n = header["shard_count"]
    shard_results = []
    for i in range(1, n + 1):                   # the subworkflow's flatMap: one task per shard of the plan
        if between_shards and i > 1:
            between_shards(i)
        shard_results.append(run_task("verify", {"meta": {"id": f"all_shard{i}of{n}"}, "refs": refs, "mode": mode,
                                                 "shard": f"{i}/{n}"}, registry))
    reports = [r.outputs["report"][1] for r in shard_results]
    merge = run_task("verifymerge", {"meta": {"id": "all"}, "reports": reports}, registry, check=False)
    return header, shard_results, merge


def direct(registry: str, mode: str):
    return run_omrw("verify", "--all", "--mode", mode, "--json", registry=registry)


def versions_of(doc) -> dict[str, tuple[str, str]]:
    return {v["ref"]: (v["result"], v["digest"]) for v in doc["versions"]}


def failures_of(doc) -> set[tuple[str, str, str]]:
    return {(f["version"], f["path"], f["kind"]) for f in doc["failures"]}


@pytest.mark.parametrize("mode", ["fast", "strict"])
def test_clean_registry(run_task, registry, mode):
    expected = direct(registry, mode)
    assert expected.returncode == 0, expected.stderr
    header, shards, merge = run_pipeline(run_task, registry, mode, shards=3)
    assert merge.returncode == 0, merge.stderr
    merged = read_json(merge.workdir / "all.verify-merge.json")
    assert merged["ok"] is True and expected.json["ok"] is True
    assert versions_of(merged) == versions_of(expected.json)
    assert set(versions_of(merged)) == {"cls/a@v1", "cls/a@v2", "cls/b@v1", "seg/c@v1"}
    assert merged["units"] == expected.json["units"]
    assert merged["plan_digest"] == header["plan_digest"]
    # the byte-balanced shards each did a share of the work
    assert len(shards) == 3 and all(read_json(s.outputs["json"][1])["units"] > 0 for s in shards)
    # exactly one verify record per version across the shard tasks and the merge task
    from omr_workflows.runrecord import parse_record

    records = []
    for r in [*shards, merge]:
        records += [parse_record(p.read_bytes(), str(p)) for p in sorted((r.workdir / "omr_provenance").glob("*.json"))]
    assert sorted(f"{x.task}/{x.model}@{x.version}" for x in records) == sorted(versions_of(expected.json))
    assert {(x.kind, x.verified) for x in records} == {("verify", mode)}


@pytest.mark.parametrize("mode", ["fast", "strict"])
def test_corrupted_registry(run_task, registry, mode):
    broken = corrupt(registry)
    expected = direct(registry, mode)
    assert expected.returncode == 1
    assert {(v, p) for v, p, _ in failures_of(expected.json)} == broken
    header, shards, merge = run_pipeline(run_task, registry, mode, shards=3)
    # every shard task succeeded (its report is evidence, not the verdict) ...
    assert all(s.returncode == 0 for s in shards)
    # ... and the merge fails the run, with the same failures as `omrw verify --all`
    assert merge.returncode == 1
    merged = read_json(merge.workdir / "all.verify-merge.json")
    assert merged["ok"] is False
    assert failures_of(merged) == failures_of(expected.json)
    assert versions_of(merged) == versions_of(expected.json)
    # the failed task's error output names every bad file (what Nextflow shows when the run fails)
    for version, path in broken:
        assert f"FAIL {version}: {path}" in merge.stderr
    assert merge.outputs == {}               # Nextflow emits nothing from a failed task


def test_missing_shard_fails_the_merge(run_task, registry):
    header, shards, _ = run_pipeline(run_task, registry, "fast", shards=3)
    reports = [s.outputs["report"][1] for s in shards[:2]]
    with pytest.raises(TaskFailed, match="exited 1") as e:
        run_task("verifymerge", {"meta": {"id": "partial"}, "reports": reports}, registry)
    assert "missing shard(s) 3/3" in e.value.result.stderr


def test_registry_change_between_shards_fails_the_merge(run_task, registry, tmp_path):
    """A version registered while shards run changes the plan; the merge notices."""
    def register_more(i):
        if i == 2:
            pkg = make_artifacts(tmp_path / "late", seed="z")
            Registry(registry).register("cls", "a", "v3", str(pkg), reason="late")

    _, shards, merge = run_pipeline(run_task, registry, "fast", shards=2, between_shards=register_more)
    assert merge.returncode == 1
    assert "different plans" in merge.stderr


def test_one_model_scope(run_task, registry):
    """refs = ['--model', 'TASK/MODEL'] narrows plan and shards alike."""
    header, shards, merge = run_pipeline(run_task, registry, "fast", shards=2, refs=["--model", "cls/a"])
    assert merge.returncode == 0, merge.stderr
    assert header["versions"] == 2
    assert set(versions_of(read_json(merge.workdir / "all.verify-merge.json"))) == {"cls/a@v1", "cls/a@v2"}

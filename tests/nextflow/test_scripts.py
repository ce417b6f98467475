"""Each module's `script:` block, run in bash with Nextflow's variables bound (harness.py), against a
real registry: it produces every declared output, and the outputs hold what they claim. Each
`stub:` creates every output. A failing `omrw` fails the task under Nextflow's default shell
(`bash -ue`) and under nf-core's (`bash -euo pipefail`)."""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

import pytest

from omr_workflows.registry import Registry

from .conftest import MODEL, MODULE_DIRS, TOY_MODEL, module_main, read_json
from .harness import NEXTFLOW_DEFAULT_SHELL, NFCORE_SHELL, PIPEFAIL_SHELL, TaskFailed, bin_dir
from .nfparse import load_process

VERSION = importlib.metadata.version("omr-workflows")


def record(path) -> "object":
    from omr_workflows.runrecord import parse_record

    return parse_record(Path(path).read_bytes(), str(path))


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------- resolve / fetch


def test_resolve(run_task, toy_registry):
    res = Registry(toy_registry).resolve(f"{MODEL}@production")
    r = run_task("resolve", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@production"}, toy_registry, shell=NFCORE_SHELL)
    meta, json_path = r.outputs["json"]
    assert meta == {"id": "pbmc"} and json_path.name == "pbmc.resolve.json"
    doc = read_json(json_path)
    assert (doc["version"], doc["digest"], doc["selector_kind"]) == ("v1", res.digest, "alias")
    assert r.outputs["pinned"] == ({"id": "pbmc"}, f"{MODEL}@{res.digest}")
    rec = record(r.outputs["provenance"])
    assert (rec.kind, rec.ref, rec.version, rec.digest, rec.engine) == ("resolve", f"{MODEL}@production", "v1",
                                                                        res.digest, "nextflow")
    assert rec.hints["NXF_TASK_NAME"] == "OMR_RESOLVE (pbmc)"
    assert r.outputs["versions_omrw"] == ("OMR_RESOLVE", "omrw", VERSION)
    assert r.topics["omr_provenance"] == [r.outputs["provenance"]]
    assert r.topics["versions"] == [("OMR_RESOLVE", "omrw", VERSION)]


def test_resolve_ext_args_and_prefix(run_task, toy_registry):
    r = run_task("resolve", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@v2#metrics.json"}, toy_registry,
                 ext={"args": "--verify strict", "prefix": "custom"})
    assert r.outputs["json"][1].name == "custom.resolve.json"
    assert record(r.outputs["provenance"]).verified == "strict"
    digest = Registry(toy_registry).resolve(f"{MODEL}@v2").digest
    assert r.outputs["pinned"][1] == f"{MODEL}@{digest}#metrics.json"


def test_pinned_ref_resolves_to_the_same_bytes_after_the_alias_moves(run_task, toy_registry):
    r = run_task("resolve", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@production"}, toy_registry)
    pinned = r.outputs["pinned"][1]
    Registry(toy_registry).promote(f"{MODEL}@v2", "production", reason="move")
    again = run_task("resolve", {"meta": {"id": "pbmc"}, "ref": pinned}, toy_registry)
    assert read_json(again.outputs["json"][1])["version"] == "v1"


def test_resolve_not_found_fails_the_task(run_task, toy_registry):
    with pytest.raises(TaskFailed, match="exited 3"):
        run_task("resolve", {"meta": {"id": "x"}, "ref": "celltype/nosuch@production"}, toy_registry)


def test_fetch_copies_the_version(run_task, toy_registry):
    res = Registry(toy_registry).resolve(f"{MODEL}@production")
    r = run_task("fetch", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@production"}, toy_registry)
    meta, model_dir = r.outputs["model"]
    assert model_dir.is_dir() and not model_dir.is_symlink()
    assert files_of(model_dir) == files_of(Path(res.path))
    some = model_dir / "model.pt"
    assert os.stat(some).st_ino != os.stat(Path(res.path) / "model.pt").st_ino   # a copy, not a link
    assert record(r.outputs["provenance"]).kind == "resolve"


def test_fetch_one_file(run_task, toy_registry):
    r = run_task("fetch", {"meta": {"id": "labels"}, "ref": f"{MODEL}@v1#label_map.json"}, toy_registry)
    model_dir = r.outputs["model"][1]
    assert files_of(model_dir) == {"label_map.json": (TOY_MODEL / "label_map.json").read_bytes()}


# ---------------------------------------------------------------------------- register / promote / lock


def test_register_stages_artifacts_and_publishes(run_task, toy_registry, tmp_path):
    r = run_task("register", {"meta": {"id": "v3"}, "model": MODEL, "version": "v3", "artifacts": str(TOY_MODEL)},
                 toy_registry, ext={"args": "--no-provenance --alias staging"})
    assert (r.workdir / "toy_model").is_symlink()          # staged like Nextflow stages a folder
    doc = read_json(r.outputs["json"][1])
    res = Registry(toy_registry).resolve(f"{MODEL}@staging")
    assert (doc["version"], doc["digest"]) == ("v3", res.digest)
    (record,) = r.topics["omr_provenance"]                  # the version it produced, for the run report
    rec = read_json(record)
    assert (rec["kind"], rec["version"], rec["digest"], rec["engine"]) == ("register", "v3", res.digest, "nextflow")


def test_register_existing_version_fails_with_conflict(run_task, toy_registry):
    with pytest.raises(TaskFailed, match="exited 4") as e:
        run_task("register", {"meta": {"id": "v1"}, "model": MODEL, "version": "v1", "artifacts": str(TOY_MODEL)},
                 toy_registry, ext={"args": "--no-provenance"})
    assert "already exists" in e.value.result.stderr


def test_promote(run_task, toy_registry):
    r = run_task("promote", {"meta": {"id": "p"}, "ref": f"{MODEL}@v2", "alias": "production"}, toy_registry,
                 ext={"args": "--reason 'validated in nextflow'"})
    event = read_json(r.outputs["json"][1])
    assert (event["alias"], event["version"], event["from_version"]) == ("production", "v2", "v1")
    assert event["reason"] == "validated in nextflow"
    assert Registry(toy_registry).resolve(f"{MODEL}@production").version == "v2"


def test_lock_pins_and_resolve_honours_it(run_task, toy_registry, omrw):
    from omr_workflows.lockfile import LockFile

    r = run_task("lock", {"meta": {"id": "pins"}, "refs": [f"{MODEL}@production", f"{MODEL}@latest"]}, toy_registry)
    lock_path = r.outputs["lock"][1]
    lock = LockFile.model_validate_json(lock_path.read_text())
    assert {(e.ref, e.version) for e in lock.entries} == {(f"{MODEL}@production", "v1"), (f"{MODEL}@latest", "v2")}
    Registry(toy_registry).promote(f"{MODEL}@v2", "production", reason="move")
    out = omrw("resolve", f"{MODEL}@production", "--lock", str(lock_path), "--json", registry=toy_registry,
               check=True)
    assert out.json["version"] == "v1"


# ---------------------------------------------------------------------------- import / mirror


def test_import_publishes_the_bundle_s_version(run_task, toy_registry, omrw, tmp_path):
    digest = Registry(toy_registry).resolve(f"{MODEL}@v1").digest
    bundle = tmp_path / "pbmc.bundle"
    omrw("export", f"{MODEL}@v1", "-o", str(bundle), "--json", registry=toy_registry, check=True)
    target = str(tmp_path / "target")
    r = run_task("import", {"meta": {"id": "pbmc"}, "bundle": str(bundle)}, target,
                 ext={"args": "--reason 'nextflow import'"})
    assert (r.workdir / "pbmc.bundle").is_symlink()          # staged like Nextflow stages a file
    meta, json_path = r.outputs["json"]
    assert meta == {"id": "pbmc"} and json_path.name == "pbmc.import.json"
    doc = read_json(json_path)
    assert [(v["ref"], v["digest"], v["status"]) for v in doc["versions"]] == [(f"{MODEL}@v1", digest, "imported")]
    assert Registry(target).resolve(f"{MODEL}@v1").digest == digest
    assert r.outputs["versions_omrw"] == ("OMR_IMPORT", "omrw", VERSION)
    (rec,) = r.topics["omr_provenance"]                     # what the intake brought in, for the run report
    assert (record(rec).kind, record(rec).digest) == ("import", digest)


def test_mirror_copies_between_two_registries(run_task, toy_registry, tmp_path):
    target = str(tmp_path / "mirror")
    r = run_task("mirror", {"meta": {"id": "m"}, "source": toy_registry, "target": target, "models": [MODEL],
                            "lock": []}, shell=NFCORE_SHELL)
    doc = read_json(r.outputs["json"][1])
    src = Registry(toy_registry)
    assert sorted((v["ref"], v["digest"], v["status"]) for v in doc["versions"]) == [
        (f"{MODEL}@{v}", src.resolve(f"{MODEL}@{v}").digest, "copied") for v in ("v1", "v2")]
    assert (doc["source"], doc["target"]) == (toy_registry, target)
    assert Registry(target).resolve(f"{MODEL}@v2").digest == src.resolve(f"{MODEL}@v2").digest
    assert r.outputs["versions_omrw"] == ("OMR_MIRROR", "omrw", VERSION)


# ---------------------------------------------------------------------------- verify


def corrupt(registry: str, version: str, name: str = "model.pt", data: bytes = b"flipped") -> None:
    path = Path(Registry(registry).resolve(f"{MODEL}@{version}").path) / name
    path.chmod(0o644)
    path.write_bytes(data)


def test_verify_plan(run_task, toy_registry):
    r = run_task("verifyplan", {"meta": {"id": "all"}, "refs": [], "mode": "fast", "shards": 3}, toy_registry)
    meta, refs, mode, plan = r.outputs["plan"]
    header = read_json(plan)
    assert (refs, mode, header["shard_count"], header["mode"]) == ([], "fast", 3, "fast")
    assert [s["index"] for s in header["shards"]] == [1, 2, 3]
    assert header["versions"] == 2


def test_verify_whole_clean(run_task, toy_registry):
    r = run_task("verify", {"meta": {"id": "all"}, "refs": [f"{MODEL}@v1", f"{MODEL}@v2"], "mode": "strict",
                            "shard": "1/1"}, toy_registry)
    report = read_json(r.outputs["report"][1])
    assert report["units"] and all(u["result"] == "ok" for u in report["units"])
    recs = [record(p) for p in (r.outputs["provenance"] if isinstance(r.outputs["provenance"], list)
                                else [r.outputs["provenance"]])]
    assert sorted((x.kind, x.version, x.verified) for x in recs) == [("verify", "v1", "strict"),
                                                                   ("verify", "v2", "strict")]


def test_verify_whole_run_fails_on_a_mismatch(run_task, toy_registry):
    corrupt(toy_registry, "v2")
    with pytest.raises(TaskFailed, match="exited 1") as e:
        run_task("verify", {"meta": {"id": "all"}, "refs": [], "mode": "fast", "shard": "1/1"}, toy_registry)
    assert f"FAIL {MODEL}@v2: model.pt" in e.value.result.stderr


def test_verify_shard_with_a_mismatch_leaves_the_verdict_to_the_merge(run_task, toy_registry):
    corrupt(toy_registry, "v2")
    failed_units = []
    for i in (1, 2):
        r = run_task("verify", {"meta": {"id": f"s{i}"}, "refs": [], "mode": "fast", "shard": f"{i}/2"},
                     toy_registry)
        failed_units += [u for u in read_json(r.outputs["report"][1])["units"] if u["result"] != "ok"]
    assert failed_units and {u["version"] for u in failed_units} == {f"{MODEL}@v2"}


def test_verify_bad_shard_fails_the_task(run_task, toy_registry):
    with pytest.raises(TaskFailed, match="exited 2"):
        run_task("verify", {"meta": {"id": "s"}, "refs": [], "mode": "fast", "shard": "3/2"}, toy_registry)


# ---------------------------------------------------------------------------- provenance


def test_provenance_collect(run_task, toy_registry):
    records = []
    for ref in (f"{MODEL}@production", f"{MODEL}@v1", f"{MODEL}@latest"):
        records.append(run_task("resolve", {"meta": {"id": "m"}, "ref": ref}, toy_registry).outputs["provenance"])
    r = run_task("provenancecollect", {"meta": {"id": "omr_provenance"}, "records": records}, toy_registry)
    report = read_json(r.outputs["json"][1])
    assert sorted((m["version"], len(m["uses"])) for m in report["models"]) == [("v1", 2), ("v2", 1)]
    assert report["run"]["engines"] == ["nextflow"]
    html = r.outputs["html"][1].read_text()
    assert "celltype" in html and "v2" in html
    crate = read_json(r.outputs["crate"][1])
    versions = [e for e in crate["@graph"] if e["@type"] == "Dataset" and e.get("version") in ("v1", "v2")]
    assert {v["version"] for v in versions} == {"v1", "v2"}
    assert "omr_provenance" not in r.topics            # the sink emits nothing on its own topic


def test_provenance_collect_with_no_records(run_task, tmp_path):
    r = run_task("provenancecollect", {"meta": {"id": "omr_provenance"}, "records": []})
    assert read_json(r.outputs["json"][1])["models"] == []


# ---------------------------------------------------------------------------- every module


def generic_inputs(name: str) -> dict:
    meta = {"id": "t"}
    return {
        "resolve": {"meta": meta, "ref": f"{MODEL}@production"},
        "fetch": {"meta": meta, "ref": f"{MODEL}@production"},
        "register": {"meta": meta, "model": MODEL, "version": "v9", "artifacts": str(TOY_MODEL)},
        "promote": {"meta": meta, "ref": f"{MODEL}@v1", "alias": "staging"},
        # any file stands for the approver's key: the stub and the failing fake omrw never read it
        "approve": {"meta": meta, "ref": f"{MODEL}@v2", "alias": "production", "key": str(TOY_MODEL / "label_map.json")},
        "lock": {"meta": meta, "refs": [f"{MODEL}@production"]},
        # any file stands for the bundle: the stub and the failing fake omrw never read it
        "import": {"meta": meta, "bundle": str(TOY_MODEL / "label_map.json")},
        "mirror": {"meta": meta, "source": "src-registry", "target": "dst-registry", "models": [], "lock": []},
        "verifyplan": {"meta": meta, "refs": [], "mode": "fast", "shards": 2},
        "verify": {"meta": meta, "refs": [], "mode": "fast", "shard": "1/2"},
        "verifymerge": {"meta": meta, "reports": [str(TOY_MODEL / "metrics.json")]},
        "provenancecollect": {"meta": meta, "records": []},
    }[name]


NAMES = [d.name for d in MODULE_DIRS]


def test_every_module_has_generic_inputs():
    assert set(NAMES) == {"resolve", "fetch", "register", "promote", "approve", "import", "mirror", "lock",
                          "verifyplan", "verify", "verifymerge", "provenancecollect"}


@pytest.mark.parametrize("name", NAMES)
def test_stub_creates_every_output(run_task, name):
    r = run_task(name, generic_inputs(name), stub=True, shell=NFCORE_SHELL)
    proc = load_process(module_main(name))
    declared = [d.emit for d in proc.outputs]
    assert sorted(r.outputs) == sorted(declared)
    for d in proc.outputs:
        if d.options.get("optional") != "true":
            assert r.outputs[d.emit] is not None, d.emit
    # stub outputs that downstream Groovy code parses are valid JSON
    for value in r.outputs.values():
        for item in (value if isinstance(value, tuple) else (value,)):
            if isinstance(item, Path) and item.suffix == ".json":
                json.loads(item.read_text())


@pytest.mark.parametrize("shell", [NEXTFLOW_DEFAULT_SHELL, PIPEFAIL_SHELL], ids=["bash-ue", "bash-euo-pipefail"])
@pytest.mark.parametrize("name", NAMES)
def test_a_failing_omrw_fails_the_task(run_task, tmp_path, name, shell):
    """Failure injection: an `omrw` that fails every command (but --version) first on PATH."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "omrw").write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "omrw 0.0"; exit 0; }\n'
                               'echo "omrw: error: injected failure" >&2\nexit 5\n')
    (fake / "omrw").chmod(0o755)
    path = f"{fake}{os.pathsep}{bin_dir()}{os.pathsep}{os.environ['PATH']}"
    with pytest.raises(TaskFailed, match="exited 5") as e:
        run_task(name, generic_inputs(name), env={"PATH": path}, shell=shell)
    assert "injected failure" in e.value.result.stderr
    assert e.value.result.outputs == {}


def test_a_shard_mismatch_without_a_report_still_fails(run_task, tmp_path):
    """Exit 1 of a shard is only deferred to the merge when the shard wrote its report."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "omrw").write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "omrw 0.0"; exit 0; }\nexit 1\n')
    (fake / "omrw").chmod(0o755)
    path = f"{fake}{os.pathsep}{bin_dir()}{os.pathsep}{os.environ['PATH']}"
    with pytest.raises(TaskFailed, match="exited 1"):
        run_task("verify", generic_inputs("verify"), env={"PATH": path})

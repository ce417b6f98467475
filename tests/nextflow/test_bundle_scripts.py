"""OMR_IMPORT and OMR_MIRROR: their script blocks run in bash with Nextflow's variables bound
(harness.py) against real registries and a real bundle from `omrw export`.

An imported bundle makes its versions resolvable in the target with the source's digests (and,
with `--aliases` in ext.args, its aliases); importing it again is a no-op. A mirror run twice
copies nothing the second time (`bytes_copied == 0`); a staged lock file selects exactly what it
pins. A conflicting version fails the task with exit 4, a damaged bundle with exit 1, and in both
cases nothing is published.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from omr_workflows.registry import Registry

from .conftest import MODEL, read_json
from .harness import NEXTFLOW_DEFAULT_SHELL, NFCORE_SHELL, TaskFailed


def export(omrw, registry: str, bundle: Path, *refs: str) -> dict:
    return omrw("export", *refs, "-o", str(bundle), "--json", registry=registry, check=True).json


def digests(registry: str, *versions: str) -> dict[str, str]:
    reg = Registry(registry)
    return {f"{MODEL}@{v}": reg.resolve(f"{MODEL}@{v}").digest for v in versions}


def import_task(run_task, bundle: Path, target: str, **kw):
    return run_task("import", {"meta": {"id": "pbmc"}, "bundle": str(bundle)}, target, **kw)


def mirror_task(run_task, source: str, target: str, models=(MODEL,), lock=None, **kw):
    return run_task("mirror", {"meta": {"id": "m"}, "source": source, "target": target, "models": list(models),
                               "lock": str(lock) if lock else []}, **kw)


def _paths(value) -> list:
    return value if isinstance(value, list) else ([value] if value else [])


def _record(path):
    from omr_workflows.runrecord import parse_record

    return parse_record(Path(path).read_bytes(), str(path))


# ---------------------------------------------------------------------------- import


def test_import_makes_the_versions_resolvable_with_the_same_digests(run_task, toy_registry, omrw, tmp_path):
    want = digests(toy_registry, "v1", "v2")
    bundle = tmp_path / "pbmc.tar"
    exported = export(omrw, toy_registry, bundle, f"{MODEL}@production", f"{MODEL}@v2")
    target = str(tmp_path / "target")
    r = import_task(run_task, bundle, target, ext={"args": "--aliases --reason 'offline copy'"}, shell=NFCORE_SHELL)
    doc = read_json(r.outputs["json"][1])
    assert doc["bundle_digest"] == exported["bundle_digest"]
    assert {v["ref"]: (v["digest"], v["status"]) for v in doc["versions"]} == {
        ref: (d, "imported") for ref, d in want.items()}
    assert doc["bytes_copied"] > 0
    reg = Registry(target)
    for ref, d in want.items():
        assert reg.resolve(ref).digest == d
    assert reg.resolve(f"{MODEL}@production").digest == want[f"{MODEL}@v1"]      # --aliases
    events = [e for e in reg.history("celltype", "pbmc") if e["kind"] == "import"]
    assert sorted(e["version"] for e in events) == ["v1", "v2"]
    assert {e["reason"] for e in events} == {"offline copy"}
    # The run report says which versions the intake produced, and which alias it moved.
    recs = [_record(p) for p in _paths(r.outputs["provenance"])]
    moved = sorted(("promote", a["version"], a["alias"]) for a in doc["aliases"] if a["status"] == "moved")
    assert ("promote", "v1", "production") in moved
    assert sorted((x.kind, x.version, x.alias) for x in recs) == sorted(
        [("import", "v1", None), ("import", "v2", None), *moved])
    assert {x.digest for x in recs if x.kind == "import"} == set(want.values())

    again = import_task(run_task, bundle, target)
    doc = read_json(again.outputs["json"][1])
    assert {v["status"] for v in doc["versions"]} == {"present"}
    assert (doc["files_copied"], doc["bytes_copied"]) == (0, 0)
    assert not again.outputs.get("provenance")  # nothing brought in: no record (the output is optional)


def test_import_ext_prefix_and_trust_none(run_task, toy_registry, omrw, tmp_path):
    bundle = tmp_path / "b.tar"
    export(omrw, toy_registry, bundle, f"{MODEL}@v1")
    r = import_task(run_task, bundle, str(tmp_path / "target"), ext={"prefix": "custom", "trust": "none"})
    assert r.outputs["json"][1].name == "custom.import.json"
    assert "--trust 'none'" in r.script


@pytest.mark.parametrize("shell", [NEXTFLOW_DEFAULT_SHELL, NFCORE_SHELL], ids=["bash-ue", "nf-core"])
def test_import_of_a_conflicting_version_fails_with_exit_4(run_task, toy_registry, omrw, tmp_path, shell):
    bundle = tmp_path / "b.tar"
    export(omrw, toy_registry, bundle, f"{MODEL}@v1")
    target = str(tmp_path / "target")
    other = tmp_path / "other"
    other.mkdir()
    (other / "model.json").write_text('{"not": "the same bytes"}\n')
    Registry(target).register("celltype", "pbmc", "v1", str(other), reason="conflict")
    with pytest.raises(TaskFailed, match="exited 4") as e:
        import_task(run_task, bundle, target, shell=shell)
    assert f"{MODEL}@v1" in e.value.result.stderr


def test_import_of_a_damaged_bundle_fails_and_publishes_nothing(run_task, toy_registry, omrw, tmp_path):
    bundle = tmp_path / "b.tar"
    export(omrw, toy_registry, bundle, f"{MODEL}@v1", f"{MODEL}@v2")
    with tarfile.open(bundle) as tar:
        member = next(m for m in tar.getmembers() if m.isfile() and m.name.endswith("model.pt"))
    data = bytearray(bundle.read_bytes())
    data[member.offset_data] ^= 0xFF                        # one flipped byte inside a model file
    bundle.write_bytes(bytes(data))
    target = str(tmp_path / "target")
    with pytest.raises(TaskFailed, match="exited 1") as e:
        import_task(run_task, bundle, target)
    assert "model.pt" in e.value.result.stderr
    for v in ("v1", "v2"):                                  # checked before anything became visible
        assert omrw("resolve", f"{MODEL}@{v}", "--json", registry=target).returncode == 3


# ---------------------------------------------------------------------------- mirror


def test_mirror_twice_copies_nothing_the_second_time(run_task, toy_registry, tmp_path):
    want = digests(toy_registry, "v1", "v2")
    target = str(tmp_path / "mirror")
    first_task = mirror_task(run_task, toy_registry, target, ext={"args": "--aliases --jobs 2"})
    first = read_json(first_task.outputs["json"][1])
    assert {v["ref"]: (v["digest"], v["status"]) for v in first["versions"]} == {
        ref: (d, "copied") for ref, d in want.items()}
    assert first["bytes_copied"] > 0
    reg = Registry(target)
    assert reg.resolve(f"{MODEL}@production").digest == want[f"{MODEL}@v1"]
    assert reg.resolve(f"{MODEL}@v2").digest == want[f"{MODEL}@v2"]

    assert sorted(_record(p).version for p in _paths(first_task.outputs["provenance"])
                  if _record(p).kind == "import") == ["v1", "v2"]

    second = read_json(mirror_task(run_task, toy_registry, target).outputs["json"][1])
    assert {v["ref"]: v["status"] for v in second["versions"]} == {ref: "present" for ref in want}
    assert (second["files_copied"], second["bytes_copied"]) == (0, 0)


def test_mirror_all_when_no_models_and_no_lock(run_task, toy_registry, tmp_path):
    r = mirror_task(run_task, toy_registry, str(tmp_path / "mirror"), models=())
    assert "--all" in r.script
    assert sorted(v["ref"] for v in read_json(r.outputs["json"][1])["versions"]) == [f"{MODEL}@v1", f"{MODEL}@v2"]


def test_mirror_by_a_staged_lock_copies_what_it_pins(run_task, toy_registry, omrw, tmp_path):
    lock = tmp_path / "pins.lock.json"
    omrw("lock", f"{MODEL}@production", "-o", str(lock), "--json", registry=toy_registry, check=True)
    target = str(tmp_path / "mirror")
    r = mirror_task(run_task, toy_registry, target, models=(), lock=lock)
    assert (r.workdir / "pins.lock.json").is_symlink() and "--lock pins.lock.json" in r.script
    doc = read_json(r.outputs["json"][1])
    assert [(v["ref"], v["status"]) for v in doc["versions"]] == [(f"{MODEL}@v1", "copied")]
    assert omrw("resolve", f"{MODEL}@v2", "--json", registry=target).returncode == 3


def test_mirror_of_a_missing_model_fails_the_task(run_task, toy_registry, tmp_path):
    with pytest.raises(TaskFailed, match=r"exited [1-9]") as e:
        mirror_task(run_task, toy_registry, str(tmp_path / "mirror"), models=("celltype/nosuch",))
    assert "nosuch" in e.value.result.stderr


def test_mirror_stub(run_task, tmp_path):
    r = mirror_task(run_task, "/data/registry", "/mirror/registry", stub=True)
    doc = read_json(r.outputs["json"][1])
    assert (doc["source"], doc["target"], doc["bytes_copied"]) == ("/data/registry", "/mirror/registry", 0)

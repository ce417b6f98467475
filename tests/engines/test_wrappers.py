"""Every wrapper's `test/Snakefile`, run through one harness (as snakemake-wrappers does).

Each test copies `snakemake_rules/wrappers/omr/<op>/test/` into a temp dir, points
OMR_REGISTRY at a fresh registry holding demo/toy (v1 in production, v2 registered), runs
`python -m snakemake --cores 1 --wrapper-prefix file:<wrappers>/`, prints every log on
failure, and checks the outputs against the registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import WRAPPERS, govern, omrw_cli, run_snakemake

pytestmark = pytest.mark.snakemake

OPS = sorted(p.parent.parent.name for p in (WRAPPERS / "omr").glob("*/test/Snakefile"))


def test_every_wrapper_has_the_same_shape():
    ops = sorted(p.name for p in (WRAPPERS / "omr").iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    assert ops == ["approve", "fetch", "import", "lock", "mirror", "promote", "provenance", "register", "resolve",
                   "verify", "verify_merge"]
    import yaml

    for op in ops:
        d = WRAPPERS / "omr" / op
        for name in ("wrapper.py", "environment.yaml", "meta.yaml", "test/Snakefile"):
            assert (d / name).is_file(), f"{op}/{name} missing"
        meta = yaml.safe_load((d / "meta.yaml").read_text())
        for key in ("name", "description", "url", "authors", "input", "output", "params", "notes"):
            assert key in meta, f"{op}/meta.yaml lacks {key}"
        assert meta["name"] == f"omr {op}"
        assert "omr-workflows" in (d / "environment.yaml").read_text()


def _copy_test(op: str, tmp_path: Path) -> Path:
    work = tmp_path / "test"
    shutil.copytree(WRAPPERS / "omr" / op / "test", work)
    return work


def _json(path: Path):
    return json.loads(path.read_text())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _records(work: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((work / "provenance" / "records").glob("*.json"))]


def check_resolve(work: Path, reg) -> None:
    doc = _json(work / "resolved/toy.json")
    assert (doc["version"], doc["selector_kind"], doc["digest"]) == ("v1", "alias", reg.v1_digest)
    assert doc["verified"] == "fast"
    assert doc["uri"] == "omr://demo/toy@v1"
    one = _json(work / "resolved/toy_file.json")
    assert one["file"] == "model.json" and Path(one["file_path"]).is_file()
    log = (work / "logs/resolve_toy.log").read_text()
    assert log.startswith("$ ") and "resolve demo/toy@production --verify fast --json" in log.splitlines()[0]
    records = _records(work)
    assert records, "resolve wrote no provenance record into params.provenance_dir"
    assert any(reg.v1_digest in json.dumps(r) for r in records)


def check_fetch(work: Path, reg) -> None:
    from omr_workflows.registry import Registry

    src = Path(Registry(reg.url).resolve("demo/toy@v1").path)
    folder = work / "models/toy"
    assert folder.is_dir() and not folder.is_symlink()
    assert sorted(p.name for p in folder.iterdir() if p.name != ".snakemake_timestamp") == sorted(
        p.name for p in src.iterdir())
    assert _sha(folder / "model.json") == _sha(src / "model.json")
    assert not (folder / "model.json").samefile(src / "model.json")
    assert (work / "models/model.json").read_bytes() == (src / "model.json").read_bytes()
    pinned = work / "models/pinned"
    assert pinned.is_dir() and not pinned.is_symlink()
    assert (pinned / "model.json").is_symlink() and (pinned / "model.json").resolve() == (src / "model.json").resolve()
    # Snakemake's directory marker went into the job's folder, not into the registry
    assert not (src / ".snakemake_timestamp").exists()
    assert sorted(p.name for p in src.iterdir()) == sorted(
        p.name for p in pinned.iterdir() if p.name != ".snakemake_timestamp")


def check_register(work: Path, reg) -> None:
    from omr_workflows.registry import Registry

    doc = _json(work / "registered/toy.json")
    assert (doc["task"], doc["model_name"], doc["version"]) == ("demo", "registered", "t1")
    assert "staging" in doc["aliases"]
    res = Registry(reg.url).resolve("demo/registered@staging")
    assert res.version == "t1" and res.digest == doc["digest"]
    assert (Path(res.path) / "model.json").read_bytes() == (work / "artifacts/model.json").read_bytes()
    meta = json.loads((Path(res.path) / "model_meta.json").read_text())
    assert "euclidean" in json.dumps(meta)


def check_promote(work: Path, reg) -> None:
    from omr_workflows.registry import Registry

    ev = _json(work / "promoted/toy-v2-production.json")
    assert (ev["version"], ev["alias"], ev["from_version"]) == ("v2", "production", "v1")
    assert ev["reason"] == "better validation accuracy"
    assert Registry(reg.url).resolve("demo/toy@production").version == "v2"


def check_lock(work: Path, reg) -> None:
    lock = (work / "omr.lock.json").read_text()
    assert reg.v1_digest in lock and "v1" in lock
    assert _json(work / "resolved/toy-locked.json")["digest"] == reg.v1_digest


def _report_units(doc) -> str:
    return json.dumps(doc)


def check_verify(work: Path, reg) -> None:
    shards = [_json(work / f"verify/shard-{i}-of-2.json") for i in (1, 2)]
    text = _report_units(shards)
    for name in ("model.json", "labels.txt"):
        assert name in text, f"no shard report mentions {name}"
    assert "v1" in json.dumps(_json(work / "verify/toy.json"))


def check_verify_merge(work: Path, reg) -> None:
    merged = _json(work / "verify/merged.json")
    assert merged
    assert len(list((work / "verify/shards").glob("*.json"))) == 3


def check_provenance(work: Path, reg) -> None:
    html = (work / "provenance/omr_provenance.html").read_text()
    assert "demo/toy" in html and reg.v1_digest in html and "v1" in html
    crate = _json(work / "provenance/ro-crate-metadata.json")
    assert reg.v1_digest.split(":", 1)[1] in json.dumps(crate)
    summary = _json(work / "provenance/omr_provenance.json")
    assert reg.v1_digest in json.dumps(summary)


def setup_approve(work: Path, reg) -> None:
    """The registry under a policy protecting production (one approval); a registers v3 (signed)
    and requests it there; the test folder gets b's key as keys/approver.key and the trust root
    as trust.json."""
    from .conftest import toy_files

    gov = govern(reg.url, work.parent / "gov", signers=("a", "b"), approvals=1)
    art = work.parent / "art-v3"
    art.mkdir()
    for rel, data in toy_files("three").items():
        (art / rel).write_bytes(data)
    omrw_cli("register", "demo/toy", "--version", "v3", "--artifacts", str(art), "--no-provenance",
             "--key", str(gov.keys["a"]), "--json", registry=reg.url)
    out = omrw_cli("promote", "demo/toy@v3", "--to", "production", "--key", str(gov.keys["a"]), "--json",
                   registry=reg.url)
    assert json.loads(out.stdout)["moved"] is False
    (work / "keys").mkdir()
    shutil.copyfile(gov.keys["b"], work / "keys/approver.key")
    shutil.copyfile(gov.trust, work / "trust.json")


def check_approve(work: Path, reg) -> None:
    from omr_workflows.policy import load_trust_file
    from omr_workflows.registry import Registry

    out = _json(work / "approved/toy-v3-production.json")
    assert out["moved"] is True, out
    trusted = Registry(reg.url, trust=load_trust_file(work / "trust.json"))
    assert trusted.resolve("demo/toy@production").version == "v3"
    log = (work / "logs/approve.log").read_text()
    assert "approve demo/toy@v3 --to production --reason" in log.splitlines()[0]
    assert "--key keys/approver.key" in log.splitlines()[0] and "--trust trust.json" in log.splitlines()[0]


def check_import(work: Path, reg) -> None:
    """The bundle's version is in the target with the same digest, its alias moved (aliases=True), one
    import event recorded with the reason; the second import finds it present and copies nothing."""
    from omr_workflows.registry import Registry

    exported = _json(work / "bundles/toy.export.json")
    assert [v["ref"] for v in exported["versions"]] == ["demo/toy@v1"]
    out = _json(work / "imported/toy.json")
    assert out["ok"] is True and out["bundle_digest"] == exported["bundle_digest"]
    assert [(v["ref"], v["digest"], v["status"]) for v in out["versions"]] == [
        ("demo/toy@v1", reg.v1_digest, "imported")]
    assert out["bytes_copied"] > 0 and out["files_copied"] == out["versions"][0]["files"]
    assert ("demo/toy", "production", "v1") in {(a["ref"], a["alias"], a["version"]) for a in out["aliases"]}
    target = Registry(str(work / "target-registry"))
    res = target.resolve("demo/toy@production")
    assert (res.version, res.digest) == ("v1", reg.v1_digest)
    imports = [e for e in target.history("demo", "toy") if e["kind"] == "import"]
    assert len(imports) == 1 and imports[0]["reason"] == "offline site copy"
    again = _json(work / "imported/toy-again.json")
    assert [(v["digest"], v["status"]) for v in again["versions"]] == [(reg.v1_digest, "present")]
    assert (again["files_copied"], again["bytes_copied"]) == (0, 0)
    line = (work / "logs/import.log").read_text().splitlines()[0]
    assert "import bundles/toy.tar --aliases --reason" in line and "--registry target-registry" in line


def check_mirror(work: Path, reg) -> None:
    """Both versions are copied with their digests and production follows the source; the rerun
    reports everything present and bytes_copied == 0."""
    from omr_workflows.registry import Registry

    first = _json(work / "mirrored/toy.json")
    assert first["ok"] is True and first["target"] == "mirror-registry"
    assert sorted((v["ref"], v["digest"], v["status"]) for v in first["versions"]) == [
        ("demo/toy@v1", reg.v1_digest, "copied"), ("demo/toy@v2", reg.v2_digest, "copied")]
    assert first["bytes_copied"] > 0
    target = Registry(str(work / "mirror-registry"))
    assert target.resolve("demo/toy@production").digest == reg.v1_digest
    assert target.resolve("demo/toy@v2").digest == reg.v2_digest
    second = _json(work / "mirrored/toy-again.json")
    assert {v["status"] for v in second["versions"]} == {"present"}
    assert (second["files_copied"], second["bytes_copied"]) == (0, 0)
    line = (work / "logs/mirror.log").read_text().splitlines()[0]
    assert "mirror " in line and "mirror-registry --model demo/toy --aliases --jobs 2 --json" in line


SETUPS = {"approve": setup_approve}

CHECKS = {
    "approve": check_approve, "import": check_import, "mirror": check_mirror,
    "provenance": check_provenance,
    "resolve": check_resolve, "fetch": check_fetch, "register": check_register, "promote": check_promote,
    "lock": check_lock, "verify": check_verify, "verify_merge": check_verify_merge,
}


@pytest.mark.parametrize("op", OPS)
def test_wrapper(op, tmp_path, toy_registry):
    work = _copy_test(op, tmp_path)
    if op in SETUPS:
        SETUPS[op](work, toy_registry)
    run_snakemake(work, "--cores", "1", "--wrapper-prefix", f"file:{WRAPPERS}/", registry=toy_registry.url)
    CHECKS[op](work, toy_registry)


def test_wrapper_by_absolute_file_url_without_omrw_on_path(tmp_path, toy_registry):
    """`wrapper: "file:/abs/dir"` works, and without `omrw` on PATH the wrapper falls back to
    the interpreter running it (`python -m omr_workflows.cli.main`)."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "Snakefile").write_text(
        "rule r:\n"
        "    output: 'toy.json'\n"
        "    log: 'logs/r.log'\n"
        "    params: ref='demo/toy@production', registry=" + repr(toy_registry.url) + "\n"
        f"    wrapper: 'file:{WRAPPERS}/omr/resolve'\n")
    bindir = Path(sys.executable).parent
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                           if p and not (Path(p) / "omrw").exists() and Path(p) != bindir)
    run_snakemake(work, "--cores", "1", env={"PATH": path, "OMR_REGISTRY": "/nonexistent/registry"})
    assert json.loads((work / "toy.json").read_text())["version"] == "v1"
    assert "-m omr_workflows.cli.main resolve" in (work / "logs/r.log").read_text().splitlines()[0]


@pytest.mark.parametrize("params, message", [
    ("ref='demo/toy@production', verify='sloppy'", "params.verify='sloppy'"),
    ("verify='fast'", "params.ref is required"),
    ("ref='demo/nosuch@production'", "nosuch"),
])
def test_wrapper_errors_are_one_line_in_the_log(tmp_path, toy_registry, params, message):
    work = tmp_path / "w"
    work.mkdir()
    (work / "Snakefile").write_text(
        "rule r:\n"
        "    output: 'toy.json'\n"
        "    log: 'logs/r.log'\n"
        f"    params: {params}\n"
        f"    wrapper: 'file:{WRAPPERS}/omr/resolve'\n")
    proc = run_snakemake(work, "--cores", "1", registry=toy_registry.url, check=False)
    assert proc.returncode != 0
    log = (work / "logs/r.log").read_text()
    assert message in log, log
    assert "Traceback" not in log
    assert not (work / "toy.json").exists()

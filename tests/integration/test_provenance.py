"""Provenance end to end: capture at register time through the real CLI, run records written by
real `omrw resolve` processes (16 at once), and `omrw provenance collect` rendering JSON, a
Workflow Run RO-Crate (loaded back with `rocrate`, reported by `runcrate`), Markdown and HTML.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from omr_workflows.provenance import HEADER, ProvenanceReport
from omr_workflows.runrecord import RunRecord
from tests.conftest import OMRW, make_artifacts, run_omrw

HEX = "ab" * 32


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _repo(path: Path, text: str) -> str:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text(text)
    _git(path, "add", ".")
    _git(path, "commit", "-q", "-m", "c")
    return _git(path, "rev-parse", "HEAD")


# ---------------------------------------------------------------------- register-time capture
def test_register_captures_provenance_outside_the_package_digest(local_registry, tmp_path):
    """Same bytes, two environments (container image), two code commits: one package digest."""
    pkg = make_artifacts(tmp_path / "pkg")
    data_reg = run_omrw("register", "data/pbmc", "--version", "d7", "--artifacts", str(make_artifacts(tmp_path / "d")),
                        "--no-provenance", "--alias", "production", "--json", registry=local_registry, check=True).json
    commit_a = _repo(tmp_path / "code_a", "lr = 0.1\n")
    commit_b = _repo(tmp_path / "code_b", "lr = 0.2\n")
    params = tmp_path / "params.yaml"
    params.write_text("lr: 0.1\nlayers: [64, 32]\n")
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,2\n")
    r1 = run_omrw("register", "cls/m", "--version", "v1", "--artifacts", str(pkg),
                  "--code-dir", str(tmp_path / "code_a"), "--dataset", f"s3://bucket/pbmc.h5ad@sha256:{HEX}",
                  "--dataset", "omr://data/pbmc@production", "--params", str(params), "--param", "epochs=3",
                  "--code", str(tmp_path / "code_a"), "--data", str(data), "--json", registry=local_registry,
                  check=True, env={"CONTAINER_IMAGE": "ghcr.io/lab/train:1.0"}).json
    r2 = run_omrw("register", "cls/m", "--version", "v2", "--artifacts", str(pkg),
                  "--code-dir", str(tmp_path / "code_b"), "--json", registry=local_registry, check=True,
                  env={"APPTAINER_NAME": "train-2.0.sif"}).json
    assert r1["digest"] == r2["digest"]

    m1 = run_omrw("show", "cls/m@v1", "--json", registry=local_registry, check=True).json["meta"]
    m2 = run_omrw("show", "cls/m@v2", "--json", registry=local_registry, check=True).json["meta"]
    p1, p2 = m1["provenance"], m2["provenance"]
    assert m1["params"] == {"lr": 0.1, "layers": [64, 32], "epochs": 3}
    assert p1["git"]["commit"] == commit_a and p2["git"]["commit"] == commit_b and p1["git"]["dirty"] is False
    assert p1["environment"]["container"] == {"runtime": "unknown", "image": "ghcr.io/lab/train:1.0"}
    assert p2["environment"]["container"] == {"runtime": "apptainer", "image": "train-2.0.sif"}
    assert p1["environment"]["digest"] != p2["environment"]["digest"]
    assert [d["kind"] for d in p1["datasets"]] == ["uri", "registry"]
    assert p1["datasets"][0]["digest"] == f"sha256:{HEX}"
    # A registry dataset is pinned at register to the exact version and package digest it meant.
    assert p1["datasets"][1]["ref"] == "omr://data/pbmc@production"
    assert (p1["datasets"][1]["uri"], p1["datasets"][1]["digest"]) == ("omr://data/pbmc@d7", data_reg["digest"])
    assert [(d["kind"], d["shape"]) for d in p1["dependencies"]["items"]] == [("code", "tree"), ("data", "file")]
    assert p1["dependencies"]["digest"].startswith("sha256:") and "dependencies" not in p2
    assert p1["creator"] and p1["captured_at"]
    # The sidecars still verify strictly (the register event recorded model_meta.json's sha256).
    for v in ("v1", "v2"):
        assert run_omrw("resolve", f"cls/m@{v}", "--verify", "strict", registry=local_registry).returncode == 0


def test_register_rejects_bad_provenance_input_and_publishes_nothing(local_registry, tmp_path):
    pkg = make_artifacts(tmp_path / "pkg")
    for extra, needle in ((["--dataset", "s3://b/x@sha256:123"], "dataset"),
                          (["--code", str(tmp_path / "missing.py")], "missing.py"),
                          (["--data", str(tmp_path / "nodata")], "nodata"),
                          (["--code-dir", str(tmp_path / "nocode")], "nocode")):
        p = run_omrw("register", "cls/m", "--version", "v1", "--artifacts", str(pkg), *extra, registry=local_registry)
        assert p.returncode == 2 and needle in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not Path(local_registry).exists() or run_omrw("list", "--json", registry=local_registry).json == []


# ---------------------------------------------------------------------- run records
@pytest.fixture
def reg2(local_registry, tmp_path) -> str:
    for i, v in enumerate(("v1", "v2")):
        run_omrw("register", "cls/m", "--version", v, "--artifacts", str(make_artifacts(tmp_path / v, seed=str(i))),
                 "--no-provenance", registry=local_registry, check=True)
    run_omrw("promote", "cls/m@v1", "--to", "production", registry=local_registry, check=True)
    return local_registry


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("*.json"))]


def test_resolve_writes_one_record_per_call(reg2, tmp_path):
    run_dir = tmp_path / "run"
    env = {"OMR_RUN_DIR": str(run_dir), "OMR_ENGINE": "snakemake", "SLURM_ARRAY_JOB_ID": "900",
           "SLURM_ARRAY_TASK_ID": "7", "SLURM_JOB_ID": "907"}
    res = run_omrw("resolve", "cls/m@production", "--verify", "fast", "--json", registry=reg2, env=env,
                   check=True).json
    run_omrw("resolve", "cls/m@v2#model.pt", registry=reg2, check=True,
             env={"PBS_JOBID": "123.pbs"}, cwd=str(tmp_path)).stdout
    run_omrw("resolve", "cls/m@v2", "--provenance-dir", str(run_dir), registry=reg2, check=True,
             env={"LSB_JOBID": "55", "LSB_JOBINDEX": "3", "NXF_TASK_WORKDIR": "/work/ab/cdef"})
    # OMR_RUN_DIR was only in the first call's environment; the second wrote nothing.
    recs = _records(run_dir)
    assert len(recs) == 2
    first = next(r for r in recs if r["version"] == "v1")
    RunRecord.model_validate(first)
    assert {k: first[k] for k in ("kind", "ref", "selector_kind", "version", "digest", "uri", "registry",
                                  "verified", "engine")} == {
        "kind": "resolve", "ref": "cls/m@production", "selector_kind": "alias", "version": "v1",
        "digest": res["digest"], "uri": "omr://cls/m@v1", "registry": reg2, "verified": "fast", "engine": "snakemake"}
    assert first["job"] == {"scheduler": "slurm", "id": "900_7"}
    assert first["host"] and first["at"] and first["size"] > 0 and first["files"] == 8
    second = next(r for r in recs if r["version"] == "v2")
    assert second["engine"] == "cli" and second["job"] == {"scheduler": "lsf", "id": "55[3]"}
    assert second["hints"] == {"NXF_TASK_WORKDIR": "/work/ab/cdef"}
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_locked_resolve_record_names_the_ref_and_the_pinned_version(reg2, tmp_path):
    lock = tmp_path / "omr.lock.json"
    run_omrw("lock", "cls/m@production", "-o", str(lock), registry=reg2, check=True)
    run_omrw("promote", "cls/m@v2", "--to", "production", registry=reg2, check=True)
    run_dir = tmp_path / "run"
    run_omrw("resolve", "cls/m@production", "--lock", str(lock), registry=reg2, check=True,
             env={"OMR_RUN_DIR": str(run_dir)})
    (rec,) = _records(run_dir)
    assert rec["ref"] == "cls/m@production" and rec["version"] == "v1"


def test_failed_resolve_writes_no_record(reg2, tmp_path):
    run_dir = tmp_path / "run"
    p = run_omrw("resolve", "cls/m@nope", registry=reg2, env={"OMR_RUN_DIR": str(run_dir)})
    assert p.returncode == 3 and not run_dir.exists()


def test_unwritable_run_dir_fails_the_resolve(reg2, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    p = run_omrw("resolve", "cls/m@v1", registry=reg2, env={"OMR_RUN_DIR": str(blocker / "run")})
    assert p.returncode == 5 and "run provenance record" in p.stderr


# ---------------------------------------------------------------------- 16 concurrent writers + collect
def test_collect_loses_none_of_16_concurrent_records(reg2, tmp_path):
    run_dir = tmp_path / "run"
    refs = ["cls/m@production", "cls/m@v1", "cls/m@v2", "omr://cls/m@latest"]
    procs = []
    for i in range(16):
        env = {**os.environ, "OMR_REGISTRY": reg2, "OMR_RUN_DIR": str(run_dir), "OMR_ENGINE": "nextflow",
               "SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": str(i)}
        procs.append(subprocess.Popen([*OMRW, "resolve", refs[i % 4], "--verify", ("none", "fast")[i % 2]],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert len(list(run_dir.glob("*.json"))) == 16

    out = tmp_path / "out"
    p = run_omrw("provenance", "collect", str(run_dir), "-o", str(out), "--json", check=True)
    assert p.json["records"] == 16 and p.json["models"] == 2
    report = ProvenanceReport.model_validate_json((out / "omr_provenance.json").read_text())
    jobs = sorted(u.job.id for m in report.models for u in m.uses)
    assert jobs == sorted(f"4242_{i}" for i in range(16))
    by_version = {m.version: m for m in report.models}
    # production, v1 -> v1 (8 uses); v2 and latest -> v2 (8 uses): identical usages merged, every use kept.
    assert len(by_version["v1"].uses) == 8 and by_version["v1"].refs == ["cls/m@production", "cls/m@v1"]
    assert len(by_version["v2"].uses) == 8 and by_version["v2"].refs == ["cls/m@latest", "cls/m@v2"]
    assert by_version["v1"].verified == "fast"
    assert report.run.records == 16 and report.run.engines == ["nextflow"] and len(report.run.jobs) == 16
    assert report.run.started_at <= by_version["v1"].first_at <= by_version["v1"].last_at <= report.run.ended_at


# ---------------------------------------------------------------------- the RO-Crate
def _crate_dict(out: Path) -> dict:
    graph = json.loads((out / "ro-crate-metadata.json").read_text())["@graph"]
    return {e["@id"]: e for e in graph}


def _ids(value) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def _check_crate_common(out: Path, report: ProvenanceReport) -> tuple[dict, dict]:
    from rocrate.rocrate import ROCrate
    from runcrate.report import dump_crate_actions

    crate = ROCrate(out)  # loads back with the library
    ents = _crate_dict(out)
    root = ents["./"]
    assert "https://w3id.org/ro/wfrun/process/0.5" in _ids(root["conformsTo"])
    for pid in _ids(root["conformsTo"]):
        assert "Profile" in ents[pid]["@type"] and ents[pid]["version"]
    actions = [e for e in ents.values() if e["@type"] == "CreateAction"]
    assert len(actions) == 1
    action = actions[0]
    assert action["startTime"] == report.run.started_at and action["endTime"] == report.run.ended_at
    assert _ids(action["instrument"])[0] in ents
    assert sorted(_ids(action["object"])) == sorted(m.id for m in report.models)
    assert action["@id"] in _ids(root["mentions"])
    for m in report.models:
        ds = ents[m.id]
        assert ds["@type"] == "Dataset" and m.id in _ids(root["hasPart"])
        assert ds["version"] == m.version and "sha256" not in ds
        ident = ds["identifier"]
        assert f"omr://{m.task}/{m.model}@{m.version}" in ident
        (pv,) = [ents[i["@id"]] for i in ident if isinstance(i, dict)]
        assert pv["@type"] == "PropertyValue" and pv["value"] == m.digest
        parts = [ents[i] for i in _ids(ds["hasPart"])]
        assert len(parts) == m.files and sum(int(f["contentSize"]) for f in parts) == m.size > 0
        assert all(f["@type"] == "File" and len(f["sha256"]) == 64 and f["encodingFormat"] for f in parts)
        entity = crate.dereference(m.id)
        assert entity is not None and entity["version"] == m.version
    # runcrate's offline reader walks the actions: it must find ours with its inputs.
    buf = io.StringIO()
    dump_crate_actions(crate, f=buf)
    text = buf.getvalue()
    assert "action: #omr-run" in text
    for m in report.models:
        assert m.id in text
    return ents, action


def test_ro_crate_for_a_run_validates(reg2, tmp_path):
    run_dir = tmp_path / "run"
    for ref in ("cls/m@production", "cls/m@v2#model.pt", "cls/m@v1"):
        run_omrw("resolve", ref, "--verify", "strict", registry=reg2, check=True, env={"OMR_RUN_DIR": str(run_dir)})
    out = tmp_path / "out"
    run_omrw("provenance", "collect", str(run_dir), "-o", str(out), check=True)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "omr_provenance.html", "omr_provenance.json",
                                                      "omr_provenance.md", "ro-crate-metadata.json"]
    report = ProvenanceReport.model_validate_json((out / "omr_provenance.json").read_text())
    ents, action = _check_crate_common(out, report)
    # No workflow named: a Process Run Crate whose instrument is omrw.
    assert ents[_ids(action["instrument"])[0]]["@type"] == "SoftwareApplication"
    assert "mainEntity" not in ents["./"]
    # The workflow-run terms are defined inline, with the IRIs the published context gives them.
    context = json.loads((out / "ro-crate-metadata.json").read_text())["@context"]
    assert context == ["https://w3id.org/ro/crate/1.1/context",
                       {"sha256": "https://w3id.org/ro/terms/workflow-run#sha256"}]


def test_ro_crate_with_the_workflow_is_a_workflow_run_crate(reg2, tmp_path):
    run_dir = tmp_path / "run"
    run_omrw("resolve", "cls/m@production", registry=reg2, check=True,
             env={"OMR_RUN_DIR": str(run_dir), "OMR_ENGINE": "snakemake"})
    snakefile = tmp_path / "wf" / "Snakefile"
    snakefile.parent.mkdir()
    snakefile.write_text("rule all:\n    input: 'x'\n")
    out = tmp_path / "out"
    run_omrw("provenance", "collect", str(run_dir), "-o", str(out), "--workflow", str(snakefile), check=True)
    report = ProvenanceReport.model_validate_json((out / "omr_provenance.json").read_text())
    ents, action = _check_crate_common(out, report)
    root = ents["./"]
    assert set(_ids(root["conformsTo"])) == {"https://w3id.org/ro/wfrun/process/0.5",
                                             "https://w3id.org/ro/wfrun/workflow/0.5",
                                             "https://w3id.org/workflowhub/workflow-ro-crate/1.0"}
    main = ents[root["mainEntity"]["@id"]]
    assert {"File", "SoftwareSourceCode", "ComputationalWorkflow"} <= set(main["@type"])
    assert _ids(action["instrument"]) == [main["@id"]]
    assert "snakemake" in main["programmingLanguage"]["@id"]
    assert (out / "Snakefile").read_text() == snakefile.read_text()
    # The language comes from the records' engine when the file name does not tell...
    odd = tmp_path / "wf" / "pipeline.txt"
    odd.write_text("?")
    run_omrw("provenance", "collect", str(run_dir), "-o", str(tmp_path / "out1"), "--workflow", str(odd), check=True)
    main = [e for e in _crate_dict(tmp_path / "out1").values() if e["@id"] == "pipeline.txt"][0]
    assert "snakemake" in main["programmingLanguage"]["@id"]
    # ...and when neither does, it is a usage error, and nothing is written.
    cli_run = tmp_path / "cli-run"
    _write_record(cli_run, "r.json", engine="cli")
    p = run_omrw("provenance", "collect", str(cli_run), "-o", str(tmp_path / "out2"), "--workflow", str(odd))
    assert p.returncode == 2 and "--workflow-lang" in p.stderr and not (tmp_path / "out2").exists()
    p = run_omrw("provenance", "collect", str(cli_run), "-o", str(tmp_path / "out2"), "--workflow", str(odd),
                 "--workflow-lang", "perl")
    assert p.returncode == 2 and "perl" in p.stderr and not (tmp_path / "out2").exists()
    run_omrw("provenance", "collect", str(cli_run), "-o", str(tmp_path / "out2"), "--workflow", str(odd),
             "--workflow-lang", "nextflow", check=True)
    p = run_omrw("provenance", "collect", str(cli_run), "-o", str(tmp_path / "out3"), "--workflow",
                 str(tmp_path / "nope.nf"))
    assert p.returncode == 2 and "nope.nf" in p.stderr and not (tmp_path / "out3").exists()


# ---------------------------------------------------------------------- bad input, escaping, conflicts
def _write_record(run_dir: Path, name: str, **changes) -> dict:
    rec = {"schema": "omr-run-record/1", "kind": "resolve", "ref": "cls/m@v1", "task": "cls", "model": "m",
           "selector_kind": "version", "version": "v1", "digest": "sha256:" + "1" * 64, "uri": "omr://cls/m@v1",
           "registry": "/reg", "verified": "none", "at": "2026-01-01T00:00:00+00:00", "host": "n1", "pid": 1,
           "engine": "cli", "size": 10, "files": 1}
    rec.update(changes)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / name).write_text(json.dumps(rec))
    return rec


@pytest.mark.parametrize("content,needle", [
    ("{not json", "bad.json"),
    (json.dumps({"schema": "omr-run-record/1", "kind": "resolve"}), "bad.json"),
    ("[]", "bad.json"),
    ("", "bad.json"),
])
def test_collect_rejects_a_malformed_record_naming_the_file(tmp_path, content, needle):
    run_dir = tmp_path / "run"
    _write_record(run_dir, "good.json")
    (run_dir / "bad.json").write_text(content)
    out = tmp_path / "out"
    p = run_omrw("provenance", "collect", str(run_dir), "-o", str(out))
    assert p.returncode == 2 and needle in p.stderr and "malformed" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not out.exists()


def test_collect_rejects_bad_field_values(tmp_path):
    run_dir = tmp_path / "run"
    _write_record(run_dir, "r.json", digest="sha256:xyz")
    p = run_omrw("provenance", "collect", str(run_dir), "-o", str(tmp_path / "out"))
    assert p.returncode == 2 and "r.json" in p.stderr and "digest" in p.stderr
    _write_record(run_dir, "r.json", verified="maybe")
    p = run_omrw("provenance", "collect", str(run_dir), "-o", str(tmp_path / "out"))
    assert p.returncode == 2 and "verified" in p.stderr and not (tmp_path / "out").exists()


def test_collect_empty_or_missing_run_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    p = run_omrw("provenance", "collect", str(tmp_path / "empty"), "-o", str(tmp_path / "out"))
    assert p.returncode == 2 and "no run records" in p.stderr and not (tmp_path / "out").exists()
    run_omrw("provenance", "collect", str(tmp_path / "empty"), "-o", str(tmp_path / "out"), "--allow-empty",
             check=True)
    assert json.loads((tmp_path / "out" / "omr_provenance.json").read_text())["models"] == []
    p = run_omrw("provenance", "collect", str(tmp_path / "missing"), "-o", str(tmp_path / "out3"))
    assert p.returncode == 2 and "missing" in p.stderr


def test_reports_escape_every_value(tmp_path):
    run_dir = tmp_path / "run"
    evil = "<script>alert('x')</script>"
    _write_record(run_dir, "a.json", registry=f"/data/{evil}|reg", host="<img src=x onerror=alert(1)>",
                  engine="snake*make_[x](y)")
    out = tmp_path / "out"
    run_omrw("provenance", "collect", str(run_dir), "-o", str(out), check=True)
    page = (out / "omr_provenance.html").read_text()
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and "http" not in page.split("<body>")[0]  # self-contained head
    md = (out / "omr_provenance.md").read_text()
    row = [ln for ln in md.splitlines() if ln.startswith("| cls/m")][0]
    assert row.count(" | ") == len(HEADER) - 1  # the '|' inside a value is escaped and does not add a column
    assert "<script" not in md and "\\[x\\]" in md


def test_same_version_with_two_digests_is_reported_and_fails(tmp_path):
    run_dir = tmp_path / "run"
    _write_record(run_dir, "a.json")
    _write_record(run_dir, "b.json", digest="sha256:" + "2" * 64, at="2026-01-01T00:00:05+00:00")
    out = tmp_path / "out"
    p = run_omrw("provenance", "collect", str(run_dir), "-o", str(out))
    assert p.returncode == 1 and "omr://cls/m@v1" in p.stderr
    report = json.loads((out / "omr_provenance.json").read_text())
    assert len(report["models"]) == 2 and len(report["conflicts"]) == 1
    ids = [m["id"] for m in report["models"]]
    assert len(set(ids)) == 2  # distinct @ids in the crate
    assert set(ids) <= set(_crate_dict(out))


def test_collect_into_the_run_dir_and_again(reg2, tmp_path):
    run_dir = tmp_path / "run"
    run_omrw("resolve", "cls/m@v1", registry=reg2, check=True, env={"OMR_RUN_DIR": str(run_dir)})
    for _ in range(2):
        p = run_omrw("provenance", "collect", str(run_dir), "-o", str(run_dir), "--json", check=True)
        assert p.json["records"] == 1
    assert not [f for f in run_dir.iterdir() if f.name.startswith(".")]


def test_record_files_can_be_given_one_by_one(reg2, tmp_path):
    run_dir = tmp_path / "run"
    for ref in ("cls/m@v1", "cls/m@v2"):
        run_omrw("resolve", ref, registry=reg2, check=True, env={"OMR_RUN_DIR": str(run_dir)})
    files = sorted(str(p) for p in run_dir.glob("*.json"))
    p = run_omrw("provenance", "collect", files[0], "-o", str(tmp_path / "o"), "--json", check=True)
    assert p.json["records"] == 1
    p = run_omrw("provenance", "collect", *files, "-o", str(tmp_path / "o"), "--json", check=True)
    assert p.json["records"] == 2 and p.json["models"] == 2


def test_append_record_accepts_a_dict_and_is_atomic(tmp_path):
    from omr_workflows.runrecord import append_record

    result = {"ref": "cls/m@v1", "task": "cls", "model": "m", "selector_kind": "version", "version": "v1",
              "digest": "sha256:" + "3" * 64, "uri": "omr://cls/m@v1", "registry": "/r", "path": None}
    paths = {append_record(tmp_path / "r", "verify", result, "strict") for _ in range(20)}
    assert len(paths) == 20 and all(p.exists() for p in paths)
    rec = RunRecord.model_validate_json(next(iter(paths)).read_text())
    assert rec.kind == "verify" and rec.verified == "strict" and rec.engine == "cli"


def test_huge_package_is_listed_bounded_and_said_so(tmp_path):
    """A record lists at most MAX_LISTED_FILES files; the crate's Dataset says how many of how many."""
    from omr_workflows.crate import build_crate
    from omr_workflows.provenance import merge
    from omr_workflows.runrecord import MAX_LISTED_FILES, make_record

    n = MAX_LISTED_FILES + 5
    files = [{"path": f"shards/part-{i:06d}.bin", "size": i, "sha256": f"{i:064x}"} for i in range(n)]
    result = {"ref": "big/m@v1", "task": "big", "model": "m", "selector_kind": "version", "version": "v1",
              "digest": "sha256:" + "4" * 64, "uri": "omr://big/m@v1", "registry": "/r", "path": None}
    rec = make_record("resolve", result, "none", files=files)
    assert rec.files == n and len(rec.contents) == MAX_LISTED_FILES and rec.size == sum(range(n))
    doc, _ = build_crate(merge([("r.json", rec)], ["r"]))
    ents = {e["@id"]: e for e in doc["@graph"]}
    ds = ents["omr://big/m@v1/"]
    assert len(ds["hasPart"]) == MAX_LISTED_FILES and f"{MAX_LISTED_FILES} of its {n} files are listed" in \
        ds["description"]
    assert len(json.dumps(doc)) < 400 * MAX_LISTED_FILES  # bounded: a few hundred bytes per listed file

"""The run RO-Crate checked by an independent validator (roc-validator, offline) and by the bytes.

* a CLI-only run (register with provenance, promote, lock, resolve) -> `omrw provenance collect`:
  0 REQUIRED failures for process-run-crate-0.5 (no workflow) and, with `--workflow`, for
  workflow-run-crate-0.5 (which includes process-run-crate-0.5); every file's sha256 computed
  from the registered bytes is in the crate, and no `sha256` in the crate is anything else;
* `omrw provenance merge-into` on crates in nf-prov's and a Snakemake run crate's shape
  (written here), validated before and after, every original entity kept;
* hostile records: one-line error naming the record, exit 2, nothing written.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_artifacts, run_omrw
from tests.rocval import assert_valid, build_cache, validate

pytest.importorskip("rocrate_validator", reason="roc-validator is in the test extra")

HEX = "cd" * 32


@pytest.fixture(scope="module")
def rocval_cache(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rocval") / "http_cache.sqlite"
    build_cache(path)
    return path


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, env=env)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> dict:
    """A training + deployment run through the CLI only, every touch recorded in one run folder."""
    tmp = tmp_path_factory.mktemp("cli-run")
    reg, run_dir = str(tmp / "registry"), tmp / "records"
    env = {"OMR_RUN_DIR": str(run_dir), "USER": "alice"}
    code = tmp / "code"
    code.mkdir()
    _git(code, "init", "-q", "-b", "main")
    (code / "train.py").write_text("lr = 0.1\n")
    _git(code, "add", ".")
    _git(code, "commit", "-q", "-m", "c")
    _git(code, "remote", "add", "origin", "https://user:secret@git.example.org/lab/train.git")
    data = make_artifacts(tmp / "data", seed="d")
    run_omrw("register", "data/pbmc", "--version", "d1", "--artifacts", str(data), "--no-provenance",
             "--alias", "production", registry=reg, check=True)
    pkgs = {"v1": make_artifacts(tmp / "v1", seed="1"), "v2": make_artifacts(tmp / "v2", seed="2")}
    (pkgs["v2"] / "weights" / "deep").mkdir(parents=True)
    (pkgs["v2"] / "weights" / "deep" / "layer 1.bin").write_bytes(os.urandom(3000))
    for v, pkg in pkgs.items():
        run_omrw("register", "cls/m", "--version", v, "--artifacts", str(pkg), "--code-dir", str(code),
                 "--dataset", "omr://data/pbmc@production", "--dataset", f"s3://bucket/train.h5ad@sha256:{HEX}",
                 "--actor", "alice", registry=reg, env=env, check=True)
    run_omrw("promote", "cls/m@v2", "--to", "production", "--reason", "better", "--actor", "bob", registry=reg,
             env=env, check=True)
    run_omrw("lock", "cls/m@production", "-o", str(tmp / "omr.lock.json"), registry=reg, env=env, check=True)
    run_omrw("resolve", "cls/m@production", "--verify", "strict", registry=reg, env=env, check=True)
    run_omrw("resolve", "data/pbmc@d1#model.pt", registry=reg, env=env, check=True)
    return {"tmp": tmp, "registry": reg, "run_dir": run_dir, "env": env}


def _graph(crate_dir: Path) -> dict[str, dict]:
    return {e["@id"]: e for e in json.loads((crate_dir / "ro-crate-metadata.json").read_text())["@graph"]}


def _ids(value) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def _walk(obj, key: str):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                yield v
            yield from _walk(v, key)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v, key)


def _package_sha256(registry: str, ref: str) -> dict[str, str]:
    """path -> sha256 of every file of a registered version, hashed here from its bytes."""
    folder = Path(run_omrw("resolve", ref, "--json", registry=registry, check=True).json["path"])
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "omr_manifest.json"}


def test_cli_run_crate_passes_the_validator_and_tells_the_truth_per_file(cli_run, rocval_cache, tmp_path):
    """Acceptance 1 (CLI-only run) and 2 (every file's own sha256; no other sha256)."""
    out = tmp_path / "out"
    run_omrw("provenance", "collect", str(cli_run["run_dir"]), "-o", str(out), "--author",
             "https://orcid.org/0000-0002-1825-0097", "--publisher", "https://ror.org/05cy4wa09", check=True)
    issues = assert_valid(out, "process-run-crate-0.5", rocval_cache)
    # With the publisher given, what remains is the validator's ignorance of omr:// only.
    assert {i["check"] for i in issues} <= {"ro-crate-1.1_28.1"}, issues

    ents = _graph(out)
    crate_sha = set()
    for ref in ("cls/m@v1", "cls/m@v2", "data/pbmc@d1"):
        on_disk = _package_sha256(cli_run["registry"], ref)
        ds = ents[f"omr://{ref}/"]
        assert ds["@type"] == "Dataset" and "sha256" not in ds
        listed = {ents[i]["name"]: ents[i] for i in _ids(ds["hasPart"])}
        assert {p: f["sha256"] for p, f in listed.items()} == on_disk
        for p, f in listed.items():
            assert f["@type"] == "File" and f["encodingFormat"] and int(f["contentSize"]) > 0
        crate_sha |= set(on_disk.values())
        digest = run_omrw("resolve", ref, "--json", registry=cli_run["registry"], check=True).json["digest"]
        ident = ds["identifier"]
        assert f"omr://{ref}" in ident
        assert [ents[i["@id"]]["value"] for i in ident if isinstance(i, dict)] == [digest]
    assert set(_walk(json.loads((out / "ro-crate-metadata.json").read_text())["@graph"], "sha256")) <= crate_sha
    assert "layer%201.bin" in " ".join(ents) and "weights/deep/layer 1.bin" in {e.get("name") for e in ents.values()}

    # The training run produced v1 and v2 (CreateAction results); the deployment promoted v2.
    run = ents["#omr-run"]
    assert sorted(_ids(run["result"])) == ["omr://cls/m@v1/", "omr://cls/m@v2/"]
    assert sorted(_ids(run["object"])) == ["omr://cls/m@v2/", "omr://data/pbmc@d1/"]
    (promote,) = [e for e in ents.values() if e["@type"] == "UpdateAction"]
    assert _ids(promote["object"]) == ["omr://cls/m@v2/"] and promote["targetCollection"] == "production"
    assert ents[run["agent"]["@id"]]["@type"] == "Person"
    assert ents["./"]["license"]["@id"] == "https://spdx.org/licenses/CC0-1.0"
    # The version's own provenance: the training code (credentials removed) and the pinned dataset.
    v2 = ents["omr://cls/m@v2/"]
    based = [ents[i] for i in _ids(v2["isBasedOn"])]
    code = next(e for e in based if e["@type"] == "SoftwareSourceCode")
    assert "secret" not in json.dumps(ents) and code["codeRepository"] == "https://git.example.org/lab/train.git"
    data_digest = run_omrw("resolve", "data/pbmc@d1", "--json", registry=cli_run["registry"], check=True).json["digest"]
    assert any(e.get("url") == "omr://data/pbmc@d1" and e.get("identifier") == data_digest for e in based)
    # Timestamps: 0 or 3 fractional digits.
    for key in ("startTime", "endTime", "datePublished", "dateCreated"):
        for t in _walk([*ents.values()], key):
            frac = t.split("T")[1].split("+")[0].split(".")
            assert len(frac) == 1 or len(frac[1]) == 3, t
    md = (out / "omr_provenance.md").read_text()
    assert "promoted to production" in md and "bob" in md and "strict (resolve)" in md
    assert (out / "README.md").read_text() == md


def test_cli_run_with_the_workflow_passes_workflow_run_crate(cli_run, rocval_cache, tmp_path):
    """Acceptance 1: workflow-run-crate-0.5 (process-run-crate-0.5 and workflow-ro-crate-1.0 included)."""
    wf = tmp_path / "wf"
    wf.mkdir()
    (wf / "Snakefile").write_text("rule all:\n    input: 'x'\n")
    out = tmp_path / "out"
    run_omrw("provenance", "collect", str(cli_run["run_dir"]), "-o", str(out), "--workflow", str(wf / "Snakefile"),
             "--workflow-url", "https://example.org/lab/wf/Snakefile", "--license", "https://spdx.org/licenses/MIT",
             check=True)
    issues = assert_valid(out, "workflow-run-crate-0.5", rocval_cache)
    assert not [i for i in issues if i["check"].startswith("workflow-ro-crate")], issues
    ents = _graph(out)
    assert ents["./"]["license"]["@id"] == "https://spdx.org/licenses/MIT"
    main = ents[ents["./"]["mainEntity"]["@id"]]
    assert main["version"].startswith("sha256:") and main["url"] == "https://example.org/lab/wf/Snakefile"


# ---------------------------------------------------------------------- merge-into an engine's crate
def nf_prov_crate(crate_dir: Path) -> dict:
    """A Workflow Run RO-Crate in the shape nf-prov's WRROC renderer writes (workflow level,
    one task, one published output), with a license and an agent as its docs recommend."""
    crate_dir.mkdir(parents=True)
    (crate_dir / "main.nf").write_text("workflow { TOY() }\n")
    (crate_dir / "nextflow.config").write_text("prov.enabled = true\n")
    (crate_dir / "results").mkdir()
    (crate_dir / "results" / "predictions.tsv").write_text("cell\tlabel\n")
    uid = "#0b7a5e34-9d2b-4d0e-9d8a-4c6c8b7e8f10"
    agent = {"@id": "https://orcid.org/0000-0002-1825-0097", "@type": "Person", "name": "Josiah Carberry"}
    graph = [
        {"@id": "ro-crate-metadata.json", "@type": "CreativeWork", "about": {"@id": "./"},
         "conformsTo": [{"@id": "https://w3id.org/ro/crate/1.1"},
                        {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"}]},
        {"@id": "./", "@type": "Dataset", "author": {"@id": agent["@id"]}, "datePublished": "2026-01-02T03:04:05Z",
         "conformsTo": [{"@id": "https://w3id.org/ro/wfrun/process/0.5"},
                        {"@id": "https://w3id.org/ro/wfrun/workflow/0.5"},
                        {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0"}],
         "name": "Workflow run of toy", "description": "A toy pipeline",
         "hasPart": [{"@id": "main.nf"}, {"@id": "nextflow.config"}, {"@id": "results/predictions.tsv"}],
         "mainEntity": {"@id": "main.nf"}, "mentions": [{"@id": uid}, {"@id": "#task-1"}],
         "license": {"@id": "https://spdx.org/licenses/Apache-2.0"}},
        {"@id": "https://w3id.org/ro/wfrun/process/0.5", "@type": "CreativeWork", "name": "Process Run Crate",
         "version": "0.5"},
        {"@id": "https://w3id.org/ro/wfrun/workflow/0.5", "@type": "CreativeWork", "name": "Workflow Run Crate",
         "version": "0.5"},
        {"@id": "https://w3id.org/workflowhub/workflow-ro-crate/1.0", "@type": "CreativeWork",
         "name": "Workflow RO-Crate", "version": "1.0"},
        {"@id": "main.nf", "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow", "HowTo"],
         "conformsTo": {"@id": "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"},
         "name": "toy", "programmingLanguage": {"@id": "https://w3id.org/workflowhub/workflow-ro-crate#nextflow"},
         "version": "4f1c2e0", "url": "https://github.com/lab/toy/blob/4f1c2e0/main.nf",
         "encodingFormat": "application/nextflow", "runtimePlatform": "Nextflow 24.10.0",
         "hasPart": {"@id": "main.nf#TOY"}},
        {"@id": "https://w3id.org/workflowhub/workflow-ro-crate#nextflow", "@type": "ComputerLanguage",
         "name": "Nextflow", "identifier": "https://www.nextflow.io/", "url": "https://www.nextflow.io/",
         "version": "24.10.0"},
        {"@id": "main.nf#software-application", "@type": "SoftwareApplication", "name": "Nextflow 24.10.0"},
        {"@id": "main.nf#TOY", "@type": "SoftwareApplication", "name": "TOY"},
        {"@id": "#organize", "@type": "OrganizeAction", "agent": {"@id": agent["@id"]},
         "instrument": {"@id": "main.nf#software-application"}, "name": "Run of Nextflow 24.10.0",
         "result": {"@id": uid}, "startTime": "2026-01-02T03:00:00Z", "endTime": "2026-01-02T03:04:00Z"},
        {"@id": uid, "@type": "CreateAction", "agent": {"@id": agent["@id"]}, "name": "Nextflow workflow run",
         "startTime": "2026-01-02T03:00:00Z", "endTime": "2026-01-02T03:04:00Z", "instrument": {"@id": "main.nf"},
         "object": {"@id": "nextflow.config"}, "result": {"@id": "results/predictions.tsv"}},
        {"@id": "#task-1", "@type": "CreateAction", "name": "TOY (1)", "instrument": {"@id": "main.nf#TOY"},
         "agent": {"@id": agent["@id"]}, "result": {"@id": "results/predictions.tsv"},
         "actionStatus": "http://schema.org/CompletedActionStatus"},
        agent,
        {"@id": "https://spdx.org/licenses/Apache-2.0", "@type": "CreativeWork", "name": "Apache-2.0"},
        {"@id": "nextflow.config", "@type": "File", "name": "Resolved Nextflow configuration",
         "encodingFormat": "text/plain"},
        {"@id": "results/predictions.tsv", "@type": "File", "name": "predictions.tsv",
         "encodingFormat": "text/tab-separated-values"},
    ]
    doc = {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": graph}
    (crate_dir / "ro-crate-metadata.json").write_text(json.dumps(doc, indent=2))
    return doc


def snakemake_crate(crate_dir: Path) -> dict:
    """A Snakemake Workflow Run Crate as WorkflowHub's examples shape it, written with `rocrate`."""
    from rocrate.rocrate import ROCrate

    crate_dir.mkdir(parents=True)
    src = crate_dir.parent / "Snakefile"
    src.write_text("rule all:\n    input: 'out.txt'\n")
    (crate_dir.parent / "out.txt").write_text("done\n")
    crate = ROCrate(version="1.1")
    wf = crate.add_workflow(src, "Snakefile", main=True, lang="snakemake")
    wf["version"], wf["url"] = "1.0.0", "https://example.org/lab/wf/Snakefile"
    out = crate.add_file(crate_dir.parent / "out.txt", "out.txt", properties={"encodingFormat": "text/plain"})
    person = crate.add(__import__("rocrate.model.person", fromlist=["Person"]).Person(
        crate, "https://orcid.org/0000-0001-2345-6789", properties={"name": "A. Snake"}))
    crate.root_dataset["author"] = person
    crate.root_dataset["license"] = "https://spdx.org/licenses/MIT"
    crate.name, crate.description = "Snakemake run of wf", "A Snakemake workflow run"
    from rocrate.model.contextentity import ContextEntity

    for pid, name, version in (("https://w3id.org/ro/wfrun/process/0.5", "Process Run Crate", "0.5"),
                               ("https://w3id.org/ro/wfrun/workflow/0.5", "Workflow Run Crate", "0.5"),
                               ("https://w3id.org/workflowhub/workflow-ro-crate/1.0", "Workflow RO-Crate", "1.0")):
        crate.root_dataset.append_to("conformsTo", crate.add(ContextEntity(crate, pid, properties={
            "@type": "CreativeWork", "name": name, "version": version})))
    action = crate.add_action(wf, identifier="#snakemake-run", result=[out],
                              properties={"name": "Snakemake run", "startTime": "2026-01-02T03:00:00Z",
                                          "endTime": "2026-01-02T03:04:00Z"})
    action["agent"] = person
    crate.root_dataset["mentions"] = action
    crate.write(crate_dir)
    return json.loads((crate_dir / "ro-crate-metadata.json").read_text())


def _kept(before: dict, after: dict) -> None:
    """Every original entity is in the merged crate; only references were added to it."""
    old = {e["@id"]: e for e in before["@graph"]}
    new = {e["@id"]: e for e in after["@graph"]}
    for eid, e in old.items():
        assert eid in new, f"entity {eid} lost"
        for k, v in e.items():
            nv = new[eid][k]
            if nv != v:  # a reference list that grew: every old value still there
                old_vals = v if isinstance(v, list) else [v]
                new_vals = nv if isinstance(nv, list) else [nv]
                assert all(x in new_vals for x in old_vals) and k in ("hasPart", "mentions", "object", "result",
                                                                      "conformsTo"), (eid, k)


@pytest.mark.parametrize("shape", ["nf-prov", "snakemake"])
def test_merge_into_an_engine_crate_keeps_it_and_validates(cli_run, rocval_cache, tmp_path, shape):
    """Acceptance 4."""
    crate = tmp_path / shape / "crate"
    before = nf_prov_crate(crate) if shape == "nf-prov" else snakemake_crate(crate)
    # The engine's own RECOMMENDED misses are its own: the merge must add none but ALLOWED_RECOMMENDED.
    engine_issues = validate(crate, "workflow-run-crate-0.5", rocval_cache)
    assert not [i for i in engine_issues if i["severity"] == "REQUIRED"], engine_issues
    p = run_omrw("provenance", "merge-into", str(crate), str(cli_run["run_dir"]), "--json", check=True)
    assert p.json["models"] == 3
    after = json.loads((crate / "ro-crate-metadata.json").read_text())
    _kept(before, after)
    assert_valid(crate, "workflow-run-crate-0.5", rocval_cache, known=engine_issues)
    ents = {e["@id"]: e for e in after["@graph"]}
    run_id = "#0b7a5e34-9d2b-4d0e-9d8a-4c6c8b7e8f10" if shape == "nf-prov" else "#snakemake-run"
    run = ents[run_id]
    # Our models joined the engine's own run action: produced versions as results, used ones as objects.
    assert {"omr://cls/m@v1/", "omr://cls/m@v2/"} <= set(_ids(run["result"]))
    assert "omr://data/pbmc@d1/" in _ids(run["object"])
    assert "#omr-run" not in ents and any(e["@type"] == "UpdateAction" for e in ents.values())
    for ref in ("cls/m@v2", "data/pbmc@d1"):
        assert f"omr://{ref}/" in _ids(ents["./"]["hasPart"])
    # Merging the same records again changes nothing; the crate's files are untouched.
    run_omrw("provenance", "merge-into", str(crate), str(cli_run["run_dir"]), check=True)
    assert json.loads((crate / "ro-crate-metadata.json").read_text()) == after
    assert not [f for f in crate.iterdir() if f.name.startswith(".")]


# ---------------------------------------------------------------------- hostile records
def _record(**changes) -> dict:
    rec = {"schema": "omr-run-record/1", "kind": "resolve", "ref": "cls/m@v1", "task": "cls", "model": "m",
           "version": "v1", "digest": "sha256:" + "1" * 64, "uri": "omr://cls/m@v1", "registry": "/reg",
           "verified": "none", "at": "2026-01-01T00:00:00.000+00:00", "host": "n1", "pid": 1, "engine": "cli",
           "contents": [{"path": "model.pt", "size": 1, "sha256": "2" * 64}]}
    rec.update(changes)
    return rec


HOSTILE = {
    "dotdot-file": _record(contents=[{"path": "../../etc/passwd", "size": 1, "sha256": "2" * 64}]),
    "absolute-file": _record(file="/etc/passwd"),
    "dotdot-task": _record(task="..", uri="omr://../m@v1"),
    "uri-mismatch": _record(uri="omr://other/model@v9"),
    "wrong-type-pid": _record(pid="one"),
    "wrong-type-contents": _record(contents={"model.pt": 1}),
    "negative-size": _record(contents=[{"path": "a", "size": -1, "sha256": "2" * 64}]),
    "long-string": _record(host="h" * 100_000),
    "many-hints": _record(hints={f"k{i}": "v" for i in range(1000)}),
    "duplicate-path": _record(contents=[{"path": "a", "size": 1, "sha256": "2" * 64}] * 2),
    "bad-kind": _record(kind="delete"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE) + ["huge"])
def test_hostile_record_is_named_exit_2_nothing_written(tmp_path, case):
    """Acceptance 5, for collect and merge-into."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "good.json").write_text(json.dumps(_record()))
    bad = run_dir / f"bad-{case}.json"
    if case == "huge":
        with open(bad, "w") as f:  # 9 MiB: refused before it is read
            f.write('{"schema": "omr-run-record/1", "hints": {"x": "')
            f.write("y" * (9 * 1024 * 1024))
            f.write('"}}')
    else:
        bad.write_text(json.dumps(HOSTILE[case]))
    out = tmp_path / "out"
    p = run_omrw("provenance", "collect", str(run_dir), "-o", str(out))
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and bad.name in lines[0] and "Traceback" not in p.stderr and len(lines[0]) < 2000
    assert not out.exists()
    crate = tmp_path / "crate"
    doc = nf_prov_crate(crate)
    snapshot = (crate / "ro-crate-metadata.json").read_bytes()
    p = run_omrw("provenance", "merge-into", str(crate), str(run_dir))
    assert p.returncode == 2 and bad.name in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert (crate / "ro-crate-metadata.json").read_bytes() == snapshot and doc


def test_merge_into_refuses_a_bad_crate(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "good.json").write_text(json.dumps(_record()))
    for content, needle in (("{not json", "not JSON"), (json.dumps({"@graph": [{"x": 1}]}), "@graph"),
                            (json.dumps({"@graph": []}), "root dataset")):
        crate = tmp_path / "c"
        crate.mkdir(exist_ok=True)
        (crate / "ro-crate-metadata.json").write_text(content)
        p = run_omrw("provenance", "merge-into", str(crate), str(run_dir))
        assert p.returncode == 2 and needle in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert (crate / "ro-crate-metadata.json").read_text() == content
    # An entity of ours already present with other content is a conflict, not an overwrite.
    crate = tmp_path / "nf"
    doc = nf_prov_crate(crate)
    clash = copy.deepcopy(doc)
    clash["@graph"].append({"@id": "omr://cls/m@v1/", "@type": "Dataset", "name": "someone else's"})
    (crate / "ro-crate-metadata.json").write_text(json.dumps(clash))
    p = run_omrw("provenance", "merge-into", str(crate), str(run_dir))
    assert p.returncode == 2 and "omr://cls/m@v1/" in p.stderr

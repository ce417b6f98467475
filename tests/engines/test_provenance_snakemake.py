"""Provenance of a real Snakemake run that touches the registry only through the storage plugin
and the wrappers: a model read only via storage.omr(...) is in the pinned-models table, the
version the pipeline registers and promotes is the run's result, and the crate passes
roc-validator (offline) at REQUIRED for workflow-run-crate-0.5 (process-run-crate-0.5 included).
"""

from __future__ import annotations

import json

import pytest

from tests.rocval import assert_valid, build_cache

from .conftest import WRAPPERS, run_snakemake, toy_files

pytest.importorskip("rocrate_validator", reason="roc-validator is in the test extra")

SNAKEFILE = """
storage omr:
    provider="omr",
    registry=config["registry"],

rule all:
    default_target: True
    input: "report/ro-crate-metadata.json"

rule use_model:
    input: storage.omr("omr://demo/toy@production#model.json")
    output: "out/prediction.txt"
    shell: "wc -c < {input} > {output}"

rule register:
    input: artifacts="trained"
    output: json="out/registered.json"
    log: "logs/register.log"
    params: model="demo/trained", version="t1", extra="--no-provenance"
    wrapper: "file:WRAPPERS/omr/register"

rule promote:
    input: "out/registered.json"
    output: json="out/promoted.json"
    log: "logs/promote.log"
    params: ref="demo/trained@t1", to="production", reason="passed evaluation"
    wrapper: "file:WRAPPERS/omr/promote"

rule provenance:
    input: records="records", done=["out/prediction.txt", "out/promoted.json"]
    output: html="report/omr_provenance.html", md="report/omr_provenance.md",
            json="report/omr_provenance.json", crate="report/ro-crate-metadata.json"
    log: "logs/provenance.log"
    params: workflow=workflow.main_snakefile,
            extra="--author https://orcid.org/0000-0002-1825-0097 --workflow-url https://example.org/lab/wf/Snakefile"
    wrapper: "file:WRAPPERS/omr/provenance"
"""


@pytest.mark.snakemake
def test_snakemake_run_with_storage_plugin_and_wrappers_reports_every_touch(tmp_path, toy_registry):
    """Acceptance 3 (storage-only model in the table; produced version as result) and 1 (Snakemake)."""
    work = tmp_path / "wf"
    (work / "trained").mkdir(parents=True)
    (work / "trained" / "weights.bin").write_bytes(b"\x00\x01" * 500)
    (work / "trained" / "config.json").write_text('{"layers": 2}\n')
    (work / "records").mkdir()
    (work / "Snakefile").write_text(SNAKEFILE.replace("WRAPPERS", str(WRAPPERS)))
    run_snakemake(work, "--cores", "1", "--config", f"registry={toy_registry.url}", registry=toy_registry.url,
                  env={"OMR_RUN_DIR": str(work / "records")})

    report = json.loads((work / "report" / "omr_provenance.json").read_text())
    by_ref = {f"{m['task']}/{m['model']}@{m['version']}": m for m in report["models"]}
    toy, trained = by_ref["demo/toy@v1"], by_ref["demo/trained@t1"]
    # Read only through storage.omr(...): recorded by the plugin, file by file.
    assert [(u["kind"], u["engine"], u["file"]) for u in toy["uses"]] == [("resolve", "snakemake", "model.json")]
    assert toy["verified"] == "fast" and toy["digest"] == toy_registry.v1_digest
    assert trained["produced"] is True and trained["promoted_to"] == ["production"]
    md = (work / "report" / "omr_provenance.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| demo/toy "))
    assert toy_registry.v1_digest in row and "fast (resolve)" in row
    assert "promoted to production" in md

    crate = work / "report"
    ents = {e["@id"]: e for e in json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]}
    run = ents["#omr-run"]
    ids = lambda v: [x["@id"] for x in (v if isinstance(v, list) else [v])]  # noqa: E731
    assert ids(run["result"]) == ["omr://demo/trained@t1/"] and ids(run["object"]) == ["omr://demo/toy@v1/"]
    files = {ents[i]["name"]: ents[i]["sha256"] for i in ids(ents["omr://demo/toy@v1/"]["hasPart"])}
    import hashlib

    assert files["model.json"] == hashlib.sha256(toy_files("one")["model.json"]).hexdigest()
    assert (crate / "Snakefile").exists() and ents["./"]["mainEntity"]["@id"] == "Snakefile"
    cache = tmp_path / "rocval.sqlite"
    build_cache(cache)
    assert_valid(crate, "workflow-run-crate-0.5", cache)
    html = (crate / "omr_provenance.html").read_text()
    assert "<script" not in html and "http" not in html.split("<body>")[0]


@pytest.mark.snakemake
def test_rule_library_training_run_reports_the_version_it_produced_and_promoted(tmp_path, local_registry):
    """Acceptance 3 through the rule library: targets promote + provenance."""
    import textwrap

    import yaml

    from .conftest import RULES

    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(textwrap.dedent(f"""
        configfile: "config.yaml"
        include: "{RULES / 'omr.smk'}"

        rule all:
            default_target: True
            input: rules.omr_all.input

        rule train:
            output: directory("results/model")
            shell: "mkdir -p {{output}} && echo '{{{{\\"w\\": [1, 2]}}}}' > {{output}}/model.json"
        """))
    omr = {"registry": local_registry, "targets": ["promote", "provenance"],
           "register": {"clf": {"model": "demo/trained", "version": "t1", "artifacts": "results/model",
                                "no_provenance": True}},
           "promote": {"clf": {"to": "production", "reason": "tests pass"}}}
    (work / "config.yaml").write_text(yaml.safe_dump({"omr": omr}))
    run_snakemake(work, "--cores", "1")
    report = json.loads((work / "omr" / "provenance" / "omr_provenance.json").read_text())
    (m,) = report["models"]
    assert (m["version"], m["produced"], m["promoted_to"]) == ("t1", True, ["production"])
    assert sorted(u["kind"] for u in m["uses"]) == ["promote", "register"]
    ents = {e["@id"]: e for e in json.loads((work / "omr" / "provenance" / "ro-crate-metadata.json")
                                            .read_text())["@graph"]}
    assert ents["#omr-run"]["result"] == {"@id": "omr://demo/trained@t1/"}

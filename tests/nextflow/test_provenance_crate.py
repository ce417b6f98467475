"""The Nextflow script-block harness end to end for provenance: OMR_REGISTER, OMR_PROMOTE,
OMR_LOCK and OMR_RESOLVE put their records on the omr_provenance topic; OMR_PROVENANCECOLLECT
(given the pipeline's main.nf) writes a crate that roc-validator (offline) passes at REQUIRED for
workflow-run-crate-0.5, with the registered version as the run's result.
"""

from __future__ import annotations

import json

import pytest

from tests.rocval import assert_valid, build_cache

from .conftest import MODEL, MODULES, TOY_MODEL

pytest.importorskip("rocrate_validator", reason="roc-validator is in the test extra")


def _flat(values) -> list:
    return [p for v in values for p in (v if isinstance(v, list) else [v])]


def test_module_records_make_a_valid_workflow_run_crate(run_task, toy_registry, tmp_path):
    topic = []
    for module, inputs, ext in (
        ("register", {"meta": {"id": "v3"}, "model": MODEL, "version": "v3", "artifacts": str(TOY_MODEL)},
         {"args": "--no-provenance"}),
        ("promote", {"meta": {"id": "v3"}, "ref": f"{MODEL}@v3", "alias": "production"}, {}),
        ("lock", {"meta": {"id": "deploy"}, "refs": [f"{MODEL}@production"]}, {}),
        ("resolve", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@v1"}, {}),
    ):
        r = run_task(module, inputs, toy_registry, ext=ext)
        topic += _flat(r.topics.get("omr_provenance", []))
    assert len(topic) == 4
    main_nf = MODULES.parent / "examples" / "nextflow" / "main.nf"
    if not main_nf.exists():
        main_nf = tmp_path / "main.nf"
        main_nf.write_text("workflow { OMR_RESOLVE() }\n")
    args = (f"--workflow {main_nf} --workflow-url https://example.org/lab/pipeline/main.nf "
            f"--author https://orcid.org/0000-0002-1825-0097")
    report = run_task("provenancecollect", {"meta": {"id": "omr_provenance"}, "records": topic}, toy_registry,
                      ext={"args": args})
    crate = report.outputs["crate"][1].parent
    ents = {e["@id"]: e for e in json.loads(report.outputs["crate"][1].read_text())["@graph"]}
    run = ents["#omr-run"]
    ids = lambda v: sorted(x["@id"] for x in (v if isinstance(v, list) else [v]))  # noqa: E731
    assert ids(run["result"]) == [f"omr://{MODEL}@v3/"]
    assert ids(run["object"]) == [f"omr://{MODEL}@v1/", f"omr://{MODEL}@v3/"]   # resolved v1, locked v3
    assert "nextflow" in ents[ents["./"]["mainEntity"]["@id"]]["programmingLanguage"]["@id"]
    cache = tmp_path / "rocval.sqlite"
    build_cache(cache)
    assert_valid(crate, "workflow-run-crate-0.5", cache)


def test_omr_provenance_report_merges_into_an_nf_prov_crate(run_task, toy_registry, tmp_path):
    """What OMR_PROVENANCE publishes joins nf-prov's crate after the run (`merge-into --report`)."""
    from tests.conftest import run_omrw
    from tests.integration.test_crate_validation import nf_prov_crate

    r = run_task("resolve", {"meta": {"id": "pbmc"}, "ref": f"{MODEL}@production"}, toy_registry)
    report = run_task("provenancecollect", {"meta": {"id": "omr_provenance"},
                                            "records": _flat(r.topics["omr_provenance"])}, toy_registry)
    crate = tmp_path / "results"
    before = nf_prov_crate(crate)
    run_omrw("provenance", "merge-into", str(crate), "--report", str(report.outputs["json"][1]), check=True)
    after = json.loads((crate / "ro-crate-metadata.json").read_text())
    assert {e["@id"] for e in before["@graph"]} < {e["@id"] for e in after["@graph"]}
    ents = {e["@id"]: e for e in after["@graph"]}
    assert ents["#0b7a5e34-9d2b-4d0e-9d8a-4c6c8b7e8f10"]["object"][-1] == {"@id": f"omr://{MODEL}@v1/"}
    cache = tmp_path / "rocval.sqlite"
    build_cache(cache)
    assert_valid(crate, "workflow-run-crate-0.5", cache, known=[
        {"check": c, "message": m} for c, m in (
            ("process-run-crate-0.5_4.1", "The SoftwareApplication SHOULD have a version or softwareVersion"),
            ("workflow-ro-crate-1.0_6.1", "The README.md SHOULD be about the crate"),
            ("workflow-ro-crate-1.0_6.2", "The README.md SHOULD have text/markdown as its encodingFormat"),
            ("process-run-crate-0.5_8.3", "The Action SHOULD have a description"),
            ("process-run-crate-0.5_8.4", "The Action SHOULD have an endTime in ISO 8601 format"),
            ("process-run-crate-0.5_8.5", "If present, the Action startTime SHOULD be in ISO 8601 format"))])

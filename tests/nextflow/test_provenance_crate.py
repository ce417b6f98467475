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

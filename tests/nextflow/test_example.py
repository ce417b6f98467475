"""Acceptance 3: the example pipeline (examples/nextflow) wires resolve -> verify -> inference ->
provenance. reftrace exposes neither includes nor workflow bodies, so the graph comes from
nfgraph.py, which reads the entry workflow's statements itself.

Then the pipeline is run task by task, in the order and with the channel values its workflow
block gives them, against a registry made by the example's own `assets/make_test_registry.sh`:
each process's script block through the harness, and the Groovy channel code mirrored here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import EXAMPLE, REPO, module_main, read_json
from .harness import bin_dir, run_process
from .nfgraph import Graph, pipeline_graph
from .nflint import lint_includes

MAIN = EXAMPLE / "main.nf"


def wiring_problems(g: Graph) -> list[str]:
    """What must hold for resolve -> verify -> inference -> provenance."""
    problems = []
    need = {"OMR_RESOLVE", "OMR_VERIFY_PARALLEL", "OMR_FETCH", "TOY_INFERENCE", "OMR_PROVENANCE"}
    if not need <= set(g.calls):
        problems.append(f"not called: {sorted(need - set(g.calls))}")
        return problems
    if ("OMR_RESOLVE", "OMR_VERIFY_PARALLEL", "channel") not in g.edges:
        problems.append("verification does not take the resolved model")
    if ("OMR_VERIFY_PARALLEL", "TOY_INFERENCE", "channel") not in g.edges:
        problems.append("inference does not wait for the merged verification")
    if not g.reaches("OMR_RESOLVE", "TOY_INFERENCE") or ("OMR_FETCH", "TOY_INFERENCE", "channel") not in g.edges:
        problems.append("inference does not use the fetched copy of the resolved model")
    if ("OMR_RESOLVE", "OMR_FETCH", "channel") not in g.edges:
        problems.append("fetch does not take the pinned reference from resolve")
    topic_in = {p for p, c, label in g.edges if c == "OMR_PROVENANCE" and label == "topic:omr_provenance"}
    for producer in ("OMR_RESOLVE", "OMR_FETCH", "OMR_VERIFY_PARALLEL"):
        if producer not in topic_in:
            problems.append(f"the provenance report misses {producer}'s records")
    if any(c == "OMR_PROVENANCE" and label == "channel" for _, c, label in g.edges):
        problems.append("the provenance report should take the topic, not a channel of some tasks")
    order = {name: i for i, name in enumerate(g.calls)}
    if not order["OMR_RESOLVE"] < order["OMR_VERIFY_PARALLEL"] < order["TOY_INFERENCE"]:
        problems.append(f"call order {g.calls}")
    return problems


def test_example_process_graph():
    g = pipeline_graph(MAIN)
    assert g.calls == ["OMR_RESOLVE", "OMR_VERIFY_PARALLEL", "OMR_FETCH", "TOY_INFERENCE", "OMR_PROVENANCE"]
    assert wiring_problems(g) == []
    assert g.components["OMR_VERIFY_PARALLEL"].kind == "workflow"
    assert "omr_provenance" in g.components["OMR_VERIFY_PARALLEL"].topics      # through OMR_VERIFY(MERGE)
    assert "omr_provenance" not in g.components["TOY_INFERENCE"].topics


@pytest.mark.parametrize("old,new,problem", [
    # inference straight from the fetched copy: verification no longer gates it
    ("TOY_INFERENCE ( ch_verified_model.combine ( ch_cells ) )",
     "TOY_INFERENCE ( OMR_FETCH.out.model.combine ( ch_cells ) )", "wait for the merged verification"),
    # verification of something else than the resolved model
    ("OMR_RESOLVE.out.pinned.map { meta, pinned -> [ meta, [ pinned ], params.verify_mode ] }",
     "channel.of([ [ id: 'x' ], [], params.verify_mode ])", "verification does not take the resolved model"),
    # the report built from one task's records instead of the topic
    ("OMR_PROVENANCE ( channel.topic('omr_provenance'), 'omr_provenance' )",
     "OMR_PROVENANCE ( OMR_RESOLVE.out.provenance, 'omr_provenance' )", "misses OMR_FETCH"),
])
def test_graph_check_catches_miswiring(tmp_path, old, new, problem):
    dest = tmp_path / "examples" / "nextflow"
    shutil.copytree(EXAMPLE, dest)
    shutil.copytree(REPO / "nextflow_modules", tmp_path / "nextflow_modules")
    text = (dest / "main.nf").read_text()
    assert old in text
    (dest / "main.nf").write_text(text.replace(old, new))
    problems = wiring_problems(pipeline_graph(dest / "main.nf"))
    assert any(problem in p for p in problems), problems


def test_example_includes_and_profiles():
    assert lint_includes(MAIN) == []
    config = (EXAMPLE / "nextflow.config").read_text()
    profiles = config[config.index("profiles {"):]
    for name in ("test", "slurm", "conda"):
        assert re.search(rf"(?m)^\s{{4}}{name}\s*\{{", profiles), f"no {name} profile"
    assert "process.executor = 'slurm'" in profiles
    assert "process.shell = ['/bin/bash', '-euo', 'pipefail']" in config


@pytest.fixture
def example_registry(tmp_path) -> str:
    reg = tmp_path / "omr-test-registry"
    env = dict(os.environ, PATH=bin_dir() + os.pathsep + os.environ["PATH"])
    subprocess.run(["bash", str(EXAMPLE / "assets" / "make_test_registry.sh"), str(reg)], check=True, env=env,
                   capture_output=True, text=True)
    return str(reg)


def test_example_runs_task_by_task(tmp_path, example_registry):
    """main.nf's workflow block, task by task, with nextflow.config's -profile test values."""
    params = {"model_ref": "celltype/pbmc@production", "model_id": "pbmc", "verify_mode": "fast",
              "verify_shards": 2, "cells": str(EXAMPLE / "assets" / "cells" / "pbmc_cells.tsv")}
    ext = {"args": f"--registry {example_registry}"}          # withName: 'OMR_.*' { ext.args = ... }
    work = tmp_path / "work"
    n = iter(range(1, 1000))

    def task(main, inputs, process=None, **kw):
        return run_process(main, inputs, work / f"{next(n):02d}", process=process, **kw)

    topic: list[Path] = []

    def published(result):
        for value in result.topics.get("omr_provenance", []):
            topic.extend(value if isinstance(value, list) else [value])
        return result

    meta = {"id": params["model_id"]}
    resolved = published(task(module_main("resolve"), {"meta": meta, "ref": params["model_ref"]}, ext=ext))
    pinned = resolved.outputs["pinned"][1]
    assert re.fullmatch(r"celltype/pbmc@sha256:[0-9a-f]{64}", pinned)

    # OMR_VERIFY_PARALLEL(OMR_RESOLVE.out.pinned.map { meta, pinned -> [ meta, [ pinned ], mode ] }, shards)
    plan = task(module_main("verifyplan"), {"meta": meta, "refs": [pinned], "mode": params["verify_mode"],
                                            "shards": params["verify_shards"]}, ext=ext)
    count = read_json(plan.outputs["plan"][3])["shard_count"]
    shard_reports = []
    for i in range(1, count + 1):
        shard = published(task(module_main("verify"), {"meta": {**meta, "id": f"pbmc_shard{i}of{count}"},
                                                       "refs": [pinned], "mode": "fast", "shard": f"{i}/{count}"},
                               ext=ext))
        shard_reports.append(shard.outputs["report"][1])
    merged = published(task(module_main("verifymerge"), {"meta": meta, "reports": shard_reports}, ext=ext))
    assert read_json(merged.outputs["json"][1])["ok"] is True

    fetched = published(task(module_main("fetch"), {"meta": meta, "ref": pinned}, ext=ext))
    # .join(OMR_VERIFY_PARALLEL.out.report) on meta, then .combine(ch_cells)
    assert fetched.outputs["model"][0] == merged.outputs["report"][0] == meta
    inference = task(MAIN, {"meta": meta, "model": str(fetched.outputs["model"][1]), "cells": params["cells"]},
                     process="TOY_INFERENCE", env={"PATH": f"{EXAMPLE / 'bin'}{os.pathsep}{bin_dir()}"
                                                           f"{os.pathsep}{os.environ['PATH']}"})
    rows = inference.outputs["predictions"][1].read_text().splitlines()
    assert rows[0] == "cell\tlabel\tscore" and [r.split("\t")[1] for r in rows[1:]] == ["T cell", "B cell", "T cell"]

    # OMR_PROVENANCE(channel.topic('omr_provenance'), 'omr_provenance')
    report = task(module_main("provenancecollect"), {"meta": {"id": "omr_provenance"}, "records": topic}, ext=ext)
    doc = read_json(report.outputs["json"][1])
    [model] = doc["models"]
    digest = pinned.split("@", 1)[1]
    assert (model["task"], model["model"], model["version"], model["digest"]) == ("celltype", "pbmc",
                                                                                  "2026-01-01_001", digest)
    assert model["verified"] == "fast"
    kinds = sorted(u["kind"] for u in model["uses"])
    assert kinds == ["resolve", "resolve", "verify"]            # OMR_RESOLVE, OMR_FETCH, one verify record
    assert {u["hints"].get("NXF_TASK_NAME") for u in model["uses"]} >= {"OMR_RESOLVE (pbmc)", "OMR_FETCH (pbmc)"}
    assert digest.split(":")[1][:12] in report.outputs["html"][1].read_text()


def test_example_stub_chain(tmp_path):
    """-stub: every stub along the chain, and the subworkflow's JSON reading of the stub plan."""
    work = tmp_path / "work"
    meta = {"id": "pbmc"}
    resolved = run_process(module_main("resolve"), {"meta": meta, "ref": "celltype/pbmc@production"}, work / "1",
                           stub=True)
    pinned = resolved.outputs["pinned"][1]
    plan = run_process(module_main("verifyplan"), {"meta": meta, "refs": [pinned], "mode": "fast", "shards": 4},
                       work / "2", stub=True)
    header = read_json(plan.outputs["plan"][3])
    assert header["shard_count"] == 4 and [s["index"] for s in header["shards"]] == [1, 2, 3, 4]
    shards = [run_process(module_main("verify"), {"meta": {"id": f"pbmc_shard{i}of4"}, "refs": [pinned],
                                                  "mode": "fast", "shard": f"{i}/4"}, work / f"3-{i}", stub=True)
              for i in range(1, 5)]
    merged = run_process(module_main("verifymerge"), {"meta": meta, "reports": [s.outputs["report"][1] for s in shards]},
                         work / "4", stub=True)
    fetched = run_process(module_main("fetch"), {"meta": meta, "ref": pinned}, work / "5", stub=True)
    # every stub record of the topic is staged into one folder: their names must not collide
    topic = [p for r in (resolved, *shards, merged, fetched) for v in r.topics.get("omr_provenance", [])
             for p in (v if isinstance(v, list) else [v])]
    assert len(topic) == 6
    run_process(module_main("provenancecollect"), {"meta": {"id": "omr_provenance"}, "records": topic}, work / "7",
                stub=True)
    inference = run_process(MAIN, {"meta": meta, "model": str(fetched.outputs["model"][1]),
                                   "cells": str(EXAMPLE / "assets" / "cells" / "pbmc_cells.tsv")}, work / "6",
                            process="TOY_INFERENCE", stub=True)
    assert inference.outputs["predictions"][1].exists()

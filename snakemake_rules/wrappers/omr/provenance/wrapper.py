"""Turn run provenance records into the pinned-models report: `omrw provenance collect`.

Writes omr_provenance.json, ro-crate-metadata.json (a Workflow Run RO-Crate),
omr_provenance.md and omr_provenance.html into the folder of the outputs.
"""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import WrapperError, as_list, extra_args, main, param, run_omrw

NAMES = ("omr_provenance.json", "ro-crate-metadata.json", "omr_provenance.md", "omr_provenance.html")


def body(sm):
    records = as_list(sm.input.get("records")) or [str(p) for p in sm.input]
    if not records:
        raise WrapperError(f"{sm.rule}: input must list run record folders (or record files)")
    missing = [p for p in records if not os.path.exists(p)]
    if missing:
        raise WrapperError(f"{sm.rule}: record folder(s) missing: {', '.join(missing)}")
    outdirs = {os.path.dirname(os.path.abspath(str(p))) for p in sm.output}
    if len(outdirs) != 1:
        raise WrapperError(f"{sm.rule}: all outputs must be in one folder (the report folder)")
    unknown = [str(p) for p in sm.output if os.path.basename(str(p)) not in NAMES]
    if unknown:
        raise WrapperError(f"{sm.rule}: outputs must be among {', '.join(NAMES)}; got {', '.join(unknown)}")
    outdir = outdirs.pop()
    args = ["provenance", "collect", *records, "-o", outdir]
    workflow_file = param(sm, "workflow")
    if workflow_file:
        args += ["--workflow", str(workflow_file), "--workflow-lang", "snakemake"]
    if param(sm, "name"):
        args += ["--name", str(param(sm, "name"))]
    if param(sm, "allow_empty", False):
        args.append("--allow-empty")
    run_omrw(sm, args + extra_args(sm))
    for p in sm.output:
        if not os.path.isfile(str(p)):
            raise WrapperError(f"{sm.rule}: omrw provenance collect did not write {p}")


main(snakemake, body)  # noqa: F821

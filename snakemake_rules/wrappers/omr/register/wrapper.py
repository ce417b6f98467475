"""Register an artifact folder as a new immutable version: `omrw register TASK/MODEL ...`."""

__author__ = "omr-workflows"
__license__ = "MIT"

import json
import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import (
    WrapperError, as_list, existing_input, extra_args, main, param, run_omrw, primary_output, write_json,
)


def body(sm):
    out = primary_output(sm, "json", "the register JSON")
    artifacts = existing_input(sm, "artifacts", "dir")
    if artifacts is None:
        if len(sm.input) < 1 or not os.path.isdir(str(sm.input[0])):
            raise WrapperError(f"{sm.rule}: input `artifacts` (a folder of model files) is required")
        artifacts = str(sm.input[0])
    model, version = param(sm, "model"), param(sm, "version")
    if not model or not version:
        raise WrapperError(f"{sm.rule}: params.model (TASK/MODEL) and params.version are required")
    args = ["register", str(model), "--version", str(version), "--artifacts", artifacts]
    metadata = existing_input(sm, "metadata")
    if metadata:
        args += ["--metadata", metadata]
    hyper = existing_input(sm, "params")
    if hyper:
        args += ["--params", hyper]
    for k, v in (param(sm, "hyperparams", {}) or {}).items():
        args += ["--param", f"{k}={json.dumps(v) if not isinstance(v, str) else v}"]
    for alias in as_list(param(sm, "aliases")):
        args += ["--alias", alias]
    for ds in as_list(param(sm, "datasets")):
        args += ["--dataset", ds]
    for opt in ("actor", "reason", "code_dir"):
        if param(sm, opt):
            args += [f"--{opt.replace('_', '-')}", str(param(sm, opt))]
    if param(sm, "no_latest", False):
        args.append("--no-latest")
    args += extra_args(sm)
    _code, data = run_omrw(sm, args, records=True)
    write_json(out, data)


main(snakemake, body)  # noqa: F821

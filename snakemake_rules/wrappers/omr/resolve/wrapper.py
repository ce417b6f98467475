"""Resolve a model reference to an exact version: `omrw resolve REF --json` into the output."""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import WrapperError, existing_input, main, param, run_omrw, primary_output, verify_mode, write_json


def body(sm):
    ref = param(sm, "ref")
    if not ref:
        raise WrapperError(f"{sm.rule}: params.ref is required (TASK/MODEL[@SELECTOR][#FILE])")
    out = primary_output(sm, "json", "the resolve JSON")
    args = ["resolve", str(ref)]
    mode = verify_mode(sm)
    if mode:
        args += ["--verify", mode]
    lock = existing_input(sm, "lock") or param(sm, "lock")
    if lock:
        if not os.path.isfile(str(lock)):
            raise WrapperError(f"{sm.rule}: lock file {lock!r} does not exist")
        args += ["--lock", str(lock)]
    _code, data = run_omrw(sm, args, records=True)
    write_json(out, data)


main(snakemake, body)  # noqa: F821

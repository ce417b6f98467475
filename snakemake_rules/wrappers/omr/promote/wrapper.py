"""Move an alias to a version as an audited event: `omrw promote REF --to ALIAS`."""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import (
    WrapperError, existing_input, extra_args, main, param, read_json, run_omrw, primary_output, write_json,
)


def body(sm):
    out = primary_output(sm, "json", "the promotion event JSON")
    registered = existing_input(sm, "registered")
    ref = param(sm, "ref")
    if registered:
        doc = read_json(registered, "register document")
        if not isinstance(doc, dict) or not doc.get("uri"):
            raise WrapperError(f"{sm.rule}: {registered!r} is not an `omrw register --json` document")
        ref = doc["uri"]
    if not ref:
        raise WrapperError(f"{sm.rule}: give params.ref or an input `registered` (a register JSON)")
    to = param(sm, "to")
    if not to:
        raise WrapperError(f"{sm.rule}: params.to (the alias, e.g. production) is required")
    args = ["promote", str(ref), "--to", str(to)]
    for opt in ("reason", "actor", "demote_to"):
        if param(sm, opt):
            args += [f"--{opt.replace('_', '-')}", str(param(sm, opt))]
    if param(sm, "rollback", False):
        args.append("--rollback")
    args += extra_args(sm)
    _code, data = run_omrw(sm, args, records=True)
    write_json(out, data)


main(snakemake, body)  # noqa: F821

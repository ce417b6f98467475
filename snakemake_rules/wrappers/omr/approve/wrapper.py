"""Approve a pending request to move a protected alias: `omrw approve REF --to ALIAS --key KEY`.

The approval is a signed event; when it completes the policy's quorum, omrw moves the alias in
the same call (the output then says `"moved": true`). An approval that is refused (the
requester approving their own request, the same key twice, a key the policy does not list)
fails the job with omrw's exit code (4) and its message in the log.
"""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import (
    WrapperError, existing_input, extra_args, main, param, read_json, run_omrw, primary_output, write_json,
)


def body(sm):
    out = primary_output(sm, "json", "the approval outcome JSON")
    registered = existing_input(sm, "registered")
    ref = param(sm, "ref")
    if registered:
        doc = read_json(registered, "register document")
        if not isinstance(doc, dict) or not doc.get("uri"):
            raise WrapperError(f"{sm.rule}: {registered!r} is not an `omrw register --json` document")
        ref = doc["uri"]
    if not ref:
        raise WrapperError(f"{sm.rule}: give params.ref (TASK/MODEL@VERSION) or an input `registered` "
                           "(a register JSON)")
    to = param(sm, "to")
    if not to:
        raise WrapperError(f"{sm.rule}: params.to (the protected alias, e.g. production) is required")
    if not param(sm, "key") and not os.environ.get("OMR_SIGNING_KEY"):
        raise WrapperError(f"{sm.rule}: an approval is signed: give params.key (a private key file from "
                           "`omrw keygen`) or set $OMR_SIGNING_KEY")
    args = ["approve", str(ref), "--to", str(to)]
    for opt in ("reason", "actor"):
        if param(sm, opt):
            args += [f"--{opt}", str(param(sm, opt))]
    args += extra_args(sm)
    _code, data = run_omrw(sm, args, records=True)   # --key / --trust come from params.key / params.trust
    write_json(out, data)


main(snakemake, body)  # noqa: F821

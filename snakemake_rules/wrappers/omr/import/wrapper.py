"""Import a bundle into a registry: `omrw import BUNDLE [--aliases]`.

omrw checks the whole bundle (index, every member, the chain excerpts, signatures against the
trust root when one is set) before anything becomes visible, then publishes each version
write-once with an `import` event in the target's log. A version already there with the same
digest is a no-op (`"status": "present"`); the same name with another digest fails the job with
exit 4, a damaged bundle with exit 1 (integrity) or 2 (malformed), the log naming the member.
"""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import WrapperError, existing_input, extra_args, main, param, run_omrw, primary_output, write_json


def body(sm):
    out = primary_output(sm, "json", "the import summary JSON")
    bundle = existing_input(sm, "bundle") or param(sm, "bundle")
    if not bundle:
        raise WrapperError(f"{sm.rule}: give an input `bundle` (a file written by `omrw export`)")
    if not os.path.isfile(str(bundle)):
        raise WrapperError(f"{sm.rule}: bundle {str(bundle)!r} is not an existing file")
    args = ["import", str(bundle)]
    if param(sm, "aliases", False):
        args.append("--aliases")
    for opt in ("reason", "actor"):
        if param(sm, opt):
            args += [f"--{opt}", str(param(sm, opt))]
    if param(sm, "jobs"):
        args += ["--jobs", str(param(sm, "jobs"))]
    args += extra_args(sm)
    _code, data = run_omrw(sm, args, records=True)   # --registry / --trust / --key from params
    write_json(out, data)


main(snakemake, body)  # noqa: F821

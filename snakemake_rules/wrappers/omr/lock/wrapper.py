"""Pin references to exact versions and package digests: `omrw lock REF... -o FILE`."""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import (
    WrapperError, as_list, existing_input, extra_args, main, param, read_json, run_omrw, primary_output,
)


def body(sm):
    out = primary_output(sm, "lock", "the lock file")
    refs = as_list(param(sm, "refs"))
    resolved = sm.input.get("resolved")
    # A resolve document pins the reference it was made from (the lock is keyed by it).
    for path in as_list(resolved):
        doc = read_json(path, "resolve document")
        if not isinstance(doc, dict) or not doc.get("ref"):
            raise WrapperError(f"{sm.rule}: {path!r} is not an `omrw resolve --json` document")
        refs.append(doc["ref"])
    refs_file = existing_input(sm, "refs")
    if not refs and not refs_file:
        raise WrapperError(f"{sm.rule}: give params.refs, an input `refs` (a file of references, one a line) "
                           "or input `resolved` documents")
    args = ["lock", *refs, "-o", out]
    if refs_file:
        args += ["--from", refs_file]
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    run_omrw(sm, args + extra_args(sm), records=True)
    if not os.path.isfile(out):
        raise WrapperError(f"{sm.rule}: omrw lock wrote no lock file at {out!r}")


main(snakemake, body)  # noqa: F821

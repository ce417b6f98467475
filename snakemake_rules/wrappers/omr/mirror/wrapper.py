"""Copy versions from one registry to another, incrementally: `omrw mirror SRC DST (--lock F | --model M... | --all)`.

The same checks and records as `omrw import`: each copied version gets an `import` event in the
target's log; a version already in the target with the same digest is skipped after reading only
its metadata (`"status": "present"`), so a second run copies nothing (`bytes_copied: 0`). The same
name with another digest in the target fails the job with exit 4.
"""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import (
    WrapperError, as_list, existing_input, extra_args, main, param, run_omrw, primary_output, write_json,
)


def body(sm):
    out = primary_output(sm, "json", "the mirror summary JSON")
    source, target = param(sm, "source"), param(sm, "target")
    if not source or not target:
        raise WrapperError(f"{sm.rule}: params.source and params.target (registry paths or fsspec URLs) are required")
    lock = existing_input(sm, "lock") or param(sm, "lock")
    models = as_list(param(sm, "models"))
    everything = bool(param(sm, "all", False))
    if bool(lock) + bool(models) + everything != 1:
        raise WrapperError(f"{sm.rule}: give exactly one of an input `lock` (or params.lock), params.models or "
                           "params.all=True")
    args = ["mirror", str(source), str(target)]
    if lock:
        if not os.path.isfile(str(lock)):
            raise WrapperError(f"{sm.rule}: lock file {str(lock)!r} is not an existing file")
        args += ["--lock", str(lock)]
    elif models:
        for m in models:
            args += ["--model", m]
    else:
        args.append("--all")
    if param(sm, "aliases", False):
        args.append("--aliases")
    # Unset, omrw picks its own default (more at once when a side is remote).
    jobs = param(sm, "jobs") or (sm.threads if sm.threads and sm.threads > 1 else None)
    if jobs:
        args += ["--jobs", str(jobs)]
    if param(sm, "actor"):
        args += ["--actor", str(param(sm, "actor"))]
    args += extra_args(sm)
    _code, data = run_omrw(sm, args, records=True)   # --trust / --key from params
    write_json(out, data)


main(snakemake, body)  # noqa: F821

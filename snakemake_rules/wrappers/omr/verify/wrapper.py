"""Verify registry contents, optionally one shard of a planned split: `omrw verify ... --report`."""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import re
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import WrapperError, as_list, extra_args, main, param, run_omrw, primary_output, verify_mode

SHARD = re.compile(r"^([1-9][0-9]*)(?:/|-of-)([1-9][0-9]*)$")


def body(sm):
    report = primary_output(sm, "report", "the shard report JSON")
    refs, models = as_list(param(sm, "refs")), as_list(param(sm, "models"))
    everything = bool(param(sm, "all", False))
    if everything + bool(refs) + bool(models) != 1:
        raise WrapperError(f"{sm.rule}: give exactly one of params.refs, params.models or params.all=True")
    args = ["verify"]
    if everything:
        args.append("--all")
    elif refs:
        args += refs
    else:
        for m in models:
            args += ["--model", m]
    mode = verify_mode(sm, "mode", ("fast", "strict"))
    if mode:
        args += ["--mode", mode]
    args += ["--jobs", str(param(sm, "jobs", None) or sm.threads or 1)]
    shard = param(sm, "shard")
    if shard:
        m = SHARD.match(str(shard))
        if not m or int(m.group(1)) > int(m.group(2)):
            raise WrapperError(f"{sm.rule}: params.shard={shard!r}: use I/N (or Snakemake's I-of-N), 1 <= I <= N")
        args += ["--shard", f"{m.group(1)}/{m.group(2)}"]
    os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
    args += ["--report", report] + extra_args(sm)
    run_omrw(sm, args, records=True)
    if not os.path.isfile(report):
        raise WrapperError(f"{sm.rule}: omrw verify wrote no report at {report!r}")


main(snakemake, body)  # noqa: F821

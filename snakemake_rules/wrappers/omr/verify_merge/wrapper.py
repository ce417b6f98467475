"""Merge shard reports and prove they cover every unit exactly once: `omrw verify-merge`."""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import WrapperError, extra_args, main, run_omrw, primary_output


def body(sm):
    report = primary_output(sm, "report", "the merged report JSON")
    shards = [str(p) for p in sm.input]
    if not shards:
        raise WrapperError(f"{sm.rule}: input must list the shard reports")
    missing = [p for p in shards if not os.path.isfile(p)]
    if missing:
        raise WrapperError(f"{sm.rule}: shard report(s) missing: {', '.join(missing)}")
    os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
    run_omrw(sm, ["verify-merge", *shards, "--report", report, *extra_args(sm)])
    if not os.path.isfile(report):
        raise WrapperError(f"{sm.rule}: omrw verify-merge wrote no report at {report!r}")


main(snakemake, body)  # noqa: F821

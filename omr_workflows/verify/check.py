"""Whole-version verification used by `resolve --verify` (one process, one version).

`fast`: size + xxh3-128 (whole file, or per chunk for large files): catches corruption,
truncation and bit rot, not a deliberate attacker. `strict`: sha256 of every file, and the
manifest against the package digest recorded in the audit log: catches tampering.
Both modes report every problem, not the first, and an unexpected extra file.

This is the verification engine of `omrw verify` (plan.py + run.py) run as a single shard
over one version, so both paths agree on what counts as a problem.
"""

from __future__ import annotations

from ..errors import IntegrityError
from .filecheck import Problem

MODES = ("fast", "strict")


def check_version(reg, task: str, model: str, version: str, mode: str, jobs: int | None = None,
                  allow_unanchored: bool = False) -> list[Problem]:
    """Every problem of one published version (ours or omnibioai's); [] when it verifies.

    The expected digests come from the register audit event, read by the same `gather`
    step `omrw verify` uses. A version without one is not a version and fails, unless
    `allow_unanchored` (adopt, and a register completing an interrupted one, check such a
    version against its own manifest before recording it).
    """
    from .plan import make_plan
    from .run import default_jobs, gather, run_units

    [v] = gather(reg, [(task, model, version)], allow_unanchored=allow_unanchored)
    plan = make_plan([v], registry=reg.url, selection=[v.ref], mode=mode, shards=1)
    problems: list[Problem] = []
    for r in run_units(reg.storage, plan.units, jobs or default_jobs()):
        for issue in r.issues:
            p = Problem(issue.path, issue.kind, issue.detail)
            if p not in problems:
                problems.append(p)
    return problems


def raise_problems(what: str, problems: list[Problem]) -> None:
    if problems:
        names = "; ".join(str(p) for p in problems)
        raise IntegrityError(f"{what}: verification failed: {names}", obj=what, problems=problems)

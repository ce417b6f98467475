"""Whole-version verification used by `resolve --verify` (one process, one version).

`fast`: size + xxh3-128 (whole file, or per chunk for large files): catches corruption,
truncation and bit rot, not a deliberate attacker. `strict`: sha256 of every file, and the
manifest against the package digest recorded in the audit log: catches tampering.
Both modes report every problem, not the first, and an unexpected extra file.

This is the verification engine of `omrw verify` (plan.py + run.py) run as a single shard
over one version, so both paths agree on what counts as a problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import MANIFEST_NAME
from ..errors import IntegrityError, NotFoundError
from ..hashing import sha256_hex

MODES = ("fast", "strict")


@dataclass(frozen=True)
class Problem:
    path: str
    kind: str  # missing | size | hash | extra | manifest | error
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


def check_version(storage, version_key: str, manifest, mode: str, expected_digest: str | None,
                  expected_meta_sha256: str | None = None, expected_manifest_sha256: str | None = None,
                  jobs: int | None = None) -> list[Problem]:
    """Every problem of one published version; [] when it verifies.

    `expected_*` come from the register audit event. A version without one (its register
    was killed between publishing and logging) is checked against its own manifest, and
    the report's note says the manifest itself is unanchored.
    """
    from .plan import VersionInput, make_plan
    from .run import default_jobs, run_units

    try:
        raw_sha = sha256_hex(storage.read_bytes(f"{version_key}/{MANIFEST_NAME}"))
    except NotFoundError:
        return [Problem(MANIFEST_NAME, "missing", "missing (deleted)")]
    v = VersionInput(task=manifest.task, model=manifest.model, version=manifest.version, key=version_key,
                     manifest=manifest, manifest_sha256=raw_sha, recorded_digest=expected_digest,
                     recorded_meta_sha256=expected_meta_sha256, recorded_manifest_sha256=expected_manifest_sha256)
    plan = make_plan([v], registry=storage.url, selection=[v.ref], mode=mode, shards=1)
    results = run_units(storage, plan.units, jobs or default_jobs())
    problems: list[Problem] = []
    for r in results:
        for issue in r.issues:
            p = Problem(issue.path, issue.kind, issue.detail)
            if p not in problems:
                problems.append(p)
    return problems


def raise_problems(what: str, problems: list[Problem]) -> None:
    if problems:
        names = "; ".join(str(p) for p in problems)
        raise IntegrityError(f"{what}: verification failed: {names}", obj=what, problems=problems)

"""Merging shard reports: proving that every unit of one plan was checked exactly once.

`merge_reports` refuses (InvalidInputError) a report made against another registry than the
one the caller names (`omrw verify-merge --registry X`), and (IntegrityError, naming the
reports and shards) when:

* a report's body does not match its `report_digest`, or its plan header does not match
  its `plan_digest` (edited after it was written);
* the reports belong to different plans (different plan digests: another registry state,
  selection, mode or shard count);
* a shard is missing, or appears in more than one report;
* a report's units are not exactly the units the plan assigned to its shard: each shard's
  unit list (ids, byte ranges and expected digests) is pinned by a digest in the plan header,
  which the plan digest covers;
* a unit marked "ok" whose observed digest (what the verifier actually computed) differs
  from the expected digest carried in the plan, or whose observed size differs from the
  recorded size.

Guard against edited reports, and its limit: the report digest catches a report edited
by hand or damaged in transit; a report edited to say "ok" for a failed unit with the
report digest recomputed is still caught, because the observed digest it carries is the
wrong one. Only someone who also replaces every observed digest by the expected one (i.e.
forges the report outright) gets past this: reports are not signed. Re-run the shard
(`omrw verify --shard I/N`) when in doubt; it is cheap compared with trusting a forgery.

Failed units do not make the merge refuse: they make the merged report say `ok: false`
and `omrw verify-merge` exit 1, listing every bad file.
"""

from __future__ import annotations

import socket
from typing import Sequence

from ..errors import IntegrityError, InvalidInputError, validation_detail
from .plan import versions_digest
from .report import (
    MergedReport,
    MergedShard,
    ShardReport,
    VersionInfo,
    failures_of,
    sha256_of_lines,
    version_results,
)


MAX_REPORT_BYTES = 1024 * 1024 * 1024


def load_report(path: str) -> ShardReport:
    """Read one shard report; InvalidInputError if it is not one."""
    from ..bounds import read_bounded

    # Reports of a 10,000 x 100 registry are tens of MB; the bound stops a hostile multi-GB file.
    data = read_bounded(path, "report", max_bytes=MAX_REPORT_BYTES)
    try:
        return ShardReport.model_validate_json(data)
    except Exception as e:
        raise InvalidInputError(f"report {path!r} is not an omrw shard report ({validation_detail(e)})") from None


def _ok_claim_problem(u) -> str | None:
    if u.result != "ok":
        return None
    if u.kind == "error":
        return "marked ok but the plan says it cannot pass"
    if u.observed != u.expected:
        return "marked ok but its observed digest differs from the expected one"
    if u.size is not None and u.observed_size != u.size:
        return "marked ok but its observed size differs from the recorded one"
    return None


def merge_reports(named: Sequence[tuple[str, ShardReport]], now: str | None = None,
                  registry: str | None = None) -> MergedReport:
    """One merged report from shard reports `[(source name, report)]`.

    With `registry`, every report must have been made against that registry (as its plan
    records it): InvalidInputError naming the first report that was not, and both registries.
    Raises IntegrityError listing every structural problem (see the module docstring).
    """
    from .run import now_iso

    if not named:
        raise InvalidInputError("verify-merge: give at least one report")
    if registry is not None:
        for src, r in named:
            if r.plan.registry != registry:
                raise InvalidInputError(f"verify-merge: report {src!r} was made against registry {r.plan.registry!r}, "
                                        f"not {registry!r} (--registry)", obj=src)
    problems: list[str] = []
    for src, r in named:
        if r.report_digest != r.compute_digest():
            problems.append(f"{src}: report body does not match its report_digest (edited after it was written)")
        if r.plan.plan_digest != r.plan.compute_digest():
            problems.append(f"{src}: plan header does not match its plan_digest (edited)")
    plans: dict[str, list[str]] = {}
    for src, r in named:
        plans.setdefault(r.plan.plan_digest, []).append(src)
    if len(plans) > 1:
        groups = "; ".join(f"{d} ({', '.join(srcs)})" for d, srcs in sorted(plans.items()))
        raise IntegrityError("verify-merge: reports belong to different plans (registry state, selection, mode or "
                             f"shard count differ): {groups}" + ("; " + "; ".join(problems) if problems else ""))
    header = named[0][1].plan
    n = header.shard_count
    by_shard: dict[int, list[str]] = {}
    for src, r in named:
        by_shard.setdefault(r.shard, []).append(src)
    for index, srcs in sorted(by_shard.items()):
        if not 1 <= index <= n:
            problems.append(f"shard {index}/{n} is outside the plan ({', '.join(srcs)})")
        elif len(srcs) > 1:
            problems.append(f"shard {index}/{n} appears {len(srcs)} times ({', '.join(srcs)})")
    missing = [i for i in range(1, n + 1) if i not in by_shard]
    if missing:
        problems.append(f"missing shard(s) {', '.join(f'{i}/{n}' for i in missing)}: "
                        f"run `omrw verify ... --shard I/{n} --report FILE` for each")
    seen: set[str] = set()
    infos: dict[str, VersionInfo] = {}
    for src, r in named:
        if not 1 <= r.shard <= n:
            continue
        planned = header.shards[r.shard - 1]
        rows = [u.plan_row() for u in r.units]
        if (len(rows) != planned.units or sha256_of_lines(rows) != planned.digest
                or any(u.shard != r.shard for u in r.units)):
            problems.append(f"{src}: its units are not those the plan assigns to shard {r.shard}/{n}")
        for u in r.units:
            claim = _ok_claim_problem(u)
            if claim:
                problems.append(f"{src}: unit {u.id} is {claim} (report edited)")
            if u.id in seen and len(by_shard.get(r.shard, [])) == 1:
                problems.append(f"{src}: unit {u.id} is also in another shard")
            seen.add(u.id)
        for v in r.versions:
            info = VersionInfo(**v.model_dump(include=set(VersionInfo.model_fields)))
            if infos.setdefault(info.ref, info) != info:
                problems.append(f"{src}: version {info.ref} differs from the same version in another report")
    for src, r in named:
        for u in r.units:
            bad = _unit_name_problem(u, infos)
            if bad:
                problems.append(f"{src}: unit {u.id!r} {bad} (report edited)")
    if not problems:
        if len(seen) != header.units:
            problems.append(f"reports cover {len(seen)} units, the plan has {header.units}")
        if versions_digest(infos.values()) != header.versions_digest:
            problems.append("the versions named by the reports are not those of the plan")
    if problems:
        raise IntegrityError("verify-merge refused: " + "; ".join(problems))

    ordered = sorted(named, key=lambda x: x[1].shard)
    units = [u for _src, r in ordered for u in r.units]
    versions = version_results(sorted(infos.values(), key=lambda v: v.ref), units)
    merged = MergedReport(
        plan=header, ok=all(u.result == "ok" for u in units), merged_at=now or now_iso(), host=socket.gethostname(),
        bytes_read=sum(r.bytes_read for _s, r in ordered),
        shards=[MergedShard(index=r.shard, source=src, host=r.host, seconds=r.seconds, bytes_read=r.bytes_read,
                            report_digest=r.report_digest) for src, r in ordered],
        versions=versions, failures=failures_of(units), units=units,
    )
    return merged.sealed()


def _unit_name_problem(u, infos: dict) -> str | None:
    """Names in a unit go through the one name rule, and the unit must belong to a planned version."""
    from .. import layout
    from ..errors import OmrError
    from ..names import check_relpath
    from ..refs import parse_ref

    try:
        ref = parse_ref(u.version)
        if ref.file or ref.selector_is_digest:
            return f"names version {u.version!r}, not TASK/MODEL@VERSION"
        vkey = layout.version_key(ref.task, ref.model, ref.selector)
        check_relpath(u.path, "unit path")
        check_relpath(u.key, "unit key")
    except OmrError as e:
        return f"has an unsafe name ({e})"
    if u.version not in infos:
        return f"names version {u.version!r}, which the reports' versions do not list"
    if not u.key.startswith(vkey + "/"):
        return f"reads {u.key!r}, outside its version {u.version}"
    return None

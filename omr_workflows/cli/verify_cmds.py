"""`omrw verify` (plan, run one shard, report) and `omrw verify-merge` (prove coverage, combine).

fast mode checks size + xxh3-128: it catches corruption, truncation and bit rot, not a
deliberate attacker (who can recompute xxh3). strict mode checks sha256 of every whole
file and the manifest against the package digest recorded in the audit log: it catches
tampering too. Versions written by omnibioai-model-registry are checked with sha256 from
their sha256sums.txt in both modes.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import InvalidInputError
from .common import emit, record_provenance, registry, safe_text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: must be a whole number >= 1")
    return value


def add_parsers(sub, common) -> None:
    p = sub.add_parser(
        "verify", parents=[common], help="verify the bytes of versions (parallel, shardable over nodes)",
        description="Verify versions against their manifests. fast: size + xxh3-128 (corruption, truncation, "
                    "bit rot; not an attacker). strict: sha256 of every file + the manifest against the package "
                    "digest in the audit log (also tampering). Exit 1 listing every bad file.")
    p.add_argument("refs", nargs="*", metavar="REF", help="versions to verify ([omr://]TASK/MODEL[@SELECTOR])")
    p.add_argument("--all", action="store_true", dest="all_versions", help="every version of the registry")
    p.add_argument("--model", metavar="TASK/MODEL", action="append",
                   help="every version of a model (repeat for several models)")
    p.add_argument("--mode", choices=["fast", "strict"], default="fast", help="default: fast")
    p.add_argument("--trust-legacy", action="store_true", default=None,
                   help="let strict mode pass omnibioai versions no audit event anchors ($OMR_TRUST_LEGACY)")
    p.add_argument("--jobs", type=_positive_int, metavar="N", help="threads (default: the CPUs available)")
    p.add_argument("--shard", metavar="I/N", help="verify only shard I of N (1-based), byte-balanced")
    p.add_argument("--report", metavar="FILE", help="write the shard report (JSON) here; with --plan, the full plan")
    p.add_argument("--provenance-dir", metavar="DIR", help="append run provenance records here ($OMR_RUN_DIR)")
    p.add_argument("--plan", action="store_true", help="print the plan (shards, units, bytes, digest); verify nothing")
    p.add_argument("--shards", type=_positive_int, metavar="N", help="with --plan: number of shards")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "verify-merge", parents=[common], help="merge shard reports, proving every unit was checked once",
        description="Check that the reports share one plan and cover each of its units exactly once, re-check "
                    "every 'ok' unit's observed digest against the plan, and write one merged report. Exit 1 on a "
                    "missing or duplicated shard, reports from different plans, an edited report, or a failed unit.")
    p.add_argument("reports", nargs="+", metavar="REPORT", help="shard reports written by `omrw verify --report`")
    p.add_argument("--report", metavar="FILE", help="write the merged report (JSON) here")
    p.add_argument("--provenance-dir", metavar="DIR", help="append run provenance records here ($OMR_RUN_DIR)")
    p.set_defaults(func=cmd_verify_merge)


# ---------------------------------------------------------------------- helpers
def _write_atomic(path: str, data: bytes) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        from ..errors import StorageError

        raise StorageError(f"cannot write report {path!r}: {e.strerror}") from e


@contextmanager
def _progress(total: int, label: str):
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty() or total <= 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(label, total=total)
        yield lambda n: prog.update(task, advance=n)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _print_failures(failures) -> None:
    for f in failures:
        sys.stderr.write(safe_text(f"omrw: FAIL {f.version}: {f.path}: {f.detail}") + "\n")
    if failures:
        versions = len({f.version for f in failures})
        sys.stderr.write(f"omrw: error: verification failed: {len(failures)} bad file(s) in {versions} version(s)\n")


def _version_lines(versions, mode: str) -> list[str]:
    lines = []
    for v in versions:
        tag = {"ok": "ok  ", "fail": "FAIL", "partial": "part"}[v.result]
        how = "sha256 (legacy sha256sums.txt)" if v.legacy else mode
        extra = "  (other units in other shards)" if v.result == "partial" else ""
        lines.append(safe_text(f"{tag}  {v.ref}  {v.digest or '-'}  {how}{extra}"))
        if v.note:
            lines.append(safe_text(f"      note: {v.note}"))
    return lines


def _record(args, versions, registry_url: str, mode: str) -> None:
    """One run provenance record per fully verified version (only inside a workflow run)."""
    from ..constants import ENV_RUN_DIR

    if not (getattr(args, "provenance_dir", None) or os.environ.get(ENV_RUN_DIR, "").strip()):
        return
    from ..registry import ResolveResult, version_key

    for v in versions:
        res = ResolveResult(ref=v.ref, task=v.task, model=v.model, version=v.version, selector=v.version,
                            selector_kind="version", digest=v.digest or "", uri=f"omr://{v.task}/{v.model}@{v.version}",
                            path=f"{registry_url}/{version_key(v.task, v.model, v.version)}", registry=registry_url,
                            verified=mode, legacy=v.legacy)
        record_provenance(args, "verify", res, mode)


# ---------------------------------------------------------------------- commands
def cmd_verify(args) -> int:
    from ..verify.plan import parse_shard
    from ..verify.run import build_plan, default_jobs, run_shard

    if args.plan:
        if args.shard:
            raise InvalidInputError("--plan takes --shards N (how many shards), not --shard I/N")
        index, count = 1, args.shards or 1
    else:
        if args.shards:
            raise InvalidInputError("--shards N goes with --plan; to verify one shard use --shard I/N")
        index, count = parse_shard(args.shard) if args.shard else (1, 1)
    reg = registry(args)
    plan = build_plan(reg, refs=args.refs, all_versions=args.all_versions, model=args.model, mode=args.mode,
                      shards=count)
    header = plan.header
    if args.plan:
        if args.report:
            _write_atomic(args.report, (plan.model_dump_json(by_alias=True, indent=1) + "\n").encode())

        def human() -> str:
            rows = [f"plan {header.plan_digest}  mode {header.mode}  {header.versions} version(s)  "
                    f"{header.units} unit(s)  {_size(header.bytes)}", "shard  units  bytes"]
            rows += [f"{s.index:>5}  {s.units:>5}  {s.bytes}" for s in header.shards]
            return "\n".join(rows)

        emit(args, header.model_dump(mode="json", by_alias=True), human)
        return 0

    jobs = args.jobs or default_jobs()
    with _progress(header.shards[index - 1].bytes, f"verify {index}/{count} ({args.mode})") as advance:
        report = run_shard(reg.storage, plan, index, jobs, advance)
    if args.report:
        _write_atomic(args.report, report.to_bytes())
    _record(args, [v for v in report.versions if v.result == "ok"], header.registry, header.mode)
    summary = {
        "ok": report.ok, "mode": header.mode, "plan_digest": header.plan_digest, "shard": index,
        "shard_count": count, "registry": header.registry, "selection": header.selection,
        "units": len(report.units), "bytes_read": report.bytes_read, "seconds": report.seconds, "jobs": jobs,
        "host": report.host, "report": args.report, "report_digest": report.report_digest,
        "versions": [v.model_dump(mode="json") for v in report.versions],
        "failures": [f.model_dump(mode="json") for f in report.failures],
    }

    def human() -> str:
        lines = _version_lines(report.versions, header.mode)
        lines.append(f"{'verified' if report.ok else 'FAILED'}: shard {index}/{count} of plan {header.plan_digest}: "
                     f"{len(report.units)} unit(s), {_size(report.bytes_read)} in {report.seconds:.2f} s "
                     f"({header.mode}, {jobs} job(s))")
        return "\n".join(lines)

    emit(args, summary, human)
    _print_failures(report.failures)
    return 0 if report.ok else 1


def cmd_verify_merge(args) -> int:
    from ..verify.merge import load_report, merge_reports

    named = [(path, load_report(path)) for path in args.reports]
    expected = None
    if getattr(args, "registry", None):
        from ..storage import open_storage

        expected = open_storage(args.registry).url  # spelled as `omrw verify` records it in the plan
    merged = merge_reports(named, registry=expected)
    if args.report:
        _write_atomic(args.report, merged.to_bytes())
    # Versions checked whole inside one shard were recorded by that shard's `omrw verify`.
    spread: dict[str, set[int]] = {}
    for u in merged.units:
        spread.setdefault(u.version, set()).add(u.shard)
    _record(args, [v for v in merged.versions if v.result == "ok" and len(spread.get(v.ref, ())) > 1],
            merged.plan.registry, merged.plan.mode)
    header = merged.plan
    summary = {
        "ok": merged.ok, "mode": header.mode, "plan_digest": header.plan_digest, "shard_count": header.shard_count,
        "registry": header.registry, "selection": header.selection, "units": len(merged.units),
        "bytes_read": merged.bytes_read, "report": args.report, "report_digest": merged.report_digest,
        "shards": [s.model_dump(mode="json") for s in merged.shards],
        "versions": [v.model_dump(mode="json") for v in merged.versions],
        "failures": [f.model_dump(mode="json") for f in merged.failures],
    }

    def human() -> str:
        lines = _version_lines(merged.versions, header.mode)
        lines.append(f"{'verified' if merged.ok else 'FAILED'}: {len(merged.shards)} shard(s) of plan "
                     f"{header.plan_digest} cover all {len(merged.units)} unit(s), {_size(merged.bytes_read)}")
        return "\n".join(lines)

    emit(args, summary, human)
    _print_failures(merged.failures)
    return 0 if merged.ok else 1

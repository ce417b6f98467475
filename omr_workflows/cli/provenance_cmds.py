"""Subcommands for pinning and provenance: lock, diff, provenance collect, provenance merge-into."""

from __future__ import annotations

import argparse
import os

from ..errors import ConflictError, IntegrityError, InvalidInputError
from .common import emit, registry


def add_parsers(sub, common) -> None:
    p = sub.add_parser("lock", parents=[common], help="pin references to exact versions and digests",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Write a lock file pinning each REF to its current version and package\n"
                                   "digest, or (--check FILE) report which pins are behind their alias.\n\n"
                                   "`omrw resolve --lock FILE REF` then resolves to the pinned version and exits\n"
                                   "  3  if REF is not in the lock (or the pinned version is gone),\n"
                                   "  4  if the pinned version's package digest changed (manifest replaced),\n"
                                   "  1  with --verify fast|strict, if file bytes changed under an intact manifest\n"
                                   "     (without --verify a locked resolve reads no file bytes).")
    p.add_argument("refs", nargs="*", metavar="REF", help="[omr://]TASK/MODEL[@SELECTOR] (#FILE is ignored)")
    p.add_argument("-o", "--output", metavar="FILE", help="lock file to write (atomically, only on success)")
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="read references from FILE, one per line (# comments allowed)")
    p.add_argument("--check", metavar="FILE", help="report which pins of FILE are behind their alias")
    p.add_argument("--provenance-dir", metavar="DIR", help="append a run provenance record per pin ($OMR_RUN_DIR)")
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser("diff", parents=[common], help="what changed between two versions")
    p.add_argument("ref_a", metavar="REF_A", help="the old version, e.g. cls/m@production")
    p.add_argument("ref_b", metavar="REF_B", help="the new version, e.g. cls/m@latest")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("provenance", parents=[common], help="run provenance reports")
    psub = p.add_subparsers(dest="provenance_command", metavar="SUBCOMMAND")
    psub.required = True
    c = psub.add_parser("collect", parents=[common], help="merge run records into JSON, RO-Crate, Markdown, HTML",
                        description="Merge the run records in RUN_DIR (written by resolve/verify with $OMR_RUN_DIR) "
                                    "into OUT_DIR/omr_provenance.json, ro-crate-metadata.json, omr_provenance.md "
                                    "and omr_provenance.html.")
    c.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folder of run records (or record files)")
    c.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="folder for the report files")
    c.add_argument("--workflow", metavar="FILE|URL",
                   help="the workflow that ran (Snakefile, main.nf, ...): makes it the crate's mainEntity")
    c.add_argument("--workflow-lang", metavar="LANG", help="snakemake, nextflow, cwl, ... (default: guessed)")
    c.add_argument("--name", help="name of the crate")
    c.add_argument("--allow-empty", action="store_true", help="write a report even if there are no records")
    c.add_argument("--workflow-url", metavar="URL", help="where the workflow lives (default: its git remote)")
    c.add_argument("--workflow-version", metavar="VERSION",
                   help="the workflow's version (default: its git commit, else sha256 of the file)")
    c.add_argument("--wfrun-context", choices=["inline", "url"], default="inline",
                   help="define the workflow-run terms inline (default; expands the same, no fetch needed) "
                        "or reference https://w3id.org/ro/terms/workflow-run/context")
    _crate_options(c)
    c.set_defaults(func=cmd_collect)

    m = psub.add_parser("merge-into", parents=[common], help="add the run's models to an engine's RO-Crate",
                        description="Add the model versions and actions of the run records to an existing "
                                    "Workflow Run RO-Crate (nf-prov's, a Snakemake run crate) in CRATE_DIR. No "
                                    "entity of the crate is removed or changed; the root dataset and the run's "
                                    "CreateAction gain references. Only ro-crate-metadata.json is rewritten.")
    m.add_argument("crate_dir", metavar="CRATE_DIR", help="folder holding ro-crate-metadata.json")
    m.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="folder of run records (or record files)")
    m.add_argument("--report", metavar="FILE",
                   help="an omr_provenance.json written by collect instead of records (e.g. the one "
                        "OMR_PROVENANCE published, merged into nf-prov's crate after the run)")
    m.add_argument("--allow-empty", action="store_true", help="succeed (changing nothing) if there are no records")
    _crate_options(m)
    m.set_defaults(func=cmd_merge_into)


def _crate_options(p) -> None:
    p.add_argument("--license", metavar="URL|TEXT",
                   help="license of the crate's metadata ($OMR_CRATE_LICENSE; default "
                        "https://spdx.org/licenses/CC0-1.0)")
    p.add_argument("--author", metavar="ORCID|URL|NAME",
                   help="who the crate is by, also the action's agent ($OMR_CRATE_AUTHOR; default user@host)")
    p.add_argument("--publisher", metavar="ROR|URL|NAME",
                   help="organization publishing the crate ($OMR_CRATE_PUBLISHER; default none)")


def _registry_for_check(args, lock):
    """--registry, then $OMR_REGISTRY/$OMNIBIOAI_MODEL_REGISTRY_ROOT, then the lock's own registry."""
    from ..constants import ENV_OMNIBIOAI_ROOT, ENV_REGISTRY
    from ..registry import Registry

    if getattr(args, "registry", None) or os.environ.get(ENV_REGISTRY, "").strip() \
            or os.environ.get(ENV_OMNIBIOAI_ROOT, "").strip():
        return registry(args)
    return Registry(lock.registry)


def cmd_lock(args) -> int:
    from .. import lockfile

    if args.check:
        if args.refs or args.output or args.from_file:
            raise InvalidInputError("lock --check FILE takes no REF, -o or --from")
        lock = lockfile.read_lock(args.check)
        reg = _registry_for_check(args, lock)
        rows = lockfile.check_lock(reg, lock)
        broken = [r.ref for r in rows if r.pin_ok is False]
        doc = {"lock": args.check, "registry": reg.url, "behind": sum(bool(r.behind) for r in rows),
               "entries": rows}

        def human() -> str:
            width = max([len(r.ref) for r in rows] + [3])
            out = [f"{'ref':<{width}}  {'pinned':<20} {'now':<20} status"]
            for r in rows:
                status = ("BEHIND" if r.behind else "current") if r.behind is not None else "unresolvable"
                if r.pin_ok is False:
                    status += ", PIN BROKEN"
                out.append(f"{r.ref:<{width}}  {r.pinned_version:<20} {r.current_version or '-':<20} {status}")
                if r.error:
                    out.append(f"{'':<{width}}  ({r.error})")
            return "\n".join(out)

        emit(args, doc, human)
        if broken:
            raise ConflictError(f"lock {args.check!r}: pinned version changed for {', '.join(broken)}; "
                                f"resolving with this lock will fail")
        return 0

    if not args.output:
        raise InvalidInputError("lock needs -o FILE (or --check FILE)")
    refs = list(args.refs or [])
    if args.from_file:
        refs += lockfile.read_ref_list(args.from_file)
    if not refs:
        raise InvalidInputError("nothing to lock: give at least one REF (or --from FILE)")
    reg = registry(args)
    lock = lockfile.make_lock(reg, refs)
    lockfile.write_lock(lock, args.output)
    _record_lock(args, reg, lock)
    emit(args, lock.model_dump(mode="json", by_alias=True),
         lambda: "\n".join([f"locked {len(lock.entries)} ref(s) -> {args.output}"]
                           + [f"  {e.ref} = {e.version} {e.digest}" for e in lock.entries]))
    return 0


def _record_lock(args, reg, lock) -> None:
    """One run record per pinned version (a deployment workflow's report lists what it pinned)."""
    from ..constants import ENV_RUN_DIR

    run_dir = getattr(args, "provenance_dir", None) or os.environ.get(ENV_RUN_DIR, "").strip()
    if not run_dir:
        return
    from ..runrecord import append_record, files_of

    for e in lock.entries:
        view = reg.version(e.task, e.model, e.version)
        append_record(run_dir, "lock", {**e.model_dump(), "registry": reg.url}, "none", files=files_of(view),
                      lock_file=os.path.abspath(args.output))


def cmd_diff(args) -> int:
    from ..diff import diff_versions, load_side, render

    reg = registry(args)
    d = diff_versions(load_side(reg, args.ref_a), load_side(reg, args.ref_b))
    emit(args, d, lambda: render(d))
    return 0


def cmd_collect(args) -> int:
    from ..provenance import collect

    report = collect(args.run_dirs, args.output, workflow=args.workflow, workflow_lang=args.workflow_lang,
                     name=args.name, allow_empty=args.allow_empty, license=args.license, author=args.author,
                     publisher=args.publisher, workflow_url=args.workflow_url,
                     workflow_version=args.workflow_version, wfrun_context=args.wfrun_context)
    emit(args, {"output": args.output, "records": report.run.records, "models": len(report.models),
                "conflicts": report.conflicts,
                "files": [os.path.join(args.output, n) for n in ("omr_provenance.json", "ro-crate-metadata.json",
                                                                  "omr_provenance.md", "omr_provenance.html",
                                                                  "README.md")]},
         lambda: f"{report.run.records} record(s), {len(report.models)} model version(s) -> {args.output}")
    if report.conflicts:
        # The report is written (it is the evidence), but a version that changed during a run fails it.
        raise IntegrityError(f"run used a version with two different digests: {'; '.join(report.conflicts)}")
    return 0


def cmd_merge_into(args) -> int:
    from ..provenance import merge_into_crate

    report = merge_into_crate(args.crate_dir, args.run_dirs, allow_empty=args.allow_empty, report_file=args.report,
                              license=args.license, author=args.author, publisher=args.publisher)
    emit(args, {"crate": args.crate_dir, "records": report.run.records, "models": len(report.models),
                "conflicts": report.conflicts},
         lambda: f"{report.run.records} record(s), {len(report.models)} model version(s) merged into "
                 f"{args.crate_dir}")
    if report.conflicts:
        raise IntegrityError(f"run used a version with two different digests: {'; '.join(report.conflicts)}")
    return 0

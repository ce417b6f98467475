"""export, import, mirror: moving pinned models with their records (docs/DESIGN.md, "Bundles")."""

from __future__ import annotations

from contextlib import contextmanager

from .common import emit, registry, safe_text, signing_key, trust_root, want_json


def add_parsers(sub, common) -> None:
    p = sub.add_parser("export", parents=[common],
                       help="write pinned versions, their manifests, signatures, records and policy into one bundle file")
    p.add_argument("refs", nargs="*", metavar="TASK/MODEL@SELECTOR")
    p.add_argument("--lock", metavar="FILE", help="every version this lock file pins (the lock travels in the bundle)")
    p.add_argument("-o", "--output", required=True, metavar="BUNDLE", help="the bundle file to write (a tar)")
    p.add_argument("--dry-run", action="store_true", help="say what the bundle would hold and its size; write nothing")
    p.add_argument("--actor", help="who (default: user@host)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", parents=[common],
                       help="check a bundle completely, then publish its versions (write-once) with an import event")
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument("--aliases", action="store_true",
                   help="also move this registry's aliases as the bundle's are (audited promotions, local policy applies)")
    p.add_argument("--reason", help="recorded in each import event")
    p.add_argument("--actor", help="who (default: user@host)")
    p.add_argument("--jobs", type=int, metavar="N", help="files copied at once (default one per core, at most 4)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("mirror", parents=[common],
                       help="copy versions between two registries, incrementally, with the same checks and records "
                            "as import")
    p.add_argument("source", metavar="SRC")
    p.add_argument("target", metavar="DST")
    p.add_argument("--lock", metavar="FILE", help="the versions this lock file pins")
    p.add_argument("--model", action="append", default=[], metavar="TASK/MODEL", help="every version of a model")
    p.add_argument("--all", action="store_true", dest="everything", help="every model")
    p.add_argument("--aliases", action="store_true", help="also move the target's aliases as the source's are")
    p.add_argument("--jobs", type=int, metavar="N", help="files copied at once (default 4 when a side is remote, else one per core, at most 4)")
    p.add_argument("--actor", help="who (default: user@host)")
    p.set_defaults(func=cmd_mirror)


@contextmanager
def _progress(args, label: str, wanted: bool = True):
    """A progress bar on a terminal (never with --json), stopped however the command ends."""
    from ..bundle.progress import Transfer

    bar = Transfer(label) if wanted and Transfer.wanted(want_json(args)) else None
    try:
        yield bar
    finally:
        if bar is not None:
            bar.stop()


def _jobs(n):
    from ..errors import InvalidInputError

    if n is not None and not 1 <= n <= 64:
        raise InvalidInputError("--jobs must be between 1 and 64")
    return n


def cmd_export(args) -> int:
    from ..bundle.ops import export

    with _progress(args, "export", wanted=not args.dry_run) as bar:
        out = export(registry(args), args.refs, args.output, lock_path=args.lock, dry_run=args.dry_run,
                     actor=args.actor, progress=bar)

    def human() -> str:
        verb = "would write" if args.dry_run else "wrote"
        digest = f", bundle digest {out['bundle_digest']}" if out["bundle_digest"] else ""
        lines = [safe_text(f"{verb} {out['bundle']} ({out['size']} bytes, {len(out['versions'])} version(s), "
                           f"{out['files']} files){digest}")]
        lines += [safe_text(f"  {v['ref']}  {v['digest']}  {v['files']} files, {v['bytes']} bytes")
                  for v in out["versions"]]
        return "\n".join(lines)

    emit(args, out, human)
    return 0


def _rows(out: dict, verb: str) -> str:
    lines = [safe_text(f"{r['status']:9} {r['ref']}  {r['digest']}") for r in out["versions"]]
    lines += [safe_text(f"alias     {a['ref']}@{a['alias']} -> {a['version']} ({a['status']})") for a in out["aliases"]]
    lines.append(f"{verb} {out['files_copied']} files, {out['bytes_copied']} bytes")
    return "\n".join(lines)


def _record(args, target, out: dict, how: str) -> None:
    """Run records ($OMR_RUN_DIR) of what the call brought in and which aliases it moved: a site's
    intake workflow's report then says which versions it produced."""
    from ..refs import parse_ref
    from ..runrecord import record_touch

    for row in out["versions"]:
        if row["status"] in ("imported", "copied"):
            r = parse_ref(row["ref"])
            record_touch(args, target, "import", r.task, r.model, r.selector, row["ref"], actor=args.actor, reason=how)
    for a in out["aliases"]:
        if a["status"] == "moved":
            r = parse_ref(f"{a['ref']}@{a['alias']}")
            record_touch(args, target, "promote", r.task, r.model, a["version"], str(r), alias=a["alias"],
                         actor=args.actor, reason=how)


def cmd_import(args) -> int:
    from ..bundle.ops import import_bundle

    reg = registry(args)
    with _progress(args, "import") as bar:
        out = import_bundle(reg, args.bundle, aliases=args.aliases, actor=args.actor, reason=args.reason,
                            progress=bar, jobs=_jobs(args.jobs))
    _record(args, reg, out, f"imported from bundle {out['bundle_digest']}")
    emit(args, out, lambda: _rows(out, "copied"))
    return 0


def cmd_mirror(args) -> int:
    from ..bundle.ops import mirror
    from ..registry import Registry

    trust = trust_root(args)
    source = Registry(args.source, trust=trust)
    target = Registry(args.target, trust=trust, signer=signing_key(args))
    with _progress(args, "mirror") as bar:
        out = mirror(source, target, lock_path=args.lock, models=args.model, everything=args.everything,
                     aliases=args.aliases, actor=args.actor, jobs=_jobs(args.jobs), progress=bar)
    _record(args, target, out, f"mirrored from {out['source']}")
    emit(args, out, lambda: _rows(out, "copied"))
    return 0

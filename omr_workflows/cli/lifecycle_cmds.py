"""Lifecycle subcommands: deprecate, retire, prune (docs/DESIGN.md, "Lifecycle")."""

from __future__ import annotations

from .common import emit, registry, safe_text


def add_parsers(sub, common) -> None:
    for name, text in (("deprecate", "mark a version deprecated: it still resolves, with a warning"),
                       ("retire", "retire a version: it no longer resolves (exit 3, with the reason); prune may then "
                                  "remove its bytes")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("ref", metavar="TASK/MODEL@VERSION")
        p.add_argument("--reason", required=True, help="told to everyone who resolves it later")
        p.add_argument("--actor", help="who (default: user@host)")
        p.set_defaults(func=cmd_change, kind=name)

    p = sub.add_parser("prune", parents=[common],
                       help="remove the bytes of retired versions (and, with a retention policy, retire and prune old "
                            "archived ones); never one an alias, a pending request or a given lock file pins")
    p.add_argument("scope", nargs="?", metavar="TASK[/MODEL]")
    p.add_argument("--policy", metavar="FILE", help="retention policy (JSON or YAML): rules [{match, keep_archived}], "
                                                    "lock_files")
    p.add_argument("--keep-archived", type=int, metavar="N", help="keep the newest N archived versions per model")
    p.add_argument("--lock", action="append", default=[], metavar="FILE", help="never prune what this lock pins")
    p.add_argument("--dry-run", action="store_true", help="say what would be pruned; change nothing")
    p.add_argument("--actor", help="who (default: user@host)")
    p.set_defaults(func=cmd_prune)


def cmd_change(args) -> int:
    from ..lifecycle import change

    out = change(registry(args), args.ref, args.kind, args.reason, args.actor)
    done = {"deprecate": "deprecated", "retire": "retired"}[args.kind]
    emit(args, out, lambda: safe_text(f"{done} {out['ref']}" + (f" (event {out['event_seq']})" if out["event_seq"]
                                                              else " (already)")))
    return 0


def cmd_prune(args) -> int:
    from ..errors import InvalidInputError, StorageError
    from ..lifecycle import load_retention, prune

    if args.keep_archived is not None and args.keep_archived < 0:
        raise InvalidInputError("--keep-archived must be >= 0")
    policy = load_retention(args.policy) if args.policy else None
    task = model = None
    if args.scope:
        task, _, model = args.scope.partition("/")
        model = model or None
    out = prune(registry(args), scope=(task, model), keep_archived=args.keep_archived, policy=policy,
                lock_files=args.lock, dry_run=args.dry_run, actor=args.actor)

    def human() -> str:
        verb = "would prune" if args.dry_run else "pruned"
        lines = [safe_text(f"{verb} {r['ref']} ({r['why']})") for r in out["pruned"]]
        lines += [safe_text(f"kept   {r['ref']} ({r['why']}, but pinned by {r['kept_because']})") for r in out["kept"]]
        return "\n".join(lines) or "nothing to prune"

    emit(args, out, human)
    if out["errors"]:
        raise StorageError("prune: " + "; ".join(out["errors"]))
    return 0

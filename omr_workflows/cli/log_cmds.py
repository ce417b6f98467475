"""Subcommands that record what the log does not yet know: `adopt` (and `audit --repair` lives with audit)."""

from __future__ import annotations

from .common import emit, registry, safe_text, state_fields


def add_parsers(sub, common) -> None:
    p = sub.add_parser("adopt", parents=[common],
                       help="verify strictly and record a version found on storage without an event")
    p.add_argument("ref", metavar="TASK/MODEL@VERSION")
    p.add_argument("--reason", required=True, help="where the version came from (recorded in the event)")
    p.add_argument("--actor", help="who (default: user@host)")
    p.set_defaults(func=cmd_adopt)


def cmd_adopt(args) -> int:
    ev = registry(args).adopt(args.ref, reason=args.reason, actor=args.actor)
    emit(args, ev.model_dump(exclude=state_fields()),
         lambda: safe_text(f"adopted {ev.task}/{ev.model_name}@{ev.version} {ev.digest} (event {ev.seq})"))
    return 0

"""Subcommands over the registry itself: register, resolve, promote, list, show, history, audit, gc."""

from __future__ import annotations


from ..errors import IntegrityError, InvalidInputError
from .common import (emit, state_fields, parse_duration, parse_kv, read_json_file, read_params_file, record_provenance, registry,
                     safe_text)


def add_parsers(sub, common) -> None:
    p = sub.add_parser("register", parents=[common], help="register a new immutable version")
    p.add_argument("model", metavar="TASK/MODEL")
    p.add_argument("--version", required=True, help="version name (immutable once registered)")
    p.add_argument("--artifacts", required=True, metavar="DIR", help="folder holding the model files")
    p.add_argument("--metadata", metavar="FILE", help="JSON object merged into model_meta.json")
    p.add_argument("--param", action="append", metavar="K=V", help="hyperparameter (repeatable)")
    p.add_argument("--params", metavar="FILE", help="hyperparameters from a YAML or JSON file")
    p.add_argument("--alias", action="append", default=[], metavar="ALIAS", help="alias to set after publishing")
    p.add_argument("--no-latest", action="store_true", help="do not move the `latest` alias")
    p.add_argument("--actor", help="who registers (default: user@host)")
    p.add_argument("--reason", help="why (recorded in the audit event)")
    p.add_argument("--code-dir", metavar="DIR", help="training code repository (default: current directory)")
    p.add_argument("--dataset", action="append", metavar="REF", help="dataset reference URI[@sha256:HEX] (repeatable)")
    p.add_argument("--code", action="append", metavar="PATH", help="code dependency to digest (repeatable)")
    p.add_argument("--data", action="append", metavar="PATH", help="data dependency to digest (repeatable)")
    p.add_argument("--no-provenance", action="store_true", help="skip git/environment capture")
    p.add_argument("--card", metavar="FILE", help="Markdown model card, stored as the version's model_card.md")
    p.add_argument("--sign", metavar="KEYFILE",
                   help="sign the version (OpenSSF model-signing bundle) and its events with this EC P-256 key")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("resolve", parents=[common], help="resolve a reference to an exact version")
    p.add_argument("ref", metavar="REF", help="[omr://]TASK/MODEL[@SELECTOR][#FILE]")
    p.add_argument("--verify", choices=["none", "fast", "strict"], default=None,
                   help="verify the bytes (default: $OMR_VERIFY or none)")
    p.add_argument("--lock", metavar="FILE", help="resolve to the version pinned in this lock file")
    p.add_argument("--provenance-dir", metavar="DIR", help="append a run provenance record here ($OMR_RUN_DIR)")
    p.add_argument("--trust-legacy", action="store_true", default=None,
                   help="let strict verification pass an omnibioai version no audit event anchors ($OMR_TRUST_LEGACY)")
    p.set_defaults(func=cmd_resolve)

    p = sub.add_parser("promote", parents=[common], help="move an alias to a version (audited)")
    p.add_argument("ref", metavar="REF", help="TASK/MODEL@VERSION (or any selector)")
    p.add_argument("--to", required=True, metavar="ALIAS", help="alias or stage: production, staging, archived, ...")
    p.add_argument("--reason", help="why (recorded in the audit event)")
    p.add_argument("--actor", help="who (default: user@host)")
    p.add_argument("--rollback", action="store_true", help="allow an archived version back to production")
    p.add_argument("--demote-to", choices=["archived", "staging", "none"], default=None,
                   help="stage for the previous production version (default: $OMR_DEMOTE_TO or archived)")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("list", parents=[common], help="list tasks, models and versions")
    p.add_argument("scope", nargs="?", metavar="TASK[/MODEL]")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common], help="show one version: files, metadata, stage, aliases")
    p.add_argument("ref", metavar="REF")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("history", parents=[common], help="the audit events of a model")
    p.add_argument("model", metavar="TASK/MODEL")
    p.add_argument("--alias", help="only events that moved this alias")
    p.add_argument("--hooks", action="store_true", help="also show what each event's hooks did")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("audit", parents=[common], help="verify the tamper-evident event chain")
    p.add_argument("model", nargs="?", metavar="TASK/MODEL", help="default: every model")
    p.add_argument("--repair", action="store_true",
                   help="rebuild head, alias pointers and anchors from intact chains (never touches a broken one)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("gc", parents=[common], help="remove staging debris (never a published version)")
    p.add_argument("--older-than", type=parse_duration, default=3600.0, metavar="DURATION",
                   help="only debris older than this (default 1h; e.g. 0, 30m, 2d)")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_gc)


def record_touch(*args, **kwargs):
    """runrecord (pydantic models) is imported only by a command that writes a record."""
    from ..runrecord import record_touch as touch

    return touch(*args, **kwargs)


def _split_model(text: str) -> tuple[str, str]:
    from ..refs import parse_model_key

    return parse_model_key(text)


def cmd_register(args) -> int:
    task, model = _split_model(args.model)
    metadata = read_json_file(args.metadata, "--metadata") if args.metadata else None
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInputError(f"metadata file {args.metadata!r} must hold a JSON object")
    params = {}
    provenance = None
    if args.params or not args.no_provenance:
        from .. import capture

        if args.params:
            params.update(read_params_file(args.params))
        if not args.no_provenance:
            provenance = capture.capture(code_dir=args.code_dir, datasets=args.dataset or [],
                                         code_paths=args.code or [], data_paths=args.data or [],
                                         params_file=args.params, creator=args.actor)
    params.update(parse_kv(args.param))
    reg = registry(args)
    if args.sign:
        from .common import signing_key

        sign_key = signing_key(args, "sign")
        if reg.signer is None:
            reg.signer = sign_key
        elif reg.signer.key_id != sign_key.key_id:
            raise InvalidInputError("--sign and --key name different keys: give one")
    if provenance:
        capture.resolve_registry_datasets(provenance, lambda ref: reg.resolve(ref, materialize=False))
    res = reg.register(task, model, args.version, args.artifacts, metadata=metadata, params=params,
                       aliases=args.alias, set_latest=not args.no_latest, actor=args.actor,
                       reason=args.reason, provenance=provenance, sign=bool(args.sign),
                       card=args.card)
    record_touch(args, reg, "register", res.task, res.model_name, res.version, res.uri[len("omr://"):],
                 actor=args.actor,
                 reason=args.reason)
    emit(args, res, lambda: f"registered {res.uri} {res.digest} ({res.files} files, {res.bytes} bytes)")
    return 0


def cmd_resolve(args) -> int:
    from ..constants import default_verify

    mode = args.verify or default_verify()
    if mode not in ("none", "fast", "strict"):
        raise InvalidInputError(f"invalid $OMR_VERIFY {mode!r}: use none, fast or strict")
    if args.lock:
        from ..lockfile import read_lock, resolve_locked

        reg = registry(args, read_lock(args.lock).trust)
        mode = _policy_verify(args, reg, mode)
        res = resolve_locked(reg, args.ref, args.lock, verify=mode).model_dump(mode="json")
    else:
        reg = registry(args)
        mode = _policy_verify(args, reg, mode)
        res = reg.resolve_fields(args.ref, verify=mode)  # a plain dict: no pydantic model on this path
    if res["deprecated"]:
        import sys

        sys.stderr.write(safe_text(f"omrw: warning: {res['deprecated']}") + "\n")
    record_provenance(args, "resolve", res, mode)
    emit(args, res, res["file_path"] or res["path"])
    return 0


def _policy_verify(args, reg, mode: str) -> str:
    """With a trust root and no --verify/$OMR_VERIFY, the trusted policy's default for the model."""
    import os

    if args.verify or os.environ.get("OMR_VERIFY") or reg.trust is None:
        return mode
    from ..refs import parse_ref

    r = parse_ref(args.ref)
    return reg.loaded_policy().policy.rule_for(r.task, r.model).verify or mode


def cmd_promote(args) -> int:
    reg = registry(args)
    ev = reg.promote(args.ref, args.to, reason=args.reason, actor=args.actor,
                     rollback=args.rollback, demote_to=args.demote_to)
    from ..governance import Outcome

    if isinstance(ev, Outcome):
        from .governance_cmds import emit_outcome

        return emit_outcome(args, reg, ev, "promote")
    record_touch(args, reg, "promote", ev.task, ev.model_name, ev.version, args.ref, alias=args.to,
                 actor=ev.actor, reason=args.reason)

    def human() -> str:
        text = f"{ev.task}/{ev.model_name}@{ev.version} -> {args.to} (event {ev.seq})"
        moves = ", ".join(f"{v} -> {s}" for v, s in ev.stage_moves.items() if v != ev.version)
        return safe_text(text + (f"; {moves}" if moves else "") + (" [rollback]" if ev.rollback else ""))

    emit(args, ev.model_dump(exclude=state_fields()), human)
    return 0


def cmd_list(args) -> int:
    task = model = None
    if args.scope:
        if "/" in args.scope:
            task, model = _split_model(args.scope)
        else:
            from ..names import check_name

            task = check_name(args.scope, "task")
    rows = registry(args).list(task, model)

    def human() -> str:
        from io import StringIO

        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table("task", "model", "version", "stage", "aliases", "lifecycle", box=None)
        for r in rows:  # Text, not str: rich would read "[...]" in a value as markup
            table.add_row(*(Text(safe_text(x)) for x in (r["task"], r["model"], r["version"], r["stage"],
                                                           ",".join(r["aliases"]), r.get("lifecycle") or "")))
        buf = StringIO()
        Console(file=buf, width=120).print(table)
        return buf.getvalue() if rows else "(no versions)"

    emit(args, rows, human)
    return 0


def cmd_show(args) -> int:
    info = registry(args).show(args.ref)

    def human() -> str:
        r = info["resolve"]
        lines = [f"{r['uri']}  {r['digest']}", f"stage: {info['stage']}  aliases: {', '.join(info['aliases']) or '-'}",
                 f"path: {r['path']}", "files:"]
        lines += [f"  {f.get('size', '?'):>12}  {f['path']}" for f in info["files"]]
        if info.get("lifecycle"):
            lines.append(f"lifecycle: {info['lifecycle']}")
        out = "\n".join(safe_text(line) for line in lines)
        if info.get("card"):
            # The card is shown as text: control characters escaped, one line per line.
            out += "\nmodel card:\n" + "\n".join("  " + safe_text(line) for line in info["card"].splitlines())
        return out

    emit(args, info, human)
    return 0


def cmd_history(args) -> int:
    task, model = _split_model(args.model)
    reg = registry(args)
    events = reg.history(task, model)
    if args.alias:
        events = [e for e in events if e.get("alias") == args.alias]
    if args.hooks:
        from ..hooks_run import hook_log

        for e in events:
            if isinstance(e.get("seq"), int) and e.get("kind") != "legacy":
                e["hooks"] = hook_log(reg, task, model, e["seq"])

    def human() -> str:
        out = []
        for e in events:
            arrow = f"{e.get('from_version') or '-'} -> {e['version']}" if e.get("alias") else e["version"]
            what = e.get("alias") or ",".join(f"{v}->{s}" for v, s in (e.get("stage_moves") or {}).items())
            flag = " [rollback]" if e.get("rollback") else ""
            if e.get("request"):
                flag += f" (request {e['request']['seq']}" + (f", {len(e['approvals'])} approvals" if e.get("approvals")
                                                               else "") + ")"
            if e.get("signed_by"):
                flag += f" signed by {e['signed_by']}"
            for h in e.get("hooks") or []:
                flag += f" [hook {h.get('hook', '?')}: {'ok' if h.get('ok') else 'FAILED ' + str(h.get('error'))}]"
            # One event, one line: every value is escaped, so a newline in a reason cannot forge a line.
            out.append(safe_text(f"{str(e.get('seq', '-')):>4} {e.get('ts_utc', '')} {str(e.get('kind', '')):8} "
                                 f"{str(what):12} {arrow}  by {e.get('actor')}{flag}  {e.get('reason') or ''}"))
            if e.get("origin"):
                out += _origin_lines(e, 1)
        return "\n".join(out) or "(no events)"

    emit(args, events, human)
    return 0


def _origin_lines(e: dict, depth: int) -> list[str]:
    """An import's source records, indented under it (history)."""
    pad = "     " + "  " * depth
    o = e["origin"]
    lines = [safe_text(f"{pad}from {o.get('registry')} (chain {str(o.get('chain'))[:12]}, source event "
                       f"{o.get('anchor', {}).get('seq')}" + (f", bundle {str(o.get('bundle'))[:19]}" if o.get("bundle")
                                                              else "") + ")")]
    if e.get("origin_error"):
        lines.append(safe_text(f"{pad}ORIGIN RECORDS DAMAGED: {e['origin_error']}"))
    for s in e.get("origin_events") or []:
        what = s.get("alias") or ""
        signed = f" signed by {s['signed_by']}" if s.get("signed_by") else ""
        lines.append(safe_text(f"{pad}{str(s.get('seq')):>4} {s.get('ts_utc', '')} {str(s.get('kind')):8} {what:12} "
                               f"{s.get('version')}  by {s.get('actor')}{signed}  {s.get('reason') or ''}"))
        if s.get("origin"):
            lines += _origin_lines(s, depth + 1)
    return lines


def cmd_audit(args) -> int:
    task = model = None
    if args.model:
        task, model = _split_model(args.model)
    reg = registry(args)
    result = reg.repair(task, model) if args.repair else reg.audit(task, model)
    if args.repair and result.get("refused") and not getattr(args, "json", False):
        raise IntegrityError("audit --repair refused: " + "; ".join(result["refused"]))
    if not result["ok"]:
        if getattr(args, "json", False):
            emit(args, result)
            return IntegrityError.exit_code
        raise IntegrityError("audit failed: " + "; ".join(result["problems"]))
    def human() -> str:
        lines = [f"audit ok: {len(result['models'])} model(s), chains intact"]  # problems: main._fail escapes
        for name, sig in (result.get("signatures") or {}).items():
            if sig.get("signed") or sig.get("unsigned") and sig.get("policy"):
                lines.append(safe_text(f"  {name}: {sig['signed']} signed event(s), {len(sig['unsigned'])} unsigned, "
                                       f"{len(sig['unknown_key'])} by unknown keys (policy {sig.get('policy')})"))
        return "\n".join(lines)

    emit(args, result, human)
    return 0


def cmd_gc(args) -> int:
    removed = registry(args).gc(older_than=args.older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    emit(args, {"removed": removed, "dry_run": args.dry_run},
         "\n".join(safe_text(f"{verb} {k}") for k in removed) or "nothing to remove")
    return 0

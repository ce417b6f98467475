"""Governance subcommands: keygen, trust, policy, sign, approve, reject, requests (docs/DESIGN.md, "Governance")."""

from __future__ import annotations

import json
import sys

from ..errors import ConflictError, InvalidInputError
from .common import emit, registry, safe_text, signing_key


def add_parsers(sub, common) -> None:
    p = sub.add_parser("keygen", parents=[common], help="create an EC P-256 signing key pair (PREFIX.key, PREFIX.pub)")
    p.add_argument("-o", "--output", required=True, metavar="PREFIX", help="write PREFIX.key (0600) and PREFIX.pub")
    p.add_argument("--id", dest="signer_id", help="signer id for the policy snippet (default: the prefix's name)")
    p.add_argument("--name", help="signer's name, for the policy snippet")
    p.add_argument("--email", help="signer's email, for the policy snippet")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("trust", parents=[common], help="write a trust root (the keys that may sign a policy)")
    p.add_argument("public_keys", nargs="+", metavar="PUBKEY", help="public key PEM file(s)")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--min-policy-serial", type=int, default=1, help="refuse registry policies older than this serial")
    p.set_defaults(func=cmd_trust)

    p = sub.add_parser("policy", parents=[common], help="set, show or check the registry's signed policy")
    p.add_argument("action", choices=["set", "show", "check"])
    p.add_argument("file", nargs="?", metavar="FILE", help="policy file (JSON or YAML) for set/check")
    p.set_defaults(func=cmd_policy)

    p = sub.add_parser("sign", parents=[common], help="sign an existing version (OpenSSF model-signing bundle)")
    p.add_argument("ref", metavar="REF")
    p.add_argument("--actor", help="who (default: user@host)")
    p.add_argument("--reason", help="why (recorded in the sign event)")
    p.set_defaults(func=cmd_sign)

    for name, helptext in (("approve", "approve a pending request to move a protected alias"),
                           ("reject", "reject a pending request to move a protected alias")):
        p = sub.add_parser(name, parents=[common], help=helptext)
        p.add_argument("ref", metavar="TASK/MODEL@VERSION")
        p.add_argument("--to", required=True, metavar="ALIAS", help="the protected alias the request moves")
        p.add_argument("--reason", help="why (recorded in the signed event)")
        p.add_argument("--actor", help="who (default: user@host)")
        if name == "approve":
            p.add_argument("--rollback", action="store_true", help="allow an archived version back to production")
            p.add_argument("--demote-to", choices=["archived", "staging", "none"], default=None)
        p.set_defaults(func=cmd_approve if name == "approve" else cmd_reject)

    p = sub.add_parser("requests", parents=[common], help="pending promotion requests, and who still has to approve")
    p.add_argument("scope", nargs="?", metavar="TASK[/MODEL]")
    p.set_defaults(func=cmd_requests)


def cmd_keygen(args) -> int:
    from pathlib import Path

    from ..signing.keys import generate

    prefix = args.output
    key = generate(f"{prefix}.key", f"{prefix}.pub")
    snippet = {"id": args.signer_id or Path(prefix).name, "name": args.name or Path(prefix).name,
               "email": args.email, "public_key": key.public_pem, "roles": []}
    doc = {"private_key": f"{prefix}.key", "public_key": f"{prefix}.pub", "key_id": key.key_id, "signer": snippet}
    emit(args, doc, lambda: f"wrote {prefix}.key (private, keep it out of the registry) and {prefix}.pub\n"
                            f"key id {key.key_id}\npolicy signer entry:\n{json.dumps(snippet, indent=2)}")
    return 0


def cmd_trust(args) -> int:
    from ..lockfile import write_atomic
    from ..policy import TrustRoot, trust_from_public_key

    keys = [trust_from_public_key(p).keys[0] for p in args.public_keys]
    root = TrustRoot(keys=keys, min_policy_serial=args.min_policy_serial)
    write_atomic(args.output, root.model_dump_json(indent=2).encode() + b"\n")
    emit(args, root, f"wrote trust root {args.output} ({len(keys)} key(s))")
    return 0


def cmd_policy(args) -> int:
    from .. import layout
    from ..policy import load_policy_file, read_policy, sign_policy

    if args.action in ("set", "check"):
        if not args.file:
            raise InvalidInputError(f"policy {args.action} needs FILE")
        policy = load_policy_file(args.file)
        if args.action == "check":
            emit(args, policy, f"{args.file}: valid policy, serial {policy.serial}, {len(policy.signers)} signer(s), "
                               f"{len(policy.rules)} rule(s)")
            return 0
        key = signing_key(args)
        if key is None:
            raise InvalidInputError("policy set needs --key ROOTKEY: a key of the trust root signs the policy")
        reg = registry(args)
        if reg.trust is not None and key.key_id not in reg.trust.verify_keys():
            raise ConflictError("policy set: --key is not a key of the configured trust root; consumers would ignore "
                                "the policy")
        reg.storage.write_replace(layout.policy_key(), sign_policy(policy, key))
        emit(args, {"policy": layout.policy_key(), "serial": policy.serial, "signed_by": key.key_id},
             f"policy serial {policy.serial} signed by {key.key_id[:12]} -> {reg.url}/{layout.policy_key()}")
        return 0
    reg = registry(args)
    lp = read_policy(reg.storage, reg.trust)
    if lp is None:
        emit(args, None, "(no policy)")
        return 0
    doc = {"digest": lp.digest, "verified": lp.verified, "signed_by": lp.signed_by,
           "policy": lp.policy.model_dump(mode="json", by_alias=True)}
    if not lp.verified and not args.json:
        sys.stderr.write("omrw: warning: no trust root configured; this policy is unverified (--trust FILE)\n")
    emit(args, doc, lambda: json.dumps(doc, indent=2))
    return 0


def cmd_sign(args) -> int:
    from ..constants import default_actor
    from ..governance import sign_version
    reg = registry(args)
    if reg.signer is None:
        raise InvalidInputError("sign needs --key KEYFILE (or $OMR_SIGNING_KEY)")
    res = reg.resolve(args.ref, materialize=False)
    out = sign_version(reg, res.task, res.model, res.version, reg.signer, actor=args.actor or default_actor(),
                       reason=args.reason)
    emit(args, out, lambda: safe_text(f"signed {out['ref']} with key {out['key_id'][:12]} -> {out['signature']}"
                                      + ("" if out["created"] else " (already signed)")))
    return 0


def _governed(args, reg):
    lp = reg.loaded_policy()
    if lp is None:
        raise ConflictError(f"{reg.url} has no policy: there are no protected aliases to approve")
    return lp


def _version_ref(reg, text: str):
    from ..refs import parse_ref

    r = parse_ref(text)
    res = reg.resolve(r, materialize=False)
    return r, res.version


def cmd_approve(args) -> int:
    from ..constants import default_actor, default_demote_to
    from ..governance import approve

    reg = registry(args)
    lp = _governed(args, reg)
    r, version = _version_ref(reg, args.ref)
    out = approve(reg, lp, r.task, r.model, version, args.to, actor=args.actor or default_actor(), reason=args.reason,
                  rollback=args.rollback, demote_to=args.demote_to or default_demote_to())
    return emit_outcome(args, reg, out, "approve")


def cmd_reject(args) -> int:
    from ..constants import default_actor
    from ..governance import reject

    reg = registry(args)
    lp = _governed(args, reg)
    r, version = _version_ref(reg, args.ref)
    out = reject(reg, lp, r.task, r.model, version, args.to, actor=args.actor or default_actor(), reason=args.reason)
    return emit_outcome(args, reg, out, "reject")


def emit_outcome(args, reg, out, verb: str) -> int:
    from ..runrecord import record_touch

    if out.events and verb != "reject":
        record_touch(args, reg, "approve" if verb == "approve" else "promote", out.ref.split("/")[0],
                     out.ref.split("/")[1], out.version, f"{out.ref}@{out.version}", alias=out.alias,
                     actor=getattr(args, "actor", None), reason=getattr(args, "reason", None))

    def human() -> str:
        ref = f"{out.ref}@{out.version}"
        if verb == "reject":
            return safe_text(f"rejected request {out.request_seq}: {ref} -> {out.alias} (event {out.events[-1]})")
        if out.moved:
            return safe_text(f"{ref} -> {out.alias} (event {out.events[-1]}, request {out.request_seq}, "
                             f"{out.approvals} approval(s))")
        lead = (f"approved request {out.request_seq}" if verb == "approve" else
                f"requested {ref} -> {out.alias} (request {out.request_seq})" if out.events else
                f"request {out.request_seq} for {ref} -> {out.alias} is pending")
        return safe_text(f"{lead}: {out.approvals}/{out.required} approval(s); alias not moved; may still approve: "
                         f"{', '.join(out.waiting_for) or 'nobody'}")

    emit(args, out, human)
    return 0


def cmd_requests(args) -> int:
    from ..governance import pending_requests
    from ..refs import parse_model_key

    reg = registry(args)
    lp = reg.loaded_policy()
    if args.scope and "/" in args.scope:
        pairs = [parse_model_key(args.scope)]
    else:
        pairs = [(t, m) for t in ([args.scope] if args.scope else reg.tasks()) for m in reg.models(t)]
    rows = [row for t, m in pairs for row in pending_requests(reg, lp, t, m)]

    def human() -> str:
        if not rows:
            return "(no pending requests)"
        return "\n".join(safe_text(
            f"{r['request_seq']:>5} {r['ref']} -> {r['alias']}  by {r['requested_by']}  "
            f"{r.get('counted', len(r['approvals']))}/{r.get('required', '?')} approvals; "
            f"waiting for: {', '.join(r.get('waiting_for', [])) or '-'}") for r in rows)

    emit(args, rows, human)
    return 0

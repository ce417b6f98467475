"""Governance: signed versions and events, the approval workflow, and the check at the point of use.

Why it is built this way (docs/DESIGN.md, "Governance"): the registry may sit on Lustre or in
a bucket, with no server to ask, and anyone who can write it can rewrite the whole event
chain consistently. So trust cannot come from the registry itself: every event the actor
signs (DSSE over its canonical bytes), every version can carry OpenSSF model-signing bundles
(`signatures/<version>/<keyid>.sig`, write-once, outside the version folder), and a consumer
that pins a trust root (policy.py) checks, at resolve time, exactly the events its answer
depends on: the tail (it holds the alias state), the event that set the alias (for a
protected alias: its request and every approval, each signed by a distinct allowed signer)
and the event that registered the version. A rewrite must forge a signature to pass.
"""

from __future__ import annotations

from .events import STATE_FIELDS
from pydantic import BaseModel, Field

from . import audit, layout, transitions
from .constants import MANIFEST_NAME
from .errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError, OmrError, TrustError
from .events import EVENT_PAYLOAD_TYPE, Event, EventRef, now_utc_iso, signed_payload
from .hashing import sha256_hex
from .policy import LoadedPolicy, Policy, Rule, Signer
from .results import TrustInfo  # noqa: F401  (part of this module's API)

MAX_SIGNATURE_BYTES = 4 << 20
MAX_SIGNATURES = 64


# ---------------------------------------------------------------------- event signatures
def event_signer(policy: Policy, ev: Event, data: bytes, ref: str) -> Signer | None:
    """The policy signer who signed this event file; None when it is unsigned.

    Raises UnknownKeyError/BadSignatureError (IntegrityError, exit 1) naming the event.
    """
    from .signing import dsse

    if ev.signature is None:
        return None
    what = f"{ref}: audit event {ev.seq}"
    try:
        dsse.verify(EVENT_PAYLOAD_TYPE, signed_payload(data), ev.signature.model_dump(), policy.verify_keys())
    except dsse.UnknownKeyError:
        raise TrustError(f"{what} is signed by key {ev.signature.keyid[:12]}…, which is not a signer of "
                                   f"the policy", obj=what) from None
    except dsse.BadSignatureError:
        raise TrustError(f"{what}: its signature does not match its bytes (changed after it was signed, "
                                     f"or the chain was rewritten)", obj=what) from None
    return policy.signer(ev.signature.keyid)


def _signed_event(policy: Policy, storage, mkey: str, seq: int, ref: str, *, required: bool,
                  expect_sha: str | None = None) -> tuple[Event, Signer | None]:
    ev, data = audit.read_event(storage, mkey, seq)
    if f"{ev.task}/{ev.model_name}" != ref.split("@", 1)[0]:
        # A signed event copied in from another model's log: its signature is genuine, its place is not.
        raise TrustError(f"{ref}: audit event {seq} belongs to {ev.task}/{ev.model_name} (copied from another log)",
                         obj=f"{ref}#{seq}")
    if expect_sha is not None and sha256_hex(data) != expect_sha:
        raise TrustError(f"{ref}: audit event {seq} does not have the sha256 the log records for it (edited)",
                             obj=f"{ref}#{seq}")
    signer = event_signer(policy, ev, data, ref)
    if signer is None and required:
        raise TrustError(f"{ref}: audit event {seq} ({ev.kind}) is not signed, and the policy requires signed "
                             f"events (rewritten chain, or written without --key)", obj=f"{ref}#{seq}")
    return ev, signer


# ---------------------------------------------------------------------- model signatures
def signed_files(version) -> dict[str, str]:
    """relative path -> sha256 of every file of the version folder, as recorded (no byte is read).

    omr_manifest.json is covered as a copied folder holds it (`cache.cache_manifest_bytes`),
    so the same signature verifies the local version folder and a cached copy of a remote one.
    """
    from .cache import cache_manifest_bytes

    if version.manifest is None:
        raise ConflictError(f"{version.ref} was written by omnibioai-model-registry (no manifest): it cannot be signed",
                            obj=version.ref)
    files = {e.path: e.sha256 for e in version.manifest.all_files()}
    files[MANIFEST_NAME] = sha256_hex(cache_manifest_bytes(version))
    return files


def write_signature(reg, v, key) -> tuple[str, bool]:
    """Write the model-signing bundle of version `v` by `key`, write-once: (key, created).

    An existing bundle by the same key must cover the same files (else IntegrityError)."""
    from .signing import modelsig

    mkey = layout.model_key(v.task, v.model)
    files = signed_files(v)
    skey = layout.signature_key(mkey, v.version, key.key_id)
    if reg.storage.write_if_absent(skey, modelsig.sign_files(v.ref, files, key)):
        return skey, True
    signed = modelsig.verify_bundle(reg.storage.read_small(skey, MAX_SIGNATURE_BYTES), {key.key_id: key.public()},
                                    skey)
    if modelsig.compare(signed.files, files):
        raise IntegrityError(f"{v.ref}: the signature by this key ({skey}) covers other files than the version has",
                             obj=skey)
    return skey, False


def sign_version(reg, task: str, model: str, version: str, key, *, actor: str, reason: str | None = None) -> dict:
    """`omrw sign`: the bundle of an existing version (which stays untouched) and a `sign` event."""
    v = reg.version(task, model, version)
    lp = reg.loaded_policy()
    if lp is not None and lp.policy.signers and lp.policy.signer(key.key_id) is None:
        raise ConflictError(f"{v.ref}: key {key.key_id[:12]}… is not a signer of the registry's policy", obj=v.ref)
    skey, created = write_signature(reg, v, key)
    if not created:
        return {"ref": v.ref, "key_id": key.key_id, "signature": skey, "event_seq": None, "created": False}
    mkey = layout.model_key(task, model)

    def build(last):
        return transitions.sign_fields(last, task=task, model=model, version=version, digest=v.digest,
                                       key_id=key.key_id, actor=actor, reason=reason, ts=now_utc_iso())

    event, sha = audit.append(reg.storage, mkey, build, signer=key)
    reg.committed(mkey, event, sha, [])
    return {"ref": v.ref, "key_id": key.key_id, "signature": skey, "event_seq": event.seq, "created": True}


def version_signers(reg, policy: Policy, v, ref: str) -> tuple[list[Signer], list[str]]:
    """(policy signers with a valid signature of the version, problems of the signatures by policy
    signers that do not verify). Signatures by keys the policy does not name are ignored here
    (`omrw audit` counts them)."""
    from .signing import modelsig

    mkey = layout.model_key(v.task, v.model)
    base = layout.signatures_key(mkey, v.version)
    names = [n for n in reg.storage.listdir(base) if layout.SIGNATURE_NAME_RE.fullmatch(n)][:MAX_SIGNATURES]
    if not names:
        return [], []
    files = signed_files(v)
    keys = policy.verify_keys()
    good: list[Signer] = []
    problems: list[str] = []
    for name in sorted(names):
        key_id = name[:-4]
        if key_id not in keys:
            continue
        skey = f"{base}/{name}"
        try:
            data = reg.storage.read_small(skey, MAX_SIGNATURE_BYTES)
            signed = modelsig.verify_bundle(data, {key_id: keys[key_id]}, skey)
        except (IntegrityError, InvalidInputError) as exc:  # bad or foreign signature, malformed, oversized
            problems.append(f"{name}: {exc}")
            continue
        diff = modelsig.compare(signed.files, files)
        if diff:
            problems.append(f"{name}: covers other files ({'; '.join(diff[:3])})")
            continue
        good.append(policy.signer(key_id))
    return good, problems


# ---------------------------------------------------------------------- the point of use
def check_resolution(reg, lp: LoadedPolicy, v, *, tail: Event | None, tail_sha: str, alias: str | None,
                     alias_seq: int | None) -> TrustInfo:
    """Refuse (IntegrityError, exit 1, naming the event) what the trusted policy does not vouch for."""
    policy = lp.policy
    rule = policy.rule_for(v.task, v.model)
    ref = f"{v.task}/{v.model}"
    mkey = layout.model_key(v.task, v.model)
    storage = reg.storage
    info = TrustInfo(policy_digest=lp.digest, policy_serial=policy.serial, policy_signed_by=lp.signed_by)
    if v.legacy or v.anchor is None:
        raise TrustError(f"{v.ref}: not registered through the audit log (legacy or copied in): the policy "
                             f"cannot vouch for it", obj=v.ref)
    if tail is not None and rule.require_signed_events:
        _signed_event(policy, storage, mkey, tail.seq, ref, required=True, expect_sha=tail_sha)
    if alias is not None and alias_seq is not None:
        _check_alias(policy, rule, storage, mkey, ref, v, alias, alias_seq, info)
    anchor, anchor_signer = _signed_event(policy, storage, mkey, v.anchor.seq, ref, required=rule.require_signed_events,
                                          expect_sha=v.anchor.event_sha256)
    if anchor_signer is not None:
        if not policy.allows(rule.register_, anchor_signer):
            raise TrustError(f"{v.ref}: registered (event {anchor.seq}) by {anchor_signer.id}, whom the policy "
                                 f"does not allow to register {ref}", obj=f"{ref}#{anchor.seq}")
        info.registered_by = anchor_signer.label()
    signers, problems = version_signers(reg, policy, v, v.ref)
    if problems:
        # By a signer of the policy, yet it does not verify or covers other files: swapped or forged.
        raise TrustError(f"{v.ref}: a signature of the version does not verify: {problems[0]}", obj=v.ref)
    allowed = [s for s in signers if policy.allows(rule.register_, s)]
    info.signed_by = [s.label() for s in allowed]
    if rule.require_signed_versions and not allowed:
        raise TrustError(f"{v.ref} is not signed by a signer the policy allows, and the policy requires signed "
                             f"versions; run `omrw sign {v.ref} --key KEY`", obj=v.ref)
    return info


def _check_alias(policy: Policy, rule: Rule, storage, mkey: str, ref: str, v, alias: str, alias_seq: int,
                 info: TrustInfo) -> None:
    info.alias_event_seq = alias_seq
    ev, signer = _signed_event(policy, storage, mkey, alias_seq, ref, required=rule.require_signed_events)
    if ev.alias != alias or ev.version != v.version or ev.kind not in ("promote", "register"):
        raise TrustError(f"{ref}@{alias}: audit event {alias_seq}, which the log says set the alias, is a "
                             f"{ev.kind} of {ev.version} (state rewritten)", obj=f"{ref}#{alias_seq}")
    if alias not in rule.protected_aliases:
        if signer is not None and not policy.allows(rule.promote, signer):
            raise TrustError(f"{ref}@{alias}: moved (event {alias_seq}) by {signer.id}, whom the policy does not "
                                 f"allow to move aliases", obj=f"{ref}#{alias_seq}")
        return
    info.protected = True
    if ev.kind != "promote" or ev.request is None:
        raise TrustError(f"{ref}@{alias} is protected, but audit event {alias_seq} moved it without an approved "
                             f"request; run `omrw requests {ref}`", obj=f"{ref}#{alias_seq}")
    approvers = approval_check(policy, rule, storage, mkey, ref, ev)
    info.requested_by = approvers[0]
    info.approved_by = approvers[1:]


def approval_check(policy: Policy, rule: Rule, storage, mkey: str, ref: str, ev: Event) -> list[str]:
    """[requester, approver...] of a promote that completes a request, each signature checked."""
    at = f"{ref}#{ev.seq}"
    req, requester = _signed_event(policy, storage, mkey, ev.request.seq, ref, required=True,
                                   expect_sha=ev.request.sha256)
    if req.kind != "request" or req.alias != ev.alias or req.version != ev.version or req.digest != ev.digest:
        raise TrustError(f"{ref}@{ev.alias}: event {ev.seq} names request {ev.request.seq}, which is not a request "
                             f"to move {ev.alias} to {ev.version}", obj=at)
    if not policy.allows(rule.promote, requester):
        raise TrustError(f"{ref}@{ev.alias}: request {req.seq} is by {requester.id}, whom the policy does not "
                             f"allow to request promotions", obj=at)
    seen: set[str] = set()
    labels: list[str] = []
    for ref_ in ev.approvals:
        ap, signer = _signed_event(policy, storage, mkey, ref_.seq, ref, required=True, expect_sha=ref_.sha256)
        if (ap.kind != "approve" or ap.request is None or ap.request.seq != req.seq or ap.version != ev.version
                or ap.alias != ev.alias or ap.seq > ev.seq):
            raise TrustError(f"{ref}@{ev.alias}: event {ev.seq} counts event {ap.seq} as an approval of request "
                                 f"{req.seq}, which it is not", obj=at)
        if signer.id == requester.id or signer.id in seen or not policy.allows(rule.approve, signer):
            continue
        seen.add(signer.id)
        labels.append(signer.label())
    if len(seen) < rule.approvals_required:
        raise TrustError(f"{ref}@{ev.alias} is protected and needs {rule.approvals_required} distinct approvals "
                             f"besides the requester; event {ev.seq} has {len(seen)}", obj=at)
    return [requester.label(), *labels]


# ---------------------------------------------------------------------- the approval workflow
class Outcome(BaseModel):
    """What a promote/approve/reject did: the events it appended, and whether the alias moved."""

    ref: str
    alias: str
    version: str
    request_seq: int | None = None
    events: list[int] = Field(default_factory=list)
    moved: bool = False
    event: dict | None = Field(default=None, description="the newest event this call appended")
    approvals: int = 0
    required: int = 0
    waiting_for: list[str] = Field(default_factory=list, description="signers who may still approve")


def _require_signer(reg, lp: LoadedPolicy, rule_principals: list[str], what: str, ref: str) -> Signer:
    if reg.signer is None:
        raise ConflictError(f"{ref}: {what} a protected alias must be signed: pass --key KEY (or set "
                            f"$OMR_SIGNING_KEY)", obj=ref)
    signer = lp.policy.signer(reg.signer.key_id)
    if signer is None:
        raise ConflictError(f"{ref}: key {reg.signer.key_id[:12]}… is not a signer of the registry's policy", obj=ref)
    if not lp.policy.allows(rule_principals, signer):
        raise ConflictError(f"{ref}: the policy does not allow {signer.id} to {what.split()[0]} here", obj=ref)
    return signer


def _counted(lp: LoadedPolicy, rule: Rule, req) -> tuple[set[str], list[str]]:
    """(signer ids whose approvals count, signers who could still approve)."""
    policy = lp.policy
    requester = policy.signer(req.key_id)
    counted = set()
    for a in req.approvals:
        s = policy.signer(a.key_id)
        if s is not None and (requester is None or s.id != requester.id) and policy.allows(rule.approve, s):
            counted.add(s.id)
    waiting = [s.id for s in policy.signers if s.id not in counted and (requester is None or s.id != requester.id)
               and policy.allows(rule.approve, s)]
    return counted, waiting


def request_or_complete(reg, lp: LoadedPolicy, rule: Rule, task: str, model: str, version: str, digest: str,
                        alias: str, *, actor: str, reason: str | None, rollback: bool, demote_to: str) -> Outcome:
    """`omrw promote` to a protected alias: record a signed request, or complete one the policy satisfies."""
    ref = f"{task}/{model}"
    _require_signer(reg, lp, rule.promote, "requesting a move of", ref)
    mkey = layout.model_key(task, model)
    out = Outcome(ref=ref, alias=alias, version=version, required=rule.approvals_required)
    last = reg.state(task, model)
    found = transitions.pending_for(last, alias, version)
    if found is None:
        def build(last):
            fields = transitions.request_fields(last, task=task, model=model, version=version, digest=digest,
                                                alias=alias, key_id=reg.signer.key_id, actor=actor, reason=reason,
                                                ts=now_utc_iso())
            if fields is None:
                raise audit.NoChange(last)
            return fields

        try:
            event, sha = audit.append(reg.storage, mkey, build, signer=reg.signer)
            reg.committed(mkey, event, sha, [])
            out.events.append(event.seq)
            out.event = event.model_dump(mode="json", exclude=STATE_FIELDS)
            last = event
        except audit.NoChange as nc:
            last = nc.last
        found = transitions.pending_for(last, alias, version)
    return _complete_if_ready(reg, lp, rule, task, model, found, out, actor=actor, reason=reason, rollback=rollback,
                              demote_to=demote_to)


def _complete_if_ready(reg, lp, rule, task, model, found, out: Outcome, *, actor, reason, rollback, demote_to) -> Outcome:
    mkey = layout.model_key(task, model)
    if found is None:
        return out
    req_seq, req = found
    out.request_seq = req_seq
    counted, waiting = _counted(lp, rule, req)
    out.approvals, out.waiting_for = len(counted), waiting
    if len(counted) < rule.approvals_required:
        return out
    req_sha = _event_sha(reg.storage, mkey, req_seq)

    def build(last):
        pending = (last.requests if last else {}).get(str(req_seq))
        if pending is None:
            raise audit.NoChange(last)  # someone else completed (or rejected) it first
        refs = [EventRef(seq=a.seq, sha256=_event_sha(reg.storage, mkey, a.seq)) for a in pending.approvals]
        return transitions.complete_fields(last, task=task, model=model, request_seq=req_seq, request_sha=req_sha,
                                           approvals=refs, rollback=rollback, demote_to=demote_to, actor=actor,
                                           reason=reason, ts=now_utc_iso())

    try:
        event, sha = audit.append(reg.storage, mkey, build, signer=reg.signer)
    except audit.NoChange:
        return out
    reg.committed(mkey, event, sha, [event.alias])
    out.events.append(event.seq)
    out.event = event.model_dump(mode="json", exclude=STATE_FIELDS)
    out.moved = True
    out.approvals = len(event.approvals)
    return out


def _event_sha(storage, mkey: str, seq: int) -> str:
    return sha256_hex(audit.read_event(storage, mkey, seq)[1])


def _find_request(reg, task: str, model: str, version: str, alias: str) -> tuple[int, object]:
    ref = f"{task}/{model}@{version}"
    found = transitions.pending_for(reg.state(task, model), alias, version)
    if found is None:
        raise NotFoundError(f"{ref}: no pending request to move {alias} to it; `omrw promote {ref} --to {alias}` "
                            f"records one", obj=ref)
    return found


def approve(reg, lp: LoadedPolicy, task: str, model: str, version: str, alias: str, *, actor: str,
            reason: str | None, rollback: bool = False, demote_to: str = "archived") -> Outcome:
    """One signed approval; when it satisfies the policy the alias moves in the next event."""
    rule = lp.policy.rule_for(task, model)
    ref = f"{task}/{model}"
    if alias not in rule.protected_aliases:
        raise ConflictError(f"{ref}@{alias} is not a protected alias: `omrw promote` moves it directly", obj=ref)
    _require_signer(reg, lp, rule.approve, "approving a move of", ref)
    req_seq, _req = _find_request(reg, task, model, version, alias)
    mkey = layout.model_key(task, model)
    req_sha = _event_sha(reg.storage, mkey, req_seq)
    requester = lp.policy.signer(_req.key_id)
    me = lp.policy.signer(reg.signer.key_id)

    def build(last):
        if requester is not None and me is not None and requester.id == me.id:
            raise ConflictError(f"{ref}@{version}: {me.id} requested this move and cannot approve it (two-person rule)",
                                obj=ref)
        return transitions.approve_fields(last, task=task, model=model, request_seq=req_seq, request_sha=req_sha,
                                          key_id=reg.signer.key_id, actor=actor, reason=reason, ts=now_utc_iso())

    event, sha = audit.append(reg.storage, mkey, build, signer=reg.signer)
    reg.committed(mkey, event, sha, [])
    out = Outcome(ref=ref, alias=alias, version=version, required=rule.approvals_required, events=[event.seq],
                  event=event.model_dump(mode="json", exclude=STATE_FIELDS))
    found = (req_seq, event.requests[str(req_seq)])
    return _complete_if_ready(reg, lp, rule, task, model, found, out, actor=actor, reason=reason, rollback=rollback,
                              demote_to=demote_to)


def reject(reg, lp: LoadedPolicy, task: str, model: str, version: str, alias: str, *, actor: str,
           reason: str | None) -> Outcome:
    rule = lp.policy.rule_for(task, model)
    ref = f"{task}/{model}"
    _require_signer(reg, lp, rule.approve, "rejecting a move of", ref)
    req_seq, _req = _find_request(reg, task, model, version, alias)
    mkey = layout.model_key(task, model)
    req_sha = _event_sha(reg.storage, mkey, req_seq)

    def build(last):
        return transitions.reject_fields(last, task=task, model=model, request_seq=req_seq, request_sha=req_sha,
                                         actor=actor, reason=reason, ts=now_utc_iso())

    event, sha = audit.append(reg.storage, mkey, build, signer=reg.signer)
    reg.committed(mkey, event, sha, [])
    return Outcome(ref=ref, alias=alias, version=version, request_seq=req_seq, events=[event.seq],
                   event=event.model_dump(mode="json", exclude=STATE_FIELDS))


def pending_requests(reg, lp: LoadedPolicy | None, task: str, model: str) -> list[dict]:
    last = reg.state(task, model)
    out = []
    for seq, req in sorted((last.requests if last else {}).items(), key=lambda kv: int(kv[0])):
        item = {"ref": f"{task}/{model}@{req.version}", "alias": req.alias, "request_seq": int(seq),
                "requested_by": req.actor, "approvals": [a.actor for a in req.approvals]}
        if lp is not None:
            rule = lp.policy.rule_for(task, model)
            counted, waiting = _counted(lp, rule, req)
            requester = lp.policy.signer(req.key_id)
            item.update(requested_by=requester.label() if requester else req.actor, required=rule.approvals_required,
                        counted=len(counted), waiting_for=waiting)
        out.append(item)
    return out


# ---------------------------------------------------------------------- writers follow the policy
def check_write(reg, lp: LoadedPolicy | None, task: str, model: str, action: str) -> None:
    """A writer refuses (ConflictError, exit 4) what the registry's policy forbids it."""
    if lp is None:
        return
    rule = lp.policy.rule_for(task, model)
    ref = f"{task}/{model}"
    principals = {"register": rule.register_, "promote": rule.promote, "adopt": rule.register_, "import": rule.register_}.get(action, ["*"])
    if reg.signer is None:
        if rule.require_signed_events:
            raise ConflictError(f"{ref}: the registry's policy requires signed events: pass --key KEY (or set "
                                f"$OMR_SIGNING_KEY) to {action}", obj=ref)
        return
    signer = lp.policy.signer(reg.signer.key_id)
    if signer is None:
        raise ConflictError(f"{ref}: key {reg.signer.key_id[:12]}… is not a signer of the registry's policy", obj=ref)
    if not lp.policy.allows(principals, signer):
        raise ConflictError(f"{ref}: the registry's policy does not allow {signer.id} to {action}", obj=ref)


# ---------------------------------------------------------------------- audit
def signature_report(lp: LoadedPolicy | None, events: list[tuple[Event, bytes]], ref: str) -> dict:
    """Every event's signature, by outcome: unsigned, unknown key, bad signature (the last one is damage)."""
    from .signing import dsse

    report = {"signed": 0, "unsigned": [], "unknown_key": [], "bad_signature": []}
    keys = lp.policy.verify_keys() if lp is not None else {}
    for ev, data in events:
        if ev.signature is None:
            report["unsigned"].append(ev.seq)
            continue
        try:
            dsse.verify(EVENT_PAYLOAD_TYPE, signed_payload(data), ev.signature.model_dump(), keys)
        except dsse.UnknownKeyError:
            report["unknown_key"].append(ev.seq)
            continue
        except (dsse.BadSignatureError, OmrError, ValueError):
            report["bad_signature"].append(ev.seq)
            continue
        report["signed"] += 1
    return report


def audit_model(reg, task: str, model: str, log: dict | None = None) -> tuple[dict, list[str]]:
    """(signature report, problems) of one model for `omrw audit`: every event's signature, by
    outcome, and every model signature of its versions. A bad signature is always a problem;
    unsigned events and unknown keys are problems only under a trusted policy that requires
    signed events."""
    mkey = layout.model_key(task, model)
    ref = f"{task}/{model}"
    problems: list[str] = []
    try:
        lp = reg.loaded_policy()
    except IntegrityError as exc:
        return {"policy": "refused"}, [str(exc)]
    from .fsck import intact_events, read_log

    # A broken chain gives []: `fsck.model_problems` names it; there is nothing to attribute.
    raw = intact_events(read_log(reg.storage, mkey) if log is None else log)
    report = signature_report(lp, raw, ref)
    for seq in report["bad_signature"]:
        problems.append(f"{ref}: audit event {seq}: its signature does not match its bytes (changed after it was "
                        f"signed, or the chain was rewritten)")
    if lp is not None and lp.verified and lp.policy.rule_for(task, model).require_signed_events:
        for seq in report["unsigned"]:
            problems.append(f"{ref}: audit event {seq} is not signed, and the trusted policy requires signed events")
        for seq in report["unknown_key"]:
            problems.append(f"{ref}: audit event {seq} is signed by a key that is not a signer of the trusted policy")
    if lp is not None:
        report["versions"] = {}
        for name in reg.versions(task, model):
            try:
                v = reg.version(task, model, name)
            except OmrError:
                continue  # model_problems names it
            if v.legacy:
                continue
            signers, bad = version_signers(reg, lp.policy, v, v.ref)
            report["versions"][name] = [s.label() for s in signers]
            problems += [f"{v.ref}: signature {p}" for p in bad]
    report["policy"] = None if lp is None else ("verified" if lp.verified else "unverified")
    return report, problems

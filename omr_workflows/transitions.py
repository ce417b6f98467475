"""Pure state transitions of the log: the next event's fields from the last event (no I/O).

Each function takes the last event (or None) and returns the fields of the next one, or
raises ConflictError when the stage policy refuses; `audit.append` calls it again after a
lost sequence race, so the state it derives is always the state it chains on.
"""

from __future__ import annotations

from .errors import ConflictError
from .events import (ANCHOR_KINDS, STAGE_ALIASES, STAGE_ONLY, AliasState, Approval, Event, EventRef, Lifecycle,
                     PendingRequest)

def register_fields(last: Event | None, *, kind: str = "register", task: str, model: str, version: str,
                    digest: str, meta_sha256: str | None, manifest_sha256: str | None, set_latest: bool,
                    actor: str, reason: str | None, ts: str, origin=None) -> dict:
    """The next event when `version` comes into existence (register, adopt or import)."""
    seq = (last.seq + 1) if last else 1
    aliases = dict(last.aliases) if last else {}
    digests = dict(last.digests) if last else {}
    from_version = aliases["latest"].version if set_latest and "latest" in aliases else None
    if set_latest:
        aliases["latest"] = AliasState(version=version, seq=seq)
    digests[version] = digest
    return dict(kind=kind, task=task, model_name=model, version=version,
                alias="latest" if set_latest else None, from_version=from_version, digest=digest,
                meta_sha256=meta_sha256, manifest_sha256=manifest_sha256, actor=actor,
                reason=reason or kind, ts_utc=ts, aliases=aliases, stages=dict(last.stages) if last else {},
                digests=_live_digests(aliases, digests), requests=dict(last.requests) if last else {},
                lifecycle=dict(last.lifecycle) if last else {}, **({"origin": origin} if origin is not None else {}))


def promote_fields(last: Event | None, *, task: str, model: str, version: str, digest: str, to: str,
                   rollback: bool, demote_to: str, actor: str, reason: str | None, ts: str) -> dict:
    """The next event when alias (or stage) `to` moves to `version`; ConflictError if the policy refuses.

    `--to production` moves the previous production version to `demote_to`; an archived
    version returns to production only with `rollback`; the version that holds the production
    alias cannot be moved to another stage (development, staging, archived) while it holds it.
    """
    ref = f"{task}/{model}@{version}"
    gone = (last.lifecycle if last else {}).get(version)
    if gone is not None and gone.state != "deprecated":
        raise ConflictError(f"{gone.describe(ref)}; a retired version cannot be promoted", obj=ref)
    aliases = dict(last.aliases) if last else {}
    stages = dict(last.stages) if last else {}
    digests = dict(last.digests) if last else {}
    current = stages.get(version, "development")
    in_production = "production" in aliases and aliases["production"].version == version
    moves: dict[str, str] = {}
    target_stage = to if to in STAGE_ONLY else STAGE_ALIASES.get(to)
    if in_production and target_stage is not None and target_stage != "production":
        raise ConflictError(f"{ref} holds the production alias; promote another version to production before "
                            f"moving it to {target_stage}", obj=ref)
    alias = from_version = None
    if to in STAGE_ONLY:
        moves[version] = to
    else:
        alias = to
        prev = aliases.get(to)
        from_version = prev.version if prev else None
        if target_stage == "production" and current == "archived" and not rollback:
            raise ConflictError(f"{ref} is archived; bringing it back to production is a rollback: add --rollback",
                                obj=ref)
        if target_stage:
            moves[version] = target_stage
        if target_stage == "production" and from_version and from_version != version and demote_to != "none":
            moves[from_version] = demote_to
        aliases[to] = AliasState(version=version, seq=(last.seq + 1) if last else 1)
        digests[version] = digest
    for v, s in moves.items():
        if s == "development":
            stages.pop(v, None)
        else:
            stages[v] = s
    return dict(kind="promote" if alias else "stage", task=task, model_name=model, version=version,
                alias=alias, from_version=from_version, digest=digest, rollback=rollback, stage_moves=moves,
                actor=actor, reason=reason, ts_utc=ts, aliases=aliases, stages=stages,
                digests=_live_digests(aliases, digests), requests=dict(last.requests) if last else {},
                lifecycle=dict(last.lifecycle) if last else {})


def _live_digests(aliases: dict[str, AliasState], digests: dict[str, str]) -> dict[str, str]:
    live = {a.version for a in aliases.values()}
    return {v: d for v, d in digests.items() if v in live}


from .audit import anchors_of  # noqa: E402,F401  (its owner; kept importable from here)


# ---------------------------------------------------------------------- governance (docs/DESIGN.md, "Governance")
def _carry(last: Event | None) -> dict:
    """The state an event that moves nothing passes on."""
    if last is None:
        return dict(aliases={}, stages={}, digests={}, requests={}, lifecycle={})
    return dict(aliases=dict(last.aliases), stages=dict(last.stages), digests=dict(last.digests),
                requests=dict(last.requests), lifecycle=dict(last.lifecycle))


def pending_for(last: Event | None, alias: str, version: str) -> tuple[int, PendingRequest] | None:
    """The pending request to move `alias` to `version`, if any (the oldest one)."""
    for seq, req in sorted((last.requests if last else {}).items(), key=lambda kv: int(kv[0])):
        if req.alias == alias and req.version == version:
            return int(seq), req
    return None


def request_fields(last: Event | None, *, task: str, model: str, version: str, digest: str, alias: str,
                   key_id: str, actor: str, reason: str | None, ts: str) -> dict | None:
    """A request to move protected `alias` to `version`; None when the same request is pending."""
    if pending_for(last, alias, version) is not None:
        return None
    seq = (last.seq + 1) if last else 1
    state = _carry(last)
    state["requests"][str(seq)] = PendingRequest(alias=alias, version=version, digest=digest, key_id=key_id, actor=actor)
    return dict(kind="request", task=task, model_name=model, version=version, alias=alias, digest=digest,
                actor=actor, reason=reason, ts_utc=ts, **state)


def _pending(last: Event | None, request_seq: int, ref: str) -> PendingRequest:
    req = (last.requests if last else {}).get(str(request_seq))
    if req is None:
        raise ConflictError(f"{ref}: request {request_seq} is not pending (completed, rejected or unknown); run "
                            f"`omrw requests`", obj=ref)
    return req


def approve_fields(last: Event | None, *, task: str, model: str, request_seq: int, request_sha: str, key_id: str,
                   actor: str, reason: str | None, ts: str) -> dict:
    """One approval of a pending request; the requester and a second approval by one key are refused."""
    ref = f"{task}/{model}"
    req = _pending(last, request_seq, ref)
    if key_id == req.key_id:
        raise ConflictError(f"{ref}@{req.version}: the requester cannot approve their own request {request_seq} "
                            f"(two-person rule)", obj=ref)
    if any(a.key_id == key_id for a in req.approvals):
        raise ConflictError(f"{ref}@{req.version}: request {request_seq} is already approved by this key", obj=ref)
    seq = (last.seq + 1) if last else 1
    state = _carry(last)
    state["requests"][str(request_seq)] = req.model_copy(
        update={"approvals": [*req.approvals, Approval(seq=seq, key_id=key_id, actor=actor)]})
    return dict(kind="approve", task=task, model_name=model, version=req.version, alias=req.alias, digest=req.digest,
                request=EventRef(seq=request_seq, sha256=request_sha), actor=actor, reason=reason, ts_utc=ts, **state)


def reject_fields(last: Event | None, *, task: str, model: str, request_seq: int, request_sha: str,
                  actor: str, reason: str | None, ts: str) -> dict:
    ref = f"{task}/{model}"
    req = _pending(last, request_seq, ref)
    state = _carry(last)
    del state["requests"][str(request_seq)]
    return dict(kind="reject", task=task, model_name=model, version=req.version, alias=req.alias, digest=req.digest,
                request=EventRef(seq=request_seq, sha256=request_sha), actor=actor, reason=reason, ts_utc=ts, **state)


def complete_fields(last: Event | None, *, task: str, model: str, request_seq: int, request_sha: str,
                    approvals: list[EventRef], rollback: bool, demote_to: str, actor: str, reason: str | None,
                    ts: str) -> dict:
    """The one promote event that moves a protected alias, naming its request and every approval."""
    ref = f"{task}/{model}"
    req = _pending(last, request_seq, ref)
    fields = promote_fields(last, task=task, model=model, version=req.version, digest=req.digest, to=req.alias,
                            rollback=rollback, demote_to=demote_to, actor=actor, reason=reason, ts=ts)
    requests = dict(last.requests)
    del requests[str(request_seq)]
    return fields | dict(request=EventRef(seq=request_seq, sha256=request_sha), approvals=approvals, requests=requests)


def sign_fields(last: Event | None, *, task: str, model: str, version: str, digest: str, key_id: str, actor: str,
                reason: str | None, ts: str) -> dict:
    return dict(kind="sign", task=task, model_name=model, version=version, digest=digest, key_id=key_id, actor=actor,
                reason=reason, ts_utc=ts, **_carry(last))


# ---------------------------------------------------------------------- lifecycle (docs/DESIGN.md, "Lifecycle")
def lifecycle_fields(last: Event | None, *, kind: str, task: str, model: str, version: str, digest: str, actor: str,
                     reason: str | None, ts: str) -> dict | None:
    """deprecate, retire or prune `version`; None when it is already in that state.

    A version an alias points to or a pending request names cannot be retired (move the alias
    or reject the request first); only a retired version can be pruned.
    """
    ref = f"{task}/{model}@{version}"
    state = _carry(last)
    current = state["lifecycle"].get(version)
    order = {"deprecated": 1, "retired": 2, "pruned": 3}
    target = {"deprecate": "deprecated", "retire": "retired", "prune": "pruned"}[kind]
    if current is not None and order[current.state] >= order[target]:
        return None
    if kind in ("retire", "prune"):
        holders = sorted(a for a, st in state["aliases"].items() if st.version == version)
        if holders:
            raise ConflictError(f"{ref} is what {', '.join('@' + a for a in holders)} points to: move "
                                f"{'them' if len(holders) > 1 else 'it'} to another version before retiring it", obj=ref)
        waiting = sorted(int(s) for s, r in state["requests"].items() if r.version == version)
        if waiting:
            raise ConflictError(f"{ref} is named by pending request {waiting[0]}: reject it before retiring it", obj=ref)
    if kind == "prune" and (current is None or current.state != "retired"):
        raise ConflictError(f"{ref} is not retired: `omrw retire` it first (prune removes only retired versions' bytes)",
                            obj=ref)
    seq = (last.seq + 1) if last else 1
    state["lifecycle"][version] = Lifecycle(state=target, seq=seq, ts_utc=ts, actor=actor, reason=reason,
                                            retired_seq=current.seq if kind == "prune" and current else None)
    return dict(kind=kind, task=task, model_name=model, version=version, digest=digest, actor=actor, reason=reason,
                ts_utc=ts, **state)

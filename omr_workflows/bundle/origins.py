"""Reading an imported version's source records back: for `history` and for `omrw audit`.

An `import` event names the source chain (`Origin.chain`, the sha256 of its event 1) and the
source event that registered the version; the chain's events 1..`Origin.head` sit write-once
under `audit/origins/<chain>/`. Both readers re-check the chain links, so an edited origin
record is a finding, not a history.
"""

from __future__ import annotations

from .. import layout
from ..errors import OmrError
from ..events import STATE_FIELDS, Event
from .source import check_origin, read_chain

#: kinds of source events that tell a version's story (its registration, approvals, moves, signatures)
STORY = ("register", "adopt", "import", "request", "approve", "reject", "promote", "stage", "sign", "deprecate")
MAX_DEPTH = 8


def _chain(storage, mkey: str, ev: Event, ref: str) -> tuple[list[bytes], Event]:
    o = ev.origin
    events = read_chain(storage, lambda s: layout.origin_event_key(mkey, o.chain, s), o.head.seq,
                        f"{ref}: origin chain {o.chain[:12]}", o.head.sha256)
    return events, check_origin(ev, events, ref)


def origin_history(storage, mkey: str, ev: Event, ref: str, policy=None, depth: int = 0) -> list[dict]:
    """The source events about `ev.version`, oldest first, each with `signed_by` when a policy names its key."""
    from .. import audit

    events, src = _chain(storage, mkey, ev, ref)
    out = []
    for seq, data in enumerate(events, start=1):
        e = audit.parse_event(data, ref, seq)
        if e.version != ev.version or e.kind not in STORY:
            continue
        row = e.model_dump(mode="json", exclude=STATE_FIELDS | {"signature"}) | {"chain": ev.origin.chain}
        if e.signature is not None:
            row["signed_by"] = _signer(policy, e, data, ref)
        if e.kind == "import" and e.origin is not None and seq == src.seq and depth < MAX_DEPTH:
            row["origin_events"] = origin_history(storage, mkey, e, ref, policy, depth + 1)
        out.append(row)
    return out


def _signer(policy, e: Event, data: bytes, ref: str) -> str:
    if policy is None:
        return f"key {e.signature.keyid[:12]} (no policy to name it)"
    from ..governance import event_signer

    try:
        s = event_signer(policy.policy, e, data, ref)
        return s.label() + ("" if policy.verified else " (unverified policy)")
    except OmrError as exc:
        return f"INVALID: {exc}"


def origin_problems(storage, mkey: str, events: list[tuple[Event, str]], ref: str) -> list[str]:
    """What `omrw audit` finds wrong with the origin records the log's import events name."""
    problems = []
    for ev, _sha in events:
        if ev.kind == "import" and ev.origin is not None:
            try:
                _chain(storage, mkey, ev, ref)
            except OmrError as exc:
                problems.append(str(exc))
    return problems

"""Pure state transitions of the log: the next event's fields from the last event (no I/O).

Each function takes the last event (or None) and returns the fields of the next one, or
raises ConflictError when the stage policy refuses; `audit.append` calls it again after a
lost sequence race, so the state it derives is always the state it chains on.
"""

from __future__ import annotations

from .errors import ConflictError
from .events import ANCHOR_KINDS, STAGE_ALIASES, STAGE_ONLY, AliasState, Event

def register_fields(last: Event | None, *, kind: str = "register", task: str, model: str, version: str,
                    digest: str, meta_sha256: str | None, manifest_sha256: str | None, set_latest: bool,
                    actor: str, reason: str | None, ts: str) -> dict:
    """The next event when `version` comes into existence (register or adopt)."""
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
                digests=_live_digests(aliases, digests))


def promote_fields(last: Event | None, *, task: str, model: str, version: str, digest: str, to: str,
                   rollback: bool, demote_to: str, actor: str, reason: str | None, ts: str) -> dict:
    """The next event when alias (or stage) `to` moves to `version`; ConflictError if the policy refuses.

    `--to production` moves the previous production version to `demote_to`; an archived
    version returns to production only with `rollback`; the version that holds the production
    alias cannot be moved to another stage (development, staging, archived) while it holds it.
    """
    ref = f"{task}/{model}@{version}"
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
                digests=_live_digests(aliases, digests))


def _live_digests(aliases: dict[str, AliasState], digests: dict[str, str]) -> dict[str, str]:
    live = {a.version for a in aliases.values()}
    return {v: d for v, d in digests.items() if v in live}


def anchors_of(events: list[tuple[Event, str]]) -> dict[str, tuple[Event, str]]:
    """version -> (its anchoring event, that event's sha256); the first anchor of a version counts."""
    out: dict[str, tuple[Event, str]] = {}
    for ev, h in events:
        if ev.kind in ANCHOR_KINDS and ev.version not in out:
            out[ev.version] = (ev, h)
    return out

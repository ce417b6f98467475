"""Retiring versions: deprecate, retire, prune and the retention policy (docs/DESIGN.md, "Lifecycle").

Why bytes are removed only after an event says so: HPC quotas force old versions out, but a
provenance record from years ago must still get a clear answer ("retired on DATE by WHO:
REASON", exit 3) rather than "not found" or, worse, damage reported by `audit`. So a version is
first retired (an event; the bytes stay), then pruned: the `prune` event is the commit point,
and only then are its content files removed. Its manifest, `model_meta.json`, events and
signatures stay. A SIGKILL before the prune event leaves the version intact and retired; after
it, retired with some files gone, which a second `omrw prune` finishes and no reader serves.
"""

from __future__ import annotations

import fnmatch
import os

from pydantic import BaseModel, ConfigDict, Field

from . import audit, layout, transitions
from ._faults import crash_point
from .constants import default_actor
from .errors import ConflictError, InvalidInputError, OmrError
from .events import STATE_FIELDS, now_utc_iso
from .refs import Ref, parse_ref


class RetentionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    match: str = Field(default="*", min_length=1, max_length=256, description="glob over TASK/MODEL")
    keep_archived: int = Field(ge=0, le=10**6, description="archived versions kept per model, newest first")


class RetentionPolicy(BaseModel):
    """`omrw prune --policy FILE`: which archived versions to retire and prune. Never one that
    an alias, a pending request or a listed lock file pins."""

    model_config = ConfigDict(extra="forbid")
    rules: list[RetentionRule] = Field(default_factory=list, max_length=1024)
    lock_files: list[str] = Field(default_factory=list, max_length=1024,
                                  description="lock files whose pins are kept (relative to the policy file)")

    def keep_for(self, task: str, model: str) -> int | None:
        for rule in self.rules:
            if fnmatch.fnmatchcase(f"{task}/{model}", rule.match):
                return rule.keep_archived
        return None


def load_retention(path: str) -> RetentionPolicy:
    from .errors import validation_detail
    from .policy import read_file

    data = read_file(path, f"retention policy {path}")
    from .bounds import load_json_bounded, load_yaml_bounded

    obj = (load_yaml_bounded if path.endswith((".yml", ".yaml")) else load_json_bounded)(data, path)
    try:
        policy = RetentionPolicy.model_validate(obj)
    except ValueError as exc:
        raise InvalidInputError(f"{path}: {validation_detail(exc)}", obj=path) from None
    base = os.path.dirname(os.path.abspath(path))
    policy.lock_files = [p if os.path.isabs(p) else os.path.join(base, p) for p in policy.lock_files]
    return policy


# ---------------------------------------------------------------------- one version
def change(reg, ref: str | Ref, kind: str, reason: str | None, actor: str | None = None) -> dict:
    """deprecate / retire / prune one version as an audited event (prune also removes its bytes)."""
    r = parse_ref(ref) if isinstance(ref, str) else ref
    if not reason or not reason.strip():
        raise InvalidInputError(f"{kind} needs --reason: it is what every later user of the version is told")
    if r.file:
        raise InvalidInputError(f"{kind} takes a version reference, not a file (#{r.file})")
    last = reg.state(r.task, r.model)
    version = r.selector
    gone = (last.lifecycle if last else {}).get(version)
    if gone is None or gone.state == "deprecated":
        version = reg.resolve(r, materialize=False).version
    v = reg.version(r.task, r.model, version)
    return _apply(reg, v, kind, reason, actor or default_actor())


def _apply(reg, v, kind: str, reason: str, actor: str) -> dict:
    mkey = layout.model_key(v.task, v.model)
    lp = reg.loaded_policy()
    if lp is not None:
        from .governance import check_write

        check_write(reg, lp, v.task, v.model, "promote")

    def build(last):
        fields = transitions.lifecycle_fields(last, kind=kind, task=v.task, model=v.model, version=v.version,
                                              digest=v.digest, actor=actor, reason=reason, ts=now_utc_iso())
        if fields is None:
            raise audit.NoChange(last)
        return fields

    out = {"ref": v.ref, "kind": kind, "event_seq": None, "removed": []}
    try:
        event, sha = audit.append(reg.storage, mkey, build, signer=reg.signer)
        reg.committed(mkey, event, sha, [])
        out["event_seq"] = event.seq
        out["event"] = event.model_dump(mode="json", exclude=STATE_FIELDS)
    except audit.NoChange:
        pass
    if kind == "prune":
        out["removed"] = remove_bytes(reg, v)
    return out


def remove_bytes(reg, v) -> list[str]:
    """Remove the content files of a version the log says is pruned (idempotent)."""
    state = reg.state(v.task, v.model)
    gone = (state.lifecycle if state else {}).get(v.version)
    if gone is None or gone.state != "pruned":
        raise ConflictError(f"{v.ref}: not pruned in the log; refusing to remove its files", obj=v.ref)
    removed = []
    for entry in v.manifest.content.files if v.manifest else []:
        key = f"{v.data_key}/{entry.path}"
        if reg.storage.exists(key):
            crash_point("prune-remove")
            reg.storage.remove_tree(key)
            removed.append(entry.path)
    return removed


# ---------------------------------------------------------------------- the retention policy
def pinned_versions(reg, task: str, model: str, locks) -> dict[str, str]:
    """version -> why it must stay: an alias, a pending request, a lock file."""
    last = reg.state(task, model)
    why: dict[str, str] = {}
    for alias, st in (last.aliases.items() if last else []):
        why.setdefault(st.version, f"alias @{alias}")
    for seq, req in (last.requests.items() if last else []):
        why.setdefault(req.version, f"pending request {seq}")
    for path, lock in locks:
        for e in lock.entries:
            if (e.task, e.model) == (task, model):
                why.setdefault(e.version, f"lock file {path}")
    return why


def plan_prune(reg, task: str, model: str, keep_archived: int | None, locks) -> tuple[list[dict], list[dict]]:
    """(to prune, kept) for one model: retired versions not yet pruned, plus archived versions
    beyond the newest `keep_archived` (by registration order); pinned ones are kept."""
    events, _ = reg.log(task, model)
    last = events[-1][0] if events else None
    if last is None:
        return [], []
    order = [v for v, _ in sorted(transitions.anchors_of(events).items(), key=lambda kv: kv[1][0].seq)]
    life = last.lifecycle
    pins = pinned_versions(reg, task, model, locks)
    chosen: dict[str, str] = {}
    for v in order:
        if v in life and life[v].state == "retired":
            chosen[v] = "retired"
    if keep_archived is not None:
        archived = [v for v in order if last.stages.get(v) == "archived"
                    and (v not in life or life[v].state == "deprecated")]
        for v in archived[:max(0, len(archived) - keep_archived)]:
            chosen.setdefault(v, f"archived beyond the newest {keep_archived}")
    prune, kept = [], []
    for v, why in chosen.items():
        row = {"ref": f"{task}/{model}@{v}", "version": v, "why": why}
        if v in pins:
            kept.append(row | {"kept_because": pins[v]})
        else:
            prune.append(row)
    return prune, kept


def prune(reg, *, scope: tuple[str | None, str | None] = (None, None), keep_archived: int | None = None,
          policy: RetentionPolicy | None = None, lock_files: list[str] = (), dry_run: bool = False,
          actor: str | None = None) -> dict:
    from .lockfile import read_lock

    paths = list(lock_files) + (policy.lock_files if policy else [])
    locks = [(p, read_lock(p)) for p in paths]
    task, model = scope
    actor = actor or default_actor()
    pairs = [(t, m) for t in ([task] if task else reg.tasks()) for m in ([model] if model else reg.models(t))]
    out = {"dry_run": dry_run, "pruned": [], "kept": [], "errors": []}
    for t, m in pairs:
        keep = keep_archived if keep_archived is not None else (policy.keep_for(t, m) if policy else None)
        todo, kept = plan_prune(reg, t, m, keep, locks)
        out["kept"] += kept
        for row in todo:
            if dry_run:
                out["pruned"].append(row)
                continue
            try:
                v = reg.version(t, m, row["version"], require_anchor=True)
                reason = f"retention policy: {row['why']}"
                last = reg.state(t, m)
                if last.lifecycle.get(row["version"]) is None or last.lifecycle[row["version"]].state == "deprecated":
                    _apply(reg, v, "retire", reason, actor)
                    crash_point("after-retire")
                done = _apply(reg, v, "prune", reason, actor)
                out["pruned"].append(row | {"removed": len(done["removed"])})
            except OmrError as exc:
                out["errors"].append(f"{row['ref']}: {exc}")
    # Versions pruned earlier whose removal was interrupted are finished here too.
    if not dry_run:
        for t, m in pairs:
            last = reg.state(t, m)
            for name, st in (last.lifecycle.items() if last else []):
                if st.state == "pruned":
                    try:
                        remove_bytes(reg, reg.version(t, m, name))
                    except OmrError as exc:
                        out["errors"].append(f"{t}/{m}@{name}: {exc}")
    return out

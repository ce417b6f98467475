"""The tamper-evident event log of one model: the single source of truth (docs/DESIGN.md, "The log").

Events are write-once objects `audit/events/<seq>.json`. A writer claims the next sequence
number with create-if-absent (link(2) locally, `If-None-Match: *` on S3), so concurrent
writers never overwrite each other: the loser re-reads the tail and tries the next number.
Each event holds the sha256 of the previous event's bytes and the full alias and stage state
after it, so the current state is read from the last event alone.

`audit/head.json` names the newest event and its sha256. It is the hint that finds the tail
without listing the event folder (readers probe `head.seq + 1, + 2, ...`), and the check that
stops laundering: an edited newest event no longer matches the head, and appending refuses
when head and tail disagree, so no later promote can chain onto forged bytes.

State transitions (register, adopt, promote, stage change) are pure functions of the last
event (`register_fields`, `promote_fields`): they compute the next event's fields and raise
when the stage policy refuses. Alias pointers (`aliases/<alias>.json`) and anchors
(`audit/anchors/<version>.json`) are caches derived from the log; readers check them against
the event they name, and `repair` rebuilds them from an intact chain.

Commit point of every operation: the `write_if_absent` of its event. Before it the old truth
holds; after it the new one, whatever happens to the head, pointers or anchors afterwards.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import layout
from ._faults import crash_point, fail_point
from .errors import ConflictError, IntegrityError, NotFoundError, OmrError, StorageError
from .hashing import sha256_hex
from .manifest import canonical_json
from .names import name_type

Name = name_type()
STAGES = ("development", "staging", "production", "archived")
STAGE_ALIASES = {"staging": "staging", "production": "production"}
STAGE_ONLY = ("development", "archived")
ANCHOR_KINDS = ("register", "adopt")
DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
HEX_PATTERN = r"^[0-9a-f]{64}$"
MAX_TEXT = 4096


def now_utc_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


class AliasState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Name
    seq: int = Field(ge=1, description="event that last moved this alias")


class Event(BaseModel):
    """One audit event; its file is the canonical JSON of this model."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=1, lt=10**10)
    kind: Literal["register", "adopt", "promote", "stage"]
    task: Name
    model_name: Name
    version: Name
    alias: Name | None = None
    from_version: Name | None = Field(default=None, description="what the alias pointed to before")
    digest: str | None = Field(default=None, pattern=DIGEST_PATTERN, description="package digest of `version`")
    meta_sha256: str | None = Field(default=None, pattern=HEX_PATTERN,
                                    description="sha256 of model_meta.json (register, adopt)")
    manifest_sha256: str | None = Field(default=None, pattern=HEX_PATTERN,
                                        description="sha256 of omr_manifest.json bytes (register, adopt)")
    rollback: bool = False
    stage_moves: dict[Name, Literal["development", "staging", "production", "archived"]] = Field(
        default_factory=dict, description="version -> new stage")
    actor: str = Field(max_length=MAX_TEXT)
    reason: str | None = Field(default=None, max_length=MAX_TEXT)
    ts_utc: str = Field(max_length=64)
    prev: str = Field(pattern=r"^([0-9a-f]{64})?$", description="sha256 hex of the previous event file, '' for the first")
    aliases: dict[Name, AliasState] = Field(default_factory=dict, description="alias state after this event")
    stages: dict[Name, Literal["staging", "production", "archived"]] = Field(
        default_factory=dict, description="non-development stages after this event")
    digests: dict[Name, str] = Field(default_factory=dict, description="version -> package digest, for aliased versions")

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json")) + b"\n"


class AliasPointer(BaseModel):
    """`aliases/<alias>.json`; keys of omnibioai-model-registry 0.1.x plus ours."""

    model_config = ConfigDict(extra="allow")

    task: str
    model_name: str
    alias: str
    version: Name
    updated_at: str | None = None
    actor: str | None = None
    reason: str | None = None
    digest: str | None = None
    event_seq: int | None = None
    event_sha256: str | None = None


class Head(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int = Field(ge=1, lt=10**10)
    sha256: str = Field(pattern=HEX_PATTERN)


class AnchorPointer(BaseModel):
    """`audit/anchors/<version>.json`: which event made the version exist (derived, checked)."""

    model_config = ConfigDict(extra="forbid")
    version: Name
    digest: str = Field(pattern=DIGEST_PATTERN)
    seq: int = Field(ge=1, lt=10**10)
    event_sha256: str = Field(pattern=HEX_PATTERN)


# ---------------------------------------------------------------------- reading
def _seqs(storage, mkey: str) -> list[int]:
    """Sequence numbers present in the event folder (a listing: audit and repair only)."""
    out = []
    for name in storage.listdir(layout.events_key(mkey)):
        m = layout.EVENT_NAME_RE.fullmatch(name)
        if m:
            out.append(int(m.group("seq")))
    return sorted(out)


def parse_event(data: bytes, mkey: str, seq: int) -> Event:
    try:
        ev = Event.model_validate_json(data)
    except Exception:
        raise IntegrityError(f"audit event {seq} of {mkey} is damaged (not a valid event)", obj=f"{mkey}#{seq}") from None
    if ev.seq != seq:
        raise IntegrityError(f"audit event {seq} of {mkey} claims to be event {ev.seq} (reordered or edited)",
                             obj=f"{mkey}#{seq}")
    return ev


def read_event(storage, mkey: str, seq: int) -> tuple[Event, bytes]:
    data = storage.read_bytes(layout.event_key(mkey, seq))
    return parse_event(data, mkey, seq), data


def read_head(storage, mkey: str) -> Head | None:
    try:
        data = storage.read_bytes(layout.head_key(mkey))
    except NotFoundError:
        return None
    try:
        return Head.model_validate_json(data)
    except Exception:
        raise IntegrityError(f"{mkey}: audit/head.json is damaged; run `omrw audit` (and `--repair` if the chain "
                             f"is intact)", obj=layout.head_key(mkey)) from None


@dataclass(frozen=True)
class Tail:
    event: Event | None
    sha256: str
    head_seq: int | None  # what head.json said (None: no head)


HEAD_WAIT = 2.0  # seconds an appender waits for the first writer's head before calling it missing


def tail(storage, mkey: str, for_append: bool = False) -> tuple[Event | None, str]:
    t = find_tail(storage, mkey, for_append)
    return t.event, t.sha256


def find_tail(storage, mkey: str, for_append: bool = False) -> Tail:
    """The newest event, found from the head without listing the event folder.

    Raises IntegrityError when head and tail disagree: the head names a missing event or
    records other bytes for it, or an event after the head does not chain on its
    predecessor. Events without any head are read from event 1 (the first writer may not
    have written it yet), but an appender refuses them once `HEAD_WAIT` has passed: a
    deleted head would otherwise let it chain onto an edited newest event.
    """
    head = read_head(storage, mkey)
    if head is None:
        if not storage.exists(layout.event_key(mkey, 1)):
            if _seqs(storage, mkey):
                raise IntegrityError(f"{mkey}: audit event 1 is missing (deleted); run `omrw audit`",
                                     obj=layout.event_key(mkey, 1))
            return Tail(None, "", None)
        if for_append:
            deadline = time.monotonic() + HEAD_WAIT
            while head is None and time.monotonic() < deadline:
                time.sleep(0.02)
                head = read_head(storage, mkey)
            if head is None:
                raise IntegrityError(
                    f"{mkey}: the audit log has events but audit/head.json is missing (deleted, or a writer was "
                    f"killed before writing it); nothing appended: run `omrw audit {_model_ref(mkey)}`, then "
                    f"`omrw audit --repair {_model_ref(mkey)}` if the chain is intact", obj=layout.head_key(mkey))
        else:
            return _walk(storage, mkey, *read_event(storage, mkey, 1), None)
    try:
        ev, data = read_event(storage, mkey, head.seq)
    except NotFoundError:
        raise IntegrityError(f"{mkey}: head.json names audit event {head.seq}, which is missing (deleted); "
                             f"run `omrw audit`", obj=layout.head_key(mkey)) from None
    digest = sha256_hex(data)
    if digest != head.sha256:
        raise IntegrityError(
            f"{mkey}: head and tail disagree: head.json records audit event {head.seq} as {head.sha256[:12]}..., "
            f"the event's bytes are {digest[:12]}... (edited); run `omrw audit`", obj=layout.event_key(mkey, head.seq))
    return _walk(storage, mkey, ev, data, head.seq)


def _walk(storage, mkey: str, ev: Event, data: bytes, head_seq: int | None) -> Tail:
    """From a trusted event forward to the last one, each chaining on its predecessor."""
    if head_seq is None and ev.prev != "":
        raise IntegrityError(f"{mkey}: audit event 1 does not start the chain (edited)", obj=layout.event_key(mkey, 1))
    digest, seq = sha256_hex(data), ev.seq
    while True:
        try:
            nxt, data = read_event(storage, mkey, seq + 1)
        except NotFoundError:
            return Tail(ev, digest, head_seq)
        if nxt.prev != digest:
            raise IntegrityError(f"{mkey}: audit event {seq + 1} does not chain on event {seq} (edited or forged); "
                                 f"run `omrw audit`", obj=layout.event_key(mkey, seq + 1))
        ev, digest, seq = nxt, sha256_hex(data), seq + 1


def load_events(storage, mkey: str) -> list[tuple[Event, str]]:
    """All events in order with their sha256, without checking the chain (history)."""
    out = []
    for seq in _seqs(storage, mkey):
        ev, data = read_event(storage, mkey, seq)
        out.append((ev, sha256_hex(data)))
    return out


def _model_ref(mkey: str) -> str:
    parts = mkey.split("/")
    return f"{parts[1]}/{parts[3]}" if len(parts) >= 4 else mkey


# ---------------------------------------------------------------------- pure transitions
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


# ---------------------------------------------------------------------- appending
def append(storage, mkey: str, build: Callable[[Event | None], dict]) -> tuple[Event, str]:
    """Append the event `build(last_event)` returns; retry on a lost sequence race.

    `build` is called again after every lost race, so the state it derives is always the
    state it chains on. Refuses (IntegrityError) when head and tail disagree.
    Returns (event, sha256 of its bytes).
    """
    for attempt in range(10_000):
        last, last_hash = tail(storage, mkey, for_append=True)
        fields = build(last)
        event = Event(seq=(last.seq + 1) if last else 1, prev=last_hash, **fields)
        data = event.to_bytes()
        fail_point("event")
        if storage.write_if_absent(layout.event_key(mkey, event.seq), data):
            digest = sha256_hex(data)
            crash_point("after-event")
            _advance_head(storage, mkey, event.seq, digest)
            crash_point("after-head")
            _compat_log(storage, mkey, event)
            return event, digest
        time.sleep(min(0.05, 0.001 * (1 + attempt % 16)))
    raise StorageError(f"could not append an audit event to {mkey}: too much contention")


def _advance_head(storage, mkey: str, seq: int, digest: str) -> None:
    """Point head at the newest event; the last writer to look always leaves it there.

    A slower writer may overwrite head with an older event; every writer probes for newer
    events after its own write, so head converges on the tail.
    """
    for _ in range(10_000):
        while True:
            try:
                data = storage.read_bytes(layout.event_key(mkey, seq + 1))
            except NotFoundError:
                break
            seq, digest = seq + 1, sha256_hex(data)
        try:
            current = read_head(storage, mkey)
        except IntegrityError:
            current = None
        if current is not None and current.seq >= seq:
            return
        storage.write_replace(layout.head_key(mkey), Head(seq=seq, sha256=digest).model_dump_json().encode())
        if not storage.exists(layout.event_key(mkey, seq + 1)):
            return


def _compat_log(storage, mkey: str, event: Event) -> None:
    """omnibioai-model-registry's promotions.jsonl view (one line per alias change, local only)."""
    if event.alias is None or not storage.is_local:
        return
    line = json.dumps({"task": event.task, "model_name": event.model_name, "alias": event.alias,
                       "version": event.version, "actor": event.actor, "reason": event.reason,
                       "ts_utc": event.ts_utc, "seq": event.seq})
    try:
        storage.append_line(layout.promotions_log_key(mkey), line)
    except OmrError:
        # A derived view: a planted symlink or a damaged file must not undo the committed event;
        # `omrw audit` reports it.
        pass


# ---------------------------------------------------------------------- derived files
def pointer_for(mkey: str, alias: str, state: AliasState, setter: Event, setter_sha: str,
                digest: str | None) -> AliasPointer:
    return AliasPointer(task=setter.task, model_name=setter.model_name, alias=alias, version=state.version,
                        updated_at=setter.ts_utc, actor=setter.actor, reason=setter.reason, digest=digest,
                        event_seq=state.seq, event_sha256=setter_sha)


def sync_alias(storage, mkey: str, alias: str) -> AliasPointer | None:
    """Rewrite `aliases/<alias>.json` from the newest event until no newer event exists.

    Every writer re-checks the tail after writing, so if two promoters race, the last one to
    look writes the state of the newest event: the pointer converges to the log.
    """
    pointer = None
    for _ in range(1000):
        last, _h = tail(storage, mkey)
        if last is None or alias not in last.aliases:
            return None
        state = last.aliases[alias]
        setter, data = read_event(storage, mkey, state.seq)
        pointer = pointer_for(mkey, alias, state, setter, sha256_hex(data), last.digests.get(state.version))
        storage.write_replace(layout.alias_key(mkey, alias), pointer.model_dump_json(indent=2).encode() + b"\n")
        crash_point("after-pointer")
        newest, _ = tail(storage, mkey)
        if newest is None or newest.seq == last.seq:
            return pointer
    return pointer


def write_anchor(storage, mkey: str, event: Event, event_sha: str) -> None:
    """The derived anchor and digest index of a version that just came into existence."""
    anchor = AnchorPointer(version=event.version, digest=event.digest, seq=event.seq, event_sha256=event_sha)
    storage.write_replace(layout.anchor_key(mkey, event.version), anchor.model_dump_json().encode())
    index = json.dumps({"version": event.version, "digest": event.digest}).encode()
    storage.write_if_absent(layout.digest_index_key(mkey, event.digest), index)


def find_anchor(storage, mkey: str, version: str) -> tuple[Event, str] | None:
    """The event that anchors `version`, via its anchor pointer (checked) or, failing that, the log."""
    try:
        pointer = AnchorPointer.model_validate_json(storage.read_bytes(layout.anchor_key(mkey, version)))
    except (NotFoundError, ValueError, IntegrityError):
        pointer = None
    if pointer is not None and pointer.version == version:
        try:
            ev, data = read_event(storage, mkey, pointer.seq)
        except (NotFoundError, IntegrityError):
            ev = None
        if (ev is not None and ev.kind in ANCHOR_KINDS and ev.version == version and ev.digest == pointer.digest
                and sha256_hex(data) == pointer.event_sha256):
            return ev, pointer.event_sha256
    return anchors_of(load_events(storage, mkey)).get(version)


# ---------------------------------------------------------------------- checking and repair
def check_chain(storage, mkey: str) -> list[str]:
    """Every problem in the chain of one model, each naming the event; [] when intact."""
    problems: list[str] = []
    seqs = _seqs(storage, mkey)
    prev_hash, expected = "", 1
    for seq in seqs:
        if seq != expected:
            for missing in range(expected, seq):
                problems.append(f"{mkey}: audit event {missing} is missing")
        try:
            ev, data = read_event(storage, mkey, seq)
        except (IntegrityError, NotFoundError) as e:
            problems.append(str(e))
            prev_hash, expected = "?", seq + 1
            continue
        if prev_hash != "?" and ev.prev != prev_hash:
            problems.append(f"{mkey}: audit event {seq} does not chain on event {seq - 1} "
                            f"(event {seq - 1} was edited, removed or reordered)")
        prev_hash, expected = sha256_hex(data), seq + 1
    try:
        head = read_head(storage, mkey)
    except IntegrityError as e:
        problems.append(str(e))
        return problems
    if seqs and head is None:
        problems.append(f"{mkey}: audit/head.json is missing (deleted?) while the log has {len(seqs)} events")
    elif head is not None:
        if head.seq not in seqs:
            problems.append(f"{mkey}: audit event {head.seq} (the head) is missing")
        else:
            try:
                _ev, data = read_event(storage, mkey, head.seq)
                if sha256_hex(data) != head.sha256:
                    problems.append(f"{mkey}: audit event {head.seq} was edited (head.json records another hash)")
            except OmrError:
                pass
        if seqs and head.seq < seqs[-1] - 64:
            problems.append(f"{mkey}: audit head is {seqs[-1] - head.seq} events behind the log")
    return problems


def derived_problems(storage, mkey: str, events: list[tuple[Event, str]]) -> list[str]:
    """Alias pointers and anchors that disagree with an (intact) log: what `repair` rewrites."""
    problems: list[str] = []
    last = events[-1][0] if events else None
    by_seq = {ev.seq: (ev, h) for ev, h in events}
    aliases = last.aliases if last else {}
    for name in storage.listdir(layout.aliases_key(mkey)):
        if not name.endswith(".json") or name[:-5] in aliases:
            continue
        problems.append(f"{mkey}: alias pointer {name} names an alias the audit log does not have")
    for alias, state in aliases.items():
        key = layout.alias_key(mkey, alias)
        try:
            pointer = AliasPointer.model_validate_json(storage.read_bytes(key))
        except NotFoundError:
            problems.append(f"{mkey}: alias {alias} has no pointer file (audit event {state.seq} set it)")
            continue
        except (ValueError, IntegrityError) as e:
            problems.append(f"{mkey}: alias pointer {alias} is damaged ({str(e).splitlines()[0]})")
            continue
        setter = by_seq.get(state.seq)
        if pointer.version != state.version or pointer.event_seq != state.seq or (
                setter and pointer.event_sha256 != setter[1]):
            problems.append(f"{mkey}: alias {alias} points to {pointer.version} but audit event {state.seq} "
                            f"set it to {state.version}")
    for version, (ev, h) in anchors_of(events).items():
        try:
            pointer = AnchorPointer.model_validate_json(storage.read_bytes(layout.anchor_key(mkey, version)))
        except NotFoundError:
            problems.append(f"{mkey}: version {version} has no anchor file (audit event {ev.seq} registered it)")
            continue
        except (ValueError, IntegrityError):
            problems.append(f"{mkey}: anchor file of version {version} is damaged")
            continue
        if (pointer.seq, pointer.event_sha256, pointer.digest) != (ev.seq, h, ev.digest):
            problems.append(f"{mkey}: anchor file of version {version} disagrees with audit event {ev.seq}")
    return problems


def repair(storage, mkey: str) -> list[str]:
    """Rebuild head, alias pointers, anchors and the digest index from an intact chain.

    Refuses (IntegrityError) when the chain itself is broken: a broken chain is evidence,
    and rewriting derived files from it would launder it. Returns the keys it rewrote.
    """
    broken = [p for p in check_chain(storage, mkey) if "head.json is missing" not in p and "behind the log" not in p]
    if broken:
        raise IntegrityError(f"{mkey}: the audit chain is broken, nothing repaired: {broken[0]}", obj=mkey)
    events = load_events(storage, mkey)
    if not events:
        return []
    fixed: list[str] = []
    last, last_sha = events[-1]
    head = read_head(storage, mkey)
    if head is None or (head.seq, head.sha256) != (last.seq, last_sha):
        storage.write_replace(layout.head_key(mkey), Head(seq=last.seq, sha256=last_sha).model_dump_json().encode())
        fixed.append(layout.head_key(mkey))
    by_seq = {ev.seq: (ev, h) for ev, h in events}
    for alias, state in last.aliases.items():
        setter, setter_sha = by_seq[state.seq]
        pointer = pointer_for(mkey, alias, state, setter, setter_sha, last.digests.get(state.version))
        data = pointer.model_dump_json(indent=2).encode() + b"\n"
        key = layout.alias_key(mkey, alias)
        try:
            same = storage.read_bytes(key) == data
        except (NotFoundError, IntegrityError):
            same = False
        if not same:
            storage.remove_tree(key)
            storage.write_replace(key, data)
            fixed.append(key)
    for name in storage.listdir(layout.aliases_key(mkey)):
        if name.endswith(".json") and name[:-5] not in last.aliases:
            key = f"{layout.aliases_key(mkey)}/{name}"
            storage.remove_tree(key)
            fixed.append(key)
    for version, (ev, h) in anchors_of(events).items():
        key = layout.anchor_key(mkey, version)
        anchor = AnchorPointer(version=version, digest=ev.digest, seq=ev.seq, event_sha256=h)
        try:
            same = AnchorPointer.model_validate_json(storage.read_bytes(key)) == anchor
        except (NotFoundError, ValueError, IntegrityError):
            same = False
        if not same:
            storage.remove_tree(key)
            write_anchor(storage, mkey, ev, h)
            fixed.append(key)
    return fixed

"""The tamper-evident event log of one model, and the alias pointers derived from it.

Events are write-once objects `audit/events/<seq>.json`. A writer claims the next sequence
number with create-if-absent (link(2) locally, `If-None-Match: *` on S3), so concurrent
promoters never overwrite each other: the loser re-reads the tail and tries the next
number. Each event holds the sha256 of the previous event's bytes and the full alias and
stage state after it, so the current state is read from the last event alone and
`audit/head.json` plus the chain reveal an edited, removed or reordered event.
`aliases/<alias>.json` is the fast read path, rebuilt from the events.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .constants import EVENTS_DIR, PROMOTIONS_LOG
from .errors import IntegrityError, StorageError
from .hashing import sha256_hex
from .manifest import canonical_json

STAGES = ("development", "staging", "production", "archived")
STAGE_ALIASES = {"staging": "staging", "production": "production"}
STAGE_ONLY = ("development", "archived")


def now_utc_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


class AliasState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    seq: int = Field(description="event that last moved this alias")


class Event(BaseModel):
    """One audit event; its file is the canonical JSON of this model."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=1)
    kind: Literal["register", "promote", "stage"]
    task: str
    model_name: str
    version: str
    alias: str | None = None
    from_version: str | None = Field(default=None, description="what the alias pointed to before")
    digest: str | None = Field(default=None, description="package digest of `version`")
    meta_sha256: str | None = Field(default=None, description="sha256 of model_meta.json (register)")
    manifest_sha256: str | None = Field(default=None, description="sha256 of omr_manifest.json bytes (register)")
    rollback: bool = False
    stage_moves: dict[str, str] = Field(default_factory=dict, description="version -> new stage")
    actor: str
    reason: str | None = None
    ts_utc: str
    prev: str = Field(description="sha256 hex of the previous event file, '' for the first")
    aliases: dict[str, AliasState] = Field(default_factory=dict, description="alias state after this event")
    stages: dict[str, str] = Field(default_factory=dict, description="non-development stages after this event")
    digests: dict[str, str] = Field(default_factory=dict, description="version -> package digest, for aliased versions")

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json")) + b"\n"


class AliasPointer(BaseModel):
    """`aliases/<alias>.json`; keys of omnibioai-model-registry 0.1.x plus ours."""

    model_config = ConfigDict(extra="allow")

    task: str
    model_name: str
    alias: str
    version: str
    updated_at: str | None = None
    actor: str | None = None
    reason: str | None = None
    digest: str | None = None
    event_seq: int | None = None
    event_sha256: str | None = None


class Head(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int
    sha256: str


def events_key(model_key: str) -> str:
    return f"{model_key}/audit/{EVENTS_DIR}"


def event_key(model_key: str, seq: int) -> str:
    return f"{events_key(model_key)}/{seq:010d}.json"


def head_key(model_key: str) -> str:
    return f"{model_key}/audit/head.json"


def alias_key(model_key: str, alias: str) -> str:
    return f"{model_key}/aliases/{alias}.json"


def _seqs(storage, model_key: str) -> list[int]:
    out = []
    for name in storage.listdir(events_key(model_key)):
        stem = name[:-5] if name.endswith(".json") else ""
        if stem.isdigit():
            out.append(int(stem))
    return sorted(out)


def read_event(storage, model_key: str, seq: int) -> tuple[Event, bytes]:
    data = storage.read_bytes(event_key(model_key, seq))
    try:
        return Event.model_validate_json(data), data
    except Exception:
        raise IntegrityError(f"audit event {seq} of {model_key} is damaged (not a valid event)", obj=str(seq)) from None


def tail(storage, model_key: str) -> tuple[Event | None, str]:
    """The last event and its sha256 ('' and None when the log is empty)."""
    seqs = _seqs(storage, model_key)
    if not seqs:
        return None, ""
    ev, data = read_event(storage, model_key, seqs[-1])
    return ev, sha256_hex(data)


def append(storage, model_key: str, build) -> Event:
    """Append the event `build(last_event)` returns, retrying on a lost sequence race.

    `build` receives the current last event (or None) and returns the fields of the new
    event without `seq`/`prev`; it is called again after every lost race so that the
    state it derives (previous production version, ...) is always the state it chains on.
    """
    for _ in range(10_000):
        last, last_hash = tail(storage, model_key)
        fields = build(last)
        event = Event(seq=(last.seq + 1) if last else 1, prev=last_hash, **fields)
        data = event.to_bytes()
        if storage.write_if_absent(event_key(model_key, event.seq), data):
            _advance_head(storage, model_key, event.seq, sha256_hex(data))
            _compat_log(storage, event)
            return event
        time.sleep(0.001)
    raise StorageError(f"could not append an audit event to {model_key}: too much contention")


def _advance_head(storage, model_key: str, seq: int, digest: str) -> None:
    """Point head at the newest event, re-checking after each write.

    A slower writer can overwrite head with an older event; because every writer looks at
    the log again after writing, the last one to look always leaves head on the newest event.
    """
    for _ in range(1000):
        try:
            current = Head.model_validate_json(storage.read_bytes(head_key(model_key)))
        except Exception:
            current = None
        seqs = _seqs(storage, model_key)
        newest = seqs[-1] if seqs else seq
        if current is not None and current.seq >= newest:
            return
        if newest != seq:
            seq, digest = newest, sha256_hex(storage.read_bytes(event_key(model_key, newest)))
        storage.write_replace(head_key(model_key), Head(seq=seq, sha256=digest).model_dump_json().encode())


def _compat_log(storage, event: Event) -> None:
    """omnibioai-model-registry's promotions.jsonl view (one line per alias change)."""
    if event.alias is None or not storage.is_local:
        return
    line = json.dumps(
        {
            "task": event.task,
            "model_name": event.model_name,
            "alias": event.alias,
            "version": event.version,
            "actor": event.actor,
            "reason": event.reason,
            "ts_utc": event.ts_utc,
            "seq": event.seq,
        }
    )
    model_key = f"tasks/{event.task}/models/{event.model_name}"
    storage.append_line(f"{model_key}/audit/{PROMOTIONS_LOG}", line)


def sync_alias(storage, model_key: str, alias: str) -> AliasPointer | None:
    """Rewrite `aliases/<alias>.json` from the newest event until no newer event exists.

    Every writer re-checks the tail after writing, so if two promoters race the last one to
    look always writes the state of the newest event: the pointer converges to the log.
    """
    pointer = None
    for _ in range(1000):
        last, _h = tail(storage, model_key)
        if last is None or alias not in last.aliases:
            return None
        state = last.aliases[alias]
        setter, data = read_event(storage, model_key, state.seq)
        pointer = AliasPointer(
            task=setter.task,
            model_name=setter.model_name,
            alias=alias,
            version=state.version,
            updated_at=setter.ts_utc,
            actor=setter.actor,
            reason=setter.reason,
            digest=last.digests.get(state.version),
            event_seq=state.seq,
            event_sha256=sha256_hex(data),
        )
        storage.write_replace(alias_key(model_key, alias), pointer.model_dump_json(indent=2).encode() + b"\n")
        newest, _ = tail(storage, model_key)
        if newest is None or newest.seq == last.seq:
            return pointer
    return pointer


def load_events(storage, model_key: str) -> list[tuple[Event, str]]:
    """All events in order with their sha256, without checking the chain."""
    out = []
    for seq in _seqs(storage, model_key):
        ev, data = read_event(storage, model_key, seq)
        out.append((ev, sha256_hex(data)))
    return out


def check_chain(storage, model_key: str) -> list[str]:
    """Every problem in the chain of one model, each naming the event; [] when intact."""
    problems: list[str] = []
    seqs = _seqs(storage, model_key)
    prev_hash, expected = "", 1
    for seq in seqs:
        if seq != expected:
            for missing in range(expected, seq):
                problems.append(f"{model_key}: audit event {missing} is missing")
        try:
            ev, data = read_event(storage, model_key, seq)
        except IntegrityError as e:
            problems.append(str(e))
            prev_hash, expected = "?", seq + 1
            continue
        if ev.seq != seq:
            problems.append(f"{model_key}: audit event {seq} claims to be event {ev.seq} (reordered or edited)")
        if prev_hash != "?" and ev.prev != prev_hash:
            problems.append(
                f"{model_key}: audit event {seq} does not chain on event {seq - 1} "
                f"(event {seq - 1} was edited, removed or reordered)"
            )
        prev_hash, expected = sha256_hex(data), seq + 1
    try:
        head = Head.model_validate_json(storage.read_bytes(head_key(model_key)))
    except Exception:
        head = None
    if seqs and head is None:
        problems.append(f"{model_key}: audit head.json is missing or damaged")
    elif head is not None:
        if head.seq not in seqs:
            problems.append(f"{model_key}: audit event {head.seq} (the head) is missing")
        else:
            _ev, data = read_event(storage, model_key, head.seq)
            if sha256_hex(data) != head.sha256:
                problems.append(f"{model_key}: audit event {head.seq} was edited (head records another hash)")
        if seqs and head.seq < seqs[-1] - 64:
            problems.append(f"{model_key}: audit head is {seqs[-1] - head.seq} events behind the log")
    # The alias pointers must agree with the event that set them.
    if seqs:
        try:
            last, _ = read_event(storage, model_key, seqs[-1])
        except IntegrityError:
            last = None
        for alias, state in (last.aliases.items() if last else []):
            try:
                pointer = AliasPointer.model_validate_json(storage.read_bytes(alias_key(model_key, alias)))
            except Exception:
                continue
            if pointer.version != state.version:
                problems.append(
                    f"{model_key}: alias {alias} points to {pointer.version} but audit event {state.seq} "
                    f"set it to {state.version}"
                )
    return problems

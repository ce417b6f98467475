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
from typing import TYPE_CHECKING, Callable, NamedTuple

from . import fastread, layout
from ._faults import crash_point, fail_point
from .canonical import sha256_hex
from .constants import ANCHOR_KINDS, EVENT_PAYLOAD_TYPE
from .errors import IntegrityError, NotFoundError, OmrError, StorageError

if TYPE_CHECKING:  # readers return `fastread.Doc`s of these formats; only writers build the models
    from .events import AliasPointer, AliasState, Event, Head


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
    """The event file as a `fastread.Doc` (validated against the `Event` model's schema)."""
    try:
        ev = fastread.read("audit_event", data)
    except fastread.FormatError:
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
        return fastread.read("audit_head", data)
    except fastread.FormatError:
        raise IntegrityError(f"{mkey}: audit/head.json is damaged; run `omrw audit` (and `--repair` if the chain "
                             f"is intact)", obj=layout.head_key(mkey)) from None


class Tail(NamedTuple):
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
    if head is None and not storage.exists(layout.event_key(mkey, 1)):
        seqs = _seqs(storage, mkey)
        if not seqs:
            return Tail(None, "", None)
        if 1 not in seqs:
            raise IntegrityError(f"{mkey}: audit event 1 is missing (deleted); run `omrw audit`",
                                 obj=layout.event_key(mkey, 1))
        # Event 1 appeared between the two looks: a first writer is committing right now.
        head = read_head(storage, mkey)
    if head is None:
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


# ---------------------------------------------------------------------- appending
class NoChange(Exception):
    """Raised by a `build` function: the log already says what the caller wants (nothing to append)."""

    def __init__(self, last: Event | None, last_hash: str = ""):
        super().__init__("no change")
        self.last, self.last_hash = last, last_hash


def append(storage, mkey: str, build: Callable[[Event | None], dict], signer=None) -> tuple[Event, str]:
    """Append the event `build(last_event)` returns; retry on a lost sequence race.

    `build` is called again after every lost race, so the state it derives is always the
    state it chains on; it may raise `NoChange`. Refuses (IntegrityError) when head and tail
    disagree. With `signer` (a signing.keys.SigningKey) the event carries its DSSE signature.
    Returns (event, sha256 of its bytes).
    """
    for attempt in range(10_000):
        last, last_hash = tail(storage, mkey, for_append=True)
        try:
            fields = build(last)
        except NoChange as exc:
            exc.last, exc.last_hash = last, last_hash
            raise
        from .events import Event

        event = Event(seq=(last.seq + 1) if last else 1, prev=last_hash, **fields)
        if signer is not None:
            event = sign_event(event, signer)
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


def sign_event(event: Event, signer) -> Event:
    from .events import EventSignature
    from .signing import dsse

    sig = dsse.signature(EVENT_PAYLOAD_TYPE, event.signed_bytes(), signer)
    return event.model_copy(update={"signature": EventSignature(**sig)})


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
        storage.write_replace(layout.head_key(mkey), head_bytes(seq, digest))
        if not storage.exists(layout.event_key(mkey, seq + 1)):
            return


def head_bytes(seq: int, digest: str) -> bytes:
    """`audit/head.json`, validated by its model (the one writer of it)."""
    from .events import Head

    return Head(seq=seq, sha256=digest).model_dump_json().encode()


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
    from .events import AliasPointer

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
    from .events import AnchorPointer

    anchor = AnchorPointer(version=event.version, digest=event.digest, seq=event.seq, event_sha256=event_sha)
    storage.write_replace(layout.anchor_key(mkey, event.version), anchor.model_dump_json().encode())
    index = json.dumps({"version": event.version, "digest": event.digest}).encode()
    storage.write_if_absent(layout.digest_index_key(mkey, event.digest), index)


def after_event(storage, mkey: str, event: Event, event_sha: str, aliases: list[str]) -> None:
    """Derived files after a committed event: failures here never undo it (`audit --repair` heals)."""
    try:
        if event.kind in ANCHOR_KINDS:
            write_anchor(storage, mkey, event, event_sha)
        for alias in aliases:
            sync_alias(storage, mkey, alias)
    except (OmrError, OSError):
        pass


def find_anchor(storage, mkey: str, version: str) -> tuple[Event, str] | None:
    """The event that anchors `version`, via its anchor pointer (checked) or, failing that, the log."""
    try:
        pointer = fastread.read("audit_anchor", storage.read_bytes(layout.anchor_key(mkey, version)))
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


class LogView(NamedTuple):
    """What `Registry.version` needs of a log a caller has read whole (list, verify, audit,
    export, the catalog): it then reads no event per version."""

    tail_seq: int
    anchors: dict          # version -> (anchoring event, its sha256): `anchors_of`
    successors: dict       # seq -> the `prev` that event records (guards the anchor before it)


def log_view(events: list[tuple[Event, str]], tail_seq: int | None = None) -> LogView:
    """The `LogView` of `events` (in order; `tail_seq` defaults to the last one's seq)."""
    if tail_seq is None:
        tail_seq = events[-1][0].seq if events else 0
    return LogView(tail_seq, anchors_of(events), {ev.seq: ev.prev for ev, _h in events})


def anchors_of(events: list[tuple[Event, str]]) -> dict[str, tuple[Event, str]]:
    """version -> (its anchoring event, that event's sha256); the first anchor of a version counts."""
    out: dict[str, tuple[Event, str]] = {}
    for ev, h in events:
        if ev.kind in ANCHOR_KINDS and ev.version not in out:
            out[ev.version] = (ev, h)
    return out

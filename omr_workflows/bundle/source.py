"""What a source registry vouches for, gathered and checked once for export, import and mirror.

`gather` reads one model of a registry (a live source, or the folder `tarfmt.view` builds
from a bundle's small members) and returns everything a target needs to hold the versions
with their history: the chain's events 1..tail as bytes (each chaining on the one before,
the last matching the tail found from `head.json`), the origin chains the source holds, each
version's manifest (anchored, digest and manifest sha256 as the anchoring event records them)
and signatures, and the aliases that point at them. With a trust root it also runs the
point-of-use check (`governance.check_resolution`) on every version and alias, so a forged
or missing approval is refused before a byte is copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import audit, layout
from ..errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError
from ..events import ANCHOR_KINDS, Event, EventRef
from ..hashing import sha256_hex
from ..constants import MANIFEST_NAME
from ..manifest import Manifest
from ..versions import Version

MAX_SIGNATURE_BYTES = 4 << 20
MAX_EVENT_BYTES = 16 << 20


@dataclass
class VersionPayload:
    version: str
    digest: str
    manifest: Manifest
    manifest_bytes: bytes
    data_key: str
    view: Version                       # the source's Version (as Registry.version gave it)
    anchor: EventRef                    # the source event that registered (or imported) it
    signatures: dict[str, bytes] = field(default_factory=dict)
    trust: dict | None = None  # TrustInfo as JSON, when a trust root checked it

    @property
    def files(self) -> int:
        return len(self.manifest.all_files())

    @property
    def bytes(self) -> int:
        return sum(e.size for e in self.manifest.all_files())


@dataclass
class ModelPayload:
    task: str
    model: str
    events: list[bytes]                 # events[i] is event i + 1
    tail: Event
    chain: str                          # sha256 of event 1
    head: EventRef
    versions: list[VersionPayload]
    aliases: dict[str, str]
    origins: dict[str, list[bytes]] = field(default_factory=dict)  # chain id -> its events 1..n

    @property
    def ref(self) -> str:
        return f"{self.task}/{self.model}"


def read_chain(storage, events_at, count: int, where: str, expect_tail: str | None = None) -> list[bytes]:
    """Events 1..count via `events_at(seq) -> key`, each chaining on the one before (IntegrityError)."""
    out: list[bytes] = []
    prev = ""
    for seq in range(1, count + 1):
        key = events_at(seq)
        try:
            data = storage.read_small(key, MAX_EVENT_BYTES)
        except NotFoundError:
            raise IntegrityError(f"{where}: audit event {seq} is missing", obj=key) from None
        ev = audit.parse_event(data, where, seq)
        if ev.prev != prev:
            raise IntegrityError(f"{where}: audit event {seq} does not chain on event {seq - 1} (edited, removed "
                                 f"or reordered)", obj=key)
        prev = sha256_hex(data)
        out.append(data)
    if expect_tail is not None and prev != expect_tail:
        raise IntegrityError(f"{where}: audit event {count} does not match the head (edited)", obj=where)
    return out


def gather(reg, task: str, model: str, versions: list[str] | None = None) -> ModelPayload:
    """Check and collect `versions` (None: every version the log anchors and storage holds)."""
    storage = reg.storage
    mkey = layout.model_key(task, model)
    ref = f"{task}/{model}"
    t = audit.find_tail(storage, mkey)
    if t.event is None:
        raise NotFoundError(f"model {ref} has no audit log in {reg.url} (nothing registered, or written by "
                            f"omnibioai-model-registry: `omrw adopt` first)", obj=ref)
    events = read_chain(storage, lambda s: layout.event_key(mkey, s), t.event.seq, ref, t.sha256)
    tail = t.event
    parsed = [audit.parse_event(d, ref, i + 1) for i, d in enumerate(events)]
    for ev in parsed:
        if (ev.task, ev.model_name) != (task, model):
            raise IntegrityError(f"{ref}: audit event {ev.seq} belongs to {ev.task}/{ev.model_name} (copied from "
                                 f"another log)", obj=f"{ref}#{ev.seq}")
    view = audit.log_view([(ev, sha256_hex(d)) for ev, d in zip(parsed, events)], tail.seq)
    if versions is None:
        versions = [v for v in reg.versions(task, model) if v in view.anchors and _exportable(tail, v)]
        if not versions:
            raise NotFoundError(f"model {ref}: no version to copy", obj=ref)
    out = [_version(reg, task, model, name, tail, view) for name in versions]
    payload = ModelPayload(task=task, model=model, events=events, tail=tail, chain=sha256_hex(events[0]),
                           head=EventRef(seq=tail.seq, sha256=t.sha256), versions=out,
                           aliases={a: s.version for a, s in tail.aliases.items() if s.version in set(versions)},
                           origins=_origins(storage, mkey, ref, parsed))
    if reg.trust is not None:
        _check_trust(reg, payload, t.sha256)
    return payload


def _exportable(tail: Event, version: str) -> bool:
    life = tail.lifecycle.get(version)
    return life is None or life.state == "deprecated"


def _version(reg, task: str, model: str, name: str, tail: Event, view: audit.LogView) -> VersionPayload:
    # The log was read once above: the Version view reuses it instead of reading events again.
    v = reg.version(task, model, name, log=view)
    if v.manifest is None:
        raise ConflictError(f"{v.ref} was written by omnibioai-model-registry (no manifest); `omrw adopt` cannot "
                            f"give it one: register it again to move it", obj=v.ref)
    if not _exportable(tail, name):
        raise ConflictError(f"{tail.lifecycle[name].describe(v.ref)}: a retired version is not copied", obj=v.ref)
    if v.anchor.manifest_sha256 is not None and v.anchor.manifest_sha256 != v.manifest_sha256:
        raise IntegrityError(f"{v.ref}: its {MANIFEST_NAME} differs from the one audit event "
                             f"{v.anchor.seq} recorded (edited)", obj=v.ref)
    raw = reg.storage.read_bytes(layout.manifest_key(v.key))
    if sha256_hex(raw) != v.manifest_sha256:
        raise IntegrityError(f"{v.ref}: its {MANIFEST_NAME} changed while being read", obj=v.ref)
    sigs: dict[str, bytes] = {}
    base = layout.signatures_key(layout.model_key(task, model), name)
    for entry in sorted(reg.storage.listdir(base))[:64]:
        if layout.SIGNATURE_NAME_RE.fullmatch(entry):
            sigs[entry[:-4]] = reg.storage.read_small(f"{base}/{entry}", MAX_SIGNATURE_BYTES)
    return VersionPayload(version=name, digest=v.digest, manifest=v.manifest, manifest_bytes=raw,
                          data_key=v.data_key, view=v, anchor=EventRef(seq=v.anchor.seq, sha256=v.anchor.event_sha256),
                          signatures=sigs)


def _origins(storage, mkey: str, ref: str, parsed: list[Event]) -> dict[str, list[bytes]]:
    """Every origin chain the log's import events name, up to the newest head any of them names."""
    want: dict[str, tuple[int, str]] = {}
    for ev in parsed:
        if ev.kind == "import" and ev.origin is not None:
            o = ev.origin
            if o.head.seq >= want.get(o.chain, (0, ""))[0]:
                want[o.chain] = (o.head.seq, o.head.sha256)
    out: dict[str, list[bytes]] = {}
    for chain, (count, head_sha) in sorted(want.items()):
        where = f"{ref}: origin chain {chain[:12]}"
        events = read_chain(storage, lambda s, c=chain: layout.origin_event_key(mkey, c, s), count, where, head_sha)
        if sha256_hex(events[0]) != chain:
            raise IntegrityError(f"{where}: its event 1 is not the chain it claims to be", obj=where)
        out[chain] = events
    for ev in parsed:
        if ev.kind == "import" and ev.origin is not None:
            check_origin(ev, out.get(ev.origin.chain, []), ref)
    return out


def check_origin(ev: Event, events: list[bytes], ref: str) -> Event:
    """The source event an import names: present in its origin chain, same bytes, same version and digest."""
    o = ev.origin
    where = f"{ref}: import event {ev.seq}"
    if not 1 <= o.anchor.seq <= len(events) or sha256_hex(events[o.anchor.seq - 1]) != o.anchor.sha256:
        raise IntegrityError(f"{where}: the source event {o.anchor.seq} it names is missing or edited in "
                             f"audit/origins/{o.chain[:12]}", obj=where)
    src = audit.parse_event(events[o.anchor.seq - 1], where, o.anchor.seq)
    if src.kind not in ANCHOR_KINDS or src.version != ev.version or src.digest != ev.digest:
        raise IntegrityError(f"{where}: the source event {o.anchor.seq} it names does not register {ev.version} "
                             f"with digest {ev.digest}", obj=where)
    return src


def _check_trust(reg, payload: ModelPayload, tail_sha: str) -> None:
    """The consumer's trust root vouches for every version and alias (TrustError, exit 1, otherwise)."""
    from ..governance import check_resolution

    lp = reg.loaded_policy()
    if lp is None:
        raise InvalidInputError(f"{reg.url}: a trust root is configured but the source holds no policy")
    by_name = {vp.version: vp.view for vp in payload.versions}
    for vp in payload.versions:
        vp.trust = check_resolution(reg, lp, vp.view, tail=payload.tail, tail_sha=tail_sha, alias=None,
                                    alias_seq=None).model_dump(mode="json", exclude_none=True)
    for alias, version in payload.aliases.items():
        state = payload.tail.aliases[alias]
        check_resolution(reg, lp, by_name[version], tail=payload.tail, tail_sha=tail_sha, alias=alias,
                         alias_seq=state.seq)

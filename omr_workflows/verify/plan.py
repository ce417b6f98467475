"""Deterministic, byte-balanced planning of verification work (pure: no I/O here).

Every node of an array job computes the same plan from the same registry state and
arguments, then takes its own share: `make_plan(...)` depends only on its inputs, sorts
everything it emits, and never looks at the clock, the host or the file system.

Units of work:
* a whole file: size + xxh3-128 (fast) or size + sha256 (strict);
* a range of chunks of a large file (fast mode only: sha256 cannot be split, xxh3-128 is
  recorded per `Content.chunk_size` chunk at registration);
* one version check per version: the manifest against the register audit event, and no
  unexpected extra file (for omnibioai-written versions: their `sha256sums.txt`);
* an error unit for a version whose manifest cannot be read (it always fails).

Balance: units with bytes go, largest first, to the shard with the fewest bytes so far
(LPT). The heaviest shard then exceeds the mean by less than the size of its smallest
unit, so with units no larger than a tenth of the mean it holds at most 10% more bytes
than the mean. Zero-byte units (version checks, empty files) are spread by count.
Large files are cut into chunk ranges of about `bytes / (shards * UNITS_PER_SHARD)`
(at least one chunk), so there are enough units to balance without bloating reports.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from ..manifest import Manifest

from ..constants import MANIFEST_NAME, META_NAME, SHA256SUMS_NAME
from ..errors import InvalidInputError
from ..sums import sha256sums_text
from .report import Plan, PlanHeader, ShardInfo, Unit, VersionInfo, sha256_of_lines

MODES = ("fast", "strict")
UNITS_PER_SHARD = 32
NO_EXTRA = "extra:none"
LEGACY_NOTE = ("legacy version (omnibioai-model-registry): verified with sha256 from its sha256sums.txt "
               "in both modes")


@dataclass(frozen=True)
class VersionInput:
    """Everything the planner needs about one version, gathered beforehand (see run.gather)."""

    task: str
    model: str
    version: str
    key: str                                     # storage key of the version folder
    manifest: Manifest | None = None
    manifest_sha256: str | None = None          # of the manifest bytes as read
    recorded_digest: str | None = None           # register audit event
    recorded_meta_sha256: str | None = None
    recorded_manifest_sha256: str | None = None
    audit_error: str | None = None               # the audit log could not be read
    legacy_sums: Mapping[str, str] | None = None
    legacy_sums_sha256: str | None = None
    legacy_sizes: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None                     # the manifest could not be read
    strict_error: str | None = None              # fails strict mode only (an unanchored legacy version)

    @property
    def ref(self) -> str:
        return f"{self.task}/{self.model}@{self.version}"


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` (1-based) -> (I, N); InvalidInputError otherwise."""
    parts = (text or "").split("/")
    if len(parts) == 2 and parts[0].strip().isdigit() and parts[1].strip().isdigit():
        i, n = int(parts[0]), int(parts[1])
        if 1 <= i <= n:
            return i, n
    raise InvalidInputError(f"invalid shard {text!r}: expected I/N with 1 <= I <= N, e.g. 3/64")


def make_plan(versions: Iterable[VersionInput], *, registry: str, selection: Sequence[str], mode: str,
              shards: int) -> Plan:
    """The plan for `versions` in `mode`, split into `shards` shards.

    Raises InvalidInputError for an unknown mode or a shard count below 1.
    """
    if mode not in MODES:
        raise InvalidInputError(f"invalid verify mode {mode!r}: use fast or strict")
    if not isinstance(shards, int) or shards < 1:
        raise InvalidInputError(f"invalid shard count {shards!r}: must be at least 1")
    by_ref: dict[str, VersionInput] = {}
    for v in versions:
        by_ref.setdefault(v.ref, v)
    ordered = [by_ref[r] for r in sorted(by_ref)]
    total = sum(_version_bytes(v) for v in ordered)
    target = -(-total // (shards * UNITS_PER_SHARD)) if total else 0

    drafts: list[dict] = []
    infos: list[VersionInfo] = []
    for v in ordered:
        units = _version_units(v, mode, target)
        drafts.extend(units)
        infos.append(_version_info(v, units))

    assign = _balance([(d["id"], d["length"]) for d in drafts], shards)
    units = [Unit(shard=assign[d["id"]], **d) for d in drafts]
    by_shard: dict[int, list[Unit]] = {i: [] for i in range(1, shards + 1)}
    for u in units:
        by_shard[u.shard].append(u)
    shard_infos = []
    for i, mine in by_shard.items():
        shard_infos.append(ShardInfo(index=i, units=len(mine), bytes=sum(u.length for u in mine),
                                     digest=sha256_of_lines(u.plan_row() for u in mine)))
    header = PlanHeader(
        registry=registry, selection=sorted(set(selection)), mode=mode, shard_count=shards,
        versions=len(infos), units=len(units), bytes=sum(u.length for u in units),
        versions_digest=versions_digest(infos), shards=shard_infos,
    )
    header = header.model_copy(update={"plan_digest": header.compute_digest()})
    return Plan(header=header, versions=infos, units=units)


def versions_digest(infos: Iterable[VersionInfo]) -> str:
    return sha256_of_lines(v.model_dump(mode="json") for v in sorted(infos, key=lambda v: v.ref))


# ---------------------------------------------------------------------- units
def _version_bytes(v: VersionInput) -> int:
    if v.manifest is not None:
        return sum(e.size for e in v.manifest.all_files())
    if v.legacy_sums is not None:
        return sum(v.legacy_sizes.get(p, 0) for p in v.legacy_sums) + v.legacy_sizes.get(SHA256SUMS_NAME, 0)
    return 0


def _unit(ref: str, kind: str, path: str, key: str, algo: str, length: int, expected: list[str],
          suffix: str = "", **extra) -> dict:
    return dict(id=f"{ref}:{path}{suffix}", version=ref, kind=kind, path=path, key=key, algo=algo,
                length=length, expected=expected, **extra)


def _version_units(v: VersionInput, mode: str, target: int) -> list[dict]:
    ref = v.ref
    if v.error is not None or (v.manifest is None and v.legacy_sums is None):
        return [_unit(ref, "error", MANIFEST_NAME, f"{v.key}/{MANIFEST_NAME}", "none", 0, [],
                      error=v.error or "the version has neither an omr manifest nor a sha256sums.txt")]
    if v.manifest is None:
        units = _legacy_units(v)
        if not [p for p in v.legacy_sums if p != SHA256SUMS_NAME]:
            # Checking zero files is a failure (no silent pass), whatever the trust.
            units.append(_unit(ref, "error", "(files)", f"{v.key}/{SHA256SUMS_NAME}", "none", 0, [],
                               error=f"{SHA256SUMS_NAME} lists no file: nothing of this version can be verified"))
        if mode == "strict" and v.strict_error:
            units.append(_unit(ref, "error", "(anchor)", f"{v.key}/{SHA256SUMS_NAME}", "none", 0, [],
                               error=v.strict_error))
        return units
    m = v.manifest
    base = f"{v.key}/{m.data_dir}" if m.data_dir else v.key
    out: list[dict] = []
    for e in sorted(m.all_files(), key=lambda e: e.path):
        key = f"{base}/{e.path}"
        if mode == "strict":
            out.append(_unit(ref, "file", e.path, key, "sha256", e.size, [e.sha256], size=e.size))
            continue
        cs = m.content.chunk_size
        n = len(e.chunks)
        if n > 1 and n == -(-e.size // cs):
            per = max(1, target // cs) if target else 1
            for first in range(0, n, per):
                last = min(n, first + per)
                offset = first * cs
                out.append(_unit(ref, "chunks", e.path, key, "xxh3-128", min(e.size, last * cs) - offset,
                                 list(e.chunks[first:last]), suffix=f"//chunks[{first}:{last}]", offset=offset,
                                 size=e.size, chunk_size=cs, first_chunk=first))
        else:
            # One chunk, or chunk hashes inconsistent with the size: the whole-file hash decides.
            out.append(_unit(ref, "file", e.path, key, "xxh3-128", e.size, [e.xxh3], size=e.size))
    out.append(_manifest_unit(v, mode))
    return out


def _manifest_unit(v: VersionInput, mode: str) -> dict:
    """The version check: manifest bytes and package digest against the audit log, no extras.

    Both modes compare against the register event when there is one (a flipped byte in the
    manifest is corruption too). Strict mode also checks the recorded sha256 of
    model_meta.json and that the manifest's sha256sums.txt entry is exactly the listing of
    the content, so an edited sha256sums.txt plus a matching manifest edit is caught even
    where the event predates recorded manifest hashes. A version published without its
    register event (register killed between publish and audit) is checked against its own
    manifest, and the version's note says so.
    """
    ref, m = v.ref, v.manifest
    key = f"{v.key}/{MANIFEST_NAME}"
    if v.audit_error and mode == "strict":
        return _unit(ref, "error", MANIFEST_NAME, key, "none", 0, [], error=v.audit_error)
    expected = [
        f"manifest:{v.recorded_manifest_sha256 or v.manifest_sha256}",
        f"digest:{v.recorded_digest or m.digest}",
    ]
    if mode == "strict":
        own_meta = m.entry(META_NAME)
        meta_sha = v.recorded_meta_sha256 or (own_meta.sha256 if own_meta else "missing")
        meta = SimpleNamespace(path=META_NAME, sha256=meta_sha)
        sums = sha256sums_text(list(m.content.files) + [meta]).encode()
        expected += [f"meta:{meta_sha}", f"sums:{hashlib.sha256(sums).hexdigest()}"]
    expected.append(NO_EXTRA)
    return _unit(ref, "manifest", MANIFEST_NAME, key, "manifest", 0, expected)


def _legacy_units(v: VersionInput) -> list[dict]:
    ref = v.ref
    out = [_unit(ref, "file", p, f"{v.key}/{p}", "sha256", v.legacy_sizes.get(p, 0), [h])
           for p, h in sorted(v.legacy_sums.items()) if p != SHA256SUMS_NAME]
    # sha256sums.txt is this version's manifest: its sha256 is the legacy package digest.
    out.append(_unit(ref, "manifest", SHA256SUMS_NAME, f"{v.key}/{SHA256SUMS_NAME}", "sha256",
                     v.legacy_sizes.get(SHA256SUMS_NAME, 0), [v.legacy_sums_sha256 or ""]))
    return out


def _version_info(v: VersionInput, units: list[dict]) -> VersionInfo:
    note = v.error
    digest = v.manifest.digest if v.manifest is not None else None
    if v.manifest is None and v.legacy_sums is not None and v.error is None:
        digest = f"sha256:{v.legacy_sums_sha256}" if v.legacy_sums_sha256 else None
        unlisted = sorted(p for p in v.legacy_sizes if p not in v.legacy_sums and p != SHA256SUMS_NAME)
        note = LEGACY_NOTE + (f"; files it does not list are not verified: {', '.join(unlisted)}" if unlisted else "")
    elif v.manifest is not None and v.recorded_digest is None:
        note = "no register audit event found: the manifest was checked against itself only"
        if v.audit_error:
            note = v.audit_error
    return VersionInfo(ref=v.ref, task=v.task, model=v.model, version=v.version, digest=digest,
                       recorded_digest=v.recorded_digest, legacy=v.manifest is None and v.legacy_sums is not None,
                       note=note, units=len(units), bytes=sum(u["length"] for u in units))


# ---------------------------------------------------------------------- balance
def _balance(items: Sequence[tuple[str, int]], shards: int) -> dict[str, int]:
    """unit id -> shard (1-based): LPT on bytes, zero-byte units by count; deterministic."""
    out: dict[str, int] = {}
    heap = [(0, 0, i) for i in range(1, shards + 1)]  # (bytes, units, index)
    sized = sorted((it for it in items if it[1] > 0), key=lambda it: (-it[1], it[0]))
    for uid, length in sized:
        load, count, i = heapq.heappop(heap)
        out[uid] = i
        heapq.heappush(heap, (load + length, count + 1, i))
    counts = [(0, i) for i in range(1, shards + 1)]
    heapq.heapify(counts)
    for uid, _ in sorted(it for it in items if it[1] <= 0):
        count, i = heapq.heappop(counts)
        out[uid] = i
        heapq.heappush(counts, (count + 1, i))
    return out

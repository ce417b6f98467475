"""The file formats of verification: the plan, a shard report and a merged report.

These pydantic models are the single definition of each format (docs/DESIGN.md, "Verification").

* A **plan** is the deterministic list of work units for a selection of versions, split into
  N byte-balanced shards. Its header (`PlanHeader`) is small and carries, per shard, the
  unit count, the bytes and a digest of that shard's unit list (expected hashes included);
  the **plan digest** is the sha256 of the canonical header, so it covers every unit and
  every expected hash without every report having to carry the whole plan.
* A **shard report** is what `omrw verify --shard I/N` writes: the plan header, the
  planned units of shard I each with its result, the digests actually computed
  ("observed"), bytes, seconds, host, and `report_digest`, a sha256 of the rest of the body.
* A **merged report** is what `omrw verify-merge` writes once every shard is accounted for.

Digests here are `sha256:<hex>` of canonical JSON (sorted keys, no whitespace), computed
line by line for unit lists so a plan of millions of units never needs one huge string.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..canonical import canonical_json

PLAN_SCHEMA = "omr-verify-plan/1"
REPORT_SCHEMA = "omr-verify-report/1"
MERGED_SCHEMA = "omr-verify-merged/1"

Mode = Literal["fast", "strict"]
UnitKind = Literal["file", "chunks", "manifest", "error"]
Algo = Literal["sha256", "xxh3-128", "manifest", "none"]
Result = Literal["ok", "fail"]
VersionStatus = Literal["ok", "fail", "partial"]


def sha256_of_lines(rows: Iterable[dict]) -> str:
    """`sha256:` over the canonical JSON of each row, one per line (streamed)."""
    h = hashlib.sha256()
    for row in rows:
        h.update(canonical_json(row))
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def digest_of(obj: dict) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj)).hexdigest()


class Unit(BaseModel):
    """One unit of work: a whole file, a range of chunks of a large file, or the per-version
    manifest check (manifest against the audit log, unexpected extra files)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="unique in the plan: 'TASK/MODEL@VERSION:PATH', plus '//chunks[a:b]' for a "
                                "chunk range ('//' never occurs in a manifest path, so ids cannot collide)")
    shard: int = Field(ge=1)
    version: str = Field(description="TASK/MODEL@VERSION")
    kind: UnitKind
    path: str = Field(description="file inside the version (the manifest or sha256sums.txt for the version check)")
    key: str = Field(description="storage key under the registry root")
    algo: Algo
    offset: int = Field(default=0, ge=0)
    length: int = Field(ge=0, description="bytes this unit reads")
    size: int | None = Field(default=None, description="recorded size of the whole file (None: not recorded)")
    chunk_size: int | None = None
    first_chunk: int | None = None
    expected: list[str] = Field(default_factory=list, description="digest(s) the unit must observe")
    error: str | None = Field(default=None, description="why the unit cannot pass (kind 'error')")

    def plan_row(self) -> dict:
        return self.model_dump(mode="json", include=set(Unit.model_fields))


class Issue(BaseModel):
    """One bad file (or one problem of the version check)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    kind: str = Field(description="missing | size | hash | extra | manifest | unrecorded | error")
    detail: str


class UnitResult(Unit):
    result: Result
    issues: list[Issue] = Field(default_factory=list)
    observed: list[str] = Field(default_factory=list, description="digest(s) actually computed")
    observed_size: int | None = Field(default=None, description="size of the file as found")
    bytes_read: int = 0
    seconds: float = 0.0


class VersionInfo(BaseModel):
    """One planned version: what was read at planning time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: str = Field(description="TASK/MODEL@VERSION")
    task: str
    model: str
    version: str
    digest: str | None = Field(default=None, description="package digest of the manifest as read")
    recorded_digest: str | None = Field(default=None, description="package digest in the register audit event")
    legacy: bool = Field(default=False, description="written by omnibioai-model-registry (no omr manifest)")
    note: str | None = None
    units: int
    bytes: int


class VersionResult(VersionInfo):
    result: VersionStatus
    failed_units: int = 0


class ShardInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=1)
    units: int
    bytes: int
    digest: str = Field(description="sha256 over the canonical rows of this shard's units, in plan order")


class PlanHeader(BaseModel):
    """What every shard agrees on; `plan_digest` is the sha256 of the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["omr-verify-plan/1"] = Field(default=PLAN_SCHEMA, alias="schema")
    registry: str
    selection: list[str] = Field(description="the refs / --all / --model as asked, normalised and sorted")
    mode: Mode
    shard_count: int = Field(ge=1)
    versions: int
    units: int
    bytes: int
    versions_digest: str
    shards: list[ShardInfo]
    plan_digest: str = ""

    def compute_digest(self) -> str:
        return digest_of(self.model_dump(mode="json", by_alias=True, exclude={"plan_digest"}))


class Plan(BaseModel):
    """The whole plan in memory (every node computes it; `--plan --report` writes it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: PlanHeader
    versions: list[VersionInfo]
    units: list[Unit] = Field(description="every unit, in plan order")

    def shard_units(self, index: int) -> list[Unit]:
        return [u for u in self.units if u.shard == index]


class Failure(BaseModel):
    """One bad file of one version, with the units that found it."""

    model_config = ConfigDict(extra="forbid")

    version: str
    path: str
    kind: str
    detail: str
    units: list[str]


def failures_of(units: Iterable[UnitResult]) -> list[Failure]:
    """Failed units folded into one entry per (version, file, kind)."""
    out: dict[tuple[str, str, str], Failure] = {}
    for u in units:
        if u.result == "ok":
            continue
        for issue in u.issues or [Issue(path=u.path, kind="error", detail="failed")]:
            k = (u.version, issue.path, issue.kind)
            if k in out:
                if u.id not in out[k].units:
                    out[k].units.append(u.id)
                if issue.detail not in out[k].detail.split("; "):
                    out[k].detail += "; " + issue.detail
            else:
                out[k] = Failure(version=u.version, path=issue.path, kind=issue.kind, detail=issue.detail,
                                 units=[u.id])
    return sorted(out.values(), key=lambda f: (f.version, f.path, f.kind))


def version_results(versions: Iterable[VersionInfo], units: Iterable[UnitResult]) -> list[VersionResult]:
    seen: dict[str, int] = {}
    failed: dict[str, int] = {}
    for u in units:
        seen[u.version] = seen.get(u.version, 0) + 1
        if u.result != "ok":
            failed[u.version] = failed.get(u.version, 0) + 1
    out = []
    for v in versions:
        bad = failed.get(v.ref, 0)
        status = "fail" if bad else ("ok" if seen.get(v.ref, 0) == v.units else "partial")
        out.append(VersionResult(**v.model_dump(), result=status, failed_units=bad))
    return out


class ShardReport(BaseModel):
    """`omrw verify --report FILE`: the results of one shard of one plan."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["omr-verify-report/1"] = Field(default=REPORT_SCHEMA, alias="schema")
    plan: PlanHeader
    shard: int = Field(ge=1)
    ok: bool
    host: str
    started_at: str
    seconds: float
    jobs: int
    bytes_read: int
    versions: list[VersionResult] = Field(description="versions with at least one unit in this shard")
    failures: list[Failure]
    units: list[UnitResult] = Field(description="this shard's units in plan order, each with its result")
    report_digest: str = Field(default="", description="sha256 of the canonical report without this field")

    def compute_digest(self) -> str:
        return digest_of(self.model_dump(mode="json", by_alias=True, exclude={"report_digest"}))

    def sealed(self) -> "ShardReport":
        return self.model_copy(update={"report_digest": self.compute_digest()})

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(by_alias=True, indent=1) + "\n").encode()


class MergedShard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    source: str
    host: str
    seconds: float
    bytes_read: int
    report_digest: str


class MergedReport(BaseModel):
    """`omrw verify-merge --report FILE`: every shard of one plan, coverage proven."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["omr-verify-merged/1"] = Field(default=MERGED_SCHEMA, alias="schema")
    plan: PlanHeader
    ok: bool
    merged_at: str
    host: str
    bytes_read: int
    shards: list[MergedShard]
    versions: list[VersionResult]
    failures: list[Failure]
    units: list[UnitResult]
    report_digest: str = ""

    def compute_digest(self) -> str:
        return digest_of(self.model_dump(mode="json", by_alias=True, exclude={"report_digest"}))

    def sealed(self) -> "MergedReport":
        return self.model_copy(update={"report_digest": self.compute_digest()})

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(by_alias=True, indent=1) + "\n").encode()

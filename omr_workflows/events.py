"""The file formats of the log: events, head, alias pointers and anchors (pydantic, the one definition).

What each field means and which files are truth and which derived caches: docs/DESIGN.md,
"The log". Every name in them goes through the one name rule (`Name`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .canonical import canonical_json
from .constants import (ANCHOR_KINDS, DIGEST_PATTERN, EVENT_KINDS, EVENT_PAYLOAD_TYPE, HEX_PATTERN,  # noqa: F401
                        KEYID_PATTERN, MAX_TEXT, STAGE_ALIASES, STAGE_ONLY, STAGES, STATE_FIELDS, now_utc_iso)
from .fastread import describe_lifecycle
from .names import name_type

Name = name_type()


class AliasState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Name
    seq: int = Field(ge=1, description="event that last moved this alias")


class EventRef(BaseModel):
    """Another event of the same chain, by number and the sha256 of its file."""

    model_config = ConfigDict(extra="forbid")
    seq: int = Field(ge=1, lt=10**10)
    sha256: str = Field(pattern=HEX_PATTERN)


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int = Field(ge=1, lt=10**10, description="the approve event")
    key_id: str = Field(pattern=KEYID_PATTERN)
    actor: str = Field(max_length=MAX_TEXT)


class PendingRequest(BaseModel):
    """A request to move a protected alias, waiting for approvals (part of the state)."""

    model_config = ConfigDict(extra="forbid")
    alias: Name
    version: Name
    digest: str = Field(pattern=DIGEST_PATTERN)
    key_id: str = Field(pattern=KEYID_PATTERN, description="the requester's key")
    actor: str = Field(max_length=MAX_TEXT)
    approvals: list[Approval] = Field(default_factory=list, max_length=256)


class Lifecycle(BaseModel):
    """A version's retirement so far (part of the state): deprecated, retired, or retired and its
    bytes pruned. Its manifest, events and signatures stay, so old references get a clear answer."""

    model_config = ConfigDict(extra="forbid")
    state: Literal["deprecated", "retired", "pruned"]
    seq: int = Field(ge=1, lt=10**10, description="the event that set this state")
    ts_utc: str = Field(max_length=64)
    actor: str = Field(max_length=MAX_TEXT)
    reason: str | None = Field(default=None, max_length=MAX_TEXT)
    retired_seq: int | None = Field(default=None, description="pruned: the retire event before it")

    describe = describe_lifecycle


class EventSignature(BaseModel):
    """DSSE signature (keyid, base64 sig) over PAE(EVENT_PAYLOAD_TYPE, `Event.signed_bytes()`)."""

    model_config = ConfigDict(extra="forbid")
    keyid: str = Field(pattern=KEYID_PATTERN)
    sig: str = Field(max_length=1024, pattern=r"^[A-Za-z0-9+/=]+$")


class Origin(BaseModel):
    """`import`: where a version came from, and the source's own record of it (docs/DESIGN.md, "Bundles").

    The source chain's events (1 to `head`) are kept write-once under `audit/origins/<chain>/`,
    so the original register, approval and promotion records, with their signatures, stay
    checkable in the target; `anchor` names the one that registered the version there.
    """

    model_config = ConfigDict(extra="forbid")
    registry: str = Field(max_length=MAX_TEXT, description="the source registry, as the exporter named it")
    bundle: str | None = Field(default=None, pattern=DIGEST_PATTERN,
                               description="sha256 of the bundle's index (None: mirrored registry to registry)")
    chain: str = Field(pattern=HEX_PATTERN, description="sha256 of event 1 of the source model's log: its identity")
    anchor: EventRef = Field(description="the source event that registered (or imported) the version")
    head: EventRef = Field(description="the source chain's newest event the excerpt holds")


class Event(BaseModel):
    """One audit event; its file is the canonical JSON of this model."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(ge=1, lt=10**10)
    kind: Literal["register", "adopt", "import", "promote", "stage", "request", "approve", "reject", "sign", "deprecate",
                  "retire", "prune"]
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
    # Governance (docs/DESIGN.md, "Governance"); absent in logs written before it.
    request: EventRef | None = Field(default=None, description="approve/reject: the request; promote: the request it completes")
    approvals: list[EventRef] = Field(default_factory=list, max_length=256,
                                      description="promote completing a request: every approval it counts")
    key_id: str | None = Field(default=None, pattern=KEYID_PATTERN, description="sign: the key of the new signature")
    requests: dict[str, PendingRequest] = Field(default_factory=dict, description="pending requests after this event, "
                                                "by the seq of the request event")
    lifecycle: dict[Name, Lifecycle] = Field(default_factory=dict, description="deprecated/retired/pruned versions "
                                             "after this event")
    origin: Origin | None = Field(default=None, description="import: the source and its record of the version")
    signature: EventSignature | None = None

    def to_bytes(self) -> bytes:
        return canonical_json(self.model_dump(mode="json")) + b"\n"

    def signed_bytes(self) -> bytes:
        """What the actor's signature covers: the event's canonical JSON without `signature`."""
        return canonical_json(self.model_dump(mode="json", exclude={"signature"}))


def signed_payload(data: bytes) -> bytes:
    """The bytes an event file's signature covers, from the file itself (not from a re-dump, so
    a later release that adds fields with defaults cannot change what an old signature covers)."""
    import json

    obj = json.loads(data)
    obj.pop("signature", None)
    return canonical_json(obj)


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

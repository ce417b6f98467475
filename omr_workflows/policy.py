"""The governance policy and the consumer's trust root (pydantic, the one definition of both files).

Why two files (docs/DESIGN.md, "Governance"): the *policy* lives in the shared registry
(`policy/policy.json`, a DSSE envelope) so every writer and reader sees the same rules, but
anyone who can write the registry can replace it. It is therefore obeyed only when it is
signed by a key the consumer pins *outside* the registry: the *trust root* (`--trust FILE`,
`$OMR_TRUST`, the `trust` section of a lock file, `omr-trust.json` in the pipeline's
directory or `~/.config/omr/trust.json`). Without a trust root nothing is enforced at the
point of use (the 0.1 behaviour); writers still follow the registry's policy as a guard
against careless use.
"""

from __future__ import annotations

import fnmatch
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import IntegrityError, InvalidInputError, NotFoundError, TrustError, validation_detail
from .hashing import sha256_hex
from .hooks import Hook
from .names import name_type

Name = name_type()
POLICY_PAYLOAD_TYPE = "application/vnd.omr.policy.v1+json"
from .trustinfo import ENV_TRUST  # the lookup of the trust file lives there
MAX_POLICY_BYTES = 1 << 20


class Signer(BaseModel):
    """A person (or service) who signs: a public key plus an identity."""

    model_config = ConfigDict(extra="forbid")
    id: Name
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=200)
    public_key: str = Field(max_length=4096, description="EC P-256 public key, PEM (SubjectPublicKeyInfo)")
    roles: list[Name] = Field(default_factory=list, max_length=64)

    def label(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else self.name


class Rule(BaseModel):
    """What holds for the models a glob matches. Principals: `*` (any signer of the policy),
    `role:NAME`, or a signer id."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    match: str = Field(default="*", min_length=1, max_length=256, description="glob over TASK/MODEL")
    protected_aliases: list[Name] = Field(default_factory=list, max_length=64)
    approvals_required: int = Field(default=1, ge=1, le=64,
                                    description="distinct approvers a protected alias needs; the requester does not count")
    register_: list[str] = Field(default_factory=lambda: ["*"], max_length=256, alias="register",
                                 description="who may register (and adopt)")
    promote: list[str] = Field(default_factory=lambda: ["*"], max_length=256,
                               description="who may move unprotected aliases and request protected ones")
    approve: list[str] = Field(default_factory=lambda: ["*"], max_length=256)
    require_signed_events: bool = True
    require_signed_versions: bool = False
    verify: Literal["none", "fast", "strict"] | None = Field(default=None, description="default --verify of consumers")


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    serial: int = Field(default=1, ge=1, lt=10**12, description="raise it with every change; trust roots may pin a minimum")
    signers: list[Signer] = Field(default_factory=list, max_length=1024)
    rules: list[Rule] = Field(default_factory=list, max_length=1024)
    hooks: list[Hook] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _unique(self):
        ids = [s.id for s in self.signers]
        if len(set(ids)) != len(ids):
            raise ValueError("signer ids must be unique")
        names = [h.name for h in self.hooks]
        if len(set(names)) != len(names):
            raise ValueError("hook names must be unique")
        return self

    @cached_property
    def _keys(self) -> dict[str, tuple[Signer, Any]]:
        from .signing.keys import load_public

        out: dict[str, tuple[Signer, Any]] = {}
        for s in self.signers:
            key = load_public(s.public_key, f"policy signer {s.id}")
            if key.key_id in out:
                raise InvalidInputError(f"policy: signers {out[key.key_id][0].id} and {s.id} have the same key")
            out[key.key_id] = (s, key)
        return out

    def verify_keys(self) -> dict[str, Any]:
        """key id -> VerifyKey of every signer."""
        return {kid: key for kid, (_s, key) in self._keys.items()}

    def signer(self, key_id: str | None) -> Signer | None:
        found = self._keys.get(key_id or "")
        return found[0] if found else None

    def rule_for(self, task: str, model: str) -> Rule:
        """The first rule whose glob matches TASK/MODEL; the defaults of `Rule` when none does."""
        name = f"{task}/{model}"
        for rule in self.rules:
            if fnmatch.fnmatchcase(name, rule.match):
                return rule
        return Rule()

    def allows(self, principals: list[str], signer: Signer | None) -> bool:
        if signer is None:
            return False
        for p in principals:
            if p == "*" or p == signer.id or (p.startswith("role:") and p[5:] in signer.roles):
                return True
        return False


class TrustKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    public_key: str = Field(max_length=4096)


class TrustRoot(BaseModel):
    """What a consumer pins outside the registry: the keys that may sign the registry's policy."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    keys: list[TrustKey] = Field(min_length=1, max_length=16)
    min_policy_serial: int = Field(default=1, ge=1, description="refuse an older (rolled back) policy")

    @field_validator("keys")
    @classmethod
    def _parse_keys(cls, keys: list[TrustKey]) -> list[TrustKey]:
        from .signing.keys import load_public

        for k in keys:
            load_public(k.public_key, f"trust key {k.name}")
        return keys

    def verify_keys(self) -> dict[str, Any]:
        from .signing.keys import load_public

        out = {}
        for k in self.keys:
            key = load_public(k.public_key, f"trust key {k.name}")
            out[key.key_id] = key
        return out

    def name_of(self, key_id: str) -> str:
        from .signing.keys import load_public

        for k in self.keys:
            if load_public(k.public_key, k.name).key_id == key_id:
                return k.name
        return key_id[:12]


class LoadedPolicy(BaseModel):
    """A policy as read from a registry, and how far it can be trusted."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    policy: Policy
    digest: str = Field(description="sha256: of the signed payload bytes")
    verified: bool = Field(description="signed by a key of the consumer's trust root")
    signed_by: str | None = None


# ---------------------------------------------------------------------- parsing
def _parse(model, data: bytes | str, what: str, max_bytes: int = MAX_POLICY_BYTES):
    from .bounds import load_json_bounded, load_yaml_bounded

    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if what.endswith((".yml", ".yaml")):
        obj = load_yaml_bounded(text, what, max_bytes=max_bytes)
    else:
        obj = load_json_bounded(text, what, max_bytes=max_bytes)
    try:
        return model.model_validate(obj)
    except InvalidInputError:
        raise
    except ValueError as exc:
        raise InvalidInputError(f"{what}: {validation_detail(exc)}", obj=what) from None


def parse_policy(data: bytes | str, what: str) -> Policy:
    policy = _parse(Policy, data, what)
    policy.verify_keys()  # every signer key must parse: a bad one is bad input now, not at use
    return policy


def read_file(path: str | os.PathLike, what: str, max_bytes: int = MAX_POLICY_BYTES) -> bytes:
    from .bounds import read_bounded

    return read_bounded(str(path), what, max_bytes=max_bytes)


def load_policy_file(path: str | os.PathLike) -> Policy:
    return parse_policy(read_file(path, f"policy file {path}"), str(path))


def load_trust_file(path: str | os.PathLike) -> TrustRoot:
    return _parse(TrustRoot, read_file(path, f"trust file {path}", 256 << 10), str(path), 256 << 10)


def trust_from_public_key(path: str | os.PathLike, name: str | None = None) -> TrustRoot:
    """A trust root of one key, from a public key PEM file (`omrw trust init`)."""
    text = read_file(path, f"public key {path}", 64 << 10).decode("utf-8", "replace")
    return TrustRoot(keys=[TrustKey(name=name or Path(path).stem, public_key=text)])


def find_trust(explicit: str | None = None, lock_trust: TrustRoot | None = None,
               start: str | os.PathLike | None = None) -> TrustRoot | None:
    """The consumer's trust root: --trust, $OMR_TRUST, the lock file's, the pipeline's, the user's
    (`trustinfo.trust_file` says which file). `none` turns every source off."""
    from .trustinfo import trust_file

    if explicit or os.environ.get(ENV_TRUST):
        source = trust_file(explicit, start)
        return None if source == "none" else load_trust_file(source)
    if lock_trust is not None:
        return lock_trust
    source = trust_file(None, start)
    return load_trust_file(source) if source else None


# ---------------------------------------------------------------------- the registry's copy
def sign_policy(policy: Policy, key) -> bytes:
    """The envelope to store as `policy/policy.json`, signed by a trust-root key."""
    import json

    from .manifest import canonical_json
    from .signing import dsse

    payload = canonical_json(policy.model_dump(mode="json", by_alias=True))
    return json.dumps(dsse.envelope(POLICY_PAYLOAD_TYPE, payload, key), indent=2).encode() + b"\n"


def read_policy(storage, trust: TrustRoot | None) -> LoadedPolicy | None:
    """The registry's policy. With a trust root it must be signed by one of its keys (else
    IntegrityError, exit 1: a replaced policy is never obeyed); without one it is read as
    advice for writers, unverified."""
    import base64

    from . import layout
    from .bounds import load_json_bounded
    from .signing import dsse

    key = layout.policy_key()
    try:
        raw = storage.read_small(key, MAX_POLICY_BYTES * 2)
    except IntegrityError as exc:  # a symlink, FIFO or huge file planted at the policy's key
        if trust is None:
            return None
        raise TrustError(f"registry policy {key}: {exc}: ignored, never obeyed", obj=key) from None
    except NotFoundError:
        if trust is not None:
            raise TrustError(f"a trust root is configured but {storage.url} has no signed policy ({key}); "
                                 f"its admin runs `omrw policy set FILE --key ROOTKEY`", obj=key) from None
        return None
    what = f"registry policy {key}"
    try:
        env = load_json_bounded(raw, what, max_bytes=MAX_POLICY_BYTES * 2)
        if not isinstance(env, dict):
            raise InvalidInputError(f"{what}: not a DSSE envelope")
    except InvalidInputError as exc:
        if trust is None:
            return None
        raise TrustError(f"{exc}: ignored, never obeyed", obj=key) from None
    if trust is None:
        try:
            payload = base64.b64decode(env.get("payload", ""), validate=True)
            policy = parse_policy(payload, what)
        except (ValueError, TypeError, InvalidInputError):
            return None
        return LoadedPolicy(policy=policy, digest="sha256:" + sha256_hex(payload), verified=False)
    try:
        payload, signer = dsse.open_envelope(env, trust.verify_keys(), POLICY_PAYLOAD_TYPE)
    except (IntegrityError, InvalidInputError) as exc:
        raise TrustError(f"{what} is not signed by a key of the trust root ({exc}): ignored, never obeyed",
                             obj=key) from None
    try:
        policy = parse_policy(payload, what)
    except InvalidInputError as exc:
        raise TrustError(f"{exc} (signed, but malformed): ignored", obj=key) from None
    if policy.serial < trust.min_policy_serial:
        raise TrustError(f"{what} has serial {policy.serial}, older than the {trust.min_policy_serial} the trust "
                             f"root requires (rolled back?): ignored", obj=key)
    return LoadedPolicy(policy=policy, digest="sha256:" + sha256_hex(payload), verified=True,
                        signed_by=trust.name_of(signer.key_id))


def policy_schema() -> dict:
    return Policy.model_json_schema()

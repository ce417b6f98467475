"""The OpenSSF model-signing v1.0 bundle, key-based: what `model_signing sign key` writes
(docs/DESIGN.md, "Signed versions").

A sigstore bundle v0.3 (JSON) holding a DSSE envelope around an in-toto statement whose
predicate lists every file with its sha256; the subject digest is the sha256 of the raw file
digests in resource order. Matching that format byte for byte where it matters means the stock
`model_signing verify key DIR --no-ignore-git-paths` verifies our bundles, and we read theirs.

We sign digests the caller recorded while copying, so signing never re-reads a model. We sign
every file (`ignore_paths: []`): a model's own `.gitignore` is part of it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..bounds import load_json_bounded
from ..errors import InvalidInputError, validation_detail
from ..names import check_relpath
from .dsse import MAX_SIG_CHARS, BadSignatureError, UnknownKeyError, b64decode, pae

if TYPE_CHECKING:
    from .keys import SigningKey, VerifyKey

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
MAX_BUNDLE_BYTES = 4 << 20

_HEX64 = re.compile(r"[0-9a-f]{64}")


class _Open(BaseModel):
    # Extra fields allowed: sigstore bundles and in-toto statements grow optional fields, and
    # v1.0 verifiers must ignore predicate fields they do not know.
    model_config = ConfigDict(extra="allow", strict=True)


class _PublicKey(_Open):
    hint: str | None = None


class _Material(_Open):
    publicKey: _PublicKey | None = None
    tlogEntries: list = []


class _Sig(_Open):
    sig: str = Field(max_length=MAX_SIG_CHARS)
    keyid: str = ""


class _Envelope(_Open):
    payload: str
    payloadType: Literal["application/vnd.in-toto+json"]
    signatures: list[_Sig] = Field(min_length=1)


class _Bundle(_Open):
    mediaType: Literal["application/vnd.dev.sigstore.bundle.v0.3+json"]
    verificationMaterial: _Material
    dsseEnvelope: _Envelope


class _Serialization(_Open):
    method: Literal["files"]
    hash_type: Literal["sha256"]
    allow_symlinks: bool
    ignore_paths: list[str] = []


class _Resource(_Open):
    name: str
    algorithm: Literal["sha256"]
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class _Predicate(_Open):
    serialization: _Serialization
    resources: list[_Resource]


class _Subject(_Open):
    name: str
    digest: dict[str, str]


class _Statement(_Open):
    type_: Literal["https://in-toto.io/Statement/v1"] = Field(alias="_type")
    subject: list[_Subject] = Field(min_length=1, max_length=1)
    predicateType: Literal["https://model_signing/signature/v1.0"]
    predicate: _Predicate


@dataclass(frozen=True)
class SignedFiles:
    """What a verified bundle vouches for: `files` maps relative POSIX path to sha256 hex."""

    key_id: str
    model_name: str
    files: dict[str, str] = field(default_factory=dict)


def _order(names) -> list[str]:
    """model_signing sorts resources as PurePosixPath objects, i.e. by path components, which
    is not string order ("a/b" comes before "a-b/c"); the subject digest depends on it."""
    return sorted(names, key=lambda n: n.split("/"))


def _root(digests) -> str:
    h = hashlib.sha256()
    for d in digests:
        h.update(bytes.fromhex(d))
    return h.hexdigest()


def sign_files(model_name: str, files: dict[str, str], key: SigningKey) -> bytes:
    """The bundle (JSON bytes) signing `files` {relative POSIX path: sha256 hex} as `model_name`."""
    for name, digest in files.items():
        check_relpath(name, "file name")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise InvalidInputError(f"{name}: sha256 {str(digest)[:20]!r} is not 64 lowercase hex", obj=name)
    names = _order(files)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": _root(files[n] for n in names)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "allow_symlinks": False, "ignore_paths": [],
                              "hash_type": "sha256"},
            "resources": [{"name": n, "algorithm": "sha256", "digest": files[n]} for n in names],
        },
    }
    payload = json.dumps(statement, indent=2).encode("utf-8")
    sig = base64.b64encode(key.sign(pae(PAYLOAD_TYPE, payload))).decode("ascii")
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key.key_id}, "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode("ascii"), "payloadType": PAYLOAD_TYPE,
                         # the key is found through the hint; model_signing leaves keyid empty
                         "signatures": [{"sig": sig, "keyid": ""}]},
    }
    return json.dumps(bundle, separators=(",", ":")).encode("utf-8")


def _parse(model: type[BaseModel], value: Any, what: str):
    try:
        return model.model_validate(value)
    except ValidationError as e:
        raise InvalidInputError(f"{what}: not a model-signing v1.0 bundle ({validation_detail(e)})",
                                obj=what) from None


def _signer(bundle: _Bundle, payload: bytes, keys: dict[str, VerifyKey], what: str) -> VerifyKey:
    material = bundle.verificationMaterial.publicKey
    hint = material.hint if material is not None else None
    der = b64decode(bundle.dsseEnvelope.signatures[0].sig, f"{what}: signature", MAX_SIG_CHARS)
    signed = pae(PAYLOAD_TYPE, payload)
    if hint:
        key = keys.get(hint)
        if key is None:
            raise UnknownKeyError(f"{what}: signed by unknown key {hint[:12]!r}", obj=what)
        if not key.verify(der, signed):
            raise BadSignatureError(f"{what}: signature by key {hint[:12]} does not verify", obj=what)
        return key
    for key in keys.values():  # an older bundle without a hint: any trusted key may have made it
        if key.verify(der, signed):
            return key
    raise UnknownKeyError(f"{what}: has no key hint and verifies with none of the {len(keys)} trusted keys",
                          obj=what)


def verify_bundle(data: bytes, keys: dict[str, VerifyKey], what: str) -> SignedFiles:
    """The files a bundle signs, once its signature by one of `keys` and its root digest check.

    Malformed: InvalidInputError naming `what`; unknown key: UnknownKeyError; a signature that
    does not verify or a subject digest that does not match the resources: BadSignatureError.
    Like model_signing, only the first DSSE signature counts.
    """
    bundle = _parse(_Bundle, load_json_bounded(data, what, max_bytes=MAX_BUNDLE_BYTES), what)
    payload = b64decode(bundle.dsseEnvelope.payload, f"{what}: payload", MAX_BUNDLE_BYTES)
    key = _signer(bundle, payload, keys, what)
    statement = _parse(_Statement, load_json_bounded(payload, f"{what}: statement", max_bytes=MAX_BUNDLE_BYTES),
                       what)
    files: dict[str, str] = {}
    for r in statement.predicate.resources:
        try:
            check_relpath(r.name, "file name")
        except InvalidInputError as e:
            raise InvalidInputError(f"{what}: {e}", obj=what) from None
        if r.name in files:
            raise InvalidInputError(f"{what}: file {r.name!r} listed twice", obj=what)
        files[r.name] = r.digest
    subject = statement.subject[0]
    root = _root(r.digest for r in statement.predicate.resources)
    if subject.digest.get("sha256") != root:
        raise BadSignatureError(f"{what}: subject digest does not match the listed files (inconsistent bundle)",
                                obj=what)
    return SignedFiles(key_id=key.key_id, model_name=subject.name, files=files)


def compare(signed: dict[str, str], actual: dict[str, str]) -> list[str]:
    """One line per file that differs between what was signed and what is there, sorted."""
    problems = [f"missing: {n}" for n in signed.keys() - actual.keys()]
    problems += [f"extra: {n}" for n in actual.keys() - signed.keys()]
    problems += [f"changed: {n}" for n in signed.keys() & actual.keys() if signed[n] != actual[n]]
    return sorted(problems)

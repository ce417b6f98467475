"""DSSE v1 signatures (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md).

Events carry a detached `{keyid, sig}` over PAE(type, payload) (docs/DESIGN.md, "Signed
events"); the policy is a whole envelope. PAE binds the payload type to the bytes, so a
signature made for one kind of document can never be replayed as another.

Only the standard library is imported here: reading events that carry signatures must stay
cheap, and `cryptography` is loaded by `keys` only when a signature is actually checked.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from ..errors import IntegrityError

if TYPE_CHECKING:
    from .keys import SigningKey, VerifyKey

MAX_SIG_CHARS = 1024
"""A base64 DER P-256 signature is at most 96 characters; more is not one of ours."""
MAX_PAYLOAD_BYTES = 4 << 20
"""Bound on an envelope's base64 payload (the policy, the in-toto statement of a model bundle)."""

_KEYID = re.compile(r"[0-9a-f]{64}")
_B64 = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")


class UnknownKeyError(IntegrityError):
    """Signed by a key that is not among the trusted ones (add the key, or it is a forgery)."""


class BadSignatureError(IntegrityError):
    """The signature does not verify with the key it names: the signed bytes were changed."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 Pre-Authentication Encoding: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64decode(text: object, what: str, max_chars: int) -> bytes:
    """Standard or URL-safe base64, padded or not (DSSE: verifiers must accept either);
    anything else is a BadSignatureError, since signed bytes that cannot be decoded are not
    the bytes that were signed."""
    if not isinstance(text, str):
        raise BadSignatureError(f"{what}: not a base64 string ({type(text).__name__})", obj=what)
    if len(text) > max_chars:
        raise BadSignatureError(f"{what}: {len(text)} characters, more than the {max_chars} allowed", obj=what)
    if not _B64.fullmatch(text):
        raise BadSignatureError(f"{what}: not base64", obj=what)
    core = text.rstrip("=")
    try:
        return base64.b64decode(core.replace("-", "+").replace("_", "/") + "=" * (-len(core) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadSignatureError(f"{what}: not base64", obj=what) from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def signature(payload_type: str, payload: bytes, key: SigningKey) -> dict[str, str]:
    """A detached signature, for documents that carry it inside themselves (events)."""
    return {"keyid": key.key_id, "sig": _b64(key.sign(pae(payload_type, payload)))}


def envelope(payload_type: str, payload: bytes, key: SigningKey) -> dict[str, Any]:
    return {"payload": _b64(payload), "payloadType": payload_type,
            "signatures": [signature(payload_type, payload, key)]}


def _check_shape(sig: object, what: str) -> tuple[str, str]:
    if not isinstance(sig, dict) or set(sig) != {"keyid", "sig"}:
        shape = sorted(sig) if isinstance(sig, dict) else type(sig).__name__
        raise BadSignatureError(f"{what}: malformed, expected {{keyid, sig}}, got {shape}", obj=what)
    keyid, value = sig["keyid"], sig["sig"]
    if not isinstance(keyid, str) or not _KEYID.fullmatch(keyid):
        raise BadSignatureError(f"{what}: malformed keyid {str(keyid)[:20]!r} (64 lowercase hex expected)", obj=what)
    if not isinstance(value, str) or not value:
        raise BadSignatureError(f"{what}: malformed, sig is not a non-empty string", obj=what)
    return keyid, value


def verify(payload_type: str, payload: bytes, sig: dict, keys: dict[str, VerifyKey],
           what: str = "signature") -> VerifyKey:
    """The trusted key that made `sig` over PAE(payload_type, payload), or UnknownKeyError /
    BadSignatureError naming `what`. `keys` maps key id to key."""
    keyid, value = _check_shape(sig, what)
    key = keys.get(keyid)
    if key is None:
        raise UnknownKeyError(f"{what}: signed by unknown key {keyid[:12]}", obj=what)
    der = b64decode(value, f"{what}: sig", MAX_SIG_CHARS)
    if not key.verify(der, pae(payload_type, payload)):
        raise BadSignatureError(f"{what}: signature by key {keyid[:12]} does not verify", obj=what)
    return key


def open_envelope(env: dict, keys: dict[str, VerifyKey], expected_type: str,
                  what: str = "DSSE envelope") -> tuple[bytes, VerifyKey]:
    """The payload of `env` and the key that signed it: the first signature by a trusted key
    decides (UnknownKeyError when no signature names one, BadSignatureError when it fails)."""
    if not isinstance(env, dict):
        raise BadSignatureError(f"{what}: not a DSSE envelope ({type(env).__name__})", obj=what)
    payload_type, sigs = env.get("payloadType"), env.get("signatures")
    if payload_type != expected_type:
        raise BadSignatureError(f"{what}: payloadType {str(payload_type)[:80]!r}, expected {expected_type!r}",
                                obj=what)
    if not isinstance(sigs, list) or not sigs:
        raise BadSignatureError(f"{what}: no signatures", obj=what)
    payload = b64decode(env.get("payload"), f"{what}: payload", MAX_PAYLOAD_BYTES)
    for i, sig in enumerate(sigs):
        keyid, _ = _check_shape(sig, f"{what}: signature {i}")
        if keyid in keys:
            return payload, verify(expected_type, payload, sig, keys, f"{what}: signature {i}")
    known = ", ".join(s["keyid"][:12] for s in sigs)
    raise UnknownKeyError(f"{what}: signed only by unknown keys ({known})", obj=what)

"""Canonical JSON and the digests made of it (docs/DESIGN.md, "Package digest").

Kept free of heavy imports: resolve computes a package digest from the manifest it reads
before anything else is loaded.
"""

from __future__ import annotations

import hashlib
import json


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes every digest and signature covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_digest_of(content: dict) -> str:
    """The package digest: `sha256:` + sha256 of the canonical JSON of the manifest's `content`
    (as `model_dump(mode="json")` gives it, or as `fastread` reads it: the same dict)."""
    return "sha256:" + sha256_hex(canonical_json(content))

"""Manifest canonical form, package digest and hashing in one pass."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import xxhash

from omr_workflows.errors import IntegrityError, InvalidInputError
from omr_workflows.hashing import copy_and_hash, hash_bytes
from omr_workflows.manifest import Content, FileEntry, Manifest, parse_manifest, parse_sha256sums, sha256sums_text


def _entry(path: str, data: bytes, chunk: int = 16) -> FileEntry:
    h = hash_bytes(data, chunk)
    return FileEntry(path=path, size=h.size, sha256=h.sha256, xxh3=h.xxh3, chunks=h.chunks)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 48, 100, 3 * 1024 * 1024 + 5])
def test_copy_and_hash_matches_reference(size):
    data = bytes((i * 7) % 251 for i in range(size))
    out = io.BytesIO()
    h = copy_and_hash(io.BytesIO(data), out.write, chunk_size=1 << 20, buffer_size=1 << 20)
    assert out.getvalue() == data
    assert h.sha256 == hashlib.sha256(data).hexdigest()
    assert h.xxh3 == xxhash.xxh3_128(data).hexdigest()
    if size > 1 << 20:
        assert h.chunks == [xxhash.xxh3_128(data[i:i + (1 << 20)]).hexdigest() for i in range(0, size, 1 << 20)]
    else:
        assert h.chunks == []


def test_digest_is_canonical_and_content_only():
    files = [_entry("b.bin", b"bbb"), _entry("a.txt", b"a")]
    m1 = Manifest(task="t", model="m", version="1", created_at="x", content=Content(files=files, chunk_size=16))
    m2 = Manifest(task="t2", model="m2", version="2", created_at="y", data_dir=".omr-data/omr1-0000000001-0123456789ab",
                  content=Content(files=files, chunk_size=16), sidecars=[_entry("model_meta.json", b"{}")])
    assert m1.digest == m2.digest  # names, time, sidecars and location are not content
    canon = json.dumps(m1.content.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
    assert m1.digest == "sha256:" + hashlib.sha256(canon).hexdigest()
    m3 = Manifest(task="t", model="m", version="1", created_at="x",
                  content=Content(files=[_entry("a.txt", b"A"), files[0]], chunk_size=16))
    assert m3.digest != m1.digest
    assert parse_manifest(m1.to_bytes()).digest == m1.digest


def test_unsafe_manifest_paths_refused():
    bad = Manifest(task="t", model="m", version="1", created_at="x",
                   content=Content(files=[_entry("ok", b"1")])).model_dump(by_alias=True)
    for path in ("../x", "/etc/passwd", "a/../../b", "a\\b"):
        bad["content"]["files"][0]["path"] = path
        with pytest.raises(InvalidInputError) as e:
            parse_manifest(json.dumps(bad).encode())
        assert "unsafe" in str(e.value)


def test_damaged_manifest_is_integrity_error():
    with pytest.raises(IntegrityError) as e:
        parse_manifest(b'{"schema": "omr-manifest/1", "task": ')
    assert "omr_manifest.json" in str(e.value)


def test_sha256sums_round_trip_and_unsafe():
    entries = [_entry("x/y.bin", b"1"), _entry("a", b"2")]
    text = sha256sums_text(entries)
    assert text.splitlines()[0].endswith("  a")
    assert parse_sha256sums(text) == {e.path: e.sha256 for e in entries}
    for path in ("../x", "/etc/passwd"):
        with pytest.raises(InvalidInputError) as e:
            parse_sha256sums(f"{'0' * 64}  {path}\n")
        assert path in str(e.value)

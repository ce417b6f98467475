"""Whole-version verification used by `resolve --verify` (one process, one version).

`fast`: size + xxh3-128 (whole file, or per chunk for large files): catches corruption,
truncation and bit rot, not a deliberate attacker. `strict`: sha256 of every file, and the
manifest against the package digest recorded in the audit log: catches tampering.
Both modes report every problem, not the first, and an unexpected extra file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import xxhash

from ..constants import IO_BUFFER, MANIFEST_NAME, REMOTE_DATA_DIR
from ..errors import IntegrityError, NotFoundError

MODES = ("fast", "strict")


@dataclass(frozen=True)
class Problem:
    path: str
    kind: str  # missing | size | hash | extra | manifest | unlisted
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


def check_file(storage, key: str, entry, mode: str, chunk_size: int) -> Problem | None:
    """Check one file against its manifest entry, reading it once."""
    try:
        f = storage.open_read(key)
    except NotFoundError:
        return Problem(entry.path, "missing", "missing")
    with f:
        sha = hashlib.sha256() if mode == "strict" else None
        whole = xxhash.xxh3_128() if mode == "fast" else None
        chunk = xxhash.xxh3_128()
        fill, chunks, size = 0, [], 0
        buf = bytearray(min(IO_BUFFER, max(chunk_size, 1)))
        while True:
            n = f.readinto(buf) if hasattr(f, "readinto") else None
            if n is None:
                data = f.read(len(buf))
                n = len(data)
                buf[:n] = data
            if not n:
                break
            view = memoryview(buf)[:n]
            size += n
            if sha is not None:
                sha.update(view)
            elif entry.chunks:
                while len(view):
                    take = min(len(view), chunk_size - fill)
                    chunk.update(view[:take])
                    fill += take
                    view = view[take:]
                    if fill == chunk_size:
                        chunks.append(chunk.hexdigest())
                        chunk, fill = xxhash.xxh3_128(), 0
            else:
                whole.update(view)
    if size != entry.size:
        return Problem(entry.path, "size", f"size {size} != recorded {entry.size} (truncated or extended)")
    if sha is not None:
        if sha.hexdigest() != entry.sha256:
            return Problem(entry.path, "hash", "sha256 mismatch")
    elif entry.chunks:
        if fill:
            chunks.append(chunk.hexdigest())
        bad = [i for i, (a, b) in enumerate(zip(chunks, entry.chunks)) if a != b]
        if bad or len(chunks) != len(entry.chunks):
            return Problem(entry.path, "hash", f"xxh3-128 mismatch in chunk(s) {bad}")
    elif whole.hexdigest() != entry.xxh3:
        return Problem(entry.path, "hash", "xxh3-128 mismatch")
    return None


def check_version(storage, version_key: str, manifest, mode: str, expected_digest: str | None,
                  expected_meta_sha256: str | None = None) -> list[Problem]:
    """Every problem of one published version; [] when it verifies."""
    problems: list[Problem] = []
    if expected_digest and manifest.digest != expected_digest:
        problems.append(Problem(MANIFEST_NAME, "manifest",
                                f"package digest {manifest.digest} != recorded {expected_digest} (manifest edited)"))
    base = f"{version_key}/{manifest.data_dir}" if manifest.data_dir else version_key
    chunk_size = manifest.content.chunk_size
    for entry in manifest.all_files():
        p = check_file(storage, f"{base}/{entry.path}", entry, mode, chunk_size)
        if p:
            problems.append(p)
    if mode == "strict" and expected_meta_sha256:
        meta = manifest.entry("model_meta.json")
        if meta is not None and meta.sha256 != expected_meta_sha256:
            problems.append(Problem("model_meta.json", "manifest",
                                    "sha256 differs from the one recorded at registration"))
    listed = {e.path for e in manifest.all_files()} | {MANIFEST_NAME}
    for rel, _size in storage.walk(base):
        if rel.startswith(REMOTE_DATA_DIR + "/") or rel in listed:
            continue
        problems.append(Problem(rel, "extra", "unexpected file not in the manifest"))
    return problems


def raise_problems(what: str, problems: list[Problem]) -> None:
    if problems:
        names = "; ".join(str(p) for p in problems)
        raise IntegrityError(f"{what}: verification failed: {names}", obj=what, problems=problems)

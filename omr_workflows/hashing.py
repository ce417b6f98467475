"""Content hashing: pure functions over byte streams, kept apart from storage.

One pass over a file feeds sha256 (strict mode, `sha256sum -c` compatible), xxh3-128
(fast mode) and, for files larger than one chunk, an xxh3-128 per fixed-size chunk so that
fast verification of one large file can be split across threads and nodes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, Callable

import xxhash

from .constants import CHUNK_SIZE, IO_BUFFER


@dataclass
class FileHashes:
    size: int
    sha256: str
    xxh3: str
    chunks: list[str] = field(default_factory=list)  # empty when size <= chunk_size


class FileHasher:
    """Incremental sha256 + xxh3-128 + per-chunk xxh3-128 of one file.

    sha256 is ~6x slower than xxh3 here and hashlib releases the GIL on large buffers, so
    `update` can run it on a helper thread while the caller hashes xxh3 and writes.
    """

    def __init__(self, chunk_size: int = CHUNK_SIZE):
        self.chunk_size = chunk_size
        self._sha = hashlib.sha256()
        self._xxh = xxhash.xxh3_128()
        self._chunk = xxhash.xxh3_128()
        self._chunk_fill = 0
        self._chunks: list[str] = []
        self.size = 0

    def update_sha(self, buf) -> None:
        self._sha.update(buf)

    def update_fast(self, buf) -> None:
        """xxh3 whole-file and per-chunk hashes of `buf` (a bytes-like object)."""
        self._xxh.update(buf)
        view = memoryview(buf)
        while len(view):
            take = min(len(view), self.chunk_size - self._chunk_fill)
            self._chunk.update(view[:take])
            self._chunk_fill += take
            view = view[take:]
            if self._chunk_fill == self.chunk_size:
                self._chunks.append(self._chunk.hexdigest())
                self._chunk = xxhash.xxh3_128()
                self._chunk_fill = 0
        self.size += len(buf)

    def update(self, buf) -> None:
        self.update_sha(buf)
        self.update_fast(buf)

    def result(self) -> FileHashes:
        chunks = list(self._chunks)
        if self._chunk_fill:
            chunks.append(self._chunk.hexdigest())
        if self.size <= self.chunk_size:
            chunks = []
        return FileHashes(self.size, self._sha.hexdigest(), self._xxh.hexdigest(), chunks)


_sha_pool: ThreadPoolExecutor | None = None
_local = threading.local()


def _buffers(size: int) -> list[bytearray]:
    """Two reusable buffers per thread: allocating (zeroing) 2 x 4 MiB per small file cost
    more than hashing it."""
    bufs = getattr(_local, "bufs", None)
    if bufs is None or len(bufs[0]) != size:
        bufs = _local.bufs = [bytearray(size), bytearray(size)]
    return bufs


def _pool() -> ThreadPoolExecutor:
    """One sha256 worker per core (at most 4): a single copy keeps one busy, and files copied by
    several threads at once (import, mirror --jobs) must not queue behind one worker."""
    global _sha_pool
    if _sha_pool is None:
        workers = max(1, min(4, os.cpu_count() or 1))
        _sha_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omr-sha256")
    return _sha_pool


def copy_and_hash(
    src: BinaryIO,
    write: Callable[[memoryview], object] | None,
    chunk_size: int = CHUNK_SIZE,
    buffer_size: int = IO_BUFFER,
) -> FileHashes:
    """Read `src` once, writing every byte through `write` while hashing it.

    sha256 of buffer i runs on a helper thread while this thread computes xxh3 and writes
    the same buffer; two buffers alternate so the next read never overwrites bytes that
    are still being hashed.
    """
    hasher = FileHasher(chunk_size)
    bufs = _buffers(buffer_size)
    pending = None
    i = 0
    while True:
        buf = bufs[i % 2]
        n = src.readinto(buf)
        if not n:
            break
        view = memoryview(buf)[:n]
        if pending is not None:
            pending.result()
        pending = _pool().submit(hasher.update_sha, view) if n >= 1 << 20 else None
        if pending is None:
            hasher.update_sha(view)
        hasher.update_fast(view)
        if write is not None:
            write(view)
        i += 1
    if pending is not None:
        pending.result()
    return hasher.result()


def hash_stream(src: BinaryIO, chunk_size: int = CHUNK_SIZE) -> FileHashes:
    return copy_and_hash(src, None, chunk_size)


def hash_bytes(data: bytes, chunk_size: int = CHUNK_SIZE) -> FileHashes:
    hasher = FileHasher(chunk_size)
    hasher.update(data)
    return hasher.result()


from .canonical import sha256_hex  # noqa: E402  (its owner; re-exported for callers of this module)

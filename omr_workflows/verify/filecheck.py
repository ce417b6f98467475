"""The per-file check: one file's bytes against what its manifest entry records.

This is the one meaning of the verify modes for a single file, used wherever a whole file
is read: materialising a remote version into the cache (`omr_workflows.cache`), checking a
cached copy before serving it, and the Snakemake storage plugin's retrieval.

Modes (a superset chain: each checks everything the previous one does):

* `none`: size only. The size is always checked, in every mode.
* `fast`: size + xxh3-128 of the whole file and of every chunk: catches corruption,
  truncation and bit rot, not a deliberate attacker (who can recompute xxh3).
* `strict`: size + sha256, which is what `omrw verify --mode strict` checks per file;
  xxh3 is checked too, because one pass computes both at the cost of sha256 alone and a
  disagreement between them means the manifest itself is inconsistent.

Entries of versions written by omnibioai-model-registry carry only a sha256 (and no size
or xxh3): `fast` and `strict` both check that sha256, `none` checks nothing but what is
known (the size, when the caller knows it).

The check reads the stream once and feeds every byte to an optional `sink`, so copying and
checking are one pass. It never reads more than one byte past the recorded size, so a
hostile, ever-growing file cannot fill the disk of whoever copies it. Problems are returned,
not raised (`check_or_raise` raises them); only I/O errors of the stream propagate.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Literal, Union

from ..constants import CHUNK_SIZE, IO_BUFFER
from ..errors import IntegrityError, InvalidInputError
from ..hashing import FileHasher, FileHashes, copy_and_hash

Mode = Literal["none", "fast", "strict"]
MODES = ("none", "fast", "strict")

Reader = Union[Callable[[int], bytes], BinaryIO]
Sink = Callable[[Any], Any]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file: what `verify`, `resolve --verify` and the cache report."""

    path: str
    kind: str  # missing | size | hash | extra | manifest | error
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


@dataclass(frozen=True)
class Expected:
    """What is recorded about one file: a manifest `FileEntry`, or a legacy sha256sums line."""

    path: str
    size: int | None = None
    sha256: str | None = None
    xxh3: str | None = None
    chunks: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, entry) -> "Expected":
        if isinstance(entry, Expected):
            return entry
        return cls(path=entry.path, size=entry.size, sha256=entry.sha256, xxh3=entry.xxh3,
                   chunks=tuple(entry.chunks))

    @classmethod
    def legacy(cls, path: str, sha256: str | None, size: int | None = None) -> "Expected":
        return cls(path=path, size=size, sha256=sha256)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidInputError(f"invalid verify mode {mode!r}: use none, fast or strict")
    return mode


# ---------------------------------------------------------------------- reading
class _Capped:
    """`readinto` over any reader, stopping one byte past `limit` (None: no limit)."""

    def __init__(self, src: Reader, limit: int | None):
        self._readinto = getattr(src, "readinto", None)
        self._read = getattr(src, "read", None) or src
        if not callable(self._read):
            raise TypeError(f"check_stream needs a binary file or a read(n) callable, not {type(src).__name__}")
        self.left = None if limit is None else limit + 1

    def readinto(self, buf) -> int:
        view = memoryview(buf)
        if self.left is not None:
            if self.left <= 0:
                return 0
            view = view[: min(len(view), self.left)]
        if self._readinto is not None:
            n = self._readinto(view) or 0
        else:
            data = self._read(len(view))
            n = len(data) if data else 0
            view[:n] = data[:n] if n else b""
        if self.left is not None:
            self.left -= n
        return n


def _hash(src: Reader, want: Expected, mode: str, chunk_size: int, sink: Sink | None) -> FileHashes:
    capped = _Capped(src, want.size)
    if mode == "strict" or (mode == "fast" and want.xxh3 is None):
        return copy_and_hash(capped, sink, chunk_size)
    # fast and none need no sha256, the expensive hash: run only the xxh3 half.
    hasher = FileHasher(chunk_size)
    buf = bytearray(IO_BUFFER)
    while True:
        n = capped.readinto(buf)
        if not n:
            break
        view = memoryview(buf)[:n]
        if mode == "fast":
            hasher.update_fast(view)
        else:
            hasher.size += n
        if sink is not None:
            sink(view)
    return hasher.result()


def _size_problem(path: str, got: int, want: int) -> Problem:
    if got > want:
        return Problem(path, "size", f"size > recorded {want} (extended)")
    return Problem(path, "size", f"size {got} != recorded {want} (truncated)")


def compare(want: Expected, got: FileHashes, mode: str) -> list[Problem]:
    """Problems of hashes `got` (from hashing.py) against `want` under `mode`; [] when intact."""
    check_mode(mode)
    if want.size is not None and got.size != want.size:
        return [_size_problem(want.path, got.size, want.size)]
    if mode == "none":
        return []
    problems = []
    if (mode == "strict" or want.xxh3 is None) and want.sha256 and got.sha256 != want.sha256:
        problems.append(Problem(want.path, "hash", "sha256 mismatch (corrupted or tampered)"))
    if want.xxh3 is not None and (got.xxh3 != want.xxh3 or list(got.chunks) != list(want.chunks)):
        bad = [str(i) for i, (a, b) in enumerate(zip(got.chunks, want.chunks)) if a != b]
        where = f" in chunk {', '.join(bad)}" if bad else ""
        problems.append(Problem(want.path, "hash", f"xxh3-128 mismatch{where} (corrupted)"))
    return problems


# ---------------------------------------------------------------------- public checks
def check_stream(src: Reader, entry, mode: str = "strict", chunk_size: int = CHUNK_SIZE,
                 sink: Sink | None = None) -> list[Problem]:
    """Read `src` once (a binary file or a `read(n)` callable), feed `sink`, check it against `entry`.

    `entry` is a manifest `FileEntry` or an `Expected`; `chunk_size` is the manifest's
    `content.chunk_size`. Returns every problem ([] when intact). Stream errors propagate.
    """
    check_mode(mode)
    want = Expected.of(entry)
    return compare(want, _hash(src, want, mode, chunk_size, sink), mode)


def check_or_raise(src: Reader, entry, mode: str = "strict", chunk_size: int = CHUNK_SIZE,
                   sink: Sink | None = None, what: str = "", hint: str = "") -> None:
    """`check_stream`, raising IntegrityError naming the file (and `what`, e.g. the version URI)."""
    problems = check_stream(src, entry, mode, chunk_size, sink)
    if problems:
        raise_problems(what, problems, hint)


def raise_problems(what: str, problems: list[Problem], hint: str = "") -> None:
    if problems:
        text = "; ".join(str(p) for p in problems)
        prefix = f"{what}: " if what else ""
        raise IntegrityError(f"{prefix}{text}{'; ' + hint if hint else ''}",
                             obj=problems[0].path, problems=list(problems))


def open_regular(path: str | os.PathLike) -> tuple[int, os.stat_result]:
    """A read-only fd of a regular file, never following a final symlink, never blocking on a FIFO.

    Raises FileNotFoundError (missing) or IsADirectoryError/OSError (not a regular file).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(f"{path}: not a regular file")
    return fd, st


def check_file(path: str | os.PathLike, entry, mode: str = "strict", chunk_size: int = CHUNK_SIZE) -> list[Problem]:
    """Check one local file; `none` compares the size from fstat without reading a byte."""
    check_mode(mode)
    want = Expected.of(entry)
    try:
        fd, st = open_regular(path)
    except FileNotFoundError:
        return [Problem(want.path, "missing", "missing (deleted or moved)")]
    except OSError:
        return [Problem(want.path, "missing", "not a regular file")]
    with os.fdopen(fd, "rb", buffering=0) as f:
        if want.size is not None and st.st_size != want.size:
            return [_size_problem(want.path, st.st_size, want.size)]
        if mode == "none":
            return []
        return check_stream(f, want, mode, chunk_size)


__all__ = ["MODES", "Expected", "Problem", "check_file", "check_mode", "check_or_raise", "check_stream",
           "compare", "open_regular", "raise_problems"]

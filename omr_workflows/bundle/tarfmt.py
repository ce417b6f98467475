"""Writing and reading the bundle's tar (the format: index.py), with nothing trusted on read.

The writer emits plain POSIX/PAX headers itself and streams each file through the one
copy-and-hash loop, so export reads every byte once and refuses a source byte that does not
match its manifest. The reader never extracts: it walks the headers once, accepts only
regular members whose names, order and sizes are exactly those the index lists (no link,
device, FIFO, sparse or extra member, no name the index does not give), and reads each member
in place with `os.pread` (threads can read several at once). `view` lays the small members
out as a registry folder, so the same code that checks a live registry (source.gather, the
governance checks) checks the bundle.
"""

from __future__ import annotations

import os
import tarfile
from typing import BinaryIO

from ..errors import IntegrityError, InvalidInputError
from ..hashing import copy_and_hash, sha256_hex
from .index import INDEX_NAME, MAX_INDEX_BYTES, MAX_SMALL_BYTES, BundleIndex, Member

BLOCK = 512
RECORD = 20 * BLOCK


# ---------------------------------------------------------------------- writing
class TarWriter:
    """A tar stream of regular members (write-only; `close` ends the archive)."""

    def __init__(self, out: BinaryIO, mtime: int):
        self.out = out
        self.mtime = mtime
        self.pos = 0

    def _write(self, data) -> None:
        self.out.write(data)
        self.pos += len(data)

    def _header(self, name: str, size: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.type = size, self.mtime, 0o644, tarfile.REGTYPE
        self._write(info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict"))

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self._write(b"\0" * (BLOCK - size % BLOCK))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, len(data))
        self._write(data)
        self._pad(len(data))

    def add_stream(self, member: Member, src: BinaryIO, what: str, progress=None) -> None:
        """Copy `src` as `member`, refusing bytes that are not the size and sha256 it must have."""
        self._header(member.name, member.size)
        h = copy_and_hash(src, self._write if progress is None else progress.wrap(self._write))
        if h.size != member.size or h.sha256 != member.sha256:
            raise IntegrityError(f"{what}: its bytes do not match its manifest ({h.size} bytes, sha256 "
                                 f"{h.sha256[:12]}…; expected {member.size}, {member.sha256[:12]}…): run `omrw verify "
                                 f"--mode strict`", obj=what)
        self._pad(member.size)

    def close(self) -> None:
        self._write(b"\0" * (2 * BLOCK))
        if self.pos % RECORD:
            self._write(b"\0" * (RECORD - self.pos % RECORD))


# ---------------------------------------------------------------------- reading
class MemberReader:
    """A file object over one member's bytes, read with pread; a short read is a truncated bundle."""

    def __init__(self, fd: int, offset: int, size: int, name: str):
        self.fd, self.offset, self.size, self.name, self.pos = fd, offset, size, name, 0
        self.member_name = name  # intake names the member in what it refuses

    def readinto(self, buf) -> int:
        want = min(len(buf), self.size - self.pos)
        if want <= 0:
            return 0
        view = memoryview(buf)[:want]
        n = os.preadv(self.fd, [view], self.offset + self.pos)
        if n <= 0:
            raise IntegrityError(f"bundle member {self.name}: ends early (truncated bundle)", obj=self.name)
        self.pos += n
        return n

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n is None or n < 0 else min(n, self.size - self.pos)
        buf = bytearray(n)
        got = 0
        while got < n:
            k = self.readinto(memoryview(buf)[got:])
            if not k:
                break
            got += k
        return bytes(buf[:got])

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def close(self) -> None:
        return None


_KINDS = {tarfile.SYMTYPE: "a symlink", tarfile.LNKTYPE: "a hard link", tarfile.CHRTYPE: "a character device",
          tarfile.BLKTYPE: "a block device", tarfile.FIFOTYPE: "a FIFO", tarfile.DIRTYPE: "a directory",
          tarfile.CONTTYPE: "a contiguous file", tarfile.GNUTYPE_SPARSE: "a sparse file"}


class BundleReader:
    """An opened bundle: its index (checked), and its members by name (order and sizes checked)."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        try:
            self._file = open(self.path, "rb")
        except FileNotFoundError:
            raise InvalidInputError(f"bundle {self.path}: no such file") from None
        except OSError as e:
            raise InvalidInputError(f"bundle {self.path}: cannot open ({e.strerror})") from None
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    def _open(self) -> None:
        import stat

        if not stat.S_ISREG(os.fstat(self._file.fileno()).st_mode):
            raise InvalidInputError(f"bundle {self.path}: not a regular file")
        try:
            tf = tarfile.open(fileobj=self._file, mode="r:")
        except tarfile.TarError as e:
            raise InvalidInputError(f"bundle {self.path}: not an uncompressed tar ({e})") from None
        self.fd = self._file.fileno()
        first = self._next(tf, "the first member")
        if first is None or first.name != INDEX_NAME:
            raise InvalidInputError(f"bundle {self.path}: its first member is not {INDEX_NAME} (not an omrw bundle)")
        self._regular(first)
        if first.size > MAX_INDEX_BYTES:
            raise InvalidInputError(f"bundle {self.path}: {INDEX_NAME} is larger than {MAX_INDEX_BYTES} bytes")
        self.index_bytes = MemberReader(self.fd, first.offset_data, first.size, INDEX_NAME).read()
        if len(self.index_bytes) != first.size:
            raise IntegrityError(f"bundle {self.path}: {INDEX_NAME} is truncated", obj=INDEX_NAME)
        self.digest = "sha256:" + sha256_hex(self.index_bytes)
        self.index = parse_index(self.index_bytes, f"bundle {self.path}")
        self.members: dict[str, tuple[Member, int]] = {}
        for want in self.index.members:
            got = self._next(tf, f"member {want.name}")
            if got is None:
                raise IntegrityError(f"bundle {self.path}: member {want.name} is missing (truncated bundle?)",
                                     obj=want.name)
            if got.name != want.name:
                raise IntegrityError(f"bundle {self.path}: member {got.name!r} is not the one its index lists "
                                     f"there ({want.name})", obj=got.name)
            self._regular(got)
            if got.size != want.size:
                raise IntegrityError(f"bundle {self.path}: member {want.name} has {got.size} bytes, its index says "
                                     f"{want.size}", obj=want.name)
            self.members[want.name] = (want, got.offset_data)
        extra = self._next(tf, "the end of the bundle")
        if extra is not None:
            raise IntegrityError(f"bundle {self.path}: member {extra.name!r} is not listed in its index", obj=extra.name)
        end = os.fstat(self.fd).st_size
        if self.index.members:
            last, offset = self.members[self.index.members[-1].name]
            if offset + last.size > end:
                raise IntegrityError(f"bundle {self.path}: member {last.name} ends early (truncated bundle)",
                                     obj=last.name)

    def _next(self, tf: tarfile.TarFile, what: str):
        try:
            return tf.next()
        except tarfile.TarError as e:
            raise IntegrityError(f"bundle {self.path}: damaged or truncated at {what} ({e})", obj=what) from None

    def _regular(self, info: tarfile.TarInfo) -> None:
        if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or info.issparse():
            kind = _KINDS.get(info.type, f"of tar type {info.type!r}")
            raise IntegrityError(f"bundle {self.path}: member {info.name!r} is {kind}, not a regular file",
                                 obj=info.name)

    def has(self, name: str) -> bool:
        return name in self.members

    def member(self, name: str) -> Member:
        try:
            return self.members[name][0]
        except KeyError:
            raise IntegrityError(f"bundle {self.path}: member {name} is missing", obj=name) from None

    def open(self, name: str) -> MemberReader:
        m = self.member(name)
        return MemberReader(self.fd, self.members[name][1], m.size, name)

    def small(self, name: str) -> bytes:
        """A member read whole (events, manifests, signatures, policy, lock), checked against the index."""
        m = self.member(name)
        if m.size > MAX_SMALL_BYTES:
            raise IntegrityError(f"bundle {self.path}: member {name} is too large for what it should be", obj=name)
        data = self.open(name).read()
        if len(data) != m.size or sha256_hex(data) != m.sha256:
            raise IntegrityError(f"bundle {self.path}: member {name} does not match the sha256 its index records "
                                 f"(damaged or edited)", obj=name)
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "BundleReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_index(data: bytes, where: str) -> BundleIndex:
    from ..bounds import load_json_bounded

    obj = load_json_bounded(data, f"{where}: {INDEX_NAME}", max_bytes=MAX_INDEX_BYTES)
    try:
        return BundleIndex.model_validate(obj)
    except ValueError as e:
        first = str(e).splitlines()
        detail = "; ".join(line.strip() for line in first[1:3]) if len(first) > 1 else first[0]
        raise InvalidInputError(f"{where}: {INDEX_NAME} is not a valid bundle index: {detail}") from None

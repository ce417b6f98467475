"""fd-relative path operations under a directory fd: the one way local storage reaches a key.

Every key is walked one component at a time with O_NOFOLLOW from the root's fd, so a symlink
planted anywhere below the root is refused instead of followed (docs/DESIGN.md, "Untrusted
input"). Used by `local.py` (objects) and `local_stage.py` (staging).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from ..errors import IntegrityError, InvalidInputError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC

# rmtree(dir_fd=...) must not be steered by a symlink planted inside the tree it removes.
assert shutil.rmtree.avoids_symlink_attacks, "omrw needs the fd-based shutil.rmtree (Linux, macOS)"


def _symlink_error(where: str, key: str) -> IntegrityError:
    via = "" if where == key else f" (on the way to {key})"
    return IntegrityError(f"{where} is a symlink{via}; omrw never follows links inside the registry", obj=key)


def _not_regular(key: str) -> IntegrityError:
    return IntegrityError(f"{key} is not a regular file (symlink or special file); omrw reads only regular files",
                          obj=key)


def _parts(key: str) -> list[str]:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts):
        raise InvalidInputError(f"invalid storage key {key!r}", obj=key)
    return parts


def _lstat_at(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _open_dir_at(part: str, dir_fd: int, where: str, key: str) -> int:
    """Open the real folder `part` under `dir_fd`; a symlink is refused, a missing one raises FileNotFoundError."""
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            st = _lstat_at(part, dir_fd)
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise _symlink_error(where, key) from None
            if st is None:
                raise FileNotFoundError(errno.ENOENT, "not found", where) from None
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", where) from None
        raise


def _descend(fd: int, parts: list[str], key: str, create: bool, prefix: str = "") -> int:
    """Walk the folders `parts` down from `fd` (which is consumed), creating missing ones if
    `create`. Returns an fd of the last one. Raises IntegrityError (a symlink on the way),
    FileNotFoundError / NotADirectoryError (missing, not creating / a file in the way)."""
    where = prefix
    try:
        for part in parts:
            where = f"{where}/{part}" if where else part
            try:
                nfd = _open_dir_at(part, fd, where, key)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = _open_dir_at(part, fd, where, key)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, data) -> int:
    view = memoryview(data).cast("B")
    total = len(view)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    return total


def _fsync_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass


class _SyncedFile:
    """A write handle for a staged file, created relative to its folder's fd; it records
    the bytes written so that `LocalStage.publish` can prove the file is still whole."""

    def __init__(self, fd: int, rel: str, done):
        self._fd: int | None = fd
        self._rel, self._done = rel, done
        self.size = 0

    def write(self, data) -> int:
        n = _write_all(self._fd, data)
        self.size += n
        return n

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._done(self._rel, self.size)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

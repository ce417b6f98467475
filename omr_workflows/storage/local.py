"""Local and NFS paths through the standard library only (no fsspec import: start-up time).

Atomicity comes from POSIX: a version is staged in `<model>/.omr-tmp/<version>.<token>`
and published with one `rename` of the directory (which fails if the target exists and is
not empty); single objects are written to a temp file, fsynced, then either `link`ed
(create-if-absent: fails with EEXIST, atomic on NFS too) or `os.replace`d (overwrite).

Nothing below the root is ever followed (docs/DESIGN.md, "Threat model"): the root folder is
resolved once, then every key is reached one component at a time from a directory fd with
O_NOFOLLOW, and the final operation is done relative to its parent's fd. A path string is
never handed to the kernel for a key, so a symlink planted anywhere in the registry (a
component, or the final name) cannot redirect a write, a delete or a read; it is refused
with IntegrityError naming the key. Reads open with O_NONBLOCK and accept only regular
files, so a planted FIFO fails at once instead of hanging the reader.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

from ..errors import IntegrityError, NotFoundError, StorageError
from ..layout import new_token
from .base import FileInfo, Kind, Storage
from .fdops import (_CLOEXEC, _CREATE_FLAGS, _DIR_FLAGS, _READ_FLAGS, _descend, _fsync_fd, _lstat_at, _not_regular, _parts,
                    _symlink_error, _write_all)
from .local_stage import LocalStage

class LocalStorage(Storage):
    is_local = True

    def __init__(self, root: str | os.PathLike):
        # The root itself may be a symlink (a site's /shared/registry -> /lustre/...): resolved
        # once here; nothing below it is ever followed.
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def _p(self, key: str) -> Path:
        return self.root / key if key else self.root

    def local_path(self, key: str) -> Path:
        return self._p(key)

    # ------------------------------------------------------------------ fd plumbing
    def _root_fd(self, create: bool = False) -> int:
        try:
            return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except FileNotFoundError:
            if not create:
                raise
        except NotADirectoryError:
            raise StorageError(f"registry {self.url} is not a folder", obj=self.url) from None
        try:
            os.makedirs(self.root, exist_ok=True)
            return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except OSError as e:
            raise StorageError(f"cannot create registry {self.url}: {e.strerror}", obj=self.url) from e

    def _parent(self, key: str, create: bool = False) -> tuple[int, str]:
        """(fd of the real folder holding `key`, final name). Raises IntegrityError for a
        symlink on the way, FileNotFoundError / NotADirectoryError when not creating."""
        parts = _parts(key)
        return _descend(self._root_fd(create), parts[:-1], key, create), parts[-1]

    def _lstat(self, key: str) -> os.stat_result | None:
        """lstat of `key` reached without following anything; None if it cannot be reached."""
        if not key:
            try:
                return os.stat(self.root)
            except OSError:
                return None
        try:
            pfd, name = self._parent(key)
        except (FileNotFoundError, NotADirectoryError, IntegrityError):
            return None
        try:
            return _lstat_at(name, pfd)
        finally:
            os.close(pfd)

    def _open_dir(self, key: str) -> int | None:
        """An fd of the real folder `key`; None if missing, a file or a symlink (never listed through)."""
        try:
            if not key:
                return self._root_fd()
            return _descend(self._root_fd(), _parts(key), key, create=False)
        except (FileNotFoundError, NotADirectoryError, IntegrityError):
            return None

    def _open_file(self, key: str) -> int:
        try:
            pfd, name = self._parent(key)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=pfd)
        except FileNotFoundError:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key) from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _symlink_error(key, key) from None
            if e.errno in (errno.ENXIO, errno.EOPNOTSUPP):  # a socket
                raise _not_regular(key) from None
            raise StorageError(f"cannot read {key}: {e.strerror}", obj=key) from e
        finally:
            os.close(pfd)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise NotFoundError(f"{key} is a folder, not a file", obj=key)
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(key)
            # O_NONBLOCK was only for the open (a FIFO must not block it); reads block normally.
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _write_tmp(self, key: str, data: bytes) -> tuple[int, str, str]:
        """(parent fd, final name, temp name `.<name>.<token>.tmp`) with `data` durable in the temp file."""
        try:
            pfd, name = self._parent(key, create=True)
        except NotADirectoryError as e:
            raise StorageError(f"cannot write {key}: {e.filename} is not a folder", obj=key) from None
        except StorageError:
            raise
        except OSError as e:
            raise StorageError(f"cannot write {key}: {e.strerror}", obj=key) from e
        tmp = f".{name}.{new_token()}.tmp"
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o666, dir_fd=pfd)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            os.close(pfd)
            raise StorageError(f"cannot write {key}: {e.strerror}", obj=key) from e
        return pfd, name, tmp

    # ------------------------------------------------------------------ reads
    def read_bytes(self, key: str) -> bytes:
        fd = self._open_file(key)
        try:
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read()
        except OSError as e:
            raise StorageError(f"cannot read {key}: {e.strerror}", obj=key) from e
        finally:
            os.close(fd)

    def open_read(self, key: str) -> BinaryIO:
        return os.fdopen(self._open_file(key), "rb")

    def exists(self, key: str) -> bool:
        return self._lstat(key) is not None

    def isdir(self, key: str) -> bool:
        st = self._lstat(key)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def kind(self, key: str) -> Kind | None:
        st = self._lstat(key)
        if st is None:
            return None
        mode = st.st_mode
        if stat.S_ISREG(mode):
            return "file"
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISLNK(mode):
            return "symlink"
        return "other"

    def _stat_or_raise(self, key: str) -> os.stat_result:
        st = self._lstat(key)
        if st is None:
            raise NotFoundError(f"{key} not found in registry {self.url}", obj=key)
        return st

    def size(self, key: str) -> int:
        return self._stat_or_raise(key).st_size

    def mtime(self, key: str) -> float:
        return self._stat_or_raise(key).st_mtime

    def listdir(self, key: str) -> list[str]:
        fd = self._open_dir(key)
        if fd is None:
            return []
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)

    def walk(self, key: str) -> Iterator[FileInfo]:
        fd = self._open_dir(key)
        if fd is None:
            return iter(())
        out: list[FileInfo] = []

        def scan(dfd: int, prefix: str) -> None:
            with os.scandir(dfd) as it:
                entries = list(it)
            for e in entries:
                rel = f"{prefix}{e.name}"
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    try:
                        sub = os.open(e.name, _DIR_FLAGS, dir_fd=dfd)
                    except OSError:
                        # Replaced by a symlink (or removed) since the scan: report, never follow.
                        out.append(FileInfo(rel, 0, False))
                        continue
                    try:
                        scan(sub, rel + "/")
                    finally:
                        os.close(sub)
                elif stat.S_ISREG(st.st_mode):
                    out.append(FileInfo(rel, st.st_size, True))
                elif stat.S_ISLNK(st.st_mode):
                    out.append(FileInfo(rel, st.st_size, False))
                else:
                    out.append(FileInfo(rel, 0, False))

        try:
            scan(fd, "")
        finally:
            os.close(fd)
        return iter(sorted(out))

    # ------------------------------------------------------------------ writes
    def write_if_absent(self, key: str, data: bytes) -> bool:
        pfd, name, tmp = self._write_tmp(key, data)
        try:
            try:
                os.link(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileExistsError:
                st = _lstat_at(name, pfd)
                if st is not None and stat.S_ISLNK(st.st_mode):
                    raise _symlink_error(key, key) from None
                return False
            except OSError as e:
                raise StorageError(f"cannot write {key}: {e.strerror}", obj=key) from e
            _fsync_fd(pfd)
            return True
        finally:
            try:
                os.unlink(tmp, dir_fd=pfd)
            finally:
                os.close(pfd)

    def write_replace(self, key: str, data: bytes) -> None:
        pfd, name, tmp = self._write_tmp(key, data)
        try:
            st = _lstat_at(name, pfd)
            if st is not None and stat.S_ISLNK(st.st_mode):
                os.unlink(tmp, dir_fd=pfd)
                raise _symlink_error(key, key)
            try:
                os.replace(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            except OSError as e:
                os.unlink(tmp, dir_fd=pfd)
                raise StorageError(f"cannot write {key}: {e.strerror}", obj=key) from e
            _fsync_fd(pfd)
        finally:
            os.close(pfd)

    def append_line(self, key: str, line: str) -> None:
        try:
            pfd, name = self._parent(key, create=True)
        except NotADirectoryError as e:
            raise StorageError(f"cannot append to {key}: {e.filename} is not a folder", obj=key) from None
        try:
            # O_NONBLOCK: opening a planted FIFO for writing fails (ENXIO) instead of blocking.
            fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC,
                         0o644, dir_fd=pfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _symlink_error(key, key) from None
            if e.errno in (errno.ENXIO, errno.EOPNOTSUPP):
                raise _not_regular(key) from None
            raise StorageError(f"cannot append to {key}: {e.strerror}", obj=key) from e
        finally:
            os.close(pfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _not_regular(key)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            # One write(2) with O_APPEND: concurrent appenders never interleave short lines.
            os.write(fd, (line.rstrip("\n") + "\n").encode())
        finally:
            os.close(fd)

    def stage(self, model_key: str, version: str) -> LocalStage:
        return LocalStage(self, model_key, version)

    def remove_tree(self, key: str) -> None:
        try:
            pfd, name = self._parent(key)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            st = _lstat_at(name, pfd)
            if st is None:
                return
            if not stat.S_ISDIR(st.st_mode):
                # A file, a special file or a symlink: unlink the entry itself, never its target.
                try:
                    os.unlink(name, dir_fd=pfd)
                except FileNotFoundError:
                    pass
                return
            for attempt in range(3):
                errors: list[OSError] = []

                def onexc(_fn, _path, exc, errors=errors):
                    exc = exc[1] if isinstance(exc, tuple) else exc
                    if not isinstance(exc, FileNotFoundError):
                        errors.append(exc)

                # fd-based (os.scandir on dirfds, O_NOFOLLOW, samestat checks): a symlink
                # inside the tree is unlinked, never descended into.
                if sys.version_info >= (3, 12):
                    shutil.rmtree(name, dir_fd=pfd, onexc=onexc)
                else:
                    shutil.rmtree(name, dir_fd=pfd, onerror=onexc)
                if not errors or _lstat_at(name, pfd) is None:
                    return
                if not any(e.errno == errno.ENOTEMPTY for e in errors) or attempt == 2:
                    e = errors[0]
                    raise StorageError(f"cannot remove {key}: {e.strerror or e}", obj=key) from e
        finally:
            os.close(pfd)

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

from .._faults import crash_point
from ..errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError, StorageError
from ..layout import lease_key, new_token, staging_key
from .base import FileInfo, Kind, Stage, Storage, _Heartbeat, lease_ttl, lost_message

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


class LocalStage(Stage):
    """`<model>/.omr-tmp/<version>.<token>`, reached only through the fd opened when it was made.

    The lease is created first (so gc never finds a folder without one), then the folder;
    every staged file and subfolder is created relative to that fd, never by path, so a
    folder removed by gc cannot be silently recreated: writes into it fail with ENOENT.
    """

    def __init__(self, storage: "LocalStorage", model_key: str, version: str):
        self._storage = storage
        self.version = version
        self.token = new_token()
        self.lease_key = lease_key(model_key, version, self.token)
        self.key = self.area_key = staging_key(model_key, version, self.token)
        self.data_dir = ""
        self.dir = storage.local_path(self.key)
        self._files: dict[str, int] = {}
        self._fd: int | None = None
        self._lease = _Heartbeat(storage, self.lease_key, self.token, version, lease_ttl())
        try:
            pfd, name = storage._parent(self.key, create=True)
            try:
                os.mkdir(name, dir_fd=pfd)
                self._fd = _open_dir_at(name, pfd, self.key, self.key)
            finally:
                os.close(pfd)
        except BaseException:
            self._lease.release()
            raise
        st = os.fstat(self._fd)
        self._id = (st.st_dev, st.st_ino)

    def _gone(self, why: str = "") -> StorageError:
        return StorageError(lost_message(self.version) + (f" ({why})" if why else ""), obj=self.key)

    def _opened(self, rel: str, size: int) -> None:
        self._files[rel] = size

    def open_write(self, rel: str) -> BinaryIO:
        if self._fd is None:
            raise StorageError(f"staging area of {self.version} is closed", obj=self.key)
        if self._lease.lost:
            raise self._gone(self._lease.lost)
        parts = _parts(rel)
        if rel in self._files:
            raise StorageError(f"{rel} was already staged for {self.version}", obj=self.key)
        try:
            pfd = _descend(os.dup(self._fd), parts[:-1], self.key, create=True, prefix=self.key)
        except (FileNotFoundError, NotADirectoryError) as e:
            raise self._gone(f"{e.filename or rel}: {e.strerror}") from None
        try:
            fd = os.open(parts[-1], _CREATE_FLAGS, 0o666, dir_fd=pfd)
        except FileNotFoundError:
            raise self._gone() from None
        except OSError as e:
            raise StorageError(f"cannot stage {rel} for {self.version}: {e.strerror}", obj=self.key) from e
        finally:
            os.close(pfd)
        self._files[rel] = -1  # open: not yet complete
        return _SyncedFile(fd, rel, self._opened)  # type: ignore[return-value]

    def _found(self) -> tuple[dict[str, int], list[str]]:
        """(regular file -> size, folders) actually in the staging folder now; IntegrityError
        for anything that is not a regular file or folder."""
        files: dict[str, int] = {}
        dirs: list[str] = [""]

        def scan(fd: int, prefix: str) -> None:
            with os.scandir(fd) as it:
                entries = list(it)
            for e in entries:
                rel = f"{prefix}{e.name}"
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    dirs.append(rel)
                    sub = _open_dir_at(e.name, fd, rel, self.key)
                    try:
                        scan(sub, rel + "/")
                    finally:
                        os.close(sub)
                elif stat.S_ISREG(st.st_mode):
                    files[rel] = st.st_size
                else:
                    raise self._gone(f"{rel} is not a regular file")

        scan(self._fd, "")
        return files, dirs

    def _sync(self, files: list[str], dirs: list[str]) -> None:
        """Every staged byte and directory entry on disk before the rename makes it visible.

        Concurrent fsyncs share journal commits, so a package of many small files costs about
        one commit instead of one each, and only our files are flushed (unlike syncfs, which
        would flush every writer on a shared filesystem)."""

        def sync_one(rel: str, is_dir: bool) -> None:
            parts = rel.split("/") if rel else []
            if is_dir:
                fd = _descend(os.dup(self._fd), parts, self.key, create=False, prefix=self.key)
            else:
                pfd = _descend(os.dup(self._fd), parts[:-1], self.key, create=False, prefix=self.key)
                try:
                    fd = os.open(parts[-1], _READ_FLAGS, dir_fd=pfd)
                finally:
                    os.close(pfd)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        jobs = [(f, False) for f in files] + [(d, True) for d in dirs]
        if len(jobs) <= 2:
            for job in jobs:
                sync_one(*job)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
            list(pool.map(lambda job: sync_one(*job), jobs))

    def publish(self, version_key: str, manifest_name: str, manifest: bytes) -> None:
        with self.open_write(manifest_name) as f:
            f.write(manifest)
        self._lease.beat()
        if self._lease.lost:
            raise self._gone(self._lease.lost)
        try:
            found, dirs = self._found()
        except FileNotFoundError as e:
            raise self._gone(str(e)) from None
        if found != self._files:
            missing = sorted(set(self._files) - set(found))
            changed = sorted(r for r in self._files if r in found and found[r] != self._files[r])
            extra = sorted(set(found) - set(self._files))
            what = (f"missing {missing[:3]}" if missing else f"size changed {changed[:3]}" if changed
                    else f"unexpected {extra[:3]}")
            raise self._gone(what)
        try:
            self._sync(sorted(found), dirs)
        except OSError as e:
            raise self._gone(f"{getattr(e, 'filename', '') or ''} {e.strerror}".strip()) from None
        storage = self._storage
        try:
            pfd, name = storage._parent(self.key)
        except (FileNotFoundError, NotADirectoryError, NotFoundError):
            raise self._gone() from None
        try:
            st = _lstat_at(name, pfd)
            if st is None or not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) != self._id:
                raise self._gone()
            vpfd, vname = storage._parent(version_key, create=True)
            try:
                crash_point("publish")
                try:
                    # rename(2) of a directory replaces only an empty target: a published
                    # version (never empty) cannot be overwritten, whoever renames second loses.
                    os.rename(name, vname, src_dir_fd=pfd, dst_dir_fd=vpfd)
                except OSError as e:
                    if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                        raise ConflictError(f"version {version_key} already exists", obj=version_key) from None
                    raise StorageError(f"cannot publish {version_key}: {e.strerror}", obj=version_key) from e
                _fsync_fd(vpfd)
            finally:
                os.close(vpfd)
        finally:
            os.close(pfd)
        self._close()

    def release(self) -> None:
        self._lease.release()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abort(self) -> None:
        self._lease.stop()
        self._close()
        try:
            self._storage.remove_tree(self.key)
        except Exception:
            pass
        self._lease.release()


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
